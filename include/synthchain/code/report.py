"""Report sections for verified code: pass@k per source and per problem, published examples with provenance."""
from __future__ import annotations

import html

import pandas as pd

from ..report import html_table

EXAMPLES = 4


def _fmt(value) -> str:
    return "—" if value is None or value != value else f"{value:.3f}" if isinstance(value, float) else str(value)


def code_sections(data, synth: pd.DataFrame) -> list[tuple[str, str]]:
    verification = data.storage.read_json(data.state["verification_uri"])
    k = verification.get("pass_k", 1)
    sources = [{"source / model": name, **{key: _fmt(v) for key, v in figures.items()}}
               for name, figures in (verification.get("pass_by_source") or {}).items()]
    problems = [{key: _fmt(v) for key, v in row.items()} for row in verification.get("pass_by_problem") or []]
    pass_html = (f"<p>Rejection sampling: {verification.get('candidates')} candidates ({verification.get('rows')} "
                 f"parsed and compiled), {verification.get('verified_rows')} passed their problem's tests in the sandbox; {verification.get('problems_solved')} of "
                 f"{verification.get('problems')} seed problems solved at least once. Verdicts: "
                 f"{html.escape(str(verification.get('verdicts')))}. pass@k is the unbiased estimator of Chen et al. "
                 f"(k = 1 and {k}).</p>" + html_table(sources, list(sources[0]) if sources else [])
                 + "<h3>Per problem</h3>" + html_table(problems, list(dict.fromkeys(["task", "n", "c", "pass@1", f"pass@{k}"]))))

    blended = data.frame("blend_uri")
    published = blended.loc[blended["_sc_origin"] == "synthetic"].head(EXAMPLES)
    roles, settings = data.spec.fields, data.spec.code
    examples = [{"task": r[settings.task_column], "model": r.get("_sc_model"), "temperature": r.get("_sc_temperature"),
                 "attempt": r.get("_sc_attempt"), "verdict": r.get("_sc_verdict"),
                 "solution": str(r[roles["response"]])[:1500]}
                for _, r in published.iterrows()]
    example_html = html_table(examples, ["task", "model", "temperature", "attempt", "verdict", "solution"]) \
        if examples else "<p>No verified solution was published.</p>"
    return [("Execution verification and pass@k", pass_html), ("Published verified solutions", example_html)]
