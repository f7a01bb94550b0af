"""Labels and slices of labelled text against the cheap baseline: class weights, in the same run.

Every model is the label model (TF-IDF + logistic regression, checks.label_model) trained on:
- `real`: the real training records, unweighted;
- `weighted`: the same records with balanced class weights (what a practitioner tries first for a rare label);
- `blend`: the blended records, real + synthetic, unweighted (the targeted rows do the balancing).
There is no SMOTE for text (interpolating sparse TF-IDF vectors gives no text and no defensible baseline).

Binary labels: the positive class is the minority label of the real training records; each model's decision
threshold is the one with the highest F1 of that class on a stratified validation split (THRESHOLD_FRACTION)
of the training records (the blend's fit leaves the validation records out), then the model is refit on all
its records. The holdout plays no part in training or thresholds. Scoring and the table are slice_scores'.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from ..slice_scores import (DEFAULT_THRESHOLD, MIN_HOLDOUT_ROWS, THRESHOLD_FRACTION, Scored, at_default, decide,
                            score_row, tuned_threshold)
from ..targets import Slice
from ..utility import BOOTSTRAP_RESAMPLES, CONFIDENCE
from .checks import label_model

LEARNER = "TF-IDF (1-2 grams) + logistic regression"


def _model(texts: list[str], labels: list[str], seed: int, weighted: bool):
    return label_model(texts, labels, seed, class_weight="balanced" if weighted else None)


def _proba(model, texts: list[str], classes: list[str]) -> np.ndarray:
    """Probabilities in `classes` order (0 for a class the model never saw)."""
    out = np.zeros((len(texts), len(classes)))
    got = model.predict_proba(texts)
    for j, cls in enumerate(model.classes_):
        if cls in classes:
            out[:, classes.index(cls)] = got[:, j]
    return out


def evaluate_text_slices(real: tuple[list[str], list[str]], blend: tuple[list[str], list[str]],
                         holdout: tuple[list[str], list[str]], holdout_frame: pd.DataFrame, label_column: str,
                         slices: Sequence[Slice], seed: int, resamples: int = BOOTSTRAP_RESAMPLES,
                         min_holdout_rows: int = MIN_HOLDOUT_ROWS) -> dict:
    """real / weighted / blend per label and per slice on the holdout (see the module docstring)."""
    seed = seed % 2**32
    texts, labels = real[0], np.asarray(real[1], dtype=object)
    counts = pd.Series(labels).value_counts()
    if len(counts) < 2:
        return {"skipped": f"the real training records hold one label ({counts.index[0]!r}): nothing to weigh"}
    classes = sorted(counts.index)
    positive = str(counts.sort_index().idxmin())
    binary = len(classes) == 2
    sets = {"real": (texts, labels, False), "weighted": (texts, labels, True),
            "blend": (blend[0], np.asarray(blend[1], dtype=object), False)}
    tuned, split = _thresholds(sets, classes, positive, seed) if binary else ({}, None)
    proba = {name: _proba(_model(list(x), list(y), seed, w), holdout[0], classes) for name, (x, y, w) in sets.items()}
    decided = {name: decide(p, classes, positive, tuned.get(name, {}).get("threshold")) for name, p in proba.items()}
    scored = Scored(np.asarray(holdout[1], dtype=object), classes, proba, decided, resamples, seed + 1,
                    min_holdout_rows)
    everyone = np.ones(len(holdout[0]), dtype=bool)
    rows = [score_row(scored, "class", cls, f"{label_column} == {cls!r}", everyone, cls) for cls in classes]
    rows += [score_row(scored, "slice", s.name, s.words(), s.mask(holdout_frame), positive) for s in slices]
    models = {name: {"train_rows": len(x), **tuned.get(name, {})} for name, (x, _, _) in sets.items()}
    if binary:
        for name in models:
            models[name]["at_default_threshold"] = at_default(scored, name, positive)
    return {
        "target": label_column, "classes": classes, "positive": positive,
        "decision": (f"{positive!r} when its probability reaches the model's threshold, tuned for its F1 on a "
                     f"stratified {THRESHOLD_FRACTION:.0%} validation split of the training records"
                     if binary else "the label with the highest probability (no threshold for more than two)"),
        "learner": {"chosen": "tfidf_logistic_regression", "model": LEARNER, "why": "the text label model"},
        "models": models, "threshold_split": split, "rows": rows,
        "bootstrap": {"resamples": resamples, "confidence": CONFIDENCE, "paired": True, "interval": "percentile"},
        "holdout_rows": len(holdout[0]), "min_holdout_rows": min_holdout_rows,
    }


def _thresholds(sets: dict, classes: list[str], positive: str, seed: int) -> tuple[dict[str, dict], dict | None]:
    texts, labels, _ = sets["real"]
    if pd.Series(labels).value_counts().min() < 2:
        why = f"a label has one training record: no validation split, threshold {DEFAULT_THRESHOLD}"
        return {name: {"threshold": DEFAULT_THRESHOLD, "threshold_note": why} for name in sets}, None
    fit, val = (np.sort(part) for part in train_test_split(np.arange(len(labels)), test_size=THRESHOLD_FRACTION,
                                                           stratify=labels, random_state=seed))
    held = {texts[i] for i in val}
    validation = [texts[i] for i in val]
    truth = labels[val] == positive
    out = {}
    for name, (x, y, weighted) in sets.items():
        if name == "blend":  # every blended record but the validation texts (the real ones and any copy of them)
            keep = [i for i, t in enumerate(x) if t not in held]
            x_fit, y_fit = [x[i] for i in keep], y[keep]
        else:
            x_fit, y_fit = [x[i] for i in fit], y[fit]
        scores = _proba(_model(x_fit, list(y_fit), seed, weighted), validation, classes)[:, classes.index(positive)]
        threshold, f1 = tuned_threshold(truth, scores)
        out[name] = {"threshold": threshold, "validation_f1": f1}
    return out, {"fit_rows": len(fit), "validation_rows": len(val), "validation_positives": int(truth.sum())}
