"""Exact copies judged against the holdout baseline, with a k-anonymity view of what was copied.

A synthetic row identical to a training row is not a disclosure in itself: on a table with a small
domain (openintro's `military`: 1,646 distinct rows among 1.41M) a fresh real row is almost always
identical to some training row too. What discloses someone is copying a profile few real people have.
So every figure here has a baseline measured on the holdout (real rows the generators never saw),
which is what a generator sampling fresh rows from the real distribution would score, and every copy
carries k, the number of training rows with its profile (its k-anonymity class size):

- ``identical_match_share``: synthetic rows equal to some training row;
  ``holdout_identical_match_share``: holdout rows equal to some training row (the fresh-row rate).
- ``disclosive_copy_share``: synthetic rows equal to a training profile that fewer than ``k_min``
  training rows share (k = 1 is a copied unique row); ``holdout_disclosive_share`` is the same for
  fresh real rows; ``disclosive_copy_excess`` is the difference, the figure a gate can hold.
- ``common_copy_share``: copies of profiles with k >= k_min, which disclose nobody.

The exact-copy filter follows the same rule (`copy_decisions`): copies of rare profiles go, copies of
common ones stay up to their real frequency, so a small-domain table is not emptied.

The feasibility check (`copy_feasibility`) is the same arithmetic on the real rows alone, cheap
enough for the profiling hop: it says before the heavy hops when the configured gates cannot be met.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ...lineage import row_hashes

DEFAULT_K_MIN = 5  # a profile shared by at least 5 training rows is a common one (k-anonymity, k = 5)
# A common profile's copies are kept up to its expected count in a fresh sample of the same size plus
# this many standard deviations (sampling noise of the batch and of the training frequency itself).
COPY_SLACK_SD = 2.0
# Verification gate: synthetic rows copying rare profiles, over the rate at which fresh real rows do.
DEFAULT_MAX_DISCLOSIVE_COPY_EXCESS = 0.05


def profile_counts(hashes: np.ndarray) -> pd.Series:
    """How many rows share each profile: row hash -> count."""
    return pd.Series(hashes).value_counts(sort=False)


def copy_k(hashes: np.ndarray, train_counts: pd.Series) -> np.ndarray:
    """Per row: the number of training rows with the same profile (0: not a copy)."""
    return pd.Series(hashes).map(train_counts).fillna(0).to_numpy(dtype=np.int64)


def copy_summary(synth_k: np.ndarray, holdout_k: np.ndarray, k_min: int = DEFAULT_K_MIN) -> dict:
    """The copy figures of synthetic rows against those of fresh real (holdout) rows."""

    def shares(k: np.ndarray) -> tuple[float, float, float, float]:
        if not len(k):
            return 0.0, 0.0, 0.0, 0.0
        return (float(np.mean(k > 0)), float(np.mean((k > 0) & (k < k_min))), float(np.mean(k >= k_min)),
                float(np.mean(k == 1)))

    match, disclosive, common, unique = shares(synth_k)
    h_match, h_disclosive, h_common, h_unique = shares(holdout_k)
    return {
        "identical_match_share": match,
        "holdout_identical_match_share": h_match,
        "identical_match_excess": match - h_match,
        "identical_match_ratio": match / h_match if h_match > 0 else None,
        "copy_k_min": int(k_min),
        "disclosive_copy_share": disclosive,
        "holdout_disclosive_share": h_disclosive,
        "disclosive_copy_excess": disclosive - h_disclosive,
        "unique_copy_share": unique,
        "holdout_unique_copy_share": h_unique,
        "common_copy_share": common,
        "holdout_common_copy_share": h_common,
    }


def copy_decisions(hashes: np.ndarray, k: np.ndarray, train_rows: int, k_min: int = DEFAULT_K_MIN,
                   slack_sd: float = COPY_SLACK_SD) -> tuple[np.ndarray, np.ndarray, dict]:
    """(keep, reasons, metrics) for exact copies and within-batch repeats, on the k-anonymity rule.

    - a copy of a rare profile (0 < k < k_min) is dropped: it discloses the few people who have it;
    - a copy of a common profile (k >= k_min) is kept while that profile's rows in the batch stay within
      what a fresh sample of the same size would hold: n·f + slack_sd·sd with f = k / train_rows and
      sd = sqrt(n·f·(1 + n/train_rows)) (the batch's binomial noise and that of f itself). Summed over
      profiles that is the rate at which fresh real rows match common training profiles, the holdout
      baseline, so a small-domain table keeps its rows while a generator repeating one profile is trimmed;
    - a row matching no training row is dropped when it repeats an earlier synthetic row.
    Rows are taken in order: the first ones of a group are kept.
    """
    n = len(hashes)
    keep = np.ones(n, bool)
    reasons = np.full(n, "", dtype=object)
    if not n:
        return keep, reasons, {"copies": 0, "disclosive_copies": 0, "common_copies_kept": 0,
                               "common_copies_over_frequency": 0, "repeats": 0, "copy_k_min": int(k_min)}
    series = pd.Series(hashes)
    rank = series.groupby(series, sort=False).cumcount().to_numpy()
    novel, rare, common = k == 0, (k > 0) & (k < k_min), k >= k_min
    repeat = novel & (rank > 0)
    keep[repeat] = False
    reasons[repeat] = "duplicate of an earlier synthetic row (a profile no training row has)"
    keep[rare] = False
    for i in np.flatnonzero(rare):
        reasons[i] = (f"exact copy of a rare real profile: k={k[i]} training row{'s share' if k[i] > 1 else ' has'} "
                      f"it (k < k_min={k_min}), copying it discloses {'them' if k[i] > 1 else 'that person'}")
    freq = k / max(train_rows, 1)
    expected = n * freq
    cap = np.maximum(1, np.floor(expected + slack_sd * np.sqrt(expected * (1 + n / max(train_rows, 1))))).astype(np.int64)
    over = common & (rank >= cap)
    keep[over] = False
    for i in np.flatnonzero(over):
        reasons[i] = (f"exact copy of a common real profile (k={k[i]} >= k_min={k_min}) beyond its real frequency: "
                      f"{cap[i]} of {n} rows allowed ({k[i]}/{train_rows} of the batch + {slack_sd:g} sd)")
    return keep, reasons, {
        "copies": int((k > 0).sum()), "disclosive_copies": int(rare.sum()),
        "common_copies_kept": int((common & ~over).sum()), "common_copies_over_frequency": int(over.sum()),
        "repeats": int(repeat.sum()), "copy_k_min": int(k_min)}


@dataclass
class CopyFeasibility:
    """Whether a table can pass the copy and privacy gates at all, from its real rows alone."""

    ok: bool
    message: str  # empty when nothing is worth saying; a reason when not ok, a note on small domains otherwise
    figures: dict = field(default_factory=dict)


def copy_feasibility(train: pd.DataFrame, holdout: pd.DataFrame, *, k_min: int = DEFAULT_K_MIN,
                     max_drop_fraction: float = 0.6, privacy_quantile: float = 0.02,
                     max_dcr_closer_share: float = 0.65, max_disclosive_copy_excess: float | None = None,
                     small_domain_share: float = 0.5) -> CopyFeasibility:
    """What a perfect generator (one drawing fresh rows from the real distribution) would face, measured
    on the holdout, which is such a sample, against the configured gates.

    A fresh row equal to a rare training profile (k < k_min) is dropped by the exact-copy filter, and the
    privacy filter drops about `privacy_quantile` of fresh rows by distance, so a fresh sampler loses about
    holdout_disclosive_share + privacy_quantile of its rows; when that exceeds max_drop_fraction no
    generator can pass the filtering gate. The DCR closer-share of a fresh sampler is 0.5, so a
    max_dcr_closer_share at or under 0.5 cannot be met either. Hashes only: seconds on a million rows.
    """
    columns = list(train.columns)
    train_hashes = row_hashes(train)
    counts = profile_counts(train_hashes)
    holdout_k = copy_k(row_hashes(holdout[columns]), counts)
    figures = copy_summary(np.zeros(0, np.int64), holdout_k, k_min)
    figures = {k: v for k, v in figures.items() if k.startswith("holdout_") or k == "copy_k_min"}
    distinct = int(len(counts))
    figures |= {"training_rows": int(len(train)), "holdout_rows": int(len(holdout)),
                "distinct_training_profiles": distinct,
                "rare_training_profiles": int((counts < k_min).sum()),
                "expected_fresh_drop_share": figures["holdout_disclosive_share"] + privacy_quantile}
    match, disclosive = figures["holdout_identical_match_share"], figures["holdout_disclosive_share"]
    head = (f"{distinct:,} distinct rows among {len(train):,} training rows: {_pct(match)} of fresh real (holdout) "
            f"rows are exact copies of a training row, {_pct(disclosive)} copies of a rare one (k < {k_min})")
    problems = []
    if figures["expected_fresh_drop_share"] > max_drop_fraction:
        problems.append(
            f"the exact-copy filter drops copies of rare profiles and the privacy filter about {privacy_quantile:.0%} "
            f"by distance, so even a generator drawing fresh real rows would lose about "
            f"{figures['expected_fresh_drop_share']:.0%} of its rows, over gates.max_drop_fraction={max_drop_fraction:g}")
    if max_dcr_closer_share <= 0.5:
        problems.append(f"a generator drawing fresh real rows scores a DCR closer-share of 0.5, and "
                        f"gates.max_dcr_closer_share={max_dcr_closer_share:g} asks for less")
    if max_disclosive_copy_excess is not None and max_disclosive_copy_excess < 0:
        problems.append(f"gates.max_disclosive_copy_excess={max_disclosive_copy_excess:g} is below the fresh-row "
                        f"baseline of 0")
    if problems:
        return CopyFeasibility(False, f"{head}; so the privacy gates cannot pass: " + "; ".join(problems) + ".",
                               figures)
    note = ""
    if match >= small_domain_share:
        note = (f"{head}. Small domain: copies of common profiles (k >= {k_min}) are kept up to their real "
                f"frequency; copies of rare ones are dropped.")
    return CopyFeasibility(True, note, figures)


def _pct(x: float) -> str:
    """A share as a percentage that never rounds to 0% or 100% unless it is exactly that."""
    for digits in (1, 2, 3):
        text = f"{x:.{digits}%}"
        if (text != f"{0:.{digits}%}" or x == 0) and (text != f"{1:.{digits}%}" or x == 1):
            return text
    return f"{x:.4%}"
