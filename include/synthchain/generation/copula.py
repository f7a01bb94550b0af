"""Gaussian copula synthesis, vectorised in numpy/scipy.

Each column is mapped to a standard-normal score: continuous columns through
their empirical quantile function (interpolated between knots, so sampled values
are not copies of real ones; columns with few distinct values, like rates on a
grid, keep their exact values), categorical columns through frequency intervals on
[0, 1] (as SDV's uniform encoder does). Missing values of a continuous column
become an extra binary dimension, so missingness keeps its correlations.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri
from scipy.stats import rankdata

from ..catalog import BUILTIN_GENERATORS
from ..profiling import Profile
from .base import Generator, from_nanos, restore_dtypes, to_float

_EPS = 1e-6


@dataclass
class _Continuous:
    name: str
    probs: np.ndarray
    knots: np.ndarray
    integer: bool
    datetime: bool
    discrete: bool = False  # few distinct values: sample them exactly (step CDF), don't interpolate
    null_dim: int | None = None  # index of the missing-indicator dimension, if any
    null_rate: float = 0.0


@dataclass
class _Categorical:
    name: str
    values: np.ndarray  # object array; None stands for missing
    upper: np.ndarray  # cumulative frequency upper bounds


class GaussianCopulaGenerator(Generator):
    family, VERSIONS = BUILTIN_GENERATORS["gaussian_copula"]

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
                    col = _Continuous(name, probs, knots, kind == "integer", kind == "datetime", discrete)
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
            values = np.array([None if pd.isna(v) else v for v in uniques], dtype=object)[order]
            self._categorical.append((len(scores), _Categorical(name, values, upper)))
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

    def sample(self, n: int, seed: int) -> pd.DataFrame:
        self._check_fitted()
        rng = np.random.default_rng(seed)
        z = rng.standard_normal((n, self.cholesky_.shape[0])) @ self.cholesky_.T
        u = ndtr(z)
        out: dict[str, object] = {}
        for dim, col in self._continuous:
            if col.discrete:
                values = col.knots[np.minimum(np.searchsorted(col.probs, u[:, dim], side="right"), col.knots.size - 1)]
            else:
                values = np.interp(u[:, dim], col.probs, col.knots)
            if col.integer or col.datetime:
                values = np.round(values)
            if col.null_dim is not None:
                values[u[:, col.null_dim] < col.null_rate] = np.nan
            out[col.name] = from_nanos(values) if col.datetime else values
        for dim, col in self._categorical:
            idx = np.minimum(np.searchsorted(col.upper, u[:, dim], side="right"), col.values.size - 1)
            out[col.name] = col.values[idx]
        frame = pd.DataFrame({c: out[c] for c in self.columns_})
        return restore_dtypes(frame, self.dtypes_)


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
