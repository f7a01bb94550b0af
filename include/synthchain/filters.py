"""The filter contract and runner, for every modality.

As in datatrove, a filter is a small block that decides keep/drop per row with a reason, sees only the
rows earlier filters kept, and throws nothing away: dropped rows come back with the filter's name and
reason so they can be stored for audit. A modality supplies its filters (tabular/filters.py,
text/filters.py) and the input they read.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass
class Decision:
    keep: np.ndarray  # bool per row
    reasons: np.ndarray  # object per row; only read where keep is False
    metrics: dict


class RowFilter(ABC):
    """A block that decides keep/drop per row. `data` is its modality's filter input (with `rows`, `subset`)."""

    name: str = "filter"

    @abstractmethod
    def decide(self, data) -> Decision: ...


def run_filters(filters: list[RowFilter], data) -> tuple[np.ndarray, pd.DataFrame, dict]:
    """Apply filters in order. Returns (keep mask, dropped index/filter/reason, per-filter metrics).

    `data` is any modality's filter input: it has `rows` and `subset(index)`.
    """
    keep = np.ones(len(data.rows), dtype=bool)
    dropped = []
    metrics: dict[str, dict] = {}
    for block in filters:
        idx = np.flatnonzero(keep)
        decision = block.decide(data.subset(idx))
        gone = idx[~decision.keep]
        keep[gone] = False
        dropped.append(pd.DataFrame({"index": gone, "filter": block.name, "reason": decision.reasons[~decision.keep]}))
        metrics[block.name] = {**decision.metrics, "dropped": int(gone.size), "seen": int(idx.size)}
    return keep, pd.concat(dropped, ignore_index=True), metrics
