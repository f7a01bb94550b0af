"""README's UI command, run as a user runs it: `make airflow` on the embedded defaults, then the REST API and the UI.

Before: the README said `.venv/bin/airflow standalone`, which starts its components as `airflow ...` from PATH;
without the venv on PATH it looped on `FileNotFoundError: 'airflow'`. The test starts `make airflow` with PATH
as a user's shell has it (no venv), reads the login it prints, logs in through the token endpoint, triggers
synthchain__lending_club with a `target_rows` from the Params form, waits for success, opens /synthchain/, and
stops it with Ctrl-C (SIGINT to the process group, as a terminal sends it).
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT
from live_airflow import free_port, http_json, tail

pytestmark = pytest.mark.airflow


def _user_environment() -> dict[str, str]:
    """A user's shell: no Airflow or synthchain settings from pytest, and the venv's bin not on PATH."""
    venv_bin = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW", "SYNTHCHAIN_", "_AIRFLOW", "PYTEST", "VIRTUAL_ENV"))}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p and p != venv_bin)
    return env


def test_make_airflow_serves_the_ui_and_runs_a_triggered_dag(tmp_path):
    demo, port = tmp_path / "demo", free_port()
    log = tmp_path / "make-airflow.log"
    url = f"http://127.0.0.1:{port}"
    with open(log, "wb") as out:
        make = subprocess.Popen(["make", "airflow", f"DEMO={demo}", f"AIRFLOW_PORT={port}"], cwd=ROOT,
                                env=_user_environment(), stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        login = None
        while login is None:
            assert make.poll() is None, f"make airflow exited with {make.returncode}:\n{tail(log, 4000)}"
            assert time.monotonic() < deadline, f"no login printed within 240 s:\n{tail(log, 4000)}"
            login = re.search(r"log in as (\S+) with password (\S+)", log.read_text(errors="replace"))
            time.sleep(1)
        assert "FileNotFoundError" not in log.read_text(errors="replace")
        status, body = http_json(f"{url}/auth/token", "POST", {"username": login[1], "password": login[2]})
        assert status == 201, body
        token = body["access_token"]

        dag = "synthchain__lending_club"
        for _ in range(120):  # the dag-processor parses the synced DAG files
            if http_json(f"{url}/api/v2/dags/{dag}", token=token)[0] == 200:
                break
            time.sleep(1)
        assert http_json(f"{url}/api/v2/dags/{dag}", "PATCH", {"is_paused": False}, token)[0] == 200
        status, run = http_json(f"{url}/api/v2/dags/{dag}/dagRuns", "POST",
                               {"logical_date": None, "conf": {"target_rows": 400}}, token)
        assert status == 200, run
        run_id, state = run["dag_run_id"], None
        deadline = time.monotonic() + 600
        while state not in ("success", "failed") and time.monotonic() < deadline:
            time.sleep(3)
            state = http_json(f"{url}/api/v2/dags/{dag}/dagRuns/{run_id}", token=token)[1]["state"]
        assert state == "success", f"run {run_id} ended {state}:\n{tail(log, 6000)}"

        status, page = http_json(f"{url}/synthchain/", token=token)
        assert status == 200 and "lending_club" in page and "published" in page, page[:2000]
        # what the run published, recorded in the demo's embedded provenance store (SQLite under DEMO)
        assert (demo / "provenance.db").exists() and list((demo / "storage" / "published").rglob("data.parquet"))
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGINT)  # Ctrl-C
            try:
                make.wait(60)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(make.pid, signal.SIGKILL)  # anything left of the group (task processes)
        except ProcessLookupError:
            pass
        make.wait()
    assert "Shutting down components" in log.read_text(errors="replace"), tail(log, 3000)
