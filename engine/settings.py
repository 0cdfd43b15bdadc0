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
    # Outgoing webhooks: destinations allowed although private or loopback (host, host:port or CIDR,
    # comma-separated), seconds between delivery sweeps, and how long a rotated-out secret still signs.
    webhook_allowed_hosts: str = field(default_factory=lambda: os.environ.get("TSUNAGU_WEBHOOK_ALLOWED_HOSTS", ""))
    webhook_interval: float = field(default_factory=lambda: float(os.environ.get("TSUNAGU_WEBHOOK_INTERVAL", "1")))
    # Seconds one delivery attempt may take in all (connect, send, answer); a claim lasts four times as long.
    webhook_timeout: float = field(default_factory=lambda: float(os.environ.get("TSUNAGU_WEBHOOK_TIMEOUT", "15")))
    webhook_rotation_grace_hours: float = field(
        default_factory=lambda: float(os.environ.get("TSUNAGU_WEBHOOK_ROTATION_GRACE_HOURS", "24")))
