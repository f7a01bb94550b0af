"""Attempts: a run builds its own attempt at a dataset version and publish swaps the version's pointer.

A re-run of a published version no longer touches it until its own attempt has passed every gate;
a run holds a lease (heartbeat, host, pid) so a dead one can be told from a slow one.
Versions published before 0003 keep their status and storage URI (they have no attempt row).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("pipeline_runs") as batch:
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("host", sa.String(255)))
        batch.add_column(sa.Column("pid", sa.Integer))
    with op.batch_alter_table("dataset_versions") as batch:
        batch.add_column(sa.Column("published_attempt_id", sa.Integer))
    op.create_table(
        "version_attempts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("dataset_version_id", sa.Integer, sa.ForeignKey("dataset_versions.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("run_pk", sa.Integer, sa.ForeignKey("pipeline_runs.id"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("staging_prefix", sa.Text, nullable=False),
        sa.Column("quarantine_prefix", sa.Text, nullable=False),
        sa.Column("published_prefix", sa.Text, nullable=False),
        sa.Column("generation", sa.Integer, nullable=False, server_default="0"),
        sa.Column("parents", sa.JSON),
        sa.Column("metrics", sa.JSON),
        sa.Column("generated_rows", sa.JSON),
        sa.Column("message", sa.Text),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("cleaned", sa.JSON),
    )


def downgrade() -> None:
    op.drop_table("version_attempts")
    with op.batch_alter_table("dataset_versions") as batch:
        batch.drop_column("published_attempt_id")
    with op.batch_alter_table("pipeline_runs") as batch:
        for column in ("pid", "host", "heartbeat_at"):
            batch.drop_column(column)
