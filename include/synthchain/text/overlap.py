"""Verbatim overlap by hashed token n-grams: memorisation of training text, contamination of eval sets.

A reference corpus becomes one sorted uint64 array of its n-gram window hashes
(`tokens.ngram_hashes`). Queries are matched a batch of texts at a time: all their windows are
concatenated, looked up with a single `np.searchsorted`, and the hits are segmented back per
text with bincount/cumsum, so no Python loop runs per window.

n = 13 follows the usual contamination convention: 13 consecutive identical tokens almost never
arise by chance in natural text, but a copied sentence almost always has them.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import xxhash

from .tokens import ngram_hashes

TokenLists = Sequence[Sequence[str]]

BATCH_TEXTS = 2048  # bounds the concatenated windows of one batch (≤ 2048 × 800 × 8 B ≈ 13 MB)
# An eval text shorter than n is matched as one whole-text n-gram of its own length, down to this
# many tokens; below it stock phrases ("great product, would buy again!") would match by chance.
MIN_SHORT_EVAL_TOKENS = 8


# The token-hash polynomial of `tokens.ngram_hashes`, applied here to a whole corpus at once.
_BASE = np.uint64(1099511628211)


HASH_CHUNK = 16_384  # texts hashed per pass: a TokenView tokenises this many at a time


def token_hashes(token_lists: TokenLists) -> tuple[np.ndarray, np.ndarray]:
    """Every text's token hashes (`ngram_hashes(tokens, 1)`) concatenated, and each text's length.

    A chunk of texts at a time, all its tokens hashed in one pass (the per-token hash is the cost;
    one numpy call per text would add as much again), so a `TokenView` over a corpus is tokenised
    a chunk at a time and never held whole."""
    ids, counts = [], []
    for lo in range(0, len(token_lists), HASH_CHUNK):
        part = token_lists[lo:lo + HASH_CHUNK]
        counts.append(np.fromiter((len(t) for t in part), dtype=np.int64, count=len(part)))
        ids.append(np.fromiter((xxhash.xxh3_64_intdigest(w.encode()) for t in part for w in t), dtype=np.uint64,
                               count=int(counts[-1].sum())))
    if not ids:
        return np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.int64)
    return np.concatenate(ids), np.concatenate(counts)


def windows_of(ids: np.ndarray, counts: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The n-gram hashes of every text, concatenated, and how many windows each text has.

    Equal to concatenating `ngram_hashes(text, n)` (a test keeps them equal), but computed from
    token hashes already at hand: hashing the tokens is the expensive part (one Python call per
    token), so a corpus is hashed once and then windowed for every n it is needed at.
    """
    window_counts = np.maximum(counts - n + 1, 0)
    if ids.size < n or not window_counts.any():
        return np.empty(0, dtype=np.uint64), window_counts
    with np.errstate(over="ignore"):  # Horner's rule, wrapping in uint64 like ngram_hashes
        acc = ids[: ids.size - n + 1].copy()
        for i in range(1, n):
            acc *= _BASE
            acc += ids[i: ids.size - n + 1 + i]
    # Drop the windows that run past their text's end: those starting in its last n - 1 tokens.
    # (Marked per text and offset, so no per-token index arrays are built.)
    valid = np.ones(acc.size, dtype=bool)
    ends = np.cumsum(counts)
    for back in range(1, n):
        starts = ends[counts >= back] - back
        valid[starts[starts < acc.size]] = False
    return acc[valid], window_counts


def window_hashes(token_lists: TokenLists, n: int) -> tuple[np.ndarray, np.ndarray]:
    """All texts' n-gram hashes concatenated, and how many windows each text has."""
    return windows_of(*token_hashes(token_lists), n)


def _batches(token_lists: TokenLists, size: int = BATCH_TEXTS) -> Iterator[tuple[slice, TokenLists]]:
    for start in range(0, len(token_lists), size):
        stop = min(start + size, len(token_lists))
        yield slice(start, stop), token_lists[start:stop]


@dataclass(frozen=True)
class OverlapResult:
    """Per query text: whether it shares an n-gram with the reference, how many of its windows do,
    its longest verbatim span in tokens (0 if none) and a reference text of its first match (-1)."""

    matched: np.ndarray
    shared_ngrams: np.ndarray
    longest_span: np.ndarray
    reference_index: np.ndarray

    def __len__(self) -> int:
        return self.matched.size

    @classmethod
    def empty(cls, size: int) -> OverlapResult:
        return cls(np.zeros(size, dtype=bool), np.zeros(size, dtype=np.int64),
                   np.zeros(size, dtype=np.int64), np.full(size, -1, dtype=np.int64))

    @classmethod
    def concat(cls, parts: Sequence[OverlapResult]) -> OverlapResult:
        if not parts:
            return cls.empty(0)
        return cls(*(np.concatenate([getattr(p, f) for p in parts])
                     for f in ("matched", "shared_ngrams", "longest_span", "reference_index")))


class NgramIndex:
    """Sorted n-gram hashes of a reference corpus, each with the reference text it came from.

    Hashes are sorted stably, so among equal hashes the lowest reference index comes first and
    is the one reported.
    """

    def __init__(self, n: int = 13):
        if n < 1:
            raise ValueError(f"n must be ≥ 1, got {n}")
        self.n = n
        self.hashes = np.empty(0, dtype=np.uint64)
        self.documents = np.empty(0, dtype=np.int64)
        self.n_documents = 0

    @classmethod
    def build(cls, token_lists: TokenLists, n: int = 13) -> NgramIndex:
        return cls.from_token_hashes(*token_hashes(token_lists), n)

    @classmethod
    def from_token_hashes(cls, ids: np.ndarray, lengths: np.ndarray, n: int = 13) -> NgramIndex:
        """The index of a corpus already hashed (`token_hashes`): a million texts' index is two arrays
        of their window count (16 bytes a window), built without a Python object per n-gram."""
        index = cls(n)
        flat, counts = windows_of(ids, lengths, n)
        order = np.argsort(flat, kind="stable")
        index.hashes = flat[order]
        del flat
        index.documents = np.repeat(np.arange(lengths.size, dtype=np.int64), counts)[order]
        index.n_documents = int(lengths.size)
        return index

    def _lookup(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each window: whether the reference has it, and the position of its first entry."""
        if self.hashes.size == 0 or windows.size == 0:
            return np.zeros(windows.size, dtype=bool), np.zeros(windows.size, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self.hashes, windows), self.hashes.size - 1)
        return self.hashes[pos] == windows, pos

    def match(self, token_lists: TokenLists, batch_size: int = BATCH_TEXTS) -> OverlapResult:
        return OverlapResult.concat([self.match_windows(*window_hashes(batch, self.n))
                                     for _, batch in _batches(token_lists, batch_size)])

    def match_windows(self, windows: np.ndarray, counts: np.ndarray) -> OverlapResult:
        """Match precomputed windows (`window_hashes(texts, self.n)`) — lets one hashing pass over
        the queries serve several indexes."""
        return self._match(windows, counts)[0]

    def _match(self, windows: np.ndarray, counts: np.ndarray) -> tuple[OverlapResult, np.ndarray]:
        """The per-text result, and which windows the reference has."""
        texts = counts.size
        result = OverlapResult.empty(texts)
        hit, pos = self._lookup(windows)
        hit_at = np.flatnonzero(hit)
        if hit_at.size == 0:
            return result, hit
        text_of = np.repeat(np.arange(texts), counts)
        result.shared_ngrams[:] = np.bincount(text_of[hit_at], minlength=texts)
        result.matched[:] = result.shared_ngrams > 0

        hit_texts, first = np.unique(text_of[hit_at], return_index=True)
        result.reference_index[hit_texts] = self.documents[pos[hit_at[first]]]

        # Runs of consecutive matching windows, broken at text boundaries: a run of k windows is a
        # span of k + n - 1 tokens every n-window of which is in the reference.
        text_start = np.zeros(windows.size, dtype=bool)
        text_start[(np.cumsum(counts) - counts)[counts > 0]] = True
        run_start = hit & (text_start | ~np.concatenate(([False], hit[:-1])))
        run_len = np.bincount(np.cumsum(run_start)[hit_at] - 1)
        run_text = text_of[run_start]  # non-decreasing: runs come in text order
        texts_with_runs, seg = np.unique(run_text, return_index=True)
        result.longest_span[texts_with_runs] = np.maximum.reduceat(run_len, seg) + self.n - 1
        return result, hit

    def documents_hit(self, windows: np.ndarray) -> np.ndarray:
        """Per reference text: does any of its n-grams occur among `windows`?"""
        out = np.zeros(self.n_documents, dtype=bool)
        if self.hashes.size and windows.size:
            out[self.documents[np.isin(self.hashes, windows)]] = True
        return out


def memorisation(real_train: TokenLists | NgramIndex, synth_tokens: TokenLists,
                 n: int = 13) -> tuple[OverlapResult, dict[str, float]]:
    """A synthetic text that reproduces ≥ n consecutive tokens of a real training text is memorised.

    `longest_span` is the longest span all of whose n-windows occur in the training texts; in
    practice one copied passage, though two training texts sharing n − 1 tokens could be stitched.
    `real_train`: the training texts' tokens, or their index already built at this n.
    """
    index = real_train if isinstance(real_train, NgramIndex) else NgramIndex.build(real_train, n)
    if index.n != n:
        raise ValueError(f"the index is of {index.n}-grams, memorisation asked for {n}")
    result = index.match(synth_tokens)
    spans = result.longest_span[result.matched]
    return result, {
        "memorised": int(result.matched.sum()),
        "memorised_share": float(result.matched.mean()) if len(result) else 0.0,
        "max_span": int(spans.max()) if spans.size else 0,
        "mean_span_of_memorised": float(spans.mean()) if spans.size else 0.0,
    }


class _EvalSet:
    """One eval set's indexes by window length: n for its texts of ≥ n tokens, and one per length
    of its shorter texts (each such text is then one whole-text window), with the texts each covers."""

    def __init__(self, texts: TokenLists, n: int, min_short: int):
        lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
        self.size = len(texts)
        self.indexes: dict[int, tuple[NgramIndex, np.ndarray]] = {
            n: (NgramIndex.build(texts, n), np.arange(self.size))}
        for length in np.unique(lengths[(lengths >= min_short) & (lengths < n)]).tolist():
            members = np.flatnonzero(lengths == length)
            self.indexes[length] = (NgramIndex.build([texts[i] for i in members], length), members)
        self.too_short = int((lengths < min(min_short, n)).sum())
        self.leaked = np.zeros(self.size, dtype=bool)


def contamination(eval_sets: dict[str, TokenLists], synth_tokens: TokenLists, n: int = 13,
                  min_short_tokens: int = MIN_SHORT_EVAL_TOKENS,
                  ) -> tuple[np.ndarray, np.ndarray, dict[str, dict[str, float]]]:
    """Which synthetic texts contain eval-set text verbatim.

    An eval text of ≥ n tokens is hit by any shared n-gram; one of `min_short_tokens`..n-1 tokens
    only when it appears whole; shorter ones cannot be checked and are reported as `too_short`.
    Returns (per synthetic text: hit any set; per synthetic text: the first set in `eval_sets`' order
    it hits, or ''; per set: synthetic texts that hit it (`contaminated`, `share` of all synthetic
    texts), its size (`eval_texts`), how many of its texts appear in the synthetic corpus
    (`eval_texts_leaked`, `eval_share_leaked`) and `too_short`).
    """
    names = list(eval_sets)
    sets = [_EvalSet(eval_sets[name], n, min_short_tokens) for name in names]
    lengths_needed = sorted({length for s in sets for length in s.indexes})
    hits = np.zeros((len(sets), len(synth_tokens)), dtype=bool)
    for rows, batch in _batches(synth_tokens):
        ids, lengths = token_hashes(batch)  # tokens hashed once, then windowed at each length needed
        for length in lengths_needed:
            windows, counts = windows_of(ids, lengths, length)
            for k, s in enumerate(sets):
                if length in s.indexes:
                    index, members = s.indexes[length]
                    result, hit = index._match(windows, counts)
                    hits[k, rows] |= result.matched
                    s.leaked[members] |= index.documents_hit(windows[hit])  # hit windows only: small

    any_hit = hits.any(axis=0)
    first_set = np.full(len(synth_tokens), "", dtype=object)
    first_set[any_hit] = np.asarray(names, dtype=object)[hits[:, any_hit].argmax(axis=0)]
    total = len(synth_tokens)
    report = {name: {"contaminated": int(hits[k].sum()),
                     "share": float(hits[k].sum() / total) if total else 0.0,
                     "eval_texts": s.size,
                     "eval_texts_leaked": int(s.leaked.sum()),
                     "eval_share_leaked": float(s.leaked.mean()) if s.size else 0.0,
                     "too_short": s.too_short}
              for k, (name, s) in enumerate(zip(names, sets))}
    return any_hit, first_set, report
