"""docker-compose.yaml cannot run here (no Docker engine): validate it against the Compose spec."""
import subprocess
import sys
from pathlib import Path

import yaml

from conftest import ROOT

COMPOSE = ROOT / "docker-compose.yaml"


def test_compose_matches_compose_spec_schema():
    out = subprocess.run([str(Path(sys.executable).parent / "check-jsonschema"), "--builtin-schema",
                          "vendor.compose-spec", str(COMPOSE)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_compose_has_the_airflow3_services_and_synthchain_wiring():
    doc = yaml.safe_load(COMPOSE.read_text())
    services = doc["services"]
    assert {"postgres", "redis", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
            "airflow-worker", "airflow-triggerer", "airflow-init"} <= set(services)
    commands = {name: s.get("command") for name, s in services.items()}
    assert commands["airflow-apiserver"] == "api-server" and commands["airflow-dag-processor"] == "dag-processor"
    for name in ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-worker",
                 "airflow-triggerer"):
        env = services[name]["environment"]
        assert env["SYNTHCHAIN_DB_URL"].startswith("postgresql://") and env["SYNTHCHAIN_DB_URL"].endswith("/synthchain")
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql")
        mounts = {v.rsplit(":", 1)[-1] for v in services[name]["volumes"]}  # host paths hold ":-" defaults
        assert {"/opt/airflow/dags", "/opt/airflow/include", "/opt/airflow/plugins"} <= mounts
        assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
    init_sql = ROOT / "docker" / "postgres-init.sql"
    assert "CREATE DATABASE synthchain" in init_sql.read_text()
    assert any(v.endswith("docker-entrypoint-initdb.d/10-synthchain.sql:ro") for v in services["postgres"]["volumes"])
    assert (ROOT / "Dockerfile").read_text().startswith("# Airflow 3 image")
    assert "apache/airflow:3.3.2" in (ROOT / "Dockerfile").read_text()


def test_compose_stores_artefacts_in_minio_and_scales_celery_workers():
    doc = yaml.safe_load(COMPOSE.read_text())
    services = doc["services"]
    minio, init = services["minio"], services["minio-init"]
    assert "minio/minio:" in minio["image"] and minio["command"].startswith("server /data")
    assert any(v.endswith(":/data") for v in minio["volumes"]) and "minio-data" in doc["volumes"]
    assert minio["healthcheck"]["test"]
    # the init service makes the bucket that SYNTHCHAIN_STORAGE names, once MinIO is healthy
    assert "minio/mc:" in init["image"]
    assert init["depends_on"]["minio"]["condition"] == "service_healthy"
    script = "\n".join(init["command"])
    assert "mc alias set synthchain http://minio:9000" in script and "mc mb --ignore-existing" in script
    bucket = init["environment"]["SYNTHCHAIN_BUCKET"]
    for name in ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-worker",
                 "airflow-triggerer", "airflow-init"):
        service = services[name]
        env = service["environment"]
        assert env["SYNTHCHAIN_STORAGE"].split(":-", 1)[-1].startswith(f"s3://{bucket}/"), env["SYNTHCHAIN_STORAGE"]
        assert env["SYNTHCHAIN_S3_ENDPOINT"] == "http://minio:9000"
        assert env["AWS_ACCESS_KEY_ID"] == minio["environment"]["MINIO_ROOT_USER"]
        assert env["AWS_SECRET_ACCESS_KEY"] == minio["environment"]["MINIO_ROOT_PASSWORD"]
        assert service["depends_on"]["minio-init"]["condition"] == "service_completed_successfully"
    worker = services["airflow-worker"]
    assert worker["command"] == "celery worker" and worker["environment"]["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    # `--scale airflow-worker=N` needs no fixed container name and no published host ports
    assert "container_name" not in worker and "ports" not in worker
    assert "redis" in worker["environment"]["AIRFLOW__CELERY__BROKER_URL"]
