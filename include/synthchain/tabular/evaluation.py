"""Downstream evaluation: does the data train a model that works on real rows?

The same model is trained on real-only (TRTR), synthetic-only (TSTR) and the blend, and each is scored on
the real holdout no generator has seen. On a large table each model trains on a uniform sample of at most
MAX_TRAIN_ROWS rows (the holdout is always scored whole); `evaluation_train_rows` says how many it used.

The learner is chosen once, on the real training rows, and then used for every model (TRTR, TSTR, blend):
a linear model (ridge regression / logistic regression on one-hot categoricals and standardised numerics,
its alpha / C the best of a small grid) or a regularised HistGradientBoosting model, by CV_FOLDS-fold
cross-validation on (a sample of at most CV_MAX_ROWS of) the training rows - never the holdout. Boosting is
kept unless the linear model is better beyond the fold noise (SWITCH_MARGIN_SE). `result["learner"]` records
the choice: `chosen`, the CV score of each (`cv`, `cv_se`, `cv_grid`, `cv_difference`), `folds`, `cv_rows`
and a sentence (`why`). On AER/CPS1985 (wage, 427 training rows) the old fixed-size boosting scored R² 0.020
on the pipeline's holdout, ridge scores 0.42.

Boosting stops early on a stratified validation split (the default settings diverge on tables where one
column almost determines the target: on openintro/loans_full_schema, grade ~ interest_rate, real-only
macro-F1 fell to 0.22 where a decision tree scores 1.0). A set too small for a MIN_VALIDATION_ROWS split
(under ~500 rows) used to train a fixed 100 trees, which over-fitted CPS1985 (training R² 0.89, holdout
0.020; 10-20 trees score 0.24): its number of trees is now cross-validated on the training rows
(TREE_GRID). Categorical features keep at most 254 training levels plus one shared level for the rest
(HistGradientBoosting accepts at most 255).

Every figure comes with its noise: predictions are made once and a paired bootstrap over the holdout rows
(the same resamples for every model) gives a standard error and a 95% percentile interval for each score
and for the differences. Two baselines are scored on the same holdout: chance (the better of always
predicting the training majority / mean and guessing labels at the training class shares) and a
depth-limited decision tree. The evaluation says the learner is not fit to judge utility (`learner_ok`
false) when the real-only model is no better than chance within the noise, or clearly worse than the tree.
"""
from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import f1_score, r2_score, roc_auc_score
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from ..utility import BOOTSTRAP_RESAMPLES, CONFIDENCE, interval, paired_bootstrap

MAX_TRAIN_ROWS = 100_000  # gradient boosting on more rows barely moves the score: 100k rows fit in ~8 s on 2 cores
MAX_CATEGORIES = 255  # HistGradientBoosting's limit on a categorical feature's levels
OTHER_LEVEL = "__sc_other_level__"  # the shared level of a capped feature's rare (and unseen) values
# l2 regularisation keeps Newton leaf values finite where one feature nearly separates the classes (without
# it training accuracy on loans grade falls from 0.998 to 0.285 as boosting goes on); early stopping on a
# held-out validation split picks the number of trees.
HGB_PARAMS = {"learning_rate": 0.1, "max_iter": 300, "max_leaf_nodes": 31, "min_samples_leaf": 5,
              "l2_regularization": 1.0}
VALIDATION_FRACTION = 0.1
MIN_VALIDATION_ROWS = 50  # below this (train < 500 rows) the number of trees is cross-validated (TREE_GRID)
FIXED_ITER = 100  # the trees of the old fixed-size settings, and of a set too small to cross-validate
N_ITER_NO_CHANGE = 10
EARLY_STOPPING_TOL = 1e-4  # validation loss gains below this per N_ITER_NO_CHANGE trees stop the boosting
TREE_DEPTH = 6  # the sanity baseline: a depth-limited decision tree
TREE_MARGIN = 0.05  # the learner is "clearly worse than the tree" when it trails by more than this, beyond noise
# choosing the learner: CV_FOLDS-fold cross-validation on a uniform sample of at most CV_MAX_ROWS training
# rows (folds of 8,000 rows, one thread): ~3 s on a 100,000-row table with 11 features and a 300-level
# categorical, where the evaluation itself takes 6-16 s on 2 cores; small tables take well under a second
CV_FOLDS = 5
CV_MAX_ROWS = 10_000
# boosting, the learner before the choice existed, is kept unless the linear model's mean fold score is higher
# by more than this many standard errors of the paired fold differences (Nadeau & Bengio's corrected
# resampled-t standard error: folds share training rows, so the naive one is ~1.5x too small at 5 folds). On
# lending_club with shuffled labels neither is better (logistic 0.521 against 0.497: 0.023 ± 0.029), on
# CPS1985 ridge is at seed 0 (0.213 against 0.126: 0.088 ± 0.050; at seeds where the difference is within its
# noise, e.g. 3: 0.061 ± 0.065, boosting with cross-validated trees is kept and scores 0.24 on the holdout)
SWITCH_MARGIN_SE = 1.0
RIDGE_ALPHAS = (0.1, 1.0, 10.0, 100.0, 1000.0, 10_000.0)  # on standardised numerics and 0/1 one-hot columns
LOGISTIC_CS = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)  # lending_club: 0.01
LOGISTIC_MAX_ITER = 500
TREE_GRID = (5, 10, 20, 30, 50, 75, 100, 150, 200, 300)  # boosting's tree counts tried on a set too small to stop early
TREE_PATIENCE = 3  # ... grown until the cross-validated score has not improved for this many counts
LINEAR_DENSE_CELLS = 20_000_000  # a linear design up to this many cells is solved dense, a larger one sparse
# a model on fewer rows (and every cross-validation fit) runs on one thread (OpenMP and BLAS): the same
# result, and on a busy machine far faster (choosing the learner on CPS1985's 427 rows took 12.6 s with 2
# threads on 2 loaded cores, 0.6 s with one; a 5-value logistic grid on 8,000 rows 3.0 s against 0.2 s)
SINGLE_THREAD_ROWS = 10_000


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

def _validation_split(y: np.ndarray, stratify: bool, seed: int, min_rows: int = MIN_VALIDATION_ROWS
                      ) -> tuple[np.ndarray, np.ndarray] | None:
    """Indices (train, validation) for early stopping, stratified by class; None when the set is too small.

    Classes with fewer than two rows stay in training."""
    n = len(y)
    n_val = int(round(n * VALIDATION_FRACTION))
    if n_val < min_rows:
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
    if len(val) < min_rows:
        return None
    return np.setdiff1d(np.arange(n), val), val


def _hgb(task: str, seed: int, early: bool, params: dict | None = None, fixed_iter: int | None = None):
    """The boosting model: early stopping when `early`, else `fixed_iter` trees (FIXED_ITER when None, or
    when `params` switch early stopping off: the old fixed-size settings)."""
    params = {**HGB_PARAMS, **(params or {})}
    if early and params.get("early_stopping", True) is not False:
        params.update(early_stopping=True, n_iter_no_change=N_ITER_NO_CHANGE, tol=EARLY_STOPPING_TOL)
    else:
        trees = fixed_iter if fixed_iter is not None else min(params["max_iter"], FIXED_ITER)
        params.update(early_stopping=False, max_iter=int(trees))
    cls = HistGradientBoostingRegressor if task == "regression" else HistGradientBoostingClassifier
    return cls(categorical_features="from_dtype", random_state=seed, **params)


@dataclass
class Fitted:
    """Holdout predictions of one trained model: labels (classification), positive scores (binary), values;
    a classifier's probabilities too (`proba`, one column per class of `classes`)."""
    labels: np.ndarray | None = None
    scores: np.ndarray | None = None
    values: np.ndarray | None = None
    info: dict = field(default_factory=dict)
    classes: np.ndarray | None = None
    proba: np.ndarray | None = None


def _from_proba(classes, proba: np.ndarray, positive: str | None, info: dict) -> Fitted:
    model_classes = np.asarray(classes).astype(str)
    labels = model_classes[np.argmax(proba, axis=1)].astype(object)
    scores = None
    if positive is not None:
        column = np.flatnonzero(model_classes == positive)
        scores = proba[:, column[0]] if len(column) else np.zeros(len(proba))
    return Fitted(labels=labels, scores=scores, info=info, classes=model_classes, proba=proba)


@dataclass
class LinearFeatures:
    """The linear models' design, learnt on training rows: one-hot categoricals (the encoder's levels; a
    missing or unseen level is all zeros) and standardised numerics (a missing value is the training median,
    with a 0/1 missing flag for each column that had missing training values)."""
    categorical: list[str]
    levels: list[int]
    numeric: list[str]
    fill: np.ndarray
    center: np.ndarray
    scale: np.ndarray
    flagged: list[str]

    @classmethod
    def fit(cls, x: pd.DataFrame, encoder: Encoder) -> "LinearFeatures":
        categorical = [c for c in x.columns if c in encoder.categories]
        numeric = [c for c in x.columns if c not in encoder.categories]
        values = _numeric_values(x, numeric)
        missing = np.isnan(values)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing column: median NaN, filled 0
            fill = np.nanmedian(values, axis=0) if len(values) else np.zeros(len(numeric))
        fill = np.where(np.isfinite(fill), fill, 0.0)
        filled = np.where(missing, fill, values)
        center = filled.mean(axis=0) if len(values) else np.zeros(len(numeric))
        scale = filled.std(axis=0) if len(values) else np.ones(len(numeric))
        scale = np.where(scale > 0, scale, 1.0)
        flagged = [c for c, m in zip(numeric, missing.any(axis=0)) if m]
        return cls(categorical, [len(encoder.categories[c]) for c in categorical], numeric, fill, center, scale,
                   flagged)

    def matrix(self, x: pd.DataFrame):
        n = len(x)
        values = _numeric_values(x, self.numeric)
        dense = (np.where(np.isnan(values), self.fill, values) - self.center) / self.scale
        flags = x[self.flagged].isna().to_numpy(dtype=float) if self.flagged else np.zeros((n, 0))
        blocks = [sparse.csr_matrix(np.hstack([dense, flags]))]
        for col, k in zip(self.categorical, self.levels):
            codes = np.asarray(x[col].cat.codes)
            rows = np.flatnonzero(codes >= 0)
            blocks.append(sparse.csr_matrix((np.ones(len(rows)), (rows, codes[rows])), shape=(n, k)))
        out = sparse.hstack(blocks, format="csr")
        return out.toarray() if out.shape[0] * out.shape[1] <= LINEAR_DENSE_CELLS else out


def _numeric_values(x: pd.DataFrame, columns: list[str]) -> np.ndarray:
    if not columns:
        return np.zeros((len(x), 0))
    return x[columns].to_numpy(dtype=float, na_value=np.nan)


def _linear_fits(x_train: pd.DataFrame, y: np.ndarray, x_test: pd.DataFrame, task: str, encoder: Encoder,
                 grid: tuple, positive: str | None, sample_weight: np.ndarray | None = None) -> list[Fitted]:
    """The linear model at each value of `grid` (ridge alpha; logistic C, fitted in increasing order, each
    fit warm-started from the last), trained on x_train (rows weighted by `sample_weight` when given),
    predicting x_test; in the order of `grid`."""
    design = LinearFeatures.fit(x_train, encoder)
    a, b = design.matrix(x_train), design.matrix(x_test)
    if task == "regression":
        return [Fitted(values=Ridge(alpha=alpha).fit(a, y, sample_weight=sample_weight).predict(b),
                       info={"learner": "ridge", "alpha": alpha}) for alpha in grid]
    model = LogisticRegression(warm_start=True, max_iter=LOGISTIC_MAX_ITER)
    out = {}
    for c in sorted(grid):
        model.set_params(C=c)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(a, y, sample_weight=sample_weight)
        out[c] = _from_proba(model.classes_, model.predict_proba(b), positive, {"learner": "logistic", "C": c})
    return [out[c] for c in grid]


def _threads(rows: int):
    """One thread (OpenMP and BLAS) for a model on fewer than SINGLE_THREAD_ROWS rows (see there)."""
    if rows >= SINGLE_THREAD_ROWS:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    return threadpool_limits(1)


def _hgb_fit(x_train: pd.DataFrame, y: np.ndarray, x_test: pd.DataFrame, task: str, seed: int,
             params: dict | None, fixed_iter: int | None, positive: str | None,
             sample_weight: np.ndarray | None = None) -> Fitted:
    """Boosting with early stopping on a validation split; a set too small for one (under ~500 rows) trains
    `fixed_iter` trees, chosen by K-fold cross-validation on the (unweighted) training rows when not given."""
    with _threads(len(y)):
        return _hgb_fit_predict(x_train, y, x_test, task, seed, params, fixed_iter, positive, sample_weight)


def _hgb_fit_predict(x_train: pd.DataFrame, y: np.ndarray, x_test: pd.DataFrame, task: str, seed: int,
                     params: dict | None, fixed_iter: int | None, positive: str | None,
                     sample_weight: np.ndarray | None = None) -> Fitted:
    user_fixed = (params or {}).get("early_stopping") is False  # the caller's fixed-size settings
    split = None if user_fixed else _validation_split(y, stratify=task != "regression", seed=seed)
    if split is None and not user_fixed and fixed_iter is None:
        fixed_iter = _cv_trees(x_train, y, task, seed, params)
    model = _hgb(task, seed, split is not None, params, None if user_fixed else fixed_iter)
    _fit(model, x_train, y, split, sample_weight)
    info = {"learner": "hgb", "n_iter": int(model.n_iter_)}
    if task == "regression":
        return Fitted(values=model.predict(x_test), info=info)
    return _from_proba(model.classes_, model.predict_proba(x_test), positive, info)


def _constant(holdout: pd.DataFrame, classes: np.ndarray) -> Fitted:
    """A one-class training set can only guess its one class."""
    only = classes[0] if len(classes) else ""
    return Fitted(labels=np.full(len(holdout), only, dtype=object), scores=np.zeros(len(holdout)),
                  info={"learner": "constant"})


def fit_predict(train: pd.DataFrame, holdout: pd.DataFrame, target: str, task: str, seed: int,
                learner: str = "hgb", params: dict | None = None, positive: str | None = None,
                fixed_iter: int | None = None, sample_weight: np.ndarray | None = None) -> Fitted:
    """Train `learner` on `train` and predict the holdout once.

    learner: "hgb" (boosting; `params` override HGB_PARAMS, pass {} plus early_stopping settings to reproduce
    other settings; `fixed_iter` is its number of trees on a set too small for early stopping, chosen by
    cross-validation on `train` when None), "linear" (ridge / logistic regression; `params` {"alpha": a} or
    {"C": c}, chosen from the grid by cross-validation on `train` when None), "tree" (the baseline), or "auto"
    (the better of linear and boosting by cross-validation on `train`, see choose_learner).
    `positive` is the holdout's positive class for a binary task (its probability is the score).
    `sample_weight` (one per row of `train`) weights the final fit only: a learner, C / alpha or number of
    trees chosen here by cross-validation is chosen unweighted."""
    seed = seed % 2**32  # the models' random_state
    if learner == "auto":
        choice = choose_learner(train, target, task, seed)
        return fit_predict(train, holdout, target, task, seed, choice.learner, choice.params, positive,
                           choice.fixed_iter, sample_weight)
    encoder = Encoder.fit(train, target)
    x_train, x_test = encoder.transform(train), encoder.transform(holdout)
    if task == "regression":
        y = train[target].astype(float).to_numpy()
        if learner == "tree":
            model = DecisionTreeRegressor(max_depth=TREE_DEPTH, min_samples_leaf=5, random_state=seed)
            model.fit(encoder.ordinal(x_train), y, sample_weight=sample_weight)
            return Fitted(values=model.predict(encoder.ordinal(x_test)), info={"learner": "tree"})
    else:
        y = _labels(train[target])
        classes = np.unique(y)
        if len(classes) < 2:
            return _constant(holdout, classes)
        if learner == "tree":
            model = DecisionTreeClassifier(max_depth=TREE_DEPTH, min_samples_leaf=5, random_state=seed)
            model.fit(encoder.ordinal(x_train), y, sample_weight=sample_weight)
            return _from_proba(model.classes_, model.predict_proba(encoder.ordinal(x_test)), positive,
                               {"learner": "tree"})
    if learner == "linear":
        key = "alpha" if task == "regression" else "C"
        value = (params or {}).get(key)
        if value is None:
            cv = _cross_validate(x_train, y, task, seed, encoder, linear=True, hgb=None)
            value = _best(cv["linear"])[0] if cv else 1.0
        with _threads(len(y)):
            return _linear_fits(x_train, y, x_test, task, encoder, (value,), positive, sample_weight)[0]
    if learner != "hgb":
        raise ValueError(f"unknown learner {learner!r}: hgb, linear, tree or auto")
    return _hgb_fit(x_train, y, x_test, task, seed, params, fixed_iter, positive, sample_weight)


def _fit(model, x: pd.DataFrame, y: np.ndarray, split, sample_weight: np.ndarray | None = None) -> None:
    if split is None:
        model.fit(x, y, sample_weight=sample_weight)
        return
    tr, val = split
    if sample_weight is None:
        model.fit(x.iloc[tr], y[tr], X_val=x.iloc[val], y_val=y[val])
        return
    # the validation loss that stops the boosting is weighted like the training loss
    model.fit(x.iloc[tr], y[tr], sample_weight=sample_weight[tr], X_val=x.iloc[val], y_val=y[val],
              sample_weight_val=sample_weight[val])


# --- choosing the learner by cross-validation on the training rows -----------------------------------------

def _folds(y: np.ndarray, k: int, stratify: bool, seed: int) -> np.ndarray:
    """Each row's fold (0..k-1): a seeded shuffle dealt round-robin, class by class when stratified."""
    rng = np.random.default_rng(seed)
    if stratify:
        order = np.concatenate([rng.permutation(np.flatnonzero(y == c)) for c in np.unique(y)])
    else:
        order = rng.permutation(len(y))
    fold = np.empty(len(y), dtype=int)
    fold[order] = np.arange(len(y)) % k
    return fold


def _cv_metric(task: str, y: np.ndarray) -> tuple[str, str | None]:
    """The holdout's metric as the training labels imply it, and the positive class of a binary task."""
    if task == "regression":
        return "r2", None
    classes = np.unique(y)
    return (metric_name(task, len(classes)), classes[1] if len(classes) == 2 else None)


def _fold_score(metric: str, y: np.ndarray, fitted: Fitted, positive: str | None) -> float:
    if metric == "r2":
        return float(r2_score(y, fitted.values)) if len(y) > 1 and np.ptp(y) > 0 else float("nan")
    if metric == "roc_auc":
        truth = y == positive
        return float(roc_auc_score(truth, fitted.scores)) if 0 < truth.sum() < len(y) else float("nan")
    return float(f1_score(y, np.asarray(fitted.labels).astype(str), average="macro"))


def _predict(model, x: pd.DataFrame, task: str, positive: str | None) -> Fitted:
    if task == "regression":
        return Fitted(values=model.predict(x))
    return _from_proba(model.classes_, model.predict_proba(x), positive, {})


def _cv_tree_counts(folds: list, task: str, seed: int, params: dict | None, metric: str, positive: str | None
                    ) -> dict[int, list]:
    """Fold scores of boosting at TREE_GRID's tree counts, every fold's model grown in step (warm start:
    the trees of a smaller count are kept) until the mean score has not improved for TREE_PATIENCE counts."""
    top = {**HGB_PARAMS, **(params or {})}["max_iter"]
    grid = [t for t in TREE_GRID if t <= top] or [min(TREE_GRID)]
    models = [_hgb(task, seed, False, params, fixed_iter=grid[0]) for _ in folds]
    for model in models:
        model.set_params(warm_start=True)
    scores: dict[int, list] = {}
    best, since = -np.inf, 0
    for trees in grid:
        for model, (x_tr, y_tr, x_te, y_te) in zip(models, folds):
            model.set_params(max_iter=trees)
            model.fit(x_tr, y_tr)
            scores.setdefault(trees, []).append(_fold_score(metric, y_te, _predict(model, x_te, task, positive),
                                                            positive))
        mean = _mean(scores[trees])
        if np.isfinite(mean) and mean > best:
            best, since = mean, 0
        else:
            since += 1
            if since >= TREE_PATIENCE:
                break
    return scores


def _cross_validate(x: pd.DataFrame, y: np.ndarray, task: str, seed: int, encoder: Encoder, linear: bool,
                    hgb: str | None, params: dict | None = None) -> dict | None:
    """Fold scores of the candidates on encoded training rows: the linear model at each grid value, and
    boosting either at TREE_GRID's tree counts (`hgb` "trees", see _cv_tree_counts) or with early stopping
    on each fold's own validation split (`hgb` "early", as on a set large enough for one). None when too few
    rows for 2 folds."""
    k = min(CV_FOLDS, len(y) // 2)
    if k < 2:
        return None
    with _threads(0):  # one thread: the folds are bounded (CV_MAX_ROWS), see SINGLE_THREAD_ROWS
        return _cross_validate_folds(x, y, task, seed, encoder, linear, hgb, params, k)


def _cross_validate_folds(x: pd.DataFrame, y: np.ndarray, task: str, seed: int, encoder: Encoder, linear: bool,
                          hgb: str | None, params: dict | None, k: int) -> dict:
    classify = task != "regression"
    fold = _folds(y, k, classify, seed)
    metric, positive = _cv_metric(task, y)
    grid = (RIDGE_ALPHAS if task == "regression" else LOGISTIC_CS) if linear else ()
    scores = {"linear": {v: [] for v in grid}, "hgb": {}, "hgb_trees": []}
    folds = []
    for i in range(k):
        tr, te = np.flatnonzero(fold != i), np.flatnonzero(fold == i)
        x_tr, x_te, y_tr, y_te = x.iloc[tr], x.iloc[te], y[tr], y[te]
        if classify and len(np.unique(y_tr)) < 2:
            continue
        folds.append((x_tr, y_tr, x_te, y_te))
        for value, fitted in zip(grid, _linear_fits(x_tr, y_tr, x_te, task, encoder, grid, positive) if grid else []):
            scores["linear"][value].append(_fold_score(metric, y_te, fitted, positive))
        if hgb == "early":
            # the fold is (k-1)/k of the set: its validation split may be that much smaller
            split = _validation_split(y_tr, classify, seed, min_rows=MIN_VALIDATION_ROWS * (k - 1) // k)
            model = _hgb(task, seed, split is not None, params)
            _fit(model, x_tr, y_tr, split)
            fitted = _predict(model, x_te, task, positive)
            scores["hgb"].setdefault("early", []).append(_fold_score(metric, y_te, fitted, positive))
            scores["hgb_trees"].append(int(model.n_iter_))
    if hgb == "trees" and folds:
        scores["hgb"] = _cv_tree_counts(folds, task, seed, params, metric, positive)
    return {"metric": metric, "folds": k, **scores}


def _mean(values: list) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def _se(values: list) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.std(finite, ddof=1) / np.sqrt(len(finite))) if len(finite) > 1 else float("nan")


def _paired_se(differences: list, k: int) -> float:
    """The standard error of the mean of k-fold paired score differences, corrected for the folds' shared
    training rows (Nadeau & Bengio 2003: variance x (1/k + n_test/n_train) instead of 1/k)."""
    if len(differences) < 2:
        return float("nan")
    return float(np.std(differences, ddof=1) * np.sqrt(1 / k + 1 / (k - 1)))


def _best(candidates: dict) -> tuple:
    """The candidate with the highest mean fold score (the first of equals; the first when none has one):
    (key, mean)."""
    means = {key: _mean(values) for key, values in candidates.items()}
    finite = [key for key, mean in means.items() if np.isfinite(mean)]
    best = max(finite, key=lambda k: means[k]) if finite else next(iter(means), None)
    return best, means.get(best, float("nan"))


def _cv_trees(x: pd.DataFrame, y: np.ndarray, task: str, seed: int, params: dict | None = None) -> int:
    """Boosting's number of trees for a set too small for early stopping: the TREE_GRID count with the best
    K-fold score on the training rows (FIXED_ITER when too few rows to cross-validate)."""
    cv = _cross_validate(x, y, task, seed, Encoder("", {}), linear=False, hgb="trees", params=params)
    trees = _best(cv["hgb"])[0] if cv and cv["hgb"] else None
    return int(trees) if trees is not None else FIXED_ITER


@dataclass
class Choice:
    """The learner evaluate() uses for every model (TRTR, TSTR, blend), chosen once on the real training rows."""
    learner: str  # fit_predict's name: "linear" or "hgb"
    name: str  # "ridge", "logistic" or "hgb"
    params: dict | None  # the linear model's {"alpha": a} / {"C": c}; None for boosting
    fixed_iter: int | None  # boosting's trees on a set too small for early stopping
    record: dict  # what was compared, for the result and the report


LEARNER_MODELS = {"ridge": "ridge_regression", "logistic": "logistic_regression", "hgb": "hist_gradient_boosting"}


def choose_learner(train: pd.DataFrame, target: str, task: str, seed: int) -> Choice:
    """The better of the linear model (ridge / logistic regression on one-hot categoricals and standardised
    numerics, its alpha / C the best of a small grid) and boosting, by CV_FOLDS-fold cross-validation on at
    most CV_MAX_ROWS of the training rows (a uniform sample; never the holdout), scored with the holdout's
    metric. Boosting is kept unless the linear model is higher by more than SWITCH_MARGIN_SE standard errors
    of the paired fold differences. On a set too small for early stopping boosting's number of trees is
    cross-validated too (TREE_GRID); otherwise each fold stops early on its own validation split."""
    seed = seed % 2**32
    sample = bounded_sample(train, seed, CV_MAX_ROWS)
    encoder = Encoder.fit(sample, target)
    x = encoder.transform(sample)
    classify = task != "regression"
    y = _labels(sample[target]) if classify else sample[target].astype(float).to_numpy()
    linear_name = "logistic" if classify else "ridge"
    key = "C" if classify else "alpha"
    # the final model on these rows: too few for an early-stopping split, its trees are cross-validated here
    small = _validation_split(_labels(train[target]) if classify else np.empty(len(train)), classify, seed) is None
    record = {"train_rows": len(train), "cv_rows": len(sample), "cv_rows_cap": CV_MAX_ROWS, "folds": 0,
              "cv_metric": None,
              "candidates": {linear_name: LEARNER_MODELS[linear_name], "hgb": LEARNER_MODELS["hgb"]}}
    cv = None
    if not classify or len(np.unique(y)) >= 2:
        cv = _cross_validate(x, y, task, seed, encoder, linear=True, hgb="trees" if small else "early")
    if cv is None or not cv["hgb"]:
        why = (f"too few training rows ({len(sample)}) or classes to cross-validate: boosting kept"
               + (f", {FIXED_ITER} trees without early stopping" if small else ""))
        return Choice("hgb", "hgb", None, FIXED_ITER if small else None,
                      {**record, "chosen": "hgb", "cv": {}, "cv_se": {}, "why": why})
    value, linear_score = _best(cv["linear"])
    trees, hgb_score = _best(cv["hgb"])
    fixed_iter = int(trees) if small else int(np.median(cv["hgb_trees"])) if cv["hgb_trees"] else FIXED_ITER
    hgb_how = f"{fixed_iter} trees (cross-validated)" if small else \
        f"early stopping, {fixed_iter} trees (median over folds)"
    linear_se, hgb_se = _se(cv["linear"][value]), _se(cv["hgb"][trees])
    pairs = [(a - b) for a, b in zip(cv["linear"][value], cv["hgb"][trees]) if np.isfinite(a) and np.isfinite(b)]
    diff, diff_se = _mean(pairs), _paired_se(pairs, cv["folds"])
    if not np.isfinite(hgb_score):
        chosen = linear_name if np.isfinite(linear_score) else "hgb"
        verdict = f"boosting has no cross-validated score: {'boosting kept' if chosen == 'hgb' else chosen + ' chosen'}"
    elif np.isfinite(diff) and diff > SWITCH_MARGIN_SE * np.nan_to_num(diff_se):
        chosen = linear_name
        verdict = (f"{linear_name} is higher by {diff:.3f} ± {diff_se:.3f} (paired over the folds), more than "
                   f"{SWITCH_MARGIN_SE:g} standard error: {linear_name} chosen")
    else:
        chosen = "hgb"
        verdict = (f"{linear_name} is not higher by more than {SWITCH_MARGIN_SE:g} standard error of the paired "
                   f"difference ({diff:+.3f} ± {diff_se:.3f}): boosting kept")
    why = (f"{cv['folds']}-fold cross-validation on {len(sample):,} real training rows"
           f"{f' (a sample of {len(train):,})' if len(sample) < len(train) else ''}, {cv['metric']}: "
           f"{linear_name} ({key} {value:g}) {linear_score:.3f} ± {linear_se:.3f}, "
           f"gradient boosting ({hgb_how}) {hgb_score:.3f} ± {hgb_se:.3f}; {verdict}")
    record.update({
        "chosen": chosen, "folds": cv["folds"], "cv_metric": cv["metric"],
        "cv": {linear_name: linear_score, "hgb": hgb_score}, "cv_se": {linear_name: linear_se, "hgb": hgb_se},
        "cv_difference": {"point": diff, "se": diff_se, "margin_se": SWITCH_MARGIN_SE},
        "cv_grid": {linear_name: {f"{key}={v:g}": _mean(s) for v, s in cv["linear"].items()},
                    "hgb": {(f"trees={t}" if small else "early_stopping"): _mean(s) for t, s in cv["hgb"].items()}},
        "settings": {linear_name: {key: value}, "hgb": {"trees": fixed_iter, "early_stopping": not small}},
        "why": why})
    if chosen == "hgb":
        return Choice("hgb", "hgb", None, fixed_iter, record)
    return Choice("linear", linear_name, {key: value}, None, record)


# --- scoring with a paired bootstrap ---------------------------------------------------------------------

def _row_counts(idx: np.ndarray, n: int) -> np.ndarray:
    b = len(idx)
    flat = (idx + (np.arange(b) * n)[:, None]).ravel()
    return np.bincount(flat, minlength=b * n).reshape(b, n).astype(float)


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


# --- verdicts ----------------------------------------------------------------------------------------------


def learner_verdict(metric: str, trtr: dict, chance: dict, tree: dict, vs_chance: dict, vs_tree: dict,
                    learner: str | None = None) -> tuple[bool, str | None]:
    """Is the real-only model (of the chosen `learner`) fit to judge utility? Not when it is no better than
    chance within the noise (the lower end of the interval of trtr - chance is at or below 0), nor when it
    trails the depth-limited tree by more than TREE_MARGIN beyond the noise (upper end of trtr - tree below 0)."""
    def fmt(d: dict) -> str:
        return f"{d['point']:.3f} (95% interval {d['ci'][0]:.3f} to {d['ci'][1]:.3f})"

    model = f"the real-only model ({learner})" if learner else "the real-only model"
    problems = []
    if not np.isfinite(vs_chance["point"]) or not (vs_chance["ci"][0] > 0):
        problems.append(f"{model} is no better than chance: {metric} {trtr['point']:.3f} against "
                        f"{chance['point']:.3f} for a {chance.get('kind', 'majority')} guess, "
                        f"difference {fmt(vs_chance)}")
    if np.isfinite(vs_tree["point"]) and vs_tree["point"] < -TREE_MARGIN and vs_tree["ci"][1] < 0:
        problems.append(f"{model} is clearly worse than a depth-{TREE_DEPTH} decision tree: {metric} "
                        f"{trtr['point']:.3f} against {tree['point']:.3f}, difference {fmt(vs_tree)}")
    if not problems:
        return True, None
    return False, "; ".join(problems) + " — the utility figures cannot be trusted"


# --- the evaluation ----------------------------------------------------------------------------------------

def train_and_score(train: pd.DataFrame, holdout: pd.DataFrame, target: str, task: str, seed: int,
                    learner: str = "auto", params: dict | None = None) -> float:
    """One model's score on the holdout (the point estimate, no interval).

    The learner is chosen as evaluate() chooses it ("auto", see choose_learner) unless named; `params`
    without a learner are boosting settings (they mean learner "hgb")."""
    scorer = Scorer(holdout[target], task)
    positive = getattr(scorer, "positive", None)
    if learner == "auto" and params is not None:
        learner = "hgb"
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
    # one learner for every model, chosen on the real training rows only (the holdout plays no part)
    choice = choose_learner(fit["real"], target, task, seed)

    def model(frame: pd.DataFrame) -> Fitted:
        return fit_predict(frame, holdout, target, task, seed, choice.learner, choice.params, positive,
                           choice.fixed_iter)

    fitted = {"trtr": model(fit["real"]), "blend": model(fit["blend"]),
              "tree": fit_predict(fit["real"], holdout, target, task, seed, learner="tree", positive=positive)}
    if len(synthetic):
        fitted["tstr"] = model(fit["synthetic"])
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
                                  vs_chance, vs_tree, learner=choice.name)
    out = {"metric": scorer.metric, "model": LEARNER_MODELS[choice.name]}
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
        "learner": {**choice.record, "params": HGB_PARAMS, "validation_fraction": VALIDATION_FRACTION,
                    "n_iter_no_change": N_ITER_NO_CHANGE, "tree_depth": TREE_DEPTH,
                    "linear_params": choice.params,
                    "iterations": {name: f.info.get("n_iter") for name, f in fitted.items() if name != "tree"}},
        "bootstrap": {"resamples": resamples, "confidence": CONFIDENCE, "paired": True, "interval": "percentile"},
        "train_rows": {"real": len(real_train), "synthetic": len(synthetic), "blend": len(blended)},
        "evaluation_train_rows": {name: len(frame) for name, frame in fit.items()},
        "evaluation_train_rows_cap": MAX_TRAIN_ROWS, "evaluation_holdout_rows": len(holdout),
    })
    return out

