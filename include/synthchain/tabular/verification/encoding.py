"""A numeric embedding of mixed-type rows, for distances and classifiers."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..dtypes import to_float
from ..profile import Profile

MAX_ONE_HOT = 60


class RowEncoder:
    """Continuous columns scaled by the real 1–99% range; categories one-hot (top 60).

    Missing continuous values get their own indicator column so "missing" is a
    distance, not a silent zero.
    """

    def fit(self, frame: pd.DataFrame, profile: Profile) -> "RowEncoder":
        self.plan: list[tuple[str, str, object]] = []
        for name, col in profile.columns.items():
            if col.kind in ("numeric", "integer", "datetime"):
                values = to_float(frame[name])
                lo, hi = np.nanpercentile(values, [1, 99]) if np.isfinite(values).any() else (0.0, 1.0)
                scale = (hi - lo) or (np.nanstd(values) or 1.0)
                # the indicator is decided here, once: a slice's real rows may hold no missing value where
                # its synthetic rows do, and both must be encoded with the same columns
                can_miss = bool(np.isnan(values).any()) or bool(col.null_fraction)
                self.plan.append((name, "continuous", (lo, scale, can_miss)))
            else:
                top = frame[name].astype(str).value_counts().index[:MAX_ONE_HOT].tolist()
                self.plan.append((name, "categorical", top))
        return self

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        blocks = []
        for name, kind, info in self.plan:
            if kind == "continuous":
                lo, scale, has_null = info
                values = (to_float(frame[name]) - lo) / scale
                missing = np.isnan(values)
                blocks.append(np.nan_to_num(values, nan=0.0)[:, None])
                if has_null:
                    blocks.append(missing.astype(float)[:, None])
            else:
                as_str = frame[name].astype(str).to_numpy()
                # 1/sqrt(2) so that two different categories sit at distance 1, like a full-range numeric gap.
                blocks.append((as_str[:, None] == np.asarray(info, dtype=object)[None, :]).astype(float) / np.sqrt(2))
        return np.hstack(blocks) if blocks else np.zeros((len(frame), 0))
