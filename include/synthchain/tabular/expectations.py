"""GX expectations derived from a tabular profile: the gates' checks on real, synthetic and kept rows."""
from __future__ import annotations

import pandas as pd

from ..gates import Expectation, expect
from .profile import Profile


def profile_expectations(profile: Profile, *, strict: bool, tolerance: float = 0.05, whole_table: bool = True
                         ) -> list[Expectation]:
    """What synthetic rows must look like, derived from the real profile.

    `strict` (after filtering): every value in range and in the known category
    set. Otherwise (right after generation) a `tolerance` share may be off.
    `whole_table`: the rows stand for the whole table, so every class must appear; rows aimed at slices
    (a targeted run) may hold one class only.
    """
    mostly = 1.0 if strict else 1.0 - tolerance
    out = [
        expect("expect_table_columns_to_match_set", column_set=list(profile.columns), exact_match=True),
        expect("expect_table_row_count_to_be_between", min_value=1),
    ]
    for name, col in profile.columns.items():
        if col.null_fraction == 0.0:
            out.append(expect("expect_column_values_to_not_be_null", column=name, mostly=mostly))
        if col.kind in ("numeric", "integer") and col.min is not None:
            out.append(expect("expect_column_values_to_be_between", column=name, min_value=col.min,
                              max_value=col.max, mostly=mostly))
        elif col.categories:
            out.append(expect("expect_column_values_to_be_in_set", column=name,
                              value_set=sorted(col.categories), mostly=mostly))
    if profile.task == "classification" and whole_table:
        classes = sorted(profile.columns[profile.target].categories)
        out.append(expect("expect_column_distinct_values_to_contain_set", column=profile.target, value_set=classes))
    return out


def as_profile_types(frame: pd.DataFrame, profile: Profile) -> pd.DataFrame:
    """Categorical columns as strings (as profiled), so set membership compares like with like."""
    out = frame.copy()
    for name, col in profile.columns.items():
        if name in out.columns and col.kind in ("categorical", "boolean"):
            out[name] = out[name].astype(object).where(out[name].isna(), out[name].astype(str))
    return out
