"""Downstream evaluation for verified code: pass@k on holdout problems the generators never saw.

The same model solves each holdout problem `eval_samples` times in three conditions:
zero-shot, with real seed pairs as few-shot context (real only) and with published verified
pairs as context. The verified set helps when its pass@k beats the real-only context by
more than the noise; on 20 problems one solved problem is 0.05 of pass@1.
"""
from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd

from ..llm.client import ChatClient, ChatRequest
from ..llm.endpoint import resolve_endpoint
from ..text.strategies import CodeSolution, Item
from .execution import execute
from .passk import mean_pass, pass_table


def evaluate_code(spec, holdout: pd.DataFrame, real: pd.DataFrame, verified: pd.DataFrame, storage, seed: int) -> dict:
    from ..llm.cache import ResponseCache

    llm = next((g for g in spec.generators if g.impl == "openai_compatible"), None)
    if llm is None:
        return {"metric": "pass@k", "note": "no endpoint generator in the spec: nothing to evaluate with"}
    settings, roles = spec.code, spec.fields
    problems = holdout.iloc[np.random.default_rng(seed).permutation(len(holdout))[: settings.eval_problems]]
    strategy = CodeSolution(["instruction", "response"])
    k = settings.eval_samples

    def context(pool: pd.DataFrame, rng) -> list[dict]:
        if pool.empty:
            return []
        picks = rng.choice(len(pool), min(settings.eval_few_shot, len(pool)), replace=False)
        return [{"prompt": pool.iloc[i][roles["instruction"]], "solution": pool.iloc[i][roles["response"]]}
                for i in picks]

    conditions = {"zero_shot": pd.DataFrame(), "real_context": real, "verified_context": verified}
    requests, rows = [], []
    for name, pool in conditions.items():
        if name == "verified_context" and pool.empty:
            continue
        for p, (_, problem) in enumerate(problems.iterrows()):
            item = Item(context={"prompt": problem[roles["instruction"]],
                                 "entry_point": problem[settings.entry_point_column]},
                        examples=context(pool, np.random.default_rng([seed, p])))
            for attempt in range(k):
                requests.append(ChatRequest(strategy.messages(item), temperature=settings.eval_temperature,
                                            max_tokens=llm.params.get("max_tokens", 384), seed=seed + attempt,
                                            sample_index=attempt, schema=strategy.schema(), schema_name="code"))
                rows.append((name, problem, item))

    async def ask():
        async with ChatClient(resolve_endpoint(llm.params["connection"]), llm.params["model"],
                              concurrency=llm.params.get("concurrency", 4), cache=ResponseCache(storage),
                              structured_output=llm.params.get("structured_output")) as client:
            return await client.complete_all(requests), client.stats.as_dict()

    replies, calls = asyncio.run(ask())
    solutions = []
    for (name, problem, item), reply in zip(rows, replies):
        parsed, _ = strategy.parse(reply.text, item) if reply.ok else (None, reply.error)
        solutions.append({"condition": name, "task": problem[settings.task_column],
                          "solution": parsed["response"] if parsed else "",
                          "test": problem[settings.test_column], "entry": problem[settings.entry_point_column]})
    frame = pd.DataFrame(solutions)
    verdicts = execute(frame, "solution", "test", "entry", timeout_s=settings.timeout_s, memory_mb=settings.memory_mb)
    frame["passed"] = verdicts["passed"].to_numpy() & (frame["solution"] != "").to_numpy()
    ks = sorted({1, k})
    out: dict = {"metric": f"pass@{k}", "problems": len(problems), "samples": k, "calls": calls}
    for name in conditions:
        part = frame.loc[frame["condition"] == name]
        if part.empty:
            out[name] = None
            continue
        table = pass_table(part, ["task"], ks)
        out[name] = {f"pass@{kk}": mean_pass(table, kk) for kk in ks}
    score = {name: (out[name] or {}).get(f"pass@{k}") for name in conditions}
    # the generic utility gate reads trtr (real only) and blend (with the published synthetic data)
    out.update({"trtr": score["real_context"], "tstr": score["verified_context"], "blend": score["verified_context"]})
    if out["trtr"] is not None and out["blend"] is not None:
        out["blend_minus_trtr"] = out["blend"] - out["trtr"]
    return out
