"""When is a run dead? The rules `open_attempt` and `synthchain gc` share.

A run holds a lease: every working task renews its heartbeat (ProvenanceStore.lease). A CLI run is one
process, so on its own host a vanished pid is proof of death at once; an Airflow run waits between
tasks with no process at all, so only an expired lease (SYNTHCHAIN_STALE_AFTER_S) or Airflow's own
failure callback ends it.
"""
from __future__ import annotations

import os
import socket
from datetime import datetime


class VersionBusy(RuntimeError):
    """Another live run is building the same dataset version."""

    def __init__(self, version_id: int, other: dict, now: datetime):
        beat = other.get("heartbeat_at") or other.get("run_started_at")
        age = f"{(now - _aware(beat)).total_seconds():.0f} s ago" if beat else "never"
        who = f"DAG {other['dag_id']} run {other['run_id']} try {other['try_number']}" if other.get("dag_id") \
            else f"run {other['run_id']}"
        super().__init__(
            f"dataset version {version_id} is being built by {who} (attempt {other['id']}, last heartbeat {age}); "
            "this run did not start, so the two never share a staging tree: re-run it when that run has "
            "finished (or, if it died, once `synthchain gc` has marked it abandoned)")


def _aware(moment: datetime) -> datetime:
    from datetime import timezone

    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def death_of(run: dict, now: datetime, stale_after_s: float) -> str | None:
    """Why a run (a row with status, heartbeat_at, host, pid, run_kind) is dead, or None while it may live."""
    status = run.get("run_status", run.get("status"))
    if status != "running":
        return f"its run ended {status}"
    if run.get("run_kind") == "cli" and run.get("pid") and run.get("host") == socket.gethostname() \
            and run["pid"] != os.getpid() and not pid_alive(run["pid"]):
        return f"its process {run['pid']} on {run['host']} is gone"
    beat = run.get("heartbeat_at") or run.get("run_started_at") or run.get("started_at")
    if beat is not None and (now - _aware(beat)).total_seconds() > stale_after_s:
        return f"no heartbeat for {(now - _aware(beat)).total_seconds():.0f} s (limit {stale_after_s:.0f} s)"
    return None
