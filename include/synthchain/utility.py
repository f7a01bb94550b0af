"""Utility claims with their noise: the paired bootstrap over holdout rows, percentile intervals, and
the rule that a miss counts only beyond the noise. Shared by every evaluator and by the pipeline's
utility gate; a modality's evaluator supplies the scorer (see tabular/evaluation.py)."""
from __future__ import annotations

from typing import Protocol

import numpy as np

BOOTSTRAP_RESAMPLES = 300
CONFIDENCE = 0.95
_CELLS_PER_CHUNK = 4_000_000  # resamples x holdout rows materialised at once


class Scorer(Protocol):
    """A metric on the holdout: at the point, and on many bootstrap resamples at once (index arrays)."""

    def point(self, pred: np.ndarray) -> float: ...

    def resampled(self, pred: np.ndarray, idx: np.ndarray) -> np.ndarray: ...


def paired_bootstrap(scorer: Scorer, predictions: dict[str, np.ndarray], resamples: int, seed: int
                     ) -> dict[str, np.ndarray]:
    """Each model's metric on the same `resamples` bootstrap resamples of the holdout rows."""
    n = len(next(iter(predictions.values())))
    rng = np.random.default_rng(seed)
    chunk = max(1, _CELLS_PER_CHUNK // max(n, 1))
    out: dict[str, list] = {name: [] for name in predictions}
    done = 0
    while done < resamples:
        b = min(chunk, resamples - done)
        idx = rng.integers(0, n, size=(b, n))
        for name, pred in predictions.items():
            out[name].append(scorer.resampled(pred, idx))
        done += b
    return {name: np.concatenate(parts) for name, parts in out.items()}


def interval(point: float, replicates: np.ndarray) -> dict:
    """Point, bootstrap standard error and 95% percentile interval (NaN-safe: undefined resamples dropped)."""
    finite = replicates[np.isfinite(replicates)]
    if not np.isfinite(point) or len(finite) < 2:
        return {"point": float(point), "se": float("nan"), "ci": [float("nan"), float("nan")]}
    tail = (1 - CONFIDENCE) / 2 * 100
    lo, hi = np.percentile(finite, [tail, 100 - tail])
    return {"point": float(point), "se": float(np.std(finite, ddof=1)), "ci": [float(lo), float(hi)]}


def shortfall_counts(point: float | None, ci: list | None, limit: float, reference: float) -> bool:
    """A figure fails its lower `limit` only when it misses the limit AND the miss is beyond the noise.

    Misses the limit: the point estimate is below `limit`. Beyond the noise: the upper end of its 95%
    interval is below `reference`, the value meaning "no loss at all" (0 for blend - trtr, 1 for tstr/trtr),
    so the loss is not a resampling accident. Without an interval (other modalities) the point alone decides."""
    if not isinstance(point, (int, float)) or not np.isfinite(point) or point >= limit:
        return False
    if not ci or not all(isinstance(v, (int, float)) and np.isfinite(v) for v in ci):
        return True
    return ci[1] < reference


def utility_drop_fails(point: float | None, ci: list | None, tolerance: float) -> bool:
    """The blend fails when blend - trtr is below -tolerance and its interval lies below 0."""
    return shortfall_counts(point, ci, -tolerance, 0.0)


def gated_figure(result: dict, key: str, limit: float, reference: float) -> float | None:
    """The figure a gate compares with `limit`: the point when its shortfall counts, else the larger of the
    point and the limit (a miss within the noise passes). None when the figure is undefined."""
    point = result.get(key)
    if isinstance(point, bool) or not isinstance(point, (int, float)) or not np.isfinite(point):
        return None
    if shortfall_counts(point, result.get(f"{key}_ci"), limit, reference):
        return float(point)
    return float(max(point, limit))


def describe_interval(result: dict, key: str) -> str:
    ci, se = result.get(f"{key}_ci"), result.get(f"{key}_se")
    if not ci or not all(isinstance(v, (int, float)) and np.isfinite(v) for v in ci):
        return f"{key} {result.get(key):.4f} (no interval)"
    return f"{key} {result[key]:+.4f} ± {se:.4f} (95% interval {ci[0]:+.4f} to {ci[1]:+.4f})"
