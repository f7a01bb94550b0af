"""Downstream evaluation for labelled text: TF-IDF + logistic regression on the real holdout.

The same model is trained on real-only (TRTR), synthetic-only (TSTR) and the blend;
macro-F1 is the gated metric (as for tabular, blend vs real-only), ROC AUC is reported
for binary labels.
"""
from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import f1_score, roc_auc_score

from .checks import label_model


def train_and_score(texts: list[str], labels: list[str], test_texts: list[str], test_labels: list[str],
                    seed: int) -> dict[str, float]:
    classes = sorted(set(test_labels))
    if len(set(labels)) < 2:  # a one-class training set can only guess
        return {"macro_f1": 0.0, "roc_auc": 0.5 if len(classes) == 2 else float("nan")}
    model = label_model(texts, labels, seed)
    predicted = model.predict(test_texts)
    out = {"macro_f1": float(f1_score(test_labels, predicted, average="macro", labels=classes))}
    if len(classes) == 2:
        positive = classes[1]
        column = list(model.classes_).index(positive) if positive in model.classes_ else None
        scores = model.predict_proba(test_texts)[:, column] if column is not None else np.zeros(len(test_texts))
        out["roc_auc"] = float(roc_auc_score([y == positive for y in test_labels], scores))
    return out


def evaluate_text(real: tuple[list[str], list[str]], synthetic: tuple[list[str], list[str]],
                  blend: tuple[list[str], list[str]], holdout: tuple[list[str], list[str]], seed: int) -> dict:
    scores = {name: train_and_score(*data, *holdout, seed=seed)
              for name, data in (("trtr", real), ("tstr", synthetic), ("blend", blend))}
    trtr, tstr, blended = (scores[k]["macro_f1"] for k in ("trtr", "tstr", "blend"))
    out = {"metric": "macro_f1", "model": "tfidf_logistic_regression", "trtr": trtr, "tstr": tstr, "blend": blended,
           "blend_minus_trtr": blended - trtr, "tstr_ratio": tstr / trtr if trtr else float("nan"),
           "train_rows": {"real": len(real[0]), "synthetic": len(synthetic[0]), "blend": len(blend[0])},
           "holdout_rows": len(holdout[0])}
    if "roc_auc" in scores["trtr"]:
        out["roc_auc"] = {k: v.get("roc_auc") for k, v in scores.items()}
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in out.items()}
