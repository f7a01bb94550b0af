"""The whole loop against a real model: SmolLM2-135M-Instruct served by llama-cpp-python on 127.0.0.1.

Small counts: the model answers a chat completion in one to a few seconds on 2 cores.
"""
from __future__ import annotations

import json
import os
import shutil
from datetime import datetime, timezone

import pandas as pd
import pytest
import yaml

from conftest import environment
from test_dags import ROOT, _dagbag, _states

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def smollm2():
    from synthchain.llm.local_server import LocalModelServer

    conn = {"extra": {"structured_output": "json_object"}}
    with LocalModelServer() as server, environment(AIRFLOW_CONN_LLM_LOCAL=json.dumps({**conn, "host": server.base_url})):
        yield server


@pytest.fixture
def llm_env(airflow_db, store, pg_url, tmp_path, smollm2):
    specs = tmp_path / "specs"
    specs.mkdir()
    shutil.copy(ROOT / "include" / "specs" / "fine_foods_llm.yaml", specs)
    code = yaml.safe_load((ROOT / "include" / "specs" / "humaneval_code.yaml").read_text())
    # 13 problems: 10 seeds x 1 candidate, 3 holdout problems (2 solved once per evaluation condition)
    code["code"].update({"task_ids": [f"HumanEval/{i}" for i in (2, 7, 15, 16, 23, 28, 29, 30, 34, 42, 45, 53, 60)],
                         "pass_k": 1, "eval_problems": 2, "eval_samples": 1, "min_verified_rows": 0})
    code["target_rows"] = 10
    (specs / "humaneval_code.yaml").write_text(yaml.safe_dump(code))
    with environment(SYNTHCHAIN_DB_URL=pg_url, SYNTHCHAIN_STORAGE=str(tmp_path / "storage"),
                     SYNTHCHAIN_SPECS_DIR=str(specs)):
        yield _dagbag(), store, tmp_path / "storage"


def test_fine_foods_with_llm_sources_through_dag_test(llm_env):
    bag, store, storage_root = llm_env
    dag = bag.dags["synthchain__fine_foods_llm"]
    run = dag.test(logical_date=datetime(2026, 5, 1, tzinfo=timezone.utc), run_conf={"target_rows": 40})
    assert str(getattr(run.state, "value", run.state)) == "success", _states(run)
    version = store.versions("fine_foods_llm")[0]
    metrics = store.version(version["id"])["metrics"]
    generation = metrics["generation"]
    assert generation["planned"] == 40 and generation["rows"] + generation["failed"] == 40
    assert generation["by_generator"]["smollm2_self_instruct"]["calls"] >= 4  # a real model answered
    lineage = store.lineage(version["id"])
    assert {g["name"] for g in lineage["generators"]} == {"kn_ngram", "smollm2_self_instruct", "smollm2_evol"}
    data = pd.read_parquet(next((storage_root / "published" / "fine_foods_llm").rglob("data.parquet")))
    llm_rows = data.loc[data["_sc_generator"].astype(str).str.startswith("smollm2")]
    assert (llm_rows["_sc_model"] == "smollm2-135m-instruct").all()
    assert llm_rows["_sc_strategy"].isin(["self_instruct@1.0", "evol_instruct@1.0"]).all()
    # the spec aims at the label the real-only label model gets wrong most; every source wrote for it
    (aimed,) = metrics["targets"]["slices"]
    assert aimed["why"]["kind"] == "label" and aimed["quota"] == 40 and aimed["rule"] == "score == 'other'"
    synthetic = data.loc[data["_sc_origin"] == "synthetic"]
    assert (synthetic["score"] == "other").all() and (synthetic["_sc_target"] == aimed["name"]).all()
    assert {r["name"] for r in metrics["evaluation"]["slices"]["rows"]} >= {"great", "other", aimed["name"]}


def test_verified_code_by_rejection_sampling_through_dag_test(llm_env):
    bag, store, storage_root = llm_env
    dag = bag.dags["synthchain__humaneval_code"]
    run = dag.test(logical_date=datetime(2026, 5, 2, tzinfo=timezone.utc))
    assert str(getattr(run.state, "value", run.state)) == "success", _states(run)
    version = store.versions("humaneval_code")[0]
    metrics = store.version(version["id"])["metrics"]
    verification, evaluation = metrics["verification"], metrics["evaluation"]
    # round 0's ten planned rows are each a row or a stated failure; rounds then topped up the verified pool
    assert metrics["generation"]["rows"] + metrics["generation"]["failed"] == 10
    whole = metrics["targets"]["slices"][0]
    assert whole["planned"] == 10 and verification["rows"] == whole["generated"] >= 10
    assert verification["holdout_ids_generated"] == 0 and 0.0 <= verification["pass_at_1"] <= 1.0
    assert {"zero_shot", "real_context"} <= set(evaluation) and evaluation["problems"] == 2
    data = pd.read_parquet(next((storage_root / "published" / "humaneval_code").rglob("data.parquet")))
    synthetic = data.loc[data["_sc_origin"] == "synthetic"]
    assert (synthetic["_sc_verdict"] == "ok").all()  # only verified solutions are published
    from synthchain.modalities import get_modality
    from synthchain.specs import load_spec

    seeds, holdout = get_modality("code").load_real(load_spec(os.environ["SYNTHCHAIN_SPECS_DIR"] + "/humaneval_code.yaml"))
    assert set(synthetic["task_id"]) <= set(seeds["task_id"])  # holdout problems never reach a generator
    assert not set(data["task_id"]) & set(holdout["task_id"])  # nor anything published
