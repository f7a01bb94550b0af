"""Semantic duplicates and nearest neighbours on L2-normalised sentence embeddings (cosine = dot product).

Blocked matrix products, never an all-pairs Python loop and never an n x n matrix: rows go in
blocks of `BLOCK`, the other side in chunks of `CHUNK`, so memory stays at tens of MB whatever n
is. (faiss's flat index does the same exact products; numpy's BLAS is as fast here and lets the
dedup compare each block against the *kept* texts only, which is what the rule needs.)

Why two precisions: float32 BLAS products are fast, but their last bits depend on how the
library tiles and threads a product, so a pair sitting at the threshold could flip with the
block size or the machine. The float32 products only *propose* pairs, with a margin (`SLACK`,
orders of magnitude above float32 rounding of a 384-term dot product of unit vectors); every
decision, reported similarity and tie is settled on a float64 dot product of the two vectors,
computed the same way whatever the blocking. Results are deterministic.
"""
from __future__ import annotations

import numpy as np

BLOCK = 2048  # query rows per product
CHUNK = 8192  # reference rows per product: a 2048 x 8192 float32 block is 64 MB
SLACK = 1e-4  # float32 candidates within this of a bound are rechecked in float64
_PAIRS_PER_RECHECK = 8192  # float64 rows gathered at a time (2 x 25 MB)


def _exact_dot(a: np.ndarray, b: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """float64 dot products a[rows[k]] . b[cols[k]], in pieces so the gathered rows stay small."""
    out = np.empty(len(rows), dtype=np.float64)
    for lo in range(0, len(rows), _PAIRS_PER_RECHECK):
        r, c = rows[lo:lo + _PAIRS_PER_RECHECK], cols[lo:lo + _PAIRS_PER_RECHECK]
        out[lo:lo + len(r)] = np.einsum("ij,ij->i", a[r].astype(np.float64), b[c].astype(np.float64))
    return out


def _as_matrix(emb: np.ndarray) -> np.ndarray:
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    if emb.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D array (n, dim), got shape {emb.shape}")
    return emb


def _best_matches(query: np.ndarray, reference: np.ndarray, floor: float, best_sim: np.ndarray,
                  best_idx: np.ndarray, ref_index: np.ndarray | None = None) -> None:
    """Update, in place, each query row's most similar reference row with similarity >= floor.

    best_sim (float64, -inf while none) and best_idx are per query row. Reference rows are
    visited in ascending order and a later one must be strictly more similar to win, so ties go
    to the smaller index. `ref_index` maps reference rows to the caller's indices.
    """
    if not len(query) or not len(reference):
        return
    every = np.arange(len(query))
    for lo in range(0, len(reference), CHUNK):
        sims = query @ reference[lo:lo + CHUNK].T
        top = sims.argmax(axis=1)
        top_sim = sims[every, top]
        # Worth an exact check: a pair that can reach the floor and can beat (or tie) the best so far.
        bound = np.maximum(np.maximum(best_sim, floor), top_sim) - SLACK
        live = top_sim >= bound
        if not live.any():
            continue
        # Usually only the top column is within SLACK of the bound; a full scan of the block (np.nonzero)
        # costs as much as the product itself, so only rows with a runner-up that close are scanned.
        sims[every, top] = -np.inf
        crowded = np.flatnonzero(live & (sims.max(axis=1) >= bound))
        extra_rows, extra_cols = np.nonzero(sims[crowded] >= bound[crowded, None])
        rows = np.r_[np.flatnonzero(live), crowded[extra_rows]]
        cols = np.r_[top[live], extra_cols]
        exact = _exact_dot(query, reference, rows, cols + lo)
        ok = exact >= floor
        rows, cols, exact = rows[ok], cols[ok] + lo, exact[ok]
        if not len(rows):
            continue
        # This chunk's best per row: order by (row, -similarity, column), take each row's first.
        order = np.lexsort((cols, -exact, rows))
        rows, cols, exact = rows[order], cols[order], exact[order]
        first = np.r_[True, rows[1:] != rows[:-1]]
        rows, cols, exact = rows[first], cols[first], exact[first]
        better = exact > best_sim[rows]
        best_sim[rows[better]] = exact[better]
        best_idx[rows[better]] = cols[better] if ref_index is None else ref_index[cols[better]]


def semantic_duplicates(emb: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keep-first semantic dedup: a text is dropped when its cosine to an earlier *kept* text is >= threshold.

    Returns (keep bool, duplicate_of int64, similarity float64): for a dropped text, its most
    similar earlier kept text (ties: the earlier one) and their cosine; -1 and NaN for a kept
    text. A dropped text never causes another drop, so A~B and B~C do not chain C onto A.
    Rows must be L2-normalised (what `embeddings.embed` returns).
    """
    emb = _as_matrix(emb)
    n = len(emb)
    keep = np.ones(n, dtype=bool)
    duplicate_of = np.full(n, -1, dtype=np.int64)
    best_sim = np.full(n, -np.inf)
    for lo in range(0, n, BLOCK):
        hi = min(lo + BLOCK, n)
        block = emb[lo:hi]
        sim, idx = best_sim[lo:hi], duplicate_of[lo:hi]  # views, updated in place
        # 1. Against every kept text of the earlier blocks (all decided already).
        kept_before = np.flatnonzero(keep[:lo])
        _best_matches(block, emb[kept_before], threshold, sim, idx, kept_before)
        # 2. Within the block, in order: whether row r is kept depends on the rows before it only.
        candidates = np.tril(block @ block.T >= threshold - SLACK, k=-1)
        block_keep = sim < threshold
        for r in np.flatnonzero(candidates.any(axis=1)):
            cols = np.flatnonzero(candidates[r, :r] & block_keep[:r])
            if cols.size:
                exact = _exact_dot(block, block, np.full(cols.size, r), cols)
                j = int(np.argmax(exact))  # the first maximum: the earlier of tied texts
                # Strictly greater: on a tie, a match from an earlier block (smaller index) stays.
                if exact[j] >= threshold and exact[j] > sim[r]:
                    sim[r], idx[r] = exact[j], lo + cols[j]
            block_keep[r] = sim[r] < threshold
        keep[lo:hi] = block_keep
    return keep, duplicate_of, np.where(keep, np.nan, best_sim)


def nearest_similarity(query_emb: np.ndarray, reference_emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each query's most similar reference row, e.g. a synthetic text's closest real training text.

    Returns (index int64, cosine float64); ties go to the smaller reference index. With an empty
    reference every index is -1 and every similarity NaN.
    """
    query, reference = _as_matrix(query_emb), _as_matrix(reference_emb)
    index = np.full(len(query), -1, dtype=np.int64)
    similarity = np.full(len(query), -np.inf)
    for lo in range(0, len(query), BLOCK):
        _best_matches(query[lo:lo + BLOCK], reference, -np.inf, similarity[lo:lo + BLOCK], index[lo:lo + BLOCK])
    similarity[index < 0] = np.nan
    return index, similarity
