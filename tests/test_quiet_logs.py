"""A gate keeps Great Expectations' own logging (import-time registry chatter, per-run debug) out of the logs.

In an Airflow task every stdlib record that passes its logger's level reaches the
root handler (a structlog ProcessorFormatter writing the task log), so these tests
look at what reaches root handlers: pytest's caplog in this process, and Airflow's
own task-logging configuration in a fresh interpreter, where GX is first imported
(that import alone logs ~200 "Skipping registering function" lines at INFO).
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from synthchain.gates import GX_LOGGER, Batch, expect, quiet_gx, run_gate, threshold

FRAME = pd.DataFrame({"amount": [1.0, 2.0, 3.0, 4.0], "grade": ["A", "B", "A", "C"]})
PASSING = [expect("expect_column_values_to_be_between", column="amount", min_value=0, max_value=10),
           expect("expect_column_values_to_be_in_set", column="grade", value_set=["A", "B", "C"])]


def _gx_noise(records: list[logging.LogRecord]) -> list[str]:
    return [f"{r.name} {r.levelname} {r.getMessage()[:120]}" for r in records
            if (r.name == GX_LOGGER or r.name.startswith(GX_LOGGER + ".")) and r.levelno < logging.WARNING
            or "Skipping registering function" in r.getMessage()]


@pytest.fixture
def gx_levels_unset():
    """GX's parent logger at NOTSET (as Airflow leaves it), so only the gate's own quieting can hold it back."""
    gx_logger = logging.getLogger(GX_LOGGER)
    old = gx_logger.level
    gx_logger.setLevel(logging.NOTSET)
    yield gx_logger
    gx_logger.setLevel(old)


def test_gates_keep_gx_below_warning_out_and_still_report_failures(caplog, tmp_path, gx_levels_unset):
    caplog.set_level(logging.DEBUG)  # root and its handlers at DEBUG: anything GX lets through is caught

    passed = run_gate("quiet", [Batch("rows", FRAME, PASSING)], workdir=tmp_path)
    failed = run_gate("quiet", [Batch("rows", FRAME, PASSING),
                                Batch("metrics", pd.DataFrame([{"kept_fraction": 0.2}]),
                                      [threshold("kept_fraction", 0.4)])], workdir=tmp_path)

    assert _gx_noise(caplog.records) == []
    assert passed.success and passed.evaluated == 2, passed.message()
    assert not failed.success and failed.evaluated == 3
    assert [f["column"] for f in failed.failures] == ["kept_fraction"]
    assert ("[quiet/metrics] expect_column_values_to_be_between(column='kept_fraction', min_value=0.4): observed 0.2"
            in failed.message())
    assert gx_levels_unset.level == logging.NOTSET  # quiet only while the gate runs


def test_quieting_is_scoped_to_gx_and_below_warning(caplog, gx_levels_unset):
    import great_expectations  # noqa: F401  (so the level GX pins at import is the one to get back)

    caplog.set_level(logging.DEBUG)
    pinned = logging.getLogger(f"{GX_LOGGER}.data_context.types.base")  # GX pins this one to INFO itself
    pinned_level = pinned.level
    with quiet_gx():
        logging.getLogger(f"{GX_LOGGER}.core").info("gx info")
        pinned.info("gx pinned info")
        logging.getLogger(f"{GX_LOGGER}.core").warning("gx warning")
        logging.getLogger("synthchain.pipeline").debug("synthchain debug")
        logging.getLogger("synthchain.pipeline").info("synthchain info")
    messages = [r.getMessage() for r in caplog.records]
    assert "gx info" not in messages and "gx pinned info" not in messages
    assert {"gx warning", "synthchain debug", "synthchain info"} <= set(messages)
    assert pinned.level == pinned_level and gx_levels_unset.level == logging.NOTSET


# Airflow's task runner configures logging this way (task_runner.py: configure_logging(json_output=True,
# output=..., sending_to_supervisor=True)); DEBUG here so that even debug records would show.
_IN_AIRFLOW_TASK = textwrap.dedent("""
    import io, json, sys, tempfile
    import pandas as pd
    from airflow.sdk.log import configure_logging
    out = io.BytesIO()
    configure_logging(json_output=True, output=out, log_level="DEBUG", sending_to_supervisor=True)
    assert "great_expectations" not in sys.modules
    from synthchain.gates import Batch, expect, run_gate
    result = run_gate("quiet", [Batch("rows", pd.DataFrame({"x": [1, 5]}),
                                      [expect("expect_column_values_to_be_between", column="x", max_value=2)])],
                      workdir=tempfile.mkdtemp())
    import logging
    logging.getLogger("synthchain.gates").info("after the gate")
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stdout.write(json.dumps({"success": result.success, "failures": len(result.failures),
                                 "log": out.getvalue().decode(errors="replace")}))
""")


def test_first_gate_in_an_airflow_task_process_logs_no_gx_chatter(tmp_path):
    env = {**os.environ, "GX_ANALYTICS_ENABLED": "False", "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run([sys.executable, "-c", _IN_AIRFLOW_TASK], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    events = [json.loads(line) for line in report["log"].splitlines() if line.strip()]
    assert any(e.get("event") == "after the gate" for e in events), events[-5:]  # the routing works at all
    noisy = [e for e in events if str(e.get("logger", "")).startswith(GX_LOGGER)
             and e.get("level") not in ("warning", "error", "critical")
             or "Skipping registering function" in str(e.get("event"))]
    assert noisy == [], f"{len(noisy)} GX records, e.g. {noisy[:3]}"
    assert report["success"] is False and report["failures"] == 1
