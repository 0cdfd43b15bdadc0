"""Where things live: database URL, project folders. Read from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def default_database_url() -> str:
    return os.environ.get("DATABASE_URL") or f"sqlite:///{ROOT / 'var' / 'tsunagu.db'}"


@dataclass(frozen=True)
class Settings:
    database_url: str = field(default_factory=default_database_url)
    processes_dir: Path = field(default_factory=lambda: Path(os.environ.get("TSUNAGU_PROCESSES", ROOT / "processes")))
    forms_dir: Path = field(default_factory=lambda: Path(os.environ.get("TSUNAGU_FORMS", ROOT / "forms")))
    config_dir: Path = field(default_factory=lambda: Path(os.environ.get("TSUNAGU_CONFIG", ROOT / "config")))
    # Seconds between timer sweeps; a due timer fires within one interval plus its own work.
    sweep_interval: float = float(os.environ.get("TSUNAGU_SWEEP_INTERVAL", "0.5"))
    # Where the sweeper appends the audit chain's head once a day (unset: it does not).
    audit_anchor_file: Path | None = field(default_factory=lambda: _path(os.environ.get("TSUNAGU_AUDIT_ANCHOR_FILE")))


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None
