"""Figures about the published rows are measured on the kept rows, after the filters moved them."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from synthchain.lineage import row_hashes
from synthchain.specs import DatasetSpec
from synthchain.tabular.modality import kept_figures
from synthchain.tabular.profile import profile_frame
from synthchain.tabular.verification.copies import copy_k, copy_summary, profile_counts


def spec(**gates) -> DatasetSpec:
    return DatasetSpec.model_validate({"name": "x", "source": "x.csv", "target": "y", "task": "classification",
                                       "generators": [{"name": "cart", "version": "1.0"}], "target_rows": 1000,
                                       "gates": gates})


@pytest.fixture(scope="module")
def real():
    rng = np.random.default_rng(0)
    y = np.where(rng.random(4000) < 0.2, "no", "yes")
    return pd.DataFrame({"age": rng.normal(40, 10, 4000).round(), "y": y})


def test_a_filter_that_drops_one_class_shows_as_label_shift_and_shortfall(real):
    profile = profile_frame(real, "y", "classification")
    # what the filters kept: the "no" profiles were mostly dropped (as a duplicate filter drops common rows)
    kept = pd.concat([real[real.y == "yes"].head(700), real[real.y == "no"].head(35)], ignore_index=True)
    figures = kept_figures(real, kept, profile, spec())
    assert figures["kept_rows"] == 735 and figures["shortfall_rows"] == 265
    assert figures["kept_label_shares"]["no"] == pytest.approx(35 / 735)
    real_no = (real.y == "no").mean()
    assert figures["kept_label_shift"] == pytest.approx(real_no - 35 / 735)  # TVD of two classes
    assert figures["kept_label_shift"] > spec().gates.max_label_shift  # the default gate refuses it


def test_kept_rows_like_the_real_ones_pass(real):
    profile = profile_frame(real, "y", "classification")
    kept = real.sample(1000, random_state=1).reset_index(drop=True)
    figures = kept_figures(real, kept, profile, spec())
    assert figures["shortfall_rows"] == 0 and figures["kept_label_shift"] < 0.03
    assert figures["kept_quality_score"] > 0.9


def test_nothing_kept_scores_zero(real):
    figures = kept_figures(real, real.head(0), profile_frame(real, "y", "classification"), spec())
    assert figures["kept_quality_score"] == 0.0 and figures["shortfall_share"] == 1.0


def test_the_report_states_how_figures_were_measured():
    from synthchain.report import measurement_table

    html = measurement_table(
        {"dcr_method": "ivf", "dcr_index": "faiss IndexIVFFlat", "dcr_reference_rows": 1_131_675,
         "dcr_distinct_reference_rows": 1_131_675, "dcr_audit_queries": 1000, "dcr_audit_recall_at_1": 0.9965},
        {"off_distribution": {"detection_real_rows": 200_000, "detection_synthetic_rows": 338,
                              "detection_fit_rows": 100_000, "detection_sampled": True}},
        {"evaluation_train_rows": {"real": 100_000, "blend": 100_000},
         "train_rows": {"real": 1_131_675, "blend": 1_131_729}, "evaluation_holdout_rows": 282_918},
        {"kept_rows": 54, "target_rows": 200_000, "shortfall_rows": 199_946},
        {"budget_shortfall": 10, "real_share": 0.9, "spec_real_fraction": 0.8, "synthetic_budget": 20})
    assert "ivf search (faiss IndexIVFFlat) over 1,131,675 training rows; audited on 1,000 queries" in html
    assert "recall@1 0.9965" in html and "each fold trained on 100,000 rows (sampled)" in html
    assert "trained on real 100,000 of 1,131,675, blend 100,000 of 1,131,729 rows" in html
    assert "54 of the 200,000 asked for" in html and "0.900 instead of the spec&#x27;s 0.800" in html
    assert "measured on all rows" in measurement_table({}, {}, {}, {}, {})


def test_disclosive_copies_are_judged_on_the_kept_rows_against_the_holdout(real):
    """Copies of rare (k < 5) training profiles among the kept rows, minus the holdout's own rate; a batch whose
    copies the exact-copy filter removed is judged by what is left (HealthInsurance was quarantined before)."""
    rng = np.random.default_rng(3)
    train = real.assign(id=np.arange(len(real)))  # every row unique: each copy discloses one person
    holdout = real.assign(id=np.arange(len(real), 2 * len(real)))[:1000]
    profile = profile_frame(train, "y", "classification")
    fresh = holdout.assign(id=rng.integers(10**6, 2 * 10**6, len(holdout)))
    copied = pd.concat([fresh[:900], train[:100]], ignore_index=True)
    def figures(kept):  # verification's copy_k of each kept row, and the holdout's own disclosive share
        counts = profile_counts(row_hashes(train))
        holdout_share = copy_summary(np.zeros(0, np.int64), copy_k(row_hashes(holdout), counts))
        return kept_figures(train, kept, profile, spec(), copy_k(row_hashes(kept), counts),
                            holdout_share["holdout_disclosive_share"])

    leaky = figures(copied)
    assert leaky["kept_identical_match_share"] == pytest.approx(0.1)
    assert leaky["kept_disclosive_copy_excess"] == pytest.approx(0.1)
    assert leaky["kept_disclosive_copy_excess"] > spec().gates.max_disclosive_copy_excess  # the gate refuses it
    clean = figures(fresh)
    assert clean["kept_disclosive_copy_excess"] == 0.0
