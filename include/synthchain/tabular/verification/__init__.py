"""Tabular verification: constraints, statistical fidelity and privacy (distance to closest record,
nearest-neighbour ratio, disclosive copies) of synthetic rows.
Part of the tabular modality: may import the core and tabular's own modules."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ...lineage import row_hashes
from ..profile import Profile
from .constraints import constraint_violations
from .copies import DEFAULT_K_MIN, copy_feasibility, copy_k, copy_summary, profile_counts
from .encoding import RowEncoder
from .fidelity import quality_report
from .privacy import exact_copy_mask, privacy_report

__all__ = ["DEFAULT_K_MIN", "RowEncoder", "constraint_violations", "copy_feasibility", "exact_copy_mask",
           "privacy_report", "quality_report", "verify"]


def verify(synth: pd.DataFrame, train: pd.DataFrame, holdout: pd.DataFrame,
           profile: Profile, k_min: int = DEFAULT_K_MIN) -> tuple[dict, pd.DataFrame, np.ndarray]:
    """Score synthetic rows against real training and holdout rows.

    Returns (metrics, per-row checks with columns violations/exact_copy/copy_k/dcr/nndr,
    holdout-to-train distances as the privacy baseline). copy_k is the number of training rows with the
    row's profile (0: not a copy); the copy figures (copies.py) read it against the holdout's.
    """
    columns = list(profile.columns)
    data = synth[columns]
    violations = constraint_violations(data, profile)
    train_counts = profile_counts(row_hashes(train[columns]))
    synth_k = copy_k(row_hashes(data), train_counts)
    holdout_k = copy_k(row_hashes(holdout[columns]), train_counts)
    copies = synth_k > 0
    encoder = RowEncoder().fit(train, profile)
    summary, per_row = privacy_report(encoder.transform(data), encoder.transform(train),
                                      encoder.transform(holdout))
    quality = quality_report(train, data, profile)
    metrics = {
        "rows": len(data),
        "constraint_violation_rate": float((violations != "").mean()) if len(data) else 0.0,
        "exact_copy_rate": float(copies.mean()) if len(data) else 0.0,
        "duplicate_rate": float(pd.Series(row_hashes(data)).duplicated().mean()) if len(data) else 0.0,
        **{k: v for k, v in quality.items()},
        **copy_summary(synth_k, holdout_k, k_min),
        "distinct_training_profiles": int(len(train_counts)),
        **summary,
    }
    checks = pd.DataFrame({
        "violations": violations.to_numpy(), "exact_copy": copies, "copy_k": synth_k,
        "dcr": per_row["dcr"], "nndr": per_row["nndr"],
    })
    return metrics, checks, per_row["holdout_dcr"]
