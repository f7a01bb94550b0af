"""Exact copies judged against the holdout baseline, with a k-anonymity view (tabular/verification/copies.py).

The tables here are built to expose the rules: a small domain (a few hundred profiles cover most rows,
so fresh real rows are mostly identical to some training row) with a tail of unique rows. A generator
drawing fresh rows from that distribution must pass; one copying the unique training rows must fail.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from synthchain.filters import run_filters
from synthchain.holdout import split_holdout
from synthchain.tabular.filters import ExactDuplicateFilter, FilterInput, PrivacyFilter, default_filters
from synthchain.tabular.profile import profile_frame
from synthchain.tabular.verification import verify
from synthchain.tabular.verification.copies import copy_decisions, copy_feasibility, copy_summary
from synthchain.tabular.verification.privacy import closer_to_train, privacy_report

PROFILES = 150
TAIL = 0.06  # share of rows drawn from a huge space: unique in practice


def small_domain(rng: np.random.Generator, n: int, seed_profiles: int = 0) -> pd.DataFrame:
    """n rows of a fixed small-domain distribution (the profiles are the same for every call)."""
    fixed = np.random.default_rng(seed_profiles)
    prof = pd.DataFrame({"branch": fixed.choice(["army", "navy", "air", "marine"], PROFILES),
                         "grade": fixed.integers(1, 10, PROFILES), "gender": fixed.choice(["f", "m"], PROFILES),
                         "code": fixed.integers(0, 5, PROFILES)})
    weights = 1.0 / np.arange(1, PROFILES + 1) ** 1.1
    rows = prof.iloc[rng.choice(PROFILES, n, p=weights / weights.sum())].reset_index(drop=True)
    tail = rng.random(n) < TAIL
    rows.loc[tail, "code"] = rng.integers(1_000, 10**7, tail.sum())
    return rows


@pytest.fixture(scope="module")
def domain():
    rng = np.random.default_rng(1)
    real = small_domain(rng, 5000)
    train, holdout = split_holdout(real, 0.2, 7, stratify="branch")
    profile = profile_frame(train, "branch", "classification")
    return train, holdout, profile, rng


def test_fresh_sampler_passes_and_copier_of_unique_rows_fails_on_a_small_domain(domain):
    train, holdout, profile, _ = domain
    fresh = small_domain(np.random.default_rng(2), 3000)  # new draws from the real distribution
    metrics, _, _ = verify(fresh, train, holdout, profile)
    assert metrics["holdout_identical_match_share"] > 0.85  # small domain: fresh real rows are mostly copies
    assert abs(metrics["identical_match_share"] - metrics["holdout_identical_match_share"]) < 0.03
    assert 0.4 < metrics["dcr_closer_share"] < 0.6  # no leak: 0.5 (ties at distance 0 included)
    assert metrics["disclosive_copy_excess"] < 0.02
    assert metrics["dcr_closer_identical_ties"] > 0.8 * len(fresh)

    counts = train.value_counts()
    unique = train[train.set_index(list(train.columns)).index.map(counts).to_numpy() == 1]
    copier, _, _ = verify(unique.sample(1000, replace=True, random_state=3), train, holdout, profile)
    assert copier["identical_match_share"] == 1.0
    assert copier["disclosive_copy_share"] == 1.0 and copier["unique_copy_share"] == 1.0
    assert copier["disclosive_copy_excess"] > 0.9  # over the 0.05 gate
    assert copier["dcr_closer_share"] > 0.9  # the unique rows have no twin in the holdout


def test_ties_are_not_counted_as_half_private():
    rng = np.random.default_rng(0)
    common = np.zeros((1, 3))
    train_x = np.vstack([np.repeat(common, 40, axis=0), rng.normal(5, 1, (40, 3))])
    holdout_x = np.vstack([np.repeat(common, 10, axis=0), rng.normal(5, 1, (10, 3))])
    # 100 copies of the common profile: 40 training rows and 10 holdout rows have it, exactly the
    # null rate 80/100: no evidence of memorising. Ties counted as half made this 0.5 raw -> 0.2 "private".
    summary, _ = privacy_report(np.repeat(common, 100, axis=0), train_x, holdout_x)
    assert summary["dcr_closer_null_rate"] == pytest.approx(0.8)
    assert summary["dcr_closer_share_raw"] == pytest.approx(0.8)
    assert summary["dcr_closer_share"] == pytest.approx(0.5)
    # copies of training rows the holdout has no twin of count fully "closer to train"
    summary, _ = privacy_report(train_x[40:], train_x, holdout_x)
    assert summary["dcr_closer_share"] == 1.0

    # a non-zero tie (equally far from a training and a holdout row) counts the null rate, not 0.5
    t, h = np.array([[1.0, 0.0], [50.0, 50.0]]), np.array([[-1.0, 0.0]])
    per_row, ties = closer_to_train(np.zeros((1, 2)), t, h, np.array([1.0]), np.array([1.0]), null=2 / 3)
    assert per_row[0] == pytest.approx(2 / 3) and ties == {"identical": 0, "distance": 1}


def test_k_anonymity_shares():
    synth_k = np.array([0, 0, 1, 1, 3, 5, 40, 500])
    holdout_k = np.array([0, 1, 40, 500])
    s = copy_summary(synth_k, holdout_k, k_min=5)
    assert s["identical_match_share"] == 6 / 8 and s["holdout_identical_match_share"] == 3 / 4
    assert s["disclosive_copy_share"] == 3 / 8  # k = 1, 1, 3
    assert s["unique_copy_share"] == 2 / 8
    assert s["common_copy_share"] == 3 / 8  # k = 5, 40, 500
    assert s["holdout_disclosive_share"] == 1 / 4
    assert s["disclosive_copy_excess"] == pytest.approx(3 / 8 - 1 / 4)
    assert s["identical_match_ratio"] == pytest.approx((6 / 8) / (3 / 4))
    assert copy_summary(synth_k, np.zeros(3, int))["identical_match_ratio"] is None


def test_exact_copy_filter_keeps_common_copies_and_drops_unique_ones(domain):
    train, holdout, profile, _ = domain
    fresh = small_domain(np.random.default_rng(4), 2000)
    counts = train.value_counts()
    k_train = train.set_index(list(train.columns)).index.map(counts).to_numpy()
    unique = train[k_train == 1].head(50)
    top = train[k_train == k_train.max()].head(1)
    rows = pd.concat([fresh, unique, pd.concat([top] * 600)], ignore_index=True)  # 600 repeats of one profile
    _, checks, holdout_dcr = verify(rows, train, holdout, profile)
    data = FilterInput(rows, checks, train, profile, holdout_dcr, seed=0)
    decision = ExactDuplicateFilter().decide(data)

    assert decision.keep[:2000].mean() > 0.9  # a fresh sample of a small domain is not emptied
    assert not decision.keep[2000:2050].any()  # unique training rows copied: all go
    assert decision.reasons[2000].startswith("exact copy of a rare real profile: k=1 training row has it")
    assert "k < k_min=5" in decision.reasons[2000]
    over = decision.reasons[2050:][~decision.keep[2050:]]
    assert 0 < decision.keep[2050:].sum() < 300  # one profile repeated far past its real frequency is trimmed
    assert over[0].startswith(f"exact copy of a common real profile (k={k_train.max()} >= k_min=5) "
                              f"beyond its real frequency")
    assert decision.metrics["disclosive_copies"] >= 50 and decision.metrics["common_copies_over_frequency"] > 300

    # the privacy filter leaves common-profile copies to this rule; by distance alone they would all sit at 0
    assert PrivacyFilter(0.5).decide(data).keep[:2000].mean() > 0.5
    keep, dropped, metrics = run_filters(default_filters(0.02, 0.9)[:3], data)
    assert keep[:2000].mean() > 0.9 and not keep[2000:2050].any()
    assert set(dropped.loc[dropped["index"].between(2000, 2049), "filter"]) == {"exact_dedup"}


def test_copy_decisions_without_common_profiles_drop_copies_and_repeats():
    hashes = np.array([1, 2, 2, 3, 3, 3], dtype=np.uint64)
    keep, reasons, metrics = copy_decisions(hashes, np.array([0, 0, 0, 2, 2, 2]), train_rows=100)
    assert keep.tolist() == [True, True, False, False, False, False]
    assert reasons[2] == "duplicate of an earlier synthetic row (a profile no training row has)"
    assert "k=2 training rows share it" in reasons[3]
    assert metrics["repeats"] == 1 and metrics["disclosive_copies"] == 3


def test_feasibility_says_when_the_gates_cannot_pass(domain):
    train, holdout, _, _ = domain
    small = copy_feasibility(train, holdout)
    assert small.ok
    assert small.figures["holdout_identical_match_share"] > 0.85
    assert "distinct rows among 4,000 training rows" in small.message and "Small domain" in small.message

    # every profile shared by 2 or 3 people: fresh real rows mostly copy a rare training profile
    rng = np.random.default_rng(5)
    base = pd.DataFrame({"a": rng.integers(0, 10**6, 1500), "b": rng.choice(["x", "y"], 1500)})
    real = base.loc[base.index.repeat(rng.integers(2, 4, len(base)))].sample(frac=1, random_state=0)
    tr, ho = real.iloc[: int(0.8 * len(real))], real.iloc[int(0.8 * len(real)):]
    verdict = copy_feasibility(tr, ho, max_drop_fraction=0.6)
    assert not verdict.ok
    assert verdict.figures["holdout_disclosive_share"] > 0.6
    assert "cannot pass" in verdict.message and "gates.max_drop_fraction=0.6" in verdict.message
    assert "% of fresh real (holdout) rows are exact copies of a training row" in verdict.message

    strict = copy_feasibility(train, holdout, max_dcr_closer_share=0.5)
    assert not strict.ok and "max_dcr_closer_share=0.5" in strict.message

    continuous = pd.DataFrame({"x": rng.normal(size=500), "y": rng.normal(size=500)})
    plain = copy_feasibility(continuous.iloc[:400], continuous.iloc[400:])
    assert plain.ok and plain.message == ""
