"""Rounds until verified quotas are met: which kept rows count for their slice, and what to draw next.

Round 0 is the mapped generation the DAG shows. If a slice is still short of its quota of kept rows
after verification and filtering, the filtering hop draws more rows for that slice (round 1, 2, ...),
verifies and filters the whole pool again, and stops when every quota is met or a budget runs out:
`targets.max_rounds` extra rounds, at most `targets.max_draw_factor` x quota rows drawn per slice.
Every drawn row is seeded from (spec, date, generator, round, slice), so a re-run after a crash or a kill
draws the same rows (an endpoint generator's replies come from its cache) and publishes the same set.

The loop runs inside the filtering task, not as more Airflow tasks: the number of rounds is data-dependent,
and a fixed set of round task groups would show empty groups on most runs while a spec with more rounds
would need a different DAG. The rounds are visible per slice in the version's `targets` metrics, the
report and the UI page, and each kept row carries `_sc_round` and `_sc_target`.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

from .targets import WHOLE, Slice

MIN_KEEP_RATE = 0.1  # a slice whose rows are almost all dropped gets at most 10x its deficit per round
OVERDRAW = 1.2  # draw a little more than the keep rate says: the next round costs a whole verification pass


def enforce(rows: pd.DataFrame, slices: Sequence[Slice]) -> tuple[np.ndarray, np.ndarray]:
    """Keep/drop per kept row: a row outside its own slice is dropped ("slice"), and so is a row beyond its
    slice's quota ("quota"; earlier rounds first, then row order). Returns (keep, reason) arrays."""
    keep = np.ones(len(rows), dtype=bool)
    reasons = np.full(len(rows), None, dtype=object)
    target = rows["_sc_target"].to_numpy(dtype=object) if "_sc_target" in rows else np.full(len(rows), WHOLE)
    order = np.lexsort((np.arange(len(rows)), _rounds(rows)))
    for piece in slices:
        mine = target == piece.name
        outside = mine & ~piece.mask(rows)
        keep[outside] = False
        reasons[outside] = f"slice: outside its slice {piece.name} ({piece.words()})"
        inside = order[(mine & keep)[order]]
        surplus = inside[piece.quota:]
        keep[surplus] = False
        reasons[surplus] = f"quota: slice {piece.name} already has its {piece.quota} rows"
    unknown = ~np.isin(target, [s.name for s in slices])
    keep[unknown] = False
    reasons[unknown] = "slice: drawn for a slice this run does not have"
    return keep, reasons


def _rounds(rows: pd.DataFrame) -> np.ndarray:
    if "_sc_round" not in rows:
        return np.zeros(len(rows), dtype=int)
    return rows["_sc_round"].fillna(0).to_numpy(dtype=int)


def counts(rows: pd.DataFrame) -> dict[str, int]:
    if "_sc_target" not in rows or rows.empty:
        return {}
    return {str(k): int(v) for k, v in rows["_sc_target"].value_counts().items()}


def top_up(slices: Sequence[Slice], kept: dict[str, int], generated: dict[str, int], max_draw_factor: float
           ) -> dict[str, int]:
    """Rows to draw next per slice still short: its deficit over its keep rate so far, within its budget."""
    out = {}
    for piece in slices:
        deficit = piece.quota - kept.get(piece.name, 0)
        if deficit <= 0:
            continue
        made = generated.get(piece.name, 0)
        rate = max(kept.get(piece.name, 0) / made, MIN_KEEP_RATE) if made else 1.0
        budget = int(piece.quota * max_draw_factor) - made
        n = min(math.ceil(deficit / rate * OVERDRAW), budget)
        if n > 0:
            out[piece.name] = n
    return out


def accounting(slices: Sequence[Slice], planned: dict[str, int], generated: dict[str, int], kept: dict[str, int],
               rounds: dict[str, int], acceptance: dict[str, dict]) -> list[dict]:
    """Per slice: its rule and why, quota, rows planned / generated / kept, shortfall and rounds used."""
    out = []
    for piece in slices:
        got = kept.get(piece.name, 0)
        short = max(piece.quota - got, 0)
        out.append({**piece.record(), "planned": planned.get(piece.name, 0), "generated": generated.get(piece.name, 0),
                    "kept": got, "shortfall": short, "shortfall_share": short / piece.quota if piece.quota else 0.0,
                    "rounds": rounds.get(piece.name, 0), **({"sampling": acceptance[piece.name]}
                                                            if piece.name in acceptance else {})})
    return out
