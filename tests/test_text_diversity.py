"""Diversity metrics: hand-computed distinct-n and tail coverage, Heaps on Zipfian text, O(n·d) cosine."""
import numpy as np
import pytest
from synthchain.text.diversity import (
    CorpusCounts,
    _first_positions,
    distinct_n,
    diversity_report,
    embedding_dispersion,
    heaps_exponent,
    label_balance,
    mean_pairwise_cosine,
    rare_ngrams,
    tail_coverage,
    vocabulary_at,
    vocabulary_growth,
)


def zipf_corpus(texts: int, seed: int, vocab: int = 20_000, exponent: float = 1.1) -> list[list[str]]:
    """Texts of 10–200 words drawn from a Zipfian unigram distribution, like natural text's."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, vocab + 1) ** exponent
    words = np.array([f"w{i}" for i in range(vocab)])
    return [words[rng.choice(vocab, size=rng.integers(10, 201), p=p / p.sum())].tolist() for _ in range(texts)]


@pytest.fixture(scope="module")
def zipf() -> list[list[str]]:
    return zipf_corpus(1500, seed=1)


def test_distinct_n_by_hand():
    texts = [["the", "cat", "sat"], ["the", "cat", "ran"]]
    assert distinct_n(texts, 1) == pytest.approx(4 / 6)  # the, cat, sat, ran of 6 tokens
    assert distinct_n(texts, 2) == pytest.approx(3 / 4)  # (the cat) twice, (cat sat), (cat ran)
    assert distinct_n(texts, 3) == 1.0
    # n-grams never span two texts, and a text shorter than n has none.
    assert distinct_n([["a", "b"], ["b", "a"], ["a"]], 2) == 1.0
    assert distinct_n([["a", "b", "a", "b"]], 2) == pytest.approx(2 / 3)
    assert distinct_n([["a"]], 2) == 0.0 and distinct_n([], 1) == 0.0


def test_vocabulary_at_counts_exactly_n_tokens():
    same = [["a", "b", "c", "d"]] * 5  # any order: the vocabulary of k tokens is min(k, 4)
    assert [vocabulary_at(same, k, seed=3) for k in range(0, 9)] == [0, 1, 2, 3, 4, 4, 4, 4, 4]
    disjoint = [[f"t{i}_{j}" for j in range(7)] for i in range(6)]  # every token new: V(k) = k
    assert [vocabulary_at(disjoint, k) for k in (0, 5, 13, 42)] == [0, 5, 13, 42]
    with pytest.raises(ValueError):
        vocabulary_at(disjoint, 43)


def test_vocabulary_growth_matches_a_scan(zipf):
    one_text = [[w for t in zipf[:200] for w in t]]  # a single text: reading order is fixed
    seen, scan = set(), [0]
    for w in one_text[0]:
        seen.add(w)
        scan.append(len(seen))
    n, v = vocabulary_growth(one_text, points=40)
    assert v.tolist() == [scan[k] for k in n]
    # The first-occurrence scan runs in chunks; chunk edges must not change the answer.
    codes = np.random.default_rng(0).integers(0, 50, size=1000)
    expected = sorted(np.unique(codes, return_index=True)[1])
    assert _first_positions(codes, 50, chunk=7).tolist() == expected


def test_heaps_exponent_on_zipfian_and_repetitive_text(zipf):
    beta = heaps_exponent(zipf)
    assert 0.5 < beta < 0.95  # natural-text range; 1/exponent ≈ 0.9 is the asymptote

    n, v = vocabulary_growth(zipf, points=30)
    assert n[-1] == sum(map(len, zipf)) and v[-1] == len({w for t in zipf for w in t})
    assert np.all(np.diff(n) > 0) and np.all(np.diff(v) >= 0) and np.all(v <= n)

    # The same token count drawn from only 15 distinct texts: vocabulary saturates.
    rng = np.random.default_rng(0)
    repetitive = [zipf[i] for i in rng.integers(0, 15, size=len(zipf))]
    budget = min(sum(map(len, zipf)), sum(map(len, repetitive)))
    assert heaps_exponent(repetitive) < 0.5 * beta
    assert vocabulary_at(repetitive, budget) < 0.2 * vocabulary_at(zipf, budget)


def test_mean_pairwise_cosine_matches_brute_force():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(300, 16)) + 0.5  # offset so the mean cosine is clearly non-zero
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    gram = emb @ emb.T
    brute = (gram.sum() - np.trace(gram)) / (300 * 299)
    assert mean_pairwise_cosine(emb) == pytest.approx(brute, abs=1e-12)
    assert mean_pairwise_cosine(emb * 7.0) == pytest.approx(brute, abs=1e-12)  # rows are normalised first
    assert np.isnan(mean_pairwise_cosine(emb[:1]))


def test_embedding_dispersion():
    e = np.eye(3)
    assert embedding_dispersion(np.vstack([e[0], -e[0]])) == pytest.approx(1.0)  # centroid at 0
    assert embedding_dispersion(np.tile(e[1], (5, 1))) == pytest.approx(0.0)
    # two orthogonal unit vectors: centroid (½, ½), each √½ from it
    assert embedding_dispersion(e[:2]) == pytest.approx(np.sqrt(0.5))


def test_label_balance():
    out = label_balance(["pos", "pos", "pos", "neg"], ["pos", "neg", "neutral", "neg"])
    assert out["synthetic"] == {"pos": 0.75, "neg": 0.25, "neutral": 0.0}
    assert out["real"] == {"pos": 0.25, "neg": 0.5, "neutral": 0.25}
    assert out["tvd"] == pytest.approx(0.5)  # ½ (0.5 + 0.25 + 0.25)
    assert label_balance(["a", "b"], ["b", "a"])["tvd"] == 0.0


def test_tail_coverage_with_planted_rare_bigrams():
    common = [["the", "food", "is", "good"]] * 3  # bigrams seen 3 times: not rare
    unique = [[f"u{i}a", f"u{i}b", f"u{i}c"] for i in range(4)]  # 2 singleton bigrams each
    doubled = [["d1", "d2"]] * 2  # one bigram seen twice: rare at max count 2, not at 1
    real = common + unique + doubled
    assert rare_ngrams(real, 2).size == 9 and rare_ngrams(real, 2, max_count=1).size == 8

    assert tail_coverage(real, real) == 1.0
    assert tail_coverage(real, common + unique[:2]) == pytest.approx(4 / 9)
    assert tail_coverage(real, common + unique[:2] + doubled[:1]) == pytest.approx(5 / 9)
    assert tail_coverage(real, common + unique[:2], rare_max_count=1) == pytest.approx(4 / 8)
    assert tail_coverage(real, common) == 0.0
    assert tail_coverage(common, real) == 1.0  # no rare bigram in `common`: nothing to lose


def test_tail_coverage_matches_sets_of_tuples(zipf):
    def bigrams(texts):
        return [tuple(t[i:i + 2]) for t in texts for i in range(len(t) - 1)]

    counts: dict = {}
    for g in bigrams(zipf):
        counts[g] = counts.get(g, 0) + 1
    rare = {g for g, c in counts.items() if c <= 2}
    synth = zipf[::2]  # half the texts gone: their rare bigrams with them
    expected = len(rare & set(bigrams(synth))) / len(rare)
    assert tail_coverage(zipf, zipf) == 1.0
    assert tail_coverage(zipf, synth) == pytest.approx(expected) and expected < 0.7


def test_diversity_report(zipf):
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(len(zipf), 8))
    labels = ["a", "b"] * (len(zipf) // 2)
    same = diversity_report(zipf, zipf, emb, emb, labels, labels)
    assert set(same) == {
        "distinct_1", "distinct_2", "distinct_3", "real_distinct_1", "real_distinct_2", "real_distinct_3",
        "vocab_at_equal_tokens", "real_vocab_at_equal_tokens", "vocab_ratio", "heaps_exponent",
        "real_heaps_exponent", "heaps_ratio", "mean_pairwise_cosine", "real_mean_pairwise_cosine",
        "embedding_dispersion", "real_embedding_dispersion", "dispersion_ratio", "label_tvd", "tail_coverage"}
    assert same["vocab_ratio"] == same["heaps_ratio"] == same["dispersion_ratio"] == 1.0
    assert same["label_tvd"] == 0.0 and same["tail_coverage"] == 1.0
    assert same["distinct_2"] == same["real_distinct_2"] == distinct_n(zipf, 2)

    # Ten copies of 150 real texts: as many tokens as the real corpus, far fewer words.
    copies = zipf[:150] * 10
    small = diversity_report(zipf, copies)
    assert not any(k.endswith("cosine") or k.endswith("dispersion") or k == "label_tvd" for k in small)
    equal = min(sum(map(len, zipf)), sum(map(len, copies)))
    assert small["vocab_at_equal_tokens"] == vocabulary_at(copies, equal)
    assert small["real_vocab_at_equal_tokens"] == vocabulary_at(zipf, equal)
    assert small["vocab_ratio"] < 0.4 and small["heaps_ratio"] < 0.9
    assert small["distinct_2"] < 0.2 * small["real_distinct_2"]
    assert small["tail_coverage"] < 0.15


def test_real_corpus_counted_once_gives_the_same_report(zipf):
    """The real side counted once and read back from the cache's arrays (what a run does at every verification,
    round and kept-set gate) reports exactly what counting the corpus afresh reports, for small and large sides."""
    counts = CorpusCounts.of(zipf)
    stored = CorpusCounts.from_arrays(**{k: v.copy() for k, v in counts.to_arrays().items()})
    assert stored.total_tokens == sum(map(len, zipf)) and stored.distinct[1] == distinct_n(zipf, 2)
    np.testing.assert_array_equal(stored.rare_bigrams, rare_ngrams(zipf, 2))
    for synth in (zipf[:150] * 10, zipf[:40], zipf_corpus(3000, seed=2)):
        assert diversity_report(stored, synth) == diversity_report(zipf, synth)
    with pytest.raises(ValueError, match="seed 0"):
        diversity_report(stored, zipf[:40], seed=3)
    # the report's growth curve and the collapse monitor's tail coverage read the same counts
    for got, want in zip(vocabulary_growth(stored), vocabulary_growth(zipf)):
        np.testing.assert_array_equal(got, want)
    assert tail_coverage(stored, zipf[:40]) == tail_coverage(zipf, zipf[:40])
    with pytest.raises(ValueError, match="rare bigrams"):
        tail_coverage(stored, zipf[:40], n=3)
    words = {}
    for text in zipf:
        for w in text:
            words[w] = words.get(w, 0) + 1
    assert stored.word_counts.tolist() == sorted(words.values(), reverse=True)



def test_text_monitors_read_the_counted_real_corpus_as_they_read_its_texts(zipf):
    """The collapse monitors given the run's counts of the real corpus (what the text modality passes) measure
    what they measure from its texts."""
    import pandas as pd
    from synthchain.collapse.monitors import MonitorInput, measure_all
    from synthchain.text import monitors  # noqa: F401 (registers the text monitors)
    from synthchain.text.overlap import token_hashes
    from synthchain.text.profile import TextProfile
    from synthchain.text.tokens import TokenView

    real = pd.DataFrame({"text": [" ".join(t) for t in zipf]})
    synth = pd.DataFrame({"text": [" ".join(t) for t in zipf[:300:3]]})
    profile = TextProfile(len(real), ["text"], {"text": "text"}, None)
    counts = CorpusCounts.of(token_hashes(TokenView(real["text"].tolist())))
    plain = measure_all(MonitorInput(real, synth, profile, {}, holdout=real.iloc[:50]), "text")
    counted = measure_all(MonitorInput(real.iloc[:0], synth, profile, {"real_counts": counts}, holdout=real.iloc[:50]),
                          "text")
    assert plain["text_tail_coverage"] < 1 and plain == counted
