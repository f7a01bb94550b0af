import numpy as np
from synthchain.tabular.copula import GaussianCopulaGenerator
from synthchain.tabular.verification import constraint_violations, quality_report, verify


def test_constraints_flag_each_kind(split):
    train, _, profile = split
    rows = train.head(6).copy().reset_index(drop=True)
    rows.loc[0, "funded_amnt"] = 10**9
    rows.loc[1, "addr_state"] = "ZZ"
    rows.loc[2, "int_rate"] = -1.0
    rows.loc[3, "Class"] = None
    rows["delinq_2yrs"] = rows["delinq_2yrs"].astype(float)
    rows.loc[4, "delinq_2yrs"] = 0.5
    v = constraint_violations(rows, profile)
    assert v[0] == "funded_amnt:above_max"
    assert v[1] == "addr_state:unknown_category"
    assert v[2] == "int_rate:below_min"
    assert "Class:null" in v[3]
    assert v[4] == "delinq_2yrs:not_integer"
    assert v[5] == ""


def test_quality_score_orders_good_and_broken_data(split):
    train, holdout, profile = split
    same = quality_report(train, holdout, profile)["quality_score"]
    rng = np.random.default_rng(0)
    shuffled = holdout.apply(lambda c: c.sample(frac=1, random_state=int(rng.integers(1e6))).to_numpy())
    broken = quality_report(train, shuffled, profile)
    assert same > 0.95
    assert broken["column_shapes"] > 0.95  # marginals untouched
    assert broken["column_pair_trends"] < same - 0.02  # relationships destroyed


def test_privacy_detects_copies_and_accepts_fresh_rows(split):
    from synthchain.tabular.profile import profile_frame

    full, holdout, _ = split
    train, fresh_rows = full.iloc[:-1500], full.iloc[-1500:]  # fresh: real rows neither set contains
    profile = profile_frame(train, "Class", "classification")
    copies, checks, _ = verify(train.sample(500, random_state=1), train, holdout, profile)
    assert copies["exact_copy_rate"] == 1.0
    assert copies["dcr_closer_share"] > 0.95
    assert (checks["dcr"] < 1e-6).all()
    fresh, _, baseline = verify(fresh_rows, train, holdout, profile)
    assert fresh["exact_copy_rate"] == 0.0
    assert 0.4 < fresh["dcr_closer_share"] < 0.6  # the no-leak baseline is 0.5
    assert fresh["dcr_closer_share_raw"] > 0.6  # raw share is biased by the larger training set
    assert len(baseline) == len(holdout)


def test_copula_output_verifies_well(split):
    train, holdout, profile = split
    synth = GaussianCopulaGenerator().fit(train, profile).sample(2000, seed=3)
    metrics, checks, _ = verify(synth, train, holdout, profile)
    assert metrics["quality_score"] > 0.9
    assert metrics["constraint_violation_rate"] < 0.02
    assert metrics["exact_copy_rate"] < 0.01
    assert len(checks) == 2000
