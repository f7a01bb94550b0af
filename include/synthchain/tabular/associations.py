"""Pairwise association between columns of mixed types, each measure in [0, 1] or [-1, 1].

numeric–numeric          Spearman rank correlation (signed; monotone, robust to skew and outliers)
numeric–categorical      correlation ratio eta = sqrt(between-group / total sum of squares)
categorical–categorical  Cramér's V

Both eta and V are bias-corrected unless asked otherwise (epsilon² for eta, Bergsma 2013 for V):
uncorrected, two independent columns with many levels score well above 0 on a few thousand rows,
which would read as an association the synthetic data failed (or managed) to keep.

Datetimes count as numeric (nanoseconds), booleans as categorical with two levels. Every pair
uses the rows where both columns are present. A pair is undefined (NaN, never a crash) when a
column is constant on those rows or fewer than three rows remain.

Cost is bounded: frames over `max_rows` are sampled, and a categorical column keeps its
`max_levels - 1` most frequent levels plus "other". The level set is taken from one frame and
applied to the other (`compare_associations`), so real and synthetic tables have the same cells.
All categorical pairs' contingency tables, and all categorical–numeric group sums, come from one
sparse one-hot matrix product each: a row missing in a column has no 1 in that column's block,
which is what drops it pairwise.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import sparse

from .dtypes import to_float
from .profile import column_kind

MAX_ROWS = 50_000
MAX_LEVELS = 20
MIN_PAIR_ROWS = 3
NUMERIC_KINDS = ("numeric", "integer", "datetime")


def _labels(series: pd.Series) -> pd.Series:
    """Levels as strings, whole numbers without ".0": a class column read as int64 in real rows and float64
    in synthetic ones (where a missing value made it float) must still have the same levels."""
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        values = series.dropna()
        if len(values) and np.all(np.mod(values, 1) == 0) and values.abs().max() < 2**53:
            return series.astype("Int64").astype(str)
    return series.astype(str)


def kept_levels(series: pd.Series, max_levels: int = MAX_LEVELS) -> list[str]:
    """The most frequent levels, as strings; when there are more than `max_levels`, room is left for "other"."""
    counts = _labels(series.dropna()).value_counts()
    return list(counts.index if len(counts) <= max_levels else counts.index[: max_levels - 1])


def _codes(series: pd.Series, levels: list[str]) -> np.ndarray:
    """Level index per row; len(levels) for "other", -1 for missing."""
    present = series.notna().to_numpy()
    index = pd.Index(levels).get_indexer(_labels(series))
    codes = np.where(index >= 0, index, len(levels))
    return np.where(present, codes, -1)


def _one_hot(codes: list[np.ndarray], widths: list[int]) -> sparse.csr_matrix:
    """Rows × (sum of widths), one block per column; a missing cell leaves its row of the block empty."""
    n = len(codes[0]) if codes else 0
    offsets = np.cumsum([0, *widths[:-1]]) if widths else []
    rows, cols = [], []
    for c, off in zip(codes, offsets):
        present = c >= 0
        rows.append(np.flatnonzero(present))
        cols.append(c[present] + off)
    if not rows:
        return sparse.csr_matrix((n, 0))
    data = np.ones(sum(len(r) for r in rows))
    return sparse.csr_matrix((data, (np.concatenate(rows), np.concatenate(cols))), shape=(n, sum(widths)))


def cramers_v(table: np.ndarray, bias_corrected: bool = True) -> float:
    """Cramér's V of a contingency table (empty rows and columns ignored); NaN when undefined."""
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    n = table.sum()
    r, k = table.shape
    if n < MIN_PAIR_ROWS or r < 2 or k < 2:
        return float("nan")
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / n
    phi2 = ((table - expected) ** 2 / expected).sum() / n
    if not bias_corrected:
        return float(np.sqrt(phi2 / (min(r, k) - 1)))
    # Bergsma (2013): the uncorrected V is biased upward by about (r-1)(k-1)/(n-1) on small or sparse tables
    phi2 = max(0.0, phi2 - (r - 1) * (k - 1) / (n - 1))
    r_corr, k_corr = r - (r - 1) ** 2 / (n - 1), k - (k - 1) ** 2 / (n - 1)
    denom = min(r_corr, k_corr) - 1
    return float(np.sqrt(min(phi2 / denom, 1.0))) if denom > 0 else float("nan")


def _eta(onehot: sparse.csr_matrix, blocks: list[slice], x: np.ndarray, bias_corrected: bool) -> np.ndarray:
    """Correlation ratio of every (categorical block, numeric column): len(blocks) × x.shape[1]."""
    present = ~np.isnan(x)
    n_col = present.sum(axis=0)
    filled = np.where(present, x, 0.0)
    mean = filled.sum(axis=0) / np.maximum(n_col, 1)
    # centred: sums of squares of raw datetimes (~1e18 ns) would lose every digit to cancellation
    centred = np.where(present, x - mean, 0.0)
    spread = (centred**2).sum(axis=0) / np.maximum(n_col, 1)  # the column's variance over all its rows
    counts = np.asarray(onehot.T @ present.astype(float))
    sums = np.asarray(onehot.T @ centred)
    squares = np.asarray(onehot.T @ centred**2)
    out = np.full((len(blocks), x.shape[1]), np.nan)
    for i, block in enumerate(blocks):
        c, s, q = counts[block], sums[block], squares[block]
        n, total = c.sum(axis=0), s.sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            grand = np.where(n > 0, total**2 / n, 0.0)
            between = np.where(c > 0, s**2 / c, 0.0).sum(axis=0) - grand
            within_total = q.sum(axis=0) - grand
            eta2 = np.clip(between / within_total, 0.0, 1.0)
            groups = (c > 0).sum(axis=0)
            if bias_corrected:  # epsilon²: eta² of k groups of pure noise is about (k-1)/(n-1), not 0
                eta2 = np.clip(1 - (1 - eta2) * (n - 1) / (n - groups), 0.0, 1.0)
            eta = np.sqrt(eta2)
        # a constant column leaves rounding noise, not an exact zero, in its total sum of squares
        varies = within_total > 1e-9 * n * spread
        defined = (n > groups) & (n >= MIN_PAIR_ROWS) & (groups >= 2) & (spread > 0) & varies
        out[i] = np.where(defined, eta, np.nan)
    return out


def _sample(frame: pd.DataFrame, max_rows: int, seed: int) -> pd.DataFrame:
    return frame.sample(max_rows, random_state=seed) if len(frame) > max_rows else frame


def is_numeric_kind(kind: str) -> bool:
    return kind in NUMERIC_KINDS


def association_matrix(frame: pd.DataFrame, kinds: dict[str, str] | None = None, *,
                       levels: dict[str, list[str]] | None = None, bias_corrected: bool = True,
                       max_rows: int = MAX_ROWS, max_levels: int = MAX_LEVELS, seed: int = 0) -> pd.DataFrame:
    """Symmetric columns × columns association; NaN where undefined (diagonal: 1 unless the column is constant).

    `kinds` are profile kinds (numeric, integer, datetime, categorical, boolean), read from the dtypes
    when absent; `levels` fixes each categorical column's kept levels (default: this frame's most frequent).
    """
    frame = _sample(frame, max_rows, seed)
    names = list(frame.columns)
    kinds = {n: (kinds or {}).get(n) or column_kind(frame[n]) for n in names}
    numeric = [n for n in names if is_numeric_kind(kinds[n])]
    categorical = [n for n in names if not is_numeric_kind(kinds[n])]
    out = pd.DataFrame(np.nan, index=names, columns=names)

    x = np.column_stack([to_float(frame[n]) for n in numeric]) if numeric else np.empty((len(frame), 0))
    if numeric:
        spearman = pd.DataFrame(x, columns=numeric).corr(method="spearman", min_periods=MIN_PAIR_ROWS)
        out.loc[numeric, numeric] = spearman.to_numpy()

    kept = {n: (levels or {}).get(n) or kept_levels(frame[n], max_levels) for n in categorical}
    codes = [_codes(frame[n], kept[n]) for n in categorical]
    widths = [len(kept[n]) + 1 for n in categorical]
    onehot = _one_hot(codes, widths)
    starts = np.cumsum([0, *widths])
    blocks = [slice(a, b) for a, b in zip(starts[:-1], starts[1:])]
    if categorical and numeric:
        eta = _eta(onehot, blocks, x, bias_corrected)
        out.loc[categorical, numeric] = eta
        out.loc[numeric, categorical] = eta.T
    if categorical:
        tables = (onehot.T @ onehot).toarray()
        for i, a in enumerate(categorical):
            for j in range(i, len(categorical)):
                v = cramers_v(tables[blocks[i], blocks[j]], bias_corrected)
                out.loc[a, categorical[j]] = out.loc[categorical[j], a] = v
    # a defined diagonal says the column varies; Spearman and V give exactly 1 there, eta has no diagonal
    for n in names:
        if not np.isnan(out.loc[n, n]):
            out.loc[n, n] = 1.0
    return out


@dataclass
class AssociationComparison:
    real: pd.DataFrame
    synthetic: pd.DataFrame
    abs_difference: pd.DataFrame  # |synthetic − real|, NaN where either is undefined
    mean_abs_difference: float | None  # over column pairs (off the diagonal) defined on both sides
    pairs: int
    undefined: list[str] = field(default_factory=list)  # columns constant (or empty) in real or synthetic rows


def compare_associations(real: pd.DataFrame, synth: pd.DataFrame, kinds: dict[str, str] | None = None,
                         **options) -> AssociationComparison:
    """Association matrices of real and synthetic rows over the real columns, with one level set (the real one)."""
    names = list(real.columns)
    kinds = {n: (kinds or {}).get(n) or column_kind(real[n]) for n in names}
    max_levels = options.pop("max_levels", MAX_LEVELS)
    levels = {n: kept_levels(real[n], max_levels) for n in names if not is_numeric_kind(kinds[n])}
    r = association_matrix(real, kinds, levels=levels, max_levels=max_levels, **options)
    s = association_matrix(synth.reindex(columns=names), kinds, levels=levels, max_levels=max_levels, **options)
    diff = (s - r).abs()
    upper = np.triu(np.ones(diff.shape, dtype=bool), k=1)
    values = diff.to_numpy()[upper]
    values = values[~np.isnan(values)]
    undefined = [n for n in names if np.isnan(r.loc[n, n]) or np.isnan(s.loc[n, n])]
    return AssociationComparison(r, s, diff, float(values.mean()) if values.size else None, int(values.size), undefined)
