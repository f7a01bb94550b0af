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
                              "run_pk, status, real_rows, storage_uri) VALUES ('loans', '2026-01-01', "
                              f"'{key}', 0, 1, 'published', 100, '{LEGACY_URI.format(key=key)}')"))
    return store


# where a version published before attempts existed keeps its data: no a<attempt> folder
LEGACY_URI = "file:///legacy/published/loans/2026-01-01/{key}/data.parquet"


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


def _prefixes(attempt_id: int) -> tuple[str, str, str]:
    tail = f"loans/2026-01-01/pre-0002/a{attempt_id}"
    return f"runs/{tail}", f"quarantine/{tail}", f"published/{tail}"


def _open(store, version_id: int, run_id: str) -> tuple[int, int]:
    """A new run and its attempt at the version, as begin() opens them; returns (run_pk, attempt_id)."""
    run_pk = store.start_run(run_id, "loans", date(2026, 1, 1), "manual", "h", dag_id="", try_number=1)
    store.open_attempt(version_id, run_pk, generation=0, parents=[], generator_ids=[], prefixes=_prefixes,
                       stale_after_s=1800)
    attempt = [a for a in store.attempts(version_id) if a["run_pk"] == run_pk]
    assert len(attempt) == 1 and attempt[0]["status"] == "building", attempt
    return run_pk, attempt[0]["id"]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_0003_keeps_published_versions_and_opens_attempts_on_them(backend, tmp_path):
    """A version published before 0003 has no attempt row: it stays published with its storage URI, a re-run
    can open an attempt on it, a failing one leaves it up, and a passing one swaps the pointer to its attempt."""
    import pandas as pd

    url = f"sqlite:///{tmp_path / 'p.db'}" if backend == "sqlite" else ensure_database("synthchain_migration_test")
    store = _at_0001_with_data(url)
    store.migrate()
    versions = store.versions("loans")
    assert [(v["status"], v["storage_uri"], v["published_attempt_id"], v["attempts"]) for v in versions] == [
        ("published", LEGACY_URI.format(key=key), None, []) for key in ("cart@1.0", "cart@1.1")]
    vid = versions[0]["id"]
    assert store.is_published(vid) and store.attempts(vid) == []

    # a re-run that fails: its attempt is quarantined, the legacy publish stays exactly as it was
    run_pk, failing = _open(store, vid, "manual__again")
    assert store.version(vid)["status"] == "published"  # opening an attempt does not touch the version
    store.quarantine_attempt(failing, run_pk, "gate 'verification' failed")
    version = store.version(vid)
    assert (version["status"], version["storage_uri"], version["published_attempt_id"], version["real_rows"]) == (
        "published", LEGACY_URI.format(key="cart@1.0"), None, 100)
    assert [a["status"] for a in store.attempts(vid)] == ["quarantined"]

    # a re-run that passes: the swap moves the version to its attempt (there is no earlier attempt to supersede)
    run_pk, passing = _open(store, vid, "manual__third")
    new_uri = f"file:///s/{_prefixes(passing)[2]}/data.parquet"
    lineage = pd.DataFrame({"row_id": ["real:0"], "origin": ["real"], "generator_name": [None],
                            "generator_version": [None], "generation": pd.array([None], dtype="Int64"),
                            "created_in_version_id": pd.array([None], dtype="Int64"), "content_hash": ["0" * 16]})
    swap = store.publish_attempt(vid, passing, lineage, dropped={}, real_rows=1, synthetic_rows=0, carried_rows=0,
                                 storage_uri=new_uri, metrics={"summary": {}})
    assert swap["rows"] == 1 and swap["superseded"] is None
    version = store.version(vid)
    assert (version["status"], version["storage_uri"], version["published_attempt_id"]) == (
        "published", new_uri, passing)
    assert [a["status"] for a in store.attempts(vid)] == ["quarantined", "published"]
    other = store.version(versions[1]["id"])  # the other legacy version is untouched
    assert (other["status"], other["storage_uri"]) == ("published", LEGACY_URI.format(key="cart@1.1"))
    store.engine.dispose()
