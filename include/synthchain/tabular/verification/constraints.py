"""Row-level constraint checks derived from the real-data profile."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..dtypes import to_float
from ..profile import Profile


def constraint_violations(frame: pd.DataFrame, profile: Profile) -> pd.Series:
    """Per row, a ';'-joined list of broken constraints ('' when the row is valid).

    Constraints: columns present; values inside the real [min, max]; integers
    integral; categories seen in the real data; no missing values where the real
    column has none.
    """
    missing_cols = [c for c in profile.columns if c not in frame.columns]
    if missing_cols:
        return pd.Series([f"missing columns {missing_cols}"] * len(frame), index=frame.index, dtype=object)
    problems = np.full(len(frame), "", dtype=object)

    def flag(mask: np.ndarray, label: str) -> None:
        if mask.any():
            idx = np.flatnonzero(mask)
            problems[idx] = np.where(problems[idx] == "", label, problems[idx] + ";" + label)

    for name, col in profile.columns.items():
        series = frame[name]
        isna = series.isna().to_numpy()
        if col.null_fraction == 0.0:
            flag(isna, f"{name}:null")
        if col.kind in ("numeric", "integer") and col.min is not None:
            values = to_float(series)
            with np.errstate(invalid="ignore"):
                flag(values < float(col.min), f"{name}:below_min")
                flag(values > float(col.max), f"{name}:above_max")
                if col.kind == "integer":
                    flag(~isna & (np.mod(values, 1) != 0), f"{name}:not_integer")
        elif col.kind == "datetime" and col.min is not None:
            values = pd.to_datetime(series)
            flag((values < pd.Timestamp(col.min)).to_numpy(), f"{name}:below_min")
            flag((values > pd.Timestamp(col.max)).to_numpy(), f"{name}:above_max")
        elif col.categories:
            known = ~series.astype(str).isin(list(col.categories)).to_numpy()
            flag(known & ~isna, f"{name}:unknown_category")
    return pd.Series(problems, index=frame.index, dtype=object)
