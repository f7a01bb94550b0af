"""Alembic upgrades keep what is stored: a 0001 database with runs and versions, upgraded to head."""
from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import text

from conftest import PG, ensure_database


def _at_0001_with_data(url: str):
    from alembic import command
    from alembic.config import Config

    from synthchain.provenance import ProvenanceStore
    from synthchain.provenance import store as store_module

    store = ProvenanceStore(url)
    store.drop_all()
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(store_module.__file__).parent / "migrations"))
    cfg.set_main_option("sqlalchemy.url", store.url)
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.execute(text("INSERT INTO pipeline_runs (run_id, spec_name, logical_date, run_kind, status, spec_hash) "
                          "VALUES ('scheduled__1', 'loans', '2026-01-01', 'scheduled', 'success', 'h')"))
        for key in ("cart@1.0", "cart@1.1"):  # two generator sets on one date: the old identity
            conn.execute(text("INSERT INTO dataset_versions (spec_name, logical_date, generators_key, generation, "
                              f"run_pk, status) VALUES ('loans', '2026-01-01', '{key}', 0, 1, 'published')"))
    return store


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_0002_keeps_runs_and_versions_and_adds_identity(backend, tmp_path):
    url = f"sqlite:///{tmp_path / 'p.db'}" if backend == "sqlite" else ensure_database("synthchain_migration_test")
    store = _at_0001_with_data(url)
    store.migrate()
    versions = store.versions("loans")
    assert [v["generators"] for v in versions] == ["cart@1.0", "cart@1.1"]
    assert {v["line"] for v in versions} == {"pre-0002"} and len({v["config_hash"] for v in versions}) == 2
    assert store.latest_published("loans", date(2026, 2, 1), line="main") is None  # no accidental parent
    # a new try of the old run id gets a record of its own; the old record stays as it was
    again = store.start_run("scheduled__1", "loans", date(2026, 1, 1), "scheduled", "h", dag_id="", try_number=2)
    assert again != 1 and [r["status"] for r in store.runs("loans")] == ["success", "running"]
    store.engine.dispose()
