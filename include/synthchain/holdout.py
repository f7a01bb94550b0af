"""The real holdout: rows set aside before anything is fitted, read only by evaluation and privacy
checks, never by generation or targeting. One deterministic split for every modality."""
from __future__ import annotations

import numpy as np
import pandas as pd


def split_holdout(frame: pd.DataFrame, fraction: float, seed: int, stratify: str | None = None
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Deterministic (train, holdout) split; stratified on the target for classification."""
    rng = np.random.default_rng(seed)
    if stratify is None:
        order = rng.permutation(len(frame))
        n_hold = max(1, int(round(len(frame) * fraction)))
        hold_idx = np.sort(order[:n_hold])
    else:
        hold_parts = []
        for _, idx in frame.groupby(stratify, dropna=False, sort=True).indices.items():
            idx = rng.permutation(idx)
            hold_parts.append(idx[: int(round(len(idx) * fraction))])
        hold_idx = np.sort(np.concatenate(hold_parts))
    mask = np.zeros(len(frame), dtype=bool)
    mask[hold_idx] = True
    return frame.loc[~mask].reset_index(drop=True), frame.loc[mask].reset_index(drop=True)
