"""Tabular report sections: per-column distributions, associations, missing values, distance to closest
record and how each source column was handled. The page around them, and the table of rare classes and
slices against class weights and SMOTE (baselines.py), are report.py's."""
from __future__ import annotations

import html
import math

import numpy as np
import pandas as pd

from ..report import REAL, SYNTH, html_table, plt, png_uri
from .associations import MAX_LEVELS, MAX_ROWS, AssociationComparison, compare_associations
from .dtypes import to_float
from .profile import Profile


def distributions_plot(real: pd.DataFrame, synth: pd.DataFrame, profile: Profile) -> str:
    names = list(profile.columns)
    cols = 4
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.6 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        col = profile.columns[name]
        if col.kind in ("numeric", "integer", "datetime"):
            r, s = to_float(real[name]), to_float(synth[name])
            r, s = r[~np.isnan(r)], s[~np.isnan(s)]
            lo, hi = np.quantile(np.r_[r, s], [0.005, 0.995]) if r.size + s.size else (0, 1)
            bins = np.linspace(lo, hi if hi > lo else lo + 1, 30)
            ax.hist(r, bins=bins, alpha=0.55, density=True, color=REAL, label="real")
            ax.hist(s, bins=bins, alpha=0.55, density=True, color=SYNTH, label="synthetic")
        else:
            top = real[name].astype(str).value_counts(normalize=True).head(12)
            s = synth[name].astype(str).value_counts(normalize=True).reindex(top.index).fillna(0)
            x = np.arange(len(top))
            ax.bar(x - 0.2, top.values, 0.4, color=REAL, label="real")
            ax.bar(x + 0.2, s.values, 0.4, color=SYNTH, label="synthetic")
            ax.set_xticks(x, top.index, rotation=60, fontsize=6)
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=6)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    return png_uri(fig)


def association_plot(comparison: AssociationComparison) -> str:
    """Real, synthetic and |synthetic − real| association matrices; undefined cells grey."""
    names = list(comparison.real.columns)
    side = max(3.5, 0.22 * len(names) + 1.5)
    fig, axes = plt.subplots(1, 3, figsize=(3 * side, side + 0.6), squeeze=False)
    signed = plt.get_cmap("RdBu_r").with_extremes(bad="#dddddd")
    magnitude = plt.get_cmap("Reds").with_extremes(bad="#dddddd")
    panels = [(comparison.real, "real training", signed, -1),
              (comparison.synthetic, "published synthetic", signed, -1),
              (comparison.abs_difference, "|synthetic − real|", magnitude, 0)]
    for ax, (matrix, title, cmap, vmin) in zip(axes.flat, panels):
        im = ax.imshow(np.ma.masked_invalid(matrix.to_numpy(dtype=float)), cmap=cmap, vmin=vmin, vmax=1)
        ax.set_xticks(range(len(names)), names, rotation=90, fontsize=6)
        ax.set_yticks(range(len(names)), names, fontsize=6)
        ax.set_title(title, fontsize=9)
        fig.colorbar(im, ax=ax, shrink=0.7)
    fig.tight_layout()
    return png_uri(fig)


ASSOCIATION_NOTE = ("Numeric pairs (datetimes as numbers): Spearman rank correlation, signed. Numeric and categorical: "
                    "correlation ratio (eta). Categorical pairs (booleans included): Cramér's V. Eta and V are "
                    "bias-corrected and lie in [0, 1]; categorical columns keep their {levels} most frequent real "
                    "levels, the rest pooled as \"other\"; above {rows:,} rows a sample is used. Each pair uses the "
                    "rows where both are present. Grey cells are undefined.")


def association_section(real: pd.DataFrame, synth: pd.DataFrame, profile: Profile) -> tuple[str, str, float | None]:
    """(heading, HTML, mean |difference|) for the mixed-type association matrices of real and synthetic rows."""
    comparison = compare_associations(real, synth, profile.kinds())
    mad = comparison.mean_abs_difference
    heading = ("Associations: mean |synthetic − real| = " + (f"{mad:.3f} over {comparison.pairs} column pairs"
                                                             if mad is not None else "undefined (no column pair)"))
    note = ASSOCIATION_NOTE.format(levels=MAX_LEVELS - 1, rows=MAX_ROWS)
    if comparison.undefined:
        note += (" Constant or empty (in real or synthetic rows), so without associations: "
                 + ", ".join(comparison.undefined) + ".")
    image = f'<img src="{association_plot(comparison)}" style="max-width:100%">'
    return heading, f"<p>{html.escape(note)}</p>{image}", mad


def missing_values_plot(real: pd.DataFrame, synth: pd.DataFrame, profile: Profile) -> str:
    """Share of missing cells per column, real training vs published synthetic."""
    names = list(profile.columns)

    def shares(frame: pd.DataFrame) -> list[float]:  # a column the frame lacks is missing throughout
        return ([float(frame[n].isna().mean()) if n in frame else 1.0 for n in names] if len(frame)
                else [0.0] * len(names))

    real_share, synth_share = shares(real), shares(synth)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.35 * len(names) + 1.5), 3.2))
    x = np.arange(len(names))
    ax.bar(x - 0.2, real_share, 0.4, color=REAL, label="real")
    ax.bar(x + 0.2, synth_share, 0.4, color=SYNTH, label="synthetic")
    ax.set_xticks(x, names, rotation=90, fontsize=6)
    ax.set_ylabel("share missing")
    # a fixed floor keeps "nothing missing" from being drawn on an autoscaled axis as if it were something
    ax.set_ylim(0, max(0.05, *real_share, *synth_share) * 1.1)
    if not any(real_share) and not any(synth_share):
        ax.set_title("no missing values in either", fontsize=8)
    ax.legend(fontsize=7)
    return png_uri(fig)


def dcr_plot(synthetic_dcr: np.ndarray, holdout_dcr: np.ndarray, threshold: float | None) -> str:
    fig, ax = plt.subplots(figsize=(7, 3.5))
    hi = np.quantile(np.r_[synthetic_dcr, holdout_dcr], 0.99) if len(synthetic_dcr) else 1.0
    bins = np.linspace(0, hi, 40)
    ax.hist(holdout_dcr, bins=bins, density=True, alpha=0.55, color=REAL, label="real holdout → train (baseline)")
    ax.hist(synthetic_dcr, bins=bins, density=True, alpha=0.55, color=SYNTH, label="synthetic → train")
    if threshold:
        ax.axvline(threshold, color="k", ls="--", lw=1, label=f"privacy filter {threshold:.3f}")
    ax.set_xlabel("distance to closest training record")
    ax.legend(fontsize=8)
    return png_uri(fig)


HANDLING_NOTE = ("A dropped column is absent from the published data; a hashed column holds bucket labels, "
                 "not its values; a top_k column holds its k most frequent training levels and \"other\". "
                 "Cells that did not parse as the column's type are missing in the published data.")


def column_handling_table(profile: Profile) -> str:
    """Every source column: its type as read, why, and what the published column holds."""
    rows = [{"column": h.name, "type": h.type + (" (pinned)" if h.pinned else ""), "why": h.reason,
             "handling": h.handle, "published column": h.action} for h in profile.handling.values()]
    return f"<p>{html.escape(HANDLING_NOTE)}</p>" + html_table(rows, ["column", "type", "why", "handling",
                                                                      "published column"])


