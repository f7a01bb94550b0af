"""Tabular collapse monitors: variance, tails, correlations, detectability and TSTR utility per generation.
Registered on import (the registry in modalities.py names this module for "tabular")."""
from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from ..collapse.monitors import Monitor, MonitorInput, register
from .dtypes import to_float


def _continuous(profile) -> list[str]:
    return [n for n, c in profile.columns.items() if c.kind in ("numeric", "integer", "datetime") and c.n_unique > 1]


class VarianceRatio(Monitor):
    name = "variance_ratio"
    modality = "tabular"
    description = "median over continuous columns of synthetic / real variance (both winsorised at the real 0.5–99.5%)"

    def measure(self, data: MonitorInput) -> float | None:
        ratios = []
        for col in _continuous(data.profile):
            r, s = to_float(data.real[col]), to_float(data.synthetic[col])
            r, s = r[~np.isnan(r)], s[~np.isnan(s)]
            if r.size < 2 or s.size < 2:
                continue
            lo, hi = np.quantile(r, [0.005, 0.995])
            var_r = np.clip(r, lo, hi).var()
            if var_r > 0:
                ratios.append(np.clip(s, lo, hi).var() / var_r)
        return float(np.median(ratios)) if ratios else None


class TailCoverage(Monitor):
    name = "tail_coverage"
    modality = "tabular"
    description = ("how much of the real mass in rare categories (<5%) and extreme quantile bins synthetic rows "
                   "keep: mean of min(1, synthetic share / real share)")
    RARE = 0.05
    TAIL_QUANTILES = (0.0, 0.001, 0.005, 0.01, 0.025, 0.975, 0.99, 0.995, 0.999, 1.0)

    def measure(self, data: MonitorInput) -> float | None:
        n = len(data.synthetic)
        if n == 0:
            return 0.0
        kept: list[float] = []  # per rare cell: share of its real mass still present, capped at 1
        for name, col in data.profile.columns.items():
            if col.kind in ("categorical", "boolean"):
                shares = data.synthetic[name].astype(str).value_counts(normalize=True)
                kept += [min(1.0, shares.get(c, 0.0) / f) for c, f in col.categories.items() if f < self.RARE]
        for name in _continuous(data.profile):
            r, s = to_float(data.real[name]), to_float(data.synthetic[name])
            r, s = r[~np.isnan(r)], s[~np.isnan(s)]
            edges = np.quantile(r, self.TAIL_QUANTILES)
            for lo, hi in zip(edges[:-1], edges[1:]):
                if hi <= lo:  # a tied bin (e.g. a spike at zero) says nothing about tails
                    continue
                real_share = np.mean((r >= lo) & (r <= hi))
                if real_share > 0.1:  # the bulk between the tails
                    continue
                kept.append(min(1.0, np.mean((s >= lo) & (s <= hi)) / real_share))
        return float(np.mean(kept)) if kept else None


class CorrelationDrift(Monitor):
    name = "correlation_drift"
    modality = "tabular"
    higher_is_better = False
    relative = False
    description = "mean absolute difference of real and synthetic Spearman correlations"

    def measure(self, data: MonitorInput) -> float | None:
        cols = _continuous(data.profile)
        if len(cols) < 2:
            return None
        r = pd.DataFrame({c: to_float(data.real[c]) for c in cols}).corr(method="spearman")
        s = pd.DataFrame({c: to_float(data.synthetic[c]) for c in cols}).corr(method="spearman")
        diffs = [abs(r.loc[a, b] - s.loc[a, b]) for a, b in combinations(cols, 2)
                 if not (np.isnan(r.loc[a, b]) or np.isnan(s.loc[a, b]))]
        return float(np.mean(diffs)) if diffs else None


class DetectionAUC(Monitor):
    name = "detection_auc"
    modality = "tabular"
    higher_is_better = False
    relative = False
    description = "ROC AUC of a real-vs-synthetic classifier (0.5: indistinguishable); from the filtering hop"

    def measure(self, data: MonitorInput) -> float | None:
        return data.metrics.get("detection_auc")


class TSTRUtility(Monitor):
    name = "tstr"
    modality = "tabular"
    description = "score on the real holdout of a model trained on synthetic rows only; from the evaluation hop"

    def measure(self, data: MonitorInput) -> float | None:
        return data.metrics.get("tstr")


for _monitor in (VarianceRatio(), TailCoverage(), CorrelationDrift(), DetectionAUC(), TSTRUtility()):
    register(_monitor)
