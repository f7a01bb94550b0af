"""Blending: real rows are always kept; synthetic rows are added up to a share.

`accumulate` carries the previous published version's synthetic rows forward
(capped), `replace` uses only this run's. Real data is never replaced.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass
class BlendPlan:
    real_rows: int
    new_synthetic: int
    carried_synthetic: int
    budget: int

    @property
    def synthetic_share(self) -> float:
        total = self.real_rows + self.new_synthetic + self.carried_synthetic
        return (self.new_synthetic + self.carried_synthetic) / total if total else 0.0


def synthetic_budget(real_rows: int, real_fraction: float) -> int:
    """How many synthetic rows keep real rows at `real_fraction` of the blend."""
    if real_fraction >= 1.0:
        return 0
    return int(np.floor(real_rows * (1.0 - real_fraction) / real_fraction + 1e-9))  # 100·0.2/0.8 is 24.999…


def blend(real: pd.DataFrame, new_synthetic: pd.DataFrame, previous_synthetic: pd.DataFrame | None,
          real_fraction: float, mode: str, max_carried_fraction: float, seed: int) -> tuple[pd.DataFrame, BlendPlan]:
    """Concatenate real + synthetic rows (all carrying their lineage columns)."""
    rng = np.random.default_rng(seed)
    budget = synthetic_budget(len(real), real_fraction)
    carried = previous_synthetic if (mode == "accumulate" and previous_synthetic is not None) else None
    n_carry = 0
    if carried is not None and len(carried):
        n_carry = min(len(carried), int(budget * max_carried_fraction))
    n_new = min(len(new_synthetic), budget - n_carry)
    if carried is not None and n_new + n_carry < budget:  # fewer new rows than room: carry more
        n_carry = min(len(carried), budget - n_new)
    parts = [real]
    if n_new:
        parts.append(new_synthetic.iloc[np.sort(rng.choice(len(new_synthetic), n_new, replace=False))])
    if n_carry:
        parts.append(carried.iloc[np.sort(rng.choice(len(carried), n_carry, replace=False))])
    out = pd.concat(parts, ignore_index=True)
    return out, BlendPlan(len(real), n_new, n_carry, budget)
