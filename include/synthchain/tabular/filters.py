"""Filtering: small blocks that each decide keep/drop with a reason.

As in datatrove, a filter only sees rows that earlier filters kept, and nothing
is thrown away: dropped rows come back with the filter's name and reason so they
can be stored for audit.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from ..filters import Decision, RowFilter
from ..lineage import row_hashes
from .profile import Profile
from .verification import RowEncoder
from .verification.copies import DEFAULT_K_MIN, copy_decisions


@dataclass
class FilterInput:
    """What a filter may look at. `rows` and `checks` are aligned row for row."""

    rows: pd.DataFrame  # data columns only
    checks: pd.DataFrame  # per-row verification results (violations, exact_copy, dcr, nndr)
    train: pd.DataFrame
    profile: Profile
    holdout_dcr: np.ndarray
    seed: int = 0
    # every real training row, also when `train` is one slice's (a targeted run): what a label is judged by
    all_train: pd.DataFrame | None = None

    def subset(self, index: np.ndarray) -> "FilterInput":
        """The same input restricted to the rows earlier filters kept."""
        return FilterInput(self.rows.iloc[index].reset_index(drop=True), self.checks.iloc[index].reset_index(drop=True),
                           self.train, self.profile, self.holdout_dcr, self.seed, self.all_train)


class ExactDuplicateFilter(RowFilter):
    """Exact copies of real training rows and repeats within the batch, on the k-anonymity rule.

    A copy of a rare training profile (fewer than k_min training rows share it) is dropped; a copy of a
    common profile is kept up to that profile's real frequency in the batch (see
    verification.copies.copy_decisions), so a table with a small domain is not emptied; a row no training
    row has is dropped when it repeats an earlier synthetic row. Each reason names the rule and k.
    Checks without `copy_k` (written before it existed) count every copy as rare, as this filter did.
    """

    name = "exact_dedup"

    def __init__(self, k_min: int = DEFAULT_K_MIN):
        self.k_min = k_min

    def decide(self, data: FilterInput) -> Decision:
        hashes = row_hashes(data.rows)
        if "copy_k" in data.checks:
            k = data.checks["copy_k"].fillna(0).to_numpy(dtype=np.int64)
        else:
            k = data.checks["exact_copy"].to_numpy(dtype=bool).astype(np.int64)
        train_rows = len(data.train) if data.train is not None else int(k.max(initial=0))
        keep, reasons, metrics = copy_decisions(hashes, k, train_rows, self.k_min)
        return Decision(keep, reasons, metrics)


class ConstraintFilter(RowFilter):
    name = "constraints"

    def decide(self, data: FilterInput) -> Decision:
        violations = data.checks["violations"].to_numpy(dtype=object)
        bad = violations != ""
        return Decision(~bad, np.array([f"violates {v}" for v in violations], dtype=object), {"violations": int(bad.sum())})


class PrivacyFilter(RowFilter):
    """Drop rows closer to a training row than the q-quantile of fresh real rows' distances.

    Exact copies of common profiles (copy_k >= k_min) are the exact-copy filter's to judge (kept up to
    their real frequency): they sit at distance 0 and would otherwise all go wherever fewer than q of
    holdout rows have an identical training row. k_min=None judges every row by distance.
    """

    name = "privacy"

    def __init__(self, quantile: float, k_min: int | None = DEFAULT_K_MIN):
        self.quantile = quantile
        self.k_min = k_min

    def decide(self, data: FilterInput) -> Decision:
        threshold = float(np.quantile(data.holdout_dcr, self.quantile)) if self.quantile > 0 else 0.0
        dcr = data.checks["dcr"].to_numpy(dtype=float)
        close = dcr < threshold
        if self.k_min is not None and "copy_k" in data.checks:
            close &= ~(data.checks["copy_k"].fillna(0).to_numpy() >= self.k_min)
        reasons = np.array([f"distance to closest training row {d:.4f} < {threshold:.4f} "
                            f"(q{self.quantile:g} of holdout)" for d in dcr], dtype=object)
        return Decision(~close, reasons, {"threshold": threshold, "too_close": int(close.sum())})


REAL_FLAG_QUANTILE = 0.99  # in a slice, a synthetic row must look less real than 99% of the slice's real rows


class OffDistributionFilter(RowFilter):
    """Train a real-vs-synthetic classifier; drop rows it calls synthetic with high confidence.

    Predictions are out-of-fold so a row is never judged by a model that saw it. On a large table
    the classifier sees a bounded sample (every synthetic row is still judged): at most
    MAX_REAL_ROWS real rows enter the pool, and each fold's model trains on at most MAX_FIT_ROWS
    of the other folds' rows. What was sampled is in the metrics (`detection_*`).
    """

    name = "off_distribution"
    MAX_REAL_ROWS = 200_000
    MAX_FIT_ROWS = 100_000

    def __init__(self, threshold: float):
        self.threshold = threshold

    def decide(self, data: FilterInput) -> Decision:
        n = len(data.rows)
        if n < 20:
            return Decision(np.ones(n, bool), np.full(n, "", dtype=object), {"detection_auc": None})
        seed = data.seed % 2**32
        rng = np.random.default_rng(seed)
        real = data.train
        if len(real) > self.MAX_REAL_ROWS:
            real = real.iloc[np.sort(rng.choice(len(real), self.MAX_REAL_ROWS, replace=False))]
        encoder = RowEncoder().fit(data.train, data.profile)
        x = np.vstack([encoder.transform(real), encoder.transform(data.rows)])
        y = np.r_[np.zeros(len(real)), np.ones(n)]
        model = HistGradientBoostingClassifier(max_iter=100, class_weight="balanced", random_state=seed)
        # Shuffled folds: unshuffled ones would hold out whole blocks (e.g. one generator's rows) unseen.
        folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=seed)
        proba = np.empty(len(y))
        fit_rows, sampled = 0, len(real) < len(data.train)
        for fit_idx, judged_idx in folds.split(x, y):
            if len(fit_idx) > self.MAX_FIT_ROWS:  # uniform, so the class ratio stays that of the pool
                fit_idx = np.sort(rng.choice(fit_idx, self.MAX_FIT_ROWS, replace=False))
                sampled = True
            fold_model = clone(model).fit(x[fit_idx], y[fit_idx])
            proba[judged_idx] = fold_model.predict_proba(x[judged_idx])[:, 1]
            fit_rows = max(fit_rows, len(fit_idx))
        synth_p = proba[len(real):]
        bar = self.threshold
        if data.all_train is not None:  # one slice's rows: judged against what its real rows score themselves
            bar = max(bar, float(np.quantile(proba[:len(real)], REAL_FLAG_QUANTILE)))
        fake = synth_p >= bar
        reasons = np.array([f"real-vs-synthetic classifier says synthetic with p={p:.3f} >= {bar:.3f}"
                            for p in synth_p], dtype=object)
        return Decision(~fake, reasons, {
            "detection_auc": float(roc_auc_score(y, proba)), "flagged": int(fake.sum()),
            "detection_real_rows": len(real), "detection_synthetic_rows": n, "detection_fit_rows": fit_rows,
            "detection_sampled": sampled, "threshold": bar})


class LabelAgreementFilter(RowFilter):
    """A row's label must be as plausible for its features as the label of a real row of that class.

    A classifier trained on every real training row gives each real row (out of fold) and each synthetic row
    the probability of the label it carries. A synthetic row whose probability is below the `quantile` of
    real rows of the same class is dropped as `label_disagrees`, its probability in the reason. The bar is
    per class because a rare class is never predicted with confidence: real bad loans get p(bad) ~0.1, and a
    fixed bar of 0.5 would drop them all. Used in targeted runs, where generators write the label they were
    asked for (rebalancing), so the label is a claim to verify.
    """

    name = "label_disagrees"

    def __init__(self, target: str, quantile: float = 0.05):
        self.target, self.quantile = target, quantile

    def decide(self, data: FilterInput) -> Decision:
        n = len(data.rows)
        real = data.all_train if data.all_train is not None else data.train
        labels = real[self.target].astype(str).to_numpy()
        if n == 0 or len(np.unique(labels)) < 2:
            return Decision(np.ones(n, bool), np.full(n, "", dtype=object), {"judged": 0})
        seed = data.seed % 2**32
        encoder = RowEncoder().fit(real, data.profile)
        encoder.plan = [step for step in encoder.plan if step[0] != self.target]  # the features, not the label
        x_real, x_synth = encoder.transform(real), encoder.transform(data.rows)
        classes, y = np.unique(labels, return_inverse=True)
        model = HistGradientBoostingClassifier(max_iter=100, random_state=seed)
        folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=seed)
        real_p = np.empty(len(y))
        for fit_idx, judged_idx in folds.split(x_real, y):
            proba = clone(model).fit(x_real[fit_idx], y[fit_idx]).predict_proba(x_real[judged_idx])
            real_p[judged_idx] = proba[np.arange(len(judged_idx)), y[judged_idx]]
        bars = {c: float(np.quantile(real_p[y == i], self.quantile)) for i, c in enumerate(classes)}
        proba = model.fit(x_real, y).predict_proba(x_synth)
        given = data.rows[self.target].astype(str).to_numpy()
        index = {c: i for i, c in enumerate(classes)}
        p = np.array([proba[k, index[c]] if c in index else 0.0 for k, c in enumerate(given)])
        bar = np.array([bars.get(c, 1.0) for c in given])
        keep = p >= bar
        reasons = np.array([f"label_disagrees: p({c})={pk:.4f} below {b:.4f}, the {self.quantile:.0%} quantile of "
                            f"real {c} rows" for c, pk, b in zip(given, p, bar)], dtype=object)
        return Decision(keep, reasons, {"judged": n, "flagged": int((~keep).sum()), "bars": bars,
                                        "quantile": self.quantile})


def default_filters(privacy_quantile: float, off_distribution_threshold: float,
                    copy_k_min: int = DEFAULT_K_MIN) -> list[RowFilter]:
    return [ExactDuplicateFilter(copy_k_min), ConstraintFilter(), PrivacyFilter(privacy_quantile, copy_k_min),
            OffDistributionFilter(off_distribution_threshold)]
