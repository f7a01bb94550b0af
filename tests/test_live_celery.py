"""CeleryExecutor scale-out on a real deployment: api-server, scheduler, dag-processor and TWO Celery workers
(Redis broker, PostgreSQL result backend) run unchanged synthchain DAGs: the generation shards land on both,
and a text DAG's verification record shards land on both and keep exactly what one process keeps."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import yaml

from conftest import PG, ROOT
from live_airflow import LiveAirflow, create_database, drop_database, spec_folders

pytestmark = pytest.mark.airflow

BROKER = "redis://127.0.0.1:6379/7"  # not db 0: keep clear of anything else on this Redis
METADATA_DB = "synthchain_live_celery_airflow"
PROVENANCE_DB = "synthchain_live_celery_provenance"
WORKERS = ["worker_a", "worker_b"]
DAG_ID = "synthchain__celery_small"
TEXT_DAG_ID = "synthchain__celery_text"


def small_spec() -> dict:
    """The shipped lending_club spec, smaller and unscheduled: 800 rows in 200-row shards = 4 mapped shards.

    Without its candidate lines: one DAG is all this test needs (and all the dag-processor must parse)."""
    spec = yaml.safe_load((ROOT / "include" / "specs" / "lending_club.yaml").read_text())
    spec.pop("candidates", None)
    spec.update(name="celery_small", target_rows=800, shard_rows=200, schedule=None)
    return spec


def text_spec() -> dict:
    """The shipped fine_foods spec, 400 texts in 100-row shards: 4 generation and 4 verification record shards.
    Embedding figures on 500 texts a side, so MiniLM does not dominate the test."""
    spec = yaml.safe_load((ROOT / "include" / "specs" / "fine_foods.yaml").read_text())
    spec.update(name="celery_text", target_rows=400, shard_rows=100, schedule=None)
    spec["text"] = {**spec.get("text", {}), "sample_rows": 500}
    return spec


@pytest.fixture(scope="module")
def celery_airflow(tmp_path_factory):
    import redis

    tmp = tmp_path_factory.mktemp("live-celery")
    # the DAG files `synthchain dags sync` writes
    specs, dags = spec_folders(tmp, {"celery_small": small_spec(), "celery_text": text_spec()})
    redis.Redis.from_url(BROKER).flushdb()  # no task messages left over from an interrupted run
    env = {
        "AIRFLOW__CELERY__BROKER_URL": BROKER,
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{PG}/{METADATA_DB}",
        "SYNTHCHAIN_SPECS_DIR": str(specs),
        "SYNTHCHAIN_DB_URL": create_database(PROVENANCE_DB),
        "SYNTHCHAIN_STORAGE": str(tmp / "storage"),
    }
    # One slot per worker: 2 task processes on 2 cores, and a busy worker cannot hold a second shard,
    # so the four shards must be shared between both workers.
    af = LiveAirflow(tmp / "home", dags, ROOT / "plugins", METADATA_DB, env, executor="CeleryExecutor",
                     celery_workers=WORKERS, worker_concurrency=1,
                     preload=["synthchain.pipeline", "great_expectations"])  # imported once per worker, not per task
    with af:
        print(f"live Airflow (CeleryExecutor, {len(WORKERS)} workers) started in {af.startup_seconds:.1f}s")
        yield af
    drop_database(PROVENANCE_DB)


def run_once(af, dag_id: str = DAG_ID, logical_date: str | None = None) -> list[dict]:
    run_id = af.trigger(dag_id, logical_date=logical_date)
    af.wait_for_run(dag_id, run_id, timeout=600)
    tis = af.task_instances(dag_id, run_id)
    assert all(ti["state"] == "success" for ti in tis), [(ti["task_id"], ti["map_index"], ti["state"]) for ti in tis]
    assert {ti["hostname"] for ti in tis} <= set(WORKERS)  # every task ran on a Celery worker
    return tis


def test_generation_shards_run_on_both_celery_workers(celery_airflow):
    af = celery_airflow
    af.wait_for_dag(DAG_ID, timeout=120)
    # Mapped task instances come back one row per map_index; hostname is what each worker's
    # hostname_callable (live_airflow.worker_hostname) reported when the task started.
    # Which idle worker Redis hands a message to is a race: in one CI run of ~50 all four shards went to one
    # worker. Both workers must take shards within two runs (8 shards); each run's shards are all there.
    timelines = []
    for _ in range(2):
        shards = [ti for ti in run_once(af) if ti["task_id"] == "generation.sample"]
        assert sorted(ti["map_index"] for ti in shards) == [0, 1, 2, 3]
        timelines.append([(ti["map_index"], ti["hostname"], ti.get("start_date"), ti.get("end_date"))
                          for ti in shards])
        hosts = Counter(host for timeline in timelines for _, host, *_ in timeline)
        if set(hosts) == set(WORKERS):
            break
    assert set(hosts) == set(WORKERS), timelines
    assert any(Path(af.home, "logs").rglob("attempt=1.log"))


def test_text_verification_and_filtering_shards_run_on_both_workers_and_keep_what_one_process_keeps(celery_airflow, tmp_path):
    from datetime import date

    import pandas as pd

    from synthchain.pipeline import RunContext, run_all
    from synthchain.provenance import ProvenanceStore
    from synthchain.specs import load_spec
    from synthchain.storage import LocalStorage

    af = celery_airflow
    af.wait_for_dag(TEXT_DAG_ID, timeout=120)
    hosts: dict[str, Counter] = {"verification.check_records": Counter(), "filtering.find_pairs": Counter()}
    for day in ("2026-06-01", "2026-06-02", "2026-06-03"):  # which idle worker takes a message is a race
        done = run_once(af, TEXT_DAG_ID, f"{day}T00:00:00Z")
        for task_id, seen in hosts.items():
            shards = [ti for ti in done if ti["task_id"] == task_id]
            # 400 rows, 100 a shard: record shards of equal rows, pair shards of equal work (n * sqrt(k / 4))
            assert sorted(ti["map_index"] for ti in shards) == [0, 1, 2, 3], (task_id, shards)
            seen.update(ti["hostname"] for ti in shards)
        if all(set(seen) == set(WORKERS) for seen in hosts.values()):
            break
    assert all(set(seen) == set(WORKERS) for seen in hosts.values()), hosts

    # the version the workers published for that date holds the synthetic rows one process keeps
    deployed = ProvenanceStore(af.caller_env["SYNTHCHAIN_DB_URL"])
    version = next(v for v in deployed.versions("celery_text") if v["logical_date"].startswith(day))
    shared = pd.read_parquet(version["storage_uri"])
    spec = load_spec(Path(af.caller_env["SYNTHCHAIN_SPECS_DIR"]) / "celery_text.yaml")
    alone = run_all(RunContext(spec, date.fromisoformat(day), "one-process", "cli", LocalStorage(tmp_path / "storage"),
                               ProvenanceStore(f"sqlite:///{tmp_path / 'provenance.db'}")))
    single = pd.read_parquet(alone["data_uri"])

    def synthetic(frame):  # the rows drawn for that date (a second date's version also carries the first's)
        ids = frame.loc[frame["_sc_origin"] == "synthetic", "_sc_row_id"]
        return sorted(ids[ids.str.contains(f"/{day}/", regex=False)])

    assert len(synthetic(shared)) > 100 and synthetic(shared) == synthetic(single)
