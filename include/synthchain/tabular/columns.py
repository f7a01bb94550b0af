"""Column types and handling for real tables: decided once, from the training rows, applied to every real frame.

A dtype cannot tell a numeric column with six stray words in it from a text column, an "NA" string
from a category, or a free-text field (3,946 job titles) from a category a model can use. `plan_columns`
reads each column once and decides its type (or takes the spec's pin), says why in words, and decides
what happens to it: keep, drop, hash into buckets, or keep its k most frequent levels plus "other".
`ColumnPlan.apply` applies exactly that to the training rows and the holdout, so generators,
verification, filters, blending, evaluation and gates all see the same columns. The decisions travel
in the profile (`Profile.handling`) and the report lists them.

Everything is vectorised (pd.to_numeric(errors="coerce"), value_counts, hash_array): a wide, messy
table costs about what a clean one does.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd

from ..sources import SourceError
from ..specs import ColumnRule, DatasetSpec, HighCardinalitySpec
from .profile import ColumnHandling, ColumnKind, column_kind

# Cells that mean "no value" whatever the source (pandas' CSV reader catches most of them; SQL and Parquet none).
MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none", "nil", "#n/a", "<na>"})
# A text column is read as numbers when at least this share of its non-missing cells parse; the rest are set
# missing and counted. From MOSTLY_NUMERIC up to it, the column stays text and is flagged "mostly numeric".
NUMERIC_SHARE = 0.99
MOSTLY_NUMERIC = 0.5
# Fewer distinct values than this are never an identifier: a 12-row table's 12 labels are not keys.
MIN_IDENTIFIER_LEVELS = 20
# An integer column rising with the row order by at most this much per row on average is a row number or key
# (a holdout split leaves gaps, so the step is not exactly 1).
ROW_NUMBER_MAX_STEP = 10
OTHER = "other"
TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0"})
PROFILE_KIND: dict[str, ColumnKind] = {
    "numeric": "numeric", "integer": "integer", "boolean": "boolean", "datetime": "datetime",
    "categorical": "categorical", "text": "categorical", "identifier": "categorical"}
#: where load_real hands the plan to profile(): a JSON-able dict on the training frame's attrs
PLAN_ATTR = "synthchain_column_plan"


@dataclass
class ColumnPlan:
    """Every source column's decision (in source order) and the transform they make."""

    handling: dict[str, ColumnHandling]
    target: str

    def apply(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
        """(the frame with each column read as its type and handled, stray cells set missing per column)."""
        missing = [name for name in self.handling if name not in frame.columns]
        if missing:
            raise SourceError(f"column(s) {missing} are not in the data the column plan is applied to")
        columns, strays = {}, {}
        for name, h in self.handling.items():
            if h.handle == "drop":
                continue
            values, _, stray = read_as(frame[name], h.type, relabel=name != self.target)
            strays[name] = int(stray.sum())
            columns[name] = _handled(values, h)
        return pd.DataFrame(columns, index=frame.index), strays

    def kinds(self) -> dict[str, ColumnKind]:
        """The profile kind of each published column."""
        return {name: "categorical" if h.handle in ("hash", "top_k") else PROFILE_KIND[h.type]
                for name, h in self.handling.items() if h.published}

    def with_holdout_strays(self, strays: dict[str, int]) -> "ColumnPlan":
        handling = {}
        for name, h in self.handling.items():
            h = replace(h, holdout_stray_cells=strays.get(name, 0))
            handling[name] = replace(h, action=action_words(h))
        return ColumnPlan(handling, self.target)

    def to_dict(self) -> dict:
        return {"target": self.target, "handling": {k: asdict(v) for k, v in self.handling.items()}}

    @classmethod
    def from_dict(cls, data: dict) -> "ColumnPlan":
        return cls({k: ColumnHandling(**v) for k, v in data["handling"].items()}, data["target"])


def plan_columns(train: pd.DataFrame, spec: DatasetSpec) -> ColumnPlan:
    """Decide every column of the training rows: its type, why, and how it is handled."""
    unknown = sorted(set(spec.columns) - set(train.columns))
    if unknown:
        raise SourceError(f"spec {spec.name}: field 'columns' names column(s) {unknown} that the source does not "
                          f"have; columns are {list(train.columns)}")
    handling = {}
    for name in train.columns:
        target_task = spec.task if name == spec.target else None
        handling[name] = decide_column(train[name], name, spec.columns.get(name), spec.high_cardinality, target_task)
    return ColumnPlan(handling, spec.target)


def decide_column(series: pd.Series, name: str, rule: ColumnRule | None, defaults: HighCardinalitySpec,
                  target_task: str | None = None) -> ColumnHandling:
    """One column's type, the reason, and what is done to it (`target_task`: set when it is the target)."""
    series = _plain(series)
    if rule is not None and rule.type is not None:
        type_, reason, mostly = rule.type, f"pinned {rule.type} by the spec", False
    else:
        type_, reason, mostly = infer_type(series, defaults, target_task)
    values, tokens, stray = read_as(series, type_, relabel=target_task is None)
    present = values.notna()
    levels = int(values[present].nunique()) if type_ in ("categorical", "text", "identifier") else None
    handle, k, buckets = _handle(type_, levels, rule, defaults, target_task is not None)
    if target_task is not None:
        reason = f"the {target_task} target; {reason}"
    n_stray = int(stray.sum())
    if n_stray:
        examples = series[stray].astype(str).drop_duplicates().head(3).tolist()
        reason += f"; {n_stray:,} {_stray_words(series, type_)} set missing (e.g. {', '.join(map(repr, examples))})"
    else:
        examples = []
    kept = _top_levels(values, k) if handle == "top_k" else []
    h = ColumnHandling(name=name, type=type_, reason=reason, handle=handle, action="", pinned=rule is not None
                       and rule.type is not None, missing_tokens=int(tokens.sum()), stray_cells=n_stray,
                       stray_examples=examples, mostly_numeric=mostly,
                       levels=levels if levels is not None else int(values[present].nunique()),
                       kept_levels=kept, buckets=buckets if handle == "hash" else None)
    return replace(h, action=action_words(h))


def infer_type(series: pd.Series, defaults: HighCardinalitySpec, target_task: str | None = None
               ) -> tuple[str, str, bool]:
    """(type, reason, mostly numeric) of a column no rule pins; a target is never an identifier or text."""
    classification_target = target_task == "classification"
    tokens = _token_mask(series)
    present = series.notna() & ~tokens
    n = int(present.sum())
    if pd.api.types.is_bool_dtype(series):
        return "boolean", "stored as booleans", False
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime", "stored as dates/times", False
    if _is_number_dtype(series):
        kind = column_kind(series)
        if classification_target:
            return "categorical", f"{series.nunique():,} classes stored as numbers", False
        if kind == "integer" and target_task is None and _is_row_number(series):
            return ("identifier", f"identifier: {n:,} distinct integers rising with the row order (a row number or key)",
                    False)
        return kind, "stored as whole numbers" if kind == "integer" else "stored as numbers", False
    if n == 0:
        return "categorical", "no values in the training rows", False
    numbers = _parse_numbers(series, tokens)
    share = numbers.notna().sum() / n
    if share >= NUMERIC_SHARE and not classification_target:
        whole = bool(np.all(np.mod(numbers.dropna(), 1) == 0))
        return "integer" if whole else "numeric", f"parsed as numbers: {_pct(share)} of {n:,} cells", False
    values = series[present]
    levels = int(values.nunique())
    mostly = bool(MOSTLY_NUMERIC <= share < NUMERIC_SHARE)
    if classification_target:
        type_, reason = "categorical", f"{levels:,} classes"
    elif levels >= MIN_IDENTIFIER_LEVELS and levels / n >= defaults.identifier_unique_share:
        type_, reason = "identifier", f"identifier: {_pct(levels / n)} distinct ({levels:,} values in {n:,} cells)"
    elif levels > defaults.max_levels:
        mean_length = values.astype(str).str.len().mean()
        type_, reason = "text", f"text-like: {levels:,} levels, mean length {mean_length:.0f}"
    else:
        type_, reason = "categorical", f"{levels:,} levels"
    if mostly:
        reason += (f"; mostly numeric: {_pct(share)} of cells parse as numbers (pin `type: numeric` to read it as "
                   "numbers, the rest set missing)")
    return type_, reason, mostly


def read_as(series: pd.Series, type_: str, relabel: bool = True) -> tuple[pd.Series, pd.Series, pd.Series]:
    """(the column as `type_`, cells that were "NA"-like tokens, cells that did not parse and are now missing).

    `relabel`: categories stored as numbers become text labels ("3", not 3.0) so every hop treats them as
    categories; the target keeps its stored values.
    """
    series = _plain(series)
    tokens = _token_mask(series)
    if type_ in ("numeric", "integer"):
        values = series if _is_number_dtype(series) else _parse_numbers(series, tokens)
        if type_ == "integer" and not pd.api.types.is_integer_dtype(values):
            values = values.astype(float).where(np.mod(values.astype(float), 1) == 0)  # a fraction is a stray
    elif type_ == "datetime":
        values = series if pd.api.types.is_datetime64_any_dtype(series) else \
            pd.Series(_per_value(series.mask(tokens), _parse_dates), index=series.index)
    elif type_ == "boolean":
        values = _booleans(series, tokens)
    else:
        values = (_labels(series) if relabel else series).mask(tokens)
    stray = series.notna() & ~tokens & values.isna()
    return values, tokens, stray


def action_words(h: ColumnHandling) -> str:
    """What the published column holds, in words."""
    if h.handle == "drop":
        return "dropped: absent from the published data"
    if h.handle == "hash":
        last = h.buckets - 1
        return (f"hashed into {h.buckets} buckets: the published column holds bucket labels "
                f"({_bucket_label(0, h.buckets)} … {_bucket_label(last, h.buckets)}), not the values")
    if h.handle == "top_k":
        k = len(h.kept_levels)
        if (h.levels or 0) <= k:
            words = f"top_k: all {h.levels:,} levels kept"
        else:
            words = (f"kept the {k:,} most frequent of {h.levels:,} levels; the other {h.levels - k:,} are "
                     f"published as \"{OTHER}\"")
    elif h.type in ("text", "identifier"):
        words = f"kept as categories ({h.levels:,} levels)"
    else:
        words = "kept"
    if h.stray_cells or h.holdout_stray_cells:
        words += f"; {h.stray_cells:,} cells that did not read as {h.type} set missing"
        if h.holdout_stray_cells:
            words += f" ({h.holdout_stray_cells:,} more in the holdout)"
    if h.missing_tokens:
        words += f"; {h.missing_tokens:,} 'NA'-like cells read as missing"
    return words


# --- helpers -------------------------------------------------------------------------------------

def _plain(series: pd.Series) -> pd.Series:
    """A pandas Categorical as its values (its levels are the data's business, not the dtype's)."""
    return series.astype(object) if isinstance(series.dtype, pd.CategoricalDtype) else series


def _is_number_dtype(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _is_text(series: pd.Series) -> bool:
    return not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)
                or pd.api.types.is_datetime64_any_dtype(series))


def _per_value(series: pd.Series, fn) -> np.ndarray:
    """fn over the distinct values only, spread back over the cells: text columns repeat their values, so a
    53,940-row column with 126 values costs 126 conversions. Missing cells get fn's result for NaN."""
    codes, uniques = pd.factorize(series, use_na_sentinel=False)
    return np.asarray(fn(pd.Series(uniques, dtype=object)))[codes]


def _token_mask(series: pd.Series) -> pd.Series:
    if not _is_text(series):
        return pd.Series(False, index=series.index)
    is_token = _per_value(series, lambda v: v.notna() & v.astype(str).str.strip().str.lower().isin(MISSING_TOKENS))
    return pd.Series(is_token.astype(bool), index=series.index)


def _parse_numbers(series: pd.Series, tokens: pd.Series) -> pd.Series:
    """Text as numbers, NaN where a cell is not one (an infinity or "nan" word is not a measurement)."""
    def parse(values: pd.Series) -> np.ndarray:
        numbers = pd.to_numeric(values.astype(str).str.strip().where(values.notna()), errors="coerce")
        return numbers.where(np.isfinite(numbers.astype(float))).astype(float).to_numpy()

    numbers = pd.Series(_per_value(series.mask(tokens), parse), index=series.index)
    whole = numbers.dropna()
    if len(whole) and np.all(np.mod(whole, 1) == 0) and whole.abs().max() < 2**53 and numbers.notna().all():
        return numbers.astype("int64")  # as pd.to_numeric reads a column of whole numbers
    return numbers


def _parse_dates(values: pd.Series) -> pd.Series:
    """ISO 8601 first (fast); whatever it misses gets the lenient per-value parser, NaT if that fails too."""
    dates = pd.to_datetime(values, errors="coerce", format="ISO8601")
    missed = dates.isna() & values.notna()
    if missed.any():
        dates[missed] = pd.to_datetime(values[missed], errors="coerce", format="mixed")
    return dates


def _labels(series: pd.Series) -> pd.Series:
    """Values as text labels; whole numbers without a trailing ".0"."""
    if _is_number_dtype(series):
        numbers = series.astype(float)
        whole = bool(np.all(np.mod(numbers.dropna(), 1) == 0))
        text = (numbers.astype("Int64") if whole else numbers).astype(str)
    elif _is_text(series):
        return series
    else:
        text = series.astype(str)
    return text.astype(object).where(series.notna())


def _booleans(series: pd.Series, tokens: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(series):
        return series.astype("boolean")
    words = _labels(series).astype(str).str.strip().str.lower().where(series.notna() & ~tokens)
    out = pd.Series(pd.NA, index=series.index, dtype="boolean")
    out[words.isin(TRUE_WORDS)] = True
    out[words.isin(FALSE_WORDS)] = False
    return out


def _is_row_number(series: pd.Series) -> bool:
    values = series.dropna()
    if len(values) < MIN_IDENTIFIER_LEVELS or not values.is_unique or not values.is_monotonic_increasing:
        return False
    return (float(values.iloc[-1]) - float(values.iloc[0])) / (len(values) - 1) <= ROW_NUMBER_MAX_STEP


def _handle(type_: str, levels: int | None, rule: ColumnRule | None, defaults: HighCardinalitySpec,
            is_target: bool) -> tuple[str, int, int]:
    """(handle, k, buckets): the rule's, else drop identifiers, else the high-cardinality default, else keep."""
    if rule is not None and rule.handle is not None:
        return rule.handle, rule.k or defaults.k, rule.buckets or defaults.buckets
    if is_target:
        return "keep", defaults.k, defaults.buckets
    if type_ == "identifier":
        return "drop", defaults.k, defaults.buckets
    if type_ in ("categorical", "text") and (levels or 0) > defaults.max_levels:
        return defaults.handle, defaults.k, defaults.buckets
    return "keep", defaults.k, defaults.buckets


def _top_levels(values: pd.Series, k: int) -> list[str]:
    """The k most frequent values as text, ties broken by the value (so the choice is reproducible)."""
    counts = values.dropna().astype(str).value_counts().sort_index()
    return counts.sort_values(ascending=False, kind="stable").index[:k].tolist()


def _handled(values: pd.Series, h: ColumnHandling) -> pd.Series:
    if h.handle == "top_k":
        text = values.astype(str)
        return text.where(text.isin(h.kept_levels), OTHER).astype(object).where(values.notna())
    if h.handle == "hash":
        present = values.notna().to_numpy()
        out = np.full(len(values), np.nan, dtype=object)
        codes = pd.util.hash_array(values[present].astype(str).to_numpy(dtype=object)) % np.uint64(h.buckets)
        labels = np.array([_bucket_label(i, h.buckets) for i in range(h.buckets)], dtype=object)
        out[present] = labels[codes.astype(np.int64)]
        return pd.Series(out, index=values.index)
    return values


def _bucket_label(code: int, buckets: int) -> str:
    return f"bucket_{code:0{len(str(buckets - 1))}d}"


def _stray_words(series: pd.Series, type_: str) -> str:
    """E.g. "text cells" (a number column's words) or "cells that are not datetime"."""
    return "text cells" if type_ in ("numeric", "integer") and _is_text(series) else f"cells that are not {type_}"


def _pct(share: float) -> str:
    """A share as a percentage that never rounds a near-miss up to 100% (or a sliver down to 0%)."""
    for digits in range(1, 5):
        text = f"{share:.{digits}%}"
        if (share < 1 and text.startswith("100.")) or (share > 0 and float(text[:-1]) == 0):
            continue
        return text
    return f"{share:.4%}"
