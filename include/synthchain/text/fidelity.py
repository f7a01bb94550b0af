"""Dataset-level fidelity of synthetic text against real text: lengths, word frequencies, embeddings.

Each measure is a small function of token lists or L2-normalised sentence embeddings (from
`embeddings.embed`); `fidelity_report` puts them side by side. The functions return NaN where
a measure is undefined (too few texts); the report turns that into None, which stores as JSON null.
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from itertools import chain

import numpy as np
from scipy import linalg
from scipy.spatial.distance import jensenshannon
from scipy.stats import ks_2samp
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .tokens import tokenize_all

ZIPF_TOP_RANKS = 1000  # the rank-frequency line is fitted where it is straight; the hapax tail is flat steps
DETECTION_FOLDS = 3
MIN_PER_CLASS = 10  # fewer real or synthetic texts than this: no detection classifier


def length_similarity(real_lengths: Sequence[int], synth_lengths: Sequence[int]) -> tuple[float, float]:
    """(1 - KS statistic, KS statistic) of two samples of token lengths; 1 means identical distributions."""
    if not len(real_lengths) or not len(synth_lengths):
        return math.nan, math.nan
    ks = float(ks_2samp(real_lengths, synth_lengths).statistic)
    return 1.0 - ks, ks


def zipf_exponent(counts: np.ndarray, top_ranks: int = ZIPF_TOP_RANKS) -> float:
    """Zipf exponent s of frequency ~ rank^-s: least squares on log frequency vs log rank over the top ranks."""
    freq = np.sort(np.asarray(counts, dtype=float)[np.asarray(counts) > 0])[::-1][:top_ranks]
    if freq.size < 3:
        return math.nan
    slope, _ = np.polyfit(np.log(np.arange(1, freq.size + 1)), np.log(freq), 1)
    return float(-slope)


def _unigram_counts(tokens) -> Counter:
    """Counts from token lists per text (what `tokenize_all` returns) or from one flat token list."""
    tokens = list(tokens)
    flat = tokens if not tokens or isinstance(tokens[0], str) else chain.from_iterable(tokens)
    return Counter(flat)


def zipf_similarity(real_tokens, synth_tokens) -> dict[str, float]:
    """Rank-frequency fidelity: 1 - Jensen-Shannon distance (base 2, in [0, 1]) of the unigram
    distributions over the union vocabulary, and each side's fitted Zipf exponent.

    The JS part compares *which* words are frequent; the exponents compare how steeply
    frequency falls with rank (a collapsing generator repeats its top words: a steeper slope).
    """
    real, synth = _unigram_counts(real_tokens), _unigram_counts(synth_tokens)
    vocab = list(real.keys() | synth.keys())
    p = np.fromiter((real[w] for w in vocab), dtype=float, count=len(vocab))
    q = np.fromiter((synth[w] for w in vocab), dtype=float, count=len(vocab))
    distance = float(jensenshannon(p / p.sum(), q / q.sum(), base=2)) if p.sum() and q.sum() else math.nan
    return {"zipf_js_similarity": 1.0 - distance, "zipf_js_distance": distance,
            "zipf_exponent_real": zipf_exponent(p), "zipf_exponent_synthetic": zipf_exponent(q)}


def frechet_distance(real_emb: np.ndarray, synth_emb: np.ndarray) -> float:
    """Fréchet distance between Gaussian fits of two embedding sets (FID's formula):
    |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^1/2). 0 for identical fits; biased upwards by small samples."""
    if len(real_emb) < 2 or len(synth_emb) < 2:
        return math.nan
    x, y = np.asarray(real_emb, dtype=np.float64), np.asarray(synth_emb, dtype=np.float64)
    mu1, mu2 = x.mean(axis=0), y.mean(axis=0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():
        # Singular covariances (fewer texts than dimensions): nudge both off singularity, as FID code does.
        offset = np.eye(len(s1)) * 1e-6
        covmean = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    # S1 S2 is not symmetric, so sqrtm may come back complex; the imaginary part is rounding noise.
    covmean = np.real(covmean)
    value = float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))
    return max(value, 0.0)


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T, 0.0)


def mmd_rbf(real_emb: np.ndarray, synth_emb: np.ndarray, gamma: float | None = None, max_n: int = 2000,
            seed: int = 0) -> float:
    """Unbiased MMD^2 with k(a, b) = exp(-gamma |a - b|^2), each side subsampled to max_n (memory is O(max_n^2)).

    gamma defaults to the median heuristic, 1 / median squared distance over the pooled sample,
    so the kernel neither saturates nor vanishes whatever the embedding scale. The unbiased
    estimate is about 0 (can be slightly negative) for samples of one distribution.
    """
    rng = np.random.default_rng(seed % 2**32)
    x = np.asarray(real_emb, dtype=np.float64)[np.sort(rng.permutation(len(real_emb))[:max_n])]
    y = np.asarray(synth_emb, dtype=np.float64)[np.sort(rng.permutation(len(synth_emb))[:max_n])]
    m, n = len(x), len(y)
    if m < 2 or n < 2:
        return math.nan
    dxx, dyy, dxy = _sq_dists(x, x), _sq_dists(y, y), _sq_dists(x, y)
    if gamma is None:
        pooled = np.concatenate([dxx[np.triu_indices(m, 1)], dyy[np.triu_indices(n, 1)], dxy.ravel()])
        median = float(np.median(pooled))
        gamma = 1.0 / median if median > 0 else 1.0
    kxx, kyy, kxy = np.exp(-gamma * dxx), np.exp(-gamma * dyy), np.exp(-gamma * dxy)
    # Unbiased: the diagonals (a text with itself, always 1) are left out of the within-sample means.
    return float((kxx.sum() - m) / (m * (m - 1)) + (kyy.sum() - n) / (n * (n - 1)) - 2.0 * kxy.mean())


def detection_auc(real_emb: np.ndarray, synth_emb: np.ndarray, seed: int = 0,
                  max_synthetic: int | None = None) -> tuple[float | None, np.ndarray]:
    """How well a classifier tells synthetic from real texts by their embeddings: (ROC AUC, p(synthetic) per synthetic text).

    Logistic regression on standardised embeddings (unit-norm vectors have tiny components, so
    unscaled they would be all but muted by the L2 penalty), class_weight balanced for unequal
    counts. Predictions are out of fold over shuffled stratified folds, so no text is judged by
    a model that saw it. AUC 0.5: indistinguishable; 1.0: every synthetic text is recognisable.
    With fewer than MIN_PER_CLASS texts on a side: (None, NaN per synthetic text).

    `max_synthetic`: at corpus scale the classifier learns from a seeded sample of that many
    synthetic texts (the caller samples the real side); the AUC is measured out of fold on the
    sample, and every other synthetic text is scored by the model fitted on the whole sample.
    """
    real_emb, synth_emb = np.asarray(real_emb, dtype=np.float32), np.asarray(synth_emb, dtype=np.float32)
    if len(real_emb) < MIN_PER_CLASS or len(synth_emb) < MIN_PER_CLASS:
        return None, np.full(len(synth_emb), np.nan)
    judged = np.arange(len(synth_emb))
    if max_synthetic is not None and len(synth_emb) > max_synthetic:
        judged = np.sort(np.random.default_rng(seed).permutation(len(synth_emb))[:max_synthetic])
    x = np.vstack([real_emb, synth_emb[judged]])
    y = np.r_[np.zeros(len(real_emb)), np.ones(len(judged))]
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000))
    # Shuffled folds: unshuffled ones would hold out whole blocks (e.g. one generator's texts) unseen.
    folds = StratifiedKFold(n_splits=DETECTION_FOLDS, shuffle=True, random_state=seed % 2**32)
    proba = cross_val_predict(model, x, y, cv=folds, method="predict_proba")[:, 1]
    out = np.empty(len(synth_emb))
    out[judged] = proba[len(real_emb):]
    rest = np.setdiff1d(np.arange(len(synth_emb)), judged)
    if rest.size:
        out[rest] = model.fit(x, y).predict_proba(synth_emb[rest])[:, 1]
    return float(roc_auc_score(y, proba)), out


def _none_if_nan(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def fidelity_report(real_texts: Sequence[str], synth_texts: Sequence[str], real_emb: np.ndarray,
                    synth_emb: np.ndarray, seed: int = 0, auc: float | None = None) -> dict[str, float | None]:
    """All the fidelity figures of a synthetic text set against the real one (None where undefined).

    `auc`: a detection AUC already computed by `detection_auc` on these embeddings (the
    verification hop needs its per-text probabilities too); given, the classifier is not trained twice.
    """
    real_tokens, synth_tokens = tokenize_all(real_texts), tokenize_all(synth_texts)
    similarity, ks = length_similarity([len(t) for t in real_tokens], [len(t) for t in synth_tokens])
    zipf = zipf_similarity(real_tokens, synth_tokens)
    if auc is None:
        auc, _ = detection_auc(real_emb, synth_emb, seed=seed)
    report = {
        "length_ks": ks,
        "length_similarity": similarity,
        "zipf_js_similarity": zipf["zipf_js_similarity"],
        "zipf_exponent_real": zipf["zipf_exponent_real"],
        "zipf_exponent_synthetic": zipf["zipf_exponent_synthetic"],
        "frechet_distance": frechet_distance(real_emb, synth_emb),
        "mmd_rbf": mmd_rbf(real_emb, synth_emb, seed=seed),
        "detection_auc": auc,
    }
    return {k: _none_if_nan(v) for k, v in report.items()}
