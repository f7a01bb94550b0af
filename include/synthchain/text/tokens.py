"""Tokens and normal forms shared by every text block.

One tokeniser for the whole modality, so that the n-gram model, diversity,
memorisation and contamination all count the same units. Lower-cased word and
punctuation tokens: simple, fast (one compiled regex), and stable across versions.
"""
from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence

import numpy as np
import xxhash

_TAG = re.compile(r"<[^>]{0,200}>")
_SPACE = re.compile(r"\s+")
_TOKEN = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?|[^\sa-z0-9]", re.IGNORECASE)
_PUNCT = re.compile(r"[^\w\s]+")


def clean_text(text: str) -> str:
    """What a loader keeps of a raw text: HTML tags and entities out, whitespace folded."""
    return _SPACE.sub(" ", html.unescape(_TAG.sub(" ", text))).strip()


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens and single punctuation marks."""
    return _TOKEN.findall(text.lower())


def tokenize_all(texts: Iterable[str]) -> list[list[str]]:
    return [_TOKEN.findall(t.lower()) for t in texts]


class TokenView(Sequence):
    """Texts read as token lists, tokenised when read.

    A million texts' token lists are gigabytes of Python strings; n-gram code that takes a
    `Sequence[Sequence[str]]` (indexes, diversity counts, contamination) reads a view a batch at
    a time instead, so no step holds every text's tokens at once. Slices tokenise that slice.
    """

    def __init__(self, texts: Sequence[str]):
        self.texts = texts

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return tokenize_all(self.texts[i])
        return tokenize(self.texts[i])

    def __iter__(self):
        for lo in range(0, len(self.texts), VIEW_CHUNK):
            yield from tokenize_all(self.texts[lo:lo + VIEW_CHUNK])


VIEW_CHUNK = 4096  # texts tokenised together when a view is iterated


def normalize(text: str) -> str:
    """Normal form for exact dedup: case, punctuation and spacing do not make a text new."""
    return _SPACE.sub(" ", _PUNCT.sub(" ", text.lower())).strip()


def text_hashes(texts: Sequence[str]) -> np.ndarray:
    """64-bit xxhash of each text's normal form (exact dedup key)."""
    return np.fromiter((xxhash.xxh3_64_intdigest(normalize(t).encode()) for t in texts), dtype=np.uint64, count=len(texts))


def ngram_hashes(tokens: Sequence[str], n: int) -> np.ndarray:
    """64-bit hashes of every n-token window of one text (empty when it has fewer than n tokens)."""
    if len(tokens) < n:
        return np.empty(0, dtype=np.uint64)
    ids = np.fromiter((xxhash.xxh3_64_intdigest(t.encode()) for t in tokens), dtype=np.uint64, count=len(tokens))
    # Polynomial combination of the window's token hashes, wrapping in uint64 (well mixed by xxh3 already).
    windows = np.lib.stride_tricks.sliding_window_view(ids, n)
    powers = np.array([pow(1099511628211, n - 1 - i, 2**64) for i in range(n)], dtype=np.uint64)
    with np.errstate(over="ignore"):
        return (windows * powers).sum(axis=1, dtype=np.uint64)
