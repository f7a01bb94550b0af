"""Airflow dags-folder check: every synthchain spec has its own DAG file (`synthchain dags sync` writes them).

A spec added without its DAG file would otherwise be silently missing from Airflow; this file's
import error says which, and defines no DAG, so it takes nothing else down.
"""
from pathlib import Path

from synthchain.ops.dagfiles import plan_sync
from synthchain_airflow import specs_dir

_plan = plan_sync(specs_dir(), Path(__file__).resolve().parent)
if not _plan.in_step:
    raise ImportError(
        "synthchain DAG files are out of step with the spec folder "
        f"{specs_dir()}: missing or outdated {[p.name for p in _plan.write]}, left over {[p.name for p in _plan.remove]}; "
        "run `synthchain dags sync`")
