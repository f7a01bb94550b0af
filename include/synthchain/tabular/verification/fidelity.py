"""Statistical fidelity, scored the way SDMetrics' QualityReport scores it.

Column shapes: KS complement (continuous) or TV complement (categorical).
Column pair trends: correlation similarity for continuous pairs, contingency
similarity (continuous columns binned) for every other pair. The overall score
is the mean of the two property averages.
"""
from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

from ..dtypes import to_float
from ..profile import Profile

N_BINS = 10


def _is_continuous(profile: Profile, name: str) -> bool:
    return profile.columns[name].kind in ("numeric", "integer", "datetime")


def column_shapes(real: pd.DataFrame, synth: pd.DataFrame, profile: Profile) -> dict[str, float]:
    scores = {}
    for name in profile.columns:
        if _is_continuous(profile, name):
            r, s = to_float(real[name]), to_float(synth[name])
            r, s = r[~np.isnan(r)], s[~np.isnan(s)]
            scores[name] = 1.0 - float(ks_2samp(r, s).statistic) if r.size and s.size else 0.0
        else:
            pr = real[name].astype(str).value_counts(normalize=True)
            ps = synth[name].astype(str).value_counts(normalize=True)
            scores[name] = 1.0 - 0.5 * float(pr.subtract(ps, fill_value=0.0).abs().sum())
    return scores


def _codes(real: pd.Series, synth: pd.Series, continuous: bool) -> tuple[np.ndarray, np.ndarray, int]:
    if continuous:
        r, s = to_float(real), to_float(synth)
        finite = r[~np.isnan(r)]
        edges = np.unique(np.quantile(finite, np.linspace(0, 1, N_BINS + 1))[1:-1]) if finite.size else np.array([])
        # bin index; missing gets its own bin at the end
        rc = np.where(np.isnan(r), edges.size + 1, np.searchsorted(edges, r, side="right"))
        sc = np.where(np.isnan(s), edges.size + 1, np.searchsorted(edges, s, side="right"))
        return rc, sc, edges.size + 2
    cats = pd.Index(pd.unique(pd.concat([real, synth]).astype(str)))
    return cats.get_indexer(real.astype(str)), cats.get_indexer(synth.astype(str)), len(cats)


def column_pair_trends(real: pd.DataFrame, synth: pd.DataFrame, profile: Profile) -> dict[str, float]:
    names = list(profile.columns)
    codes = {n: _codes(real[n], synth[n], _is_continuous(profile, n)) for n in names}
    floats = {n: (to_float(real[n]), to_float(synth[n])) for n in names if _is_continuous(profile, n)}
    scores = {}
    for a, b in combinations(names, 2):
        if a in floats and b in floats:
            ra, sa = floats[a]
            rb, sb = floats[b]
            cr = _nan_corr(ra, rb)
            cs = _nan_corr(sa, sb)
            if not (np.isnan(cr) or np.isnan(cs)):
                scores[f"{a}|{b}"] = 1.0 - abs(cr - cs) / 2.0
                continue
        (ra, sa, ka), (rb, sb, kb) = codes[a], codes[b]
        pr = np.bincount(ra * kb + rb, minlength=ka * kb) / ra.size
        ps = np.bincount(sa * kb + sb, minlength=ka * kb) / sa.size
        scores[f"{a}|{b}"] = 1.0 - 0.5 * float(np.abs(pr - ps).sum())
    return scores


def _nan_corr(x: np.ndarray, y: np.ndarray) -> float:
    ok = ~(np.isnan(x) | np.isnan(y))
    if ok.sum() < 3 or np.std(x[ok]) == 0 or np.std(y[ok]) == 0:
        return float("nan")
    return float(np.corrcoef(x[ok], y[ok])[0, 1])


def quality_report(real: pd.DataFrame, synth: pd.DataFrame, profile: Profile) -> dict:
    shapes = column_shapes(real, synth, profile)
    pairs = column_pair_trends(real, synth, profile)
    shape_score = float(np.mean(list(shapes.values()))) if shapes else 0.0
    pair_score = float(np.mean(list(pairs.values()))) if pairs else shape_score
    return {
        "quality_score": (shape_score + pair_score) / 2.0,
        "column_shapes": shape_score,
        "column_pair_trends": pair_score,
        "column_shape_scores": shapes,
        "worst_pairs": dict(sorted(pairs.items(), key=lambda kv: kv[1])[:10]),
    }
