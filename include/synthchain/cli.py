"""`synthchain` command line: validate specs, run a spec in-process, inspect versions and lineage.

Exit codes: 0 success, 1 a gate failed (the batch is quarantined), 2 bad input.
"""
from __future__ import annotations

import argparse
import json
import sys
import uuid
from datetime import date, datetime, timezone
from pathlib import Path

from .specs import SpecError, load_spec


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _print_table(rows: list[dict], columns: list[str]) -> None:
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    for r in rows:
        print("  ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns))


def cmd_validate(args) -> int:
    spec = load_spec(args.path)
    print(f"{args.path}: ok (spec '{spec.name}', {len(spec.generators)} generators, target_rows={spec.target_rows})")
    return 0


def cmd_run(args) -> int:
    from .gates import GateFailed
    from .pipeline import RunContext, run_all
    from .provenance import ProvenanceStore
    from .storage import open_storage

    spec = load_spec(args.spec)
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
    from .provenance import ProvenanceStore

    store = ProvenanceStore(args.db_url)
    store.migrate()
    rows = store.versions(args.spec)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    table = []
    for r in rows:
        ev = r.get("evaluation") or {}
        failed = [f"{g['hop']}" for g in r["gates"] if not g["success"]]
        table.append({**r, "gates": "all passed" if r["gates"] and not failed else (f"FAILED: {','.join(failed)}" if failed else "-"),
                      "blend": f"{ev.get('blend', float('nan')):.3f}" if ev else "-",
                      "trtr": f"{ev.get('trtr', float('nan')):.3f}" if ev else "-"})
    if not table:
        print("no dataset versions")
        return 0
    _print_table(table, ["id", "spec", "logical_date", "generators", "status", "run_kind", "real_rows",
                         "synthetic_rows", "carried_rows", "trtr", "blend", "gates"])
    return 0


def cmd_summary(args) -> int:
    from .provenance import ProvenanceStore
    from .storage import open_storage

    store = ProvenanceStore(args.db_url)
    store.migrate()
    published = [v for v in store.versions(args.spec) if v["status"] == "published"]
    if not published:
        print(f"no published version{' of ' + args.spec if args.spec else ''}", file=sys.stderr)
        return 1
    latest = published[-1]
    base = latest["storage_uri"].rsplit("/", 1)[0]
    manifest = open_storage(args.storage).read_json(f"{base}/manifest.json")
    keys = ["dataset_version", "spec", "logical_date", "run_kind", "generators", "rows", "real_rows",
            "synthetic_rows", "carried_rows", "quality_score", "dcr_closer_share"]
    keys += [k for k in manifest if k.startswith(("trtr_", "tstr_", "blend_"))]
    print(f"published dataset version {latest['id']} of {latest['spec']}")
    for key in keys:
        value = manifest.get(key)
        print(f"  {key:<18} {value:.4f}" if isinstance(value, float) else f"  {key:<18} {value}")
    print("  gates              " + ", ".join(f"{g['hop']}={'pass' if g['success'] else 'FAIL'}" for g in latest["gates"]))
    print("files:")
    for label, uri in (("data", manifest["data_uri"]), ("report", manifest["report_uri"]),
                       ("manifest", f"{base}/manifest.json"), ("GX data docs", f"{base}/gx_docs/")):
        print(f"  {label:<13} {uri}")
    return 0


def cmd_lineage(args) -> int:
    from .provenance import ProvenanceStore

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

    p = sub.add_parser("summary", help="the latest published version: figures and where its files are")
    p.add_argument("--spec")
    p.add_argument("--storage")
    p.add_argument("--db-url")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("lineage", help="where a dataset version's rows came from")
    p.add_argument("version", type=int)
    p.add_argument("--json", action="store_true")
    p.add_argument("--db-url")
    p.set_defaults(func=cmd_lineage)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .generation import GeneratorError
    from .sources import SourceError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (SpecError, SourceError, GeneratorError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
