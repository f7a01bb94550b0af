"""Where an endpoint lives and how to authenticate: from a connection, never from the spec.

The spec names a connection id (and the model). Inside Airflow the DAG registers a lookup
that reads the connection through the Task SDK; outside Airflow the same id is read from
`AIRFLOW_CONN_<ID>` (Airflow's own environment format: JSON or URI), so one setting serves
both. The library never imports Airflow.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

from .. import connections

STRUCTURED_MODES = ("json_schema", "json_object", "none")


class EndpointError(RuntimeError):
    pass


@dataclass(frozen=True)
class Endpoint:
    connection_id: str
    base_url: str
    api_key: str = field(repr=False)
    # how the server takes a JSON schema: OpenAI's `json_schema`, a schema-less `json_object`, or not at all
    structured_output: str = "json_schema"


def set_connection_lookup(lookup: Callable[[str], dict[str, Any] | None] | None) -> None:
    """Register how connections are read (the Airflow DAG passes a Task SDK reader).

    One registry serves every connection synthchain reads (endpoints, SQL sources): see synthchain.connections.
    """
    connections.set_connection_lookup(lookup)


def _from_env(conn_id: str) -> dict[str, Any] | None:
    try:
        return connections.from_env(conn_id)
    except connections.ConnectionSettingError as exc:
        raise EndpointError(str(exc)) from None


def _base_url(conn_id: str, conn: dict[str, Any], extra: dict[str, Any]) -> str:
    host = (conn.get("host") or "").strip()
    if not host:
        raise EndpointError(f"connection {conn_id!r} has no host (the endpoint's base URL)")
    if "://" in host:  # a whole URL in the host field
        return host.rstrip("/")
    scheme = extra.get("scheme") or ("https" if conn.get("conn_type") == "https" else "http")
    port = f":{conn['port']}" if conn.get("port") else ""
    path = f"/{conn['schema'].strip('/')}" if conn.get("schema") else ""
    return f"{scheme}://{host}{port}{path}"


def resolve_endpoint(conn_id: str) -> Endpoint:
    try:
        conn = connections.get_connection(conn_id)
    except connections.ConnectionSettingError as exc:
        raise EndpointError(str(exc)) from None
    if conn is None:
        raise EndpointError(
            f"connection {conn_id!r} not found: create an Airflow connection with that id (host = the endpoint's "
            f"base URL, password = API key) or set AIRFLOW_CONN_{conn_id.upper()}")
    extra = conn.get("extra") or {}
    if isinstance(extra, str):
        extra = json.loads(extra) if extra.strip() else {}
    mode = extra.get("structured_output", "json_schema")
    if mode not in STRUCTURED_MODES:
        raise EndpointError(f"connection {conn_id!r}: extra.structured_output must be one of {STRUCTURED_MODES}")
    key = conn.get("password") or extra.get("api_key") or "no-key"  # local servers take any key
    return Endpoint(conn_id, _base_url(conn_id, conn, extra), key, mode)
