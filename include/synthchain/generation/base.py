"""The generator contract: a small estimator with `fit` and `sample`.

Modelled on scikit-learn/SDV estimators: construct with params, `fit` on a frame
(plus its profile), `sample(n, seed)` returns n new rows with the same columns.
The same fitted generator and seed must give the same rows.
"""
from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..profiling import Profile


class GeneratorError(ValueError):
    pass


class Generator(ABC):
    family: ClassVar[str] = "custom"
    #: version label -> default params; a built-in refuses versions it does not know.
    VERSIONS: ClassVar[dict[str, dict[str, Any]]] = {}

    def __init__(self, **params: Any):
        self.params = params
        self.columns_: list[str] | None = None

    @abstractmethod
    def fit(self, data: pd.DataFrame, profile: Profile) -> "Generator": ...

    @abstractmethod
    def sample(self, n: int, seed: int) -> pd.DataFrame: ...

    def _check_fitted(self) -> None:
        if self.columns_ is None:
            raise GeneratorError(f"{type(self).__name__} must be fitted before sampling")


def derive_seed(*parts: Any) -> int:
    """A 63-bit seed from the run's identity: same inputs, same rows, on any worker."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


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
