# synthchain: generated DAG file for spec `fine_foods` (fine_foods.yaml in the spec folder); edit the spec, not this file.
"""Airflow DAGs of spec `fine_foods`: its main line and one DAG per candidate line (see plugins/synthchain_dags.py).

One file per spec: a spec that fails validation fails only this file, and the other specs' DAGs stay active.
"""
from synthchain_dags import spec_dags

globals().update(spec_dags("fine_foods"))
