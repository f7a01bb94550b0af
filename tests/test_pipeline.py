"""The pipeline in-process on real PostgreSQL: counts add up, re-runs are idempotent, gates quarantine."""
from datetime import date

import pandas as pd
import pytest
from conftest import base_spec
from sqlalchemy import func, select, text
from synthchain.gates import GateFailed
from synthchain.pipeline import RunContext, run_all
from synthchain.provenance.models import DatasetVersion, DroppedRow, GateRecord, PipelineRun, RowLineage
from synthchain.specs import load_spec

DAY = date(2026, 3, 1)


def _ctx(spec, store, storage, day=DAY, run_id=None, kind="cli"):
    return RunContext(spec, day, run_id or f"test__{day}", kind, storage, store)


def _staging(store, version_id, *parts):
    """A published version's staging tree (kept by SYNTHCHAIN_KEEP_STAGING in the tests that read it)."""
    attempt = store.attempt(store.version(version_id)["published_attempt_id"])
    return "/".join([attempt["staging_prefix"], *parts])


def _count(store, query):
    with store.engine.connect() as conn:
        return conn.execute(query).scalar_one()


@pytest.fixture
def spec(spec_file):
    return load_spec(spec_file(base_spec()))


def test_publish_counts_add_up(spec, store, storage, monkeypatch):
    monkeypatch.setenv("SYNTHCHAIN_KEEP_STAGING", "true")
    out = run_all(_ctx(spec, store, storage))
    version = out["dataset_version"]
    blended = pd.read_parquet(out["data_uri"])
    assert out["rows"] == len(blended) == out["real_rows"] + out["synthetic_rows"]
    assert out["real_rows"] == 7886  # every real training row is kept (holdout 0.2 of 9857)
    assert out["synthetic_rows"] <= int(7886 * 0.2 / 0.8 + 1e-9)
    # one lineage row per published row, ids and hashes matching the Parquet file
    assert _count(store, select(func.count()).select_from(RowLineage).where(RowLineage.dataset_version_id == version)) == len(blended)
    with store.engine.connect() as conn:
        by_origin = dict(conn.execute(select(RowLineage.origin, func.count()).where(
            RowLineage.dataset_version_id == version).group_by(RowLineage.origin)).all())
        ids = set(conn.execute(select(RowLineage.row_id).where(RowLineage.dataset_version_id == version)).scalars())
    assert by_origin == {"real": out["real_rows"], "synthetic": out["synthetic_rows"]}
    assert ids == set(blended["_sc_row_id"])
    # generated = kept + dropped; every drop has a reason
    lineage = store.lineage(version)
    generated = sum(g["rows_generated"] for g in lineage["generators"])
    # round 0 draws target_rows; rounds draw more until target_rows are kept (or the budget is spent)
    whole = store.version(version)["metrics"]["targets"]["slices"][0]
    assert whole["name"] == "all" and whole["planned"] == spec.target_rows and generated == whole["generated"]
    assert generated >= spec.target_rows and whole["kept"] == spec.target_rows - whole["shortfall"]
    dropped = _count(store, select(func.count()).select_from(DroppedRow).where(DroppedRow.dataset_version_id == version))
    kept = pd.read_parquet(storage.uri(_staging(store, version, "filtering", "kept.parquet")))
    assert len(kept) + dropped == generated
    assert _count(store, select(func.count()).select_from(DroppedRow).where(DroppedRow.reason == "")) == 0
    # all six gates passed and are recorded; the run is a success
    gates = store.gate_results(version, _run_pk(store, "test__2026-03-01"))
    assert [g["hop"] for g in gates] == ["profiling", "generation", "verification", "filtering", "blending", "evaluation"]
    assert all(g["success"] for g in gates)
    assert store.version(version)["status"] == "published"
    manifest = storage.read_json(out["manifest_uri"])
    assert manifest["rows"] == len(blended) and manifest["gates"][0]["hop"] == "profiling"
    report = storage.read_bytes(out["report_uri"]).decode()
    assert report.count("data:image/png;base64,") == 6 and "Gates" in report
    assert "Collapse monitors over generations" in report and "Missing values per column" in report
    assert "Associations: mean |synthetic − real| = " in report and "Correlation difference" not in report
    published = store.attempt(store.version(version)["published_attempt_id"])["published_prefix"]
    assert storage.exists(f"{published}/gx_docs/index_profiling.html")
    assert all(g["docs_uri"].startswith(storage.uri(published)) for g in manifest["gates"])
    # kept staging holds no copy of real rows once the run is over
    assert not storage.exists(_staging(store, version, "profiling", "real_train.parquet"))
    assert storage.exists(_staging(store, version, "profiling", "profile.json"))


def _run_pk(store, run_id):
    return _count(store, select(PipelineRun.id).where(PipelineRun.run_id == run_id))


def test_rerun_same_date_is_idempotent(spec, store, storage, monkeypatch):
    monkeypatch.setenv("SYNTHCHAIN_KEEP_STAGING", "true")
    first = run_all(_ctx(spec, store, storage, run_id="a"))
    first_hash = storage.read_json(first["manifest_uri"])["content_sha256"]
    second = run_all(_ctx(spec, store, storage, run_id="b", kind="manual"))
    assert first["dataset_version"] == second["dataset_version"]
    assert _count(store, select(func.count()).select_from(DatasetVersion)) == 1
    version = second["dataset_version"]
    n_lineage = _count(store, select(func.count()).select_from(RowLineage).where(RowLineage.dataset_version_id == version))
    assert n_lineage == second["rows"]
    # same inputs, same rows: the published content does not change, and there is one copy of it
    assert storage.read_json(second["manifest_uri"])["content_sha256"] == first_hash
    attempts = {"/".join(key.split("/")[3:5]) for key in storage.list("published")}
    published = store.version(version)["published_attempt_id"]
    assert attempts == {f"{_ctx(spec, store, storage).config_hash}/a{published}"}  # one published copy, not two
    assert [a["status"] for a in store.attempts(version)] == ["superseded", "published"]
    assert _count(store, select(func.count()).select_from(DroppedRow)) == len(
        pd.read_parquet(storage.uri(_staging(store, version, "filtering", "dropped.parquet"))))
    assert pd.read_parquet(second["data_uri"])["_sc_row_id"].is_unique
    with store.engine.connect() as conn:
        kinds = dict(conn.execute(select(PipelineRun.run_id, PipelineRun.run_kind)).all())
    assert kinds == {"a": "cli", "b": "manual"}


def test_same_inputs_same_rows(spec, store, storage, tmp_path):
    from synthchain.storage import LocalStorage

    a = run_all(_ctx(spec, store, storage, run_id="x"))
    b = run_all(_ctx(spec, store, LocalStorage(tmp_path / "other"), run_id="y"))
    left, right = pd.read_parquet(a["data_uri"]), pd.read_parquet(b["data_uri"])
    pd.testing.assert_frame_equal(left, right)


def test_failing_gate_quarantines_and_never_publishes(spec_file, store, storage):
    spec = load_spec(spec_file(base_spec(gates={"min_quality_score": 0.999})))
    ctx = _ctx(spec, store, storage)
    with pytest.raises(GateFailed) as err:
        run_all(ctx)
    message = str(err.value)
    assert "gate 'verification' failed" in message
    assert "expect_column_values_to_be_between(column='quality_score', min_value=0.999): observed 0.9" in message
    version = store.versions()[0]
    assert version["status"] == "quarantined"
    assert not storage.list("published")
    quarantine = store.attempts(version["id"])[0]["quarantine_prefix"]
    assert storage.exists(f"{quarantine}/verification/gate_failure.json")
    assert storage.exists(f"{quarantine}/verification/metrics.json")
    assert _count(store, select(func.count()).select_from(RowLineage)) == 0
    with store.engine.connect() as conn:
        run = conn.execute(select(PipelineRun.status, PipelineRun.message)).one()
        failed = conn.execute(select(GateRecord.failed_expectations).where(GateRecord.hop == "verification")).scalar_one()
    assert run.status == "quarantined" and "quality_score" in run.message
    assert failed[0]["column"] == "quality_score" and failed[0]["observed"] < 0.999


def test_other_gates_make_another_version_and_leave_the_publish_up(spec, spec_file, store, storage):
    good = run_all(_ctx(spec, store, storage))
    strict = load_spec(spec_file(base_spec(gates={"max_synthetic_share": 0.01}), "strict.yaml"))
    with pytest.raises(GateFailed, match="gate 'blending' failed"):
        run_all(_ctx(strict, store, storage, run_id="again"))
    # gate thresholds are part of the effective configuration: the strict run is a version of its own
    assert store.version(good["dataset_version"])["status"] == "published"
    statuses = {v["config_hash"]: v["status"] for v in store.versions()}
    assert statuses == {spec.config_hash(): "published", strict.config_hash(): "quarantined"}
    assert storage.list(f"published/{_ctx(spec, store, storage).version_path}")
    assert not storage.list(f"published/{_ctx(strict, store, storage).version_path}")


def test_accumulate_carries_previous_synthetic_rows_with_lineage(spec, store, storage):
    first = run_all(_ctx(spec, store, storage, day=date(2026, 3, 1), run_id="d1"))
    second = run_all(_ctx(spec, store, storage, day=date(2026, 3, 2), run_id="d2"))
    assert second["carried_rows"] > 0
    lineage = store.lineage(second["dataset_version"])
    assert lineage["parents"] == [{"version": first["dataset_version"], "relation": "carried_forward"}]
    with store.engine.connect() as conn:
        carried = conn.execute(select(func.count()).select_from(RowLineage).where(
            RowLineage.dataset_version_id == second["dataset_version"],
            RowLineage.created_in_version_id == first["dataset_version"])).scalar_one()
    assert carried == second["carried_rows"]
    # "what trained on what": the rows of v2 that were generated in v1 are v1's published rows
    with store.engine.connect() as conn:
        overlap = conn.execute(text(
            "SELECT count(*) FROM row_lineage a JOIN row_lineage b ON a.row_id = b.row_id "
            "WHERE a.dataset_version_id = :v2 AND b.dataset_version_id = :v1 AND a.origin = 'synthetic'"),
            {"v1": first["dataset_version"], "v2": second["dataset_version"]}).scalar_one()
    assert overlap == carried


def test_replace_mode_and_new_generator_version_side_by_side(spec, store, storage):
    old = run_all(_ctx(spec, store, storage, run_id="old"))
    newer = spec.with_overrides({"generator_versions": {"cart": "1.1"}, "blend_mode": "replace"})
    new = run_all(_ctx(newer, store, storage, run_id="backfill__new", kind="backfill"))
    assert old["dataset_version"] != new["dataset_version"]
    assert {v["generators"] for v in store.versions()} == {"cart@1.0+gaussian_copula@1.0", "cart@1.1+gaussian_copula@1.0"}
    assert all(v["status"] == "published" for v in store.versions())
    rows = {(r["generator"], r["generator_version"]) for r in store.lineage(new["dataset_version"])["rows"]}
    assert ("cart", "1.1") in rows and ("cart", "1.0") not in rows
    assert new["carried_rows"] == 0
