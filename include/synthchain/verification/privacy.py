"""Privacy checks: exact copies, distance to closest record, nearest-neighbour ratio.

The holdout is the baseline: real rows the generators never saw. A synthetic row
that sits much closer to a training row than fresh real rows do is a likely
memorised copy.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .neighbours import NeighbourIndex


def row_hashes(frame: pd.DataFrame) -> np.ndarray:
    """Content hash of each row (data columns only), stable across runs and dtypes."""
    canon = frame.astype(str).where(frame.notna(), "<NA>")
    return pd.util.hash_pandas_object(canon, index=False).to_numpy(dtype=np.uint64)


def exact_copy_mask(synth: pd.DataFrame, train: pd.DataFrame) -> np.ndarray:
    return np.isin(row_hashes(synth[train.columns]), row_hashes(train))


def privacy_report(synth_x: np.ndarray, train_x: np.ndarray, holdout_x: np.ndarray,
                   method: str = "auto") -> tuple[dict, dict]:
    """(summary metrics, per-row arrays) from encoded synthetic, training and holdout rows.

    The neighbour search is exact on small tables and near-linear on large ones (see neighbours.py);
    the summary names the path taken (`dcr_method`, `dcr_index`) so the report can state it.
    """
    to_train = NeighbourIndex(train_x, planned_queries=len(synth_x) + len(holdout_x), method=method)
    d2 = to_train.distances(synth_x, k=2)
    dcr_train = d2[:, 0]
    nndr = np.divide(d2[:, 0], d2[:, 1], out=np.ones_like(d2[:, 0]), where=d2[:, 1] > 0) if d2.shape[1] > 1 else np.ones(len(d2))
    # DCR share: is each synthetic row closer to a training row than to any holdout row? For rows drawn
    # fresh from the real distribution the nearest of the pooled rows is equally likely to be any of them,
    # so the null rate is n_train / (n_train + n_holdout); the share is odds-adjusted to put that at 0.5.
    to_holdout = NeighbourIndex(holdout_x, planned_queries=len(synth_x), method=method)
    to_hold = to_holdout.distances(synth_x, k=1)[:, 0]
    raw = float(np.mean(dcr_train < to_hold) + 0.5 * np.mean(dcr_train == to_hold))
    null = len(train_x) / (len(train_x) + len(holdout_x))
    closer = raw * (1 - null) / (raw * (1 - null) + (1 - raw) * null) if 0 < raw < 1 else raw
    baseline = to_train.distances(holdout_x, k=1)[:, 0]  # how close fresh real rows come to training rows
    search = to_train.describe()
    summary = {
        "dcr_closer_share": float(closer),
        "dcr_closer_share_raw": raw,
        "dcr_closer_null_rate": null,
        "dcr_median": float(np.median(dcr_train)),
        "dcr_holdout_median": float(np.median(baseline)),
        "dcr_p05": float(np.quantile(dcr_train, 0.05)),
        "dcr_holdout_p05": float(np.quantile(baseline, 0.05)),
        "nndr_median": float(np.median(nndr)),
        "nndr_p05": float(np.quantile(nndr, 0.05)),
        "dcr_method": search["method"],
        "dcr_index": search["index"],
        "dcr_reference_rows": search["reference_rows"],
        "dcr_distinct_reference_rows": search["distinct_reference_rows"],
        "dcr_holdout_method": to_holdout.describe()["method"],
    }
    if to_train.method == "ivf":  # the approximation's own error, measured on a sample against exact search
        summary |= {f"dcr_audit_{k}": v for k, v in to_train.audit(synth_x).items()}
    return summary, {"dcr": dcr_train, "nndr": nndr, "holdout_dcr": baseline}
