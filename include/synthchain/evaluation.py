"""Downstream evaluation: does the data train a model that works on real rows?

The same model is trained on real-only (TRTR), synthetic-only (TSTR) and the
blend, and each is scored on the real holdout no generator has seen. On a large
table each model trains on a uniform sample of at most MAX_TRAIN_ROWS rows (the
holdout is always scored whole); `evaluation_train_rows` says how many it used.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import f1_score, r2_score, roc_auc_score


MAX_TRAIN_ROWS = 100_000  # gradient boosting on more rows barely moves the score: 100k rows fit in ~8 s on 2 cores


def bounded_sample(frame: pd.DataFrame, seed: int, limit: int | None = None) -> pd.DataFrame:
    """The frame itself when small, else a uniform sample of `limit` rows (in their original order)."""
    limit = MAX_TRAIN_ROWS if limit is None else limit
    if len(frame) <= limit:
        return frame
    rng = np.random.default_rng(seed)
    return frame.iloc[np.sort(rng.choice(len(frame), limit, replace=False))].reset_index(drop=True)


def _features(frame: pd.DataFrame, target: str, categories: dict[str, list]) -> pd.DataFrame:
    x = frame.drop(columns=[target]).copy()
    for col, cats in categories.items():
        x[col] = pd.Categorical(x[col].astype(object).where(x[col].notna(), None), categories=cats)
    for col in x.columns:
        if col not in categories:
            x[col] = pd.to_numeric(x[col] if not pd.api.types.is_datetime64_any_dtype(x[col]) else x[col].astype("int64"),
                                   errors="coerce")
    return x


def metric_name(task: str, n_classes: int) -> str:
    if task == "regression":
        return "r2"
    return "roc_auc" if n_classes == 2 else "macro_f1"


def train_and_score(train: pd.DataFrame, holdout: pd.DataFrame, target: str, task: str, seed: int) -> float:
    categories = {c: sorted(pd.concat([train[c], holdout[c]]).dropna().astype(str).unique().tolist())
                  for c in train.columns if c != target and not pd.api.types.is_numeric_dtype(train[c])
                  and not pd.api.types.is_datetime64_any_dtype(train[c])}
    # Category values are matched as strings; cast the frames the same way.
    def prep(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        for c in categories:
            frame[c] = frame[c].astype(str).where(frame[c].notna(), None)
        return _features(frame, target, categories)

    x_train, x_test = prep(train), prep(holdout)
    if task == "regression":
        model = HistGradientBoostingRegressor(categorical_features="from_dtype", random_state=seed)
        model.fit(x_train, train[target].astype(float))
        return float(r2_score(holdout[target].astype(float), model.predict(x_test)))
    y_train, y_test = train[target].astype(str), holdout[target].astype(str)
    if y_train.nunique() < 2:
        return 0.5 if y_test.nunique() == 2 else 0.0  # a one-class training set can only guess
    model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=seed)
    model.fit(x_train, y_train)
    classes = sorted(y_test.unique())
    if len(classes) == 2:
        proba = model.predict_proba(x_test)
        positive = list(model.classes_).index(classes[1]) if classes[1] in model.classes_ else None
        scores = proba[:, positive] if positive is not None else np.zeros(len(x_test))
        return float(roc_auc_score(y_test == classes[1], scores))
    return float(f1_score(y_test, model.predict(x_test), average="macro"))


def evaluate(real_train: pd.DataFrame, synthetic: pd.DataFrame, blended: pd.DataFrame, holdout: pd.DataFrame,
             target: str, task: str, seed: int) -> dict:
    n_classes = holdout[target].nunique() if task == "classification" else 0
    seed = seed % 2**32
    fit = {name: bounded_sample(frame, seed) for name, frame in
           (("real", real_train), ("synthetic", synthetic), ("blend", blended))}
    trtr = train_and_score(fit["real"], holdout, target, task, seed)
    tstr = train_and_score(fit["synthetic"], holdout, target, task, seed) if len(synthetic) else float("nan")
    mix = train_and_score(fit["blend"], holdout, target, task, seed)
    return {
        "metric": metric_name(task, n_classes), "trtr": trtr, "tstr": tstr, "blend": mix,
        "tstr_ratio": tstr / trtr if trtr else float("nan"), "blend_minus_trtr": mix - trtr,
        "train_rows": {"real": len(real_train), "synthetic": len(synthetic), "blend": len(blended)},
        "evaluation_train_rows": {name: len(frame) for name, frame in fit.items()},
        "evaluation_train_rows_cap": MAX_TRAIN_ROWS, "evaluation_holdout_rows": len(holdout),
    }
