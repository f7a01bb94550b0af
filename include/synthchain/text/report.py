"""Report sections for a text version: plots embedded as PNG, examples and leak findings as tables."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from ..report import REAL, SYNTH, html_table, plt, png_uri
from .diversity import CorpusCounts, vocabulary_growth
from .profile import TextProfile
from .tokens import TokenView

EXAMPLES = 8
PROJECTION_POINTS = 1000


def length_plot(real: pd.DataFrame, synth: pd.DataFrame, profile: TextProfile) -> str:
    cols = profile.text_columns
    fig, axes = plt.subplots(1, len(cols), figsize=(4.5 * len(cols), 3), squeeze=False)
    for ax, col in zip(axes.flat, cols):
        r = np.fromiter((len(t) for t in TokenView(real[col].astype(str).tolist())), dtype=float, count=len(real))
        s = np.fromiter((len(t) for t in TokenView(synth[col].astype(str).tolist())), dtype=float, count=len(synth))
        hi = np.quantile(np.r_[r, s], 0.99) if r.size + s.size else 1
        bins = np.linspace(0, max(hi, 1), 40)
        ax.hist(r, bins=bins, alpha=0.55, density=True, color=REAL, label="real")
        ax.hist(s, bins=bins, alpha=0.55, density=True, color=SYNTH, label="synthetic")
        ax.set_title(f"{col}: tokens per text", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return png_uri(fig)


def zipf_plot(real_tokens: list[list[str]] | CorpusCounts, synth_tokens: list[list[str]]) -> str:
    """Rank-frequency of both corpora; a real corpus counted once for the run (`CorpusCounts`) is not re-read."""
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    for tokens, color, label in ((real_tokens, REAL, "real"), (synth_tokens, SYNTH, "synthetic")):
        freq = tokens.word_counts.astype(float) if isinstance(tokens, CorpusCounts) else \
            np.array(sorted(Counter(t for text in tokens for t in text).values(), reverse=True), dtype=float)
        if freq.size:
            ax.loglog(np.arange(1, freq.size + 1), freq / freq.sum(), color=color, label=label)
    ax.set_xlabel("rank")
    ax.set_ylabel("frequency")
    ax.legend(fontsize=7)
    return png_uri(fig)


def growth_plot(real_tokens: list[list[str]] | CorpusCounts, synth_tokens: list[list[str]]) -> str:
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    for tokens, color, label in ((real_tokens, REAL, "real"), (synth_tokens, SYNTH, "synthetic")):
        if isinstance(tokens, CorpusCounts) or tokens:
            n, v = vocabulary_growth(tokens)
            ax.plot(n, v, color=color, label=label)
    ax.set_xlabel("tokens seen")
    ax.set_ylabel("vocabulary")
    ax.legend(fontsize=7)
    return png_uri(fig)


def projection_plot(real_emb: np.ndarray, synth_emb: np.ndarray, seed: int) -> str:
    """Both sets on the first two principal axes of the real embeddings."""
    rng = np.random.default_rng(seed % 2**32)
    r = real_emb[rng.permutation(len(real_emb))[:PROJECTION_POINTS]]
    s = synth_emb[rng.permutation(len(synth_emb))[:PROJECTION_POINTS]]
    fig, ax = plt.subplots(figsize=(4.5, 4))
    if len(r) > 2:
        center = r.mean(axis=0)
        _, _, vt = np.linalg.svd(r - center, full_matrices=False)
        for points, color, label in ((r, REAL, "real"), (s, SYNTH, "synthetic")):
            xy = (points - center) @ vt[:2].T
            ax.scatter(xy[:, 0], xy[:, 1], s=4, alpha=0.5, color=color, label=label)
        ax.legend(fontsize=7, markerscale=3)
    ax.set_title("sentence embeddings, first 2 principal axes (real)", fontsize=8)
    return png_uri(fig)


def label_plot(real: pd.DataFrame, synth: pd.DataFrame, label: str) -> str:
    r = real[label].astype(str).value_counts()
    s = synth[label].astype(str).value_counts().reindex(r.index).fillna(0)
    fig, ax = plt.subplots(figsize=(4.5, 3))
    x = np.arange(len(r))
    ax.bar(x - 0.2, r.values, 0.4, color=REAL, label="real")
    ax.bar(x + 0.2, s.values, 0.4, color=SYNTH, label="synthetic")
    ax.set_xticks(x, r.index, fontsize=7)
    ax.set_ylabel("records")
    ax.legend(fontsize=7)
    return png_uri(fig)


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def examples_table(real: pd.DataFrame, synth: pd.DataFrame, profile: TextProfile, seed: int) -> str:
    rng = np.random.default_rng(seed % 2**32)
    r = real.iloc[rng.permutation(len(real))[:EXAMPLES]].reset_index(drop=True)
    s = synth.iloc[rng.permutation(len(synth))[:EXAMPLES]].reset_index(drop=True)
    rows = []
    for i in range(max(len(r), len(s))):
        row = {}
        for name, frame in (("real", r), ("synthetic", s)):
            if i < len(frame):
                text = " | ".join(f"{role}: {frame.loc[i, col]}" if len(profile.roles) > 1 else str(frame.loc[i, col])
                                  for role, col in profile.roles.items())
                label = f"[{frame.loc[i, profile.label_column]}] " if profile.label_column else ""
                row[name] = _short(label + text)
        rows.append(row)
    return html_table(rows, ["real", "synthetic"])


def leak_findings(checks: pd.DataFrame, verification: dict) -> str:
    summary = [{"figure": k, "value": verification.get(k)} for k in
               ("memorised_share", "max_memorised_span", "contaminated_share", "exact_duplicate_rate",
                "near_duplicate_rate")]
    per_set = [{"eval set": name, **figures} for name, figures in (verification.get("contamination") or {}).items()]
    worst = checks.sort_values("memorised_span", ascending=False).head(5)
    worst_rows = [{"row": r["_sc_row_id"], "span (tokens)": r["memorised_span"], "real text": r["memorised_reference"],
                   "contaminated by": r["contaminated_by"] or "—"} for _, r in worst.iterrows() if r["memorised_span"] > 0]
    columns = sorted({k for row in per_set for k in row}, key=lambda k: (k != "eval set", k))
    return (html_table(summary, ["figure", "value"])
            + "<h3>Contamination by eval set (all generated texts, before filtering)</h3>"
            + (html_table(per_set, columns) if per_set else "<p>No eval sets.</p>")
            + "<h3>Longest verbatim spans shared with real training texts</h3>"
            + (html_table(worst_rows, ["row", "span (tokens)", "real text", "contaminated by"]) if worst_rows
               else "<p>No generated text shares a token span with a real training text.</p>"))


def drop_reasons(dropped: pd.DataFrame, profile: TextProfile) -> str:
    """Per filter: how many texts it dropped and a few of them with their reasons."""
    if dropped.empty:
        return "<p>No text was dropped.</p>"
    rows = []
    for name, group in dropped.groupby("_sc_filter", sort=False):
        for _, row in group.head(3).iterrows():
            text = " | ".join(str(row[col]) for col in profile.text_columns)
            rows.append({"filter": name, "dropped": len(group), "reason": row["_sc_reason"], "text": _short(text, 160)})
    return html_table(rows, ["filter", "dropped", "reason", "text"])


def sampling_section(verification: dict) -> list[tuple[str, str]]:
    """Which figures were measured on a seeded sample rather than every row (corpus-scale runs only)."""
    sampled = verification.get("sampled_rows") or {}
    if not sampled or (sampled["real_embedded"] == sampled["real"]
                       and sampled["synthetic_embedded"] == sampled["synthetic"]
                       and sampled["label_judge_trained_on"] in (0, sampled["real"])):
        return []
    rows = [{"measured on": "sentence embeddings: fidelity (Fréchet, MMD), embedding diversity, the detection "
                            "classifier's training set", "real rows": f"{sampled['real_embedded']:,} of {sampled['real']:,}",
             "synthetic rows": f"{sampled['synthetic_embedded']:,} of {sampled['synthetic']:,}"},
            {"measured on": "the label-consistency judge's training set",
             "real rows": f"{sampled['label_judge_trained_on']:,} of {sampled['real']:,}", "synthetic rows": "every row judged"},
            {"measured on": "n-gram figures: memorisation, contamination, distinct-n, vocabulary, tail coverage; "
                            "exact and near dedup; detection scores", "real rows": "every row",
             "synthetic rows": "every row"}]
    return [("Measured on samples (corpus scale)",
             "<p>Seeded samples, the same in every hop of the run; the sizes are set by <code>text.sample_rows</code> "
             "and <code>text.classifier_rows</code>.</p>" + html_table(rows, ["measured on", "real rows", "synthetic rows"]))]


def text_sections(*, real: pd.DataFrame, synth: pd.DataFrame, profile: TextProfile, real_texts: list[str],
                  synth_texts: list[str], real_emb: np.ndarray, synth_emb: np.ndarray, checks: pd.DataFrame,
                  verification: dict, dropped: pd.DataFrame, seed: int,
                  real_counts: CorpusCounts | None = None) -> list[tuple[str, str]]:
    # a real corpus counted once for the run is not tokenised again; otherwise texts are read a batch at a time
    real_tokens = real_counts if real_counts is not None else TokenView(real_texts)
    synth_tokens = TokenView(synth_texts)
    sections = [*sampling_section(verification),
        ("Text lengths (real training vs published synthetic)", f'<img src="{length_plot(real, synth, profile)}">'),
        ("Rank-frequency (Zipf)", f'<img src="{zipf_plot(real_tokens, synth_tokens)}">'),
        ("Vocabulary growth", f'<img src="{growth_plot(real_tokens, synth_tokens)}">'),
        ("Embeddings, 2-D projection", f'<img src="{projection_plot(real_emb, synth_emb, seed)}">'),
    ]
    if profile.label_column:
        sections.append(("Records per label", f'<img src="{label_plot(real, synth, profile.label_column)}">'))
    sections += [
        ("Random examples, real and synthetic", examples_table(real, synth, profile, seed)),
        ("Memorisation and contamination", leak_findings(checks, verification)),
        ("Drop reasons by filter (examples)", drop_reasons(dropped, profile)),
    ]
    return sections
