"""The provenance store: every write the pipeline makes about what it produced.

A run record is one try of one Airflow run (DAG, run id, try): a retry or a reprocessed
date adds a record and never rewrites an earlier one. A dataset version is one effective
configuration on one date: re-running that configuration updates its rows in place and
replaces its per-row tables wholesale inside one transaction, so a retry never leaves
duplicates; other parameters make another version. Per-row tables are written with PostgreSQL
COPY (CSV rendered by pyarrow), falling back to executemany on SQLite.
"""
from __future__ import annotations

import math
import io
import os
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
from sqlalchemy import Connection, create_engine, delete, func, insert, select, text, update
from sqlalchemy.engine import Engine, make_url

from .models import (Base, DatasetVersion, DatasetVersionGenerator, DatasetVersionParent, DroppedRow, GateRecord,
                     GeneratorVersion, PipelineRun, RowLineage)

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
        with self.engine.begin() as conn:
            found = conn.scalar(select(GeneratorVersion.id).where(
                GeneratorVersion.name == name, GeneratorVersion.version == version,
                GeneratorVersion.params_hash == params_hash))
            if found:
                return found
            return conn.execute(insert(GeneratorVersion).values(
                name=name, version=version, family=family, params=params, params_hash=params_hash
            ).returning(GeneratorVersion.id)).scalar_one()

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

    def open_version(self, spec_name: str, logical_date: date, generators_key: str, run_pk: int, generation: int,
                     generator_ids: Iterable[int], parents: Iterable[tuple[int, str]] = (), *,
                     config_hash: str, line: str = "main") -> int:
        """Create or reset the dataset version for (spec, date, effective configuration)."""
        with self.engine.begin() as conn:
            key = (DatasetVersion.spec_name == spec_name, DatasetVersion.logical_date == logical_date,
                   DatasetVersion.config_hash == config_hash)
            version_id = conn.scalar(select(DatasetVersion.id).where(*key))
            values = dict(run_pk=run_pk, generation=generation, status="building", updated_at=_now(), line=line,
                          generators_key=generators_key)
            if version_id is None:
                version_id = conn.execute(insert(DatasetVersion).values(
                    spec_name=spec_name, logical_date=logical_date, config_hash=config_hash, metrics={}, **values
                ).returning(DatasetVersion.id)).scalar_one()
            else:
                conn.execute(update(DatasetVersion).where(DatasetVersion.id == version_id).values(**values))
            conn.execute(delete(DatasetVersionGenerator).where(DatasetVersionGenerator.dataset_version_id == version_id))
            ids = sorted(set(generator_ids))
            if ids:
                conn.execute(insert(DatasetVersionGenerator), [
                    {"dataset_version_id": version_id, "generator_version_id": g} for g in ids])
            _replace_parents(conn, version_id, parents)
            return version_id

    def add_parent(self, version_id: int, parent_id: int, relation: str) -> None:
        with self.engine.begin() as conn:
            exists = conn.scalar(select(DatasetVersionParent.child_id).where(
                DatasetVersionParent.child_id == version_id, DatasetVersionParent.parent_id == parent_id,
                DatasetVersionParent.relation == relation))
            if exists is None and parent_id != version_id:
                conn.execute(insert(DatasetVersionParent).values(child_id=version_id, parent_id=parent_id,
                                                                 relation=relation))

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

    def set_generated_rows(self, version_id: int, counts: dict[int, int]) -> None:
        with self.engine.begin() as conn:
            for generator_id, n in counts.items():
                conn.execute(update(DatasetVersionGenerator).where(
                    DatasetVersionGenerator.dataset_version_id == version_id,
                    DatasetVersionGenerator.generator_version_id == generator_id).values(rows_generated=n))

    def update_metrics(self, version_id: int, **metrics: Any) -> None:
        with self.engine.begin() as conn:
            current = conn.scalar(select(DatasetVersion.metrics).where(DatasetVersion.id == version_id)) or {}
            conn.execute(update(DatasetVersion).where(DatasetVersion.id == version_id).values(
                metrics=json_safe({**current, **metrics}), updated_at=_now()))

    # --- gates ---------------------------------------------------------------------
    def record_gate(self, version_id: int, run_pk: int, hop: str, suite_name: str, success: bool, evaluated: int,
                    failures: list[dict], docs_uri: str | None) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(GateRecord).where(GateRecord.run_pk == run_pk, GateRecord.dataset_version_id == version_id,
                                                  GateRecord.hop == hop))
            conn.execute(insert(GateRecord).values(
                dataset_version_id=version_id, run_pk=run_pk, hop=hop, suite_name=suite_name, success=success,
                evaluated=evaluated, failed_expectations=failures, docs_uri=docs_uri))

    def quarantine_version(self, version_id: int, run_pk: int, message: str) -> None:
        """A failed gate: the version is not (or no longer) published and its lineage rows go."""
        with self.engine.begin() as conn:
            conn.execute(delete(RowLineage).where(RowLineage.dataset_version_id == version_id))
            conn.execute(update(DatasetVersion).where(DatasetVersion.id == version_id).values(
                status="quarantined", published_at=None, updated_at=_now()))
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
        with self.engine.begin() as conn:
            conn.execute(delete(DroppedRow).where(DroppedRow.dataset_version_id == version_id, DroppedRow.hop == hop))
            frame = rows.assign(dataset_version_id=version_id, hop=hop)[DROPPED_COLUMNS]
            return self._bulk_insert(conn, DroppedRow.__tablename__, DROPPED_COLUMNS, frame)

    def publish_version(self, version_id: int, lineage: pd.DataFrame, *, real_rows: int, synthetic_rows: int,
                        carried_rows: int, storage_uri: str, metrics: dict) -> int:
        """Replace the version's lineage rows and mark it published, atomically."""
        with self.engine.begin() as conn:
            conn.execute(delete(RowLineage).where(RowLineage.dataset_version_id == version_id))
            frame = lineage.assign(dataset_version_id=version_id)[LINEAGE_COLUMNS]
            written = self._bulk_insert(conn, RowLineage.__tablename__, LINEAGE_COLUMNS, frame)
            current = conn.scalar(select(DatasetVersion.metrics).where(DatasetVersion.id == version_id)) or {}
            conn.execute(update(DatasetVersion).where(DatasetVersion.id == version_id).values(
                status="published", real_rows=real_rows, synthetic_rows=synthetic_rows, carried_rows=carried_rows,
                storage_uri=storage_uri, metrics={**current, **metrics}, published_at=_now(), updated_at=_now()))
            return written

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
