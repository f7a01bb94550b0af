"""Diversity of a text corpus, and how it compares with the real one.

Every count runs on hashed tokens and n-grams (`tokens.ngram_hashes`, via `overlap.windows_of`) so that a corpus of
tens of thousands of texts is a handful of numpy sorts, not Python sets of tuples. A 64-bit
hash collision would merge two n-grams; at the corpus sizes here (≤ 10^8 n-grams) the expected
number of colliding pairs is below 10^-3, far under any figure these metrics report.

Sizes are compared at equal token counts: vocabulary keeps growing with corpus size (Heaps'
law), so a 50k-text synthetic set would otherwise always "out-vocabulary" 4k real texts.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .overlap import token_hashes, windows_of

TokenLists = Sequence[Sequence[str]]

# The first ~100 tokens of any corpus are nearly all new words (V ≈ N). That is not Heaps'
# regime and would pull every fitted exponent towards 1, so the fit starts here.
HEAPS_MIN_TOKENS = 100
# "Rare" real n-grams are those seen once or twice: the long tail a collapsing generator loses
# first. Counting doubletons too keeps the measure from being mostly typos and one-off names.
RARE_MAX_COUNT = 2


Hashed = tuple[np.ndarray, np.ndarray]  # a corpus as `overlap.token_hashes` returns it: token ids, text lengths


def _is_hashed(value) -> bool:
    return isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, np.ndarray) for v in value)


class _Ngrams:
    """One corpus's hashed n-grams: tokens hashed once, each n windowed and counted once (a report
    asks for each several times)."""

    def __init__(self, token_lists: TokenLists | Hashed):
        # a corpus already hashed (`overlap.token_hashes`: ids, lengths) is taken as it is
        self.ids, self.lengths = token_lists if _is_hashed(token_lists) else token_hashes(token_lists)
        self._unique: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._word_codes: np.ndarray | None = None
        self._first: dict[int, np.ndarray] = {}

    def unique_counts(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Sorted distinct n-gram hashes and how often each occurs."""
        if n == 1:
            self.word_codes()
        elif n not in self._unique:
            self._unique[n] = np.unique(windows_of(self.ids, self.lengths, n)[0], return_counts=True)
        return self._unique[n]

    def word_codes(self) -> np.ndarray:
        """Each token as the index of its word among the sorted distinct words."""
        if self._word_codes is None:
            words, self._word_codes = np.unique(self.ids, return_inverse=True)
            self._unique[1] = (words, np.bincount(self._word_codes, minlength=words.size))
        return self._word_codes

    def total_tokens(self) -> int:
        return int(self.ids.size)

    def first_occurrences(self, seed: int) -> np.ndarray:
        """Sorted positions at which each word first appears, reading whole texts in a seeded order.

        V(N), the vocabulary of the first N tokens, is then the number of positions below N.
        """
        if seed not in self._first:
            codes, lengths = self.word_codes(), self.lengths
            order = np.random.default_rng(seed).permutation(lengths.size)
            # the texts' tokens in that order, gathered at once (no array per text: a million texts)
            moved = lengths[order]
            shift = (np.cumsum(lengths) - lengths)[order] - (np.cumsum(moved) - moved)
            stream = codes[np.repeat(shift, moved) + np.arange(int(moved.sum()))] if lengths.size else codes
            self._first[seed] = _first_positions(stream, self.unique_counts(1)[0].size)
        return self._first[seed]


def _first_positions(codes: np.ndarray, n_codes: int, chunk: int = 1 << 20) -> np.ndarray:
    """Sorted position of each code's first occurrence. A chunked scan, not one stable sort of the
    whole stream: after the first chunks almost every token is a word already seen, so each later
    chunk costs one boolean gather."""
    seen = np.zeros(n_codes, dtype=bool)
    found = []
    for start in range(0, codes.size, chunk):
        part = codes[start:start + chunk]
        new_at = np.flatnonzero(~seen[part])
        if new_at.size:
            _, first = np.unique(part[new_at], return_index=True)
            at = np.sort(new_at[first])
            seen[part[at]] = True
            found.append(at + start)
    return np.concatenate(found) if found else np.empty(0, dtype=np.int64)


# --- n-gram counts --------------------------------------------------------------------------------

def _distinct(ngrams: _Ngrams, n: int) -> float:
    unique, counts = ngrams.unique_counts(n)
    total = int(counts.sum())
    return unique.size / total if total else 0.0


def distinct_n(token_lists: TokenLists, n: int) -> float:
    """Distinct n-grams / all n-grams over the corpus (0.0 when it has no n-gram)."""
    return _distinct(_Ngrams(token_lists), n)


def _rare(ngrams: _Ngrams, n: int, max_count: int) -> np.ndarray:
    unique, counts = ngrams.unique_counts(n)
    return unique[counts <= max_count]


def rare_ngrams(token_lists: TokenLists, n: int = 2, max_count: int = RARE_MAX_COUNT) -> np.ndarray:
    """Sorted hashes of the n-grams occurring at least once and at most `max_count` times."""
    return _rare(_Ngrams(token_lists), n, max_count)


def _tail_coverage(real: _Ngrams, synth: _Ngrams, n: int, rare_max_count: int) -> float:
    return _coverage_of(_rare(real, n, rare_max_count), synth, n)


def _coverage_of(rare: np.ndarray, synth: _Ngrams, n: int) -> float:
    if rare.size == 0:  # no tail to lose (a tiny or wholly repetitive real corpus)
        return 1.0
    present, _ = synth.unique_counts(n)
    if present.size == 0:
        return 0.0
    pos = np.minimum(np.searchsorted(present, rare), present.size - 1)
    return float(np.mean(present[pos] == rare))


def tail_coverage(real_token_lists: TokenLists | Hashed | CorpusCounts, synth_token_lists: TokenLists, n: int = 2,
                  rare_max_count: int = RARE_MAX_COUNT) -> float:
    """Share of the real corpus's rare n-grams (1 ≤ count ≤ rare_max_count) that occur at least once
    in the synthetic texts. 1.0 when the real corpus has no rare n-gram. A real corpus already counted
    (`CorpusCounts`) holds its rare bigrams at the default cut."""
    if isinstance(real_token_lists, CorpusCounts):
        if (n, rare_max_count) != (2, RARE_MAX_COUNT):
            raise ValueError(f"counted corpora hold rare bigrams seen at most {RARE_MAX_COUNT} times, "
                             f"not {n}-grams seen at most {rare_max_count} times")
        return _coverage_of(real_token_lists.rare_bigrams, _Ngrams(synth_token_lists), 2)
    return _tail_coverage(_Ngrams(real_token_lists), _Ngrams(synth_token_lists), n, rare_max_count)


# --- vocabulary growth ----------------------------------------------------------------------------

def vocabulary_at(token_lists: TokenLists, n_tokens: int, seed: int = 0) -> int:
    """Vocabulary of exactly `n_tokens` tokens: whole texts in a seeded shuffled order, the last one cut."""
    ngrams = _Ngrams(token_lists)
    total = ngrams.total_tokens()
    if not 0 <= n_tokens <= total:
        raise ValueError(f"n_tokens={n_tokens} is outside the corpus's 0..{total} tokens")
    return int(np.searchsorted(ngrams.first_occurrences(seed), n_tokens))


def _growth(ngrams: _Ngrams, points: int, seed: int, max_tokens: int | None,
            start: int = 1) -> tuple[np.ndarray, np.ndarray]:
    return _growth_of(ngrams.first_occurrences(seed), ngrams.total_tokens(), points, max_tokens, start)


def _growth_of(first: np.ndarray, total_tokens: int, points: int, max_tokens: int | None,
               start: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """V(N) at log-spaced N, from the sorted first-occurrence positions of a corpus's words."""
    total = total_tokens if max_tokens is None else min(max_tokens, total_tokens)
    if total == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    sizes = np.unique(np.geomspace(min(start, total), total, points).round().astype(np.int64))
    return sizes, np.searchsorted(first, sizes).astype(np.int64)


def vocabulary_growth(token_lists: TokenLists | Hashed | CorpusCounts, points: int = 30, seed: int = 0,
                      max_tokens: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(N, V(N)) at up to `points` log-spaced token counts, texts read in a seeded order (a corpus already counted,
    `CorpusCounts`, for the same seed)."""
    if isinstance(token_lists, CorpusCounts):
        token_lists.check_seed(seed)
        return _growth_of(token_lists.first, token_lists.total_tokens, points, max_tokens)
    return _growth(_Ngrams(token_lists), points, seed, max_tokens)


def _heaps(ngrams: _Ngrams, seed: int, max_tokens: int | None) -> float:
    return _heaps_of(ngrams.first_occurrences(seed), ngrams.total_tokens(), max_tokens)


def _heaps_of(first: np.ndarray, total_tokens: int, max_tokens: int | None) -> float:
    sizes, vocab = _growth_of(first, total_tokens, 30, max_tokens, start=HEAPS_MIN_TOKENS)
    if sizes.size < 2:
        return float("nan")
    beta, _log_k = np.polyfit(np.log(sizes), np.log(np.maximum(vocab, 1)), 1)
    return float(beta)


def heaps_exponent(token_lists: TokenLists, seed: int = 0, max_tokens: int | None = None) -> float:
    """β of V(N) = K·N^β, least squares on log-log over the growth curve from HEAPS_MIN_TOKENS tokens
    (to `max_tokens`, so that two corpora can be fitted over the same range). NaN when too small."""
    return _heaps(_Ngrams(token_lists), seed, max_tokens)


# --- embeddings -----------------------------------------------------------------------------------

def _unit_rows(emb: np.ndarray) -> np.ndarray:
    emb = np.asarray(emb, dtype=np.float64)
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    return np.divide(emb, norms, out=np.zeros_like(emb), where=norms > 0)


def mean_pairwise_cosine(emb: np.ndarray) -> float:
    """Mean cosine over all pairs i ≠ j in O(n·d): Σ_{i≠j} e_i·e_j = ‖Σe‖² − Σ‖e_i‖².

    Rows are L2-normalised first (a no-op for sentence embeddings), so Σ‖e_i‖² is n bar zero rows.
    """
    unit = _unit_rows(emb)
    n = unit.shape[0]
    if n < 2:
        return float("nan")
    total = unit.sum(axis=0)
    return float((total @ total - np.einsum("ij,ij->", unit, unit)) / (n * (n - 1)))


def embedding_dispersion(emb: np.ndarray) -> float:
    """Mean Euclidean distance of the L2-normalised embeddings to their centroid.

    Chosen over the covariance trace: for unit vectors that trace is 1 − ‖centroid‖², a rescaling of
    the mean pairwise cosine, so it would add no information; the mean distance weighs every text
    equally and is less dominated by a few outliers.
    """
    unit = _unit_rows(emb)
    if unit.shape[0] == 0:
        return float("nan")
    return float(np.linalg.norm(unit - unit.mean(axis=0), axis=1).mean())


# --- labels ---------------------------------------------------------------------------------------

def label_balance(labels_synth: Sequence, labels_real: Sequence) -> dict:
    """Per-label shares of each side and their total variation distance (½ Σ |p − q|)."""
    synth = pd.Series(list(labels_synth), dtype=object).value_counts(normalize=True)
    real = pd.Series(list(labels_real), dtype=object).value_counts(normalize=True)
    synth, real = synth.align(real, fill_value=0.0)
    return {"synthetic": {k: float(v) for k, v in synth.items()},
            "real": {k: float(v) for k, v in real.items()},
            "tvd": float(0.5 * np.abs(synth.to_numpy() - real.to_numpy()).sum())}


# --- the report -----------------------------------------------------------------------------------

def _ratio(a: float, b: float) -> float:
    return float(a / b) if b else float("nan")


@dataclass(frozen=True)
class CorpusCounts:
    """What a diversity report needs of the reference corpus, counted once: a few figures and three arrays
    (for a million real texts, a few MB against the GBs and tens of seconds of counting them). A run asks for
    the real side's figures at every verification, top-up round and kept-set gate: it counts them once
    (`of`) and reads them back (`to_arrays` / `from_arrays`, the cache's form)."""

    distinct: tuple[float, float, float]  # distinct-1, -2, -3
    total_tokens: int
    first: np.ndarray  # sorted positions at which each word first appears, texts read in `seed`'s order
    rare_bigrams: np.ndarray  # sorted hashes of the bigrams seen 1..RARE_MAX_COUNT times
    word_counts: np.ndarray  # how often each word occurs, most frequent first (the rank-frequency curve)
    seed: int

    @classmethod
    def of(cls, tokens: TokenLists | Hashed, seed: int = 0) -> "CorpusCounts":
        ngrams = _Ngrams(tokens)
        return cls(tuple(_distinct(ngrams, n) for n in (1, 2, 3)), ngrams.total_tokens(),
                   ngrams.first_occurrences(seed), _rare(ngrams, 2, RARE_MAX_COUNT),
                   np.sort(ngrams.unique_counts(1)[1])[::-1].astype(np.int64), seed)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"figures": np.array([*self.distinct, self.total_tokens, self.seed], dtype=np.float64),
                "first": self.first, "rare_bigrams": self.rare_bigrams, "word_counts": self.word_counts}

    @classmethod
    def from_arrays(cls, figures: np.ndarray, first: np.ndarray, rare_bigrams: np.ndarray,
                    word_counts: np.ndarray) -> "CorpusCounts":
        return cls(tuple(float(v) for v in figures[:3]), int(figures[3]), first, rare_bigrams, word_counts,
                   int(figures[4]))

    def check_seed(self, seed: int) -> None:
        if self.seed != seed:
            raise ValueError(f"the real corpus was counted for seed {self.seed}, this figure reads texts in seed "
                             f"{seed}'s order: count it again for this seed")


def diversity_report(real_tokens: TokenLists | Hashed | CorpusCounts, synth_tokens: TokenLists | Hashed,
                     real_emb: np.ndarray | None = None, synth_emb: np.ndarray | None = None,
                     real_labels: Sequence | None = None, synth_labels: Sequence | None = None,
                     seed: int = 0) -> dict[str, float]:
    """Synthetic diversity next to the real corpus's. Embedding keys need both embeddings,
    `label_tvd` both label lists; vocabulary and Heaps' β are taken at / up to the smaller corpus's
    token count so that corpus size does not decide the comparison. The real corpus may come counted
    already (`CorpusCounts`, for the same seed)."""
    real = real_tokens if isinstance(real_tokens, CorpusCounts) else CorpusCounts.of(real_tokens, seed)
    real.check_seed(seed)
    synth = _Ngrams(synth_tokens)
    out: dict[str, float] = {}
    for n in (1, 2, 3):
        out[f"distinct_{n}"] = _distinct(synth, n)
    for n in (1, 2, 3):
        out[f"real_distinct_{n}"] = real.distinct[n - 1]

    equal = min(real.total_tokens, synth.total_tokens())
    out["vocab_at_equal_tokens"] = float(np.searchsorted(synth.first_occurrences(seed), equal))
    out["real_vocab_at_equal_tokens"] = float(np.searchsorted(real.first, equal))
    out["vocab_ratio"] = _ratio(out["vocab_at_equal_tokens"], out["real_vocab_at_equal_tokens"])
    out["heaps_exponent"] = _heaps(synth, seed, equal)
    out["real_heaps_exponent"] = _heaps_of(real.first, real.total_tokens, equal)
    out["heaps_ratio"] = _ratio(out["heaps_exponent"], out["real_heaps_exponent"])

    if real_emb is not None and synth_emb is not None:
        out["mean_pairwise_cosine"] = mean_pairwise_cosine(synth_emb)
        out["real_mean_pairwise_cosine"] = mean_pairwise_cosine(real_emb)
        out["embedding_dispersion"] = embedding_dispersion(synth_emb)
        out["real_embedding_dispersion"] = embedding_dispersion(real_emb)
        out["dispersion_ratio"] = _ratio(out["embedding_dispersion"], out["real_embedding_dispersion"])
    if real_labels is not None and synth_labels is not None:
        out["label_tvd"] = label_balance(synth_labels, real_labels)["tvd"]
    out["tail_coverage"] = _coverage_of(real.rare_bigrams, synth, 2)
    return out
