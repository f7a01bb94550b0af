"""Downstream evaluation: does the data train a model that works on real rows?

The same model is trained on real-only (TRTR), synthetic-only (TSTR) and the blend, and each is scored on
the real holdout no generator has seen. On a large table each model trains on a uniform sample of at most
MAX_TRAIN_ROWS rows (the holdout is always scored whole); `evaluation_train_rows` says how many it used.

The learner is a regularised HistGradientBoosting model with early stopping on a stratified validation
split (the default settings diverge on tables where one column almost determines the target: on
openintro/loans_full_schema, grade ~ interest_rate, real-only macro-F1 fell to 0.22 where a decision tree
scores 1.0). Categorical features keep at most 254 training levels plus one shared level for the rest
(HistGradientBoosting accepts at most 255).

Every figure comes with its noise: predictions are made once and a paired bootstrap over the holdout rows
(the same resamples for every model) gives a standard error and a 95% percentile interval for each score
and for the differences. Two baselines are scored on the same holdout: chance (the better of always
predicting the training majority / mean and guessing labels at the training class shares) and a
depth-limited decision tree. The evaluation says the learner is not fit to judge utility (`learner_ok`
false) when the real-only model is no better than chance within the noise, or clearly worse than the tree.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import f1_score, r2_score, roc_auc_score
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

MAX_TRAIN_ROWS = 100_000  # gradient boosting on more rows barely moves the score: 100k rows fit in ~8 s on 2 cores
MAX_CATEGORIES = 255  # HistGradientBoosting's limit on a categorical feature's levels
OTHER_LEVEL = "__sc_other_level__"  # the shared level of a capped feature's rare (and unseen) values
# l2 regularisation keeps Newton leaf values finite where one feature nearly separates the classes (without
# it training accuracy on loans grade falls from 0.998 to 0.285 as boosting goes on); early stopping on a
# held-out validation split picks the number of trees.
HGB_PARAMS = {"learning_rate": 0.1, "max_iter": 300, "max_leaf_nodes": 31, "min_samples_leaf": 5,
              "l2_regularization": 1.0}
VALIDATION_FRACTION = 0.1
MIN_VALIDATION_ROWS = 50  # below this (train < 500 rows) the model trains a fixed FIXED_ITER trees
FIXED_ITER = 100
N_ITER_NO_CHANGE = 10
EARLY_STOPPING_TOL = 1e-4  # validation loss gains below this per N_ITER_NO_CHANGE trees stop the boosting
TREE_DEPTH = 6  # the sanity baseline: a depth-limited decision tree
BOOTSTRAP_RESAMPLES = 300
CONFIDENCE = 0.95
TREE_MARGIN = 0.05  # the learner is "clearly worse than the tree" when it trails by more than this, beyond noise
_CELLS_PER_CHUNK = 4_000_000  # resamples x holdout rows materialised at once


def bounded_sample(frame: pd.DataFrame, seed: int, limit: int | None = None) -> pd.DataFrame:
    """The frame itself when small, else a uniform sample of `limit` rows (in their original order)."""
    limit = MAX_TRAIN_ROWS if limit is None else limit
    if len(frame) <= limit:
        return frame
    rng = np.random.default_rng(seed)
    return frame.iloc[np.sort(rng.choice(len(frame), limit, replace=False))].reset_index(drop=True)


def metric_name(task: str, n_classes: int) -> str:
    if task == "regression":
        return "r2"
    return "roc_auc" if n_classes == 2 else "macro_f1"


# --- features --------------------------------------------------------------------------------------------

def _is_categorical(series: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_datetime64_any_dtype(series)


@dataclass
class Encoder:
    """Feature encoding learnt on a training frame: categorical levels (capped at MAX_CATEGORIES)."""
    target: str
    categories: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def fit(cls, train: pd.DataFrame, target: str) -> "Encoder":
        categories = {}
        for col in train.columns:
            if col == target or not _is_categorical(train[col]):
                continue
            counts = train[col].dropna().astype(str).value_counts()
            if len(counts) > MAX_CATEGORIES:  # keep the most frequent levels, the rest share one
                kept = counts.sort_index(kind="stable").sort_values(ascending=False, kind="stable")
                categories[col] = sorted(kept.index[: MAX_CATEGORIES - 1].tolist()) + [OTHER_LEVEL]
            else:
                categories[col] = sorted(counts.index.tolist())
        return cls(target, categories)

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        x = frame.drop(columns=[self.target])
        out = {}
        for col in x.columns:
            series = x[col]
            if col in self.categories:
                cats = self.categories[col]
                values = series.astype(str).where(series.notna(), None)
                if cats and cats[-1] == OTHER_LEVEL:  # rare and unseen levels of a capped feature
                    values = values.where(values.isna() | values.isin(cats), OTHER_LEVEL)
                out[col] = pd.Categorical(values, categories=cats)  # unseen levels of others: missing
            elif pd.api.types.is_datetime64_any_dtype(series):
                out[col] = pd.Series(_datetime_seconds(series), index=x.index)  # NaT: missing
            else:
                out[col] = pd.to_numeric(series, errors="coerce")
        return pd.DataFrame(out, index=x.index)

    def ordinal(self, x: pd.DataFrame) -> np.ndarray:
        """The transformed features as floats (category codes, NaN for missing) for the tree baseline."""
        cols = [x[c].cat.codes.astype(float).where(x[c].notna(), np.nan) if c in self.categories else x[c].astype(float)
                for c in x.columns]
        return np.column_stack(cols) if cols else np.zeros((len(x), 0))


def _labels(series: pd.Series) -> np.ndarray:
    """Class labels as plain strings (a missing label is its own class, "nan")."""
    return series.astype(object).map(str).to_numpy(dtype=str)


def _datetime_seconds(stamp: pd.Series) -> np.ndarray:
    if getattr(stamp.dt, "tz", None) is not None:
        stamp = stamp.dt.tz_convert("UTC").dt.tz_localize(None)
    values = stamp.to_numpy(dtype="datetime64[ns]")
    seconds = values.astype("int64").astype(float) / 1e9
    seconds[np.isnat(values)] = np.nan
    return seconds


def _features(frame: pd.DataFrame, target: str, categories: dict[str, list]) -> pd.DataFrame:
    """Kept for callers of the old helper: the frame's features with the given categories."""
    return Encoder(target, dict(categories)).transform(frame)


# --- learners --------------------------------------------------------------------------------------------

def _validation_split(y: np.ndarray, stratify: bool, seed: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Indices (train, validation) for early stopping, stratified by class; None when the set is too small.

    Classes with fewer than two rows stay in training."""
    n = len(y)
    n_val = int(round(n * VALIDATION_FRACTION))
    if n_val < MIN_VALIDATION_ROWS:
        return None
    rng = np.random.default_rng(seed)
    if not stratify:
        order = rng.permutation(n)
        return np.sort(order[n_val:]), np.sort(order[:n_val])
    val = []
    for cls in np.unique(y):
        rows = np.flatnonzero(y == cls)
        if len(rows) < 2:
            continue
        take = min(len(rows) - 1, max(1, int(round(len(rows) * VALIDATION_FRACTION))))
        val.append(rng.choice(rows, take, replace=False))
    val = np.sort(np.concatenate(val)) if val else np.array([], dtype=int)
    if len(val) < MIN_VALIDATION_ROWS:
        return None
    return np.setdiff1d(np.arange(n), val), val


def _hgb(task: str, seed: int, early: bool, params: dict | None = None):
    params = {**HGB_PARAMS, **(params or {})}
    if early and params.get("early_stopping", True) is not False:
        params.update(early_stopping=True, n_iter_no_change=N_ITER_NO_CHANGE, tol=EARLY_STOPPING_TOL)
    else:
        params.update(early_stopping=False, max_iter=min(params["max_iter"], FIXED_ITER))
    cls = HistGradientBoostingRegressor if task == "regression" else HistGradientBoostingClassifier
    return cls(categorical_features="from_dtype", random_state=seed, **params)


@dataclass
class Fitted:
    """Holdout predictions of one trained model: labels (classification), positive scores (binary), values."""
    labels: np.ndarray | None = None
    scores: np.ndarray | None = None
    values: np.ndarray | None = None
    info: dict = field(default_factory=dict)


def fit_predict(train: pd.DataFrame, holdout: pd.DataFrame, target: str, task: str, seed: int,
                learner: str = "hgb", params: dict | None = None, positive: str | None = None) -> Fitted:
    """Train `learner` ("hgb", "tree") on `train` and predict the holdout once.

    `params` overrides HGB_PARAMS (pass {} plus early_stopping settings to reproduce other settings);
    `positive` is the holdout's positive class for a binary task (its probability is the score)."""
    encoder = Encoder.fit(train, target)
    x_train, x_test = encoder.transform(train), encoder.transform(holdout)
    if task == "regression":
        y = train[target].astype(float).to_numpy()
        if learner == "tree":
            model = DecisionTreeRegressor(max_depth=TREE_DEPTH, min_samples_leaf=5, random_state=seed)
            model.fit(encoder.ordinal(x_train), y)
            return Fitted(values=model.predict(encoder.ordinal(x_test)), info={"learner": "tree"})
        early = (params or {}).get("early_stopping") is not False
        split = _validation_split(y, stratify=False, seed=seed) if early else None
        model = _hgb(task, seed, split is not None, params)
        _fit(model, x_train, y, split)
        return Fitted(values=model.predict(x_test), info={"learner": "hgb", "n_iter": int(model.n_iter_)})
    y = _labels(train[target])
    classes = np.unique(y)
    if len(classes) < 2:  # a one-class training set can only guess its one class
        only = classes[0] if len(classes) else ""
        return Fitted(labels=np.full(len(holdout), only, dtype=object), scores=np.zeros(len(holdout)),
                      info={"learner": "constant"})
    if learner == "tree":
        model = DecisionTreeClassifier(max_depth=TREE_DEPTH, min_samples_leaf=5, random_state=seed)
        model.fit(encoder.ordinal(x_train), y)
        proba, labels = model.predict_proba(encoder.ordinal(x_test)), None
        info = {"learner": "tree"}
    else:
        early = (params or {}).get("early_stopping") is not False
        split = _validation_split(y, stratify=True, seed=seed) if early else None
        model = _hgb(task, seed, split is not None, params)
        _fit(model, x_train, y, split)
        proba = model.predict_proba(x_test)
        info = {"learner": "hgb", "n_iter": int(model.n_iter_)}
    model_classes = np.asarray(model.classes_).astype(str)
    labels = model_classes[np.argmax(proba, axis=1)].astype(object)
    scores = None
    if positive is not None:
        column = np.flatnonzero(model_classes == positive)
        scores = proba[:, column[0]] if len(column) else np.zeros(len(holdout))
    return Fitted(labels=labels, scores=scores, info=info)


def _fit(model, x: pd.DataFrame, y: np.ndarray, split) -> None:
    if split is None:
        model.fit(x, y)
        return
    tr, val = split
    model.fit(x.iloc[tr], y[tr], X_val=x.iloc[val], y_val=y[val])


# --- scoring with a paired bootstrap ---------------------------------------------------------------------

class Scorer:
    """Scores holdout predictions, whole (the point estimate) and on bootstrap resamples of the rows."""

    def __init__(self, holdout_target: pd.Series, task: str):
        self.task = task
        if task == "regression":
            self.metric = "r2"
            self.y = holdout_target.astype(float).to_numpy()
            return
        self.y_labels = _labels(holdout_target)
        self.classes = sorted(set(self.y_labels))
        self.metric = metric_name(task, len(self.classes))
        self.positive = self.classes[1] if self.metric == "roc_auc" else None

    def prediction(self, fitted: Fitted) -> np.ndarray:
        if self.metric == "r2":
            return np.asarray(fitted.values, dtype=float)
        if self.metric == "roc_auc":
            return np.asarray(fitted.scores, dtype=float)
        return np.asarray(fitted.labels, dtype=object)

    def point(self, pred: np.ndarray) -> float:
        if self.metric == "r2":
            return float(r2_score(self.y, pred))
        if self.metric == "roc_auc":
            return float(roc_auc_score(self.y_labels == self.positive, pred))
        return float(f1_score(self.y_labels, pred.astype(str), average="macro"))

    def resampled(self, pred: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """The metric on each resample; idx has one row of holdout row numbers per resample."""
        b = len(idx)
        if self.metric == "r2":
            counts = _row_counts(idx, len(self.y))
            w = counts.sum(axis=1)
            sy, syy = counts @ self.y, counts @ self.y ** 2
            ss_res = counts @ (self.y - pred) ** 2
            ss_tot = syy - sy ** 2 / w
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(ss_tot > 0, 1 - ss_res / ss_tot, np.nan)
        if self.metric == "roc_auc":
            y = (self.y_labels == self.positive).astype(np.int64)
            _, group = np.unique(pred, return_inverse=True)  # tied scores share a group, in score order
            g = int(group.max()) + 1
            cells = (group * 2 + y)[idx] + (np.arange(b) * 2 * g)[:, None]
            table = np.bincount(cells.ravel(), minlength=b * 2 * g).reshape(b, g, 2).astype(float)
            neg, pos = table[:, :, 0], table[:, :, 1]
            below = np.cumsum(neg, axis=1) - neg
            with np.errstate(divide="ignore", invalid="ignore"):
                return (pos * (below + 0.5 * neg)).sum(axis=1) / (pos.sum(axis=1) * neg.sum(axis=1))
        labels = np.unique(np.concatenate([self.y_labels, pred.astype(str)]))
        k = len(labels)
        truth, guess = np.searchsorted(labels, self.y_labels), np.searchsorted(labels, pred.astype(str))
        cells = (truth * k + guess)[idx] + (np.arange(b) * k * k)[:, None]
        confusion = np.bincount(cells.ravel(), minlength=b * k * k).reshape(b, k, k).astype(float)
        tp = np.diagonal(confusion, axis1=1, axis2=2)
        support = confusion.sum(axis=2) + confusion.sum(axis=1)  # true + predicted per class
        with np.errstate(divide="ignore", invalid="ignore"):
            f1 = np.where(support > 0, 2 * tp / support, 0.0)
        present = support > 0  # sklearn averages over the labels present in truth or prediction
        return f1.sum(axis=1) / present.sum(axis=1)


def _row_counts(idx: np.ndarray, n: int) -> np.ndarray:
    b = len(idx)
    flat = (idx + (np.arange(b) * n)[:, None]).ravel()
    return np.bincount(flat, minlength=b * n).reshape(b, n).astype(float)


def paired_bootstrap(scorer: Scorer, predictions: dict[str, np.ndarray], resamples: int, seed: int
                     ) -> dict[str, np.ndarray]:
    """Each model's metric on the same `resamples` bootstrap resamples of the holdout rows."""
    n = len(next(iter(predictions.values())))
    rng = np.random.default_rng(seed)
    chunk = max(1, _CELLS_PER_CHUNK // max(n, 1))
    out: dict[str, list] = {name: [] for name in predictions}
    done = 0
    while done < resamples:
        b = min(chunk, resamples - done)
        idx = rng.integers(0, n, size=(b, n))
        for name, pred in predictions.items():
            out[name].append(scorer.resampled(pred, idx))
        done += b
    return {name: np.concatenate(parts) for name, parts in out.items()}


def interval(point: float, replicates: np.ndarray) -> dict:
    """Point, bootstrap standard error and 95% percentile interval (NaN-safe: undefined resamples dropped)."""
    finite = replicates[np.isfinite(replicates)]
    if not np.isfinite(point) or len(finite) < 2:
        return {"point": float(point), "se": float("nan"), "ci": [float("nan"), float("nan")]}
    tail = (1 - CONFIDENCE) / 2 * 100
    lo, hi = np.percentile(finite, [tail, 100 - tail])
    return {"point": float(point), "se": float(np.std(finite, ddof=1)), "ci": [float(lo), float(hi)]}


# --- verdicts ----------------------------------------------------------------------------------------------

def shortfall_counts(point: float | None, ci: list | None, limit: float, reference: float) -> bool:
    """A figure fails its lower `limit` only when it misses the limit AND the miss is beyond the noise.

    Misses the limit: the point estimate is below `limit`. Beyond the noise: the upper end of its 95%
    interval is below `reference`, the value meaning "no loss at all" (0 for blend - trtr, 1 for tstr/trtr),
    so the loss is not a resampling accident. Without an interval (other modalities) the point alone decides."""
    if not isinstance(point, (int, float)) or not np.isfinite(point) or point >= limit:
        return False
    if not ci or not all(isinstance(v, (int, float)) and np.isfinite(v) for v in ci):
        return True
    return ci[1] < reference


def utility_drop_fails(point: float | None, ci: list | None, tolerance: float) -> bool:
    """The blend fails when blend - trtr is below -tolerance and its interval lies below 0."""
    return shortfall_counts(point, ci, -tolerance, 0.0)


def gated_figure(result: dict, key: str, limit: float, reference: float) -> float | None:
    """The figure a gate compares with `limit`: the point when its shortfall counts, else the larger of the
    point and the limit (a miss within the noise passes). None when the figure is undefined."""
    point = result.get(key)
    if isinstance(point, bool) or not isinstance(point, (int, float)) or not np.isfinite(point):
        return None
    if shortfall_counts(point, result.get(f"{key}_ci"), limit, reference):
        return float(point)
    return float(max(point, limit))


def describe_interval(result: dict, key: str) -> str:
    ci, se = result.get(f"{key}_ci"), result.get(f"{key}_se")
    if not ci or not all(isinstance(v, (int, float)) and np.isfinite(v) for v in ci):
        return f"{key} {result.get(key):.4f} (no interval)"
    return f"{key} {result[key]:+.4f} ± {se:.4f} (95% interval {ci[0]:+.4f} to {ci[1]:+.4f})"


def learner_verdict(metric: str, trtr: dict, chance: dict, tree: dict, vs_chance: dict, vs_tree: dict
                    ) -> tuple[bool, str | None]:
    """Is the real-only model fit to judge utility? Not when it is no better than chance within the noise
    (the lower end of the interval of trtr - chance is at or below 0), nor when it trails the depth-limited
    tree by more than TREE_MARGIN beyond the noise (upper end of trtr - tree below 0)."""
    def fmt(d: dict) -> str:
        return f"{d['point']:.3f} (95% interval {d['ci'][0]:.3f} to {d['ci'][1]:.3f})"

    problems = []
    if not np.isfinite(vs_chance["point"]) or not (vs_chance["ci"][0] > 0):
        problems.append(f"the real-only model is no better than chance: {metric} {trtr['point']:.3f} against "
                        f"{chance['point']:.3f} for a {chance.get('kind', 'majority')} guess, "
                        f"difference {fmt(vs_chance)}")
    if np.isfinite(vs_tree["point"]) and vs_tree["point"] < -TREE_MARGIN and vs_tree["ci"][1] < 0:
        problems.append(f"the real-only model is clearly worse than a depth-{TREE_DEPTH} decision tree: {metric} "
                        f"{trtr['point']:.3f} against {tree['point']:.3f}, difference {fmt(vs_tree)}")
    if not problems:
        return True, None
    return False, "; ".join(problems) + " — the utility figures cannot be trusted"


# --- the evaluation ----------------------------------------------------------------------------------------

def train_and_score(train: pd.DataFrame, holdout: pd.DataFrame, target: str, task: str, seed: int,
                    learner: str = "hgb", params: dict | None = None) -> float:
    """One model's score on the holdout (the point estimate, no interval)."""
    scorer = Scorer(holdout[target], task)
    positive = getattr(scorer, "positive", None)
    fitted = fit_predict(train, holdout, target, task, seed, learner, params, positive=positive)
    return scorer.point(scorer.prediction(fitted))


def _chance(train: pd.DataFrame, holdout: pd.DataFrame, target: str, scorer: Scorer, seed: int
            ) -> tuple[str, np.ndarray]:
    """The better (on the holdout) of the constant guess (majority class / training mean) and, for labels,
    guessing at the training class shares."""
    n = len(holdout)
    if scorer.metric == "r2":
        return "mean", np.full(n, train[target].astype(float).mean())
    if scorer.metric == "roc_auc":
        return "constant", np.zeros(n)  # any constant score: AUC 0.5
    y = pd.Series(_labels(train[target]))
    shares = y.value_counts(normalize=True)
    majority = np.full(n, shares.index[0], dtype=object)
    guess = np.random.default_rng(seed).choice(shares.index.to_numpy(dtype=object), n, p=shares.to_numpy())
    if scorer.point(guess) > scorer.point(majority):
        return "stratified random", guess
    return "majority", majority


def evaluate(real_train: pd.DataFrame, synthetic: pd.DataFrame, blended: pd.DataFrame, holdout: pd.DataFrame,
             target: str, task: str, seed: int, resamples: int = BOOTSTRAP_RESAMPLES) -> dict:
    seed = seed % 2**32
    scorer = Scorer(holdout[target], task)
    positive = getattr(scorer, "positive", None)
    fit = {name: bounded_sample(frame, seed) for name, frame in
           (("real", real_train), ("synthetic", synthetic), ("blend", blended))}
    fitted = {"trtr": fit_predict(fit["real"], holdout, target, task, seed, positive=positive),
              "blend": fit_predict(fit["blend"], holdout, target, task, seed, positive=positive),
              "tree": fit_predict(fit["real"], holdout, target, task, seed, learner="tree", positive=positive)}
    if len(synthetic):
        fitted["tstr"] = fit_predict(fit["synthetic"], holdout, target, task, seed, positive=positive)
    predictions = {name: scorer.prediction(f) for name, f in fitted.items()}
    chance_kind, predictions["chance"] = _chance(fit["real"], holdout, target, scorer, seed)
    points = {name: scorer.point(pred) for name, pred in predictions.items()}
    reps = paired_bootstrap(scorer, predictions, resamples, seed + 1) if resamples and len(holdout) > 1 else {}

    def summary(name: str, point: float, replicates: np.ndarray | None) -> dict:
        return interval(point, replicates if replicates is not None else np.array([]))


    figures = {name: summary(name, points[name], reps.get(name)) for name in points}
    figures.setdefault("tstr", {"point": float("nan"), "se": float("nan"), "ci": [float("nan"), float("nan")]})
    nan = np.full(resamples, np.nan)

    def diff(a: str, b: str) -> dict:
        return summary(f"{a}-{b}", points[a] - points[b], reps[a] - reps[b] if reps else None)

    figures["blend_minus_trtr"] = diff("blend", "trtr")
    trtr = points["trtr"]
    if "tstr" in points and trtr:
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio_reps = reps["tstr"] / reps["trtr"] if reps else None
        figures["tstr_ratio"] = summary("ratio", points["tstr"] / trtr, ratio_reps)
    else:
        figures["tstr_ratio"] = summary("ratio", float("nan"), nan)
    vs_chance, vs_tree = diff("trtr", "chance"), diff("trtr", "tree")
    figures["chance"]["kind"] = chance_kind
    ok, message = learner_verdict(scorer.metric, figures["trtr"], figures["chance"], figures["tree"],
                                  vs_chance, vs_tree)
    out = {"metric": scorer.metric, "model": "hist_gradient_boosting"}
    for key in ("trtr", "tstr", "blend", "blend_minus_trtr", "tstr_ratio"):
        out[key] = figures[key]["point"]
        out[f"{key}_se"] = figures[key]["se"]
        out[f"{key}_ci"] = figures[key]["ci"]
    out.update({
        "baseline": {"chance": figures["chance"], "tree": figures["tree"],
                     "trtr_minus_chance": vs_chance, "trtr_minus_tree": vs_tree},
        "chance_baseline": figures["chance"]["point"], "tree_baseline": figures["tree"]["point"],
        "trtr_minus_chance": vs_chance["point"], "trtr_minus_chance_ci": vs_chance["ci"],
        "trtr_minus_tree": vs_tree["point"], "trtr_minus_tree_ci": vs_tree["ci"],
        "learner_ok": ok, "learner_message": message,
        "learner": {"params": HGB_PARAMS, "validation_fraction": VALIDATION_FRACTION,
                    "n_iter_no_change": N_ITER_NO_CHANGE, "tree_depth": TREE_DEPTH,
                    "iterations": {name: f.info.get("n_iter") for name, f in fitted.items() if name != "tree"}},
        "bootstrap": {"resamples": resamples, "confidence": CONFIDENCE, "paired": True, "interval": "percentile"},
        "train_rows": {"real": len(real_train), "synthetic": len(synthetic), "blend": len(blended)},
        "evaluation_train_rows": {name: len(frame) for name, frame in fit.items()},
        "evaluation_train_rows_cap": MAX_TRAIN_ROWS, "evaluation_holdout_rows": len(holdout),
    })
    return out
