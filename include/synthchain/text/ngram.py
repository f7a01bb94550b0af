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
perplexity over a review corpus take minutes.

Here everything is numpy arrays, built at corpus scale in bounded memory: sentences are read in
chunks, an n-gram is one int64 key (its word ids as digits in base B, the largest base whose
`order`-digit numbers fit in 63 bits), the counts of each chunk come from `np.unique` and are
merged into one sorted table. The lower orders' continuation counts are `np.unique` over the
suffixes of the order above. Each order is kept in CSR form (`_Level`): the sorted keys of its
entries (context, word), their numerators, and per context its first entry, N(c) and weights.
Scoring is `np.searchsorted` on those keys; sampling at temperature 1 follows the mixture form of
the formula for a whole batch of texts at once (pick the level by its discounted mass, then a word
within it), without building a distribution over the vocabulary.

One deliberate difference, on by default (`unigram="interpolated"`): NLTK's lowest order gives
a word that never follows another word (an unknown word, say) probability 0, so one unseen
word in a held-out text makes its perplexity infinite. The default discounts the unigram level
too and gives the freed mass to a uniform distribution over the vocabulary (Chen & Goodman's
interpolated Kneser-Ney), so every word keeps a probability above zero.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import chain, islice, repeat

import numpy as np

from .tokens import tokenize_all

BOS, EOS, UNK = "<s>", "</s>", "<UNK>"
_UNK, _BOS, _EOS = 0, 1, 2  # their ids: always the first three words of the vocabulary
#: sentences per chunk when fitting or scoring: bounds the token lists and key arrays held at once
CHUNK_SENTENCES = 20_000
#: floats in one block of dense next-word distributions (temperature != 1, rare fallbacks): 32 MiB
_DENSE_CELLS = 1 << 22
#: rounds of redrawing the rows that drew a banned word before the rest take the exact dense path
_REJECTION_ROUNDS = 20
#: values per block of a search fence (_last_at_most): 512 bytes of int64 or float64
_BLOCK = 64
_NO_SPACE_BEFORE = set(".,!?;:%)]}'\"") | {"n't", "'s", "'re", "'ve", "'ll", "'d", "'m"}
_NO_SPACE_AFTER = set("([{$#")


def _base(order: int) -> int:
    """The largest B with B ** order <= 2 ** 63: `order` ids below B pack into one int64 key."""
    base = int(2 ** (63 / order))
    while base ** order > 2 ** 63:
        base -= 1
    while (base + 1) ** order <= 2 ** 63:
        base += 1
    return base


class _Vocabulary(dict):
    """word -> id, a new word taking the next id (first-seen order, so the ids do not depend on chunking)."""

    def __missing__(self, word: str) -> int:
        self[word] = len(self)
        return len(self) - 1


def _batches(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def _merge_counts(keys: np.ndarray, counts: np.ndarray, new_keys: np.ndarray, new_counts: np.ndarray):
    """Two sorted tables of distinct keys with counts, as one: a linear pass, no sort of the whole."""
    at = np.searchsorted(keys, new_keys)
    found = at < len(keys)
    found[found] = keys[at[found]] == new_keys[found]
    counts[at[found]] += new_counts[found]
    fresh = ~found
    return np.insert(keys, at[fresh], new_keys[fresh]), np.insert(counts, at[fresh], new_counts[fresh])


def _compact(counts: np.ndarray) -> np.ndarray:
    """Counts as uint32 when they fit (half the memory and pickle of int64)."""
    return counts.astype(np.uint32) if counts.size and counts.max() < 2 ** 32 else counts


def _segments(starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(owner, position) of every element of the ranges [starts[i], starts[i] + lengths[i])."""
    owner = np.repeat(np.arange(len(starts)), lengths)
    return owner, np.arange(int(lengths.sum())) + np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)


def _last_at_most(values: np.ndarray, fence: np.ndarray, x: np.ndarray, lo, hi) -> np.ndarray:
    """Per row, the last index in [lo, hi] whose value is <= x (lo when none is); `values` increasing,
    `fence` its every _BLOCK-th value.

    np.searchsorted over a corpus-scale array walks ~25 levels from the root, most of them cache misses.
    Here it runs on the fence, small enough to stay in cache; then binary lifting, all rows at once,
    within the one block of _BLOCK values the fence points to (a few cache lines).
    """
    block = (np.searchsorted(fence, x, side="right") - 1) * _BLOCK  # values[block] <= x < values[block + _BLOCK]
    base, last = np.clip(block, lo, hi), np.clip(block + _BLOCK - 1, lo, hi)
    step = _BLOCK // 2
    while step:
        probe = np.minimum(base + step, last)
        base = np.where(values[probe] <= x, probe, base)
        step //= 2
    return base


def _fence(values: np.ndarray) -> np.ndarray:
    return values[::_BLOCK].copy()  # a copy: a strided view would spread the fence over the whole array


class _Level:
    """The entries (context, word) of every context of one length, in CSR form.

    `grams` holds the sorted keys context * base + word, `numerators` their counts (raw at the highest
    order, continuation counts below); a context's entries are contiguous, from `bounds[i]` to
    `bounds[i + 1]`. Only `grams`, `numerators` and the rare contexts whose F(c) exceeds their number of
    entries (`extra_contexts`, `extra_followers`) are pickled; the rest is derived from them.
    """

    def __init__(self, base: int, discount: float, grams: np.ndarray, numerators: np.ndarray,
                 extra_contexts: np.ndarray, extra_followers: np.ndarray):
        self.base, self.discount, self.grams, self.numerators = base, discount, grams, numerators
        self.extra_contexts, self.extra_followers = extra_contexts, extra_followers
        self._derive()

    def _derive(self) -> None:
        context_of = self.grams // self.base
        starts = np.flatnonzero(np.diff(context_of, prepend=-1))
        self.contexts = context_of[starts]
        self._contexts_fence = _fence(self.contexts)
        self.bounds = np.append(starts, len(self.grams))
        entries = np.diff(self.bounds)
        self.totals = np.add.reduceat(self.numerators, starts, dtype=np.float64)  # N(c)
        followers = entries.astype(np.float64)  # F(c)
        followers[np.searchsorted(self.contexts, self.extra_contexts)] += self.extra_followers  # all seen
        # Every numerator is >= 1 > d, so the discounted mass is (N - d * entries) / N.
        self.kept = 1.0 - self.discount * entries / self.totals
        self.backoff = self.discount * followers / self.totals
        self._cumulative = None

    def __getstate__(self) -> dict:
        return {k: getattr(self, k) for k in ("base", "discount", "grams", "numerators",
                                              "extra_contexts", "extra_followers")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._derive()

    def find(self, contexts: np.ndarray) -> np.ndarray:
        """Index of each context key, -1 where the context is not seen."""
        at = _last_at_most(self.contexts, self._contexts_fence, contexts, 0, len(self.contexts) - 1)
        return np.where(self.contexts[at] == contexts, at, -1)

    def one(self, context: int, word: int) -> tuple[float, float] | None:
        """(max(n(c, w) - d, 0) / N(c), d * F(c) / N(c)) for one context key and word, None where c is not
        seen: plain Python around two searchsorted calls, for the per-word score."""
        at = int(self.contexts.searchsorted(context))
        if at == len(self.contexts) or self.contexts[at] != context:
            return None
        gram = context * self.base + word
        found = int(self.grams.searchsorted(gram))
        count = int(self.numerators[found]) if found < len(self.grams) and self.grams[found] == gram else 0
        total = self.totals[at]
        return max(count - self.discount, 0.0) / total, self.backoff[at]

    def numerator(self, at: np.ndarray, words: np.ndarray) -> np.ndarray:
        """n(c, w) for the contexts at `at` (0 where w never follows c)."""
        grams = self.contexts[at] * self.base + words
        found = np.minimum(np.searchsorted(self.grams, grams), len(self.grams) - 1)
        return np.where(self.grams[found] == grams, self.numerators[found], 0)

    def entries(self, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(owner, entry) for every entry of the contexts at `at`, owner indexing `at`."""
        return _segments(self.bounds[at], self.bounds[at + 1] - self.bounds[at])

    def words(self, entries: np.ndarray) -> np.ndarray:
        return self.grams[entries] % self.base

    def follower(self, at: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """The word of each context whose discounted numerators, summed in order, first pass targets[i]."""
        cumulative, fence = self._cumulative_numerators()
        start = self.bounds[at]
        return self.words(_last_at_most(cumulative, fence, cumulative[start] + targets, start, self.bounds[at + 1] - 1))

    def _cumulative_numerators(self) -> tuple[np.ndarray, np.ndarray]:
        """0, then the running sum of numerator - d over all entries, and its fence (built on first sampling)."""
        if self._cumulative is None:
            cumulative = np.concatenate([[0.0], np.cumsum(self.numerators - self.discount)])
            self._cumulative = cumulative, _fence(cumulative)
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
        self._base = _base(order)

    # --- fitting -------------------------------------------------------------------------------------
    def fit(self, sentences: Iterable[Sequence[str]], chunk_size: int = CHUNK_SENTENCES) -> "KneserNeyLM":
        """Fit on token lists, read `chunk_size` at a time (an iterator is consumed once, never held)."""
        return self._fit_chunks(_batches(sentences, chunk_size))

    def fit_texts(self, texts: Iterable[str], chunk_size: int = CHUNK_SENTENCES) -> "KneserNeyLM":
        """Fit on raw texts, tokenised a chunk at a time (`synthchain.text.tokens.tokenize_all`)."""
        return self._fit_chunks(tokenize_all(batch) for batch in _batches(texts, chunk_size))

    def _fit_chunks(self, chunks: Iterable[list[Sequence[str]]]) -> "KneserNeyLM":
        vocabulary = _Vocabulary({UNK: _UNK, BOS: _BOS, EOS: _EOS})
        keys, counts = np.empty(0, np.int64), np.empty(0, np.int64)  # every distinct n-gram, sorted
        frequency = np.zeros(len(vocabulary), np.int64)  # of each padded token, for min_count
        for chunk in chunks:
            padded, lengths = self._padded(chunk, lambda tokens: map(vocabulary.__getitem__, tokens))
            if len(vocabulary) > self._base:
                raise ValueError(f"{len(vocabulary)} distinct words: an order-{self.order} model packs n-grams "
                                 f"into 63-bit keys, which allows at most {self._base}; use a lower order")
            frequency = np.bincount(padded, minlength=len(vocabulary)) + np.pad(
                frequency, (0, len(vocabulary) - len(frequency)))
            chunk_keys, chunk_counts = np.unique(self._window_keys(padded, lengths), return_counts=True)
            keys, counts = _merge_counts(keys, counts, chunk_keys, chunk_counts)
        if not keys.size:
            raise ValueError("no sentences to fit")
        self.vocab_ = list(vocabulary)
        if self.min_count > 1:
            keys, counts = self._drop_rare(keys, counts, frequency)
        self._build(keys, counts)
        self._derive()
        return self

    def _padded(self, chunk: list[Sequence[str]],
                to_ids: Callable[[Iterable[str]], Iterable[int]]) -> tuple[np.ndarray, np.ndarray]:
        """The chunk's sentences end to end as ids, each between order-1 `<s>` and order-1 `</s>`; their lengths."""
        pad = self.order - 1
        lengths = np.fromiter(map(len, chunk), np.int64, len(chunk))
        words = np.fromiter(to_ids(chain.from_iterable(chunk)), np.int64, int(lengths.sum()))
        padded_lengths = lengths + 2 * pad
        ends = np.cumsum(padded_lengths)
        padded = np.full(int(ends[-1]), _BOS, np.int64)
        padded[(ends[:, None] - np.arange(1, pad + 1)).ravel()] = _EOS
        padded[_segments(ends - padded_lengths + pad, lengths)[1]] = words
        return padded, padded_lengths

    def _window_keys(self, padded: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """The key of every order-n window inside one padded sentence (NLTK's padded n-grams)."""
        n, count = self.order, len(padded) - self.order + 1
        keys = padded[:count].copy()
        for j in range(1, n):
            keys *= self._base
            keys += padded[j:j + count]
        # the windows that start in a sentence's last n - 1 positions run into the next sentence
        crossing = (np.cumsum(lengths)[:, None] - np.arange(1, n)).ravel()
        valid = np.ones(count, bool)
        valid[crossing[crossing < count]] = False
        return keys[valid]

    def _drop_rare(self, keys: np.ndarray, counts: np.ndarray, frequency: np.ndarray):
        """Words seen fewer than min_count times become `<UNK>`; n-grams that become equal are merged."""
        keep = frequency >= self.min_count
        keep[:3] = True  # <UNK>, <s> and </s> stay, whatever their counts
        self.vocab_ = [w for w, k in zip(self.vocab_, keep) if k]
        new_ids = np.where(keep, np.cumsum(keep) - 1, _UNK)
        remapped = np.zeros_like(keys)
        for j in range(self.order - 1, -1, -1):  # digit j of each key, most significant first
            remapped = remapped * self._base + new_ids[keys // self._base ** j % self._base]
        order = np.argsort(remapped, kind="stable")
        remapped, counts = remapped[order], counts[order]
        starts = np.flatnonzero(np.diff(remapped, prepend=-1))
        return remapped[starts], np.add.reduceat(counts, starts)

    def _build(self, keys: np.ndarray, counts: np.ndarray) -> None:
        """The levels from the order-n counts; each lower order's numerators count the suffixes of the types above."""
        base, none = self._base, np.empty(0, np.int64)
        levels = {self.order - 1: _Level(base, self.discount, keys, _compact(counts), none, none)}
        types = keys
        for k in range(self.order - 2, 0, -1):  # contexts of k words, entries (k+1)-grams
            grams, numerators = np.unique(types % base ** (k + 1), return_counts=True)
            # Every (k+1)-gram type ends a (k+2)-gram type but <s>^(k+1), which starts each sentence: it is
            # a follower of <s>^k (in F) without a continuation count (NLTK: the same).
            start = self._key([_BOS] * (k + 1))
            at = int(np.searchsorted(grams, start))
            if at < len(grams) and grams[at] == start:
                levels[k] = _Level(base, self.discount, grams, _compact(numerators), none, none)
                types = grams
            else:
                levels[k] = _Level(base, self.discount, grams, _compact(numerators),
                                   np.array([start // base]), np.array([1]))
                types = np.insert(grams, at, start)
        words, numerators = np.unique(types % base, return_counts=True)
        self.unigram_ = np.zeros(len(self.vocab_), np.int64)  # continuation counts: distinct words before w
        self.unigram_[words] = numerators
        self.levels_ = [levels[k] for k in range(1, self.order)]  # levels_[k - 1]: contexts of k words

    def _derive(self) -> None:
        """What is rebuilt after fitting or unpickling: the word index and the unigram level's arrays."""
        self.index_ = {w: i for i, w in enumerate(self.vocab_)}
        self._words = np.array(self.vocab_, dtype=object)
        counts = self.unigram_.astype(np.float64)
        self._unigram_total = counts.sum()
        if self.unigram == "continuation":
            discounted, floor = counts, 0.0
        else:
            discounted = np.maximum(counts - self.discount, 0.0)
            floor = self.discount * np.count_nonzero(counts) / self._unigram_total / len(self.vocab_)
        self._unigram_kept = discounted.sum() / self._unigram_total
        self._unigram_cumulative = np.cumsum(discounted)
        self._unigram_probs = discounted / self._unigram_total + floor

    _STATE = ("order", "discount", "min_count", "unigram", "_base", "vocab_", "levels_", "unigram_")

    def __getstate__(self) -> dict:
        return {k: self.__dict__[k] for k in self._STATE if k in self.__dict__}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if "vocab_" in state:
            self._derive()

    # --- scoring -------------------------------------------------------------------------------------
    def _key(self, ids: Sequence[int]) -> int:
        key = 0
        for i in ids:
            key = key * self._base + i
        return key

    def _context(self, context: Sequence[str]) -> tuple[int, int]:
        """(key, number of words) of the last order-1 words of a context."""
        words = tuple(context)[-(self.order - 1):]
        return self._key([self.index_.get(w, _UNK) for w in words]), len(words)

    def _probabilities(self, words: np.ndarray, keys: np.ndarray, depth: int) -> np.ndarray:
        """P(words[i] | context keys[i]) for contexts of `depth` words."""
        p, weight = np.zeros(len(words)), np.ones(len(words))
        for k in range(depth, 0, -1):
            level = self.levels_[k - 1]
            at = level.find(keys % self._base ** k)
            seen = np.flatnonzero(at >= 0)  # an unseen context passes all its weight to the next lower order
            at = at[seen]
            discounted = np.maximum(level.numerator(at, words[seen]) - self.discount, 0.0)
            p[seen] += weight[seen] * discounted / level.totals[at]
            weight[seen] *= level.backoff[at]
        return p + weight * self._unigram_probs[words]

    def score(self, word: str, context: Sequence[str] = ()) -> float:
        """P(word | context): `_probabilities` for one word, in plain Python (numpy's per-call cost on
        1-element arrays makes that ~6 times slower for one word)."""
        key, depth = self._context(context)
        word_id = self.index_.get(word, _UNK)
        p, weight = 0.0, 1.0
        for k in range(depth, 0, -1):
            seen = self.levels_[k - 1].one(key % self._base ** k, word_id)
            if seen is not None:
                p += weight * seen[0]
                weight *= seen[1]
        return float(p + weight * self._unigram_probs[word_id])

    def logscore(self, word: str, context: Sequence[str] = ()) -> float:
        return math.log2(self.score(word, context))

    def perplexity(self, sentences: Iterable[Sequence[str]]) -> float:
        """2 ** (mean -log2 P) over every order-n n-gram of the padded sentences (as NLTK's perplexity);
        infinite when a word has probability 0 (possible with `unigram="continuation"` only)."""
        total, count = 0.0, 0
        for chunk in _batches(sentences, CHUNK_SENTENCES):
            grams = self._window_keys(*self._padded(chunk, lambda tokens: map(self.index_.get, tokens, repeat(_UNK))))
            with np.errstate(divide="ignore"):
                total -= np.log2(self._probabilities(grams % self._base, grams // self._base, self.order - 1)).sum()
            count += len(grams)
        return 2.0 ** (total / count) if count else float("nan")

    # --- generation ----------------------------------------------------------------------------------
    def distribution(self, context: Sequence[str]) -> np.ndarray:
        """P(. | context) over the vocabulary (sums to 1, but for NLTK's sentence-start context: see _uneven)."""
        key, depth = self._context(context)
        return self._dense(np.array([key]), depth)[0]

    def _dense(self, keys: np.ndarray, depth: int) -> np.ndarray:
        """P(. | keys[i]) over the vocabulary, one row per context of `depth` words."""
        out, weight = np.zeros((len(keys), len(self.vocab_))), np.ones(len(keys))
        for k in range(depth, 0, -1):
            level = self.levels_[k - 1]
            at = level.find(keys % self._base ** k)
            seen = np.flatnonzero(at >= 0)
            at = at[seen]
            owner, entry = level.entries(at)
            share = (weight[seen] / level.totals[at])[owner]
            out[seen[owner], level.words(entry)] += share * (level.numerators[entry] - self.discount)
            weight[seen] *= level.backoff[at]
        out += weight[:, None] * self._unigram_probs
        return out

    def generate(self, n: int, seed: int, temperature: float = 1.0, max_tokens: int = 200,
                 min_tokens: int = 1) -> list[list[str]]:
        """n texts sampled in lock-step, one word of every unfinished text per step; deterministic for a seed.

        At temperature 1 each word is drawn straight from the interpolation (_sample), in numpy for all
        texts of a step at once; no distribution over the whole vocabulary is built. Other temperatures
        reshape full next-word distributions (p ** (1 / T), renormalised), computed for a bounded block of
        distinct contexts at a time. `<s>` and `<UNK>` are never emitted, and `</s>` is refused until
        `min_tokens` words exist.
        """
        rng = np.random.default_rng(seed % 2**64)
        keys = np.full(n, self._key([_BOS] * (self.order - 1)), np.int64)
        texts, steps = np.arange(n), []
        for step in range(max_tokens):
            if not texts.size:
                break
            banned = np.array([_UNK, _BOS, _EOS] if step < min_tokens else [_UNK, _BOS])
            words = (self._draw(keys, rng, banned) if temperature == 1.0
                     else self._draw_dense(keys, rng, banned, temperature))
            going = words != _EOS
            texts, keys, words = texts[going], keys[going], words[going]
            steps.append((texts, words))
            keys = keys % self._base ** (self.order - 2) * self._base + words
        return self._texts(n, steps)

    def _texts(self, n: int, steps: list[tuple[np.ndarray, np.ndarray]]) -> list[list[str]]:
        """The words drawn at each step (texts still going, their words) as one token list per text."""
        lengths = np.zeros(n, np.int64)
        for texts, _ in steps:
            lengths[texts] += 1
        starts = np.cumsum(lengths) - lengths
        flat = np.empty(int(lengths.sum()), np.int64)
        for step, (texts, words) in enumerate(steps):
            flat[starts[texts] + step] = words
        tokens = self._words[flat].tolist()
        return [tokens[a:a + m] for a, m in zip(starts.tolist(), lengths.tolist())]

    def _draw(self, keys: np.ndarray, rng: np.random.Generator, banned: np.ndarray) -> np.ndarray:
        """A word per context key, distributed as distribution() with the banned words taken out."""
        words = np.empty(len(keys), np.int64)
        dense = self._uneven(keys)
        todo = np.flatnonzero(~dense)
        for _ in range(_REJECTION_ROUNDS):  # banned words carry little mass: redraw just the rows that hit one
            if not todo.size:
                break
            words[todo] = self._sample(keys[todo], rng.random(len(todo)))
            todo = todo[np.isin(words[todo], banned)]
        rest = np.concatenate([np.flatnonzero(dense), todo])
        if rest.size:
            words[rest] = self._draw_dense(keys[rest], rng, banned)
        return words

    def _uneven(self, keys: np.ndarray) -> np.ndarray:
        """The rows whose context backs off through one with more followers than entries (<s>^k: a text's
        start). NLTK's probabilities there sum to a little over 1, which the mixture walk would cut short;
        those rows take the dense path, which renormalises."""
        out = np.zeros(len(keys), bool)
        for k, level in enumerate(self.levels_, start=1):
            if level.extra_contexts.size:
                out |= np.isin(keys % self._base ** k, level.extra_contexts)
        return out

    def _sample(self, keys: np.ndarray, u: np.ndarray) -> np.ndarray:
        """A word per context key by the mixture form of the interpolation, u uniform in [0, 1) per row.

        From the highest order down: u below the seen context's discounted mass (N - d * entries) / N
        picks a word within it, by the running sum of its discounted numerators; otherwise u is rescaled
        into the backed-off remainder d * F / N and passed to the next lower order.
        """
        words = np.empty(len(keys), np.int64)
        rows = np.arange(len(keys))
        for k in range(self.order - 1, 0, -1):
            level = self.levels_[k - 1]
            at = level.find(keys % self._base ** k)
            seen = np.flatnonzero(at >= 0)
            kept = level.kept[at[seen]]
            hit = u[seen] < kept
            here, down = seen[hit], seen[~hit]
            words[rows[here]] = level.follower(at[here], u[here] * level.totals[at[here]])
            u[down] = (u[down] - kept[~hit]) / level.backoff[at[down]]
            rest = np.ones(len(rows), bool)
            rest[here] = False
            rows, keys, u = rows[rest], keys[rest], u[rest]
        words[rows] = self._sample_unigram(u)
        return words

    def _sample_unigram(self, u: np.ndarray) -> np.ndarray:
        """The unigram level's word for uniforms u; past its discounted mass, the uniform floor (interpolated)."""
        size = len(self.vocab_)
        words = np.minimum(np.searchsorted(self._unigram_cumulative, u * self._unigram_total, side="right"), size - 1)
        floor = u >= self._unigram_kept
        rescaled = (u[floor] - self._unigram_kept) / (1.0 - self._unigram_kept)
        words[floor] = np.minimum((rescaled * size).astype(np.int64), size - 1)
        return words

    def _draw_dense(self, keys: np.ndarray, rng: np.random.Generator, banned: np.ndarray,
                    temperature: float = 1.0) -> np.ndarray:
        """A word per context key from its full next-word distribution, banned words out, reshaped as
        p ** (1 / T); computed once per distinct context, for a bounded block of contexts at a time."""
        u = rng.random(len(keys))
        contexts, inverse = np.unique(keys, return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        sorted_inverse = inverse[order]
        block = max(1, _DENSE_CELLS // len(self.vocab_))
        words = np.empty(len(keys), np.int64)
        for first in range(0, len(contexts), block):
            weights = self._dense(contexts[first:first + block], self.order - 1)
            weights[:, banned] = 0.0
            if temperature != 1.0:
                weights **= 1.0 / temperature
            rows = order[np.searchsorted(sorted_inverse, first):np.searchsorted(sorted_inverse, first + block)]
            words[rows] = _inverse_cdf(weights, inverse[rows] - first, u[rows])
        return words


def _inverse_cdf(weights: np.ndarray, row: np.ndarray, u: np.ndarray) -> np.ndarray:
    """For each i, the column where the normalised running sum of weights[row[i]] first passes u[i]."""
    cumulative = np.cumsum(weights, axis=1)
    totals = cumulative[:, -1:]
    if not (totals > 0).all():
        raise ValueError("no word can be drawn: every word with a probability above zero is banned")
    cumulative /= totals
    cumulative += np.arange(len(cumulative))[:, None]  # rows end to end: one increasing array to search
    column = np.searchsorted(cumulative.ravel(), row + u, side="right") - row * weights.shape[1]
    return np.minimum(column, weights.shape[1] - 1)


def detokenize(tokens: Sequence[str]) -> str:
    """Join tokens into text: no space before closing punctuation and clitics, none after opening marks."""
    out: list[str] = []
    for token in tokens:
        if out and token not in _NO_SPACE_BEFORE and out[-1] not in _NO_SPACE_AFTER:
            out.append(" ")
        out.append(token)
    return "".join(out)
