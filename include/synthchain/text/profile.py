"""Load real texts and describe them: the profile every later text hop is checked against."""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..holdout import split_holdout
from ..sources import SourceError, read_source
from ..specs import DatasetSpec
from .tokens import clean_text, tokenize_all

#: characters seen fewer times than this in the real corpus do not join its character set
CHARSET_MIN_COUNT = 3
PROFILE_CHUNK = 20_000  # texts tokenised per pass


@dataclass
class TextProfile:
    n_rows: int
    text_columns: list[str]  # the columns that hold text, in order
    roles: dict[str, str]  # role -> column ("text" for a single text column; instruction/response/... for fields)
    label_column: str | None
    labels: dict[str, float] = field(default_factory=dict)  # label -> share of real rows
    lengths: dict[str, dict[str, float]] = field(default_factory=dict)  # column -> token-length figures
    charset: str = ""  # characters the real corpus uses (CHARSET_MIN_COUNT or more times)
    vocabulary: int = 0
    tokens: int = 0
    duplicate_rate: float = 0.0  # exact duplicates (normal form) among real texts

    # `columns` mirrors the tabular profile so that generic code can list a record's columns.
    @property
    def columns(self) -> list[str]:
        return self.text_columns + ([self.label_column] if self.label_column else [])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TextProfile":
        return cls(**data)


def record_texts(frame: pd.DataFrame, profile: TextProfile) -> list[str]:
    """One string per record: the text, or its fields as 'role: text' lines (what embeddings and n-grams see)."""
    if len(profile.text_columns) == 1:
        return frame[profile.text_columns[0]].astype(str).tolist()
    parts = [role + ": " + frame[col].astype(str) for role, col in profile.roles.items()]
    return pd.concat(parts, axis=1).agg("\n".join, axis=1).tolist() if len(frame) else []


def _normalise(frame: pd.DataFrame, spec: DatasetSpec, where: str) -> pd.DataFrame:
    """Keep the text and label columns, clean the text, drop records with an empty text field."""
    wanted = [*spec.text_columns, *([spec.label_column] if spec.label_column else [])]
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise SourceError(f"{where}: column(s) {missing} not found; columns are {list(frame.columns)}")
    out = frame[wanted].copy()
    for col in spec.text_columns:
        out[col] = out[col].map(lambda v: clean_text(str(v)) if isinstance(v, str) else "")
    empty = np.zeros(len(out), dtype=bool)
    for col in spec.text_columns:
        empty |= out[col].str.len().to_numpy() == 0
    if spec.label_column:
        empty |= out[spec.label_column].isna().to_numpy()
        out[spec.label_column] = out[spec.label_column].astype(str)
    out = out.loc[~empty].reset_index(drop=True)
    if out.empty:
        raise SourceError(f"{where}: no record has non-empty text in {spec.text_columns}")
    return out


def load_texts(spec: DatasetSpec) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, holdout): a named real split when `holdout.source` is set, else a seeded stratified fraction."""
    where = f"source {spec.source.label} (spec {spec.name})"
    real = _normalise(read_source(spec.source), spec, where)
    if spec.holdout.source is not None:
        hold_where = f"holdout source {spec.holdout.source.label} (spec {spec.name})"
        return real, _normalise(read_source(spec.holdout.source), spec, hold_where)
    return split_holdout(real, spec.holdout.fraction, spec.holdout.seed, stratify=spec.label_column)


def load_eval_sets(spec: DatasetSpec) -> dict[str, list[str]]:
    """Each eval set's texts (its `column`, else the spec's text columns joined)."""
    out = {}
    for eval_set in spec.eval_sets:
        frame = read_source(eval_set.source)
        columns = [eval_set.column] if eval_set.column else spec.text_columns
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise SourceError(f"eval set {eval_set.name!r} ({eval_set.source.label}): column(s) {missing} "
                              f"not found; columns are {list(frame.columns)}")
        out[eval_set.name] = frame[columns].astype(str).map(clean_text).agg(" ".join, axis=1).tolist()
    return out


def spec_texts(spec: DatasetSpec, frame: pd.DataFrame) -> list[str]:
    """One string per record as `record_texts` makes it, from the spec alone (before a profile exists)."""
    return record_texts(frame, TextProfile(len(frame), spec.text_columns, _roles(spec), spec.label_column))


def _roles(spec: DatasetSpec) -> dict[str, str]:
    return {"text": spec.text_column} if spec.text_column else dict(spec.fields or {})


def profile_texts(spec: DatasetSpec, train: pd.DataFrame) -> TextProfile:
    from .tokens import text_hashes

    roles = _roles(spec)
    lengths, counts = {}, Counter()
    n_tokens = 0
    vocab: set[str] = set()
    for col in spec.text_columns:
        sizes = np.empty(len(train), dtype=float)
        # a chunk of texts at a time: a million texts' token lists would be gigabytes of strings
        for lo in range(0, len(train), PROFILE_CHUNK):
            part = train[col].iloc[lo:lo + PROFILE_CHUNK]
            tokens = tokenize_all(part)
            sizes[lo:lo + len(tokens)] = [len(t) for t in tokens]
            for t in tokens:
                vocab.update(t)
            counts.update("".join(part))
        q = np.quantile(sizes, [0.0, 0.005, 0.01, 0.05, 0.5, 0.95, 0.99, 0.995, 1.0])
        lengths[col] = dict(zip(["min", "q005", "q01", "q05", "median", "q95", "q99", "q995", "max"], map(float, q)))
        lengths[col]["mean"] = float(sizes.mean())
        n_tokens += int(sizes.sum())
    texts = spec_texts(spec, train)
    labels = train[spec.label_column].value_counts(normalize=True).sort_index() if spec.label_column else pd.Series()
    return TextProfile(
        n_rows=len(train), text_columns=list(spec.text_columns), roles=roles, label_column=spec.label_column,
        labels={str(k): float(v) for k, v in labels.items()}, lengths=lengths,
        charset="".join(sorted(c for c, n in counts.items() if n >= CHARSET_MIN_COUNT)),
        vocabulary=len(vocab), tokens=n_tokens,
        duplicate_rate=float(pd.Series(text_hashes(texts)).duplicated().mean()))


__all__ = ["TextProfile", "load_eval_sets", "load_texts", "profile_texts", "record_texts"]
