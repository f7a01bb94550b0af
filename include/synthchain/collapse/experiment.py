"""The collapse experiment on the real pipeline: N generations per mode, monitors traced.

Each (mode, repetition) chain runs under its own spec name (`<spec>__collapse_<mode>_r<k>`)
and seed, one logical date per generation, with `collapse.enforce` off and the other gates
opened up, so the whole curve is traced instead of stopping at the first refusal. A single
chain's TSTR moves by a few AUC points from sampling noise alone (the holdout has ~100 rare-
class rows), so curves are means over repetitions with their standard errors. The table marks
which monitors would have refused publication; `first_flag` is the first such generation.
"""
from __future__ import annotations

import uuid
from datetime import date, timedelta

import numpy as np

from ..pipeline import RunContext, run_all
from ..provenance import ProvenanceStore
from ..report import html_page, html_table, integer_axis, png_uri
from ..specs import CollapseSpec, DatasetSpec, GateSpec, GenerationsSpec
from ..storage import Storage
from .monitors import REGISTRY, load_all_monitors

OPEN_GATES = GateSpec(min_real_rows=10, min_quality_score=0.0, max_dcr_closer_share=1.0,
                      max_constraint_violation_rate=1.0, max_drop_fraction=1.0, max_synthetic_share=1.0,
                      max_utility_drop=1.0, min_tstr_ratio=0.0)


# Text gates opened the same way (the diversity gate would otherwise stop a replace chain, as it should).
OPEN_TEXT_GATES = {"max_memorised_share": 1.0, "max_duplicate_rate": 1.0, "min_distinct_2": 0.0,
                   "min_vocab_ratio": 0.0, "min_tail_coverage": 0.0, "max_label_tvd": 1.0}


def experiment_spec(spec: DatasetSpec, mode: str, target_rows: int | None = None, rep: int = 0) -> DatasetSpec:
    return spec.model_copy(update={
        "text": spec.text.model_copy(update=OPEN_TEXT_GATES),
        "name": f"{spec.name[:40]}__collapse_{mode.replace('-', '_')}_r{rep}",
        "seed": spec.seed + 1000 * rep,
        "generations": GenerationsSpec(source="previous_version", mode=mode),
        "collapse": CollapseSpec(enforce=False, limits=spec.collapse.limits),
        "gates": OPEN_GATES,
        "target_rows": target_rows or spec.target_rows,
    })


def run_mode(spec: DatasetSpec, mode: str, generations: int, storage: Storage, store: ProvenanceStore,
             start: date = date(2026, 1, 1), target_rows: int | None = None, rep: int = 0) -> list[dict]:
    """One chain: `generations` published versions, each fitted on the one before."""
    exp = experiment_spec(spec, mode, target_rows, rep)
    rows = []
    for generation in range(generations):
        day = start + timedelta(days=generation)
        ctx = RunContext(exp, day, f"collapse__{exp.name}__{day}__{uuid.uuid4().hex[:6]}", "experiment", storage, store)
        out = run_all(ctx)
        version = store.version(out["dataset_version"])
        metrics = version["metrics"]
        flagged = sorted(v["monitor"] for v in metrics.get("collapse_verdicts", []) if v["tripped"])
        rows.append({"mode": mode, "rep": rep, "generation": version["generation"], "version": version["id"],
                     **{k: metrics.get("collapse", {}).get(k) for k in REGISTRY},
                     "tstr": metrics["evaluation"].get("tstr"),  # a monitor for tabular; the same figure for text
                     "trtr": metrics["evaluation"]["trtr"], "blend": metrics["evaluation"]["blend"],
                     "flagged": flagged})
    return rows


def figures() -> list[str]:
    """Every modality's monitors, then the blend's utility."""
    return list(dict.fromkeys([*load_all_monitors(), "tstr", "blend"]))


def mean_curves(rows: list[dict]) -> list[dict]:
    """Per (mode, generation): mean and standard error of every figure over repetitions."""
    out = []
    for mode in dict.fromkeys(r["mode"] for r in rows):
        for generation in sorted({r["generation"] for r in rows if r["mode"] == mode}):
            group = [r for r in rows if r["mode"] == mode and r["generation"] == generation]
            entry = {"mode": mode, "generation": generation, "reps": len(group),
                     "flagged_share": float(np.mean([bool(r["flagged"]) for r in group]))}
            for key in figures():
                values = np.array([r[key] for r in group if r.get(key) is not None], dtype=float)
                entry[key] = float(values.mean()) if values.size else None
                entry[f"{key}_se"] = float(values.std(ddof=1) / np.sqrt(values.size)) if values.size > 1 else None
            out.append(entry)
    return out


def summarise(rows: list[dict]) -> dict:
    curves = mean_curves(rows)
    out = {}
    for mode in dict.fromkeys(r["mode"] for r in curves):
        series = [c for c in curves if c["mode"] == mode]
        chains = [sorted((r for r in rows if r["mode"] == mode and r["rep"] == rep), key=lambda r: r["generation"])
                  for rep in sorted({r["rep"] for r in rows if r["mode"] == mode})]
        first_flags = [next((r for r in chain if r["flagged"]), None) for chain in chains]
        tstr0 = series[0]["tstr"]
        tail = "tail_coverage" if series[0].get("tail_coverage") is not None else "text_tail_coverage"
        tail0 = series[0].get(tail)
        monitors = [m for m in REGISTRY if series[0].get(m) is not None]

        def drop(values: list[float], base: float) -> list[float]:
            return [(base - v) / base for v in values]

        flag_drops = [(chain[0]["tstr"] - f["tstr"]) / chain[0]["tstr"] for chain, f in zip(chains, first_flags) if f]
        # Downstream utility of what is published (the blend): when does it first fall > 2% below generation 0?
        blend_over_2pct = [next((r["generation"] for r in chain if (chain[0]["blend"] - r["blend"]) / chain[0]["blend"] > 0.02),
                                None) for chain in chains]
        prior = [(chain[0]["tstr"] - chain[max(f["generation"] - 1, 0)]["tstr"]) / chain[0]["tstr"]
                 for chain, f in zip(chains, first_flags) if f]
        out[mode] = {
            "generations": len(series), "reps": len(chains),
            "first_flag_generation": [f["generation"] if f else None for f in first_flags],
            "first_flag_monitors": sorted({m for f in first_flags if f for m in f["flagged"]}),
            # What was last published before the flag stopped the chain, vs generation 0:
            "tstr_drop_last_published_before_flag": max(prior) if prior else None,
            "tstr_drop_at_flagged_generation": float(np.mean(flag_drops)) if flag_drops else None,
            "first_generation_blend_utility_down_2pct": blend_over_2pct,
            "flagged_before_blend_utility_down_2pct": all(
                f is not None and (b is None or f["generation"] < b) for f, b in zip(first_flags, blend_over_2pct)),
            "mean_blend": [c["blend"] for c in series],
            "mean_tstr": [c["tstr"] for c in series],
            "mean_tail_coverage": [c.get(tail) for c in series],
            "mean_detection_auc": [c.get("detection_auc") for c in series],
            "tstr_drop_final": drop([series[-1]["tstr"]], tstr0)[0],
            "tail_coverage_drop_final": drop([series[-1][tail]], tail0)[0] if tail0 else None,
            "tstr_monotone_decreasing": bool(np.all(np.diff([c["tstr"] for c in series]) < 0)),
            "tail_coverage_monotone_decreasing": bool(np.all(np.diff([c[tail] for c in series]) < 0)) if tail0 else None,
            # For every monitor: does each generation move it the worse way (the collapse signature)?
            "monotone_worse": {m: bool(np.all(np.diff([c[m] for c in series]) * (-1 if REGISTRY[m].higher_is_better else 1) > 0))
                               for m in monitors},
            "final_degradation": {m: REGISTRY[m].degradation(series[0][m], series[-1][m]) for m in monitors},
        }
    return out


def trend_plot(curves: list[dict], monitor: str) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    for mode in dict.fromkeys(c["mode"] for c in curves):
        series = [c for c in curves if c["mode"] == mode and c.get(monitor) is not None]
        ax.errorbar([c["generation"] for c in series], [c[monitor] for c in series],
                    yerr=[c.get(f"{monitor}_se") or 0.0 for c in series], marker="o", capsize=3, label=mode)
    ax.set_xlabel("generation")
    integer_axis(ax.xaxis)
    title = f"{monitor}: {REGISTRY[monitor].description}" if monitor in REGISTRY else f"{monitor} (published blend)"
    ax.set_title(title, fontsize=6, wrap=True)
    ax.legend(fontsize=8)
    return png_uri(fig)


def render(rows: list[dict], summary: dict, theory: list[dict] | None = None) -> str:
    curves = mean_curves(rows)
    shown = [f for f in figures() if any(c.get(f) is not None for c in curves)]
    plots = "".join(f'<img src="{trend_plot(curves, f)}">' for f in shown)

    def fmt(v) -> str:
        if isinstance(v, float):
            return f"{v:.4f}"
        return ", ".join(fmt(x) for x in v) if isinstance(v, list) else str(v)

    curve_rows = [{k: fmt(v) for k, v in c.items()} for c in curves]
    chain_rows = [{**{k: fmt(v) for k, v in r.items()}, "flagged": ", ".join(r["flagged"]) or "—"} for r in rows]
    summary_rows = [{"mode": mode, **{k: fmt(v) for k, v in fig.items()}} for mode, fig in summary.items()]
    parts = [
        "<h2>Monitors over generations (mean ± standard error over repetitions)</h2>", plots,
        "<h2>Mean curves</h2>", html_table(curve_rows, ["mode", "generation", "reps", *shown, "flagged_share"]),
        "<h2>Summary</h2>", html_table(summary_rows, ["mode", *next(iter(summary.values())).keys()]),
        "<h2>Every chain</h2>", html_table(chain_rows, ["mode", "rep", "generation", "version", *shown, "flagged"]),
    ]
    if theory:
        parts += ["<h2>Theory: simulation vs closed form</h2>",
                  html_table([{k: fmt(v) for k, v in t.items()} for t in theory],
                         ["model", "mode", "n", "simulated", "closed_form", "relative_error", "standard_error",
                          "z_score", "reps"])]
    return html_page("synthchain · collapse experiment", "".join(parts))


def write_report(spec_name: str, rows: list[dict], storage: Storage, theory: list[dict] | None = None) -> dict:
    """Summary, mean curves and the HTML report (trend plots) for a finished set of chains."""
    summary = summarise(rows)
    uri = storage.write_text(f"experiments/{spec_name}/collapse_report.html", render(rows, summary, theory))
    storage.write_json(f"experiments/{spec_name}/collapse_results.json",
                       {"rows": rows, "summary": summary, "theory": theory or []})
    return {"rows": rows, "curves": mean_curves(rows), "summary": summary, "report_uri": uri}


def run_experiment(spec: DatasetSpec, modes: list[str], generations: int, reps: int, storage: Storage,
                   store: ProvenanceStore, target_rows: int | None = None, theory: list[dict] | None = None) -> dict:
    rows = [row for mode in modes for rep in range(reps)
            for row in run_mode(spec, mode, generations, storage, store, target_rows=target_rows, rep=rep)]
    return write_report(spec.name, rows, storage, theory)
