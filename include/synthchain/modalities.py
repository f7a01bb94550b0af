"""Which modalities exist, without importing them.

A modality is one subpackage with a `Modality` subclass (see `synthchain.modality`)
plus one line here. The spec validator and the DAG factory read this table at
parse time, so it stays import-light: classes are loaded on first use.
"""
from __future__ import annotations

import importlib
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .modality import Modality

#: modality name -> "module:Class"
MODALITIES: dict[str, str] = {
    "tabular": "synthchain.tabular:TabularModality",
    "text": "synthchain.text.modality:TextModality",
    "code": "synthchain.code.modality:CodeModality",
}

#: Allowed degradation vs generation 0 per monitor, per modality (see collapse/monitors.py).
# Tabular: set between the two modes in the lending_club experiment (3 chains x 5 generations each):
# replace chains reached detection_auc +0.165..+0.185 at generation 1 and correlation_drift up to 0.026,
# accumulate chains at most +0.096 and 0.008. A single chain's TSTR moves ~10% by noise alone.
# Text: see synthchain/text/monitors.py for the fine_foods experiment these come from.
DEFAULT_COLLAPSE_LIMITS: dict[str, dict[str, float]] = {
    "tabular": {"tail_coverage": 0.045, "variance_ratio": 0.10, "correlation_drift": 0.015,
                "detection_auc": 0.13, "tstr": 0.15},
    "text": {"text_vocabulary": 0.10, "text_heaps": 0.10, "text_distinct_2": 0.10, "text_tail_coverage": 0.15,
             "text_holdout_perplexity": 0.15, "text_dispersion": 0.10},
    # code: verified solutions are few and similar by design; monitors are measured and shown, limits set per spec
    "code": {},
}


def known_modalities() -> list[str]:
    return sorted(MODALITIES)


def default_collapse_limits(modality: str) -> dict[str, float]:
    return dict(DEFAULT_COLLAPSE_LIMITS.get(modality, {}))


@cache
def get_modality(name: str) -> "Modality":
    if name not in MODALITIES:
        raise ValueError(f"unknown modality {name!r}; known: {known_modalities()}")
    module, _, attr = MODALITIES[name].partition(":")
    return getattr(importlib.import_module(module), attr)()


def modality_of(spec: Any) -> "Modality":
    return get_modality(spec.modality)
