"""Near-duplicate texts: datasketch's MinHash-LSH, computed for a whole corpus at once, confirmed by true Jaccard.

Why not datasketch's classes as they are: a `MinHash` per document hashes its shingles one at a
time in Python and `MinHashLSH` stores and queries documents one by one (1.4-2.2k docs/s here).
The maths stays datasketch's: its permutations and scheme (`MinHash(num_perm, seed)`: fmix32, then
a*h+b mod 2^32 in datasketch 2; the legacy mod-prime scheme of older versions is followed too) and
its band/row optimiser (`datasketch.lsh._optimal_param`). A text's signature equals that of
`MinHash(num_perm, seed=seed, hashfunc=shingle_hash)` updated with its shingles. What changes is
the batching: the words of thousands of texts are found and hashed at once in numpy; each
permutation is applied to blocks of texts laid out shingle-major, so a text's minimum is a
vertical SIMD minimum (`np.minimum.reduceat` per text measured 3.5x slower); band collisions are
found with a hash table per band over the whole corpus (0.18 s for 200k texts, where bulk-inserting
the same signatures into `MinHashLSH` and querying each text took 13.4 s).

Shingles are word n-grams of `tokens.normalize(text)` (case and punctuation folded); n = 1 by
default, the word set of datasketch's README. Share of the benchmark's 20k planted near-duplicate
pairs whose true Jaccard reaches 0.8, the ceiling on recall (bench/neardup_vs_datasketch.py):
words 0.996, word 2-grams 0.69, word 3-grams 0.51, character 3/4/5-grams 0.998/0.982/0.941.
A word swap or a one-letter edit changes one or two members of the word set but several n-grams;
character 3-grams do as well, but a text has six times as many of them to hash (141 against 25).
Measured with these shingles: recall 0.993, precision 1.0. The price: word order is ignored (a
shuffled text is a duplicate); `shingle_size` > 1 brings order in, at lower recall.

LSH only proposes candidate pairs; each is confirmed by the true Jaccard of the two shingle sets.
Texts are then taken in order and a text is dropped only when it is confirmed >= threshold against
an earlier text that is itself kept. So every dropped text is a near duplicate of a text that stays,
and a chain A~B, B~C never drops C for A: with B dropped, C stays unless C itself reaches the
threshold with A. (Union-find over confirmed edges would merge the chain and drop C for A however
unlike they are.)
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd
from datasketch import MinHash
from datasketch.lsh import _optimal_param

from .tokens import normalize

# Recall-weighted band choice: a false candidate costs one exact Jaccard, a missed one is a kept duplicate.
# On the benchmark, datasketch's default (0.5, 0.5) gives 9 bands x 13 rows and recall 0.969; (0.1, 0.9)
# gives 14 x 9 and 0.993 for 3% more candidates; (0.05, 0.95) 16 x 8 and 0.995, but 15% more time.
FALSE_POSITIVE_WEIGHT, FALSE_NEGATIVE_WEIGHT = 0.1, 0.9
# A band bucket larger than this (many near-identical texts) pairs each member with its first few only,
# so that candidates stay linear in the corpus size.
BIG_BUCKET, BIG_BUCKET_PARTNERS = 64, 8
_TEXTS_PER_CHUNK = 16_384  # texts hashed together: their byte-level working arrays peak near 32 MB
_BLOCK_SLOTS = 1 << 16  # shingle slots per signature block: the block and its permuted copy stay in L2
_THREADS = max(1, min(4, os.cpu_count() or 1))
_M64 = (1 << 64) - 1
_WORD_BASE = 0xC2B2AE3D27D4EB4F  # odd: position weights of the words in an n-gram


@dataclass(frozen=True)
class NearDuplicates:
    keep: np.ndarray  # bool per text: False for a later text of a near-duplicate group
    duplicate_of: np.ndarray  # int64: index of the kept text it duplicates, -1 when kept
    jaccard: np.ndarray  # float64: true Jaccard with that text, NaN when kept
    candidate_pairs: int  # pairs proposed by LSH, plus exact repeats
    confirmed_pairs: int  # of which true Jaccard >= threshold


# ---------------------------------------------------------------- shingles

def _fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser, in place (a bijection that spreads every input bit over the output)."""
    shifted = np.empty_like(h)
    with np.errstate(over="ignore"):
        for multiplier in (0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53, None):
            np.bitwise_xor(h, np.right_shift(h, np.uint64(33), out=shifted), out=h)
            if multiplier:
                np.multiply(h, np.uint64(multiplier), out=h)
    return h


def _fmix64_int(h: int) -> int:
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & _M64
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & _M64
    return h ^ (h >> 33)


def _word_hash_int(word: bytes) -> int:
    h = 0
    for k in range(0, len(word), 8):
        block = int.from_bytes(word[k:k + 8], "little")
        h = block if k == 0 else _fmix64_int(h) ^ block
    return _fmix64_int(h)


def shingle_hash(shingle: bytes) -> int:
    """32-bit hash of one shingle (its words joined by single spaces), usable as a datasketch `hashfunc`.

    The scalar twin of the batched hashing: `MinHash(num_perm, seed=seed, hashfunc=shingle_hash)`
    updated with a text's shingles has the signature `minhash_signatures` gives it.
    """
    h = 0
    for k, word in enumerate(shingle.split(b" ")):
        h = (h + _word_hash_int(word) * pow(_WORD_BASE, k, 1 << 64)) & _M64
    h = _fmix64_int(h)
    return (h ^ (h >> 32)) & 0xFFFFFFFF


# Bytes other than [a-z0-9_] and non-ASCII become word breaks: for an ASCII text, lower() then this
# table splits words exactly where normalize() does (its \w is [A-Za-z0-9_] on ASCII characters).
# No byte of a word is then 0, so zero padding below cannot make two words alike.
_BREAKS = bytes(b if (b < 128 and (chr(b).isalnum() or chr(b) == "_")) or b >= 128 else 32 for b in range(256))
_LOW_BYTES = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [_M64], dtype=np.uint64)


def _word_hashes(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(index of each text's first word, 64-bit hash per word) for the words of `normalize(text)`.

    No Python object per word: the texts are one byte buffer, a word is a run of non-space bytes,
    and its hash is built from its 8-byte little-endian blocks, read straight from the buffer
    (for most words that is one read, exact, then fmix64). normalize() is a regex pass, costly at
    corpus scale (2.6 s for 200k texts), so it runs only for non-ASCII texts, where case folding
    and \\w need Unicode; ASCII texts get lower() and the byte table, to the same effect.
    """
    encoded = [(t.lower() if t.isascii() else normalize(t)).encode() for t in texts]
    sizes = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    raw = b" ".join(encoded).translate(_BREAKS)
    data = np.zeros(len(raw) + 8, dtype=np.uint8)  # 8 spare bytes: a block read may pass the end
    data[:len(raw)] = np.frombuffer(raw, dtype=np.uint8)
    in_word = np.zeros(len(raw) + 2, dtype=np.int8)
    np.not_equal(data[:len(raw)], 32, out=in_word[1:-1].view(bool))
    edges = np.diff(in_word)
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    first_word = np.searchsorted(starts, np.r_[0, np.cumsum(sizes + 1)[:-1]])
    blocks = np.ndarray((len(raw),), dtype="<u8", buffer=data, strides=(1,))  # an 8-byte read at every byte
    lengths = ends - starts
    h = blocks[starts] & _LOW_BYTES[np.minimum(lengths, 8)]
    longer, k = np.flatnonzero(lengths > 8), 8
    while longer.size:
        h[longer] = _fmix64(h[longer]) ^ (blocks[starts[longer] + k] & _LOW_BYTES[np.minimum(lengths[longer] - k, 8)])
        k += 8
        longer = longer[lengths[longer] > k]
    return first_word, _fmix64(h)


@dataclass(frozen=True)
class _Shingles:
    offsets: np.ndarray  # text i's shingle occurrences are [offsets[i], offsets[i + 1])
    hashes: np.ndarray  # uint64 per occurrence (a text may repeat a shingle: sets are taken later)


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenated arange(start, start + length) for each (start, length)."""
    return np.repeat(starts - (np.cumsum(lengths) - lengths), lengths) + np.arange(int(lengths.sum()))


def _shingles(texts: Sequence[str], shingle_size: int) -> _Shingles:
    """Word n-grams per text; a text with fewer than n words (but some) is one shingle of all of them."""
    first_word, word = _word_hashes(texts)
    word_offsets = np.r_[first_word, word.size]
    n, counts = shingle_size, np.diff(word_offsets)
    if n == 1:
        return _Shingles(word_offsets, _fmix64(word))
    # A shingle starts at each word with n-1 more words in its text, or at the first word of a short text.
    shingle_counts = np.where(counts >= n, counts - n + 1, np.minimum(counts, 1))
    starts = _ranges(word_offsets[:-1], shingle_counts)
    ends = np.repeat(word_offsets[1:], shingle_counts)
    combined = np.zeros(starts.size, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(n):  # sum_k word[start + k] * W^k over the words the text has
            present = starts + k < ends
            combined[present] += word[starts[present] + k] * np.uint64(pow(_WORD_BASE, k, 1 << 64))
    return _Shingles(np.r_[0, np.cumsum(shingle_counts)], _fmix64(combined))


# ---------------------------------------------------------------- signatures

@cache
def _permutations(num_perm: int, seed: int) -> tuple[str, np.ndarray, np.ndarray]:
    m = MinHash(num_perm=num_perm, seed=seed)
    a, b = m.permutations
    return getattr(m, "scheme", "legacy"), a, b


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finaliser: datasketch's affine32 pre-mix of every input hash."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


def _padded_widths(counts: np.ndarray) -> np.ndarray:
    """Each count rounded up a ladder of widths at most 25% apart (exact up to 8)."""
    ladder, top = list(range(1, 9)), int(counts.max(initial=1))
    while ladder[-1] < top:
        ladder.append(int(ladder[-1] * 1.25) + 1)
    ladder = np.array(ladder)
    return ladder[np.searchsorted(ladder, counts)]


def _signatures(shingles: _Shingles, rows: np.ndarray, num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """MinHash signatures of the texts `rows` (each with shingles), as ((num_perm, m) uint32, text per column).

    Columns come in order of shingle count, not in `rows` order: texts of similar length are laid
    out as a (width, texts) block, a text's shingles down its column and padded by repeating them
    (which leaves the minimum alone), so one permutation of a block is a multiply, an add and a
    vertical minimum over contiguous rows. Putting columns back in text order would cost more than
    the permutations (a random column scatter of 128 rows), so callers take the column order as is.
    """
    scheme, a, b = _permutations(num_perm, seed)
    if scheme not in ("affine32", "legacy"):
        raise ValueError(f"datasketch MinHash scheme {scheme!r} is not supported here")
    hv = shingles.hashes ^ (shingles.hashes >> np.uint64(32))
    if scheme == "affine32":
        hv = _fmix32(hv.astype(np.uint32))
    else:  # datasketch < 2: (a*h + b) mod (2^61 - 1), low 32 bits, computed in uint64 like datasketch
        hv = hv & np.uint64(0xFFFFFFFF)
        prime, low32 = np.uint64((1 << 61) - 1), np.uint64(0xFFFFFFFF)
    counts = np.diff(shingles.offsets)[rows]
    order = np.argsort(counts, kind="stable")
    columns, counts = rows[order], counts[order]
    widths = _padded_widths(counts)
    sig = np.empty((num_perm, columns.size), dtype=np.uint32)
    if not columns.size:
        return sig, columns
    blocks = []  # (first column, end column, width): texts of one width, at most _BLOCK_SLOTS slots
    edges = np.flatnonzero(np.r_[True, widths[1:] != widths[:-1], True]).tolist()
    for lo, hi in zip(edges[:-1], edges[1:]):
        step = max(1, _BLOCK_SLOTS // int(widths[lo]))
        blocks += [(start, min(start + step, hi), int(widths[lo])) for start in range(lo, hi, step)]

    def sign(block: tuple[int, int, int]) -> None:
        lo, hi, width = block
        slots = shingles.offsets[columns[lo:hi]] + np.arange(width)[:, None] % counts[lo:hi]
        values = hv[slots]
        permuted = np.empty_like(values)
        with np.errstate(over="ignore"):
            for p in range(num_perm):
                np.multiply(values, a[p], out=permuted)  # wraps mod 2^32 (affine32) or 2^64 (legacy), as in datasketch
                np.add(permuted, b[p], out=permuted)
                if scheme == "legacy":
                    np.bitwise_and(np.remainder(permuted, prime, out=permuted), low32, out=permuted)
                sig[p, lo:hi] = permuted.min(axis=0)

    with ThreadPoolExecutor(_THREADS) as pool:
        list(pool.map(sign, blocks))
    return sig, columns


def minhash_signatures(texts: Sequence[str], num_perm: int = 128, shingle_size: int = 1,
                       seed: int = 1) -> np.ndarray:
    """(n_texts, num_perm) uint32 signatures: datasketch's `MinHash(num_perm, seed=seed, hashfunc=shingle_hash)`
    values over each text's shingles (all 2^32-1 for a text without words, like an empty MinHash)."""
    out = np.full((len(texts), num_perm), np.uint32(0xFFFFFFFF), dtype=np.uint32)
    for lo in range(0, len(texts), _TEXTS_PER_CHUNK):
        shingles = _shingles(texts[lo:lo + _TEXTS_PER_CHUNK], shingle_size)
        sig, columns = _signatures(shingles, np.flatnonzero(np.diff(shingles.offsets) > 0), num_perm, seed)
        out[lo + columns] = sig.T
    return out


# ---------------------------------------------------------------- LSH bands

@cache
def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) from datasketch's optimiser, weighted towards recall: exact Jaccard removes false candidates."""
    return _optimal_param(threshold, num_perm, FALSE_POSITIVE_WEIGHT, FALSE_NEGATIVE_WEIGHT)


def _band_keys(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(bands, m) uint64: each band's rows mixed into one key. A rare collision of unlike bands only
    adds a candidate, which its true Jaccard then rejects."""
    mix = np.random.default_rng(12345).integers(1, 2**63, size=rows, dtype=np.uint64) | np.uint64(1)
    keys = np.zeros((bands, sig.shape[1]), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for band in range(bands):
            for k in range(rows):
                keys[band] += sig[band * rows + k].astype(np.uint64) * mix[k]
    return keys


def _sequence_keys(shingles: _Shingles) -> np.ndarray:
    """One uint64 per text for its exact shingle sequence (0 for none): sum_k fmix64(h_k * (2k + 1)), mixed
    with the length. Equal sequences give equal keys; unequal ones collide with probability about 2^-64."""
    counts = np.diff(shingles.offsets)
    keys = np.zeros(counts.size, dtype=np.uint64)
    nonempty = counts > 0
    if nonempty.any():
        position = np.arange(shingles.hashes.size) - np.repeat(shingles.offsets[:-1], counts)
        with np.errstate(over="ignore"):
            terms = _fmix64(shingles.hashes * (position.astype(np.uint64) * np.uint64(2) + np.uint64(1)))
        keys[nonempty] = _fmix64(np.add.reduceat(terms, shingles.offsets[:-1][nonempty])
                                 ^ counts[nonempty].astype(np.uint64))
    return keys


@dataclass(frozen=True)
class _Sketch:
    band_keys: np.ndarray  # (bands, n) uint64
    has_words: np.ndarray  # (n,) bool: texts without words have no signature and are never matched
    sequence: np.ndarray  # (n,) uint64 key of the exact shingle sequence


def _sketch(texts: Sequence[str], bands: int, rows: int, num_perm: int, shingle_size: int, seed: int) -> _Sketch:
    """Band keys and sequence key of every text, chunk by chunk. Only these bands + 1 numbers per text
    outlive a chunk; the shingles of the texts whose pairs need a true Jaccard are rebuilt then, because
    fresh memory is what costs here (a page fault took 14-20 us on the benchmark VM: keeping the corpus's
    40 MB of shingle hashes would cost about 0.15 s, rebuilding the candidates' about 0.05 s)."""
    n = len(texts)
    keys = np.zeros((bands, n), dtype=np.uint64)
    has_words = np.zeros(n, dtype=bool)
    sequence = np.zeros(n, dtype=np.uint64)
    for lo in range(0, n, _TEXTS_PER_CHUNK):
        shingles = _shingles(texts[lo:lo + _TEXTS_PER_CHUNK], shingle_size)
        present = np.flatnonzero(np.diff(shingles.offsets) > 0)
        has_words[lo + present] = True
        sequence[lo:lo + shingles.offsets.size - 1] = _sequence_keys(shingles)
        sig, columns = _signatures(shingles, present, num_perm, seed)
        keys[:, lo + columns] = _band_keys(sig, bands, rows)
    return _Sketch(keys, has_words, sequence)


def _bucket_pairs(keys: np.ndarray, texts: np.ndarray) -> np.ndarray:
    """Candidate (i, j), i < j, among `texts` sharing a band bucket (a big bucket: its first few members only).

    `keys` holds the band keys of the whole corpus, (bands, n). Band by band, a hash table numbers
    the keys and only texts whose bucket has company are kept, so no array of bands x n is built.
    """
    bucket_codes, members, seen = [], [], 0
    for band_keys in keys:
        codes, uniques = pd.factorize(band_keys[texts])
        shared = np.bincount(codes, minlength=len(uniques))[codes] > 1
        bucket_codes.append(codes[shared] + seen)
        members.append(texts[shared])
        seen += len(uniques)
    bucket_codes = np.concatenate(bucket_codes) if bucket_codes else np.empty(0, dtype=np.int64)
    members = np.concatenate(members) if members else np.empty(0, dtype=np.int64)
    order = np.lexsort((members, bucket_codes))  # by bucket, then text order
    bucket_codes, members = bucket_codes[order], members[order]
    starts = np.flatnonzero(np.r_[True, bucket_codes[1:] != bucket_codes[:-1]])
    sizes = np.diff(np.r_[starts, bucket_codes.size])
    found = []
    for size in _sorted_unique(sizes).tolist():
        bucket = members[starts[sizes == size][:, None] + np.arange(size)]  # (buckets, size)
        if size > BIG_BUCKET:
            left, right = np.nonzero(np.arange(BIG_BUCKET_PARTNERS)[:, None] < np.arange(size))
        else:
            left, right = np.triu_indices(size, 1)
        found.append(np.stack([bucket[:, left].ravel(), bucket[:, right].ravel()], axis=1))
    return _unique_pairs(np.concatenate(found) if found else np.empty((0, 2), dtype=np.int64))


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """np.unique by sorting (numpy 2's np.unique measured 100x slower than np.sort on 1M int64 here)."""
    values = np.sort(values)
    return values[np.r_[True, values[1:] != values[:-1]]] if values.size else values


def _unique_pairs(pairs: np.ndarray) -> np.ndarray:
    if not len(pairs):
        return np.empty((0, 2), dtype=np.int64)
    pairs = pairs.astype(np.int64)
    width = np.int64(pairs.max() + 1)
    flat = _sorted_unique(pairs[:, 0] * width + pairs[:, 1])
    return np.stack([flat // width, flat % width], axis=1)


# ---------------------------------------------------------------- exact Jaccard

_PAIRS_PER_CHUNK = 1 << 17


def _jaccard(texts: Sequence[str], shingle_size: int, pairs: np.ndarray) -> np.ndarray:
    """True Jaccard of each pair's shingle sets, by sorting (no Python loop per pair)."""
    out = np.empty(len(pairs))
    if not len(pairs):
        return out
    docs = _sorted_unique(pairs.ravel())
    parts = [_shingles([texts[i] for i in docs[lo:lo + _TEXTS_PER_CHUNK].tolist()], shingle_size)
             for lo in range(0, docs.size, _TEXTS_PER_CHUNK)]
    counts = np.concatenate([np.diff(part.offsets) for part in parts])
    ids, vocab = pd.factorize(np.concatenate([part.hashes for part in parts]))
    v = np.int64(max(len(vocab), 1))
    # Each involved text's set: its unique (text, shingle id) keys, sorted, so a text's set is one run.
    keys = _sorted_unique(np.repeat(np.arange(docs.size, dtype=np.int64), counts) * v + ids)
    set_offsets = np.r_[0, np.cumsum(np.bincount(keys // v, minlength=docs.size))]
    set_ids, set_sizes = keys % v, np.diff(set_offsets)
    for lo in range(0, len(pairs), _PAIRS_PER_CHUNK):
        chunk = pairs[lo:lo + _PAIRS_PER_CHUNK]
        a, b = np.searchsorted(docs, chunk[:, 0]), np.searchsorted(docs, chunk[:, 1])
        tag = np.arange(len(chunk)) * v
        # Both sets of every pair, tagged with the pair: a shingle in both shows up as two equal keys.
        tagged = np.r_[np.repeat(tag, set_sizes[a]) + set_ids[_ranges(set_offsets[a], set_sizes[a])],
                       np.repeat(tag, set_sizes[b]) + set_ids[_ranges(set_offsets[b], set_sizes[b])]]
        tagged.sort()
        shared = np.bincount(tagged[1:][tagged[1:] == tagged[:-1]] // v, minlength=len(chunk))
        union = set_sizes[a] + set_sizes[b] - shared
        out[lo:lo + len(chunk)] = np.divide(shared, union, out=np.ones(len(chunk)), where=union > 0)
    return out


# ---------------------------------------------------------------- public API

def _first_of_repeats(sequence: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """For each text in `rows`, the first text of `rows` with the same sequence key (itself if none)."""
    keys = sequence[rows]
    order = np.argsort(keys, kind="stable")  # stable: the first of equal keys is the earliest text
    new = np.r_[True, keys[order][1:] != keys[order][:-1]] if rows.size else np.empty(0, dtype=bool)
    first = np.empty_like(rows)
    first[order] = rows[order[new]][np.cumsum(new) - 1]
    return first


def find_near_duplicates(texts: Sequence[str], threshold: float = 0.8, num_perm: int = 128, shingle_size: int = 1,
                         seed: int = 1) -> NearDuplicates:
    """Keep the first text of each near-duplicate group; drop a later text only when its true Jaccard with a
    kept text reaches `threshold`. Texts without words are always kept (there is nothing to compare)."""
    n = len(texts)
    sketch = _sketch(texts, *lsh_params(threshold, num_perm), num_perm, shingle_size, seed)
    with_words = np.flatnonzero(sketch.has_words)
    # Exact repeats (same word sequence) are settled through their first occurrence, so that many
    # copies of one text never fill an LSH bucket with a quadratic number of pairs.
    first = _first_of_repeats(sketch.sequence, with_words)
    is_first = first == with_words
    representatives, repeats, origin = with_words[is_first], with_words[~is_first], first[~is_first]
    pairs = _bucket_pairs(sketch.band_keys, representatives)
    jaccard = _jaccard(texts, shingle_size, pairs)
    confirmed = jaccard >= threshold
    i_, j_, jac_ = pairs[confirmed, 0], pairs[confirmed, 1], jaccard[confirmed]
    order = np.lexsort((i_, j_))  # ascending j, then i: every earlier text is settled before a later one asks
    keep = [True] * n
    duplicate_of = np.full(n, -1, dtype=np.int64)
    similarity = np.full(n, np.nan)
    for i, j, jac in zip(i_[order].tolist(), j_[order].tolist(), jac_[order].tolist()):
        if keep[j] and keep[i]:
            keep[j] = False
            duplicate_of[j], similarity[j] = i, jac
    keep = np.array(keep, dtype=bool)
    # An exact repeat has its first occurrence's set, hence its verdict: a duplicate of it if it is
    # kept, else of the kept text it was dropped for, with the same Jaccard.
    kept_origin = keep[origin]
    keep[repeats] = False
    duplicate_of[repeats] = np.where(kept_origin, origin, duplicate_of[origin])
    similarity[repeats] = np.where(kept_origin, 1.0, similarity[origin])
    return NearDuplicates(keep, duplicate_of, similarity, len(pairs) + len(repeats),
                          int(confirmed.sum()) + len(repeats))


@dataclass(frozen=True)
class ReferenceSketch:
    """A reference corpus's LSH bands, sorted for lookup: built once, stored (`arrays`), read by every query.

    For a million real texts this is what near-dup-against-the-real-corpus needs besides the texts
    themselves (whose shingles are rebuilt only for candidate pairs): per band, the keys of the
    reference texts that have words, sorted, and which text each is (int32). 14 bands x 12 bytes a
    text at the default threshold: 170 MB for 1M texts, against sketching the corpus again per query.
    """
    keys: np.ndarray  # (bands, m) uint64, each band sorted
    rows: np.ndarray  # (bands, m) int32: the reference text of each key
    n_reference: int
    params: tuple[float, int, int, int]  # threshold, num_perm, shingle_size, seed

    def arrays(self) -> dict[str, np.ndarray]:
        return {"keys": self.keys, "rows": self.rows,
                "meta": np.array([self.n_reference, *self.params], dtype=np.float64)}

    @classmethod
    def from_arrays(cls, keys: np.ndarray, rows: np.ndarray, meta: np.ndarray) -> "ReferenceSketch":
        threshold, num_perm, shingle_size, seed = meta[1:].tolist()
        return cls(keys, rows, int(meta[0]), (threshold, int(num_perm), int(shingle_size), int(seed)))


def reference_sketch(reference: Sequence[str], threshold: float = 0.8, num_perm: int = 128, shingle_size: int = 1,
                     seed: int = 1) -> ReferenceSketch:
    bands, rows = lsh_params(threshold, num_perm)
    sketch = _sketch(reference, bands, rows, num_perm, shingle_size, seed)
    present = np.flatnonzero(sketch.has_words)
    keys = sketch.band_keys[:, present]
    order = np.argsort(keys, axis=1, kind="stable")  # stable: equal keys stay in text order
    return ReferenceSketch(np.take_along_axis(keys, order, axis=1), present[order].astype(np.int32), len(reference),
                           (threshold, num_perm, shingle_size, seed))


class _Joined(Sequence):
    """reference + texts as one sequence without copying a million-entry list."""

    def __init__(self, first: Sequence[str], second: Sequence[str]):
        self.first, self.second = first, second

    def __len__(self) -> int:
        return len(self.first) + len(self.second)

    def __getitem__(self, i):
        return self.first[i] if i < len(self.first) else self.second[i - len(self.first)]


def near_duplicates_of(reference: Sequence[str], texts: Sequence[str], threshold: float = 0.8, num_perm: int = 128,
                       shingle_size: int = 1, seed: int = 1,
                       sketch: ReferenceSketch | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each text's most similar reference text with true Jaccard >= threshold: (index or -1, Jaccard or NaN).

    For flagging synthetic texts that are near copies of real ones. Ties go to the lower reference index.
    `sketch`: the reference's stored `reference_sketch` (same parameters), so that only `texts` are sketched.
    """
    n_ref = len(reference)
    if sketch is None:
        sketch = reference_sketch(reference, threshold, num_perm, shingle_size, seed)
    if sketch.n_reference != n_ref or sketch.params != (threshold, num_perm, shingle_size, seed):
        raise ValueError(f"the reference sketch was built for {sketch.n_reference} texts with (threshold, num_perm, "
                         f"shingle_size, seed) {sketch.params}, not {n_ref} with "
                         f"{(threshold, num_perm, shingle_size, seed)}")
    query = _sketch(texts, *lsh_params(threshold, num_perm), num_perm, shingle_size, seed)
    query_rows = np.flatnonzero(query.has_words)
    found = []
    for ref_keys, ref_texts, band_keys in zip(sketch.keys, sketch.rows, query.band_keys):
        lo = np.searchsorted(ref_keys, band_keys[query_rows], side="left")
        hits = np.minimum(np.searchsorted(ref_keys, band_keys[query_rows], side="right") - lo, BIG_BUCKET)
        found.append(np.stack([ref_texts[_ranges(lo, hits)].astype(np.int64), n_ref + np.repeat(query_rows, hits)],
                              axis=1))
    pairs = _unique_pairs(np.concatenate(found)) if found else np.empty((0, 2), dtype=np.int64)
    jaccard = _jaccard(_Joined(reference, texts), shingle_size, pairs)
    confirmed = jaccard >= threshold
    pairs, jaccard = pairs[confirmed], jaccard[confirmed]
    order = np.lexsort((pairs[:, 0], -jaccard, pairs[:, 1]))  # per text: highest Jaccard, then lowest index
    pairs, jaccard = pairs[order], jaccard[order]
    best = np.r_[True, pairs[1:, 1] != pairs[:-1, 1]] if len(pairs) else np.empty(0, dtype=bool)
    match = np.full(len(texts), -1, dtype=np.int64)
    similarity = np.full(len(texts), np.nan)
    match[pairs[best, 1] - n_ref] = pairs[best, 0]
    similarity[pairs[best, 1] - n_ref] = jaccard[best]
    return match, similarity
