"""`synthchain gc`: what the retention rules (retention.py) say may go from storage now, and going it.

Abandons runs whose lease ran out, removes expired staging, quarantine and superseded published copies,
and anything under published/ the database does not own. `--dry-run` lists the actions only.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timezone

from ..provenance.lifecycle import _aware, death_of
from ..retention import REAL_COPIES, drop_real_copies
from ..settings import Lease, Retention


@dataclass
class GcAction:
    action: str  # abandon-run | remove | keep
    target: str
    files: int
    reason: str


def _age_s(moment, now: datetime) -> float:
    return (now - _aware(moment)).total_seconds() if moment else float("inf")


def collect(storage, store, *, dry_run: bool = False, now: datetime | None = None) -> list[GcAction]:
    """Apply the retention policy once; with dry_run, only say what would happen."""
    retention, lease = Retention.from_env(), Lease.from_env()
    now = now or datetime.now(timezone.utc)
    actions: list[GcAction] = []
    # Storage is listed before the store is read: a key seen now belongs to an attempt already recorded, so a
    # run that starts while gc works is never taken for a stray.
    published_keys, staging_keys = storage.list("published"), storage.list("runs")

    def remove(prefix: str, reason: str, attempt_id: int | None = None, what: str | None = None) -> None:
        files = len(storage.list(prefix)) if dry_run else storage.delete_prefix(prefix)
        if files or not dry_run:
            actions.append(GcAction("remove", prefix, files, reason))
        if attempt_id is not None and what and not dry_run:
            store.mark_cleaned(attempt_id, what)

    def real_copies(attempt: dict, reason: str) -> None:
        if retention.keep_real_copies or "real_copies" in (attempt["cleaned"] or {}):
            return
        found = [k for root in (attempt["staging_prefix"], attempt["quarantine_prefix"]) for rel in REAL_COPIES
                 for k in storage.list(f"{root}/{rel}")]
        if found:
            actions.append(GcAction("remove", f"{attempt['staging_prefix']} (real-row copies)", len(found), reason))
        if not dry_run:
            drop_real_copies(storage, store, attempt)

    for run in store.running_runs():
        reason = death_of(run, now, lease.stale_after_s)
        if reason:
            who = f"run {run['id']} ({run['dag_id'] + ' ' if run['dag_id'] else ''}{run['run_id']})"
            actions.append(GcAction("abandon-run", who, 0, reason))
            if not dry_run:
                store.abandon_run(run["id"], f"abandoned by synthchain gc: {reason}")

    attempts = store.attempts()
    pointers = {v["published_attempt_id"] for v in store.versions() if v["status"] == "published"}
    busy_specs = {a["spec_name"] for a in attempts if a["status"] in ("building", "publishing")}
    for a in attempts:
        cleaned, status = a["cleaned"] or {}, a["status"]
        if status in ("building", "publishing") or (status != "published" and a["id"] in pointers):
            continue  # live, or (whatever its row says) what a version points at: never removed
        ended = _age_s(a["finished_at"] or a["started_at"], now)
        label = f"attempt {a['id']} ({status}) of version {a['dataset_version_id']}"
        if status in ("published", "superseded"):
            if not retention.keep_staging:
                if "staging" not in cleaned:
                    remove(a["staging_prefix"], f"{label}: staging is removed after publish", a["id"], "staging")
            else:
                real_copies(a, f"{label}: real rows never outlive the run")
            since = _age_s(cleaned.get("superseded_at") and datetime.fromisoformat(cleaned["superseded_at"]), now)
            # a live run of the spec may be reading the replaced copy (its parent): it goes once none is
            if status == "superseded" and "published" not in cleaned and since >= retention.superseded_s \
                    and a["spec_name"] not in busy_specs:
                remove(a["published_prefix"], f"{label}: replaced by a later publish "
                       f"{since / 86400:.1f} days ago (kept {retention.superseded_s / 86400:g} days)", a["id"], "published")
            continue
        real_copies(a, f"{label}: real rows never outlive the run")
        if "staging" not in cleaned and ended >= retention.failed_s:
            remove(a["staging_prefix"], f"{label} ended {ended / 86400:.1f} days ago "
                   f"(failed attempts kept {retention.failed_s / 86400:g} days)", a["id"], "staging")
        if status == "quarantined" and "quarantine" not in cleaned and ended >= retention.quarantine_s:
            remove(a["quarantine_prefix"], f"{label} was quarantined {ended / 86400:.1f} days ago "
                   f"(quarantine kept {retention.quarantine_s / 86400:g} days)", a["id"], "quarantine")
        if "published" not in cleaned and storage.exists(a["published_prefix"]):
            remove(a["published_prefix"], f"{label}: never published (a run killed inside publish left it)",
                   a["id"], "published")

    # Under published/: only published copies, superseded ones still in their grace period, and swaps in flight.
    keep = [a["published_prefix"] + "/" for a in attempts
            if a["status"] in ("published", "building", "publishing")
            or a["id"] in pointers or (a["status"] == "superseded" and "published" not in (a["cleaned"] or {}))]
    for v in store.versions():
        if v["status"] == "published" and v["storage_uri"]:
            key = _key_in(storage, v["storage_uri"])
            if key:  # a version published before attempts existed: its folder holds its files
                keep.append(key.rsplit("/", 1)[0] + "/")
    for group in _unowned(published_keys, keep):
        remove(group, "under published/ but not a published version in the provenance store")
    # Staging trees no attempt owns (written before attempts existed, or by an attempt since deleted).
    for group in _unowned(staging_keys, [a["staging_prefix"] + "/" for a in attempts]):
        remove(group, "staging no attempt owns (left before attempts were recorded)")
    return actions


def _key_in(storage, uri: str) -> str | None:
    """The key of a URI in this storage, or None when it lives elsewhere (another backend or root)."""
    try:
        key = storage.key_of(uri)
    except Exception:
        return None
    return None if "://" in key else key


def _unowned(keys: list[str], owned: list[str]) -> list[str]:
    """Groups (an attempt's folder, or a legacy file) of keys outside every owned prefix; a group is never a
    folder that holds an owned prefix."""
    groups: set[str] = set()
    for key in keys:
        if any(key.startswith(prefix) for prefix in owned):
            continue
        group = "/".join(key.split("/")[:5])
        groups.add(key if any(prefix.startswith(group + "/") for prefix in owned) else group)
    return sorted(groups)


def as_rows(actions: list[GcAction]) -> list[dict]:
    return [asdict(a) for a in actions]
