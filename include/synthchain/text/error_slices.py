"""Slices from errors for labelled text: the labels a classifier trained on real records gets wrong most.

`targets.from_errors` for a text spec, found on the training records alone (the holdout is never an input):

1. Out-of-fold predictions of the label model the evaluator and the label check use (TF-IDF + logistic
   regression, checks.label_model), `folds`-fold stratified on a seeded sample of at most `max_rows` records.
2. Per label: its out-of-fold error rate (1 - recall), its errors and its error mass, errors - rows x p with
   p the overall error rate (the errors it holds beyond what the overall rate predicts: what more examples of
   that label could fix).
3. A label is "clearly above" p when it holds at least `min_rows` analysed records, its error rate is at least
   MIN_LIFT x p, and its exact binomial tail P(at least its errors in its rows at rate p) is at most
   MAX_P_VALUE / labels (Bonferroni over the labels tried: a search over a handful of labels needs no
   permutation test, unlike the tabular tree search over many regions).
4. The top `n_slices` by error mass become slices `label_column == label`, each with quota `rows`, named
   errors_1, errors_2, ... Its `why` says: rule "from_errors", kind "label", error_rate, overall_error_rate,
   errors, error_mass, lift, p_value, real_rows, cv_rows, folds, learner, confused_with (the label most often
   predicted instead) and seed.

Clusters of an unlabelled corpus are not searched: without a label no model is wrong about anything, so a
text spec without `label_column` is refused when loaded.
Cost: `folds` fits of the label model on at most `max_rows` records (about 2 s on 5,000 reviews, 2 cores).
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
from scipy.stats import binom
from sklearn.model_selection import StratifiedKFold

from ..targets import Condition, Slice
from .checks import label_model

MIN_LIFT = 1.25  # a label's error rate at least this times the overall rate
MAX_P_VALUE = 0.01  # family-wise, split over the labels tried
MAX_ROWS = 5000  # records analysed at most (a seeded sample beyond)


def find_label_error_slices(texts: list[str], labels: list, label_column: str, *, n_slices: int = 3,
                            rows: int = 500, folds: int = 5, min_rows: int = 20, seed: int = 0,
                            max_rows: int = MAX_ROWS) -> list[Slice]:
    """Labels the real-only model errs on clearly more than overall, ranked by error mass; [] when none."""
    values = pd.Series(labels, dtype=object)
    keep = values.notna().to_numpy()
    texts, values = [t for t, ok in zip(texts, keep) if ok], values[keep].reset_index(drop=True)
    everywhere = Counter(values.astype(str))  # real_rows: the training records each label's rule selects
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.permutation(len(texts))[:max_rows]) if len(texts) > max_rows else np.arange(len(texts))
    texts, values = [texts[i] for i in sample], values.iloc[sample].reset_index(drop=True)
    as_text = values.astype(str).to_numpy()
    counts = Counter(as_text)
    if len(counts) < 2:
        return []
    k = max(2, min(folds, min(counts.values())))  # a label rarer than the folds cannot be stratified over them
    predicted = np.empty(len(texts), dtype=object)
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed % 2**32)
    for fit_at, predict_at in splitter.split(np.zeros(len(texts)), as_text):
        model = label_model([texts[i] for i in fit_at], as_text[fit_at].tolist(), seed)
        predicted[predict_at] = model.predict([texts[i] for i in predict_at])
    wrong = predicted != as_text
    p = float(wrong.mean())
    if p == 0.0:
        return []
    original = {str(v): v for v in values.unique()}
    candidates = []
    for label, n in counts.items():
        at = as_text == label
        errors = int(wrong[at].sum())
        rate = errors / n
        tail = float(binom.sf(errors - 1, n, p)) if errors else 1.0
        if n < min_rows or rate < MIN_LIFT * p or tail > MAX_P_VALUE / len(counts):
            continue
        confused = Counter(predicted[at & wrong]).most_common(1)
        candidates.append((errors - n * p, label, {
            "rule": "from_errors", "kind": "label", "error_rate": round(rate, 4), "overall_error_rate": round(p, 4),
            "errors": errors, "error_mass": round(errors - n * p, 2), "lift": round(rate / p, 3),
            "p_value": tail, "real_rows": everywhere[label], "cv_rows": len(texts), "sampled": len(texts) < len(keep),
            "folds": k, "learner": "tfidf_logistic_regression",
            "confused_with": confused[0][0] if confused else None, "seed": seed}))
    candidates.sort(key=lambda c: -c[0])
    return [Slice(f"errors_{i + 1}", (Condition(label_column, "==", _plain(original[label])),), rows, why)
            for i, (_, label, why) in enumerate(candidates[:n_slices])]


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value
