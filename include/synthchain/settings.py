"""Operational settings read from the environment (what a deployment configures, not what a spec declares).

Retention (what `synthchain gc` and the end of a run remove):
  SYNTHCHAIN_KEEP_STAGING=false      keep a published attempt's staging tree (default: removed at publish)
  SYNTHCHAIN_KEEP_REAL_COPIES=false  keep copies of real rows (train, holdout, fit data, blend) beyond the run
  SYNTHCHAIN_QUARANTINE_DAYS=30      how long a quarantined batch is kept for inspection
  SYNTHCHAIN_FAILED_DAYS=7           how long a failed, abandoned or quarantined attempt's staging is kept
  SYNTHCHAIN_SUPERSEDED_DAYS=0       how long a published copy stays readable after a re-run replaced it
Leases:
  SYNTHCHAIN_HEARTBEAT_S=30          how often a working task renews its run's heartbeat
  SYNTHCHAIN_STALE_AFTER_S=1800      a running run with no heartbeat for this long is dead (Airflow runs wait
                                     between tasks without a process, so this is well above a task's gap)
Models:
  SYNTHCHAIN_MODEL_CACHE             where models built on this machine live (the static text encoder,
                                     distilled once from installed weights); default
                                     $XDG_CACHE_HOME/synthchain/models or ~/.cache/synthchain/models
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


class ConfigError(ValueError):
    """A setting that cannot be used; the message names the environment variable."""


def _flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"${name}={raw!r}: expected true or false")


def _number(name: str, default: float, minimum: float = 0.0) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"${name}={raw!r}: expected a number") from None
    if not value >= minimum or value != value or value == float("inf"):
        raise ConfigError(f"${name}={raw!r}: expected a finite number >= {minimum:g}")
    return value


DAY = 86400.0


@dataclass(frozen=True)
class Retention:
    keep_staging: bool
    keep_real_copies: bool
    quarantine_s: float
    failed_s: float
    superseded_s: float

    @classmethod
    def from_env(cls) -> "Retention":
        return cls(keep_staging=_flag("SYNTHCHAIN_KEEP_STAGING", False),
                   keep_real_copies=_flag("SYNTHCHAIN_KEEP_REAL_COPIES", False),
                   quarantine_s=_number("SYNTHCHAIN_QUARANTINE_DAYS", 30) * DAY,
                   failed_s=_number("SYNTHCHAIN_FAILED_DAYS", 7) * DAY,
                   superseded_s=_number("SYNTHCHAIN_SUPERSEDED_DAYS", 0) * DAY)


@dataclass(frozen=True)
class Lease:
    heartbeat_s: float
    stale_after_s: float

    @classmethod
    def from_env(cls) -> "Lease":
        return cls(heartbeat_s=_number("SYNTHCHAIN_HEARTBEAT_S", 30, minimum=0.05),
                   stale_after_s=_number("SYNTHCHAIN_STALE_AFTER_S", 1800, minimum=0.0))


def model_cache_dir() -> Path:
    """The folder for models built on this machine ($SYNTHCHAIN_MODEL_CACHE, else the user's cache folder).

    Shared by every process and run on the machine: a model is built once and read by all of them.
    """
    raw = os.environ.get("SYNTHCHAIN_MODEL_CACHE", "").strip()
    if raw:
        return Path(raw).expanduser().absolute()
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(base).expanduser() if base else Path.home() / ".cache").absolute() / "synthchain" / "models"
