"""Where things live: database URL, project folders. Read from the environment."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Limits:
    """What the diagram code of one engine step may use (`engine.workflow.expressions`): seconds of
    CPU time, and MB the process may grow by (0: unbounded)."""

    cpu_seconds: float = 2.0
    memory_mb: float = 256.0

    @classmethod
    def from_environ(cls) -> Limits:
        return cls(_number("TSUNAGU_SCRIPT_CPU_SECONDS", 2.0, zero_ok=False),
                   _number("TSUNAGU_SCRIPT_MEMORY_MB", 256.0, zero_ok=True))


def _number(name: str, default: float, zero_ok: bool) -> float:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not (value > 0 or (zero_ok and value == 0)) or value == float("inf"):
        raise ValueError(f"{name} must be a {'non-negative' if zero_ok else 'positive'} number, not {raw!r}")
    return value


def int_env(name: str, default: int) -> int:
    """A whole number of 0 or more from the environment variable `name`; `default` if unset."""
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
    # How many cases' deserialized workflows a process keeps between steps (engine.workflow.workflows);
    # 0: none, every step loads its case's stored state.
    workflow_cache: int = field(default_factory=lambda: int_env("TSUNAGU_WORKFLOW_CACHE", 256))
    # Reverse proxies in front of the server whose X-Forwarded-For / -Proto are believed (0:
    # none, the headers are ignored and the client address is the connection's).
    trusted_proxies: int = field(default_factory=lambda: int_env("TSUNAGU_TRUSTED_PROXIES", 0))
    # Mark the session cookie Secure even when the request does not look like HTTPS (behind a
    # proxy that terminates TLS without saying so).
    secure_cookies: bool = field(default_factory=lambda: os.environ.get("TSUNAGU_SECURE_COOKIES", "") in ("1", "true", "yes"))
    # Where the sweeper appends the audit chain's head once a day (unset: it does not).
    audit_anchor_file: Path | None = field(default_factory=lambda: _path(os.environ.get("TSUNAGU_AUDIT_ANCHOR_FILE")))
    # What one engine step's diagram code may use: CPU seconds, and MB the process may grow by.
    script_cpu_seconds: float = field(default_factory=lambda: Limits.from_environ().cpu_seconds)
    script_memory_mb: float = field(default_factory=lambda: Limits.from_environ().memory_mb)
    # Outgoing webhooks: destinations allowed although private or loopback (host, host:port or CIDR,
    # comma-separated), seconds between delivery sweeps, and how long a rotated-out secret still signs.
    webhook_allowed_hosts: str = field(default_factory=lambda: os.environ.get("TSUNAGU_WEBHOOK_ALLOWED_HOSTS", ""))
    webhook_interval: float = field(default_factory=lambda: _number("TSUNAGU_WEBHOOK_INTERVAL", 1.0, zero_ok=False))
    # Seconds one delivery attempt may take in all (connect, send, answer); a claim lasts four times as long.
    webhook_timeout: float = field(default_factory=lambda: _number("TSUNAGU_WEBHOOK_TIMEOUT", 15.0, zero_ok=False))
    webhook_rotation_grace_hours: float = field(
        default_factory=lambda: _number("TSUNAGU_WEBHOOK_ROTATION_GRACE_HOURS", 24.0, zero_ok=True))

    # Escalation (engine.casework.escalation): a task open past its time limit goes to its group's
    # supervisors; past this many times its limit (from when it was created), to the coordination lead.
    escalation_second_factor: float = field(
        default_factory=lambda: _second_factor())

    # Documents attached to cases (engine.casework.attachments): the directory their bytes are kept in
    # (outside the database; `tsunagu backup` copies it), and the largest file accepted, in MB.
    attachments_dir: Path = field(default_factory=lambda: Path(
        os.environ.get("TSUNAGU_ATTACHMENTS_DIR") or ROOT / "var" / "attachments"))
    attachment_max_mb: float = field(
        default_factory=lambda: _number("TSUNAGU_ATTACHMENT_MAX_MB", 10.0, zero_ok=False))

    @property
    def attachment_max_bytes(self) -> int:
        return int(self.attachment_max_mb * 1024 * 1024)

    @property
    def script_limits(self) -> Limits:
        return Limits(self.script_cpu_seconds, self.script_memory_mb)


def _second_factor() -> float:
    value = _number("TSUNAGU_ESCALATION_SECOND_FACTOR", 2.0, zero_ok=False)
    if value <= 1:
        raise ValueError(f"TSUNAGU_ESCALATION_SECOND_FACTOR must be more than 1 (the first limit), not {value}")
    return value


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


@dataclass(frozen=True)
class StuckThresholds:
    """Days after which the stuck report names a reason (config/reports.yaml, section `stuck`)."""

    unassigned_days: float = 3
    monitoring_overdue_days: float = 7
    idle_days: float = 30
    waiting_days: float = 14


@lru_cache(maxsize=8)
def load_stuck_thresholds(config_dir: Path) -> StuckThresholds:
    """The thresholds from `<config_dir>/reports.yaml`; a missing file or key keeps the default.
    A value that is not a positive number stops the program at start, naming the key."""
    path = Path(config_dir) / "reports.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None
    section = (raw or {}).get("stuck") or {}
    if not isinstance(section, dict):
        raise ValueError(f"{path}: stuck must be a mapping of <reason>_days: <days>")
    known = {f.name for f in fields(StuckThresholds)}
    unknown = sorted(set(section) - known)
    if unknown:
        raise ValueError(f"{path}: unknown setting stuck.{unknown[0]} (known: {', '.join(sorted(known))})")
    values: dict[str, float] = {}
    for key, value in section.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
            raise ValueError(f"{path}: stuck.{key} must be a positive number of days, not {value!r}")
        values[key] = float(value)
    return StuckThresholds(**values)
