"""Targets: the slices of the data a spec asks synthetic rows for, and how many kept rows each needs.

A slice is a conjunction of declarative conditions over columns (`{column, op, value}`; no `eval`, no
query strings), so the same slice can be checked on real rows, conditioned on in a generator and
verified on every kept row. A spec without targets is one slice, the whole table, with `target_rows`
as its quota. Shared by every modality (a text label or a code problem is a slice over its columns).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

OPS = ("==", "!=", "<", "<=", ">", ">=", "in", "between")
WHOLE = "all"  # the one slice of a spec without targets
MIN_QUOTA = 10  # a label rebalancing would give fewer rows is left alone: no figure can be judged on a handful


@dataclass(frozen=True)
class Condition:
    column: str
    op: str
    value: Any

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        s = frame[self.column]
        if self.op == "in":
            return s.isin(list(self.value)).to_numpy(dtype=bool)
        if self.op == "between":
            lo, hi = self.value
            return (s.notna() & (s >= lo) & (s <= hi)).to_numpy(dtype=bool)
        if self.op == "==":
            return (s == self.value).fillna(False).to_numpy(dtype=bool)
        if self.op == "!=":
            return (s.notna() & (s != self.value)).to_numpy(dtype=bool)
        compare = {"<": s.lt, "<=": s.le, ">": s.gt, ">=": s.ge}[self.op]
        return (s.notna() & compare(self.value)).to_numpy(dtype=bool)

    def words(self) -> str:
        if self.op == "in":
            return f"{self.column} in {list(self.value)!r}"
        if self.op == "between":
            return f"{self.column} between {self.value[0]!r} and {self.value[1]!r}"
        return f"{self.column} {self.op} {self.value!r}"


@dataclass(frozen=True)
class Slice:
    """A named slice: its conditions, its quota of kept rows and why it was chosen (declared, or the
    figures of the rule `from_errors` found)."""

    name: str
    conditions: tuple[Condition, ...] = ()
    quota: int = 0
    why: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        out = np.ones(len(frame), dtype=bool)
        for condition in self.conditions:
            out &= condition.mask(frame)
        return out

    def words(self) -> str:
        return " and ".join(c.words() for c in self.conditions) or "every row"

    def record(self) -> dict[str, Any]:
        return {"name": self.name, "rule": self.words(), "quota": self.quota,
                "conditions": [{"column": c.column, "op": c.op, "value": _plain(c.value)} for c in self.conditions],
                **({"why": self.why} if self.why else {})}


WHY_SHOWN = ("rule", "real_rows", "real_share", "target_share", "error_rate", "overall_error_rate", "error_mass",
             "permutation_p")  # what a table says of why a slice is there; the record keeps everything


def why_words(why: dict[str, Any]) -> str:
    return "; ".join(f"{k.replace('_', ' ')} {why[k]}" for k in WHY_SHOWN if k in why) or "—"


def conditions_of(items: Iterable[Any]) -> tuple[Condition, ...]:
    """Conditions from spec entries (objects or dicts with column, op, value)."""
    out = []
    for item in items:
        get = item.get if isinstance(item, dict) else (lambda k, _i=item: getattr(_i, k))
        value = get("value")
        out.append(Condition(get("column"), get("op"), tuple(value) if isinstance(value, list) else value))
    return tuple(out)


def rebalance_quotas(real_counts: dict[Any, int], shares: dict[Any, float] | str, total: int) -> dict[Any, int]:
    """Per-label quotas of `total` synthetic rows that bring real + synthetic label shares closest to `shares`.

    Water-filling: each row goes to the label furthest below its share of the combined set, so a label
    already above its share gets none (rows are never taken away). `balanced`: equal shares."""
    labels = list(real_counts)
    if shares == "balanced":
        shares = {label: 1.0 / len(labels) for label in labels}
    weight = sum(shares.values())
    want = np.array([shares.get(label, 0.0) / weight for label in labels])
    have = np.array([real_counts[label] for label in labels], dtype=float)
    final = have.sum() + total
    # the combined count each label would need, then fill the deficits in proportion, capped at the total
    deficit = np.maximum(want * final - have, 0.0)
    if deficit.sum() > 0:
        raw = deficit * (total / deficit.sum()) if deficit.sum() > total else deficit
    else:
        raw = np.zeros(len(labels))
    quotas = np.floor(raw).astype(int)
    left = int(min(total, round(deficit.sum())) - quotas.sum())
    for i in np.argsort(-(raw - quotas), kind="stable")[:max(left, 0)]:
        quotas[i] += 1
    return {label: int(q) for label, q in zip(labels, quotas)}


def targeted(slices: Sequence[Slice]) -> bool:
    """More than the one whole-table slice of a spec without targets."""
    return any(s.name != WHOLE for s in slices)


def condition_columns(slices: Sequence[Slice]) -> list[str]:
    """The columns the slices condition on, most used first (a generator may model them first)."""
    used = [c.column for s in slices for c in s.conditions]
    return sorted(dict.fromkeys(used), key=lambda c: -used.count(c))


def assign(frame: pd.DataFrame, slices: Sequence[Slice]) -> np.ndarray:
    """Each row's first matching slice name (object array), None where none matches."""
    out = np.full(len(frame), None, dtype=object)
    for s in slices:
        free = pd.isna(out)
        out[free & s.mask(frame)] = s.name
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


class TargetError(ValueError):
    """A target the real rows cannot support: an unknown column or label, a slice with no real rows."""


def resolve(spec: Any, real: pd.DataFrame, find_errors: Any = None) -> list[Slice]:
    """The spec's slices over the real training rows, each with its quota and why it is there.

    Refused (TargetError naming the slice) when a column is unknown or a slice holds no real row: a
    generator cannot be asked for rows nobody has seen, and nothing could verify them. `find_errors`
    (the modality's, for `targets.from_errors`) takes the spec and the same training rows: the holdout
    is never an input to targeting.
    """
    targets = spec.targets
    if not targets.targeted:
        return [Slice(WHOLE, (), spec.target_rows, {"rule": "target_rows", "real_rows": len(real)})]
    out: list[Slice] = []
    if targets.rebalance:
        out += _rebalance(spec, real)
    for piece in targets.slices:
        conditions = conditions_of(c.model_dump() for c in piece.where)
        unknown = sorted({c.column for c in conditions} - set(real.columns))
        if unknown:
            raise TargetError(f"targets.slices '{piece.name}': column(s) {unknown} not in the data; "
                              f"columns are {list(real.columns)}")
        found = Slice(piece.name, conditions, piece.rows)
        n = int(found.mask(real).sum())
        if n == 0:
            raise TargetError(f"targets.slices '{piece.name}' ({found.words()}) holds no real training row: "
                              "nothing to learn it from or verify it against")
        out.append(Slice(piece.name, conditions, piece.rows,
                         {"rule": "declared", "real_rows": n, "real_share": round(n / len(real), 6)}))
    if targets.from_errors:
        if find_errors is None:
            raise TargetError(f"targets.from_errors: the {spec.modality} modality cannot find error slices")
        found = find_errors(spec, real)
        if not found:
            log.warning("targets.from_errors: the real-only model's errors on %s show no slice clearly above "
                        "the overall rate; no error slice is targeted", spec.name)
        elif targets.from_errors.rows is None:
            found = share_quota(found, spec.target_rows)
        out += found
    if not out:  # nothing to aim at (from_errors found no slice): the run still makes target_rows, as a plain spec
        return [Slice(WHOLE, (), spec.target_rows, {"rule": "target_rows", "real_rows": len(real),
                                                    "note": "targets found no slice: the whole table"})]
    names = [s.name for s in out]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise TargetError(f"targets: slice name(s) {clash} used twice (rebalance names its slices label_<label>)")
    return out


def share_quota(slices: Sequence[Slice], total: int) -> list[Slice]:
    """`total` kept rows split over slices found from errors, in proportion to their error mass (largest
    remainder; each at least one row)."""
    weights = np.array([max(float(s.why.get("error_mass") or 0.0), 0.0) for s in slices])
    if weights.sum() <= 0:
        weights = np.ones(len(slices))
    raw = weights / weights.sum() * total
    quotas = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - quotas), kind="stable")[: total - quotas.sum()]:
        quotas[i] += 1
    return [Slice(s.name, s.conditions, max(int(q), 1), s.why) for s, q in zip(slices, quotas)]


def _rebalance(spec: Any, real: pd.DataFrame) -> list[Slice]:
    counts = real[spec.target].value_counts(dropna=True, sort=False).sort_index()
    by_text = {str(label): label for label in counts.index}
    shares = spec.targets.rebalance
    if isinstance(shares, dict):
        unknown = sorted(set(map(str, shares)) - set(by_text))
        if unknown:
            raise TargetError(f"targets.rebalance: label(s) {unknown} not in column {spec.target!r}; "
                              f"labels are {sorted(by_text)}")
        shares = {by_text[str(k)]: float(v) for k, v in shares.items()}
    quotas = rebalance_quotas({label: int(n) for label, n in counts.items()}, shares, spec.target_rows)
    total = int(counts.sum())
    wanted = shares if isinstance(shares, dict) else {label: 1.0 for label in counts.index}
    weight = sum(wanted.values())
    return [Slice(f"label_{slug(label)}", (Condition(spec.target, "==", _plain(label)),), q,
                  {"rule": "rebalance", "real_rows": int(counts[label]), "real_share": round(float(counts[label]) / total, 6),
                   "target_share": round(wanted.get(label, 0.0) / weight, 6)})
            for label, q in quotas.items() if q >= MIN_QUOTA]


def slug(value: Any) -> str:
    text = "".join(ch if ch.isalnum() else "_" for ch in str(value).lower()).strip("_")
    return text[:40] or "empty"


def to_json(slices: Sequence[Slice]) -> list[dict[str, Any]]:
    return [s.record() for s in slices]


def from_json(records: Iterable[dict[str, Any]]) -> list[Slice]:
    return [Slice(r["name"], conditions_of(r["conditions"]), int(r["quota"]), r.get("why") or {}) for r in records]
