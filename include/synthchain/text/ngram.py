"""Word n-gram language model with interpolated Kneser-Ney smoothing (NLTK's formulation, made fast).

The probabilities are exactly those of `nltk.lm.KneserNeyInterpolated(order, discount)` fitted on
`padded_everygram_pipeline(order, sentences)` (tests check agreement to 1e-9):

    P(w | c) = max(n(c, w) - d, 0) / N(c) + d * F(c) / N(c) * P(w | c[1:])       (c seen)
    P(w | c) = P(w | c[1:])                                                      (c unseen)
    P(w | ())  = n((), w) / N(())      (NLTK: the continuation unigram; `unigram="continuation"`)

where, at the highest order, n is the raw count and N(c) the context's total; below it, n(c, w)
is the number of distinct words seen before (c, w) and N(c) their sum; F(c) is the number of
distinct words seen after c. NLTK scores each word by walking Python objects recursively
(and `_continuation_counts` scans every n-gram of the order above for each call), which makes
perplexity over a review corpus take minutes. Here the counts are flattened once into per-context
arrays, so a score is a few dictionary lookups, and generation samples a whole batch of texts in
lock-step from dense next-word distributions (bench/ngram_vs_nltk.py measures both).

One deliberate difference, on by default (`unigram="interpolated"`): NLTK's lowest order gives
a word that never follows another word (an unknown word, say) probability 0, so one unseen
word in a held-out text makes its perplexity infinite. The default discounts the unigram level
too and gives the freed mass to a uniform distribution over the vocabulary (Chen & Goodman's
interpolated Kneser-Ney), so every word keeps a probability above zero.
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np

BOS, EOS, UNK = "<s>", "</s>", "<UNK>"
_NO_SPACE_BEFORE = set(".,!?;:%)]}'\"") | {"n't", "'s", "'re", "'ve", "'ll", "'d", "'m"}
_NO_SPACE_AFTER = set("([{$#")


class _Context:
    """One context's followers: word ids, their numerators (count or continuation count), N(c), F(c)."""

    __slots__ = ("words", "numerators", "total", "followers", "lookup", "_cumulative")

    def __init__(self, numerators: dict[int, int], total: int, followers: int):
        self.words = np.fromiter(numerators, dtype=np.int64, count=len(numerators))
        self.numerators = np.fromiter(numerators.values(), dtype=float, count=len(numerators))
        self.total = float(total)
        self.followers = followers
        self.lookup = numerators
        self._cumulative = None

    def discounted_cumsum(self, discount: float) -> np.ndarray:
        """Cumulative discounted numerators / total, for sampling within this context's followers."""
        if self._cumulative is None:
            self._cumulative = np.cumsum(np.maximum(self.numerators - discount, 0.0)) / self.total
        return self._cumulative


class KneserNeyLM:
    def __init__(self, order: int = 3, discount: float = 0.75, min_count: int = 1, unigram: str = "interpolated"):
        if order < 2:
            raise ValueError("order must be at least 2")
        if not 0.0 < discount < 1.0:
            raise ValueError("discount must be in (0, 1)")
        if unigram not in ("interpolated", "continuation"):
            raise ValueError("unigram must be 'interpolated' or 'continuation' (NLTK's)")
        self.order, self.discount, self.min_count, self.unigram = order, discount, min_count, unigram

    # --- fitting -------------------------------------------------------------------------------------
    def fit(self, sentences: Sequence[Sequence[str]]) -> "KneserNeyLM":
        n = self.order
        padded = [[BOS] * (n - 1) + list(s) + [EOS] * (n - 1) for s in sentences]
        counts = Counter(t for s in padded for t in s)
        self.vocab_ = [UNK] + sorted(w for w, c in counts.items() if c >= self.min_count)
        self.index_ = {w: i for i, w in enumerate(self.vocab_)}
        ids = [[self.index_.get(t, 0) for t in s] for s in padded]
        # grams[k]: counts of k-grams (as tuples of ids), k = 1..n
        grams = [Counter() for _ in range(n + 1)]
        for s in ids:
            for k in range(2, n + 1):
                grams[k].update(zip(*(s[i:] for i in range(k))))
        self.contexts_: list[dict[tuple, _Context]] = [{} for _ in range(n)]
        # Highest order: raw counts.
        self.contexts_[n - 1] = self._tables(grams[n], lambda gram: grams[n][gram])
        # Lower orders: continuation counts, i.e. distinct words before (context, w).
        for k in range(2, n):
            continuation = Counter(gram[1:] for gram in grams[k + 1])
            self.contexts_[k - 1] = self._tables(grams[k], continuation.__getitem__, numerator_grams=continuation)
        # Unigrams: distinct words before w, over all bigram types.
        unigram = Counter(gram[1] for gram in grams[2])
        self.contexts_[0] = {(): _Context(dict(unigram), sum(unigram.values()), len(unigram))}
        return self

    @staticmethod
    def _tables(grams: Counter, numerator, numerator_grams: Counter | None = None) -> dict[tuple, _Context]:
        followers: dict[tuple, int] = defaultdict(int)
        for gram in grams:
            followers[gram[:-1]] += 1
        numerators: dict[tuple, dict[int, int]] = defaultdict(dict)
        for gram in (numerator_grams if numerator_grams is not None else grams):
            numerators[gram[:-1]][gram[-1]] = numerator(gram)
        out = {}
        for context, count in followers.items():
            table = numerators.get(context, {})
            out[context] = _Context(table, sum(table.values()), count)
        return out

    # --- scoring -------------------------------------------------------------------------------------
    def _ids(self, words: Sequence[str]) -> tuple[int, ...]:
        return tuple(self.index_.get(w, 0) for w in words)

    def _score_ids(self, word: int, context: tuple[int, ...]) -> float:
        weight, score = 1.0, 0.0
        for k in range(len(context), 0, -1):
            entry = self.contexts_[k].get(context[-k:])
            if entry is None:
                continue  # unseen context: all weight passes to the next lower order
            if entry.total == 0.0:  # seen only where nothing precedes it: NLTK divides by zero here
                continue
            score += weight * max(entry.lookup.get(word, 0) - self.discount, 0.0) / entry.total
            weight *= self.discount * entry.followers / entry.total
        unigram = self.contexts_[0][()]
        if self.unigram == "continuation":
            return score + weight * unigram.lookup.get(word, 0) / unigram.total
        return score + weight * (max(unigram.lookup.get(word, 0) - self.discount, 0.0) / unigram.total
                                 + self.discount * unigram.followers / unigram.total / len(self.vocab_))

    def score(self, word: str, context: Sequence[str] = ()) -> float:
        context = tuple(context)[-(self.order - 1):] if self.order > 1 else ()
        return self._score_ids(self.index_.get(word, 0), self._ids(context))

    def logscore(self, word: str, context: Sequence[str] = ()) -> float:
        return math.log2(self.score(word, context))

    def perplexity(self, sentences: Sequence[Sequence[str]]) -> float:
        """2 ** (mean -log2 P) over every order-n n-gram of the padded sentences (as NLTK's perplexity)."""
        n = self.order
        total, count = 0.0, 0
        for sentence in sentences:
            s = self._ids([BOS] * (n - 1) + list(sentence) + [EOS] * (n - 1))
            for i in range(n - 1, len(s)):
                total -= math.log2(self._score_ids(s[i], s[i - n + 1:i]))
                count += 1
        return 2.0 ** (total / count) if count else float("nan")

    # --- generation ----------------------------------------------------------------------------------
    def distribution(self, context: Sequence[str]) -> np.ndarray:
        """P(. | context) over the vocabulary (sums to 1)."""
        return self._distributions([self._ids(tuple(context)[-(self.order - 1):])])[0]

    def _distributions(self, contexts: list[tuple[int, ...]]) -> np.ndarray:
        out = np.zeros((len(contexts), len(self.vocab_)))
        for row, context in enumerate(contexts):
            weight = 1.0
            for k in range(len(context), 0, -1):
                entry = self.contexts_[k].get(context[-k:])
                if entry is None or entry.total == 0.0:
                    continue
                out[row, entry.words] += weight * np.maximum(entry.numerators - self.discount, 0.0) / entry.total
                weight *= self.discount * entry.followers / entry.total
            out[row] += weight * self._unigram_vector
        return out

    @property
    def _unigram_vector(self) -> np.ndarray:
        if getattr(self, "_unigram_cache", None) is None:
            entry = self.contexts_[0][()]
            vector = np.zeros(len(self.vocab_))
            if self.unigram == "continuation":
                vector[entry.words] = entry.numerators / entry.total
            else:
                vector[entry.words] = np.maximum(entry.numerators - self.discount, 0.0) / entry.total
                vector += self.discount * entry.followers / entry.total / len(self.vocab_)
            self._unigram_cache = vector
        return self._unigram_cache

    def generate(self, n: int, seed: int, temperature: float = 1.0, max_tokens: int = 200,
                 min_tokens: int = 1) -> list[list[str]]:
        """n texts sampled token by token; deterministic for a seed.

        At temperature 1 a word is drawn straight from the interpolation: pick the level (highest
        order first, with its discounted mass), then a follower within it; no distribution over
        the whole vocabulary is built. Other temperatures reshape full next-word distributions
        (p ** (1 / T), renormalised), computed for all texts of a step at once. `<s>` and `<UNK>`
        are never emitted, and `</s>` is refused until `min_tokens` words exist.
        """
        rng = np.random.default_rng(seed % 2**64)
        bos, eos = self.index_[BOS], self.index_[EOS]
        texts: list[list[int]] = [[] for _ in range(n)]
        contexts = [(bos,) * (self.order - 1) for _ in range(n)]
        active = list(range(n))
        for step in range(max_tokens):
            if not active:
                break
            banned = {0, bos} | ({eos} if step < min_tokens else set())
            if temperature == 1.0:
                chosen = [self._draw(contexts[i], rng, banned) for i in active]
            else:
                chosen = self._draw_tempered([contexts[i] for i in active], rng, banned, temperature)
            still = []
            for i, word in zip(active, chosen):
                if word == eos:
                    continue
                texts[i].append(word)
                contexts[i] = (contexts[i] + (word,))[1:]
                still.append(i)
            active = still
        return [[self.vocab_[t] for t in text] for text in texts]

    def _draw(self, context: tuple[int, ...], rng: np.random.Generator, banned: set[int]) -> int:
        while True:  # rejection of banned words: they carry little mass
            r, weight = rng.random(), 1.0
            word = None
            for k in range(len(context), -1, -1):
                entry = self.contexts_[k].get(context[-k:] if k else ())
                if entry is None or entry.total == 0.0:
                    continue
                cumulative = entry.discounted_cumsum(self.discount)
                mass = weight * cumulative[-1]
                if r < mass:
                    word = int(entry.words[min(np.searchsorted(cumulative, r / weight, side="right"),
                                               len(entry.words) - 1)])
                    break
                r -= mass
                weight *= self.discount * entry.followers / entry.total
            if word is None:  # the uniform floor under the unigram level
                word = int(rng.integers(len(self.vocab_))) if self.unigram == "interpolated" else 0
            if word not in banned:
                return word

    def _draw_tempered(self, contexts: list[tuple[int, ...]], rng: np.random.Generator, banned: set[int],
                       temperature: float) -> list[int]:
        probs = self._distributions(contexts)
        probs[:, sorted(banned)] = 0.0
        probs = probs ** (1.0 / temperature)
        cumulative = np.cumsum(probs, axis=1)
        draws = rng.random(len(contexts)) * cumulative[:, -1]
        return np.minimum((cumulative < draws[:, None]).sum(axis=1), probs.shape[1] - 1).tolist()


def detokenize(tokens: Sequence[str]) -> str:
    """Join tokens into text: no space before closing punctuation and clitics, none after opening marks."""
    out: list[str] = []
    for token in tokens:
        if out and token not in _NO_SPACE_BEFORE and out[-1] not in _NO_SPACE_AFTER:
            out.append(" ")
        out.append(token)
    return "".join(out)
