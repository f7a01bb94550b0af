"""Scoring classes and slices of a holdout for several models at once, with paired bootstrap intervals.

Shared by every modality's per-slice evaluation (tabular/baselines.py, text/baselines.py): each model's class
probabilities and decided labels on the same holdout rows become table rows, one per class (one-vs-rest) and
one per slice (the positive class within the slice's holdout rows): precision, recall, F1 and PR-AUC of each
model, each with a paired bootstrap interval over the row's holdout rows (the same resamples for every model
and metric), the best model, blend - real and blend - the best baseline. A row with fewer than
`min_rows` holdout rows, or without a holdout row of its class, is marked unjudged.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from sklearn.metrics import precision_recall_curve

from .utility import interval, paired_bootstrap

MODELS = ("real", "weighted", "smote", "blend")  # those a modality has (text has no SMOTE)
BASELINES = ("real", "weighted", "smote")
METRICS = ("pr_auc", "f1", "precision", "recall")
COMPARED = ("pr_auc", "f1")  # the metrics `best` and the differences are given for
MIN_HOLDOUT_ROWS = 20
# a quarter, not the tabular evaluator's 10% early-stopping split: on attrition's ~1,100 training rows 10%
# holds 18 leavers, too few to place a threshold; a quarter holds ~45
THRESHOLD_FRACTION = 0.25
DEFAULT_THRESHOLD = 0.5


@dataclass
class Scored:
    """The models' holdout predictions (probabilities, one column per class; decided labels) and how a table
    row is judged and resampled."""
    truth: np.ndarray  # the holdout's labels
    classes: list[str]
    proba: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    resamples: int
    seed: int
    min_rows: int


def decide(proba: np.ndarray, classes: list[str], positive: str, threshold: float | None) -> np.ndarray:
    """Binary: the positive class where its probability reaches `threshold`; else the most probable class."""
    if threshold is None:
        return np.asarray(classes)[np.argmax(proba, axis=1)]
    other = next(c for c in classes if c != positive)
    return np.where(proba[:, classes.index(positive)] >= threshold, positive, other)


def tuned_threshold(truth: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """The score threshold with the highest F1 on the validation rows (the lowest of equals), and that F1."""
    precision, recall, thresholds = precision_recall_curve(truth, scores)
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))[:-1]
    best = int(np.argmax(f1))
    return float(thresholds[best]), float(f1[best])


# --- scoring with a paired bootstrap -----------------------------------------------------------------------

class OneVsRest:
    """One class's metric on holdout rows, whole and on bootstrap resamples (utility.Scorer): precision,
    recall and F1 of decisions (`pred` true where the class is predicted), or PR-AUC (average precision, as
    scikit-learn computes it) of scores. NaN where undefined (no predicted or no true rows of the class)."""

    def __init__(self, truth: np.ndarray, metric: str):
        self.truth = np.asarray(truth, dtype=bool)
        self.metric = metric

    def point(self, pred: np.ndarray) -> float:
        return float(self.resampled(pred, np.arange(len(self.truth))[None, :])[0])

    def resampled(self, pred: np.ndarray, idx: np.ndarray) -> np.ndarray:
        if self.metric == "pr_auc":
            return self._average_precision(np.asarray(pred, dtype=float), idx)
        b = len(idx)
        cells = (self.truth * 2 + np.asarray(pred, dtype=bool))[idx] + (np.arange(b) * 4)[:, None]
        counts = np.bincount(cells.ravel(), minlength=b * 4).reshape(b, 4).astype(float)
        fp, fn, tp = counts[:, 1], counts[:, 2], counts[:, 3]  # cell: 2 x truth + prediction
        num, den = {"precision": (tp, tp + fp), "recall": (tp, tp + fn), "f1": (2 * tp, 2 * tp + fp + fn)}[self.metric]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(den > 0, num / den, np.nan)

    def _average_precision(self, scores: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """Sum over distinct scores, highest first, of (the class's rows at that score / its rows) x the
        precision of predicting the class at and above that score."""
        b = len(idx)
        _, group = np.unique(-scores, return_inverse=True)  # tied scores share a group, highest scores first
        g = int(group.max()) + 1
        cells = (group * 2 + self.truth)[idx] + (np.arange(b) * 2 * g)[:, None]
        table = np.bincount(cells.ravel(), minlength=b * 2 * g).reshape(b, g, 2).astype(float)
        neg, pos = table[:, :, 0], table[:, :, 1]
        tp, flagged = np.cumsum(pos, axis=1), np.cumsum(pos + neg, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = np.where(flagged > 0, tp / flagged, 0.0)
            return (pos * precision).sum(axis=1) / pos.sum(axis=1)


def score_row(scored: Scored, kind: str, name: str, rule: str, mask: np.ndarray, cls: str) -> dict:
    """One table row: class `cls`, one-vs-rest, on the holdout rows of `mask`."""
    truth = scored.truth[mask] == cls
    n, positives = int(mask.sum()), int(truth.sum())
    row = {"kind": kind, "name": name, "rule": rule, "class": cls, "holdout_rows": n, "positives": positives}
    if n < scored.min_rows:
        return {**row, "judged": False, "reason": f"too few holdout rows to judge ({n})"}
    if not positives:
        return {**row, "judged": False, "reason": f"no holdout row of class {cls!r} to judge ({n} rows)"}
    column = scored.classes.index(cls)
    scores = {model: p[mask, column] for model, p in scored.proba.items()}
    decisions = {model: labels[mask] == cls for model, labels in scored.labels.items()}
    return {**row, "judged": True, **_compare(truth, scores, decisions, scored.resamples, scored.seed)}


def _compare(truth: np.ndarray, scores: dict[str, np.ndarray], decisions: dict[str, np.ndarray], resamples: int,
             seed: int) -> dict:
    """Each metric of each model with its interval; for COMPARED metrics the best model (by point), blend -
    real and blend - the best baseline (the baseline chosen by its point, the difference resampled)."""
    out = {"metrics": {}, "best": {}, "blend_minus_real": {}, "gain_over_best_baseline": {}}
    for metric in METRICS:
        preds = scores if metric == "pr_auc" else decisions
        points, reps = _figures(OneVsRest(truth, metric), preds, resamples, seed)
        out["metrics"][metric] = {model: interval(points[model], reps[model]) for model in preds}
        if metric not in COMPARED:
            continue
        out["best"][metric] = _best(points, MODELS)
        out["blend_minus_real"][metric] = interval(points["blend"] - points["real"], reps["blend"] - reps["real"])
        base = _best(points, BASELINES)
        out["gain_over_best_baseline"][metric] = (
            {"baseline": base, **interval(points["blend"] - points[base], reps["blend"] - reps[base])}
            if base else {"baseline": None, **interval(float("nan"), np.empty(0))})
    return out


def _figures(scorer: OneVsRest, preds: dict[str, np.ndarray], resamples: int, seed: int
             ) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Each model's point and its replicates on the same resamples (one seed: every metric, every model)."""
    points = {model: scorer.point(p) for model, p in preds.items()}
    reps = paired_bootstrap(scorer, preds, resamples, seed) if resamples else {m: np.empty(0) for m in preds}
    return points, reps


def _best(points: dict[str, float], among: Sequence[str]) -> str | None:
    """The model of `among` with the highest point (the first of equals); None when none has one."""
    scored = [m for m in among if m in points and np.isfinite(points[m])]
    return max(scored, key=lambda m: points[m]) if scored else None


def at_default(scored: Scored, model: str, positive: str) -> dict:
    """The positive class's precision, recall and F1 on the whole holdout at DEFAULT_THRESHOLD (what the
    model does untuned), each with its interval."""
    decisions = {model: scored.proba[model][:, scored.classes.index(positive)] >= DEFAULT_THRESHOLD}
    out = {"threshold": DEFAULT_THRESHOLD}
    for metric in ("precision", "recall", "f1"):
        points, reps = _figures(OneVsRest(scored.truth == positive, metric), decisions, scored.resamples, scored.seed)
        out[metric] = interval(points[model], reps[model])
    return out
