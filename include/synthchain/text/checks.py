"""Record checks for generated texts: one column per check, and a `violations` summary.

Each check is cheap and independent of the generator that wrote the text, so the
same checks hold an n-gram model and an LLM to one standard.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from ..specs import TextSpec
from .profile import TextProfile

# Refusals and boilerplate that models emit instead of data; matched case-insensitively.
REFUSAL = re.compile(
    r"\b(as an ai( language model)?|i('m| am) (sorry|unable)|i can(not|'t) (help|assist|provide|comply)"
    r"|lorem ipsum|here is (a|an|the) (example|review|response)|\[insert|<\|im_(start|end)\|>)", re.IGNORECASE)


def repeated_ngram_share(tokens: list[str], n: int = 3) -> float:
    """Share of a text's n-grams that already occurred earlier in it (degenerate loops score high)."""
    if len(tokens) < n + 1:
        return 0.0
    grams = list(zip(*(tokens[i:] for i in range(n))))
    return 1.0 - len(set(grams)) / len(grams)


def unknown_char_share(text: str, charset: set[str]) -> float:
    if not text:
        return 0.0
    return sum(c not in charset for c in text) / len(text)


def label_model(texts: list[str], labels: list[str], seed: int = 0, class_weight: str | None = "balanced"):
    """TF-IDF + logistic regression on real texts: the label-consistency judge (and the downstream model)."""
    model = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_features=50_000, sublinear_tf=True),
        LogisticRegression(max_iter=2000, C=4.0, class_weight=class_weight, random_state=seed % 2**32))
    return model.fit(texts, labels)


def record_checks(frame: pd.DataFrame, tokens: dict[str, list[list[str]]], profile: TextProfile, settings: TextSpec,
                  label_judge=None, texts: list[str] | None = None) -> pd.DataFrame:
    """Per-record check results. `tokens` maps each text column to its token lists."""
    n = len(frame)
    charset = set(profile.charset)
    lo_q, hi_q = settings.length_quantiles
    out = pd.DataFrame(index=range(n))
    reasons = [[] for _ in range(n)]
    for col in profile.text_columns:
        lengths = np.array([len(t) for t in tokens[col]])
        band = profile.lengths[col]
        lo = length_bound(band, lo_q, "low")
        hi = length_bound(band, hi_q, "high")
        out[f"{col}_tokens"] = lengths
        repeat = np.array([repeated_ngram_share(t) for t in tokens[col]])
        unknown = np.array([unknown_char_share(t, charset) for t in frame[col].astype(str)])
        refusal = np.array([bool(REFUSAL.search(t)) for t in frame[col].astype(str)], dtype=bool)
        out[f"{col}_repeated_3gram_share"] = repeat
        out[f"{col}_unknown_char_share"] = unknown
        for i in range(n):
            if lengths[i] == 0:
                reasons[i].append(f"{col}: empty")
            elif not lo <= lengths[i] <= hi:
                reasons[i].append(f"{col}: {lengths[i]} tokens outside the real band [{lo:g}, {hi:g}]")
            if repeat[i] > settings.max_repeated_ngram_share:
                reasons[i].append(f"{col}: {repeat[i]:.0%} of 3-grams repeat (> {settings.max_repeated_ngram_share:.0%})")
            if unknown[i] > settings.max_unknown_char_share:
                reasons[i].append(f"{col}: {unknown[i]:.1%} characters unseen in real text")
            if refusal[i]:
                reasons[i].append(f"{col}: refusal or boilerplate text")
    if profile.label_column and label_judge is not None and n:
        classes = list(label_judge.classes_)
        proba = label_judge.predict_proba(texts)
        stated = frame[profile.label_column].astype(str).to_numpy()
        index = np.array([classes.index(s) if s in classes else -1 for s in stated])
        confidence = np.where(index >= 0, proba[np.arange(n), np.maximum(index, 0)], 0.0)
        out["label_confidence"] = confidence
        for i in np.flatnonzero(confidence < settings.min_label_confidence):
            reasons[i].append(f"label {stated[i]!r} has p={confidence[i]:.3f} under a real-trained classifier "
                              f"(< {settings.min_label_confidence})")
    out["violations"] = ["; ".join(r) for r in reasons]
    return out


def length_bound(band: dict[str, float], q: float, side: str) -> float:
    """The profile's token length at quantile q (the profile keeps a fixed set of quantiles)."""
    known = {0.0: "min", 0.005: "q005", 0.01: "q01", 0.05: "q05", 0.5: "median", 0.95: "q95", 0.99: "q99",
             0.995: "q995", 1.0: "max"}
    if q in known:
        return band[known[q]]
    keys = sorted(known)
    pick = max(k for k in keys if k <= q) if side == "low" else min(k for k in keys if k >= q)
    return band[known[pick]]
