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

from dataclasses import dataclass

import numpy as np
import pandas as pd

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


MAX_PARTNERS = 32  # per row, its most similar and its earliest earlier partners kept (each up to this many)


@dataclass(frozen=True)
class SemanticPairs:
    """Candidate semantic duplicates: (earlier, later) row pairs with cosine >= threshold, settled in float64.

    Built per shard of rows (`semantic_pairs(emb, threshold, start, stop)`: each row against every row
    before it), so the all-pairs products of a pool split over workers; `resolve` then applies the
    keep-first rule to any ordered subset of the rows in one pass over the pairs. A row of a big
    cluster can have thousands of partners: it keeps its MAX_PARTNERS most similar and its MAX_PARTNERS
    earliest (the rows keep-first tends to keep: a cluster's first member), and is flagged `truncated`.
    `resolve` settles what the listed partners cannot, against the kept rows themselves.
    """
    left: np.ndarray  # int64: the earlier row
    right: np.ndarray  # int64: the later row
    similarity: np.ndarray  # float64 cosine, >= threshold
    truncated: np.ndarray  # int64 rows with partners left out
    threshold: float

    @classmethod
    def empty(cls, threshold: float) -> "SemanticPairs":
        none = np.empty(0, dtype=np.int64)
        return cls(none, none, np.empty(0), none, threshold)

    @classmethod
    def concat(cls, parts: list["SemanticPairs"], threshold: float) -> "SemanticPairs":
        if any(p.threshold != threshold for p in parts):
            raise ValueError(f"semantic pairs found at thresholds {sorted({p.threshold for p in parts})}, "
                             f"not {threshold}: search the pairs again")
        if not parts:
            return cls.empty(threshold)
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("left", "right", "similarity",
                                                                               "truncated")), threshold)

    def frame(self) -> pd.DataFrame:
        """One Parquet-able table: pairs, then each truncated row as (-1, row, NaN)."""
        cut = len(self.truncated)
        return pd.DataFrame({"left": np.r_[self.left, np.full(cut, -1)], "right": np.r_[self.right, self.truncated],
                             "similarity": np.r_[self.similarity, np.full(cut, np.nan)], "threshold": self.threshold})

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, threshold: float) -> "SemanticPairs":
        found = set(frame["threshold"].unique().tolist()) if len(frame) else {threshold}
        if found != {threshold}:
            raise ValueError(f"semantic pairs found at threshold {sorted(found)}, not {threshold}")
        left, right = frame["left"].to_numpy(np.int64), frame["right"].to_numpy(np.int64)
        cut = left < 0
        return cls(left[~cut], right[~cut], frame["similarity"].to_numpy(float)[~cut], right[cut], threshold)

    def within(self, rows: np.ndarray) -> "SemanticPairs":
        """The pairs among `rows` (ascending), renumbered 0..len(rows)-1 in that order."""
        rows = np.asarray(rows, dtype=np.int64)

        def local(index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            at = np.searchsorted(rows, index)
            inside = at < len(rows)
            inside[inside] = rows[at[inside]] == index[inside]
            return at, inside

        left_at, left_in = local(self.left)
        right_at, right_in = local(self.right)
        both = left_in & right_in
        cut_at, cut_in = local(self.truncated)
        return SemanticPairs(left_at[both], right_at[both], self.similarity[both], cut_at[cut_in],
                             self.threshold)


def _ranks(group: np.ndarray) -> np.ndarray:
    """Position of each entry within its run of equal `group` values (group sorted)."""
    if not len(group):
        return np.empty(0, dtype=np.int64)
    first = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    return np.arange(len(group)) - np.repeat(first, np.diff(np.r_[first, len(group)]))


def _listed(left: np.ndarray, right: np.ndarray, sim: np.ndarray, max_partners: int) -> np.ndarray:
    """Which pairs a row lists: its max_partners most similar (ties to the earlier) and its max_partners
    earliest. Pruning a part of a row's pairs this way first keeps every pair that pruning all of them would
    keep."""
    by_similarity = np.lexsort((left, -sim, right))
    top = np.zeros(len(right), dtype=bool)
    top[by_similarity] = _ranks(right[by_similarity]) < max_partners
    by_position = np.lexsort((left, right))
    earliest = np.zeros(len(right), dtype=bool)
    earliest[by_position] = _ranks(right[by_position]) < max_partners
    return top | earliest


def semantic_pairs(emb: np.ndarray, threshold: float, start: int = 0, stop: int | None = None,
                   max_partners: int = MAX_PARTNERS) -> SemanticPairs:
    """Rows start..stop against every earlier row: the pairs with cosine >= threshold (float32 proposes with
    SLACK, float64 decides); per row its `max_partners` most similar (ties: the earlier) and earliest. A
    block's pairs are pruned to those as they come, so a big cluster costs memory per row, not per pair."""
    emb = _as_matrix(emb)
    stop = len(emb) if stop is None else min(stop, len(emb))
    parts, truncated = [], []
    bound = threshold - SLACK
    prune_at = 8 * BLOCK * max_partners
    for lo in range(start, stop, BLOCK):
        hi = min(lo + BLOCK, stop)
        block = emb[lo:hi]
        left, right, sim = (np.empty(0, dtype=np.int64),) * 2 + (np.empty(0),)
        counts = np.zeros(hi - lo, dtype=np.int64)
        for ref_lo in range(0, hi, CHUNK):
            ref_hi = min(ref_lo + CHUNK, hi)
            product = block @ emb[ref_lo:ref_hi].T
            if ref_hi > lo:  # the block's own rows and later ones: only earlier rows are partners
                product[np.arange(hi - lo)[:, None] + lo <= np.arange(ref_lo, ref_hi)[None, :]] = -np.inf
            # a full scan of the product costs as much as the product: only rows with a candidate are scanned
            crowded = np.flatnonzero(product.max(axis=1) >= bound)
            if not crowded.size:
                continue
            r, c = np.nonzero(product[crowded] >= bound)
            rows, cols = (crowded[r] + lo).astype(np.int64), (c + ref_lo).astype(np.int64)
            exact = _exact_dot(emb, emb, rows, cols)
            ok = exact >= threshold
            counts += np.bincount(rows[ok] - lo, minlength=hi - lo)
            left, right, sim = np.r_[left, cols[ok]], np.r_[right, rows[ok]], np.r_[sim, exact[ok]]
            if len(right) > prune_at:
                keep = _listed(left, right, sim, max_partners)
                left, right, sim = left[keep], right[keep], sim[keep]
        keep = _listed(left, right, sim, max_partners)
        parts.append((left[keep], right[keep], sim[keep]))
        truncated.append(np.flatnonzero(counts > max_partners) + lo)
    if not parts:
        return SemanticPairs.empty(threshold)
    return SemanticPairs(*(np.concatenate([p[k] for p in parts]) for k in range(3)), np.concatenate(truncated),
                         threshold)


def resolve(pairs: SemanticPairs, emb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The keep-first rule over the rows `pairs` is numbered for (`emb`'s rows, in order): a row is dropped when
    its cosine to an earlier *kept* row reaches the threshold. Returns what `semantic_duplicates` returns.

    Rows go in order over their listed partners, most similar first; the first kept one settles the row. The
    verdict is always exact. The kept row it names is the most similar of all when the row's partners were
    all listed or that partner is among its MAX_PARTNERS most similar (every left-out one is less similar);
    otherwise (a row of a big cluster whose most similar partners were all dropped) it is the most similar
    *listed* kept partner, a true duplicate at its exact cosine, not necessarily the closest kept row:
    finding that one took a product against every kept row per such row, most of a corpus-scale filter pass.
    A truncated row with no listed partner kept (its listed partners were dropped, often by an earlier
    filter) is checked against the kept rows: the truncated rows of the next BLOCK positions in one product
    against the rows kept so far, then each against the few rows kept since.
    """
    emb = _as_matrix(emb)
    n, threshold = len(emb), pairs.threshold
    keep = np.ones(n, dtype=bool)
    duplicate_of = np.full(n, -1, dtype=np.int64)
    similarity = np.full(n, np.nan)
    order = np.lexsort((pairs.left, -pairs.similarity, pairs.right))
    left, right = pairs.left[order].tolist(), pairs.right[order].tolist()
    sim = pairs.similarity[order].tolist()
    truncated = set(pairs.truncated.tolist())
    starts: dict[int, int] = {}
    for k, r in enumerate(right):
        starts.setdefault(r, k)
    truncated_sorted, fallback = np.array(sorted(truncated), dtype=np.int64), {}
    for r in sorted(set(starts) | truncated):
        k = starts.get(r)
        while k is not None and k < len(right) and right[k] == r:
            if keep[left[k]]:
                keep[r], duplicate_of[r], similarity[r] = False, left[k], sim[k]
                break
            k += 1
        if keep[r] and r in truncated:  # partners were left out and none listed is kept: ask the kept rows
            if r not in fallback:
                fallback = _best_kept_before(emb, keep, r, [t for t in truncated_sorted[
                    np.searchsorted(truncated_sorted, r):np.searchsorted(truncated_sorted, r + BLOCK)].tolist()],
                    threshold)
            since, (best, best_at) = fallback[r]
            later = since + np.flatnonzero(keep[since:r])  # kept after the batch's products were taken
            if later.size:
                exact = _exact_dot(emb, emb, np.full(later.size, r), later)
                j = int(np.argmax(exact))  # the first maximum: the earlier of tied rows
                if exact[j] >= threshold and exact[j] > best:
                    best, best_at = float(exact[j]), int(later[j])
            if best_at >= 0:
                keep[r], duplicate_of[r], similarity[r] = False, best_at, best
    return keep, duplicate_of, similarity


def _best_kept_before(emb: np.ndarray, keep: np.ndarray, r: int, rows: list[int], threshold: float
                      ) -> dict[int, tuple[int, tuple[float, int]]]:
    """For rows (all >= r), their most similar kept row before r with cosine >= threshold, in one product:
    row -> (r, (cosine or -inf, index or -1)). Rows r.. are still being decided: the caller checks those."""
    kept = np.flatnonzero(keep[:r])
    query = np.array(rows, dtype=np.int64)
    best_sim, best_idx = np.full(len(query), -np.inf), np.full(len(query), -1, dtype=np.int64)
    _best_matches(emb[query], emb[kept], threshold, best_sim, best_idx, kept)
    return {int(q): (r, (float(s), int(i))) for q, s, i in zip(query, best_sim, best_idx)}


def semantic_duplicates(emb: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keep-first semantic dedup: a text is dropped when its cosine to an earlier *kept* text is >= threshold.

    Returns (keep bool, duplicate_of int64, similarity float64): for a dropped text, its most
    similar earlier kept text (ties: the earlier one; in a cluster of over MAX_PARTNERS texts, see
    `resolve`) and their cosine; -1 and NaN for a kept text. A dropped text never causes another
    drop, so A~B and B~C do not chain C onto A.
    Rows must be L2-normalised (what `embeddings.embed` returns). The pairs are searched in one
    go here; the pipeline searches them by shard (`semantic_pairs`) and resolves them the same way.
    """
    emb = _as_matrix(emb)
    return resolve(semantic_pairs(emb, threshold), emb)


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
