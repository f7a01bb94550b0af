"""Two lines of one spec side by side, date by date: is the candidate generator version better?

A line is the main line or a candidate (see DatasetSpec.candidates). For every logical date
either line has a version of, the comparison puts quality, privacy, utility, collapse monitors,
row counts and drop reasons next to each other with the difference (candidate minus main).
"""
from __future__ import annotations

import html
from collections import Counter
from typing import Any

from ..provenance import ProvenanceStore

# figure -> where it lives in a version's metrics, and which direction is better
FIGURES: dict[str, tuple[str, tuple[str, ...], str]] = {
    # section, path in metrics, better
    "quality_score": ("quality", ("verification", "quality_score"), "higher"),
    "constraint_violation_rate": ("quality", ("verification", "constraint_violation_rate"), "lower"),
    "detection_auc": ("quality", ("verification", "detection_auc"), "lower"),
    "distinct_2": ("quality", ("verification", "distinct_2"), "higher"),
    "dcr_closer_share": ("privacy", ("verification", "dcr_closer_share"), "lower"),
    "memorised_share": ("privacy", ("verification", "memorised_share"), "lower"),
    "contaminated_share": ("privacy", ("verification", "contaminated_share"), "lower"),
    "trtr": ("utility", ("evaluation", "trtr"), "higher"),
    "tstr": ("utility", ("evaluation", "tstr"), "higher"),
    "blend": ("utility", ("evaluation", "blend"), "higher"),
    "blend_minus_trtr": ("utility", ("evaluation", "blend_minus_trtr"), "higher"),
}
COUNTS = ("real_rows", "synthetic_rows", "carried_rows")


def _get(metrics: dict, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(metrics, dict):
            return None
        metrics = metrics.get(key)
    return metrics


def _line_versions(store: ProvenanceStore, spec: str, line: str) -> dict[str, dict]:
    """The version per date of a line: of the line's usual configuration (the one most of its dates ran with),
    so a one-off manual run with other parameters does not stand for the line; published before quarantined."""
    versions = store.versions(spec, line=line)
    usual = Counter(v["config_hash"] for v in versions)
    out: dict[str, dict] = {}
    for v in versions:
        rank = (usual[v["config_hash"]], v["status"] == "published", v["id"])
        current = out.get(v["logical_date"])
        if current is None or rank > current[0]:
            out[v["logical_date"]] = (rank, v)
    return {day: v for day, (_, v) in out.items()}


def _figures(store: ProvenanceStore, v: dict | None) -> dict[str, Any]:
    if v is None:
        return {}
    metrics = v["metrics"] or {}
    out: dict[str, Any] = {"version": v["id"], "status": v["status"], "generators": v["generators"],
                           "run_id": v["run_id"], "gates_failed": [g["hop"] for g in v["gates"] if not g["success"]]}
    out.update({k: v[k] for k in COUNTS})
    for name, (_, path, _) in FIGURES.items():
        value = _get(metrics, path)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = value
    out["collapse"] = {k: val for k, val in (metrics.get("collapse") or {}).items() if isinstance(val, (int, float))}
    drops: Counter = Counter()
    for d in store.lineage(v["id"])["dropped"]:
        drops[d["filter"]] += d["count"]
    out["dropped"] = dict(sorted(drops.items()))
    return out


def compare_lines(store: ProvenanceStore, spec_name: str, line_a: str = "main", line_b: str | None = None) -> dict:
    """Per date: both lines' figures and the difference b - a of every number both have."""
    lines = sorted({v["line"] for v in store.versions(spec_name)})
    if line_b is None:  # the one other line, when there is exactly one
        others = [line for line in lines if line != line_a]
        if len(others) != 1:
            raise LookupError(f"{spec_name}: name the line to compare with {line_a!r}; lines: {lines}")
        line_b = others[0]
    for line in (line_a, line_b):
        if line not in lines:
            raise LookupError(f"{spec_name}: no dataset version on line {line!r}; lines: {lines}")
    a, b = _line_versions(store, spec_name, line_a), _line_versions(store, spec_name, line_b)
    dates = []
    for day in sorted(set(a) | set(b)):
        fa, fb = _figures(store, a.get(day)), _figures(store, b.get(day))
        delta = {k: fb[k] - fa[k] for k in (*COUNTS, *FIGURES) if isinstance(fa.get(k), (int, float))
                 and isinstance(fb.get(k), (int, float))}
        delta["collapse"] = {k: fb["collapse"][k] - fa["collapse"][k]
                             for k in fa.get("collapse", {}) if k in fb.get("collapse", {})}
        dates.append({"logical_date": day, "a": fa, "b": fb, "delta": delta})
    return {"spec": spec_name, "a": line_a, "b": line_b, "lines": lines, "dates": dates,
            "better": {k: better for k, (_, _, better) in FIGURES.items()}}


def _fmt(value: Any) -> str:
    if value is None or value == {}:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_fmt(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "none"
    return str(value)


def _delta_cell(name: str, value: Any, better: str | None) -> str:
    if not isinstance(value, (int, float)):
        return "<td>–</td>"
    good = better and value != 0 and ((value > 0) == (better == "higher"))
    bad = better and value != 0 and not good
    cls = ' class="good"' if good else (' class="bad"' if bad else "")
    return f"<td{cls}>{value:+.4g}</td>"


def render_comparison_html(result: dict) -> str:
    """One table per date: a row per figure with both lines and the difference (green better, red worse)."""
    esc = html.escape
    a, b = esc(result["a"]), esc(result["b"])
    parts = [f"<h1>synthchain · {esc(result['spec'])} · line {b} vs {a}</h1>",
             f"<p>Differences are {b} minus {a}; green is better for {b}, red worse.</p>"]
    for day in result["dates"]:
        fa, fb, delta = day["a"], day["b"], day["delta"]
        rows = [f"<tr><th>figure</th><th>{a}</th><th>{b}</th><th>difference</th></tr>"]
        for key in ("version", "status", "generators", "run_id", "gates_failed", *COUNTS):
            rows.append(f"<tr><td>{key}</td><td>{esc(_fmt(fa.get(key)))}</td><td>{esc(_fmt(fb.get(key)))}</td>"
                        + (_delta_cell(key, delta.get(key), None) if key in COUNTS else "<td></td>") + "</tr>")
        for key, (section, _, better) in FIGURES.items():
            if key in fa or key in fb:
                rows.append(f"<tr><td>{section}: {key} ({better} is better)</td><td>{_fmt(fa.get(key))}</td>"
                            f"<td>{_fmt(fb.get(key))}</td>{_delta_cell(key, delta.get(key), better)}</tr>")
        for key in sorted(set(fa.get("collapse", {})) | set(fb.get("collapse", {}))):
            rows.append(f"<tr><td>collapse: {esc(key)}</td><td>{_fmt(fa['collapse'].get(key))}</td>"
                        f"<td>{_fmt(fb['collapse'].get(key))}</td>{_delta_cell(key, delta['collapse'].get(key), None)}</tr>")
        rows.append(f"<tr><td>dropped by filter</td><td>{esc(_fmt(fa.get('dropped')))}</td>"
                    f"<td>{esc(_fmt(fb.get('dropped')))}</td><td></td></tr>")
        parts.append(f"<h2>{esc(day['logical_date'])}</h2><table>{''.join(rows)}</table>")
    style = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:1.5em}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}.good{background:#dfd}.bad{background:#fdd}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(result['spec'])}: {b} vs {a}</title>"
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>")
