"""Airflow-side helpers shared by the synthchain DAG files (the plugins folder is on sys.path)."""
from __future__ import annotations

import os
from pathlib import Path

PROVENANCE_CONN_ID = "synthchain_provenance"


def specs_dir() -> Path:
    """Spec folder: $SYNTHCHAIN_SPECS_DIR, else include/specs beside the project's dags/ and plugins/."""
    return Path(os.environ.get("SYNTHCHAIN_SPECS_DIR") or Path(__file__).resolve().parent.parent / "include" / "specs")


def airflow_connection(conn_id: str) -> dict | None:
    """An Airflow connection as a plain dict for synthchain.llm.endpoint (None when it does not exist)."""
    try:
        from airflow.sdk import Connection

        conn = Connection.get(conn_id)
    except Exception:  # not defined in Airflow: synthchain falls back to AIRFLOW_CONN_<ID>
        return None
    return {"conn_type": conn.conn_type, "host": conn.host, "port": conn.port, "schema": conn.schema,
            "login": conn.login, "password": conn.password, "extra": conn.extra_dejson}


def provenance_url() -> str | None:
    """$SYNTHCHAIN_DB_URL, else the `synthchain_provenance` Airflow connection, else None (embedded default)."""
    if os.environ.get("SYNTHCHAIN_DB_URL"):
        return os.environ["SYNTHCHAIN_DB_URL"]
    try:
        from airflow.sdk import Connection

        return Connection.get(PROVENANCE_CONN_ID).get_uri().replace("postgres://", "postgresql://", 1)
    except Exception:  # no such connection: the store falls back to its embedded default
        return None
