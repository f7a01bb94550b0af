"""Initial provenance schema.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

NOW = sa.func.now()


def upgrade() -> None:
    op.create_table(
        "generator_versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("family", sa.String(64), nullable=False),
        sa.Column("params_hash", sa.String(64), nullable=False),
        sa.Column("params", sa.JSON),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.UniqueConstraint("name", "version", "params_hash"),
    )
    op.create_table(
        "pipeline_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("run_id", sa.String(250), nullable=False, unique=True),
        sa.Column("spec_name", sa.String(64), nullable=False, index=True),
        sa.Column("logical_date", sa.Date, nullable=False),
        sa.Column("run_kind", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("spec_hash", sa.String(64), nullable=False),
        sa.Column("message", sa.Text),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "dataset_versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("spec_name", sa.String(64), nullable=False, index=True),
        sa.Column("logical_date", sa.Date, nullable=False),
        sa.Column("generators_key", sa.String(500), nullable=False),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("run_pk", sa.Integer, sa.ForeignKey("pipeline_runs.id"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("real_rows", sa.Integer),
        sa.Column("synthetic_rows", sa.Integer),
        sa.Column("carried_rows", sa.Integer),
        sa.Column("metrics", sa.JSON),
        sa.Column("storage_uri", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True)),
        sa.Column("published_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("spec_name", "logical_date", "generators_key"),
    )
    op.create_table(
        "dataset_version_generators",
        sa.Column("dataset_version_id", sa.Integer, sa.ForeignKey("dataset_versions.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("generator_version_id", sa.Integer, sa.ForeignKey("generator_versions.id"), primary_key=True),
        sa.Column("rows_generated", sa.Integer),
    )
    op.create_table(
        "dataset_version_parents",
        sa.Column("child_id", sa.Integer, sa.ForeignKey("dataset_versions.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("parent_id", sa.Integer, sa.ForeignKey("dataset_versions.id"), primary_key=True),
        sa.Column("relation", sa.String(32), primary_key=True),
    )
    op.create_table(
        "gate_results",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("dataset_version_id", sa.Integer, sa.ForeignKey("dataset_versions.id", ondelete="CASCADE"), nullable=False, index=True),
        sa.Column("run_pk", sa.Integer, sa.ForeignKey("pipeline_runs.id"), nullable=False),
        sa.Column("hop", sa.String(32), nullable=False),
        sa.Column("suite_name", sa.String(200), nullable=False),
        sa.Column("success", sa.Boolean, nullable=False),
        sa.Column("evaluated", sa.Integer, nullable=False),
        sa.Column("failed_expectations", sa.JSON),
        sa.Column("docs_uri", sa.Text),
        sa.Column("evaluated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.UniqueConstraint("run_pk", "dataset_version_id", "hop"),
    )
    op.create_table(
        "row_lineage",
        sa.Column("dataset_version_id", sa.Integer, sa.ForeignKey("dataset_versions.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("row_id", sa.String(200), primary_key=True),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("generator_name", sa.String(200)),
        sa.Column("generator_version", sa.String(64)),
        sa.Column("generation", sa.Integer),
        sa.Column("created_in_version_id", sa.BigInteger),
        sa.Column("content_hash", sa.String(32), nullable=False),
    )
    op.create_index("ix_row_lineage_generator", "row_lineage", ["generator_name", "generator_version"])
    op.create_table(
        "dropped_rows",
        sa.Column("dataset_version_id", sa.Integer, sa.ForeignKey("dataset_versions.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("row_id", sa.String(200), primary_key=True),
        sa.Column("hop", sa.String(32), nullable=False),
        sa.Column("filter", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("generator_name", sa.String(200)),
        sa.Column("generator_version", sa.String(64)),
        sa.Column("content_hash", sa.String(32), nullable=False),
    )


def downgrade() -> None:
    for table in ("dropped_rows", "row_lineage", "gate_results", "dataset_version_parents",
                  "dataset_version_generators", "dataset_versions", "pipeline_runs", "generator_versions"):
        op.drop_table(table)
