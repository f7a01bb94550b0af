"""Tabular values as floats and back: what the copula, CART, verification and monitors compute on
(datetimes as nanoseconds, booleans and nullable integers as numbers), and the training dtypes restored
on sampled columns."""
from __future__ import annotations

import numpy as np
import pandas as pd


def restore_dtypes(frame: pd.DataFrame, like: dict[str, str]) -> pd.DataFrame:
    """Cast sampled columns back to the training dtypes (nullable ints where NaN appears).

    Columns already in the right dtype are left alone: sampling speed depends on it.
    """
    for col, dtype in like.items():
        s = frame[col]
        if str(s.dtype) == dtype and not (dtype.startswith(("int", "uint")) and s.isna().any()):
            continue
        try:
            if dtype.startswith(("int", "Int", "uint")):
                s = s.round().astype("Int64") if s.isna().any() else s.round().astype(dtype)
            elif dtype.startswith("datetime"):
                s = pd.to_datetime(s).astype(dtype)
            elif dtype == "bool":
                s = s.astype("boolean") if s.isna().any() else s.astype(bool)
            elif dtype.startswith("float"):
                s = s.astype(float)
            else:
                s = s.astype(dtype)
        except (TypeError, ValueError):
            continue
        frame[col] = s
    return frame


def to_float(series: pd.Series) -> np.ndarray:
    """Continuous columns as float64 (datetimes as int64 nanoseconds, whatever their unit), NaN for missing."""
    if pd.api.types.is_datetime64_any_dtype(series):
        nanos = series.to_numpy(dtype="datetime64[ns]").view("int64").astype(float)
        nanos[series.isna().to_numpy()] = np.nan
        return nanos
    return pd.to_numeric(series, errors="coerce").astype(float).to_numpy()


def from_nanos(values: np.ndarray) -> pd.Series:
    return pd.Series(pd.to_datetime(values, unit="ns"))
