"""Gaussian copula synthesis, vectorised in numpy/scipy.

Each column is mapped to a standard-normal score: continuous columns through
their empirical quantile function (interpolated between knots, so sampled values
are not copies of real ones; columns with few distinct values, like rates on a
grid, keep their exact values), categorical columns through frequency intervals on
[0, 1] (as SDV's uniform encoder does). Missing values of a continuous column
become an extra binary dimension, so missingness keeps its correlations.

Conditioned sampling (a slice): every column is a monotone function of one latent
coordinate, so a condition on a numeric range, or on any set of categories or
discrete values, is a union of intervals of u = Phi(z) on that coordinate. One such
coordinate is drawn exactly from its truncated normal and the others from the
Gaussian given it; the remaining conditions are met by rejection inside that draw.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri
from scipy.stats import rankdata

from ..catalog import BUILTIN_GENERATORS
from ..generators import Generator, GeneratorError
from ..targets import Condition, Slice
from .dtypes import from_nanos, restore_dtypes, to_float
from .profile import Profile

_EPS = 1e-6
_TINY = 1e-15  # truncated draws stay this far inside (0, 1): u = 0 or 1 would be an infinite score


class _StepLookup:
    """Exact step function of a normal score z: index of the first threshold above z, fast.

    Thresholds are the normal quantiles of the cumulative probabilities, so there is no need
    to map z to [0, 1] first. A uniform grid over [-8, 8] answers most draws by table lookup;
    a cell that holds a threshold (with a 1e-9 margin for rounding) falls back to an exact
    binary search, so results equal np.searchsorted(thresholds, z, "right").
    """

    CELLS = 1 << 14
    LOW, HIGH = -8.0, 8.0

    def __init__(self, upper: np.ndarray):
        self.thresholds = ndtri(np.clip(upper, 0.0, 1.0))
        self.size = upper.size
        edges = np.linspace(self.LOW, self.HIGH, self.CELLS + 1)
        edges[0], edges[-1] = -np.inf, np.inf  # the end cells also hold the tails
        self.low = np.searchsorted(self.thresholds, edges[:-1] - 1e-9, side="right").astype(np.int64)
        self.ambiguous = self.low != np.searchsorted(self.thresholds, edges[1:] + 1e-9, side="right")
        self.scale = self.CELLS / (self.HIGH - self.LOW)

    def __call__(self, z: np.ndarray) -> np.ndarray:
        cell = np.clip(((z - self.LOW) * self.scale).astype(np.int64), 0, self.CELLS - 1)
        out = self.low[cell]
        slow = self.ambiguous[cell]
        if slow.any():
            out[slow] = np.searchsorted(self.thresholds, z[slow].astype(np.float64), side="right")
        return np.minimum(out, self.size - 1)


@dataclass
class _Continuous:
    name: str
    probs: np.ndarray
    knots: np.ndarray
    integer: bool
    datetime: bool
    discrete: bool = False  # few distinct values: sample them exactly (step CDF), don't interpolate
    lookup: _StepLookup | None = None
    null_dim: int | None = None  # index of the missing-indicator dimension, if any
    null_rate: float = 0.0


@dataclass
class _Categorical:
    name: str
    values: pd.Index  # categories in the training dtype (missing excluded)
    codes: np.ndarray  # per frequency interval: position in `values`, -1 for missing
    lookup: _StepLookup  # u -> frequency interval


class GaussianCopulaGenerator(Generator):
    family, VERSIONS = BUILTIN_GENERATORS["gaussian_copula"]
    can_condition = True

    def __init__(self, marginal_knots: int = 256, shrinkage: float = 0.0, discrete_max_values: int = 30,
                 discrete_fraction: float = 0.05):
        super().__init__(marginal_knots=marginal_knots, shrinkage=shrinkage, discrete_max_values=discrete_max_values,
                         discrete_fraction=discrete_fraction)
        self.marginal_knots = int(marginal_knots)
        self.shrinkage = float(shrinkage)
        self.discrete_max_values = int(discrete_max_values)
        self.discrete_fraction = float(discrete_fraction)

    def fit(self, data: pd.DataFrame, profile: Profile | None = None) -> "GaussianCopulaGenerator":
        rng = np.random.default_rng(0)  # jitter inside category intervals; fixed so fit is deterministic
        kinds = profile.kinds() if profile else {}
        n = len(data)
        scores: list[np.ndarray] = []
        self._continuous: list[tuple[int, _Continuous]] = []
        self._categorical: list[tuple[int, _Categorical]] = []
        pending_nulls: list[tuple[_Continuous, np.ndarray]] = []
        for name in data.columns:
            series = data[name]
            kind = kinds.get(name) or _guess_kind(series)
            if kind in ("numeric", "integer", "datetime"):
                values = to_float(series)
                missing = np.isnan(values)
                observed = values[~missing]
                if observed.size == 0:
                    kind = "categorical"
                else:
                    distinct, counts = np.unique(observed, return_counts=True)
                    if distinct.size <= max(self.discrete_max_values, self.discrete_fraction * observed.size):
                        probs, knots, discrete = np.cumsum(counts) / observed.size, distinct, True
                    else:
                        probs = np.linspace(0.0, 1.0, int(min(self.marginal_knots, max(observed.size, 2))))
                        knots, discrete = np.quantile(observed, probs), False
                    col = _Continuous(name, probs, knots, kind == "integer", kind == "datetime", discrete,
                                      _StepLookup(probs) if discrete else None)
                    u = np.full(n, 0.5)
                    u[~missing] = (rankdata(observed) - 0.5) / observed.size
                    self._continuous.append((len(scores), col))
                    scores.append(ndtri(np.clip(u, _EPS, 1 - _EPS)))
                    if missing.any():
                        pending_nulls.append((col, missing))
                    continue
            codes, uniques = pd.factorize(series.astype(object), use_na_sentinel=False)
            counts = np.bincount(codes, minlength=len(uniques)).astype(float)
            order = np.argsort(-counts, kind="stable")
            freq = counts[order] / counts.sum()
            upper = np.cumsum(freq)
            upper[-1] = 1.0
            lower = upper - freq
            rank_of = np.empty_like(order)
            rank_of[order] = np.arange(order.size)
            r = rank_of[codes]
            u = lower[r] + rng.uniform(0.0, 1.0, n) * freq[r]
            present = [v for v in uniques if not pd.isna(v)]
            position = {v: i for i, v in enumerate(present)}
            codes = np.array([-1 if pd.isna(v) else position[v] for v in uniques], dtype=np.int64)[order]
            typed = pd.Index(pd.array(present, dtype=series.dtype)) if present else pd.Index([], dtype=object)
            self._categorical.append((len(scores), _Categorical(name, typed, codes, _StepLookup(upper))))
            scores.append(ndtri(np.clip(u, _EPS, 1 - _EPS)))
        for col, missing in pending_nulls:
            p = missing.mean()
            u = np.where(missing, rng.uniform(0, p, n), p + rng.uniform(0, 1 - p, n))
            col.null_dim = len(scores)
            col.null_rate = float(p)
            scores.append(ndtri(np.clip(u, _EPS, 1 - _EPS)))
        z = np.column_stack(scores) if scores else np.zeros((n, 0))
        corr = np.corrcoef(z, rowvar=False) if z.shape[1] > 1 else np.eye(z.shape[1])
        corr = np.nan_to_num(np.atleast_2d(corr))
        corr = (1 - self.shrinkage) * corr + self.shrinkage * np.eye(corr.shape[0])
        self.cholesky_ = _psd_cholesky(corr)
        self.columns_ = list(data.columns)
        self.dtypes_ = {c: str(data[c].dtype) for c in data.columns}
        return self

    def sample(self, n: int, seed: int, conditions: Sequence[Condition] = ()) -> pd.DataFrame:
        """n rows; with `conditions`, at most n, all meeting them (rejection drops those the exact draw cannot
        guarantee)."""
        self._check_fitted()
        rng = np.random.default_rng(seed)
        # float32 is ample for sampling and halves the cost of the normal draws. Step columns
        # (discrete, categorical, missingness) compare z with normal quantiles directly; only
        # interpolated columns need u = Phi(z).
        z = rng.standard_normal((n, self.cholesky_.shape[0]), dtype=np.float32) @ self.cholesky_.T.astype(np.float32)
        if not conditions:
            return self._decode(z)
        exact = self._narrowest(conditions)
        if exact is not None:
            z = self._condition(z, *exact, rng)
        rows = self._decode(z)
        # Every condition is checked, the exact one too: the others (a second conditioned coordinate, or one no
        # interval can express) are met by rejection inside the conditioned draw.
        return rows[Slice("", tuple(conditions)).mask(rows)].reset_index(drop=True)

    def _decode(self, z: np.ndarray) -> pd.DataFrame:
        out: dict[str, object] = {}
        for dim, col in self._continuous:
            if col.discrete:
                values = col.knots[col.lookup(z[:, dim])]
            else:
                values = np.interp(ndtr(z[:, dim]), col.probs, col.knots)
            if col.integer or col.datetime:
                values = np.round(values)
            if col.null_dim is not None:
                values[z[:, col.null_dim] < ndtri(col.null_rate)] = np.nan
            out[col.name] = from_nanos(values) if col.datetime else values
        for dim, col in self._categorical:
            interval = col.lookup(z[:, dim])
            # Typed take: no per-element conversion to the column's (e.g. Arrow string) dtype.
            out[col.name] = col.values.array.take(col.codes[interval], allow_fill=True)
        return restore_dtypes(pd.DataFrame({c: out[c] for c in self.columns_}, copy=False), self.dtypes_)

    def _narrowest(self, conditions: Sequence[Condition]) -> tuple[int, np.ndarray] | None:
        """(coordinate, u-intervals) of the latent coordinate the conditions pin down most narrowly, None when
        none can be expressed as intervals. Drawing the narrowest exactly leaves the least to rejection."""
        unknown = sorted({c.column for c in conditions} - set(self.columns_))
        if unknown:
            raise GeneratorError(f"conditions on column(s) {unknown} that the generator was not fitted on")
        pinned: dict[int, np.ndarray] = {}
        for condition in conditions:
            for dim, intervals in self._intervals(condition):
                pinned[dim] = _intersect(pinned[dim], intervals) if dim in pinned else intervals
        if not pinned:
            return None
        dim = min(pinned, key=lambda d: _mass(pinned[d]))
        return dim, pinned[dim]

    def _intervals(self, condition: Condition) -> list[tuple[int, np.ndarray]]:
        """The condition as u-intervals on latent coordinates ([] when it cannot be): on its column's coordinate,
        and on the missing-indicator's when the condition excludes missing values."""
        for dim, col in self._categorical:
            if col.name == condition.column:
                upper = ndtr(col.lookup.thresholds)
                return [(dim, _steps(upper, _holds(condition, col.values.array.take(col.codes, allow_fill=True))))]
        dim, col = next((d, c) for d, c in self._continuous if c.name == condition.column)
        if condition.op == "in" and any(pd.isna(v) for v in condition.value):
            return []  # missing values meet it: the present ones alone are not the slice
        if col.discrete:
            knots = from_nanos(col.knots) if col.datetime else col.knots
            found = [(dim, _steps(col.probs, _holds(condition, knots)))]
        else:
            interval = _range(col, condition)
            if interval is None:
                return []
            found = [(dim, interval)]
        if col.null_dim is not None:
            found.append((col.null_dim, np.array([[col.null_rate, 1.0]])))
        return found

    def _condition(self, z: np.ndarray, dim: int, intervals: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """z with coordinate `dim` drawn from the normal truncated to `intervals` and the others from the
        Gaussian given it: z + corr[:, dim] * (new - z[:, dim]) is exactly that conditional (unit variances).
        In float64, so a draw near an interval's edge stays inside it."""
        z = z.astype(np.float64)
        if not len(intervals):
            return z[:0]  # the model puts no mass in the slice
        pinned = ndtri(_uniform_in(intervals, len(z), rng))
        z += np.outer(pinned - z[:, dim], self.cholesky_ @ self.cholesky_[dim])
        z[:, dim] = pinned
        return z


def _holds(condition: Condition, values) -> np.ndarray:
    return condition.mask(pd.DataFrame({condition.column: pd.Series(values)}))


def _steps(upper: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """u-intervals of the kept steps of a step function whose steps end at `upper` (the first starts at 0)."""
    lower = np.concatenate([[0.0], upper[:-1]])
    return np.column_stack([lower[keep], upper[keep]])


# which side of a threshold t an interpolated value f(u) must be on: searchsorted side for the inverse
_LOWER = {">=": "left", ">": "right"}
_UPPER = {"<=": "right", "<": "left"}


def _range(col: _Continuous, condition: Condition) -> np.ndarray | None:
    """A range condition on an interpolated column as one u-interval (f is monotone); None for other ops."""
    if condition.op not in ("between", *_LOWER, *_UPPER):
        return None
    bounds = [(">=", condition.value[0]), ("<=", condition.value[1])] if condition.op == "between" \
        else [(condition.op, condition.value)]
    lo, hi = 0.0, 1.0
    for op, value in bounds:
        t = float(pd.Timestamp(value).value) if col.datetime else float(value)
        side = _LOWER.get(op) or _UPPER[op]
        if col.integer or col.datetime:
            # published values are round(f): round(f) >= 3 when f >= 2.5, round(f) > 3 when f >= 3.5, ...
            t, side = (np.ceil(t) - 0.5 if op in (">=", "<") else np.floor(t) + 0.5), "left"
        if op in _LOWER:
            lo = max(lo, _inverse(col, t, side))
        else:
            hi = min(hi, _inverse(col, t, side))
    return np.array([[lo, hi]]) if lo < hi else np.empty((0, 2))


def _inverse(col: _Continuous, t: float, side: str) -> float:
    """The u where the interpolated quantile function crosses t; `side` "left" for the first u with f(u) >= t,
    "right" for the first with f(u) > t (they differ on a flat stretch of tied knots)."""
    j = int(np.searchsorted(col.knots, t, side=side))
    if j == 0 or j == col.knots.size:
        return 0.0 if j == 0 else 1.0
    k0, k1, p0, p1 = col.knots[j - 1], col.knots[j], col.probs[j - 1], col.probs[j]
    return float(p0 + (t - k0) / (k1 - k0) * (p1 - p0))


def _intersect(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lo, hi = np.maximum.outer(a[:, 0], b[:, 0]), np.minimum.outer(a[:, 1], b[:, 1])
    keep = lo < hi
    return np.column_stack([lo[keep], hi[keep]])


def _mass(intervals: np.ndarray) -> float:
    return float((intervals[:, 1] - intervals[:, 0]).sum())


def _uniform_in(intervals: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n draws of u uniform on a union of disjoint intervals: each z = Phi^-1(u) is then standard normal
    truncated to them."""
    widths = intervals[:, 1] - intervals[:, 0]
    ends = np.cumsum(widths)
    w = rng.random(n) * ends[-1]
    i = np.minimum(np.searchsorted(ends, w, side="right"), len(ends) - 1)
    return np.clip(intervals[i, 0] + w - (ends[i] - widths[i]), _TINY, 1 - _TINY)


def _guess_kind(series: pd.Series) -> str:
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime"
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return "numeric"
    return "categorical"


def _psd_cholesky(corr: np.ndarray) -> np.ndarray:
    """Cholesky factor of the nearest valid correlation matrix (eigenvalues clipped)."""
    if corr.size == 0:
        return corr
    try:
        return np.linalg.cholesky(corr)
    except np.linalg.LinAlgError:
        vals, vecs = np.linalg.eigh(corr)
        fixed = vecs @ np.diag(np.clip(vals, 1e-6, None)) @ vecs.T
        d = np.sqrt(np.diag(fixed))
        return np.linalg.cholesky(fixed / np.outer(d, d))
