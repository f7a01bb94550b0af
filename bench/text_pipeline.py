"""One fine_foods run at 20k synthetic texts: wall time per hop, and how much of it is the embedding model.

    .venv/bin/python bench/text_pipeline.py [--rows 20000]

Runs every hop in-process (the same functions the Airflow tasks call) on SQLite provenance and a
temporary storage folder, with a cold embedding cache. The sentence-embedding calls are timed
where they happen, so each hop's time splits into "embedding model" and "everything else"
(Python, numpy, scikit-learn, GX). Ends with one BENCH line; `ratio` is the embedding model's
share of the whole run's wall time.
"""
from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from collections import defaultdict
from datetime import date
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20_000)
    args = parser.parse_args()

    from synthchain import pipeline
    from synthchain.provenance import ProvenanceStore
    from synthchain.specs import load_spec
    from synthchain.storage import LocalStorage
    from synthchain.text import modality as text_modality

    embed_seconds: dict[str, float] = defaultdict(float)
    embedded: dict[str, int] = defaultdict(int)
    current = {"hop": "begin"}
    real_embed = text_modality.embed

    def timed_embed(texts, **kwargs):
        start = time.perf_counter()
        try:
            return real_embed(texts, **kwargs)
        finally:
            embed_seconds[current["hop"]] += time.perf_counter() - start
            embedded[current["hop"]] += len(texts)

    text_modality.embed = timed_embed

    work = Path(tempfile.mkdtemp(prefix="bench-text-"))
    spec = load_spec(ROOT / "include" / "specs" / "fine_foods.yaml").with_overrides({"target_rows": args.rows})
    spec = spec.model_copy(update={"shard_rows": 5000, "gates": spec.gates.model_copy(update={
        "max_synthetic_share": 1.0, "max_utility_drop": 1.0, "max_drop_fraction": 1.0})})
    ctx = pipeline.RunContext(spec, date(2026, 11, 1), "bench", "bench", LocalStorage(work / "storage"),
                              ProvenanceStore(f"sqlite:///{work / 'provenance.db'}"))
    seconds: dict[str, float] = {}

    def hop(name, fn, *a):
        current["hop"] = name
        start = time.perf_counter()
        out = fn(*a)
        seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - start
        return out

    total_start = time.perf_counter()
    state = hop("begin", pipeline.begin, ctx)
    state |= hop("profiling", pipeline.profiling, ctx, state)
    shards = pipeline.plan_shards(ctx, state)
    for name in dict.fromkeys(s["generator"] for s in shards):
        hop("generation", pipeline.fit_generator, ctx, state, name)
    uris = [hop("generation", pipeline.sample_shard, ctx, state, shard) for shard in shards]
    state |= hop("generation", pipeline.generation_gate, ctx, state, uris)
    for step in ("verification", "filtering", "blending", "evaluation"):
        state |= hop(step, getattr(pipeline, step), ctx, state)
    out = hop("publish", pipeline.publish, ctx, state)
    total = time.perf_counter() - total_start

    print(f"{'hop':<14}{'wall s':>9}{'embedding s':>13}{'texts embedded':>16}{'other s':>9}")
    for name, s in seconds.items():
        print(f"{name:<14}{s:>9.1f}{embed_seconds[name]:>13.1f}{embedded[name]:>16}{s - embed_seconds[name]:>9.1f}")
    slowest = max(seconds, key=seconds.get)
    embedding_total = sum(embed_seconds.values())
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"published version {out['dataset_version']}: {out['synthetic_rows']} synthetic + {out['real_rows']} real rows; "
          f"kept {state['kept_rows']} of {args.rows}")
    print(f"BENCH text_pipeline ratio={embedding_total / total:.3f} total_s={total:.1f} slowest_hop={slowest} "
          f"slowest_s={seconds[slowest]:.1f} embedding_s={embedding_total:.1f} "
          + " ".join(f"{k}_s={v:.1f}" for k, v in seconds.items()) + f" rows={args.rows} rss_mb={rss_mb:.0f}")


if __name__ == "__main__":
    main()
