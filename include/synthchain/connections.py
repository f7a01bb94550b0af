"""Connections by id: read through Airflow when the DAG registered a lookup, else from `AIRFLOW_CONN_<ID>`.

Secrets and addresses live in connections, never in a spec: a spec names the connection's id (an LLM
endpoint's, a SQL source's). Inside Airflow the DAG registers a lookup that reads connections through
the Task SDK (`set_connection_lookup`); outside Airflow the same id is read from `AIRFLOW_CONN_<ID>` in
Airflow's own environment format (JSON, or a URI parsed as Airflow parses it), so one setting serves
both. A connection is a plain dict: conn_type, host, port, schema, login, password, extra (a dict).
The library never imports Airflow.
"""
from __future__ import annotations

import json
import os
from typing import Any, Callable
from urllib.parse import parse_qsl, unquote, urlsplit

Lookup = Callable[[str], "dict[str, Any] | None"]

_lookup: Lookup | None = None


class ConnectionSettingError(ValueError):
    """A connection exists but cannot be read (e.g. `AIRFLOW_CONN_<ID>` is not valid JSON); names the id."""


def set_connection_lookup(lookup: Lookup | None) -> None:
    """Register how connections are read (the Airflow DAG passes a Task SDK reader); None: environment only."""
    global _lookup
    _lookup = lookup


def env_name(conn_id: str) -> str:
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def get_connection(conn_id: str) -> dict[str, Any] | None:
    """The connection `conn_id` as a dict (registered lookup first, then the environment); None if undefined."""
    conn = (_lookup(conn_id) if _lookup else None) or from_env(conn_id)
    if conn is None:
        return None
    conn = dict(conn)
    extra = conn.get("extra") or {}
    if isinstance(extra, str):
        try:
            extra = json.loads(extra) if extra.strip() else {}
        except json.JSONDecodeError as exc:
            raise ConnectionSettingError(f"connection {conn_id!r}: its extra is not valid JSON: {exc}") from None
    conn["extra"] = extra
    return conn


def from_env(conn_id: str) -> dict[str, Any] | None:
    """`AIRFLOW_CONN_<ID>` as a connection dict: JSON as it is, a URI as Airflow's Connection.from_uri reads it."""
    name = env_name(conn_id)
    raw = os.environ.get(name)
    if not raw:
        return None
    if raw.lstrip().startswith("{"):
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ConnectionSettingError(f"connection {conn_id!r}: {name} is not valid JSON: {exc}") from None
    return parse_connection_uri(raw)


def parse_connection_uri(uri: str) -> dict[str, Any]:
    """A connection URI as Airflow parses it (airflow.sdk Connection.from_uri), without importing Airflow.

    `postgresql://` gives conn_type `postgres`; a host holding a path (`sqlite://%2Fdata%2Fx.db`) keeps its case;
    `?__extra__=<json>` is the extra as JSON, other query parameters are the extra's keys.
    """
    parts = urlsplit(uri)
    conn_type = parts.scheme
    conn_type = "postgres" if conn_type == "postgresql" else conn_type.replace("-", "_")
    nested = uri.count("://") == 2  # `http://https://host`: the host keeps its own protocol
    rest = uri.replace(f"{parts.scheme}://", "" if nested else "//", 1)
    parts = urlsplit(rest)
    host = unquote(parts.hostname or "")
    if "/" in host:  # a path in the host field: hostname lowercased it; take it from the netloc as written
        host = parts.netloc.rsplit("@", 1)[-1].split(":", 1)[0]
        host = unquote(host)
    if nested and host:
        host = f"{parts.scheme}://{host}"
    extra: dict[str, Any] = {}
    if parts.query:
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        extra = json.loads(query["__extra__"]) if "__extra__" in query else query
    return {"conn_type": conn_type, "host": host, "port": parts.port,
            "schema": unquote(parts.path[1:]) if parts.path[1:] else "",
            "login": unquote(parts.username) if parts.username else parts.username,
            "password": unquote(parts.password) if parts.password else parts.password,
            "extra": extra}
