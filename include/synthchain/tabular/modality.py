"""The tabular modality: records with typed columns (the copula and CART generators, DCR privacy).

It plugs the tabular blocks (profiling, verification, filtering, evaluation, report plots)
into the modality contract. Real columns are typed and handled once, right after loading
(`columns.py`), so every later block sees the same columns.
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from .. import gates as g
from ..collapse.monitors import MonitorInput
from ..filters import RowFilter
from ..holdout import split_holdout
from ..modality import HopData, Modality, Verified, data_columns
from ..seeds import derive_seed
from ..sources import SourceError
from ..targets import from_json
from .baselines import evaluate_slices
from .columns import PLAN_ATTR, ColumnPlan, plan_columns
from .error_slices import find_error_slices
from .evaluation import evaluate
from .expectations import as_profile_types, profile_expectations
from .filters import FilterInput, LabelAgreementFilter, default_filters
from .generators import BUILTIN
from .profile import Profile, load_real_data, profile_frame
from .verification import verify

log = logging.getLogger(__name__)


class TabularModality(Modality):
    name = "tabular"
    builtin_generators = BUILTIN
    privacy_metrics = ("dcr_closer_share",)

    # --- profiling -------------------------------------------------------------------------------
    def load_real(self, spec) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Training rows and holdout with every column read as its type and handled (see columns.py).

        The plan is decided on the training rows only and applied to both, so the holdout never shapes
        it (which levels top_k keeps, what counts as an identifier).
        """
        real = load_real_data(spec)
        train, holdout = split_holdout(real, spec.holdout.fraction, spec.holdout.seed,
                                       stratify=spec.target if spec.task == "classification" else None)
        plan = plan_columns(train, spec)
        train, _ = plan.apply(train)
        holdout, holdout_strays = plan.apply(holdout)
        plan = plan.with_holdout_strays(holdout_strays)
        # after type inference: a numeric target with a few stray text cells is numeric once they are set missing
        if spec.task == "regression" and not pd.api.types.is_numeric_dtype(train[spec.target]):
            h = plan.handling.get(spec.target)
            raise SourceError(f"source {spec.source.label} (spec {spec.name}): regression target {spec.target!r} is "
                              f"not numeric ({h.reason if h else train[spec.target].dtype})")
        for h in plan.handling.values():
            if h.stray_cells or h.holdout_stray_cells or h.mostly_numeric:  # data that did not fit its column
                log.warning("column %r read as %s: %s; published: %s", h.name, h.type, h.reason, h.action)
        # profile() records the plan; attrs carry it there without changing the Modality contract
        train.attrs[PLAN_ATTR] = plan.to_dict()
        return train, holdout

    def profile(self, spec, train: pd.DataFrame) -> Profile:
        if PLAN_ATTR in train.attrs:
            # taken off: pandas deep-copies attrs into every frame derived from this one
            plan = ColumnPlan.from_dict(train.attrs.pop(PLAN_ATTR))
        else:  # a frame that did not come from load_real: profile it as load_real would have read it
            plan = plan_columns(train, spec)
            train, _ = plan.apply(train)
        return profile_frame(train, spec.target, spec.task, kinds=plan.kinds(), handling=plan.handling)

    def load_profile(self, data: dict) -> Profile:
        return Profile.from_dict(data)

    def profiling_batches(self, spec, train, holdout, profile) -> list[g.Batch]:
        checks = [
            g.expect("expect_table_row_count_to_be_between", min_value=spec.gates.min_real_rows),
            g.expect("expect_column_values_to_not_be_null", column=spec.target),
        ]
        if spec.task == "classification":
            checks.append(g.expect("expect_column_unique_value_count_to_be_between", column=spec.target, min_value=2))
        holdout_checks = [g.expect("expect_table_row_count_to_be_between", min_value=1),
                          g.expect("expect_column_values_to_not_be_null", column=spec.target)]
        return [g.Batch("real_train", as_profile_types(train, profile), checks),
                g.Batch("holdout", holdout, holdout_checks)]

    def feasibility(self, spec, train, holdout, profile) -> tuple[list[g.Batch], dict[str, str], dict]:
        """Small domains (every fresh real row a copy of a training row) and gates no generator can meet,
        said before generation with the figure that decides it (see verification/copies.py)."""
        from .verification.copies import copy_feasibility

        columns = list(profile.columns)
        found = copy_feasibility(
            train[columns], holdout[columns], k_min=spec.filtering.copy_k_min,
            max_drop_fraction=spec.gates.max_drop_fraction, privacy_quantile=spec.filtering.privacy_quantile,
            max_dcr_closer_share=spec.gates.max_dcr_closer_share,
            max_disclosive_copy_excess=spec.gates.max_disclosive_copy_excess)
        if found.message:
            (log.info if found.ok else log.warning)(found.message)
        figures = {"feasible": 1.0 if found.ok else 0.0,
                   "expected_fresh_drop_share": found.figures["expected_fresh_drop_share"]}
        batch = g.Batch("privacy_feasibility", g.metrics_frame(figures), [g.threshold("feasible", min_value=1.0)])
        return [batch], {"feasible": found.message}, found.figures

    def record_suite(self, spec, profile: Profile) -> list[g.Expectation]:
        return profile_expectations(profile, strict=False, whole_table=not spec.targets.targeted)

    def error_slices(self, spec, train: pd.DataFrame) -> list:
        """`targets.from_errors`: where the real-only model errs on the training rows (out of fold)."""
        settings = spec.targets.from_errors
        return find_error_slices(train, spec.target, spec.task, n_slices=settings.slices, rows=settings.rows or 1,
                                 folds=settings.folds, max_depth=settings.max_depth, min_rows=settings.min_rows,
                                 seed=derive_seed(spec.name, spec.seed, "from_errors"))

    # --- generation ------------------------------------------------------------------------------
    def output_columns(self, profile: Profile) -> list[str]:
        return list(profile.columns)

    def generation_batches(self, spec, synthetic, profile, suite) -> list[g.Batch]:
        # Targeted slices may come back short of their plan (a sampling budget spent): the pipeline's request
        # accounting checks planned = rows + stated shortfalls, and the quotas are judged after filtering.
        count = [] if spec.targets.targeted else [g.expect("expect_table_row_count_to_equal", value=spec.target_rows)]
        return [g.Batch("synthetic", as_profile_types(synthetic, profile), suite + count)]

    # --- verification ----------------------------------------------------------------------------
    def verify(self, data: HopData, synthetic: pd.DataFrame, records: pd.DataFrame | None = None) -> Verified:
        metrics, checks, holdout_dcr = verify(synthetic, data.train, data.holdout, data.profile,
                                              k_min=data.spec.filtering.copy_k_min)
        limits = data.spec.gates
        # the disclosive-copy share is gated on the kept rows (kept_checks): the exact-copy filter removes
        # copies of rare profiles, and a gate here would refuse a batch the filter is about to fix
        return Verified(
            metrics=metrics, checks=checks,
            expectations=[g.threshold("quality_score", min_value=limits.min_quality_score),
                          g.threshold("dcr_closer_share", max_value=limits.max_dcr_closer_share),
                          g.threshold("constraint_violation_rate", max_value=limits.max_constraint_violation_rate)],
            extras={"holdout_dcr": pd.DataFrame({"dcr": holdout_dcr})},
            summary={"quality_score": metrics["quality_score"], "dcr_closer_share": metrics["dcr_closer_share"]})

    # --- filtering -------------------------------------------------------------------------------
    def filters(self, spec) -> list[RowFilter]:
        found = default_filters(spec.filtering.privacy_quantile, spec.filtering.off_distribution_threshold,
                                spec.filtering.copy_k_min)
        if spec.targets.targeted and spec.task == "classification":  # a label asked for is a claim to verify
            found.append(LabelAgreementFilter(spec.target, spec.filtering.label_quantile))
        return found

    def filter_input(self, data: HopData, synthetic: pd.DataFrame, checks: pd.DataFrame) -> FilterInput:
        # a targeted slice's view holds that slice's real rows in train_uri, and all of them in all_train_uri
        all_train = data_columns(data.frame("all_train_uri")) if "all_train_uri" in data.state else None
        return FilterInput(synthetic, checks, data.train, data.profile, data.extra("holdout_dcr")["dcr"].to_numpy(),
                           data.seed("filter"), all_train)

    def kept_checks(self, data: HopData, kept) -> tuple[list[g.Batch], dict]:
        """The rows that will be published, measured again after the filters.

        Verification scores every generated row; filters then drop some, and not at random (duplicates
        are mostly the common profiles, copies the small-domain ones), so quality, class shares and the
        row budget can move. Gates that speak about the published data read these figures.
        """
        spec, profile = data.spec, data.profile
        rows = data_columns(kept)
        # copies of rare profiles: verification already counted each row's k and the holdout's own rate
        checks = data.frame("checks_uri")
        verified = data.storage.read_json(data.uri("verification_uri"))
        kept_k = checks.set_index("_sc_row_id")["copy_k"].reindex(kept["_sc_row_id"]).to_numpy() \
            if "copy_k" in checks and "holdout_disclosive_share" in verified else None
        asked = sum(s["quota"] for s in data.storage.read_json(data.uri("targets_uri"))) \
            if "targets_uri" in data.state else spec.target_rows
        figures = kept_figures(data.train, rows, profile, spec, kept_k, verified.get("holdout_disclosive_share"),
                               asked)
        limits = spec.gates
        checks = [g.threshold("kept_quality_score", min_value=limits.min_quality_score)]
        if "kept_label_shift" in figures:
            checks.append(g.threshold("kept_label_shift", max_value=limits.max_label_shift))
        if limits.max_disclosive_copy_excess is not None and "kept_disclosive_copy_excess" in figures:
            checks.append(g.threshold("kept_disclosive_copy_excess", max_value=limits.max_disclosive_copy_excess))
        whole = not spec.targets.targeted
        return [g.Batch("kept", as_profile_types(rows, profile), profile_expectations(profile, strict=True,
                                                                                     whole_table=whole)),
                g.Batch("kept_figures", g.metrics_frame({k: v for k, v in figures.items() if not isinstance(v, dict)}),
                        checks)], figures

    # --- blending --------------------------------------------------------------------------------
    def blend_batches(self, data: HopData, blended) -> list[g.Batch]:
        spec, profile = data.spec, data.profile
        classes = [g.expect("expect_column_distinct_values_to_contain_set", column=spec.target,
                            value_set=sorted(profile.columns[spec.target].categories))] \
            if spec.task == "classification" else []
        return [g.Batch("blend", as_profile_types(blended, profile), [
            g.expect("expect_table_columns_to_match_set", column_set=list(profile.columns), exact_match=True),
            g.expect("expect_column_values_to_not_be_null", column=spec.target), *classes])]

    # --- evaluation ------------------------------------------------------------------------------
    def evaluate(self, data: HopData, real, kept, blended) -> dict:
        spec = data.spec
        result = evaluate(real, kept, blended, data.frame("holdout_uri"), spec.target, spec.task,
                          seed=data.seed("evaluate"), resamples=spec.gates.bootstrap_resamples)
        if spec.targets.targeted and spec.task == "classification":
            # per class and slice, against class weights and SMOTE-NC on the same rows and holdout
            declared = [s for s in from_json(data.storage.read_json(data.uri("targets_uri")))
                        if s.why.get("rule") != "rebalance"]
            result["slices"] = evaluate_slices(real, blended, data.holdout, spec.target, spec.task, declared,
                                               seed=data.seed("evaluate_slices"),
                                               resamples=spec.gates.bootstrap_resamples)
        return result

    def monitor_input(self, data: HopData, real, kept, evaluation) -> MonitorInput:
        return MonitorInput(real, kept, data.profile, {"detection_auc": data.state.get("detection_auc"),
                                                       "tstr": evaluation.get("tstr")})

    # --- report ----------------------------------------------------------------------------------
    def summary_figures(self, verification: dict) -> dict[str, Any]:
        return {"quality_score": verification["quality_score"], "dcr_closer_share": verification["dcr_closer_share"]}

    def report_sections(self, data: HopData, real, synth, published_ids) -> list[tuple[str, str]]:
        from .report import (
            association_section,
            column_handling_table,
            dcr_plot,
            distributions_plot,
            missing_values_plot,
        )
        from ..report import slice_table_section

        evaluation = data.storage.read_json(data.uri("evaluation_uri")) if "evaluation_uri" in data.state else {}
        per_slice = [("Per class and slice, against class weights and SMOTE-NC",
                      slice_table_section(evaluation["slices"]))] if evaluation.get("slices") else []
        checks = data.frame("checks_uri")
        syn_dcr = checks.loc[checks["_sc_row_id"].isin(published_ids), "dcr"].to_numpy()
        holdout_dcr = data.extra("holdout_dcr")["dcr"].to_numpy()
        profile = data.profile
        handling = [("Columns: types and handling", column_handling_table(profile))] if profile.handling else []
        association_heading, association_html, _ = association_section(real, synth, profile)
        return [
            *per_slice,
            *handling,
            ("Per-column distributions (real training vs published synthetic)",
             f'<img src="{distributions_plot(real, synth, profile)}" style="max-width:100%">'),
            ("Missing values per column (real training vs published synthetic)",
             f'<img src="{missing_values_plot(real, synth, profile)}" style="max-width:100%">'),
            (association_heading, association_html),
            ("Privacy: distance to closest record",
             f'<img src="{dcr_plot(syn_dcr, holdout_dcr, data.state.get("privacy_threshold"))}">'),
        ]


def kept_figures(train: pd.DataFrame, kept: pd.DataFrame, profile: Profile, spec,
                 kept_copy_k: np.ndarray | None = None, holdout_disclosive_share: float | None = None,
                 asked_rows: int | None = None) -> dict[str, Any]:
    """Quality, class shares, copies of rare real profiles and budget of the kept (to-be-published) rows.

    `kept_copy_k`: per kept row, how many training rows share its profile (verification's `copy_k`);
    with the holdout's own disclosive share it gives the kept rows' disclosive-copy excess."""
    from .verification import quality_report
    from .verification.copies import copy_summary

    columns = list(profile.columns)
    asked = spec.target_rows if asked_rows is None else asked_rows  # targeted specs: the slices' quotas
    out: dict[str, Any] = {"kept_rows": len(kept), "target_rows": asked,
                           "shortfall_rows": max(0, asked - len(kept)),
                           "shortfall_share": max(0, asked - len(kept)) / max(asked, 1)}
    if not len(kept):
        return {**out, "kept_quality_score": 0.0}
    out["kept_quality_score"] = quality_report(train[columns], kept[columns], profile)["quality_score"]
    if kept_copy_k is not None and holdout_disclosive_share is not None:
        copies = copy_summary(np.nan_to_num(kept_copy_k.astype(float)).astype(np.int64), np.zeros(0, np.int64),
                              spec.filtering.copy_k_min)
        out["kept_disclosive_copy_excess"] = copies["disclosive_copy_share"] - holdout_disclosive_share
        out["kept_identical_match_share"] = copies["identical_match_share"]
    if spec.task == "classification":
        real = train[spec.target].astype(str).value_counts(normalize=True)
        synth = kept[spec.target].astype(str).value_counts(normalize=True)
        classes = real.index.union(synth.index)
        diff = synth.reindex(classes, fill_value=0.0) - real.reindex(classes, fill_value=0.0)
        if not spec.targets.targeted:  # targets move the label shares on purpose; their quotas are gated instead
            out["kept_label_shift"] = float(diff.abs().sum() / 2)  # total variation distance, 0..1
        out["kept_label_shares"] = {str(c): float(synth.get(c, 0.0)) for c in classes}
    return out
