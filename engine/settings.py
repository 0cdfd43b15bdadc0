"""Where things live: database URL, project folders. Read from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _int_env(name: str, default: int) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise SystemExit(f"{name} must be a whole number, not {text!r}") from None
    if value < 0:
        raise SystemExit(f"{name} must not be negative")
    return value


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
    # Reverse proxies in front of the server whose X-Forwarded-For / -Proto are believed (0:
    # none, the headers are ignored and the client address is the connection's).
    trusted_proxies: int = field(default_factory=lambda: _int_env("TSUNAGU_TRUSTED_PROXIES", 0))
    # Mark the session cookie Secure even when the request does not look like HTTPS (behind a
    # proxy that terminates TLS without saying so).
    secure_cookies: bool = field(default_factory=lambda: os.environ.get("TSUNAGU_SECURE_COOKIES", "") in ("1", "true", "yes"))
    # Where the sweeper appends the audit chain's head once a day (unset: it does not).
    audit_anchor_file: Path | None = field(default_factory=lambda: _path(os.environ.get("TSUNAGU_AUDIT_ANCHOR_FILE")))


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None
