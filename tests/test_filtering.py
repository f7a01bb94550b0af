import numpy as np
import pandas as pd
from synthchain.filters import run_filters
from synthchain.tabular.copula import GaussianCopulaGenerator
from synthchain.tabular.filters import (
    ConstraintFilter,
    ExactDuplicateFilter,
    FilterInput,
    OffDistributionFilter,
    PrivacyFilter,
    default_filters,
)
from synthchain.tabular.verification import verify


def _inputs(rows, split):
    train, holdout, profile = split
    _, checks, holdout_dcr = verify(rows, train, holdout, profile)
    return FilterInput(rows.reset_index(drop=True), checks, train, profile, holdout_dcr, seed=0)


def test_each_filter_drops_its_rows_with_a_reason(split):
    train, holdout, profile = split
    synth = GaussianCopulaGenerator().fit(train, profile).sample(600, seed=1)
    copies = train.head(5)
    bad = synth.head(3).copy()
    bad["funded_amnt"] = 10**8
    rows = pd.concat([synth, copies, synth.head(4), bad], ignore_index=True)
    data = _inputs(rows, split)

    dedup = ExactDuplicateFilter().decide(data)
    assert (~dedup.keep).sum() == 9  # 5 real copies + 4 repeats
    # lending_club rows are unique: each copy discloses the one person with that profile (k=1)
    assert dedup.reasons[600].startswith("exact copy of a rare real profile: k=1 training row has it (k < k_min=5)")
    assert dedup.reasons[605] == "duplicate of an earlier synthetic row (a profile no training row has)"

    constraints = ConstraintFilter().decide(data)
    assert set(np.flatnonzero(~constraints.keep)) >= {609, 610, 611}
    assert constraints.reasons[609].startswith("violates funded_amnt:above_max")

    privacy = PrivacyFilter(0.05).decide(data)
    assert not privacy.keep[600:605].any()  # copies sit at distance 0
    assert "distance to closest training row 0.0000" in privacy.reasons[600]


def test_off_distribution_filter_finds_fakes(split):
    train, holdout, profile = split
    good = GaussianCopulaGenerator().fit(train, profile).sample(800, seed=2)
    fake = good.head(200).copy()
    fake["int_rate"] = 27.0  # constant at the top of the range: easy to tell apart
    fake["annual_inc"] = 2_000_000.0
    data = _inputs(pd.concat([good, fake], ignore_index=True), split)
    decision = OffDistributionFilter(0.9).decide(data)
    assert (~decision.keep[800:]).mean() > 0.9
    assert (~decision.keep[:800]).mean() < 0.35  # plausible rows are mostly kept
    assert decision.metrics["detection_auc"] > 0.55


def test_run_filters_keeps_every_drop_once(split):
    train, _, profile = split
    synth = GaussianCopulaGenerator().fit(train, profile).sample(500, seed=4)
    rows = pd.concat([synth, train.head(10)], ignore_index=True)
    keep, dropped, metrics = run_filters(default_filters(0.02, 0.95), _inputs(rows, split))
    assert keep.sum() + len(dropped) == len(rows)
    assert dropped["index"].is_unique
    assert set(range(500, 510)) <= set(dropped["index"])
    assert (dropped.loc[dropped["index"] >= 500, "filter"] == "exact_dedup").all()
    assert metrics["privacy"]["seen"] == metrics["exact_dedup"]["seen"] - metrics["exact_dedup"]["dropped"] \
        - metrics["constraints"]["dropped"]


# --- bounded training samples on large tables -------------------------------------------------------

def test_off_distribution_filter_trains_on_a_bounded_sample_and_judges_every_row(split, monkeypatch):
    train, holdout, profile = split
    good = GaussianCopulaGenerator().fit(train, profile).sample(1500, seed=2)
    fake = good.head(300).copy()
    fake["int_rate"] = 27.0
    fake["annual_inc"] = 2_000_000.0
    data = _inputs(pd.concat([good, fake], ignore_index=True), split)
    monkeypatch.setattr(OffDistributionFilter, "MAX_REAL_ROWS", 2000)
    monkeypatch.setattr(OffDistributionFilter, "MAX_FIT_ROWS", 1500)
    decision = OffDistributionFilter(0.9).decide(data)
    assert decision.metrics["detection_sampled"] is True
    assert decision.metrics["detection_real_rows"] == 2000 and decision.metrics["detection_fit_rows"] == 1500
    assert decision.metrics["detection_synthetic_rows"] == len(decision.keep) == 1800  # every row judged
    assert (~decision.keep[1500:]).mean() > 0.9  # a smaller model still finds the fakes
    assert decision.metrics["detection_auc"] > 0.55


def test_evaluation_models_train_on_a_bounded_sample(split, monkeypatch):
    from synthchain.tabular import evaluation

    train, holdout, _ = split
    monkeypatch.setattr(evaluation, "MAX_TRAIN_ROWS", 3000)
    result = evaluation.evaluate(train, train.head(1000), train, holdout, "Class", "classification", seed=1)
    assert result["evaluation_train_rows"] == {"real": 3000, "synthetic": 1000, "blend": 3000}
    assert result["train_rows"]["real"] == len(train) > 3000
    assert result["evaluation_holdout_rows"] == len(holdout)  # the holdout is always scored whole
    assert result["trtr"] > 0.6
