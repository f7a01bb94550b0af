"""Rare classes and slices against the cheap baselines: what a practitioner tries before synthetic rows.

Synthetic rows aimed at rare classes and slices (targets.py) are judged against the baselines a practitioner
would try first. Every model is trained with the learner the downstream evaluator chooses on the real
training rows (evaluation.choose_learner) and scored on the same holdout:

- `real`: the real training rows;
- `weighted`: the same rows with balanced class weights (n / (classes x class rows)) as sample weights;
- `smote`: the real rows plus SMOTE-NC rows (imbalanced-learn; SMOTE when every feature is numeric, SMOTEN
  when every one is categorical) that bring every class up to the majority's count;
- `blend`: the blended frame, real + synthetic rows (lineage columns `_sc_*` dropped).

Binary targets: the positive class is the minority class of the real training rows, and each model's decision
threshold is the one with the highest F1 of that class on a stratified validation split (THRESHOLD_FRACTION)
of the training rows: the model is fit on the rest, the threshold chosen, then the model is refit on all its
rows and the threshold applied to the holdout. The blend's fit leaves out every row equal to a validation row
(the real row and any synthetic copy of it). Multiclass: the class with the highest probability, no threshold.
The holdout plays no part in training, in the learner or in the thresholds.

The table: one row per class (one-vs-rest) and one per slice (the positive class within the slice's holdout
rows; for multiclass the positive class is the minority class too): precision, recall, F1 and PR-AUC (average
precision) of each model, each with a paired bootstrap interval over the row's holdout rows (the same
resamples for every model and metric), the best model, blend - real and blend - the best baseline. A row with
fewer than `min_holdout_rows` holdout rows, or without a holdout row of its class, is marked unjudged.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
from imblearn.over_sampling import SMOTE, SMOTEN, SMOTENC
from sklearn.model_selection import train_test_split
from sklearn.utils.class_weight import compute_sample_weight

from ..modality import data_columns
from ..slice_scores import (DEFAULT_THRESHOLD, MIN_HOLDOUT_ROWS, MODELS, THRESHOLD_FRACTION, Scored, at_default,
                            decide, score_row, tuned_threshold)
from ..targets import Slice
from ..utility import BOOTSTRAP_RESAMPLES, CONFIDENCE
from .evaluation import (LEARNER_MODELS, Choice, _datetime_seconds, _is_categorical, _labels, bounded_sample,
                         choose_learner, fit_predict)

SMOTE_NEIGHBOURS = 5  # imbalanced-learn's default k


@dataclass
class TrainingSet:
    """One model's training rows and their sample weights (None: unweighted)."""
    frame: pd.DataFrame
    weights: np.ndarray | None = None


def evaluate_slices(real_train: pd.DataFrame, blended: pd.DataFrame, holdout: pd.DataFrame, target: str,
                    task: str, slices: Sequence[Slice], seed: int, resamples: int = BOOTSTRAP_RESAMPLES,
                    min_holdout_rows: int = MIN_HOLDOUT_ROWS) -> dict:
    """real / weighted / SMOTE / blend per class and per slice on the holdout (see the module docstring)."""
    if task == "regression":
        return {"skipped": "class weights and SMOTE are baselines for classes: a regression target has none"}
    seed = seed % 2**32
    real = bounded_sample(data_columns(real_train), seed).reset_index(drop=True)
    columns = list(real.columns)
    blend = bounded_sample(data_columns(blended)[columns], seed).reset_index(drop=True)
    holdout = holdout[columns].reset_index(drop=True)
    counts = pd.Series(_labels(real[target])).value_counts()
    if len(counts) < 2:
        return {"skipped": f"the real training rows hold one class ({counts.index[0]!r}): nothing to weigh"}
    classes = sorted(counts.index)
    positive = str(counts.sort_index().idxmin())  # the minority class (the first in sort order of equals)
    choice = choose_learner(real, target, task, seed)
    sets, smote = training_sets(real, blend, target, seed)
    binary = len(classes) == 2
    tuned, split = _thresholds(real, blend, target, classes, positive, choice, seed) if binary else ({}, None)
    proba = {name: _probabilities(train, holdout, target, classes, choice, seed) for name, train in sets.items()}
    labels = {name: decide(p, classes, positive, tuned.get(name, {}).get("threshold")) for name, p in proba.items()}
    # the resamples' seed differs from the models' one, as in evaluate()
    scored = Scored(_labels(holdout[target]), classes, proba, labels, resamples, seed + 1, min_holdout_rows)
    everyone = np.ones(len(holdout), dtype=bool)
    rows = [score_row(scored, "class", cls, f"{target} == {cls!r}", everyone, cls) for cls in classes]
    rows += [score_row(scored, "slice", s.name, s.words(), s.mask(holdout), positive) for s in slices]
    models = {name: {"train_rows": len(train.frame), **tuned.get(name, {})} for name, train in sets.items()}
    if binary:
        for name in models:
            models[name]["at_default_threshold"] = at_default(scored, name, positive)
    models["weighted"]["class_weights"] = _class_weights(real[target])
    return {
        "target": target, "classes": classes, "positive": positive,
        "decision": (f"{positive!r} when its probability reaches the model's threshold, tuned for its F1 on a "
                     f"stratified {THRESHOLD_FRACTION:.0%} validation split of the training rows"
                     if binary else
                     "the class with the highest probability (no threshold is tuned for more than two classes)"),
        "learner": {"chosen": choice.record["chosen"], "model": LEARNER_MODELS[choice.name],
                    "why": choice.record["why"]},
        "models": models, "smote": smote, "threshold_split": split, "rows": rows,
        "bootstrap": {"resamples": resamples, "confidence": CONFIDENCE, "paired": True, "interval": "percentile"},
        "holdout_rows": len(holdout), "min_holdout_rows": min_holdout_rows,
    }


# --- the models' training rows -----------------------------------------------------------------------------

def training_sets(real: pd.DataFrame, blend: pd.DataFrame, target: str, seed: int
                  ) -> tuple[dict[str, TrainingSet], dict]:
    """Each model's training rows (no `smote` when SMOTE could not run) and what SMOTE did."""
    sets = {"real": TrainingSet(real),
            "weighted": TrainingSet(real, compute_sample_weight("balanced", _labels(real[target])))}
    generated, smote = smote_rows(real, target, seed)
    if generated is not None:
        sets["smote"] = TrainingSet(pd.concat([real, generated], ignore_index=True))
    sets["blend"] = TrainingSet(blend)
    return sets, smote


def smote_rows(train: pd.DataFrame, target: str, seed: int) -> tuple[pd.DataFrame | None, dict]:
    """SMOTE's new rows for `train`, every class brought up to the majority's count (None when it cannot
    run), and a record: the method, its neighbours, the rows made and why it used fewer neighbours or none."""
    x = train.drop(columns=[target])
    y = _labels(train[target])
    counts = pd.Series(y).value_counts()
    smallest, rarest = int(counts.min()), counts.sort_index().idxmin()
    categorical = [c for c in x.columns if _is_categorical(x[c]) or pd.api.types.is_bool_dtype(x[c])]
    method = "SMOTEN" if len(categorical) == x.shape[1] else "SMOTE" if not categorical else "SMOTE-NC"
    # a class of m rows has m - 1 neighbours to interpolate towards
    k = min(SMOTE_NEIGHBOURS, smallest - 1)
    record = {"method": method, "neighbours": k, "generated_rows": 0, "ran": False, "note": None}
    if k < 1:
        record["note"] = f"class {rarest!r} has {smallest} training row: SMOTE needs two rows of a class"
        return None, record
    if k < SMOTE_NEIGHBOURS:
        record["note"] = (f"class {rarest!r} has {smallest} training rows: SMOTE used {k} neighbours "
                          f"instead of {SMOTE_NEIGHBOURS}")
    numbers, levels = _smote_encode(x, categorical)
    sampler = _sampler(method, [x.columns.get_loc(c) for c in categorical], k, seed)
    try:
        x_all, y_all = sampler.fit_resample(numbers, y)
    except ValueError as exc:  # e.g. a feature imbalanced-learn refuses: the baseline is reported missing
        record.update(note=f"{method} could not run: {exc}")
        return None, record
    # imbalanced-learn returns the original rows first, then the new ones
    new = _smote_decode(x_all[len(x):], x, levels)
    original = dict(zip(y, train[target]))  # the label strings back to the target's own values
    new[target] = pd.Series([original[v] for v in y_all[len(x):]], dtype=train[target].dtype)
    record.update(ran=True, generated_rows=len(new))
    return new[list(train.columns)], record


def _sampler(method: str, categorical: list[int], k: int, seed: int):
    if method == "SMOTE":
        return SMOTE(k_neighbors=k, random_state=seed)
    if method == "SMOTEN":
        return SMOTEN(k_neighbors=k, random_state=seed)
    return SMOTENC(categorical_features=categorical, k_neighbors=k, random_state=seed)


def _smote_encode(x: pd.DataFrame, categorical: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The features as SMOTE takes them: a categorical column as integer codes (missing is a level of its
    own), any other as floats (datetimes in seconds) with a missing value at the column's median, since SMOTE
    interpolates between rows and cannot skip a missing value; and each categorical column's levels."""
    out, levels = [], {}
    for col in x.columns:
        if col in categorical:
            codes, uniques = pd.factorize(x[col])  # missing: code -1
            levels[col] = np.append(uniques.to_numpy(dtype=object), np.nan)  # so level[-1] is missing
            out.append(codes.astype(float))
            continue
        values = _seconds_or_numbers(x[col])
        median = np.nanmedian(values) if np.isfinite(values).any() else 0.0
        out.append(np.where(np.isnan(values), median, values))
    return np.column_stack(out), levels


def _smote_decode(rows: np.ndarray, x: pd.DataFrame, levels: dict[str, np.ndarray]) -> pd.DataFrame:
    """SMOTE's rows back in the frame's columns: levels for codes, datetimes for seconds; an integer column
    holds the interpolated values as floats, as SMOTE made them."""
    out = {}
    for i, col in enumerate(x.columns):
        series = x[col]
        if col in levels:
            out[col] = pd.Series(levels[col][rows[:, i].round().astype(int)]).astype(series.dtype)
        elif pd.api.types.is_datetime64_any_dtype(series):
            stamps = pd.Series(pd.to_datetime(rows[:, i], unit="s"))
            tz = getattr(series.dt, "tz", None)
            out[col] = stamps.dt.tz_localize("UTC").dt.tz_convert(tz) if tz is not None else stamps
        else:
            out[col] = rows[:, i]
    return pd.DataFrame(out)


def _seconds_or_numbers(series: pd.Series) -> np.ndarray:
    if pd.api.types.is_datetime64_any_dtype(series):
        return _datetime_seconds(series)
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _class_weights(target: pd.Series) -> dict[str, float]:
    """The balanced weight of each class's rows, n / (classes x class rows), as compute_sample_weight gives it."""
    counts = pd.Series(_labels(target)).value_counts()
    return {cls: len(target) / (len(counts) * int(n)) for cls, n in sorted(counts.items())}


def _without(frame: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """`frame` without every row equal to one of `rows` (a validation row, and any synthetic copy of it)."""
    drop = _row_keys(frame).isin(set(_row_keys(rows)))
    return frame.loc[~drop.to_numpy()].reset_index(drop=True)


def _row_keys(frame: pd.DataFrame) -> pd.Series:
    # numbers compared as floats: synthetic rows may turn an integer column into floats
    plain = {c: frame[c].astype(float) if pd.api.types.is_numeric_dtype(frame[c]) else frame[c].astype(object)
             for c in frame.columns}
    return pd.util.hash_pandas_object(pd.DataFrame(plain), index=False)


# --- predictions and thresholds ----------------------------------------------------------------------------

def _probabilities(train: TrainingSet, rows: pd.DataFrame, target: str, classes: list[str], choice: Choice,
                   seed: int) -> np.ndarray:
    """The class probabilities on `rows` (one column per class of `classes`, the real training rows' classes)
    of the chosen learner fit on `train`; 0 for a class the model never saw. A class only synthetic rows
    hold is dropped: no holdout row is judged against it."""
    fitted = fit_predict(train.frame, rows, target, "classification", seed, choice.learner, choice.params,
                         fixed_iter=choice.fixed_iter, sample_weight=train.weights)
    column = {cls: j for j, cls in enumerate(classes)}
    out = np.zeros((len(rows), len(classes)))
    if fitted.proba is None:  # a one-class training set: its class for every row
        if fitted.labels[0] in column:
            out[:, column[fitted.labels[0]]] = 1.0
        return out
    for j, cls in enumerate(fitted.classes):
        if cls in column:
            out[:, column[cls]] = fitted.proba[:, j]
    return out


def _thresholds(real: pd.DataFrame, blend: pd.DataFrame, target: str, classes: list[str], positive: str,
                choice: Choice, seed: int) -> tuple[dict[str, dict], dict | None]:
    """Each model's decision threshold, chosen on a stratified validation split of the real training rows
    (each model fit on the rest of its rows), with its validation F1; and the split's sizes."""
    y = _labels(real[target])
    if pd.Series(y).value_counts().min() < 2:
        why = f"a class has one training row: no validation split, threshold {DEFAULT_THRESHOLD}"
        return {name: {"threshold": DEFAULT_THRESHOLD, "threshold_note": why} for name in MODELS}, None
    fit, val = (np.sort(part) for part in train_test_split(np.arange(len(y)), test_size=THRESHOLD_FRACTION,
                                                           stratify=y, random_state=seed))
    validation = real.iloc[val].reset_index(drop=True)
    sets, _ = training_sets(real.iloc[fit].reset_index(drop=True), _without(blend, validation), target, seed)
    truth = y[val] == positive
    split = {"fit_rows": len(fit), "validation_rows": len(val), "validation_positives": int(truth.sum())}
    out = {}
    for name in MODELS:
        if name not in sets:  # SMOTE ran on all rows but not on the smaller fit part
            out[name] = {"threshold": DEFAULT_THRESHOLD,
                         "threshold_note": f"{name} could not be fit without the validation rows"}
            continue
        scores = _probabilities(sets[name], validation, target, classes, choice, seed)[:, classes.index(positive)]
        threshold, f1 = tuned_threshold(truth, scores)
        out[name] = {"threshold": threshold, "validation_f1": f1}
    return out, split
