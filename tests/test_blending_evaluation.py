import numpy as np
import pandas as pd
import pytest
from synthchain.blending import blend, synthetic_budget
from synthchain.tabular.evaluation import evaluate, train_and_score


def _frame(n, origin, tag):
    return pd.DataFrame({"v": np.arange(n), "_sc_origin": origin, "_sc_row_id": [f"{tag}{i}" for i in range(n)]})


def test_budget():
    assert synthetic_budget(100, 0.5) == 100
    assert synthetic_budget(100, 0.8) == 25
    assert synthetic_budget(100, 1.0) == 0


def test_real_rows_always_kept_and_share_capped():
    real, new = _frame(100, "real", "r"), _frame(500, "synthetic", "n")
    out, plan = blend(real, new, None, 0.6, "accumulate", 0.5, seed=0)
    assert (out["_sc_origin"] == "real").sum() == 100
    assert plan.new_synthetic == 66 and plan.carried_synthetic == 0
    assert plan.synthetic_share == pytest.approx(66 / 166)


def test_accumulate_carries_and_replace_does_not():
    real, new, old = _frame(100, "real", "r"), _frame(500, "synthetic", "n"), _frame(500, "synthetic", "o")
    acc, plan = blend(real, new, old, 0.5, "accumulate", 0.4, seed=0)
    assert plan.carried_synthetic == 40 and plan.new_synthetic == 60
    assert acc["_sc_row_id"].str.startswith("o").sum() == 40
    rep, plan = blend(real, new, old, 0.5, "replace", 0.4, seed=0)
    assert plan.carried_synthetic == 0 and not rep["_sc_row_id"].str.startswith("o").any()
    # few new rows: carried rows fill the budget
    _, plan = blend(real, new.head(10), old, 0.5, "accumulate", 0.4, seed=0)
    assert plan.new_synthetic == 10 and plan.carried_synthetic == 90


def test_evaluation_scores_real_signal(split):
    train, holdout, _ = split
    result = evaluate(train, train.sample(3000, random_state=0), train, holdout, "Class", "classification", seed=0)
    assert result["metric"] == "roc_auc"
    assert 0.6 < result["trtr"] < 0.9
    shuffled = train.copy()
    shuffled["Class"] = shuffled["Class"].sample(frac=1, random_state=0).to_numpy()
    assert abs(train_and_score(shuffled, holdout, "Class", "classification", seed=0) - 0.5) < 0.08


def test_regression_uses_r2():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1200, 2))
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "cat": np.where(x[:, 0] > 0, "p", "n"),
                          "y": 3 * x[:, 0] - x[:, 1] + 0.1 * rng.normal(size=1200)})
    score = train_and_score(frame.iloc[:1000], frame.iloc[1000:], "y", "regression", seed=0)
    assert score > 0.9
