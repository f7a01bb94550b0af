"""The provenance store: every write the pipeline makes about what it produced.

A run record is one try of one Airflow run (DAG, run id, try): a retry or a reprocessed
date adds a record and never rewrites an earlier one. A dataset version is one effective
configuration on one date: re-running that configuration updates its rows in place and
replaces its per-row tables wholesale inside one transaction, so a retry never leaves
duplicates; other parameters make another version. Per-row tables are written with PostgreSQL
COPY (CSV rendered by pyarrow), falling back to executemany on SQLite.
"""
from __future__ import annotations

import io
import logging
import math
import os
import socket
import threading
from contextlib import contextmanager
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from sqlalchemy import Connection, create_engine, delete, func, insert, select, text, update
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import IntegrityError

from ..failpoints import failpoint
from .models import (
    Base,
    DatasetVersion,
    DatasetVersionGenerator,
    DatasetVersionParent,
    DroppedRow,
    GateRecord,
    GeneratorVersion,
    PipelineRun,
    RowLineage,
    VersionAttempt,
)

log = logging.getLogger(__name__)


class AttemptClosed(RuntimeError):
    """An attempt ended (abandoned, failed) while its run still worked on it: it must not publish."""

LINEAGE_COLUMNS = ["dataset_version_id", "row_id", "origin", "generator_name", "generator_version", "generation",
                   "created_in_version_id", "content_hash"]
DROPPED_COLUMNS = ["dataset_version_id", "row_id", "hop", "filter", "reason", "generator_name", "generator_version",
                   "content_hash"]


def default_db_url() -> str:
    url = os.environ.get("SYNTHCHAIN_DB_URL")
    if url:
        return url
    home = Path(os.environ.get("SYNTHCHAIN_HOME") or Path.home() / ".synthchain")
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home / 'provenance.db'}"


def normalise_url(url: str) -> str:
    """Prefer psycopg 3 for PostgreSQL: its COPY is the fastest bulk path we have."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        try:
            import psycopg  # noqa: F401
            parsed = parsed.set(drivername="postgresql+psycopg")
        except ImportError:
            parsed = parsed.set(drivername="postgresql+psycopg2")
    return parsed.render_as_string(hide_password=False)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def json_safe(value: Any) -> Any:
    """NaN and infinities (an undefined figure on a tiny set) become null: JSON columns refuse them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


class ProvenanceStore:
    def __init__(self, url: str | None = None, engine: Engine | None = None):
        self.url = normalise_url(url or default_db_url())
        self.engine = engine or create_engine(self.url, pool_pre_ping=True)
        self.is_postgres = self.engine.dialect.name == "postgresql"

    # --- schema ------------------------------------------------------------------
    def migrate(self) -> None:
        """Bring the schema to the latest Alembic revision (safe to call every run)."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        with self.engine.begin() as conn:
            if self.is_postgres:  # two tasks migrating at once must not race
                conn.execute(text("SELECT pg_advisory_xact_lock(727001)"))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def drop_all(self) -> None:
        with self.engine.begin() as conn:
            Base.metadata.drop_all(conn)
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))

    # --- registration --------------------------------------------------------------
    def register_generator(self, name: str, version: str, family: str, params: dict, params_hash: str) -> int:
        """The generator version's id, registered by the first run that uses it.

        Runs of different dates start side by side (a backfill, two workers): both may find no row and both
        insert; the unique key lets one win, and the other reads the winner's row instead of failing."""
        for attempt in (1, 2):
            try:
                with self.engine.begin() as conn:
                    found = conn.scalar(select(GeneratorVersion.id).where(
                        GeneratorVersion.name == name, GeneratorVersion.version == version,
                        GeneratorVersion.params_hash == params_hash))
                    if found:
                        return found
                    return conn.execute(insert(GeneratorVersion).values(
                        name=name, version=version, family=family, params=params, params_hash=params_hash
                    ).returning(GeneratorVersion.id)).scalar_one()
            except IntegrityError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def start_run(self, run_id: str, spec_name: str, logical_date: date, run_kind: str, spec_hash: str,
                  dag_id: str = "", try_number: int = 1) -> int:
        """The record of this try of the run; created once, so earlier tries and reprocessed runs keep theirs."""
        with self.engine.begin() as conn:
            found = conn.scalar(select(PipelineRun.id).where(
                PipelineRun.dag_id == dag_id, PipelineRun.run_id == run_id, PipelineRun.try_number == try_number))
            values = dict(spec_name=spec_name, logical_date=logical_date, run_kind=run_kind, status="running",
                          spec_hash=spec_hash, message=None, finished_at=None)
            if found:  # the same try starting again (the CLI re-running a run id): its own record
                conn.execute(update(PipelineRun).where(PipelineRun.id == found).values(**values))
                return found
            return conn.execute(insert(PipelineRun).values(
                dag_id=dag_id, run_id=run_id, try_number=try_number, **values).returning(PipelineRun.id)).scalar_one()

    def finish_run(self, run_pk: int, status: str, message: str | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(PipelineRun).where(PipelineRun.id == run_pk).values(
                status=status, message=message, finished_at=_now()))

    def open_version(self, spec_name: str, logical_date: date, generators_key: str, run_pk: int, *,
                     config_hash: str, line: str = "main") -> int:
        """The dataset version for (spec, date, effective configuration), created when new.

        A published version is left exactly as it is: a re-run builds an attempt beside it (open_attempt)
        and only a publish that passed every gate moves the version's pointer (publish_attempt).
        """
        key = (DatasetVersion.spec_name == spec_name, DatasetVersion.logical_date == logical_date,
               DatasetVersion.config_hash == config_hash)
        values = dict(run_pk=run_pk, status="building", updated_at=_now(), line=line, generators_key=generators_key)

        for _ in range(2):  # a concurrent run may insert the same version between our select and insert
            try:
                with self.engine.begin() as conn:
                    row = conn.execute(select(DatasetVersion.id, DatasetVersion.status).where(*key)).first()
                    if row is None:
                        return conn.execute(insert(DatasetVersion).values(
                            spec_name=spec_name, logical_date=logical_date, config_hash=config_hash, metrics={},
                            generation=0, **values).returning(DatasetVersion.id)).scalar_one()
                    return row.id  # open_attempt marks it building once no other live run holds it
            except IntegrityError:
                continue
        raise RuntimeError(f"could not open the dataset version of {spec_name} {logical_date} {config_hash}")

    def open_attempt(self, version_id: int, run_pk: int, *, generation: int, parents: Iterable[tuple[int, str]],
                     generator_ids: Iterable[int], prefixes: Callable[[int], tuple[str, str, str]],
                     stale_after_s: float) -> tuple[int, list[dict]]:
        """A new attempt at the version for this run, under its own storage prefixes.

        Another run's attempt that is still alive refuses this one (VersionBusy): two runs of one version
        never share a staging tree nor race to publish. An earlier try of the same Airflow run, or a run
        whose lease ran out, is marked abandoned and this attempt goes ahead.
        """
        from .lifecycle import VersionBusy, death_of

        now, abandoned = _now(), []
        with self.engine.begin() as conn:
            self._lock_version(conn, version_id)
            me = conn.execute(select(PipelineRun.dag_id, PipelineRun.run_id).where(PipelineRun.id == run_pk)).first()
            for other in self._live_attempts(conn, version_id):
                if other["run_pk"] == run_pk:
                    reason = "this run started the version again"
                elif other["dag_id"] and (other["dag_id"], other["run_id"]) == (me.dag_id, me.run_id):
                    reason = f"try {other['try_number']} of this Airflow run was superseded by a later try"
                else:
                    reason = death_of(other, now, stale_after_s)
                    if reason is None:
                        raise VersionBusy(version_id, other, now)
                self._end_attempt(conn, other["id"], "abandoned", reason, run_status="abandoned",
                                  run_pk=None if other["run_pk"] == run_pk else other["run_pk"])
                abandoned.append(dict(conn.execute(select(VersionAttempt.__table__).where(
                    VersionAttempt.id == other["id"])).mappings().one()))
            attempt_id = conn.execute(insert(VersionAttempt).values(
                dataset_version_id=version_id, run_pk=run_pk, status="building", staging_prefix="",
                quarantine_prefix="", published_prefix="", generation=generation,
                parents=[[p, r] for p, r in sorted(set(parents)) if p != version_id], metrics={},
                generated_rows={}, cleaned={}).returning(VersionAttempt.id)).scalar_one()
            staging, quarantine, published = prefixes(attempt_id)
            conn.execute(update(VersionAttempt).where(VersionAttempt.id == attempt_id).values(
                staging_prefix=staging, quarantine_prefix=quarantine, published_prefix=published))
            conn.execute(update(VersionAttempt).where(VersionAttempt.id == attempt_id).values(
                metrics={"generator_ids": sorted(set(generator_ids))}))
            if not self._is_published(conn, version_id):  # a published version shows its own generators until a swap
                self._link_generators(conn, version_id, generator_ids)
                conn.execute(update(DatasetVersion).where(DatasetVersion.id == version_id).values(
                    generation=generation, run_pk=run_pk, status="building", updated_at=_now()))
                _replace_parents(conn, version_id, parents)
            return attempt_id, abandoned

    @staticmethod
    def _link_generators(conn: Connection, version_id: int, generator_ids: Iterable[int]) -> None:
        conn.execute(delete(DatasetVersionGenerator).where(DatasetVersionGenerator.dataset_version_id == version_id))
        ids = sorted(set(generator_ids))
        if ids:
            conn.execute(insert(DatasetVersionGenerator), [
                {"dataset_version_id": version_id, "generator_version_id": g} for g in ids])

    def _lock_version(self, conn: Connection, version_id: int) -> None:
        """Serialise attempts, ends and publishes of one version until the transaction ends.

        PostgreSQL: a row lock. SQLite: pysqlite opens the transaction at the first write, so a no-op
        write takes the database's write lock now (a plain SELECT would take none)."""
        if self.is_postgres:
            conn.execute(select(DatasetVersion.id).where(DatasetVersion.id == version_id).with_for_update())
        else:
            conn.execute(update(DatasetVersion).where(DatasetVersion.id == version_id).values(id=DatasetVersion.id))

    def _live_attempts(self, conn: Connection, version_id: int | None = None) -> list[dict]:
        q = (select(VersionAttempt.id, VersionAttempt.run_pk, VersionAttempt.dataset_version_id,
                    VersionAttempt.status, VersionAttempt.started_at, PipelineRun.dag_id, PipelineRun.run_id,
                    PipelineRun.try_number, PipelineRun.run_kind, PipelineRun.heartbeat_at, PipelineRun.host,
                    PipelineRun.pid, PipelineRun.spec_name, PipelineRun.status.label("run_status"),
                    PipelineRun.started_at.label("run_started_at"))
             .join(PipelineRun, PipelineRun.id == VersionAttempt.run_pk)
             .where(VersionAttempt.status.in_(("building", "publishing"))))
        if version_id is not None:
            q = q.where(VersionAttempt.dataset_version_id == version_id)
        return [dict(r) for r in conn.execute(q.order_by(VersionAttempt.id)).mappings().all()]

    @staticmethod
    def _is_published(conn: Connection, version_id: int) -> bool:
        return conn.scalar(select(DatasetVersion.status).where(DatasetVersion.id == version_id)) == "published"

    def is_published(self, version_id: int) -> bool:
        with self.engine.connect() as conn:
            return self._is_published(conn, version_id)

    def _end_attempt(self, conn: Connection, attempt_id: int, status: str, message: str | None, *,
                     run_status: str | None = None, run_pk: int | None = None) -> None:
        """Close an attempt that did not publish; its version shows the outcome unless it is published.

        Under the version's lock and only from building/publishing: a swap that committed meanwhile wins."""
        version_id = conn.scalar(select(VersionAttempt.dataset_version_id).where(VersionAttempt.id == attempt_id))
        if version_id is None:
            return
        self._lock_version(conn, version_id)
        ended = conn.execute(update(VersionAttempt).where(
            VersionAttempt.id == attempt_id, VersionAttempt.status.in_(("building", "publishing"))).values(
            status=status, message=(message or "")[:2000] or None, finished_at=_now()))
        if ended.rowcount != 1:
            return
        row = conn.execute(select(VersionAttempt.dataset_version_id).where(VersionAttempt.id == attempt_id)).first()
        if not self._is_published(conn, row.dataset_version_id):
            version_status = "quarantined" if status == "quarantined" else "failed"
            conn.execute(update(DatasetVersion).where(DatasetVersion.id == row.dataset_version_id).values(
                status=version_status, updated_at=_now()))
        if run_pk is not None and run_status:
            conn.execute(update(PipelineRun).where(PipelineRun.id == run_pk, PipelineRun.status == "running").values(
                status=run_status, message=(message or "")[:2000] or None, finished_at=_now()))

    def fail_attempt(self, attempt_id: int, run_pk: int, message: str, status: str = "failed") -> None:
        """A run that ended without publishing: its attempt and run say why; a published version stays published."""
        with self.engine.begin() as conn:
            self._end_attempt(conn, attempt_id, status, message, run_status=status, run_pk=run_pk)

    def attempt(self, attempt_id: int) -> dict | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(VersionAttempt.__table__).where(VersionAttempt.id == attempt_id)).mappings().first()
            return dict(row) if row else None

    def attempts(self, version_id: int | None = None) -> list[dict]:
        """Attempts with their run's identity and lease, oldest first."""
        q = (select(VersionAttempt.__table__, PipelineRun.dag_id, PipelineRun.run_id, PipelineRun.try_number,
                    PipelineRun.run_kind, PipelineRun.heartbeat_at, PipelineRun.host, PipelineRun.pid,
                    PipelineRun.status.label("run_status"), PipelineRun.started_at.label("run_started_at"),
                    DatasetVersion.spec_name, DatasetVersion.logical_date)
             .join(PipelineRun, PipelineRun.id == VersionAttempt.run_pk)
             .join(DatasetVersion, DatasetVersion.id == VersionAttempt.dataset_version_id))
        if version_id is not None:
            q = q.where(VersionAttempt.dataset_version_id == version_id)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q.order_by(VersionAttempt.id)).mappings().all()]

    def attempts_of_airflow_run(self, dag_id: str, run_id: str) -> list[dict]:
        """Unfinished attempts of every try of one Airflow run."""
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(
                select(VersionAttempt.__table__).join(PipelineRun, PipelineRun.id == VersionAttempt.run_pk)
                .where(PipelineRun.dag_id == dag_id, PipelineRun.run_id == run_id,
                       VersionAttempt.status.in_(("building", "publishing")))).mappings().all()]

    def mark_cleaned(self, attempt_id: int, what: str) -> None:
        with self.engine.begin() as conn:
            cleaned = conn.scalar(select(VersionAttempt.cleaned).where(VersionAttempt.id == attempt_id)) or {}
            conn.execute(update(VersionAttempt).where(VersionAttempt.id == attempt_id).values(
                cleaned={**cleaned, what: _now().isoformat()}))

    def abandon_run(self, run_pk: int, reason: str) -> list[int]:
        """A run found dead: it and its unfinished attempts are marked abandoned (ids returned)."""
        with self.engine.begin() as conn:
            ids = list(conn.scalars(select(VersionAttempt.id).where(
                VersionAttempt.run_pk == run_pk, VersionAttempt.status.in_(("building", "publishing")))))
            for attempt_id in ids:
                self._end_attempt(conn, attempt_id, "abandoned", reason)
            conn.execute(update(PipelineRun).where(PipelineRun.id == run_pk, PipelineRun.status == "running").values(
                status="abandoned", message=reason[:2000], finished_at=_now()))
            return ids

    def heartbeat(self, run_pk: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(PipelineRun).where(PipelineRun.id == run_pk).values(
                heartbeat_at=_now(), host=socket.gethostname()[:255], pid=os.getpid()))

    @contextmanager
    def lease(self, run_pk: int, every_s: float):
        """Renew the run's heartbeat now and every `every_s` seconds while the body runs (a daemon thread)."""
        self.heartbeat(run_pk)
        stop = threading.Event()

        def beat():
            while not stop.wait(every_s):
                try:
                    self.heartbeat(run_pk)
                except Exception:  # a missed beat is not the task's failure; the next one may get through
                    log.warning("heartbeat of run %s failed", run_pk, exc_info=True)

        thread = threading.Thread(target=beat, name=f"synthchain-lease-{run_pk}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=5)

    def live_attempts(self) -> list[dict]:
        with self.engine.connect() as conn:
            return self._live_attempts(conn)

    def running_runs(self) -> list[dict]:
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(PipelineRun.__table__).where(
                PipelineRun.status == "running").order_by(PipelineRun.id)).mappings().all()]

    def ancestry(self, version_id: int, relation: str = "fitted_on") -> list[dict]:
        """The version and its ancestors through `relation`, oldest first (generation 0 at index 0)."""
        chain, seen, current = [], set(), version_id
        with self.engine.connect() as conn:
            while current is not None and current not in seen:
                seen.add(current)
                row = conn.execute(select(DatasetVersion.id, DatasetVersion.generation, DatasetVersion.status,
                                          DatasetVersion.logical_date, DatasetVersion.metrics)
                                   .where(DatasetVersion.id == current)).mappings().first()
                if row is None:
                    break
                chain.append(dict(row))
                current = conn.scalar(select(DatasetVersionParent.parent_id).where(
                    DatasetVersionParent.child_id == current, DatasetVersionParent.relation == relation))
        return chain[::-1]

    def add_attempt_parent(self, attempt_id: int, parent_id: int, relation: str) -> None:
        """A parent the attempt found while running (rows carried forward); the version gets it at publish."""
        with self.engine.begin() as conn:
            row = conn.execute(select(VersionAttempt.parents, VersionAttempt.dataset_version_id)
                               .where(VersionAttempt.id == attempt_id)).first()
            parents = {tuple(p) for p in row.parents or []} | {(parent_id, relation)}
            parents.discard((row.dataset_version_id, relation))
            conn.execute(update(VersionAttempt).where(VersionAttempt.id == attempt_id).values(
                parents=[list(p) for p in sorted(parents)]))
            if not self._is_published(conn, row.dataset_version_id):
                _replace_parents(conn, row.dataset_version_id, parents)

    def record_metrics(self, attempt_id: int, **metrics: Any) -> None:
        """An attempt's figures; also the version's while it has never been published (so a quarantined
        first build shows what failed), never a published version's until its pointer moves."""
        with self.engine.begin() as conn:
            row = conn.execute(select(VersionAttempt.metrics, VersionAttempt.dataset_version_id)
                               .where(VersionAttempt.id == attempt_id)).first()
            conn.execute(update(VersionAttempt).where(VersionAttempt.id == attempt_id).values(
                metrics=json_safe({**(row.metrics or {}), **metrics})))
            if not self._is_published(conn, row.dataset_version_id):
                current = conn.scalar(select(DatasetVersion.metrics)
                                      .where(DatasetVersion.id == row.dataset_version_id)) or {}
                conn.execute(update(DatasetVersion).where(DatasetVersion.id == row.dataset_version_id).values(
                    metrics=json_safe({**current, **metrics}), updated_at=_now()))

    def record_generated_rows(self, attempt_id: int, counts: dict[int, int]) -> None:
        with self.engine.begin() as conn:
            version_id = conn.scalar(select(VersionAttempt.dataset_version_id).where(VersionAttempt.id == attempt_id))
            conn.execute(update(VersionAttempt).where(VersionAttempt.id == attempt_id).values(
                generated_rows={str(k): int(v) for k, v in counts.items()}))
            if not self._is_published(conn, version_id):
                self._set_generated_rows(conn, version_id, counts)

    @staticmethod
    def _set_generated_rows(conn: Connection, version_id: int, counts: dict) -> None:
        for generator_id, n in counts.items():
            conn.execute(update(DatasetVersionGenerator).where(
                DatasetVersionGenerator.dataset_version_id == version_id,
                DatasetVersionGenerator.generator_version_id == int(generator_id)).values(rows_generated=int(n)))

    # --- gates ---------------------------------------------------------------------
    def record_gate(self, version_id: int, run_pk: int, hop: str, suite_name: str, success: bool, evaluated: int,
                    failures: list[dict], docs_uri: str | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(GateRecord).where(GateRecord.run_pk == run_pk, GateRecord.dataset_version_id == version_id,
                                                  GateRecord.hop == hop))
            conn.execute(insert(GateRecord).values(
                dataset_version_id=version_id, run_pk=run_pk, hop=hop, suite_name=suite_name, success=success,
                evaluated=evaluated, failed_expectations=failures, docs_uri=docs_uri))

    def quarantine_attempt(self, attempt_id: int, run_pk: int, message: str) -> None:
        """A failed gate: the attempt and its run are quarantined. A version published by an earlier attempt
        stays published with its data, lineage and figures: a failing re-run never un-publishes it."""
        with self.engine.begin() as conn:
            self._end_attempt(conn, attempt_id, "quarantined", message)
            conn.execute(update(PipelineRun).where(PipelineRun.id == run_pk).values(
                status="quarantined", message=message, finished_at=_now()))

    def gate_results(self, version_id: int, run_pk: int) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(GateRecord.__table__).where(GateRecord.dataset_version_id == version_id,
                                                                   GateRecord.run_pk == run_pk)
                                .order_by(GateRecord.id)).mappings().all()
            return [{"hop": r["hop"], "success": r["success"], "evaluated": r["evaluated"],
                     "failures": r["failed_expectations"] or [], "docs_uri": r["docs_uri"]} for r in rows]

    def runs(self, spec_name: str | None = None) -> list[dict]:
        """Every run record (one per try), oldest first."""
        q = select(PipelineRun.__table__)
        if spec_name:
            q = q.where(PipelineRun.spec_name == spec_name)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q.order_by(PipelineRun.id)).mappings().all()]

    def run_status(self, run_pk: int) -> str | None:
        with self.engine.connect() as conn:
            return conn.scalar(select(PipelineRun.status).where(PipelineRun.id == run_pk))

    # --- per-row tables ------------------------------------------------------------------
    def replace_dropped(self, version_id: int, hop: str, rows: pd.DataFrame) -> int:
        """The version's dropped rows of a hop, unless it is published (then publish_attempt writes them)."""
        with self.engine.begin() as conn:
            self._lock_version(conn, version_id)
            if self._is_published(conn, version_id):
                return 0
            return self._replace_dropped(conn, version_id, hop, rows)

    def _replace_dropped(self, conn: Connection, version_id: int, hop: str, rows: pd.DataFrame) -> int:
        conn.execute(delete(DroppedRow).where(DroppedRow.dataset_version_id == version_id, DroppedRow.hop == hop))
        frame = rows.assign(dataset_version_id=version_id, hop=hop)[DROPPED_COLUMNS]
        return self._bulk_insert(conn, DroppedRow.__tablename__, DROPPED_COLUMNS, frame)

    def mark_publishing(self, attempt_id: int) -> None:
        """Committed before any file of the attempt is moved under published/: the database knows of those
        files from the first one on (a crash inside the swap leaves a `publishing` attempt, never an unknown)."""
        with self.engine.begin() as conn:
            conn.execute(update(VersionAttempt).where(VersionAttempt.id == attempt_id,
                                                      VersionAttempt.status == "building").values(status="publishing"))

    def publish_attempt(self, version_id: int, attempt_id: int, lineage: pd.DataFrame, *, dropped: dict[str, pd.DataFrame],
                        real_rows: int, synthetic_rows: int, carried_rows: int, storage_uri: str, metrics: dict,
                        docs_uris: dict[str, str] | None = None,
                        before_commit: Callable[[], None] | None = None) -> dict:
        """The swap: the version's lineage, drops, parents, figures, storage URI and status move to this
        attempt in one transaction. `before_commit` moves the attempt's files into place while the
        version row is locked; if it fails, or the process dies, nothing here was committed and the
        version published before (if any) is still the published one. Returns the superseded attempt.
        """
        with self.engine.begin() as conn:
            self._lock_version(conn, version_id)
            attempt = conn.execute(select(VersionAttempt.__table__).where(VersionAttempt.id == attempt_id)).mappings().one()
            if attempt["status"] not in ("building", "publishing"):
                raise AttemptClosed(f"attempt {attempt_id} of dataset version {version_id} was marked "
                                    f"{attempt['status']} ({attempt['message'] or 'no reason recorded'}) while this "
                                    "run was still going: it is not published; re-run the version")
            previous = conn.execute(select(VersionAttempt.__table__).where(
                VersionAttempt.dataset_version_id == version_id, VersionAttempt.status == "published")).mappings().first()
            conn.execute(delete(RowLineage).where(RowLineage.dataset_version_id == version_id))
            frame = lineage.assign(dataset_version_id=version_id)[LINEAGE_COLUMNS]
            written = self._bulk_insert(conn, RowLineage.__tablename__, LINEAGE_COLUMNS, frame)
            failpoint("publish.lineage")
            for hop, rows in dropped.items():
                self._replace_dropped(conn, version_id, hop, rows)
            _replace_parents(conn, version_id, [tuple(p) for p in attempt["parents"] or []])
            self._link_generators(conn, version_id, (attempt["metrics"] or {}).get("generator_ids", []))
            self._set_generated_rows(conn, version_id, attempt["generated_rows"] or {})
            for hop, uri in (docs_uris or {}).items():  # the gate's data docs now live next to the data
                conn.execute(update(GateRecord).where(GateRecord.dataset_version_id == version_id,
                                                      GateRecord.run_pk == attempt["run_pk"], GateRecord.hop == hop)
                             .values(docs_uri=uri))
            if previous is not None:
                conn.execute(update(VersionAttempt).where(VersionAttempt.id == previous["id"]).values(
                    status="superseded", message=f"replaced by attempt {attempt_id}",
                    cleaned={**(previous["cleaned"] or {}), "superseded_at": _now().isoformat()}))
            conn.execute(update(VersionAttempt).where(VersionAttempt.id == attempt_id).values(
                status="published", finished_at=_now()))
            conn.execute(update(DatasetVersion).where(DatasetVersion.id == version_id).values(
                status="published", published_attempt_id=attempt_id, run_pk=attempt["run_pk"],
                generation=attempt["generation"], real_rows=real_rows, synthetic_rows=synthetic_rows,
                carried_rows=carried_rows, storage_uri=storage_uri,
                metrics=json_safe({**{k: v for k, v in (attempt["metrics"] or {}).items() if k != "generator_ids"},
                                   **metrics}), published_at=_now(), updated_at=_now()))
            if before_commit is not None:
                before_commit()
            conn.execute(update(PipelineRun).where(PipelineRun.id == attempt["run_pk"]).values(
                status="success", message=None, finished_at=_now()))
            failpoint("publish.moved")
        return {"rows": written, "superseded": dict(previous) if previous is not None else None}

    def write_lineage_rows(self, lineage: pd.DataFrame) -> int:
        """Bulk-append lineage rows (the benchmark's unit of work)."""
        with self.engine.begin() as conn:
            return self._bulk_insert(conn, RowLineage.__tablename__, LINEAGE_COLUMNS, lineage[LINEAGE_COLUMNS])

    def _bulk_insert(self, conn: Connection, table: str, columns: list[str], frame: pd.DataFrame) -> int:
        if frame.empty:
            return 0
        if self.is_postgres:
            return copy_frame(conn, table, columns, frame)
        records = frame.astype(object).where(frame.notna(), None).to_dict("records")
        conn.execute(insert(Base.metadata.tables[table]), records)
        return len(records)

    # --- queries -------------------------------------------------------------------------
    def version(self, version_id: int) -> dict | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(DatasetVersion).where(DatasetVersion.id == version_id)).mappings().first()
            return dict(row) if row else None

    def latest_published(self, spec_name: str, before: date, line: str | None = None,
                         config_hash: str | None = None) -> dict | None:
        """The newest published version of a spec strictly before a date (the parent for accumulation).

        Within a line, a version of the same configuration is preferred: a one-off manual run with other
        parameters on an earlier day does not become the nightly line's parent.
        """
        q = select(DatasetVersion).where(DatasetVersion.spec_name == spec_name, DatasetVersion.status == "published",
                                         DatasetVersion.logical_date < before)
        if line:
            q = q.where(DatasetVersion.line == line)
        order = (DatasetVersion.logical_date.desc(), DatasetVersion.id.desc())
        with self.engine.connect() as conn:
            row = None
            if config_hash:
                row = conn.execute(q.where(DatasetVersion.config_hash == config_hash).order_by(*order)).mappings().first()
            row = row or conn.execute(q.order_by(*order)).mappings().first()
            return dict(row) if row else None

    def versions(self, spec_name: str | None = None, line: str | None = None) -> list[dict]:
        """Dataset versions, oldest logical date first (ties by id)."""
        q = select(DatasetVersion.__table__, PipelineRun.run_id, PipelineRun.run_kind, PipelineRun.dag_id,
                   PipelineRun.try_number).join(PipelineRun, PipelineRun.id == DatasetVersion.run_pk)
        if spec_name:
            q = q.where(DatasetVersion.spec_name == spec_name)
        if line:
            q = q.where(DatasetVersion.line == line)
        attempts: dict[int, list[dict]] = {}
        for attempt in self.attempts():
            attempts.setdefault(attempt["dataset_version_id"], []).append({
                k: attempt[k] for k in ("id", "status", "run_pk", "dag_id", "run_id", "try_number", "run_kind",
                                        "run_status", "started_at", "finished_at", "heartbeat_at", "host", "pid",
                                        "message", "run_started_at")})
        with self.engine.connect() as conn:
            out = []
            for v in conn.execute(q.order_by(DatasetVersion.logical_date, DatasetVersion.id)).mappings().all():
                gates = conn.execute(select(GateRecord.hop, GateRecord.success, GateRecord.failed_expectations)
                                     .where(GateRecord.dataset_version_id == v["id"], GateRecord.run_pk == v["run_pk"])
                                     .order_by(GateRecord.id)).all()
                out.append({
                    "id": v["id"], "spec": v["spec_name"], "logical_date": v["logical_date"].isoformat(),
                    "generators": v["generators_key"], "generation": v["generation"], "status": v["status"],
                    "line": v["line"], "config_hash": v["config_hash"], "run_pk": v["run_pk"],
                    "dag_id": v["dag_id"], "run_id": v["run_id"], "try_number": v["try_number"], "run_kind": v["run_kind"], "real_rows": v["real_rows"],
                    "synthetic_rows": v["synthetic_rows"], "carried_rows": v["carried_rows"],
                    "storage_uri": v["storage_uri"],
                    "gates": [{"hop": h, "success": ok, "failed": [f.get("description") for f in (fails or [])]}
                              for h, ok, fails in gates],
                    "evaluation": (v["metrics"] or {}).get("evaluation"),
                    "metrics": v["metrics"] or {},
                    "published_attempt_id": v["published_attempt_id"],
                    "attempts": attempts.get(v["id"], []),
                })
            return out

    def lineage(self, version_id: int) -> dict:
        with self.engine.connect() as conn:
            version = conn.execute(select(DatasetVersion).where(DatasetVersion.id == version_id)).mappings().first()
            if version is None:
                raise LookupError(f"no dataset version {version_id}")
            by_origin = conn.execute(
                select(RowLineage.origin, RowLineage.generator_name, RowLineage.generator_version,
                       RowLineage.generation, func.count())
                .where(RowLineage.dataset_version_id == version_id)
                .group_by(RowLineage.origin, RowLineage.generator_name, RowLineage.generator_version,
                          RowLineage.generation)
                .order_by(RowLineage.origin, RowLineage.generator_name, RowLineage.generation)).all()
            parents = conn.execute(select(DatasetVersionParent.parent_id, DatasetVersionParent.relation)
                                   .where(DatasetVersionParent.child_id == version_id)).all()
            drops = conn.execute(select(DroppedRow.hop, DroppedRow.filter, DroppedRow.generator_name, func.count())
                                 .where(DroppedRow.dataset_version_id == version_id)
                                 .group_by(DroppedRow.hop, DroppedRow.filter, DroppedRow.generator_name)
                                 .order_by(DroppedRow.filter)).all()
            generators = conn.execute(
                select(GeneratorVersion.name, GeneratorVersion.version, GeneratorVersion.family,
                       GeneratorVersion.params_hash, DatasetVersionGenerator.rows_generated)
                .join(DatasetVersionGenerator, DatasetVersionGenerator.generator_version_id == GeneratorVersion.id)
                .where(DatasetVersionGenerator.dataset_version_id == version_id)).all()
        return {
            "version": version_id, "spec": version["spec_name"], "status": version["status"],
            "logical_date": version["logical_date"].isoformat(), "generation": version["generation"],
            "rows": [{"origin": o, "generator": g, "generator_version": v, "generation": gen, "count": n}
                     for o, g, v, gen, n in by_origin],
            "parents": [{"version": p, "relation": r} for p, r in parents],
            "ancestry": [a["id"] for a in self.ancestry(version_id)],
            "generators": [{"name": n, "version": v, "family": f, "params_hash": h, "rows_generated": r}
                           for n, v, f, h, r in generators],
            "dropped": [{"hop": h, "filter": f, "generator": g, "count": n} for h, f, g, n in drops],
        }


def _replace_parents(conn: Connection, version_id: int, parents: Iterable[tuple[int, str]]) -> None:
    conn.execute(delete(DatasetVersionParent).where(DatasetVersionParent.child_id == version_id))
    rows = [{"child_id": version_id, "parent_id": p, "relation": r} for p, r in set(parents) if p != version_id]
    if rows:
        conn.execute(insert(DatasetVersionParent), rows)


def frame_to_csv(frame: pd.DataFrame) -> bytes:
    """CSV without header, NULL as an unquoted empty field (PostgreSQL's CSV convention)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = io.BytesIO()
    pacsv.write_csv(table, sink, write_options=pacsv.WriteOptions(include_header=False, quoting_style="needed"))
    return sink.getvalue()


def copy_frame(conn: Connection, table: str, columns: list[str], frame: pd.DataFrame) -> int:
    """COPY a frame into a table on the connection's transaction."""
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)"
    raw = conn.connection.dbapi_connection
    payload = frame_to_csv(frame)
    cursor = raw.cursor()
    try:
        if hasattr(cursor, "copy"):  # psycopg 3
            with cursor.copy(sql) as copy:
                for start in range(0, len(payload), 1 << 20):
                    copy.write(payload[start:start + (1 << 20)])
        else:  # psycopg2
            cursor.copy_expert(sql, io.BytesIO(payload))
    finally:
        cursor.close()
    return len(frame)
