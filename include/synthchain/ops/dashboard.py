"""Server-rendered pages over the provenance store and the artefact storage.

This is the synthchain view shown inside the Airflow UI (plugins/synthchain_ui.py only
wires these functions to routes behind Airflow's auth), kept here as plain functions of
a ProvenanceStore and a Storage so it is testable without Airflow or a web server.

Every link is relative, so the pages work wherever the app is mounted:
    ./                                  index: specs and their dataset versions
    versions/<id>/                      one version: metrics, gates, lineage, collapse trends
    versions/<id>/files/<path>          a file of the version (report.html, manifest.json, gx_docs/...)
    compare?spec=..&a=..&b=..           two lines of a spec side by side (synthchain.ops.compare)
"""
from __future__ import annotations

import html
import importlib
import json
import mimetypes
from collections import defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from sqlalchemy import inspect, select

from ..provenance import ProvenanceStore
from ..provenance.models import DatasetVersion, GateRecord, PipelineRun
from ..specs import discover_specs, load_spec
from ..storage import Storage, StorageError
from ..targets import why_words

# Fields of metrics["summary"] that identify the version rather than measure it (shown elsewhere).
_IDENTITY = {"dataset_version", "spec", "modality", "logical_date", "run_id", "run_kind", "generators", "line",
             "config_hash", "dag_id", "try_number", "generation", "rows", "real_rows", "synthetic_rows",
             "carried_rows"}
_RUN_FIELDS = ("run_id", "run_kind", "status", "message", "dag_id", "try_number")

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:1.2em 1.6em;color:#1f2937}
h1{font-size:1.4em;margin:.2em 0 .6em}h2{font-size:1.15em;margin:1.4em 0 .4em}h3{font-size:1em;margin:1em 0 .3em}
table{border-collapse:collapse;margin:.3em 0 1em}th,td{border:1px solid #d1d5db;padding:3px 7px;text-align:left;
vertical-align:top}th{background:#f3f4f6;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
a{color:#0b63c4}.pass{color:#047857}.fail{color:#b91c1c;font-weight:600}.muted{color:#6b7280}
.published{color:#047857;font-weight:600}.quarantined{color:#b91c1c;font-weight:600}.building{color:#b45309}
.error{background:#fef2f2;border:1px solid #fecaca;padding:.5em;white-space:pre-wrap;font-family:monospace}
ul.gates{margin:0;padding-left:1.1em}code{font-size:.92em}
"""


# --- queries ------------------------------------------------------------------------------------------

def spec_entries(directory: str | Path) -> list[dict]:
    """Every spec file of the folder: its loaded spec, or the error that stopped it from loading."""
    entries = []
    for path in discover_specs(directory):
        try:
            spec = load_spec(path)
            entries.append({"name": spec.name, "path": str(path), "spec": spec, "error": None})
        except Exception as exc:  # a broken spec is listed with its error, the others still show
            entries.append({"name": path.stem, "path": str(path), "spec": None, "error": str(exc)})
    return entries


def _columns(conn, model) -> list:
    """The model's columns that the database has: the schema may be a migration behind or ahead of the code."""
    present = {c["name"] for c in inspect(conn).get_columns(model.__tablename__)}
    return [c for c in model.__table__.c if c.name in present]


def dataset_versions(store: ProvenanceStore, spec_name: str | None = None,
                     version_id: int | None = None) -> list[dict]:
    """Dataset versions, newest first, each with its current run and that run's gate results."""
    with store.engine.connect() as conn:
        if not inspect(conn).has_table(DatasetVersion.__tablename__):
            return []  # nothing has run against this database yet
        run_cols = [c.label(f"run_{c.name}") for c in _columns(conn, PipelineRun) if c.name in _RUN_FIELDS]
        q = (select(*_columns(conn, DatasetVersion), *run_cols)
             .select_from(DatasetVersion.__table__.join(PipelineRun.__table__,
                                                        PipelineRun.id == DatasetVersion.run_pk)))
        if spec_name is not None:
            q = q.where(DatasetVersion.spec_name == spec_name)
        if version_id is not None:
            q = q.where(DatasetVersion.id == version_id)
        rows = [dict(r) for r in conn.execute(
            q.order_by(DatasetVersion.logical_date.desc(), DatasetVersion.id.desc())).mappings()]
        # A version's gates are those of the run that last built it (earlier tries keep their own records).
        gates = defaultdict(list)
        if rows:
            for g in conn.execute(
                    select(GateRecord.dataset_version_id, GateRecord.hop, GateRecord.success, GateRecord.evaluated,
                           GateRecord.failed_expectations, GateRecord.docs_uri)
                    .join(DatasetVersion, (DatasetVersion.id == GateRecord.dataset_version_id)
                          & (DatasetVersion.run_pk == GateRecord.run_pk))
                    .where(GateRecord.dataset_version_id.in_([r["id"] for r in rows]))
                    .order_by(GateRecord.id)).mappings():
                gates[g["dataset_version_id"]].append({
                    "hop": g["hop"], "success": g["success"], "evaluated": g["evaluated"],
                    "failures": g["failed_expectations"] or [], "docs_uri": g["docs_uri"]})
    for r in rows:
        r["line"] = r.get("line") or "main"  # versions written before lines existed belong to the main line
        r["metrics"] = r.get("metrics") or {}
        r["gates"] = gates[r["id"]]
    return rows


def headline_metrics(metrics: dict) -> dict[str, Any]:
    """The figures a reader compares versions by: the published summary's measurements, else the evaluation's."""
    summary = metrics.get("summary") or {}
    figures = {k: v for k, v in summary.items() if k not in _IDENTITY and _is_number(v)}
    if figures:
        return figures
    evaluation = metrics.get("evaluation") or {}
    name = evaluation.get("metric") or "utility"
    return {f"{k}_{name}": evaluation[k] for k in ("trtr", "tstr", "blend") if _is_number(evaluation.get(k))}


# --- files -------------------------------------------------------------------------------------------

def _safe_relpath(path: str) -> str:
    """A relative path that cannot leave the folder it is joined to, or PermissionError."""
    if "\\" in path or "\x00" in path or any(part in ("", ".", "..") for part in path.split("/")):
        raise PermissionError(f"refused path {path!r}")  # also refuses "" and a leading "/"
    return path


def version_root(storage: Storage, version: dict) -> str | None:
    """The storage key of the folder holding a version's files.

    Published: the folder of its data file (report.html, manifest.json, gx_docs/ beside it). Otherwise
    the folder its gates wrote their data docs under (staging), so a quarantined version's docs still open.
    """
    try:
        if version["status"] == "published" and version.get("storage_uri"):
            return storage.key_of(version["storage_uri"]).rsplit("/", 1)[0]
        for gate in version["gates"]:
            if gate.get("docs_uri") and "/gx_docs/" in gate["docs_uri"]:
                return storage.key_of(gate["docs_uri"]).rsplit("/gx_docs/", 1)[0]
    except StorageError:  # written to another storage root than the one we read
        return None
    return None


def version_file(store: ProvenanceStore, storage: Storage, version_id: int, path: str) -> tuple[bytes, str]:
    """A file under the version's own folder and its media type.

    PermissionError for a path that would leave the folder, LookupError when there is no such file.
    """
    rel = _safe_relpath(path)
    found = dataset_versions(store, version_id=version_id)
    if not found:
        raise LookupError(f"no dataset version {version_id}")
    root = version_root(storage, found[0])
    if root is None:
        raise LookupError(f"dataset version {version_id} has no files")
    try:
        data = storage.read_bytes(f"{root}/{rel}")
    except (StorageError, OSError):  # OSError: a folder, not a file
        raise LookupError(f"dataset version {version_id} has no file {rel}") from None
    media = mimetypes.guess_type(rel)[0] or "application/octet-stream"
    if media.startswith("text/") or media == "application/json":
        media += "; charset=utf-8"
    return data, media


# --- pages -------------------------------------------------------------------------------------------

def render_index(store: ProvenanceStore, specs_dir: str | Path) -> str:
    """Every spec in the folder and every spec with versions in the store, with their versions."""
    entries = spec_entries(specs_dir)
    by_spec = defaultdict(list)
    for v in dataset_versions(store):
        by_spec[v["spec_name"]].append(v)
    known = {e["name"] for e in entries}
    # specs whose file is gone still have history worth seeing
    entries += [{"name": n, "path": None, "spec": None, "error": None} for n in sorted(by_spec) if n not in known]
    sections = [_spec_section(e, by_spec.get(e["name"], [])) for e in entries]
    body = "".join(sections) or "<p class=muted>No specs found in the spec folder.</p>"
    return page("synthchain datasets", f"<p class=muted>Spec folder: <code>{_e(specs_dir)}</code></p>{body}")


def _spec_section(entry: dict, versions: list[dict]) -> str:
    name, spec = entry["name"], entry["spec"]
    out = [f"<h2 id='spec-{_e(name)}'>{_e(name)}</h2>"]
    if spec is not None and spec.description:
        out.append(f"<p>{_e(spec.description)}</p>")
    if entry["path"]:
        out.append(f"<p class=muted>Spec file: <code>{_e(entry['path'])}</code></p>")
    elif entry["error"] is None:
        out.append("<p class=muted>No spec file any more; versions from the provenance store.</p>")
    if entry["error"]:
        out.append(f"<div class=error>This spec does not load:\n{_e(entry['error'])}</div>")
    declared = spec.lines() if spec is not None and hasattr(spec, "lines") else {}  # main + candidate lines
    lines = dict.fromkeys(["main", *declared, *(v["line"] for v in versions)])
    if len(lines) > 1:
        links = [f"<a href='{_e(_compare_href(name, 'main', line))}'>main vs {_e(line)}</a>"
                 for line in lines if line != "main"]
        out.append(f"<p>Compare lines: {' · '.join(links)}</p>")
    if not versions:
        out.append("<p class=muted>No dataset versions yet.</p>")
        return "".join(out)
    rows = []
    for v in versions:
        gates = "".join(_gate_item(g) for g in v["gates"]) or "<li class=muted>none yet</li>"
        run = f"{_e(v.get('run_run_id'))}<br><span class=muted>{_e(v.get('run_run_kind'))}"
        if v.get("run_try_number") is not None:
            run += f", try {_e(v['run_try_number'])}"
        run += "</span>"
        rows.append(
            f"<tr><td><a href='versions/{v['id']}/'>{v['id']}</a></td><td class={_e(v['status'])}>{_e(v['status'])}</td>"
            f"<td>{_e(v['logical_date'])}</td><td>{_e(v['line'])}</td><td><code>{_e(v['generators_key'])}</code></td>"
            f"<td>{run}</td><td class=num>{_n(v['real_rows'])}</td><td class=num>{_n(v['synthetic_rows'])}</td>"
            f"<td class=num>{_n(v['carried_rows'])}</td><td><ul class=gates>{gates}</ul></td>"
            f"<td>{_kv(headline_metrics(v['metrics']))}</td>"
            f"<td>{_file_links(v)}</td></tr>")
    out.append("<table><tr><th>version</th><th>status</th><th>logical date</th><th>line</th><th>generators</th>"
               "<th>run</th><th>real</th><th>synthetic</th><th>carried</th><th>gates</th><th>headline metrics</th>"
               "<th>files</th></tr>" + "".join(rows) + "</table>")
    return "".join(out)


def _gate_item(gate: dict) -> str:
    mark = "<span class=pass>pass</span>" if gate["success"] else "<span class=fail>FAIL</span>"
    failed = _failures(gate)
    return f"<li>{_e(gate['hop'])}: {mark}{f'<ul>{failed}</ul>' if failed else ''}</li>"


def _failures(gate: dict) -> str:
    """The failed expectations of a gate, in the words the gate used (column, bound, observed value)."""
    return "".join(f"<li>{_e(f.get('description') or f.get('expectation'))}</li>" for f in gate["failures"])


def _file_links(v: dict) -> str:
    if v["status"] != "published":
        return "<span class=muted>—</span>"
    base = f"versions/{v['id']}/files/"
    return f"<a href='{base}report.html'>report</a> · <a href='{base}manifest.json'>manifest</a>"


def render_version(store: ProvenanceStore, storage: Storage, version_id: int) -> str:
    """One version: facts, links to its files, gates with their data docs, metrics, lineage and collapse trends.

    The page lives at versions/<id>/, so its own files are at files/... and the index at ../../.
    """
    found = dataset_versions(store, version_id=version_id)
    if not found:
        raise LookupError(f"no dataset version {version_id}")
    v = found[0]
    has_files = version_root(storage, v) is not None
    facts = {
        "spec": f"<a href='../../#spec-{_e(v['spec_name'])}'>{_e(v['spec_name'])}</a>",
        "status": f"<span class={_e(v['status'])}>{_e(v['status'])}</span>",
        "logical date": _e(v["logical_date"]), "line": _e(v["line"]),
        "generators": f"<code>{_e(v['generators_key'])}</code>", "generation": _e(v["generation"]),
        "config hash": f"<code>{_e(v.get('config_hash') or '—')}</code>",
        "run": _e(" · ".join(filter(None, [
            v.get("run_run_id"), v.get("run_run_kind"), v.get("run_dag_id") and f"DAG {v['run_dag_id']}",
            v.get("run_try_number") and f"try {v['run_try_number']}", v.get("run_status")]))),
        "rows (real / synthetic / carried)": " / ".join(_n(v[k]) for k in ("real_rows", "synthetic_rows", "carried_rows")),
        "published at": _e(v.get("published_at") or "—"),
    }
    if v.get("run_message"):
        facts["run message"] = f"<span class=fail>{_e(v['run_message'])}</span>"
    links = []
    if v["status"] == "published":
        links += ["<a href='files/report.html'>HTML report</a>", "<a href='files/manifest.json'>manifest.json</a>"]
    if has_files:
        links += [f"<a href='files/gx_docs/index_{quote(g['hop'])}.html'>GX data docs: {_e(g['hop'])}</a>"
                  for g in v["gates"] if g.get("docs_uri")]
    body = ["<p><a href='../../'>← all datasets</a></p>",
            "<table>" + "".join(f"<tr><th>{_e(k)}</th><td>{val}</td></tr>" for k, val in facts.items()) + "</table>",
            f"<p>{' · '.join(links)}</p>" if links else "",
            "<h2>Gates</h2>", _gates_table(v["gates"], has_files),
            "<h2>Headline metrics</h2>", _kv(headline_metrics(v["metrics"])) or "<p class=muted>none</p>",
            *_targets_section(v["metrics"]),
            "<h2>Collapse monitors over generations</h2>", _collapse_section(store, version_id, v["metrics"]),
            "<h2>Lineage</h2>", _lineage_section(store.lineage(version_id)),
            "<h2>All metrics</h2>", _metrics_tables(v["metrics"])]
    return page(f"{v['spec_name']} · version {version_id}", "".join(body))


def _targets_section(metrics: dict) -> list[str]:
    """A targeted version: its slices (rule, why, quota, rounds) and each class and slice against the baselines."""
    slices = [s for s in ((metrics.get("targets") or {}).get("slices") or []) if s["name"] != "all"]
    if not slices:
        return []
    out = ["<h2>Targets</h2>", _table([{**s, "why": why_words(s.get("why") or {})}
                                       for s in slices],
                                      ["name", "rule", "why", "quota", "planned", "generated", "kept", "shortfall",
                                       "rounds"])]
    table = ((metrics.get("evaluation") or {}).get("slices") or {}).get("rows") or []
    rows = []
    for row in table:
        if not row.get("judged"):
            rows.append({"class / slice": row["name"], "rule": row.get("rule"), "metric": row.get("reason")})
            continue
        for metric in ("pr_auc", "f1"):
            figures = row["metrics"][metric]
            gain = row["gain_over_best_baseline"][metric]
            rows.append({"class / slice": row["name"], "rule": row.get("rule"), "metric": metric,
                         **{model: _interval(figures[model]) for model in ("real", "weighted", "smote", "blend")
                            if model in figures},
                         "best": row["best"][metric], "blend − best baseline": _interval(gain, signed=True)})
    if rows:
        out += ["<h3>Per class and slice against the baselines (holdout, 95% intervals)</h3>",
                _table(rows, ["class / slice", "rule", "metric", "real", "weighted", "smote", "blend", "best",
                              "blend − best baseline"])]
    return out


def _interval(figure: dict, signed: bool = False) -> str:
    point, (lo, hi) = figure["point"], figure["ci"]
    fmt = "{:+.3f}" if signed else "{:.3f}"
    return f"{fmt.format(point)} [{fmt.format(lo)}, {fmt.format(hi)}]"


def _gates_table(gates: list[dict], has_files: bool) -> str:
    if not gates:
        return "<p class=muted>No gate has run yet.</p>"
    rows = []
    for g in gates:
        result = "<span class=pass>pass</span>" if g["success"] else "<span class=fail>FAIL</span>"
        failed = _failures(g)
        docs = (f"<a href='files/gx_docs/index_{quote(g['hop'])}.html'>data docs</a>"
                if has_files and g.get("docs_uri") else "—")
        rows.append(f"<tr><td>{_e(g['hop'])}</td><td>{result}</td><td class=num>{_n(g['evaluated'])}</td>"
                    f"<td>{f'<ul class=gates>{failed}</ul>' if failed else ''}</td><td>{docs}</td></tr>")
    return ("<table><tr><th>hop</th><th>result</th><th>expectations</th><th>failed expectations</th>"
            "<th>GX data docs</th></tr>" + "".join(rows) + "</table>")


def _collapse_section(store: ProvenanceStore, version_id: int, metrics: dict) -> str:
    """A monitor per row, a generation per column, with a sparkline: how the data drifts as generations feed on each other."""
    chain = store.ancestry(version_id)
    history = [(a["generation"], a["id"], (a["metrics"] or {}).get("collapse") or {}) for a in chain]
    monitors = list(dict.fromkeys(m for _, _, values in history for m in values))
    if not monitors:
        return "<p class=muted>No collapse monitors measured.</p>"
    verdicts = {v["monitor"]: v for v in metrics.get("collapse_verdicts") or []}
    head = "".join(f"<th>gen {g}<br><a class=muted href='../{vid}/'>v{vid}</a></th>" for g, vid, _ in history)
    rows = []
    for m in monitors:
        values = [values.get(m) for _, _, values in history]
        verdict = verdicts.get(m)
        judged = ("—" if verdict is None else
                  f"<span class={'fail' if verdict.get('tripped') else 'pass'}>"
                  f"{'tripped' if verdict.get('tripped') else 'ok'}</span> (limit {_n(verdict.get('limit'))})")
        rows.append(f"<tr><td>{_e(m)}</td>{''.join(f'<td class=num>{_n(x)}</td>' for x in values)}"
                    f"<td>{sparkline(values)}</td><td>{judged}</td></tr>")
    return (f"<table><tr><th>monitor</th>{head}<th>trend</th><th>verdict</th></tr>{''.join(rows)}</table>"
            f"<p class=muted>{len(history)} generation(s) along the fitted-on ancestry.</p>")


def sparkline(values: list, width: int = 120, height: int = 24) -> str:
    """An inline SVG polyline of the numeric values (gaps skipped); empty with fewer than two points."""
    points = [(i, float(v)) for i, v in enumerate(values) if _is_number(v)]
    if len(points) < 2:
        return ""
    lo, hi = min(v for _, v in points), max(v for _, v in points)
    span, steps = (hi - lo) or 1.0, max(len(values) - 1, 1)
    xy = " ".join(f"{2 + i * (width - 4) / steps:.1f},{height - 2 - (v - lo) / span * (height - 4):.1f}"
                  for i, v in points)
    dots = "".join(f"<circle cx='{p.split(',')[0]}' cy='{p.split(',')[1]}' r='1.8'/>" for p in xy.split())
    return (f"<svg width='{width}' height='{height}' viewBox='0 0 {width} {height}' role='img' "
            f"aria-label='trend'><polyline fill='none' stroke='#0b63c4' stroke-width='1.5' points='{xy}'/>"
            f"<g fill='#0b63c4'>{dots}</g></svg>")


def _lineage_section(lineage: dict) -> str:
    out = []
    if lineage["parents"]:
        out.append("<p>Parents: " + ", ".join(
            f"<a href='../{p['version']}/'>version {p['version']}</a> ({_e(p['relation'])})"
            for p in lineage["parents"]) + "</p>")
    out.append("<h3>Rows by origin</h3>" + _table(lineage["rows"], ["origin", "generator", "generator_version",
                                                                   "generation", "count"]))
    out.append("<h3>Generators</h3>" + _table(lineage["generators"], ["name", "version", "family", "params_hash",
                                                                     "rows_generated"]))
    out.append("<h3>Dropped rows</h3>" + _table(lineage["dropped"], ["hop", "filter", "generator", "count"]))
    return "".join(out)


def _metrics_tables(metrics: dict) -> str:
    """Each metrics section (profile, generation, verification, ...) as a flat key/value table."""
    parts = []
    for section, values in metrics.items():
        if section in ("summary", "collapse_verdicts"):
            continue
        flat = _flatten(values) if isinstance(values, dict) else {section: values}
        parts.append(f"<details><summary>{_e(section)}</summary>{_kv(flat)}</details>")
    return "".join(parts) or "<p class=muted>none</p>"


def render_comparison(store: ProvenanceStore, spec_name: str, line_a: str, line_b: str) -> str:
    """Two lines of a spec compared by synthchain.ops.compare; LookupError for a line without versions (or no module)."""
    try:
        compare = importlib.import_module(f"{__package__}.compare")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__package__}.compare":
            raise
        raise LookupError("line comparison is not available in this synthchain version") from None
    content = compare.render_comparison_html(compare.compare_lines(store, spec_name, line_a, line_b))
    back = "<p><a href='./'>← all datasets</a></p>"
    if "<body>" in content:  # a whole page of its own: add the way back
        return content.replace("<body>", f"<body>{back}", 1)
    return page(f"{spec_name}: {line_a} vs {line_b}", back + content)


def page(title: str, body: str) -> str:
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{_e(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{_e(title)}</h1>{body}</body></html>")


# --- small helpers -----------------------------------------------------------------------------------

def _compare_href(spec: str, a: str, b: str) -> str:
    return "compare?" + urlencode({"spec": spec, "a": a, "b": b})


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _n(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return _e(value)


def _flatten(values: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in values.items():
        if isinstance(v, dict) and v:
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _kv(values: dict) -> str:
    if not values:
        return ""
    cells = "".join(f"<tr><th>{_e(k)}</th><td class=num>{_n(v) if not isinstance(v, (list, dict)) else _e(json.dumps(v))}"
                    f"</td></tr>" for k, v in values.items())
    return f"<table>{cells}</table>"


def _table(rows: list[dict], columns: list[str]) -> str:
    if not rows:
        return "<p class=muted>none</p>"
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_n(r.get(c))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"
