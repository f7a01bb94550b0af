"""Sequential CART synthesis in the style of synthpop, on scikit-learn trees.

Columns are synthesised one after another. The first is bootstrapped from its
marginal; each later column gets a decision tree on the columns before it, and a
synthetic row takes the value of a random real "donor" row that falls in the same
leaf. Donor values keep the real joint structure (and missingness) without a
parametric model; `smoothing` adds kernel noise to continuous donors so values are
not copied verbatim.

Conditioned sampling (a slice) draws each conditioned column's donors only among
those that meet its conditions. It is exact for columns visited first (list them
first in `visit_sequence`); a conditioned column visited later keeps the earlier
columns as drawn, so rows whose leaf holds no valid donor are dropped and the
earlier columns lean towards leaves where the slice is possible but rare.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from ..catalog import BUILTIN_GENERATORS
from ..generators import Generator, GeneratorError
from ..targets import Condition
from .dtypes import from_nanos, restore_dtypes, to_float
from .profile import Profile

# A classifier over thousands of levels (a free-text column kept as it is) is slow, and its leaves would hold a
# handful of rows each anyway: the tree learns the most frequent levels plus one "rest" class, and a leaf's
# donors still carry every real value, rare ones included.
MAX_TREE_CLASSES = 100
# Smoothing noise that pushes a conditioned value out of its slice is redrawn this many times; a row still out
# keeps its donor's value (which meets the conditions). Clipping instead would pile values up on the bounds.
REDRAWS = 8


@dataclass
class _Step:
    name: str
    continuous: bool
    datetime: bool
    tree: DecisionTreeClassifier | DecisionTreeRegressor | None
    leaf_ids: np.ndarray | None  # sorted distinct leaves
    leaf_offsets: np.ndarray | None  # start of each leaf's donors in `donors`
    leaf_counts: np.ndarray | None
    donors: np.ndarray  # donor values (float for continuous, object otherwise), grouped by leaf
    codes: dict[object, float] | None  # category -> feature code for later trees
    bandwidth: float
    bounds: tuple[float, float] | None  # smoothed values stay inside the observed range


class CartGenerator(Generator):
    family, VERSIONS = BUILTIN_GENERATORS["cart"]
    can_condition = True

    def __init__(self, min_samples_leaf: int = 5, max_depth: int | None = None, smoothing: bool = False,
                 visit_sequence: list[str] | None = None):
        super().__init__(min_samples_leaf=min_samples_leaf, max_depth=max_depth, smoothing=smoothing,
                         visit_sequence=visit_sequence)
        self.min_samples_leaf = int(min_samples_leaf)
        self.max_depth = max_depth
        self.smoothing = bool(smoothing)
        self.visit_sequence = visit_sequence

    def condition_on(self, columns: Sequence[str]) -> None:
        """A targeted run visits its slices' columns first (unless the spec fixed the order): conditioning there
        is exact, and acceptance 1.0 (0.14 on lending_club's bad loans with Class visited last)."""
        if self.visit_sequence is None:
            self.visit_sequence = list(dict.fromkeys(columns))

    def fit(self, data: pd.DataFrame, profile: Profile | None = None) -> "CartGenerator":
        kinds = profile.kinds() if profile else {}
        order = list(self.visit_sequence or data.columns)
        missing = set(data.columns) - set(order)
        order += [c for c in data.columns if c in missing]
        features = np.empty((len(data), 0))
        self.steps_: list[_Step] = []
        for i, name in enumerate(order):
            series = data[name]
            kind = kinds.get(name) or ("numeric" if pd.api.types.is_numeric_dtype(series) else "categorical")
            continuous = kind in ("numeric", "integer", "datetime")
            if continuous:
                target = to_float(series)
                feature = target
                codes = None
            else:
                values = series.astype(object).where(series.notna(), None).to_numpy()
                uniques = pd.unique(values)
                codes = {v: float(k) for k, v in enumerate(uniques)}
                feature = np.array([codes[v] for v in values], dtype=float)
                target = values
            bandwidth, bounds = 0.0, None
            if continuous and self.smoothing:
                finite = target[~np.isnan(target)]
                # Smooth only truly continuous columns: noise on counts or spikes (e.g. mostly-zero amounts)
                # would invent values the data never takes.
                if np.unique(finite).size > max(30, 0.05 * finite.size):
                    spread = min(finite.std(), np.subtract(*np.percentile(finite, [75, 25])) / 1.34) or finite.std()
                    bandwidth = 0.9 * spread * finite.size ** -0.2
                    bounds = (float(finite.min()), float(finite.max()))
            if i == 0:
                step = _Step(name, continuous, kind == "datetime", None, None, None, None, target.copy(), codes, bandwidth, bounds)
            else:
                step = self._fit_tree(name, features, target, feature, continuous, kind == "datetime", codes, bandwidth, bounds)
            self.steps_.append(step)
            features = np.column_stack([features, feature])
        self.columns_ = list(data.columns)
        self.dtypes_ = {c: str(data[c].dtype) for c in data.columns}
        return self

    def _fit_tree(self, name, features, target, feature, continuous, is_datetime, codes, bandwidth, bounds) -> _Step:
        if continuous:
            # NaN cannot be a regression target: split on a sentinel below the range; donors keep the NaN.
            y = np.where(np.isnan(target), np.nanmin(target) - 1.0 if np.isfinite(np.nanmin(target)) else 0.0, target) \
                if np.isnan(target).any() else target
            tree = DecisionTreeRegressor(min_samples_leaf=self.min_samples_leaf, max_depth=self.max_depth, random_state=0)
        else:
            y = feature.astype(int)
            if len(codes) > MAX_TREE_CLASSES:
                frequent = np.argsort(-np.bincount(y), kind="stable")[:MAX_TREE_CLASSES - 1]
                y = np.where(np.isin(y, frequent), y, -1)
            tree = DecisionTreeClassifier(min_samples_leaf=self.min_samples_leaf, max_depth=self.max_depth, random_state=0)
        tree.fit(features, y)
        leaves = tree.apply(features)
        order = np.argsort(leaves, kind="stable")
        leaf_ids, offsets, counts = np.unique(leaves[order], return_index=True, return_counts=True)
        return _Step(name, continuous, is_datetime, tree, leaf_ids, offsets, counts, target[order], codes, bandwidth, bounds)

    def sample(self, n: int, seed: int, conditions: Sequence[Condition] = ()) -> pd.DataFrame:
        """n rows; with `conditions`, at most n, all meeting them (rows no donor can place are dropped)."""
        self._check_fitted()
        held = _by_column(conditions, self.columns_)
        rng = np.random.default_rng(seed)
        features = np.empty((n, 0))
        out: dict[str, np.ndarray] = {}
        placed = np.ones(n, dtype=bool)
        for step in self.steps_:
            mine = held.get(step.name, ())
            if mine:
                picks, found = self._valid_picks(step, features, mine, rng)
                placed &= found
            elif step.tree is None:
                picks = rng.integers(0, step.donors.size, n)
            else:
                leaves = step.tree.apply(features)
                pos = np.searchsorted(step.leaf_ids, leaves)
                picks = step.leaf_offsets[pos] + (rng.random(n) * step.leaf_counts[pos]).astype(np.int64)
            values = step.donors[picks]
            if step.continuous:
                values = values.astype(float)
                if step.bandwidth > 0:
                    values = self._smooth(step, values, mine, rng)
                feature = values
            else:
                feature = np.array([step.codes.get(v, -1.0) for v in values], dtype=float)
            out[step.name] = from_nanos(np.round(values)) if step.datetime else values
            features = np.column_stack([features, feature])
        frame = restore_dtypes(pd.DataFrame({c: out[c] for c in self.columns_}), self.dtypes_)
        return frame if placed.all() else frame[placed].reset_index(drop=True)

    def _valid_picks(self, step: _Step, features: np.ndarray, conditions: tuple[Condition, ...],
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(a donor for each row among its leaf's donors that meet `conditions`, whether its leaf has one).

        Donors are grouped by leaf, so a leaf's valid donors are one contiguous run of the valid positions:
        two searchsorted calls find every leaf's run. The first (tree-less) column is one leaf of all donors."""
        n = len(features)
        valid = np.flatnonzero(self._meets(step, step.donors, conditions))
        if step.tree is None:
            starts, stops = np.zeros(n, dtype=np.int64), np.full(n, valid.size)
        else:
            pos = np.searchsorted(step.leaf_ids, step.tree.apply(features))
            starts = np.searchsorted(valid, step.leaf_offsets)[pos]
            stops = np.searchsorted(valid, step.leaf_offsets + step.leaf_counts)[pos]
        counts = stops - starts
        # A row whose leaf has no valid donor takes whatever sits at its run's start (the appended 0 when that is
        # past the end) so the steps after it stay vectorised; the row is dropped at the end.
        picks = np.append(valid, 0)[starts + (rng.random(n) * counts).astype(np.int64)]
        return picks, counts > 0

    def _smooth(self, step: _Step, donors: np.ndarray, conditions: tuple[Condition, ...],
                rng: np.random.Generator) -> np.ndarray:
        """Donor values plus kernel noise, kept inside the observed range and inside the conditions."""
        values = np.clip(donors + rng.normal(0.0, step.bandwidth, donors.size), *step.bounds)
        if not conditions:
            return values
        for _ in range(REDRAWS):
            out = np.flatnonzero(~self._meets(step, values, conditions))
            if not out.size:
                return values
            values[out] = np.clip(donors[out] + rng.normal(0.0, step.bandwidth, out.size), *step.bounds)
        return np.where(self._meets(step, values, conditions), values, donors)

    def _meets(self, step: _Step, values: np.ndarray, conditions: tuple[Condition, ...]) -> np.ndarray:
        """Which values meet every condition, judged as they will be published (dates, rounded integers)."""
        if step.datetime:
            column = from_nanos(np.round(values))
        elif step.continuous and self.dtypes_[step.name].startswith(("int", "Int", "uint")):
            column = pd.Series(np.round(values))
        else:
            column = pd.Series(values)
        frame = pd.DataFrame({step.name: column})
        return np.logical_and.reduce([c.mask(frame) for c in conditions])


def _by_column(conditions: Sequence[Condition], columns: list[str]) -> dict[str, tuple[Condition, ...]]:
    unknown = sorted({c.column for c in conditions} - set(columns))
    if unknown:
        raise GeneratorError(f"conditions on column(s) {unknown} that the generator was not fitted on")
    held: dict[str, tuple[Condition, ...]] = {}
    for c in conditions:
        held[c.column] = held.get(c.column, ()) + (c,)
    return held
