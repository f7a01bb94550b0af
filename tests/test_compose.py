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
