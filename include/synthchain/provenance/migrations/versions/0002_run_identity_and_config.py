"""Runs are identified by DAG, run id and try; dataset versions by their effective configuration.

A re-run (a new try, a backfill that reprocesses a date) adds a run record instead of
overwriting the earlier one, and a run with other parameters makes another dataset version
instead of reopening the one of the same date. `line` names the generator line (main or a
candidate) so lines can be compared date by date.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# SQLite reflects 0001's unnamed unique constraints without names; batch mode needs one to drop them.
SQLITE_NAMES = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _unique_name(table: str, columns: list[str]) -> str:
    """The name PostgreSQL gave an unnamed UNIQUE constraint; SQLite gets the naming convention's."""
    if op.get_bind().dialect.name == "sqlite":
        return f"uq_{table}_{columns[0]}"
    return next(c["name"] for c in sa.inspect(op.get_bind()).get_unique_constraints(table)
                if c["column_names"] == columns)


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    conv = SQLITE_NAMES if sqlite else None
    runs_unique = _unique_name("pipeline_runs", ["run_id"])
    versions_unique = _unique_name("dataset_versions", ["spec_name", "logical_date", "generators_key"])
    with op.batch_alter_table("pipeline_runs", naming_convention=conv) as batch:
        batch.add_column(sa.Column("dag_id", sa.String(250), nullable=False, server_default=""))
        batch.add_column(sa.Column("try_number", sa.Integer, nullable=False, server_default="1"))
        batch.drop_constraint(runs_unique, type_="unique")
        batch.create_unique_constraint("uq_pipeline_runs_identity", ["dag_id", "run_id", "try_number"])
    with op.batch_alter_table("dataset_versions", naming_convention=conv) as batch:
        batch.add_column(sa.Column("line", sa.String(250), nullable=False, server_default="main"))
        batch.add_column(sa.Column("config_hash", sa.String(64), nullable=False, server_default=""))
        batch.drop_constraint(versions_unique, type_="unique")
    # Versions made before 0002 keep their own identity, one per (spec, date, generator set) as before, on a
    # line of their own: which of them were the main line is not recorded (a conf-driven backfill of another
    # generator version looked the same), so none becomes a main-line parent by accident.
    op.execute("UPDATE dataset_versions SET config_hash = 'pre-0002-' || CAST(id AS VARCHAR(20)), line = 'pre-0002'")
    with op.batch_alter_table("dataset_versions", naming_convention=conv) as batch:
        batch.create_unique_constraint("uq_dataset_versions_identity", ["spec_name", "logical_date", "config_hash"])
        batch.create_index("ix_dataset_versions_line", ["spec_name", "line", "logical_date"])


def downgrade() -> None:
    raise NotImplementedError("0002 keeps history that 0001's keys cannot hold; restore from a backup instead")
