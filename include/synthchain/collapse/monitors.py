"""Collapse monitors: one number per dataset version, judged against generation 0.

A monitor is a small class: a name, the modality it applies to, which direction is
better, whether its limit is relative to the generation-0 value, and `measure`. This
module holds the contract, the registry and the judgement across generations; each
modality registers its monitors from its own package (tabular/monitors.py,
text/monitors.py), imported on first use through modalities.MONITORS.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..modalities import known_modalities, load_monitors


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
    modality: ClassVar[str]  # the modality family it applies to (modalities.MONITORS), or "any"
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
    """The monitors of a modality, its monitor module imported first (see modalities.MONITORS)."""
    family = load_monitors(modality)
    return [m for m in REGISTRY.values() if m.modality in (family, "any")]


def load_all_monitors() -> dict[str, Monitor]:
    """Every modality's monitors registered, for views across modalities (the collapse experiment's table)."""
    for modality in known_modalities():
        load_monitors(modality)
    return REGISTRY


def measure_all(data: MonitorInput, modality: str) -> dict[str, float | None]:
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
