"""Nearest-neighbour search for DCR/NNDR: exact on small tables, near-linear and measured on large ones."""
import numpy as np
import pandas as pd
import pytest
from sklearn.neighbors import NearestNeighbors
from synthchain.tabular.filters import FilterInput, PrivacyFilter
from synthchain.tabular.verification import neighbours
from synthchain.tabular.verification.neighbours import NeighbourIndex, distinct_rows
from synthchain.tabular.verification.privacy import privacy_report


def exact(reference, queries, k):
    return NearestNeighbors(n_neighbors=k).fit(reference).kneighbors(queries)[0]


def mixed_table(rng, n, centres):
    """Clustered continuous columns plus one-hot blocks, like RowEncoder output."""
    cont = centres[rng.integers(0, len(centres), n)] + rng.normal(scale=0.3, size=(n, centres.shape[1]))
    cats = np.eye(5)[rng.integers(0, 5, n)] / np.sqrt(2)
    return np.hstack([cont, cats])


def test_distinct_rows_round_trip_and_counts():
    x = np.array([[0.0, 1.0], [-0.0, 1.0], [2.0, 3.0], [0.0, 1.0]])
    d = distinct_rows(x)
    assert len(d.rows) == 2 and d.counts.tolist() == [3, 1]  # -0.0 is the same point as 0.0
    assert np.array_equal(d.rows[d.inverse], np.abs(x).astype(np.float32))


def test_small_tables_keep_the_exact_search():
    rng = np.random.default_rng(0)
    train, holdout, synth = rng.normal(size=(800, 6)), rng.normal(size=(200, 6)), rng.normal(size=(300, 6))
    summary, rows = privacy_report(synth, train, holdout)
    assert summary["dcr_method"] == "exact" and summary["dcr_holdout_method"] == "exact"
    d2 = exact(train, synth, 2)
    assert np.array_equal(rows["dcr"], d2[:, 0])  # bit for bit what synthchain always computed
    assert np.array_equal(rows["holdout_dcr"], exact(train, holdout, 1)[:, 0])
    assert "dcr_audit_recall_at_1" not in summary


def test_collapsed_duplicates_give_the_full_tables_distances():
    rng = np.random.default_rng(1)
    base = np.round(rng.normal(size=(300, 4)), 1)
    reference = base[rng.integers(0, 300, 20_000)]  # a small domain, like military's 1,646 profiles
    queries = np.vstack([base[:50], np.round(rng.normal(size=(200, 4)), 1), rng.normal(size=(100, 4))])
    index = NeighbourIndex(reference, planned_queries=10**6)
    assert index.method == "exact_distinct" and index.distinct_reference_rows <= 300
    found, truth = index.distances(queries, 2), exact(reference, queries, 2)
    np.testing.assert_allclose(found, truth, rtol=1e-5, atol=1e-6)
    assert (found[:50] == 0).all()  # a repeated profile: nearest and second nearest both at 0


def test_approximate_path_agrees_with_exact_search(monkeypatch):
    """The IVF path on a table big enough to choose it, scanning the same share of cells (1/64) as a
    1.1M-row run does: recall@1 and DCR/NNDR figures within the error stated in neighbours.py."""
    rng = np.random.default_rng(2)
    centres = rng.normal(scale=3, size=(40, 8))
    train, holdout = mixed_table(rng, 60_000, centres), mixed_table(rng, 15_000, centres)
    synth = mixed_table(rng, 40_000, centres)
    synth[:300] = train[:300]  # exact copies
    synth[300:600] = train[300:600] + rng.normal(scale=1e-3, size=(300, train.shape[1]))  # near copies
    lists = NeighbourIndex(train, planned_queries=10**6).lists
    monkeypatch.setattr(neighbours, "IVF_PROBES", max(1, lists // 64))
    summary, rows = privacy_report(synth, train, holdout)
    assert summary["dcr_method"] == "ivf" and summary["dcr_index"].startswith("faiss IndexIVFFlat")

    sample = rng.choice(len(synth), 3000, replace=False)
    truth = exact(train, synth[sample], 2)
    recall = np.mean(np.abs(rows["dcr"][sample] - truth[:, 0]) <= 1e-5)
    assert recall >= 0.99
    assert (rows["dcr"][sample] >= truth[:, 0] - 1e-5).all()  # only ever a missed neighbour: too far, never too close
    assert (rows["dcr"][:300] == 0).all()  # copies are found by hash whatever the index misses
    for stat in (np.median, lambda v: np.quantile(v, 0.05)):
        assert stat(rows["dcr"][sample]) == pytest.approx(stat(truth[:, 0]), rel=0.01)
    truth_nndr = np.divide(truth[:, 0], truth[:, 1], out=np.ones(len(truth)), where=truth[:, 1] > 0)
    assert np.median(rows["nndr"][sample]) == pytest.approx(np.median(truth_nndr), rel=0.01)
    assert summary["dcr_audit_queries"] == 1000 and summary["dcr_audit_recall_at_1"] >= 0.99

    hold_sample = rng.choice(len(holdout), 2000, replace=False)
    hold_truth = exact(train, holdout[hold_sample], 1)[:, 0]
    assert np.mean(np.abs(rows["holdout_dcr"][hold_sample] - hold_truth) <= 1e-5) >= 0.99


def test_privacy_filter_drops_the_same_rows_on_the_approximate_path(monkeypatch):
    rng = np.random.default_rng(3)
    centres = rng.normal(scale=3, size=(30, 6))
    train_x, holdout_x = mixed_table(rng, 20_000, centres), mixed_table(rng, 5_000, centres)
    synth_x = mixed_table(rng, 6_000, centres)
    synth_x[:100] = train_x[:100]
    synth_x[100:200] = train_x[100:200] + 1e-4
    monkeypatch.setattr(neighbours, "IVF_PROBES", 2)
    verdicts = {}
    for method in ("exact", "ivf"):
        _, rows = privacy_report(synth_x, train_x, holdout_x, method=method)
        checks = {"dcr": rows["dcr"], "exact_copy": np.zeros(len(synth_x), bool), "nndr": rows["nndr"],
                  "violations": np.full(len(synth_x), "")}
        data = FilterInput(pd.DataFrame({"i": range(len(synth_x))}), pd.DataFrame(checks), None, None,
                           rows["holdout_dcr"], seed=0)
        verdicts[method] = PrivacyFilter(0.05).decide(data)
    assert not verdicts["ivf"].keep[:200].any()  # copies and near copies go on both paths
    assert np.mean(verdicts["ivf"].keep == verdicts["exact"].keep) >= 0.99
