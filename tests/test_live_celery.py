"""CeleryExecutor scale-out on a real deployment: api-server, scheduler, dag-processor and TWO Celery workers
(Redis broker, PostgreSQL result backend) run an unchanged synthchain DAG; the generation shards land on both."""
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


def small_spec() -> dict:
    """The shipped lending_club spec, smaller and unscheduled: 800 rows in 200-row shards = 4 mapped shards.

    Without its candidate lines: one DAG is all this test needs (and all the dag-processor must parse)."""
    spec = yaml.safe_load((ROOT / "include" / "specs" / "lending_club.yaml").read_text())
    spec.pop("candidates", None)
    spec.update(name="celery_small", target_rows=800, shard_rows=200, schedule=None)
    return spec


@pytest.fixture(scope="module")
def celery_airflow(tmp_path_factory):
    import redis

    tmp = tmp_path_factory.mktemp("live-celery")
    specs, dags = spec_folders(tmp, {"celery_small": small_spec()})  # the DAG file `synthchain dags sync` writes
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


def run_once(af) -> list[dict]:
    run_id = af.trigger(DAG_ID)
    af.wait_for_run(DAG_ID, run_id, timeout=480)
    tis = af.task_instances(DAG_ID, run_id)
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
