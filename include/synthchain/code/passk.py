"""pass@k with the unbiased estimator of Chen et al. (2021): 1 - C(n-c, k) / C(n, k) per problem."""
from __future__ import annotations

import numpy as np
import pandas as pd


def pass_at_k(n: int, c: int, k: int) -> float | None:
    """Chance that at least one of k draws (without replacement) from n candidates, c correct, passes."""
    if n < k or n == 0:
        return None  # too few candidates to estimate pass@k for this problem
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def pass_table(frame: pd.DataFrame, by: list[str], ks: list[int]) -> pd.DataFrame:
    """One row per group of `by` (e.g. task, source model): candidates n, passed c, pass@k for each k."""
    grouped = frame.groupby(by, dropna=False)["passed"].agg(n="size", c="sum").reset_index()
    for k in ks:
        grouped[f"pass@{k}"] = [pass_at_k(int(n), int(c), k) for n, c in zip(grouped["n"], grouped["c"])]
    return grouped


def mean_pass(table: pd.DataFrame, k: int) -> float | None:
    values = table[f"pass@{k}"].dropna()
    return float(values.mean()) if len(values) else None
