"""`synthchain` command line: validate specs, run a spec in-process, inspect versions and lineage.

Exit codes: 0 success, 1 a gate failed (the batch is quarantined), 2 bad input.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from datetime import date, datetime, timezone
from pathlib import Path

from ..specs import SpecError, load_spec


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _print_table(rows: list[dict], columns: list[str]) -> None:
    if not rows:
        print("  (none)")
        return
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for r in rows:
        print("  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns))


def cmd_validate(args) -> int:
    spec = load_spec(args.path)
    print(f"{args.path}: ok (spec '{spec.name}', {len(spec.generators)} generators, target_rows={spec.target_rows})")
    return 0


def cmd_run(args) -> int:
    from ..gates import GateFailed
    from ..pipeline import RunContext, run_all
    from ..provenance import ProvenanceStore
    from ..storage import open_storage

    spec = load_spec(args.spec)
    pairs = args.generator_version or []
    bad = [v for v in pairs if "=" not in v or not v.split("=", 1)[0] or not v.split("=", 1)[1]]
    if bad:
        raise SpecError(f"--generator-version {bad[0]!r}: expected NAME=VERSION, e.g. cart=1.1")
    overrides = {"target_rows": args.target_rows, "real_fraction": args.real_fraction, "seed": args.seed,
                 "blend_mode": args.blend_mode,
                 "generator_versions": dict(v.split("=", 1) for v in args.generator_version or [])}
    spec = spec.with_overrides(overrides)
    logical_date = args.logical_date or datetime.now(timezone.utc).date()
    ctx = RunContext(spec, logical_date, f"cli__{logical_date.isoformat()}__{uuid.uuid4().hex[:8]}", "cli",
                     open_storage(args.storage), ProvenanceStore(args.db_url))
    try:
        summary = run_all(ctx)
    except GateFailed as exc:
        print(f"QUARANTINED: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2, default=str))
    return 0


def cmd_versions(args) -> int:
    from ..provenance import ProvenanceStore

    store = ProvenanceStore(args.db_url)
    store.migrate()
    rows = store.versions(args.spec)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    from ..provenance.lifecycle import death_of
    from ..settings import Lease

    now, stale_after = datetime.now(timezone.utc), Lease.from_env().stale_after_s
    table, attempts = [], []
    for r in rows:
        ev = r.get("evaluation") or {}
        failed = [f"{g['hop']}" for g in r["gates"] if not g["success"]]
        table.append({**r, "gates": "all passed" if r["gates"] and not failed else (f"FAILED: {','.join(failed)}" if failed else "-"),
                      "blend": f"{ev.get('blend', float('nan')):.3f}" if ev else "-",
                      "trtr": f"{ev.get('trtr', float('nan')):.3f}" if ev else "-",
                      "attempt": r.get("published_attempt_id") or "-"})
        for a in r.get("attempts", []):
            if a["status"] in ("published", "superseded"):
                continue
            state = a["status"]
            if state in ("building", "publishing"):
                dead = death_of(a, now, stale_after)
                state = f"STALE ({dead})" if dead else f"{state} (heartbeat {_ago(a['heartbeat_at'], now)})"
            attempts.append({"version": r["id"], "attempt": a["id"], "status": state,
                             "run": (f"{a['dag_id']} " if a["dag_id"] else "") + f"{a['run_id']} try {a['try_number']}",
                             "started": str(a["started_at"])[:19], "reason": (a["message"] or "")[:240]})
    if not table:
        print("no dataset versions")
        return 0
    _print_table(table, ["id", "spec", "logical_date", "line", "generators", "status", "attempt", "run_kind",
                         "real_rows", "synthetic_rows", "carried_rows", "trtr", "blend", "gates"])
    if attempts:
        print("\nattempts that did not publish (failed, quarantined, abandoned, in progress or stale):")
        _print_table(attempts, ["version", "attempt", "status", "run", "started", "reason"])
    return 0


def _ago(moment, now) -> str:
    from ..provenance.lifecycle import _aware

    return f"{(now - _aware(moment)).total_seconds():.0f} s ago" if moment else "never"


def cmd_gc(args) -> int:
    from ..provenance import ProvenanceStore
    from ..storage import open_storage
    from .gc import as_rows, collect

    store = ProvenanceStore(args.db_url)
    store.migrate()
    actions = collect(open_storage(args.storage), store, dry_run=args.dry_run)
    if args.json:
        print(json.dumps(as_rows(actions), indent=2))
        return 0
    verb = "would remove" if args.dry_run else "removed"
    files = sum(a.files for a in actions if a.action == "remove")
    print(f"gc: {verb} {files} file(s) in {sum(a.action == 'remove' for a in actions)} place(s); "
          f"{sum(a.action == 'abandon-run' for a in actions)} dead run(s) marked abandoned")
    _print_table(as_rows(actions), ["action", "files", "target", "reason"]) if actions else None
    return 0


def cmd_summary(args) -> int:
    from ..provenance import ProvenanceStore
    from ..storage import StorageError, open_storage, read_uri_json, storage_for_uri

    store = ProvenanceStore(args.db_url)
    store.migrate()
    published = [v for v in store.versions(args.spec, line=args.line) if v["status"] == "published"]
    if not published:
        print(f"no published version{' of ' + args.spec if args.spec else ''}", file=sys.stderr)
        return 1
    # the newest logical date, not the highest id: a backfill of past dates runs after today's version
    latest = max(published, key=lambda v: (v["logical_date"], v["id"]))
    base = latest["storage_uri"].rsplit("/", 1)[0]
    # The version's own URI says where its files are (this backend or another); what is gone is said, not raised.
    try:
        manifest = read_uri_json(f"{base}/manifest.json", open_storage(args.storage))
        missing = [] if storage_for_uri(latest["storage_uri"]).exists(latest["storage_uri"]) else [latest["storage_uri"]]
    except StorageError as exc:
        manifest = {**(latest["metrics"].get("summary") or {}), "data_uri": latest["storage_uri"],
                    "report_uri": f"{base}/report.html"}
        missing = [f"{base}/manifest.json ({exc})"]
    keys = ["dataset_version", "spec", "modality", "logical_date", "run_kind", "generators", "rows", "real_rows",
            "synthetic_rows", "carried_rows"]
    keys += [k for k in manifest.get("verification_figures", ("quality_score", "dcr_closer_share")) if k not in keys]
    keys += [k for k in manifest if k.startswith(("trtr_", "tstr_", "blend_"))]
    print(f"published dataset version {latest['id']} of {latest['spec']} (line {latest['line']}, "
          f"attempt {latest.get('published_attempt_id') or '-'})")
    for key in keys:
        value = manifest.get(key)
        print(f"  {key:<18} {value:.4f}" if isinstance(value, float) else f"  {key:<18} {value}")
    print("  gates              " + ", ".join(f"{g['hop']}={'pass' if g['success'] else 'FAIL'}" for g in latest["gates"]))
    _print_targets(manifest)
    print("files:")
    for label, uri in (("data", manifest["data_uri"]), ("report", manifest["report_uri"]),
                       ("manifest", f"{base}/manifest.json"), ("GX data docs", f"{base}/gx_docs/")):
        print(f"  {label:<13} {uri}")
    for what in missing:
        print(f"MISSING: {what}: the provenance store says published, storage no longer has it", file=sys.stderr)
    return 3 if missing else 0


MODELS = ("real", "weighted", "smote", "blend")  # the per-slice table's models, baselines first


def _print_targets(manifest: dict) -> None:
    """A targeted version: its slices' quotas and rounds, then each class and slice against the baselines."""
    slices = (manifest.get("targets") or {}).get("slices") or []
    if not any(s["name"] != "all" for s in slices):
        return
    print("targets:")
    _print_table([{"slice": s["name"], "rule": s["rule"], "quota": s["quota"], "generated": s["generated"],
                   "kept": s["kept"], "rounds": s["rounds"]} for s in slices],
                 ["slice", "rule", "quota", "generated", "kept", "rounds"])
    table = ((manifest.get("metrics") or {}).get("evaluation") or {}).get("slices") or {}
    if not table.get("rows"):
        return
    print(f"per class and slice (holdout; {table.get('positive', '')!s} is the positive class; 95% intervals):")
    rows = []
    for row in table["rows"]:
        if not row.get("judged"):
            rows.append({"class/slice": row["name"], "PR-AUC real": row.get("reason", "not judged")})
            continue
        pr, f1 = row["metrics"]["pr_auc"], row["metrics"]["f1"]
        gain = row["gain_over_best_baseline"]["pr_auc"]
        best_f1 = max(f1[m]["point"] for m in f1 if m != "blend")
        rows.append({"class/slice": row["name"], **{f"PR-AUC {m}": f"{pr[m]['point']:.3f}" for m in MODELS if m in pr},
                     "F1 blend": f"{f1['blend']['point']:.3f}", "F1 best baseline": f"{best_f1:.3f}",
                     "PR-AUC gain vs best": f"{gain['point']:+.3f} [{gain['ci'][0]:+.3f}, {gain['ci'][1]:+.3f}]"})
    columns = list(dict.fromkeys(k for r in rows for k in r))
    _print_table(rows, columns)


def cmd_compare(args) -> int:
    from ..provenance import ProvenanceStore
    from .compare import compare_lines, render_comparison_html

    if len(args.lines) > 2:
        print("error: --lines takes line A and optionally line B", file=sys.stderr)
        return 2
    store = ProvenanceStore(args.db_url)
    store.migrate()
    try:
        result = compare_lines(store, args.spec, *args.lines)
    except LookupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.html:
        args.html.write_text(render_comparison_html(result))
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return 0
    print(f"{args.spec}: line {result['b']} vs {result['a']} (difference = {result['b']} - {result['a']})")
    table = []
    for day in result["dates"]:
        a, b, d = day["a"], day["b"], day["delta"]
        row = {"date": day["logical_date"], "status": f"{a.get('status', '-')}/{b.get('status', '-')}",
               "versions": f"{a.get('version', '-')}/{b.get('version', '-')}"}
        for key in ("synthetic_rows", "carried_rows", "quality_score", "dcr_closer_share", "memorised_share",
                    "tstr", "blend"):
            if key in a or key in b:
                value = d.get(key)
                row[key] = "-" if value is None else (f"{value:+.4f}" if isinstance(value, float) else f"{value:+d}")
        table.append(row)
    columns = list(dict.fromkeys(k for row in table for k in row))
    _print_table(table, columns)
    if args.html:
        print(f"report: {args.html}")
    return 0


def cmd_dags(args) -> int:
    from ..specs import spec_dir
    from .dagfiles import default_dags_dir, plan_sync, sync

    specs, dags = args.specs_dir or Path(os.environ.get("SYNTHCHAIN_SPECS_DIR") or spec_dir()), \
        args.dags_dir or default_dags_dir()
    plan = plan_sync(specs, dags) if args.check else sync(specs, dags)
    verb = ("to write", "to remove") if args.check else ("wrote", "removed")
    for path in plan.write:
        print(f"{verb[0]} {path}")
    for path in plan.remove:
        print(f"{verb[1]} {path}")
    if plan.in_step:
        print(f"{dags}: one DAG file per spec of {specs}, in step")
    return 1 if (args.check and not plan.in_step) else 0


def cmd_lineage(args) -> int:
    from ..provenance import ProvenanceStore

    store = ProvenanceStore(args.db_url)
    try:
        info = store.lineage(args.version)
    except LookupError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    print(f"version {info['version']} of {info['spec']} ({info['logical_date']}, generation {info['generation']}, {info['status']})")
    print("rows:")
    _print_table(info["rows"], ["origin", "generator", "generator_version", "generation", "count"])
    print("parents:", ", ".join(f"{p['version']} ({p['relation']})" for p in info["parents"]) or "none")
    print("dropped:")
    _print_table(info["dropped"] or [{"filter": "none"}], ["hop", "filter", "generator", "count"])
    return 0


def _print_comparison(result: dict) -> None:
    print(f"{'':<34}{'simulated':>14}{'closed form':>14}{'rel. error':>12}")
    print(f"{result['model'] + ' ' + result.get('mode', ''):<34}{result['simulated']:>14.6g}"
          f"{result['closed_form']:>14.6g}{result['relative_error']:>12.2%}")
    if "mean_log_fitted_variance_simulated" in result:
        sim, cf = result["mean_log_fitted_variance_simulated"], result["mean_log_fitted_variance_closed_form"]
        print(f"{'E[log fitted variance]':<34}{sim:>14.6g}{cf:>14.6g}{abs(sim - cf) / abs(cf):>12.2%}")
        print(f"{'median fitted variance (approx)':<34}{result['median_fitted_variance_simulated']:>14.6g}"
              f"{result['median_fitted_variance_approx']:>14.6g}")
    print(f"standard error {result['standard_error']:.3g} (z = {result['z_score']:+.2f}) over {result['reps']} repetitions")


def cmd_collapse(args) -> int:
    from ..collapse import theory

    if args.kind == "linreg":
        result = theory.simulate_linreg(args.d, args.T, args.sigma, args.n, args.mode, reps=args.reps, seed=args.seed)
    elif args.kind == "gaussian":
        result = theory.simulate_gaussian(args.M, args.sigma, args.n, reps=args.reps, seed=args.seed)
    else:
        return cmd_collapse_pipeline(args)
    if args.json:
        print(json.dumps(result))
    else:
        _print_comparison(result)
    return 0


def cmd_collapse_pipeline(args) -> int:
    from ..collapse import theory
    from ..collapse.experiment import run_experiment
    from ..provenance import ProvenanceStore
    from ..storage import open_storage

    spec = load_spec(args.spec)
    store = ProvenanceStore(args.db_url)
    store.migrate()
    checks = [theory.simulate_linreg(10, 60, 1.0, args.generations, mode, reps=2000, seed=args.seed)
              for mode in ("replace", "accumulate")]
    checks.append(theory.simulate_gaussian(50, 1.0, args.generations, reps=10000, seed=args.seed))
    out = run_experiment(spec, args.modes, args.generations, args.reps, open_storage(args.storage), store,
                         target_rows=args.target_rows, theory=checks)
    if args.json:
        print(json.dumps({"summary": out["summary"], "curves": out["curves"], "report_uri": out["report_uri"]},
                         default=str))
        return 0
    from ..collapse.monitors import monitors_for
    from ..modalities import modality_of

    modality_of(spec)  # imports the modality, which registers its monitors
    columns = ["mode", "generation", "reps", *dict.fromkeys([m.name for m in monitors_for(spec.modality)] + ["tstr"]),
               "blend", "flagged_share"]
    _print_table([{k: (f"{c[k]:.4f}" if isinstance(c.get(k), float) else c.get(k)) for k in columns}
                  for c in out["curves"]], columns)
    for mode, fig in out["summary"].items():
        print(f"{mode}: first flagged at generation(s) {fig['first_flag_generation']} by {fig['first_flag_monitors']}; "
              f"TSTR of the last published version before the flag fell {_pct(fig['tstr_drop_last_published_before_flag'])}; "
              f"final TSTR change {_pct(fig['tstr_drop_final'], sign=True)}, tail coverage change "
              f"{_pct(fig['tail_coverage_drop_final'], sign=True)}")
    print(f"report: {out['report_uri']}")
    return 0


def _pct(drop, sign: bool = False) -> str:
    if drop is None:
        return "n/a"
    return f"{-drop:+.1%}" if sign else f"{drop:.1%}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="synthchain", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate-spec", help="check a spec file")
    p.add_argument("path", type=Path)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("run", help="run every hop of a spec in-process")
    p.add_argument("spec", type=Path)
    p.add_argument("--logical-date", type=_date)
    p.add_argument("--target-rows", type=int)
    p.add_argument("--real-fraction", type=float)
    p.add_argument("--blend-mode", choices=["accumulate", "replace"])
    p.add_argument("--seed", type=int)
    p.add_argument("--generator-version", action="append", metavar="NAME=VERSION")
    p.add_argument("--storage", help="storage root (folder or s3://bucket/prefix); default $SYNTHCHAIN_STORAGE")
    p.add_argument("--db-url", help="provenance database; default $SYNTHCHAIN_DB_URL or embedded SQLite")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("versions", help="list dataset versions")
    p.add_argument("--spec")
    p.add_argument("--json", action="store_true")
    p.add_argument("--db-url")
    p.set_defaults(func=cmd_versions)

    p = sub.add_parser("summary", help="the published version of the newest date: figures and where its files are")
    p.add_argument("--spec")
    p.add_argument("--line", default="main", help="main (default), or a candidate line")
    p.add_argument("--storage")
    p.add_argument("--db-url")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("collapse", help="model-collapse experiments: closed forms and the real pipeline")
    kinds = p.add_subparsers(dest="kind", required=True)
    k = kinds.add_parser("linreg", help="least squares refit on its own labels (Dohmatob / Gerstgrasser)")
    k.add_argument("--d", type=int, required=True)
    k.add_argument("--T", type=int, required=True)
    k.add_argument("--sigma", type=float, required=True)
    k.add_argument("--n", type=int, required=True, help="iterations; iteration 1 fits the real labels")
    k.add_argument("--mode", choices=["replace", "accumulate"], required=True)
    k.add_argument("--reps", type=int, default=4000)
    k.add_argument("--seed", type=int, default=0)
    k.add_argument("--json", action="store_true")
    k = kinds.add_parser("gaussian", help="Gaussian refit on its own samples (Shumailov et al.)")
    k.add_argument("--M", type=int, required=True, help="samples per generation")
    k.add_argument("--sigma", type=float, required=True)
    k.add_argument("--n", type=int, required=True, help="generations of refitting")
    k.add_argument("--reps", type=int, default=20000)
    k.add_argument("--seed", type=int, default=0)
    k.add_argument("--json", action="store_true")
    k = kinds.add_parser("pipeline", help="a spec through the real pipeline for N generations per mode")
    k.add_argument("spec", type=Path)
    k.add_argument("--generations", type=int, default=5)
    k.add_argument("--modes", nargs="+", default=["replace", "accumulate"],
                   choices=["replace", "accumulate", "accumulate-subsample"])
    k.add_argument("--reps", type=int, default=3, help="independent chains per mode")
    k.add_argument("--target-rows", type=int)
    k.add_argument("--seed", type=int, default=0)
    k.add_argument("--storage")
    k.add_argument("--db-url")
    k.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_collapse)

    sub.add_parser("sandbox", help="run a Python file in the execution sandbox: sandbox run FILE [--timeout S] "
                                   "[--memory-mb M] --json", add_help=False)

    p = sub.add_parser("compare", help="two lines of a spec side by side per date (main vs a candidate)")
    p.add_argument("--spec", required=True)
    p.add_argument("--lines", nargs="+", default=["main"], metavar="LINE",
                   help="line A and line B (default: main and the spec's one other line)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--html", type=Path, help="also write the comparison report to this file")
    p.add_argument("--db-url")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("dags", help="DAG files: `dags sync` writes one thin DAG file per spec into the dags folder")
    p.add_argument("action", choices=["sync"])
    p.add_argument("--specs-dir", type=Path, help="default $SYNTHCHAIN_SPECS_DIR or include/specs")
    p.add_argument("--dags-dir", type=Path, help="default $AIRFLOW__CORE__DAGS_FOLDER or dags/")
    p.add_argument("--check", action="store_true", help="only report; exit 1 if files are missing or left over")
    p.set_defaults(func=cmd_dags)

    p = sub.add_parser("gc", help="mark dead runs abandoned and remove what the retention policy says "
                                  "(SYNTHCHAIN_KEEP_STAGING, _KEEP_REAL_COPIES, _QUARANTINE_DAYS, _FAILED_DAYS, "
                                  "_SUPERSEDED_DAYS, _STALE_AFTER_S)")
    p.add_argument("--dry-run", action="store_true", help="only say what would be removed")
    p.add_argument("--json", action="store_true")
    p.add_argument("--storage")
    p.add_argument("--db-url")
    p.set_defaults(func=cmd_gc)

    p = sub.add_parser("lineage", help="where a dataset version's rows came from")
    p.add_argument("version", type=int)
    p.add_argument("--json", action="store_true")
    p.add_argument("--db-url")
    p.set_defaults(func=cmd_lineage)
    return parser


def main(argv: list[str] | None = None) -> int:
    from alembic.util import CommandError as AlembicError
    from sqlalchemy.exc import SQLAlchemyError

    from ..collapse.theory import TheoryError
    from ..generators import GeneratorError
    from ..provenance.lifecycle import VersionBusy
    from ..provenance.store import AttemptClosed
    from ..settings import ConfigError
    from ..signing import TamperedArtefact
    from ..sources import SourceError
    from ..storage import StorageError

    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["sandbox"]:  # `synthchain sandbox run FILE [--timeout S] [--memory-mb M] --json`
        from ..sandbox import main as sandbox_main

        return sandbox_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (SpecError, SourceError, GeneratorError, TheoryError, StorageError, ConfigError, VersionBusy,
            TamperedArtefact) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except AttemptClosed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (SQLAlchemyError, AlembicError) as exc:  # the provenance database: unreachable, missing, refused, newer
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        print(f"error: provenance database: {type(exc).__name__}: {reason}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
