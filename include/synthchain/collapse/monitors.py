"""Collapse monitors: one number per dataset version, judged against generation 0.

A monitor is a small class: a name, the modality it applies to, which direction is
better, whether its limit is relative to the generation-0 value, and `measure`. Tabular
monitors are registered here; text monitors (vocabulary growth, distinct-n, real-text
perplexity, embedding dispersion) register the same way with modality "text".
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..generation.base import to_float


@dataclass
class MonitorInput:
    real: pd.DataFrame  # real training rows (data columns only)
    synthetic: pd.DataFrame  # this version's new synthetic rows, after filtering
    profile: Any = None  # the modality's profile
    metrics: dict[str, Any] = field(default_factory=dict)  # figures earlier hops computed (tstr, detection_auc…)
    holdout: pd.DataFrame | None = None  # real holdout rows (text: real-text perplexity)
    embeddings: dict[str, np.ndarray] = field(default_factory=dict)  # "real" / "synthetic" (text modality)


class Monitor(ABC):
    name: ClassVar[str]
    modality: ClassVar[str] = "tabular"
    higher_is_better: ClassVar[bool] = True
    relative: ClassVar[bool] = True  # limit is a fraction of the generation-0 value, else an absolute change
    description: ClassVar[str] = ""

    @abstractmethod
    def measure(self, data: MonitorInput) -> float | None: ...

    def degradation(self, baseline: float, value: float) -> float:
        """How much worse than generation 0 (positive = worse), in the monitor's own unit."""
        change = (baseline - value) if self.higher_is_better else (value - baseline)
        if self.relative:
            return change / abs(baseline) if baseline else 0.0
        return change


REGISTRY: dict[str, Monitor] = {}


def register(monitor: Monitor) -> Monitor:
    REGISTRY[monitor.name] = monitor
    return monitor


def monitors_for(modality: str) -> list[Monitor]:
    family = {"code": "text"}.get(modality, modality)  # code records are texts to the text monitors
    return [m for m in REGISTRY.values() if m.modality in (family, "any")]


def _continuous(profile) -> list[str]:
    return [n for n, c in profile.columns.items() if c.kind in ("numeric", "integer", "datetime") and c.n_unique > 1]


class VarianceRatio(Monitor):
    name = "variance_ratio"
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
    higher_is_better = False
    relative = False
    description = "ROC AUC of a real-vs-synthetic classifier (0.5: indistinguishable); from the filtering hop"

    def measure(self, data: MonitorInput) -> float | None:
        return data.metrics.get("detection_auc")


class TSTRUtility(Monitor):
    name = "tstr"
    description = "score on the real holdout of a model trained on synthetic rows only; from the evaluation hop"

    def measure(self, data: MonitorInput) -> float | None:
        return data.metrics.get("tstr")


for _monitor in (VarianceRatio(), TailCoverage(), CorrelationDrift(), DetectionAUC(), TSTRUtility()):
    register(_monitor)


def measure_all(data: MonitorInput, modality: str = "tabular") -> dict[str, float | None]:
    return {m.name: m.measure(data) for m in monitors_for(modality)}


@dataclass
class Verdict:
    monitor: str
    generation: int
    value: float
    baseline: float
    degradation: float
    limit: float
    trend: list[float]

    @property
    def tripped(self) -> bool:
        return self.degradation > self.limit

    def describe(self) -> str:
        unit = f"{self.degradation:.1%} vs generation 0" if REGISTRY[self.monitor].relative \
            else f"{self.degradation:+.4f} vs generation 0"
        limit = f"{self.limit:.1%}" if REGISTRY[self.monitor].relative else f"{self.limit:.4f}"
        trend = " → ".join(f"{v:.4f}" for v in self.trend)
        return (f"collapse monitor {self.monitor} at generation {self.generation}: trend {trend} "
                f"(generations 0..{self.generation}), worse by {unit} (limit {limit})")


def judge(values: dict[str, float | None], history: list[dict[str, float | None]], generation: int,
          limits: dict[str, float]) -> list[Verdict]:
    """Compare this version's monitor values with generation 0 (history[0]) and the trend since."""
    verdicts = []
    for name, value in values.items():
        if value is None or name not in limits or not history:
            continue
        baseline = history[0].get(name)
        if baseline is None:
            continue
        trend = [h.get(name) for h in history if h.get(name) is not None] + [value]
        monitor = REGISTRY[name]
        verdicts.append(Verdict(name, generation, value, baseline, monitor.degradation(baseline, value),
                                limits[name], trend))
    return verdicts
