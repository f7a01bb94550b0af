"""Profiling: split off the real holdout and describe the real training rows.

The profile is the contract every later hop is checked against: column kinds,
ranges, category sets, missingness and correlations, and how each source column
was read (its type, why, and what was done to it).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..sources import SourceError, read_source
from ..specs import DatasetSpec

ColumnKind = Literal["numeric", "integer", "categorical", "boolean", "datetime"]


@dataclass
class ColumnProfile:
    name: str
    kind: ColumnKind
    dtype: str
    null_fraction: float
    n_unique: int
    min: float | str | None = None
    max: float | str | None = None
    mean: float | None = None
    std: float | None = None
    quantiles: dict[str, float] = field(default_factory=dict)
    categories: dict[str, float] = field(default_factory=dict)  # value -> frequency among non-null

    @property
    def is_continuous(self) -> bool:
        return self.kind in ("numeric", "integer", "datetime")


@dataclass
class ColumnHandling:
    """How one source column was read and what was done to it (decided in synthchain.tabular.columns).

    `type` is the column's type as read (numeric, integer, categorical, boolean, datetime, text,
    identifier), `reason` says why, `action` what the published column holds (or that it is absent).
    Counts are over training rows unless named `holdout_*`.
    """

    name: str
    type: str
    reason: str
    handle: str  # keep | drop | hash | top_k
    action: str
    pinned: bool = False  # the type came from the spec's `columns` rule
    missing_tokens: int = 0  # cells like "NA", "", "null" read as missing
    stray_cells: int = 0  # cells that did not parse as the column's type, set missing
    holdout_stray_cells: int = 0
    stray_examples: list[str] = field(default_factory=list)
    mostly_numeric: bool = False  # most cells are numbers, but too few to read the column as numbers
    levels: int | None = None  # distinct non-missing values (before handling)
    kept_levels: list[str] = field(default_factory=list)  # top_k: the levels kept; every other value is "other"
    buckets: int | None = None  # hash: the number of buckets

    @property
    def published(self) -> bool:
        return self.handle != "drop"


@dataclass
class Profile:
    n_rows: int
    target: str
    task: str
    columns: dict[str, ColumnProfile]
    correlations: dict[str, dict[str, float]]
    # every source column (dropped ones too), in source order; empty in profiles written before it existed
    handling: dict[str, ColumnHandling] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_rows": self.n_rows, "target": self.target, "task": self.task,
            "columns": {k: asdict(v) for k, v in self.columns.items()},
            "correlations": self.correlations,
            "handling": [asdict(v) for v in self.handling.values()],  # a list: JSON writers may sort keys
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Profile":
        cols = {k: ColumnProfile(**v) for k, v in data["columns"].items()}
        handling = {v["name"]: ColumnHandling(**v) for v in data.get("handling") or []}
        return cls(data["n_rows"], data["target"], data["task"], cols, data["correlations"], handling)

    def kinds(self) -> dict[str, ColumnKind]:
        return {name: col.kind for name, col in self.columns.items()}


def column_kind(series: pd.Series) -> ColumnKind:
    if pd.api.types.is_bool_dtype(series):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime"
    if pd.api.types.is_integer_dtype(series):
        return "integer"
    if pd.api.types.is_float_dtype(series):
        values = series.dropna()
        if len(values) and np.all(np.mod(values, 1) == 0) and values.abs().max() < 2**53:
            return "integer"  # integers stored as float because of missing values
        return "numeric"
    return "categorical"


def profile_frame(frame: pd.DataFrame, target: str, task: str, kinds: dict[str, ColumnKind] | None = None,
                  handling: dict[str, ColumnHandling] | None = None) -> Profile:
    """The profile of (already typed) real rows; `kinds` overrides what the dtype says (a pinned type),
    `handling` is how each source column was read (see synthchain.tabular.columns)."""
    columns: dict[str, ColumnProfile] = {}
    for name in frame.columns:
        series = frame[name]
        kind = (kinds or {}).get(name) or column_kind(series)
        if name == target and task == "classification":
            kind = "categorical"
        non_null = series.dropna()
        col = ColumnProfile(
            name=name, kind=kind, dtype=str(series.dtype),
            null_fraction=float(series.isna().mean()), n_unique=int(non_null.nunique()),
        )
        if kind in ("numeric", "integer") and len(non_null):
            values = non_null.astype(float)
            col.min, col.max = float(values.min()), float(values.max())
            col.mean, col.std = float(values.mean()), float(values.std(ddof=0))
            col.quantiles = {f"q{int(q * 100):02d}": float(values.quantile(q)) for q in (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)}
        elif kind == "datetime" and len(non_null):
            col.min, col.max = str(non_null.min()), str(non_null.max())
        else:
            freqs = non_null.astype(str).value_counts(normalize=True)
            col.categories = {str(k): float(v) for k, v in freqs.items()}
        columns[name] = col
    numeric = [c for c, p in columns.items() if p.kind in ("numeric", "integer") and p.n_unique > 1]
    corr = frame[numeric].astype(float).corr(method="spearman").round(6) if numeric else pd.DataFrame()
    correlations = {a: {b: float(corr.loc[a, b]) for b in numeric if not np.isnan(corr.loc[a, b])} for a in numeric}
    return Profile(n_rows=len(frame), target=target, task=task, columns=columns, correlations=correlations,
                   handling=dict(handling or {}))


def load_real_data(spec: DatasetSpec) -> pd.DataFrame:
    """The real rows for a spec, with dropped columns removed and the target checked."""
    frame = read_source(spec.source)
    where = f"source {spec.source.label} (spec {spec.name})"
    missing = [c for c in [spec.target, *spec.drop_columns] if c not in frame.columns]
    if missing:
        raise SourceError(f"{where}: column(s) {missing} not found; columns are {list(frame.columns)}")
    frame = frame.drop(columns=spec.drop_columns)
    if frame.empty:
        raise SourceError(f"{where}: no rows")
    if frame[spec.target].isna().all():
        raise SourceError(f"{where}: target column {spec.target!r} is entirely empty")
    empty = [c for c in frame.columns if c != spec.target and frame[c].isna().all()]
    if empty:
        raise SourceError(f"{where}: column(s) {empty} hold no values at all ({len(frame):,} rows, all missing): "
                          "nothing can be learned or generated from them; list them in drop_columns")
    bad_names = [c for c in frame.columns if str(c).startswith("_sc_")]
    if bad_names:
        raise SourceError(f"{where}: column names starting with '_sc_' are reserved: {bad_names}")
    return frame.reset_index(drop=True)
