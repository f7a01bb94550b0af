"""The published version's HTML report, for every modality: the page, its summary, gates, utility, dropped
rows and collapse sections, and the helpers (tables, PNG plots) the modalities' own sections use
(tabular/report.py, text/report.py, code/report.py). Plots are embedded as PNG, no external assets."""
from __future__ import annotations

import base64
import html
import io
import math

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

REAL, SYNTH = "#1f77b4", "#ff7f0e"


def integer_axis(axis) -> None:
    """Integer ticks (generations): min_n_ticks=1 because with one generation the view holds a single
    integer, and MaxNLocator(integer=True) falls back to fractional ticks when it finds fewer than that."""
    axis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))


def png_uri(fig) -> str:
    """A matplotlib figure as an inline PNG data URI (closes the figure)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def utility_plot(evaluation: dict) -> str:
    """TRTR, TSTR and blend on the real holdout, each bar with its 95% interval (`<key>_ci`) as an error bar
    where the evaluation has one."""
    fig, ax = plt.subplots(figsize=(5, 3.2))
    labels = ["TRTR (real)", "TSTR (synthetic)", "blend"]
    keys = ["trtr", "tstr", "blend"]
    values = [v if _finite(v) else 0.0 for v in (evaluation.get(k) for k in keys)]
    errors = [_error_bar(v, evaluation.get(f"{k}_ci")) for k, v in zip(keys, values)]
    ax.bar(labels, values, color=[REAL, SYNTH, "#2ca02c"], yerr=[[e[0] for e in errors], [e[1] for e in errors]],
           capsize=4, ecolor="#333333")
    for i, (v, (_, above)) in enumerate(zip(values, errors)):
        ax.text(i, v + above, f"{v:.3f}", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel(evaluation.get("metric", "score") + " on real holdout")
    lows = [v - below for v, (below, _) in zip(values, errors)]
    highs = [v + above for v, (_, above) in zip(values, errors)]
    ax.set_ylim(min(0.0, min(lows)), max(1.0, max(highs) * 1.1))
    return png_uri(fig)


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _error_bar(value: float, ci) -> tuple[float, float]:
    """(below, above) the bar for its interval; (0, 0) without one. A percentile interval need not contain
    the point, so each side is at least 0."""
    if not ci or len(ci) != 2 or not all(_finite(c) for c in ci):
        return 0.0, 0.0
    return max(value - ci[0], 0.0), max(ci[1] - value, 0.0)


def monitor_trends_plot(history: list[dict], limits: dict[str, float]) -> str:
    """One panel per collapse monitor: its value at each generation of this version's ancestry."""
    names = sorted({k for h in history for k, v in h["values"].items() if v is not None})
    fig, axes = plt.subplots(1, max(len(names), 1), figsize=(3.2 * max(len(names), 1), 2.8), squeeze=False)
    for ax, name in zip(axes.flat, names):
        points = [(h["generation"], h["values"][name]) for h in history if h["values"].get(name) is not None]
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", color=SYNTH)
        ax.set_title(f"{name} (limit {limits.get(name, '—')})", fontsize=8)
        ax.set_xlabel("generation", fontsize=7)
        integer_axis(ax.xaxis)
        ax.tick_params(labelsize=6)
    fig.tight_layout()
    return png_uri(fig)


def measurement_table(verification: dict, filtering: dict, evaluation: dict, kept: dict, blending: dict) -> str:
    """How each figure was measured where the data were large or the rows fell short: what users must know
    to read the figures (a sampled model, an approximate index and its audited recall, a row budget missed)."""
    rows = []
    if verification.get("dcr_method"):
        how = f"{verification['dcr_method']} search ({verification.get('dcr_index', '?')})"
        ref, distinct = verification.get("dcr_reference_rows"), verification.get("dcr_distinct_reference_rows")
        if ref:
            how += f" over {ref:,} training rows" + (f" ({distinct:,} distinct)" if distinct and distinct != ref else "")
        if verification.get("dcr_audit_recall_at_1") is not None:
            how += (f"; audited on {verification.get('dcr_audit_queries', 0):,} queries against exact search: "
                    f"recall@1 {verification['dcr_audit_recall_at_1']:.4f}")
        rows.append({"figure": "distance to closest record (DCR, NNDR)", "how": how})
    detection = filtering.get("off_distribution") or {}
    if detection.get("detection_real_rows") is not None:
        how = (f"{detection['detection_real_rows']:,} real + {detection.get('detection_synthetic_rows', 0):,} synthetic "
               f"rows judged out-of-fold; each fold trained on {detection.get('detection_fit_rows', 0):,} rows")
        rows.append({"figure": "off-distribution classifier",
                     "how": how + (" (sampled)" if detection.get("detection_sampled") else "")})
    used, full = evaluation.get("evaluation_train_rows") or {}, evaluation.get("train_rows") or {}
    if used:
        parts = [f"{name} {used[name]:,}" + (f" of {full[name]:,}" if full.get(name, used[name]) != used[name] else "")
                 for name in used]
        rows.append({"figure": "downstream models", "how": "trained on " + ", ".join(parts) + " rows; scored on "
                     f"{evaluation.get('evaluation_holdout_rows', 0):,} holdout rows"})
    learner = evaluation.get("learner") or {}
    if isinstance(learner, dict) and learner.get("why"):  # chosen by cross-validation on the real training rows
        rows.append({"figure": "downstream learner", "how": f"{learner['chosen']}: {learner['why']}"})
    if kept.get("shortfall_rows"):
        rows.append({"figure": "synthetic rows kept",
                     "how": f"{kept['kept_rows']:,} of the {kept['target_rows']:,} asked for "
                            f"({kept['shortfall_rows']:,} short after the filters)"})
    if blending.get("budget_shortfall"):
        rows.append({"figure": "real share of the blend",
                     "how": f"{blending['real_share']:.3f} instead of the spec's {blending['spec_real_fraction']:.3f}: "
                            f"{blending['budget_shortfall']:,} synthetic rows short of the blend's room "
                            f"({blending['synthetic_budget']:,})"})
    return html_table(rows, ["figure", "how"]) if rows else "<p>Every figure was measured on all rows.</p>"


def html_table(rows: list[dict], columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(r.get(c, '')))}</td>" for c in columns) + "</tr>"
                   for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render_report(*, title: str, summary: dict, sections: list[tuple[str, str]],
                  evaluation: dict, gates: list[dict], drops: dict, docs_links: dict[str, str],
                  collapse_history: list[dict] | None = None, collapse_verdicts: list[dict] | None = None,
                  collapse_limits: dict[str, float] | None = None) -> str:
    gate_rows = [{"hop": g["hop"], "result": "pass" if g["success"] else "FAIL", "expectations": g["evaluated"],
                  "failed": "; ".join(f["description"] for f in g.get("failures", [])) or "—",
                  "data docs": docs_links.get(g["hop"], "")} for g in gates]
    summary_rows = [{"figure": k, "value": (f"{v:.4f}" if isinstance(v, float) else v)} for k, v in summary.items()]
    drop_rows = [{"filter": k, "dropped": v} for k, v in drops.items()]
    modality_sections = sections
    sections = [
        ("Summary", html_table(summary_rows, ["figure", "value"])),
        ("Gates", html_table(gate_rows, ["hop", "result", "expectations", "failed", "data docs"])),
    ]
    if evaluation.get("trtr") is not None:
        sections.append(("Downstream utility", f'<img src="{utility_plot(evaluation)}">'))
    sections += [*modality_sections, ("Dropped rows by filter", html_table(drop_rows, ["filter", "dropped"]))]
    if collapse_history:
        verdict_rows = [{**v, "trend": " → ".join(f"{x:.4f}" for x in v["trend"]),
                         **{k: f"{v[k]:.4f}" for k in ("value", "baseline", "degradation")}}
                        for v in (collapse_verdicts or [])]
        sections.append(("Collapse monitors over generations",
                         f'<img src="{monitor_trends_plot(collapse_history, collapse_limits or {})}" style="max-width:100%">'
                         + (html_table(verdict_rows, ["monitor", "generation", "baseline", "value", "degradation", "limit",
                                                  "tripped", "trend"]) if verdict_rows else
                            "<p>Generation 0: this version is the baseline later generations are judged against.</p>")))
    return html_page(title, "".join(f"<h2>{html.escape(h)}</h2>{content}" for h, content in sections))


def html_page(title: str, body: str) -> str:
    """A self-contained HTML page (no external assets)."""
    style = ("body{font-family:sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:4px 8px;font-size:13px;text-align:left}")
    return f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>" \
           f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>"


# --- per class and slice against the baselines ---------------------------------------------------------

MODEL_NAMES = {"real": "real", "weighted": "weighted", "smote": "SMOTE", "blend": "blend"}
SLICE_METRICS = {"pr_auc": "PR-AUC", "f1": "F1", "precision": "precision", "recall": "recall"}


def slice_table_section(result: dict) -> str:
    """Rare classes and slices against the cheap baselines (slice_scores; a modality's evaluate_slices): one table, a row per
    class or slice and metric, each model's point and 95% interval, the best model and the blend's gains;
    a row too small to judge says so."""
    if "skipped" in result:
        return f"<p>Not evaluated: {html.escape(result['skipped'])}</p>"
    columns = ["class or slice", "holdout rows (of the class)", "metric", *MODEL_NAMES.values(), "best", "blend − real",
               "blend − best baseline"]
    rows = []
    for row in result["rows"]:
        head = {"class or slice": _slice_row_name(row),
                "holdout rows (of the class)": f"{row['holdout_rows']} ({row['positives']})"}
        if not row["judged"]:
            rows.append({**head, "metric": f"not judged: {row['reason']}"})
            continue
        for metric, label in SLICE_METRICS.items():
            figures = row["metrics"][metric]
            line = {**head, "metric": label,
                    **{MODEL_NAMES[m]: _with_interval(figures[m]) if m in figures else "—" for m in MODEL_NAMES}}
            if metric in row["best"]:
                gain = row["gain_over_best_baseline"][metric]
                line.update({"best": MODEL_NAMES.get(row["best"][metric], "—"),
                             "blend − real": _with_interval(row["blend_minus_real"][metric], signed=True),
                             "blend − best baseline": f"{_with_interval(gain, signed=True)} "
                                                      f"(vs {MODEL_NAMES.get(gain['baseline'], '—')})"})
            rows.append(line)
    return f"<p>{html.escape(_slice_note(result))}</p>" + html_table(rows, columns)


def _slice_row_name(row: dict) -> str:
    if row["kind"] == "class":
        return f"class {row['class']}"
    return f"slice {row['name']} ({row['rule']}), class {row['class']}"


def _with_interval(figure: dict, signed: bool = False) -> str:
    point, (lo, hi) = figure["point"], figure["ci"]
    if not np.isfinite(point):
        return "undefined"
    fmt = "{:+.3f}" if signed else "{:.3f}"
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return fmt.format(point) + " (no interval)"
    return f"{fmt.format(point)} ({fmt.format(lo)} to {fmt.format(hi)})"


def _slice_note(result: dict) -> str:
    """How the table was made: the learner, the decision, each model's threshold, what SMOTE did."""
    models, smote = result["models"], result.get("smote")
    thresholds = "; ".join(f"{MODEL_NAMES[m]} {info['threshold']:.3f}" for m, info in models.items()
                           if "threshold" in info)
    parts = [f"Every model is {result['learner']['model']} (chosen on the real training rows) scored on "
             f"{result['holdout_rows']} holdout rows. Decision: {result['decision']}."]
    if thresholds:
        parts.append(f"Thresholds: {thresholds}.")
    if smote is not None:  # a modality without SMOTE (text) has no such entry
        parts.append(f"{smote['method']}: {smote['generated_rows']} rows made" if smote["ran"] else
                     f"{smote['method']} did not run, so there is no SMOTE model")
        parts[-1] += f" ({smote['note']})." if smote["note"] else "."
    boot = result["bootstrap"]
    parts.append(f"Slices are scored on class {result['positive']!r}. Intervals: {boot['confidence']:.0%} paired "
                 f"bootstrap ({boot['resamples']} resamples of each row's holdout rows, the same for every "
                 f"model); a row with fewer than {result['min_holdout_rows']} holdout rows is not judged.")
    return " ".join(parts)
