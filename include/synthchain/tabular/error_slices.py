"""Slices from errors: where the real-only model lags, found on the training rows alone.

"Data to spec" aims synthetic rows at the slices where a model trained on real rows only gets things wrong.
`find_error_slices` finds them without the holdout (it is never an input here):

1. Out-of-fold predictions. The learner is the one the downstream evaluator would choose:
   evaluation.choose_learner on a seeded sample of at most `max_rows` training rows (evaluation.bounded_sample;
   at the default CV_MAX_ROWS and the same seed it is the very sample evaluate() chooses its learner on, for a
   table of up to evaluation.MAX_TRAIN_ROWS rows). Each analysed row is predicted by that learner fit on the
   other `folds` - 1 folds of the sample (evaluation._folds: seeded, stratified by class); only the sample is
   analysed (`why["sampled"]`, `why["cv_rows"]`).
2. An error indicator per row.
   - Binary classification: the positive class is the minority class of the training rows (as in
     baselines.evaluate_slices) and the decision threshold is the one with the highest F1 of that class on
     the pooled out-of-fold scores. An error is a missed minority row or a false alarm at that threshold.
     At the default 0.5 (argmax) a model on a rare class predicts almost only the majority, the errors are
     nearly the minority rows themselves and the error tree would relearn where the minority lives instead
     of where the model is wrong; the tuned threshold is also the operating point the per-slice evaluation
     judges (precision / recall / F1 of the minority class at a threshold tuned for its F1).
   - More than two classes: the most probable class; an error is a wrong label.
   - Regression: an error is an absolute error in the top (1 - REGRESSION_QUANTILE) of the out-of-fold
     absolute errors (the worst fifth). Above the median (half the rows "wrong") the indicator flips on small
     differences between ordinary residuals and the tree fits noise; the worst fifth are real misses.
3. A shallow decision tree (depth `max_depth`, at least `min_rows` rows per leaf) fit on the features (never
   the target) to the error indicator. Numeric features as they are (missing values are routed by the tree);
   a categorical (or boolean) feature as ordinal codes of its levels sorted by their smoothed error rate
   ((errors + m * overall rate) / (rows + m), m = `min_rows`): for a 0/1 outcome the best split of a
   categorical feature is a threshold on that order (Breiman), and a threshold on it reads back as a set of
   original values (`==`, `in`, or `!=` when one level is left out). Left out of the tree: the target,
   lineage columns (`_sc_*`), datetime columns, constant columns and categoricals with more than MAX_LEVELS
   levels (an ID-like column would give unreadable `in` lists and spurious leaves).
4. Every node of the tree but the root is a candidate: the conjunction of the splits on its path, as
   `targets.Condition`s (numeric splits `<=` / `>`, several on one column merged into one bound or a
   `between`; each bound is the roundest number that splits the training rows exactly as the tree's
   threshold does; categorical splits intersected into one set of levels).
5. A candidate is "clearly above" the overall error rate p when all of:
   - it holds at least `min_rows` and at most MAX_SHARE of the analysed rows (half the table is no slice);
   - its error rate is at least MIN_LIFT x p;
   - its exact binomial tail, P(at least its errors in its rows at rate p), is at most MAX_P_VALUE;
   - its permutation p-value is at most ALPHA. The tail probability of a node a search picked is inflated by
     the search, and more so for small nodes (a tree can cut many more small tails than large regions), so
     the node's multiscale scan statistic sqrt(2 surprise) - sqrt(2 ln(e n / rows)) (surprise: minus the log
     of the tail; Duembgen & Spokoiny's size penalty) is compared with the largest one of PERMUTATIONS trees
     grown the same way (categorical orders included) on shuffled error indicators: p = (1 + searches
     reaching it) / (PERMUTATIONS + 1), family-wise over every node of the search (maxT). At 49 permutations
     a kept slice beats all but at most one shuffled search. On errors drawn at random (1,500 rows, 10%
     errors, 4 features) 5 of 100 searches kept a slice; random label flips give none (tests). The figures of
     every candidate are in `search_error_slices(...).candidates`.
6. Regions: a node that passed stands for its subtree when both its children's error rates are at least
   MIN_LIFT x p (the tree only cut an error region in two) or when no node below it passed; otherwise the
   regions below it stand (a parent diluted by a half without excess errors gives way to its erring child).
   The regions are disjoint (tree nodes are nested or disjoint). They are ranked by error mass,
   errors - rows x p: the errors a region holds beyond what the overall rate predicts for that many rows (the
   errors a fix there could remove: a large region with a moderate excess can outrank a tiny one with a high
   rate). The top `n_slices` are returned, named errors_1, errors_2, ...
7. Classification fallback: when no region is clearly above, the class with the lowest out-of-fold recall
   among all but the most frequent class, when that recall is below FALLBACK_RECALL and the class holds at
   least `min_rows` rows, becomes the one slice `target == class` (the model misses most of that class and
   the features show no region to aim at instead). Otherwise nothing: [].

What a slice says is where the model errs, not why: a region where the classes overlap (irreducible noise) is
found as readily as an under-sampled one more rows would fix, and a learner that over-fits chance pockets of
a rare class errs, really, around them. The binary threshold is tuned on the out-of-fold scores, so it moves
with the seed's folds (attrition: 0.34 at seed 0, 0.26 at seed 1) and the slices with it.

Each slice's `why`: rule "from_errors", kind ("tree" / "worst_recall_class"), error_rate, overall_error_rate,
errors, error_mass, lift, real_rows (rows of `train` the rule selects), cv_rows (rows analysed), sampled
(cv_rows below the training rows: a seeded sample of `max_rows`), max_rows, folds, learner, decision (and
threshold or error_cut), seed; a tree slice adds p_value (binomial tail), permutation_p, permutations, alpha,
max_depth, min_rows; the fallback adds recall, class_rows, fallback_recall and a note. The figures are those of the rows the slice's rule selects among the
analysed rows. Those are exactly the tree node's rows except for a row missing the value of a column split on
along the path: no condition operator can say "or missing", so such a row belongs to no slice below that split
(the figures leave it out).

Cost: the learner choice plus `folds` fits on at most `max_rows` rows and PERMUTATIONS + 1 shallow trees:
about 1-4 s on 1,500-2,000 rows, 5-10 s on lending_club's 9,857 rows (2 shared cores).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import binom
from sklearn.tree import DecisionTreeClassifier

from ..targets import Condition, Slice
from ..slice_scores import tuned_threshold
from .evaluation import CV_MAX_ROWS, LEARNER_MODELS, _folds, _labels, bounded_sample, choose_learner, fit_predict

DEFAULT_ROWS = 1000  # a slice's quota of kept synthetic rows when the caller names none
REGRESSION_QUANTILE = 0.8  # regression: an error is an absolute error above this quantile (the worst fifth)
MAX_LEVELS = 50  # categorical features with more levels are left out of the error tree
PERMUTATIONS = 49  # trees grown on shuffled errors: the null of the search
ALPHA = 0.05  # a kept slice's permutation p-value (family-wise over the search) is at most this
MAX_P_VALUE = 0.01  # ... and its plain binomial tail probability too
MIN_LIFT = 1.5  # a slice's error rate is at least this many times the overall rate
MAX_SHARE = 0.5  # a slice holds at most this share of the analysed rows
FALLBACK_RECALL = 0.5  # classification fallback: a class whose out-of-fold recall is below this


@dataclass
class CrossValidated:
    """Out-of-fold predictions of the real-only model on (a seeded sample of) the training rows."""
    frame: pd.DataFrame  # the analysed rows (index reset): the sample when the table was larger than max_rows
    target: str
    task: str
    truth: np.ndarray  # labels as strings (evaluation._labels) or float values
    predicted: np.ndarray  # decided labels, or predicted values
    error: np.ndarray  # bool per row
    folds: int
    learner: str  # "hgb", "logistic" or "ridge"
    learner_why: str
    train_rows: int
    decision: str  # how an error is defined, in words
    positive: str | None = None  # binary: the minority class
    threshold: float | None = None  # binary: the tuned threshold of the positive class's probability
    error_cut: float | None = None  # regression: the absolute error above which a row is an error
    originals: dict[str, Any] = field(default_factory=dict)  # label string -> the original label value

    @property
    def sampled(self) -> bool:
        return len(self.frame) < self.train_rows

    @property
    def error_rate(self) -> float:
        return float(self.error.mean()) if len(self.error) else 0.0


def cross_validated_errors(train: pd.DataFrame, target: str, task: str, *, folds: int = 5, seed: int = 0,
                           max_rows: int = CV_MAX_ROWS) -> CrossValidated:
    """Each training row's out-of-fold prediction by the evaluator's learner and whether it is an error (see
    the module docstring, steps 1-2). Regression rows without a target value are left out."""
    seed = seed % 2**32
    frame = train[[c for c in train.columns if not str(c).startswith("_sc_")]]
    classify = task != "regression"
    if not classify:
        frame = frame[frame[target].notna()]
    train_rows = len(frame)
    frame = bounded_sample(frame.reset_index(drop=True), seed, max_rows).reset_index(drop=True)
    n = len(frame)
    if classify:
        y = _labels(frame[target])
        originals = {}
        for value in frame[target].drop_duplicates():
            originals.setdefault(str(value), _python(value))
        counts = pd.Series(y).value_counts().sort_index()
        binary = len(counts) == 2
        positive = str(counts.idxmin()) if binary else None  # the minority (the first in sort order of equals)
    else:
        y = frame[target].astype(float).to_numpy()
        originals, positive, binary = {}, None, False
    k = min(folds, n // 2)
    if n < 4 or k < 2 or (classify and len(np.unique(y)) < 2):
        why = "too few rows or one class: no cross-validation"
        return CrossValidated(frame, target, task, y, y.copy(), np.zeros(n, dtype=bool), 0, "none", why,
                              train_rows, "no errors: nothing to cross-validate", positive, originals=originals)
    choice = choose_learner(frame, target, task, seed)
    fold = _folds(y, k, classify, seed)
    scores = np.zeros(n)
    predicted = np.empty(n, dtype=object) if classify else np.zeros(n)
    for i in range(k):
        tr, te = np.flatnonzero(fold != i), np.flatnonzero(fold == i)
        fitted = fit_predict(frame.iloc[tr], frame.iloc[te], target, task, seed, choice.learner, choice.params,
                             positive, choice.fixed_iter)
        if not classify:
            predicted[te] = fitted.values
        else:
            predicted[te] = np.asarray(fitted.labels).astype(str)
            if binary:
                scores[te] = fitted.scores if fitted.scores is not None else 0.0
    threshold = cut = None
    if not classify:
        absolute = np.abs(y - predicted)
        cut = float(np.quantile(absolute, REGRESSION_QUANTILE))
        error = absolute > cut
        decision = (f"absolute error above its {REGRESSION_QUANTILE:.0%} quantile ({cut:.6g}) over the "
                    "out-of-fold predictions")
    elif binary:
        threshold, _ = tuned_threshold(y == positive, scores)
        other = next(c for c in counts.index if c != positive)
        predicted = np.where(scores >= threshold, positive, other).astype(object)
        error = predicted != y
        decision = (f"{positive!r} (the minority class) when its out-of-fold probability reaches {threshold:.4f}, "
                    "the threshold with its highest F1; an error is a missed or a false "
                    f"{positive!r}")
    else:
        error = predicted.astype(str) != y
        decision = "the most probable class; an error is a wrong label"
    return CrossValidated(frame, target, task, y, predicted, np.asarray(error, dtype=bool), k, choice.name,
                          choice.record.get("why", ""), train_rows, decision, positive, threshold, cut, originals)


def per_class_errors(train: pd.DataFrame, target: str, *, folds: int = 5, seed: int = 0,
                     max_rows: int = CV_MAX_ROWS, cv: CrossValidated | None = None) -> dict[Any, dict]:
    """Per class (keys: the original label values, most frequent first): rows, share, out-of-fold recall,
    precision, missed rows, at the decision of cross_validated_errors (binary: the threshold tuned for the
    minority class's F1; more classes: the most probable class)."""
    cv = cv or cross_validated_errors(train, target, "classification", folds=folds, seed=seed, max_rows=max_rows)
    truth, guess = cv.truth, np.asarray(cv.predicted).astype(str)
    counts = pd.Series(truth).value_counts()
    counts = counts.iloc[np.lexsort((counts.index.astype(str), -counts.to_numpy()))]
    out = {}
    for label, rows in counts.items():
        hit = int(((truth == label) & (guess == label)).sum())
        said = int((guess == label).sum())
        out[cv.originals.get(label, label)] = {
            "rows": int(rows), "share": _round(rows / len(truth)), "recall": _round(hit / rows),
            "precision": _round(hit / said) if said else None, "missed": int(rows - hit)}
    return out


@dataclass
class Node:
    """A candidate region: one node of the error tree, its rule and its figures."""
    node: int
    conditions: tuple[Condition, ...]
    rows: np.ndarray  # indices (into the analysed frame) of the rows the rule selects
    tree_rows: np.ndarray  # ... and of the rows the tree routed to the node
    errors: int
    error_rate: float
    error_mass: float
    lift: float
    p_value: float  # the exact binomial tail: P(at least `errors` errors in these rows at the overall rate)
    permutation_p: float  # the share of shuffled-error searches finding something as surprising (see _Null)
    passed: bool


@dataclass
class ErrorSearch:
    """What find_error_slices looked at: the out-of-fold errors, the error tree's candidates (every node but
    the root, ranked by error mass), the regions chosen (one per tree slice, in the slices' order) and the
    slices."""
    cv: CrossValidated
    slices: list[Slice]
    candidates: list[Node]
    regions: list[Node]
    features: list[str]
    left_out: dict[str, str]
    per_class: dict[Any, dict] | None = None


def find_error_slices(train: pd.DataFrame, target: str, task: str, *, n_slices: int = 3,
                      rows: int = DEFAULT_ROWS, folds: int = 5, max_depth: int = 3, min_rows: int = 20,
                      seed: int = 0, max_rows: int = CV_MAX_ROWS) -> list[Slice]:
    """Up to `n_slices` slices of the training rows where the real-only model's out-of-fold errors
    concentrate, each with quota `rows`; [] when the errors show no region clearly above the overall rate
    (and, for classification, no class is mostly missed). The holdout plays no part. See the module docstring."""
    return search_error_slices(train, target, task, n_slices=n_slices, rows=rows, folds=folds,
                               max_depth=max_depth, min_rows=min_rows, seed=seed, max_rows=max_rows).slices


def search_error_slices(train: pd.DataFrame, target: str, task: str, *, n_slices: int = 3,
                        rows: int = DEFAULT_ROWS, folds: int = 5, max_depth: int = 3, min_rows: int = 20,
                        seed: int = 0, max_rows: int = CV_MAX_ROWS) -> ErrorSearch:
    """find_error_slices with its workings (ErrorSearch)."""
    seed = seed % 2**32
    cv = cross_validated_errors(train, target, task, folds=folds, seed=seed, max_rows=max_rows)
    frame, error = cv.frame, cv.error
    features, left_out = _tree_columns(frame, target)
    p = cv.error_rate
    n = len(frame)
    candidates: list[Node] = []
    tree = None
    if features and 0 < error.sum() < n and n >= 2 * min_rows:
        columns = {c: _level_codes(frame[c]) if _categorical(frame[c]) else _numeric(frame[c]) for c in features}
        tree, x, orders = _grow(features, columns, error, max_depth, min_rows, seed)
        null = _Null.grow(features, columns, error, max_depth, min_rows, seed)
        candidates = _candidates(tree, x, frame, train, features, orders, error, p, null, min_rows)
    chosen = _regions(tree, {c.node: c for c in candidates})[:n_slices] if candidates else []
    common = {"overall_error_rate": _round(p), "cv_rows": n, "sampled": cv.sampled, "max_rows": max_rows,
              "folds": cv.folds, "learner": LEARNER_MODELS.get(cv.learner, cv.learner), "decision": cv.decision,
              "seed": seed}
    if cv.threshold is not None:
        common["threshold"] = _round(cv.threshold)
    if cv.error_cut is not None:
        common["error_cut"] = _round(cv.error_cut)
    slices = []
    for i, node in enumerate(chosen, start=1):
        s = Slice(f"errors_{i}", node.conditions, rows)
        why = {"rule": "from_errors", "kind": "tree", "error_rate": _round(node.error_rate), **common,
               "real_rows": int(s.mask(train).sum()), "errors": node.errors, "error_mass": _round(node.error_mass),
               "lift": _round(node.lift), "p_value": _sig(node.p_value),
               "permutation_p": _round(node.permutation_p), "permutations": PERMUTATIONS, "alpha": ALPHA,
               "max_depth": max_depth, "min_rows": min_rows}
        slices.append(Slice(s.name, s.conditions, rows, why))
    per_class = None
    if task != "regression" and cv.folds:
        per_class = per_class_errors(train, target, cv=cv)
        if not slices:
            fallback = _fallback(cv, per_class, train, target, rows, min_rows, common)
            slices = [fallback] if fallback else []
    return ErrorSearch(cv, slices, candidates, chosen, features, left_out, per_class)


# --- the error tree ------------------------------------------------------------------------------------------

def _categorical(series: pd.Series) -> bool:
    return pd.api.types.is_bool_dtype(series) or not (pd.api.types.is_numeric_dtype(series)
                                                      or pd.api.types.is_datetime64_any_dtype(series))


def _numeric(series: pd.Series) -> np.ndarray:
    return pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _tree_columns(frame: pd.DataFrame, target: str) -> tuple[list[str], dict[str, str]]:
    """The features the error tree may split on, and why the others are left out."""
    keep, left_out = [], {}
    for col in frame.columns:
        if col == target:
            continue
        series = frame[col]
        if pd.api.types.is_datetime64_any_dtype(series) or isinstance(series.dtype, pd.DatetimeTZDtype):
            left_out[col] = "datetime"
        elif series.nunique(dropna=True) < 2:
            left_out[col] = "constant"
        elif _categorical(series) and series.nunique(dropna=True) > MAX_LEVELS:
            left_out[col] = f"more than {MAX_LEVELS} levels"
        else:
            keep.append(col)
    return keep, left_out


def _level_codes(series: pd.Series) -> tuple[np.ndarray, list]:
    """A categorical column's level codes (-1: missing) and its levels (original values)."""
    codes, uniques = pd.factorize(series, sort=False, use_na_sentinel=True)
    return np.asarray(codes), [_python(v) for v in uniques]


def _matrix(features: list[str], columns: dict[str, Any], error: np.ndarray, m: float
            ) -> tuple[np.ndarray, dict[str, list]]:
    """The tree's features: numerics as they are, each categorical as the rank of its level by smoothed error
    rate ((errors + m p) / (rows + m), then by the level's text)."""
    p = float(error.mean())
    out, orders = [], {}
    for col in features:
        value = columns[col]
        if not isinstance(value, tuple):
            out.append(value)
            continue
        codes, levels = value
        present = codes >= 0
        rows = np.bincount(codes[present], minlength=len(levels))
        errors = np.bincount(codes[present], weights=error[present].astype(float), minlength=len(levels))
        rate = (errors + m * p) / (rows + m)
        by_error = sorted(range(len(levels)), key=lambda i: (rate[i], str(levels[i])))
        rank = np.empty(len(levels))
        rank[by_error] = np.arange(len(levels))
        orders[col] = [levels[i] for i in by_error]
        out.append(np.where(present, rank[np.maximum(codes, 0)], np.nan))
    # the tree compares float32 features with float64 thresholds: give it the float32 view it would make
    return np.column_stack(out).astype(np.float32), orders


def _grow(features, columns, error, max_depth, min_rows, seed):
    x, orders = _matrix(features, columns, error, m=min_rows)
    tree = DecisionTreeClassifier(max_depth=max_depth, min_samples_leaf=min_rows, random_state=seed)
    tree.fit(x, error.astype(int))
    return tree, x, orders


def _node_counts(tree, x, error) -> tuple[np.ndarray, np.ndarray]:
    path = tree.decision_path(x)
    return np.asarray(path.sum(axis=0)).ravel(), np.asarray(path.T @ error.astype(float)).ravel()


def _surprise(errors, rows, p) -> np.ndarray:
    """-ln P(at least `errors` errors in `rows` rows at the overall rate p): the exact binomial tail, 0 where
    the rows hold no more errors than p predicts."""
    errors, rows = np.asarray(errors, dtype=float), np.asarray(rows, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        tail = -binom.logsf(errors - 1, rows, p)
    return np.where((rows > 0) & (errors > rows * p), np.nan_to_num(tail, posinf=745.0), 0.0)


def _scan(errors, rows, p, n) -> np.ndarray:
    """The multiscale scan statistic of a node: sqrt(2 surprise) - sqrt(2 ln(e n / rows)).

    Under no structure the largest sqrt(2 surprise) among regions of `rows` rows grows like
    sqrt(2 ln(n / rows)) (there are more small regions than large ones to pick from); subtracting it puts
    small and large regions on one scale (Duembgen & Spokoiny 2001), so the many small tails a tree can cut
    do not set the bar for large regions."""
    rows = np.asarray(rows, dtype=float)
    return np.sqrt(2 * _surprise(errors, rows, p)) - np.sqrt(2 * np.log(np.e * n / np.maximum(rows, 1)))


@dataclass
class _Null:
    """The search on shuffled errors: per permutation, the highest scan statistic of an eligible node (min_rows
    to MAX_SHARE of the rows, error rate at least MIN_LIFT x the overall rate; -inf when none). A candidate's
    permutation p-value is the share of searches (the real one counted) reaching its statistic: the maximum
    over the whole search is compared, so the p-value holds family-wise over every node and size (maxT)."""
    best: np.ndarray  # one per permutation

    @classmethod
    def grow(cls, features, columns, error, max_depth, min_rows, seed) -> "_Null":
        n, p = len(error), float(error.mean())
        best = np.full(PERMUTATIONS, -np.inf)
        rng = np.random.default_rng(seed)
        for j in range(PERMUTATIONS):
            shuffled = rng.permutation(error)
            tree, x, _ = _grow(features, columns, shuffled, max_depth, min_rows, seed)
            rows, errors = _node_counts(tree, x, shuffled)
            ok = ((np.arange(len(rows)) > 0) & (rows >= min_rows) & (rows <= MAX_SHARE * n)
                  & (errors >= MIN_LIFT * p * rows))
            if ok.any():
                best[j] = _scan(errors[ok], rows[ok], p, n).max()
        return cls(best)

    def p_value(self, statistic: float) -> float:
        return (1 + int((self.best >= statistic).sum())) / (len(self.best) + 1)


def _paths(tree) -> dict[int, list[tuple[int, bool, float]]]:
    """Each node's path from the root: (feature, went left, threshold) per split."""
    t = tree.tree_
    out = {0: []}
    stack = [0]
    while stack:
        node = stack.pop()
        left, right = t.children_left[node], t.children_right[node]
        if left == -1:
            continue
        step = (int(t.feature[node]), float(t.threshold[node]))
        out[left] = out[node] + [(step[0], True, step[1])]
        out[right] = out[node] + [(step[0], False, step[1])]
        stack += [left, right]
    return out


def _regions(tree, nodes: dict[int, Node]) -> list[Node]:
    """The disjoint error regions of the tree, by error mass (see the module docstring, step 6): a node that
    passed stands for its subtree when both its children's error rates are at least MIN_LIFT x the overall
    rate (the whole node errs, a split below it only cut it in two) or when nothing below it passed;
    otherwise its children's regions stand."""
    t = tree.tree_

    def walk(node: int) -> list[Node]:
        left, right = int(t.children_left[node]), int(t.children_right[node])
        here = nodes.get(node)
        if left == -1:
            return [here] if here is not None and here.passed else []
        below = walk(left) + walk(right)
        if here is None or not here.passed:
            return below
        both = all(nodes[c].lift >= MIN_LIFT for c in (left, right))
        return [here] if both or not below else below

    return sorted(walk(0), key=lambda c: (-c.error_mass, c.p_value, c.node))


def _candidates(tree, x, frame, train, features, orders, error, p, null, min_rows) -> list[Node]:
    """Every non-root node as a rule with its figures (on the rows of the analysed `frame` the rule selects;
    its bounds placed by the values of `train`), by error mass."""
    n = len(frame)
    path = tree.decision_path(x).tocsc()
    out = []
    for node, steps in _paths(tree).items():
        if node == 0:
            continue
        conditions = _conditions(steps, features, orders, train)
        selected = Slice("candidate", conditions).mask(frame)
        rows = np.flatnonzero(selected)
        count = len(rows)
        errors = int(error[rows].sum())
        rate = errors / count if count else 0.0
        mass = errors - count * p
        surprise = float(_surprise(errors, count, p))
        eligible = min_rows <= count <= MAX_SHARE * n and rate >= MIN_LIFT * p
        adjusted = null.p_value(float(_scan(errors, count, p, n))) if eligible else 1.0
        passed = eligible and adjusted <= ALPHA and surprise >= -np.log(MAX_P_VALUE)
        tree_rows = path.indices[path.indptr[node]:path.indptr[node + 1]]
        out.append(Node(node, conditions, rows, np.sort(tree_rows), errors, rate, mass,
                        rate / p if p else float("nan"), float(np.exp(-surprise)), adjusted, bool(passed)))
    out.sort(key=lambda c: (-c.error_mass, c.p_value, c.node))
    return out


# --- a node's path as conditions -----------------------------------------------------------------------------

def _conditions(steps, features, orders, train: pd.DataFrame) -> tuple[Condition, ...]:
    """The splits of a path as conditions, one per column, in the order the columns are first split on (the
    bounds placed by the values of `train`)."""
    bounds: dict[str, list] = {}  # numeric: [highest lower threshold, lowest upper threshold]
    sets: dict[str, set] = {}  # categorical: the codes still allowed
    order: list[str] = []
    for feature, left, threshold in steps:
        col = features[feature]
        if col not in order:
            order.append(col)
        if col in orders:
            codes = {i for i in range(len(orders[col])) if (i <= threshold) == left}
            sets[col] = sets.get(col, codes) & codes
        else:
            lo, hi = bounds.setdefault(col, [None, None])
            if left:
                bounds[col][1] = threshold if hi is None else min(hi, threshold)
            else:
                bounds[col][0] = threshold if lo is None else max(lo, threshold)
    out = []
    for col in order:
        if col in orders:
            out.append(_level_condition(col, [orders[col][i] for i in sorted(sets[col])], orders[col], train))
        else:
            out.append(_bound_condition(col, *bounds[col], train))
    return tuple(out)


def _level_condition(col: str, kept: list, levels: list, train: pd.DataFrame) -> Condition:
    kept = sorted((_python(v) for v in kept), key=str)
    if len(kept) == 1:
        return Condition(col, "==", kept[0])
    rest = [v for v in levels if _python(v) not in kept]
    series = train[col]
    # `!=` keeps every other value: only when the column holds nothing but the tree's levels and no gaps
    if len(rest) == 1 and series.notna().all() and set(series.unique()) <= set(levels):
        return Condition(col, "!=", _python(rest[0]))
    return Condition(col, "in", tuple(kept))


def _bound_condition(col: str, lo: float | None, hi: float | None, train: pd.DataFrame) -> Condition:
    """`col > a`, `col <= b` or `col between a and b`, with the roundest bounds that split the rows of
    `train` (and so of the analysed sample within it) exactly as the tree's float32 comparisons do."""
    values = _numeric(train[col])
    values = values[np.isfinite(values)]
    cast = values.astype(np.float32).astype(np.float64)  # as the tree compares them, in float64
    integer = pd.api.types.is_integer_dtype(train[col]) or pd.api.types.is_bool_dtype(train[col])

    def gap(threshold: float) -> tuple[float, float]:
        below, above = values[cast <= threshold], values[cast > threshold]
        return (below.max() if len(below) else -np.inf), (above.min() if len(above) else np.inf)

    if lo is not None and hi is not None:
        a, b = gap(lo)
        low = _round_between(a, b, upper_closed=True, integer=integer)  # x > lo  <=>  x >= low
        a, b = gap(hi)
        high = _round_between(a, b, upper_closed=False, integer=integer)  # x <= hi  <=>  x <= high
        return Condition(col, "between", (low, high))
    if hi is not None:
        a, b = gap(hi)
        return Condition(col, "<=", _round_between(a, b, upper_closed=False, integer=integer))
    a, b = gap(lo)
    return Condition(col, ">", _round_between(a, b, upper_closed=False, integer=integer))


def _round_between(a: float, b: float, upper_closed: bool, integer: bool) -> float | int:
    """The roundest number r with a <= r < b (upper_closed: a < r <= b), the nearest to the middle of the gap
    among the equally round: a value on neither side of the split, so `x <= r` / `x > r` (`x >= r`) split the
    values exactly where the tree did (its threshold is the middle of the gap)."""
    if not np.isfinite(a) and not np.isfinite(b):
        return 0
    if not np.isfinite(a):
        a = b - max(1.0, abs(b))
    if not np.isfinite(b):
        b = a + max(1.0, abs(a))

    def ok(r: float) -> bool:
        return (a < r <= b) if upper_closed else (a <= r < b)

    middle = (a + b) / 2
    da, db = Decimal(repr(float(a))), Decimal(repr(float(b)))
    for places in range(-18, 20):  # coarsest first: 10^18, ..., 1, 0.1, ...
        step = Decimal(1).scaleb(-places)
        first = (da / step).to_integral_value(rounding=ROUND_FLOOR)
        last = (db / step).to_integral_value(rounding=ROUND_CEILING)
        if last - first > 12:  # a coarser step already fell in the gap unless it is this wide
            continue
        found = [float(k * step) for k in range(int(first), int(last) + 1) if ok(float(k * step))]
        if found:
            value = min(found, key=lambda r: (abs(r - middle), r))
            return int(value) if integer and value == int(value) else value
    return float(b) if upper_closed else float(a)


# --- the classification fallback ---------------------------------------------------------------------------

def _fallback(cv: CrossValidated, per_class: dict, train: pd.DataFrame, target: str, rows: int, min_rows: int,
              common: dict) -> Slice | None:
    """`target == class` for the least recalled class but the most frequent (FALLBACK_RECALL, min_rows)."""
    labels = list(per_class)[1:]  # per_class is most frequent first
    options = [label for label in labels
               if per_class[label]["rows"] >= min_rows and per_class[label]["recall"] < FALLBACK_RECALL]
    if not options:
        return None
    label = min(options, key=lambda v: (per_class[v]["recall"], str(v)))
    figures = per_class[label]
    p = cv.error_rate
    s = Slice("errors_1", (Condition(target, "==", label),), rows)
    mask = s.mask(cv.frame)
    errors = int(cv.error[mask].sum())
    count = int(mask.sum())
    rate = errors / count if count else 0.0
    why = {"rule": "from_errors", "kind": "worst_recall_class", "error_rate": _round(rate), **common,
           "recall": figures["recall"], "class_rows": figures["rows"], "real_rows": int(s.mask(train).sum()),
           "errors": errors, "error_mass": _round(errors - count * p), "lift": _round(rate / p) if p else None,
           "fallback_recall": FALLBACK_RECALL,
           "note": "no region of the features holds errors clearly above the overall rate; this class is "
                   "mostly missed"}
    return Slice(s.name, s.conditions, rows, why)


def _python(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _round(value: float) -> float:
    return round(float(value), 6)


def _sig(value: float) -> float:
    return float(f"{float(value):.4g}")
