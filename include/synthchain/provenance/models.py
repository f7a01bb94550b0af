"""Provenance schema: what was generated, by which generator version, in which run,
what was published, and why anything was dropped. Changes go through Alembic
(see migrations/); these models mirror the latest revision."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (JSON, BigInteger, Boolean, Date, DateTime, ForeignKey, Index, Integer, String, Text,
                        UniqueConstraint, func)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class GeneratorVersion(Base):
    __tablename__ = "generator_versions"
    __table_args__ = (UniqueConstraint("name", "version", "params_hash"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[str] = mapped_column(String(64))
    family: Mapped[str] = mapped_column(String(64))
    params_hash: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    first_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class PipelineRun(Base):
    """One try of one run: a retry or a reprocessed date adds a record, never rewrites an earlier one."""

    __tablename__ = "pipeline_runs"
    __table_args__ = (UniqueConstraint("dag_id", "run_id", "try_number", name="uq_pipeline_runs_identity"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dag_id: Mapped[str] = mapped_column(String(250), default="")  # "" outside Airflow (CLI)
    run_id: Mapped[str] = mapped_column(String(250))
    try_number: Mapped[int] = mapped_column(Integer, default=1)
    spec_name: Mapped[str] = mapped_column(String(64), index=True)
    logical_date: Mapped[date] = mapped_column(Date)
    run_kind: Mapped[str] = mapped_column(String(32))  # scheduled | manual | backfill | cli | ...
    status: Mapped[str] = mapped_column(String(16))  # running | success | quarantined | failed
    spec_hash: Mapped[str] = mapped_column(String(64))
    message: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # the lease: a running run whose heartbeat is older than the stale limit is dead (see lifecycle.py)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    host: Mapped[str | None] = mapped_column(String(255))  # where the last heartbeat came from
    pid: Mapped[int | None] = mapped_column(Integer)


class DatasetVersion(Base):
    __tablename__ = "dataset_versions"
    # one version per effective configuration and date: a re-run replaces its own, other parameters make another
    __table_args__ = (UniqueConstraint("spec_name", "logical_date", "config_hash", name="uq_dataset_versions_identity"),
                      Index("ix_dataset_versions_line", "spec_name", "line", "logical_date"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    spec_name: Mapped[str] = mapped_column(String(64), index=True)
    logical_date: Mapped[date] = mapped_column(Date)
    generators_key: Mapped[str] = mapped_column(String(500))
    line: Mapped[str] = mapped_column(String(250), default="main")  # main, a candidate line (cart_1_1), pre-0002
    config_hash: Mapped[str] = mapped_column(String(64))  # DatasetSpec.config_hash() after run-time overrides
    generation: Mapped[int] = mapped_column(Integer, default=0)
    run_pk: Mapped[int] = mapped_column(ForeignKey("pipeline_runs.id"))
    # published while published_attempt_id is set, whatever later attempts do; otherwise its latest attempt's
    # outcome: building | quarantined | failed
    status: Mapped[str] = mapped_column(String(16))
    published_attempt_id: Mapped[int | None] = mapped_column(Integer)
    real_rows: Mapped[int | None] = mapped_column(Integer)
    synthetic_rows: Mapped[int | None] = mapped_column(Integer)
    carried_rows: Mapped[int | None] = mapped_column(Integer)
    metrics: Mapped[dict] = mapped_column(JSON, default=dict)
    storage_uri: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class VersionAttempt(Base):
    """One run's attempt at building a dataset version, under its own storage prefixes.

    building → published (the version's pointer moves to it) → superseded (a later attempt published);
    building → quarantined | failed | abandoned (its run died). Metrics, parents and generation are the
    attempt's own until publish copies them onto the version in the same transaction as the pointer.
    """

    __tablename__ = "version_attempts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_version_id: Mapped[int] = mapped_column(ForeignKey("dataset_versions.id", ondelete="CASCADE"), index=True)
    run_pk: Mapped[int] = mapped_column(ForeignKey("pipeline_runs.id"))
    status: Mapped[str] = mapped_column(String(16))
    staging_prefix: Mapped[str] = mapped_column(Text)
    quarantine_prefix: Mapped[str] = mapped_column(Text)
    published_prefix: Mapped[str] = mapped_column(Text)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    parents: Mapped[list] = mapped_column(JSON, default=list)  # [[version_id, relation], ...]
    metrics: Mapped[dict] = mapped_column(JSON, default=dict)
    generated_rows: Mapped[dict] = mapped_column(JSON, default=dict)  # {generator_version_id: rows}
    message: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # what `synthchain gc` removed of this attempt's files, and when: {"staging": ts, "real_copies": ts, ...}
    cleaned: Mapped[dict] = mapped_column(JSON, default=dict)


class DatasetVersionGenerator(Base):
    """Which generator versions produced a dataset version's new synthetic rows."""

    __tablename__ = "dataset_version_generators"
    dataset_version_id: Mapped[int] = mapped_column(ForeignKey("dataset_versions.id", ondelete="CASCADE"), primary_key=True)
    generator_version_id: Mapped[int] = mapped_column(ForeignKey("generator_versions.id"), primary_key=True)
    rows_generated: Mapped[int | None] = mapped_column(Integer)


class DatasetVersionParent(Base):
    __tablename__ = "dataset_version_parents"
    child_id: Mapped[int] = mapped_column(ForeignKey("dataset_versions.id", ondelete="CASCADE"), primary_key=True)
    parent_id: Mapped[int] = mapped_column(ForeignKey("dataset_versions.id"), primary_key=True)
    relation: Mapped[str] = mapped_column(String(32), primary_key=True)  # carried_forward | fitted_on


class GateRecord(Base):
    __tablename__ = "gate_results"
    __table_args__ = (UniqueConstraint("run_pk", "dataset_version_id", "hop"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_version_id: Mapped[int] = mapped_column(ForeignKey("dataset_versions.id", ondelete="CASCADE"), index=True)
    run_pk: Mapped[int] = mapped_column(ForeignKey("pipeline_runs.id"))
    hop: Mapped[str] = mapped_column(String(32))
    suite_name: Mapped[str] = mapped_column(String(200))
    success: Mapped[bool] = mapped_column(Boolean)
    evaluated: Mapped[int] = mapped_column(Integer)
    failed_expectations: Mapped[list] = mapped_column(JSON, default=list)
    docs_uri: Mapped[str | None] = mapped_column(Text)
    evaluated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class RowLineage(Base):
    """One row per published row: where it came from. Written with COPY."""

    __tablename__ = "row_lineage"
    dataset_version_id: Mapped[int] = mapped_column(ForeignKey("dataset_versions.id", ondelete="CASCADE"), primary_key=True)
    row_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    origin: Mapped[str] = mapped_column(String(16))  # real | synthetic
    generator_name: Mapped[str | None] = mapped_column(String(200))
    generator_version: Mapped[str | None] = mapped_column(String(64))
    generation: Mapped[int | None] = mapped_column(Integer)
    created_in_version_id: Mapped[int | None] = mapped_column(BigInteger)  # first version the row appeared in
    content_hash: Mapped[str] = mapped_column(String(32))


class DroppedRow(Base):
    __tablename__ = "dropped_rows"
    dataset_version_id: Mapped[int] = mapped_column(ForeignKey("dataset_versions.id", ondelete="CASCADE"), primary_key=True)
    row_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    hop: Mapped[str] = mapped_column(String(32))
    filter: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    generator_name: Mapped[str | None] = mapped_column(String(200))
    generator_version: Mapped[str | None] = mapped_column(String(64))
    content_hash: Mapped[str] = mapped_column(String(32))


Index("ix_row_lineage_generator", RowLineage.generator_name, RowLineage.generator_version)
