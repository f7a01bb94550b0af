"""LLM client: synthchain's `ChatClient` vs the official `openai` SDK used plainly, on faults and on a real model.

    .venv/bin/python bench/llm_client.py [--part faults|smollm2|all] [--requests 400] [--concurrency 16]
        [--latency 0.2] [--fault-rate 0.3] [--prompts 16] [--model-concurrency 2] [--rounds 2] [--chunk 4]

Peer: `AsyncOpenAI(base_url=..., api_key="k")` with its DEFAULT retries (2) and timeout, all requests sent
at once through `asyncio.gather(..., return_exceptions=True)`, each one `client.chat.completions.create(...)`
with the same model, messages, temperature, max_tokens, seed and response_format that synthchain sends.
A request is lost when it raises after the SDK's own retries (for synthchain: when its reply is a failure).
Both clients run in this process, one after the other, never at the same time.

Part `faults` (the fault-injecting local server `synthchain.llm.faults.FaultServer`, a fresh one per run with
the same seed, so both clients meet the same seeded fault plan; the server sets TCP_NODELAY and a listen
backlog of 256, both found by this benchmark: without them Nagle's delay and dropped SYNs, not the clients,
dominated the figures):
  a. clean server, a fixed latency per request (0.2 s), N requests (400). synthchain at concurrency C (16) and
     the SDK behind an `asyncio.Semaphore(C)` (like for like), twice each in ABBA order; the SDK unbounded once
     (its own rate). Target: synthchain completes >= 90% of C / latency requests per second
     (`throughput_share = rps / (C / latency)`).
  b. 30% injected faults (6% each of 429 with Retry-After, 500, connection reset, truncated JSON body, non-JSON
     body): requests lost (target 0 for synthchain) for both clients, and the wall time ratio synthchain / SDK
     (unbounded; `_same_c`: the SDK behind the semaphore; target <= 1.5). These 429s are random, not load: the
     adaptive limit cuts only on sustained throttling (6 of the last 16 answers), so it should stay at C (0 cuts
     in the usual run; `synth_limit_cuts`). When every 429 halved it, this run took 31 s against 10 s for the SDK
     at the same C (32 cuts, lowest 1.2). A last diagnostic row runs synthchain with `min_concurrency=C`, i.e.
     with no cuts possible (its default floor is 1): the two synthchain rows should now match.
  BENCH llm_client_faults: ratio = synthchain rps / unbounded SDK rps on the clean server.

Part `smollm2` (the real local model, `synthchain.llm.local_server.LocalModelServer`: SmolLM2-135M-Instruct
served by llama-cpp-python on 127.0.0.1): M prompts (16), max_tokens 64, temperature 0.7, fixed seeds, no
response_format, both clients at the same concurrency (2; synthchain's response cache off, so both call the
model). After one untimed warm-up request each client sends all M prompts `--rounds` (3) times; the two clients
take turns every `--chunk` (4) prompts, in the order AB BA AB ... (flipped each round), so warm-up and bursts of
other load fall on both sides alike (a fresh client per turn, for both). Figure: generated (completion) tokens
per second over all of a client's turns. Target: synthchain >= 0.9 x the plain SDK.
  BENCH llm_client_smollm2: ratio = synthchain tok/s / plain SDK tok/s.

Everything here is timed on a shared 2-core machine: the load average before and after is printed, since any
other busy process (another llama.cpp server above all) shifts every figure.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import tempfile
import time
from collections import Counter
from pathlib import Path

import openai

from synthchain.llm.client import ChatClient, ChatRequest
from synthchain.llm.endpoint import Endpoint
from synthchain.llm.faults import FaultServer

SCHEMA = {"type": "object", "properties": {"review": {"type": "string"},
                                            "sentiment": {"enum": ["positive", "negative"]}},
          "required": ["review", "sentiment"]}
ITEMS = ("green tea", "dark chocolate", "peanut butter", "olive oil", "coffee beans", "dried mango", "oat cookies",
         "hot sauce", "honey", "rice crackers", "maple syrup", "almonds", "ginger candy", "pasta", "granola",
         "sea salt", "cocoa powder", "jasmine rice", "beef jerky", "lemon curd")


def messages_for(i: int) -> list[dict[str, str]]:
    item = ITEMS[i % len(ITEMS)]
    return [{"role": "system", "content": "You write short, realistic customer reviews of food products."},
            {"role": "user", "content": f"Write a two-sentence review of the {item} you bought (order {i})."}]


def response_format(schema: dict | None) -> dict | None:
    """What synthchain sends for a schema with an endpoint in `json_schema` mode (the default)."""
    return None if schema is None else {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}}


# --- the two clients ------------------------------------------------------------------------------
async def run_synth(base_url: str, model: str, requests: list[ChatRequest], concurrency: int, **client_kw) -> dict:
    t0 = time.perf_counter()
    async with ChatClient(Endpoint("bench", base_url, "k"), model, concurrency=concurrency, cache=None,
                          **client_kw) as client:
        replies = await client.complete_all(requests)
    wall = time.perf_counter() - t0
    s = client.stats
    return {"wall": wall, "ok": sum(r.ok for r in replies), "lost": sum(not r.ok for r in replies),
            "calls": s.calls, "tokens": s.completion_tokens, "errors": dict(s.errors),
            "limit_lowest": client.limit.lowest, "limit_cuts": client.limit.cuts}


async def run_plain(base_url: str, model: str, requests: list[ChatRequest], concurrency: int | None = None) -> dict:
    """The SDK as its README shows it: default retries and timeout, everything gathered at once."""
    client = openai.AsyncOpenAI(base_url=base_url, api_key="k")
    gate = asyncio.Semaphore(concurrency) if concurrency else None

    async def one(req: ChatRequest):
        kwargs = {"model": model, "messages": req.messages, "temperature": req.temperature,
                  "max_tokens": req.max_tokens, "seed": req.seed}
        if req.schema is not None:
            kwargs["response_format"] = response_format(req.schema)
        if gate is None:
            return await client.chat.completions.create(**kwargs)
        async with gate:
            return await client.chat.completions.create(**kwargs)

    t0 = time.perf_counter()
    results = await asyncio.gather(*(one(r) for r in requests), return_exceptions=True)
    wall = time.perf_counter() - t0
    await client.close()
    errors = Counter(type(r).__name__ for r in results if isinstance(r, BaseException))
    done = [r for r in results if not isinstance(r, BaseException)]
    tokens = sum((getattr(r.usage, "completion_tokens", 0) or 0) for r in done if r.usage is not None)
    return {"wall": wall, "ok": len(done), "lost": len(results) - len(done), "tokens": tokens, "errors": dict(errors)}


def fmt_errors(errors: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(errors.items(), key=lambda kv: -kv[1])) or "-"


def probe_overhead_ms(n: int = 20) -> float:
    """Mean ms per sequential request to a zero-latency FaultServer (what the server+SDK add to `latency_s`)."""
    async def probe(url: str) -> float:
        client = openai.AsyncOpenAI(base_url=url, api_key="k", max_retries=0)
        req = {"model": "fault-model", "messages": messages_for(0), "max_tokens": 8}
        await client.chat.completions.create(**req)
        t0 = time.perf_counter()
        for _ in range(n):
            await client.chat.completions.create(**req)
        await client.close()
        return (time.perf_counter() - t0) / n * 1000

    with FaultServer(latency_s=0.0) as s:
        return asyncio.run(probe(s.base_url))


def merge(a: dict, b: dict) -> dict:
    """Two passes of the same run as one: counts and walls add up, peaks take the larger."""
    out = {k: a[k] + b[k] for k in ("wall", "ok", "lost")}
    out["errors"] = dict(Counter(a["errors"]) + Counter(b["errors"]))
    out["served"] = dict(Counter(a["served"]) + Counter(b["served"]))
    out["max_in_flight"] = max(a["max_in_flight"], b["max_in_flight"])
    return out


# --- part 1: fault server -------------------------------------------------------------------------
def part_faults(args) -> str:
    n, c, latency = args.requests, args.concurrency, args.latency
    requests = [ChatRequest(messages_for(i), seed=i, max_tokens=64, schema=SCHEMA) for i in range(n)]
    kinds = ("429", "500", "reset", "truncated", "malformed")
    faults = {k: args.fault_rate / len(kinds) for k in kinds}
    synth_kw = {"backoff_s": args.backoff, "max_retries": args.max_retries}

    def serve(fault_plan: dict | None) -> FaultServer:
        return FaultServer(latency_s=latency, faults=fault_plan, seed=args.seed, retry_after_s=args.retry_after)

    def measure(fault_plan: dict | None, side: str, concurrency: int | None = None, **extra_kw) -> dict:
        with serve(fault_plan) as s:
            if side == "synth":
                r = asyncio.run(run_synth(s.base_url, "fault-model", requests, c, **synth_kw, **extra_kw))
            else:
                r = asyncio.run(run_plain(s.base_url, "fault-model", requests, concurrency=concurrency))
            r["max_in_flight"], r["served"] = s.max_in_flight, dict(s.counts)
        return r

    # clean: synthchain and the SDK at the same C twice each, ABBA, so drift on a shared machine falls on both
    clean = [measure(None, "synth"), measure(None, "plain", c), measure(None, "plain"), measure(None, "plain", c),
             measure(None, "synth")]
    synth_clean, plain_clean_c = merge(clean[0], clean[4]), merge(clean[1], clean[3])
    plain_clean = clean[2]
    synth_fault = measure(faults, "synth")
    plain_fault = measure(faults, "plain")
    plain_fault_c = measure(faults, "plain", c)
    synth_fault_fixed = measure(faults, "synth", min_concurrency=c)  # diagnostic: AIMD cannot cut below C

    ceiling = c / latency
    base = probe_overhead_ms()
    print(f"\nfault server ({base:.1f} ms per sequential request at "
          f"zero latency): {n} requests, latency {latency:g} s, synthchain concurrency {c} "
          f"(ceiling {ceiling:.0f} req/s), faults {args.fault_rate:.0%} = " +
          ", ".join(f"{k} {v:.0%}" for k, v in faults.items()) + f", Retry-After {args.retry_after:g} s")
    print(f"{'run':<33} {'wall s':>7} {'req/s':>7} {'ok':>5} {'lost':>5} {'attempts':>8} {'peak in flight':>14}  errors")
    for name, r in (("clean  synthchain (C=%d) x2" % c, synth_clean), ("clean  openai SDK (unbounded)", plain_clean),
                    ("clean  openai SDK (sem C=%d) x2" % c, plain_clean_c), ("faults synthchain (C=%d)" % c, synth_fault),
                    ("faults openai SDK (unbounded)", plain_fault), ("faults openai SDK (sem C=%d)" % c, plain_fault_c),
                    ("faults synthchain (min_conc=C)", synth_fault_fixed)):
        attempts = r["served"].get("requests", 0)  # HTTP requests the server saw (first tries + retries)
        print(f"{name:<33} {r['wall']:7.2f} {r['ok'] / r['wall']:7.1f} {r['ok']:5d} {r['lost']:5d} {attempts:8d} "
              f"{r['max_in_flight']:14d}  {fmt_errors(r['errors'])}")
    print(f"faults drawn by the server (synthchain run): {fmt_errors({k: v for k, v in synth_fault['served'].items() if k not in ('requests', 'sent')})}")
    print(f"faults drawn by the server (openai SDK run): {fmt_errors({k: v for k, v in plain_fault['served'].items() if k not in ('requests', 'sent')})}")
    print(f"synthchain adaptive limit under faults: lowest {synth_fault['limit_lowest']:.1f}, "
          f"{synth_fault['limit_cuts']} cuts (start {c})")

    synth_rps = synth_clean["ok"] / synth_clean["wall"]
    plain_rps = plain_clean["ok"] / plain_clean["wall"]
    plain_c_rps = plain_clean_c["ok"] / plain_clean_c["wall"]
    share = synth_rps / ceiling
    wall_ratio = synth_fault["wall"] / plain_fault["wall"]
    print(f"throughput share {share:.3f} (target >= 0.90); synthchain lost {synth_fault['lost']} (target 0), "
          f"openai SDK lost {plain_fault['lost']}; fault wall ratio synthchain / SDK {wall_ratio:.2f}")
    return (f"BENCH llm_client_faults ratio={synth_rps / plain_rps:.3f} throughput_share={share:.3f} "
            f"synth_rps={synth_rps:.1f} plain_rps={plain_rps:.1f} plain_same_c_rps={plain_c_rps:.1f} "
            f"ratio_same_c={synth_rps / plain_c_rps:.3f} synth_lost={synth_fault['lost']} "
            f"plain_lost={plain_fault['lost']} plain_same_c_lost={plain_fault_c['lost']} fault_wall_ratio={wall_ratio:.2f} "
            f"fault_wall_ratio_same_c={synth_fault['wall'] / plain_fault_c['wall']:.2f} "
            f"synth_fault_wall_s={synth_fault['wall']:.2f} plain_fault_wall_s={plain_fault['wall']:.2f} "
            f"synth_limit_cuts={synth_fault['limit_cuts']} "
            f"requests={n} concurrency={c} latency_s={latency:g} fault_rate={args.fault_rate:g}")


# --- part 2: the real local model -----------------------------------------------------------------
def part_smollm2(args) -> str:
    from synthchain.llm.local_server import MODEL_ALIAS, LocalModelServer

    m, c = args.prompts, args.model_concurrency
    requests = [ChatRequest(messages_for(i), temperature=0.7, max_tokens=args.max_tokens, seed=1000 + i)
                for i in range(m)]
    log_path = Path(tempfile.gettempdir()) / "synthchain_bench_llm_server.log"
    t0 = time.perf_counter()
    with LocalModelServer(log_path=log_path) as srv:
        startup = time.perf_counter() - t0
        warm = asyncio.run(run_plain(srv.base_url, MODEL_ALIAS, requests[:1]))  # untimed: loads and warms the model
        if warm["lost"]:
            raise RuntimeError(f"warm-up request failed: {warm['errors']} (server log: {log_path})")
        # (round, side) -> wall, tokens, lost; chunks of `--chunk` prompts alternate AB, BA, AB, ... so a burst of
        # load from elsewhere on the machine lands on both clients alike
        runs: dict[tuple[int, str], dict] = {}
        for rnd in range(args.rounds):
            for k, lo in enumerate(range(0, m, args.chunk)):
                chunk = requests[lo:lo + args.chunk]
                for side in (("plain", "synth") if (k + rnd) % 2 == 0 else ("synth", "plain")):
                    if side == "plain":
                        r = asyncio.run(run_plain(srv.base_url, MODEL_ALIAS, chunk, concurrency=c))
                    else:
                        r = asyncio.run(run_synth(srv.base_url, MODEL_ALIAS, chunk, c, max_retries=args.max_retries))
                    acc = runs.setdefault((rnd, side), {"wall": 0.0, "tokens": 0, "ok": 0, "lost": 0, "errors": Counter()})
                    for key in ("wall", "tokens", "ok", "lost"):
                        acc[key] += r[key]
                    acc["errors"].update(r["errors"])

    print(f"\nSmolLM2-135M-Instruct via llama-cpp-python (started in {startup:.1f} s): {m} prompts, "
          f"max_tokens {args.max_tokens}, temperature 0.7, fixed seeds, concurrency {c}; {args.rounds} round(s) per "
          f"client, the clients alternating every {args.chunk} prompts (AB BA AB ...)")
    print(f"{'round':<22} {'wall s':>7} {'tokens':>7} {'tok/s':>7} {'ok':>4} {'lost':>5}  errors")
    for (rnd, side), r in sorted(runs.items(), key=lambda kv: (kv[0][0], kv[0][1] == "plain")):
        name = f"{rnd + 1}. " + ("synthchain" if side == "synth" else "openai SDK")
        print(f"{name:<22} {r['wall']:7.2f} {r['tokens']:7d} {r['tokens'] / r['wall']:7.1f} {r['ok']:4d} {r['lost']:5d}  "
              f"{fmt_errors(r['errors'])}")
    total = {side: [sum(r[key] for (_, s_), r in runs.items() if s_ == side) for key in ("tokens", "wall", "lost")]
             for side in ("plain", "synth")}
    synth_tps = total["synth"][0] / total["synth"][1]
    plain_tps = total["plain"][0] / total["plain"][1]
    print(f"{'synthchain (all)':<22} {total['synth'][1]:7.2f} {total['synth'][0]:7d} {synth_tps:7.1f}")
    print(f"{'openai SDK (all)':<22} {total['plain'][1]:7.2f} {total['plain'][0]:7d} {plain_tps:7.1f}")
    print(f"share synthchain / SDK {synth_tps / plain_tps:.3f} (target >= 0.90)"
          + ("" if total["synth"][0] == total["plain"][0] else
             "; NOTE: the clients generated different token counts for the same seeded prompts"))
    return (f"BENCH llm_client_smollm2 ratio={synth_tps / plain_tps:.3f} synth_tok_s={synth_tps:.1f} "
            f"plain_tok_s={plain_tps:.1f} synth_tokens={total['synth'][0]} plain_tokens={total['plain'][0]} "
            f"synth_lost={total['synth'][2]} plain_lost={total['plain'][2]} requests={m} concurrency={c} "
            f"max_tokens={args.max_tokens}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("faults", "smollm2", "all"), default="all")
    parser.add_argument("--requests", type=int, default=400, help="requests per fault-server run")
    parser.add_argument("--concurrency", type=int, default=16, help="synthchain's concurrency on the fault server")
    parser.add_argument("--latency", type=float, default=0.2, help="fault server latency per request (s)")
    parser.add_argument("--fault-rate", type=float, default=0.3, help="split evenly over 429/500/reset/truncated/malformed")
    parser.add_argument("--retry-after", type=float, default=0.2, help="Retry-After of the injected 429s (s)")
    parser.add_argument("--backoff", type=float, default=0.2, help="synthchain's backoff_s on the fault server")
    parser.add_argument("--max-retries", type=int, default=6, help="synthchain's max_retries (its default)")
    parser.add_argument("--seed", type=int, default=7, help="fault plan seed")
    parser.add_argument("--prompts", type=int, default=16, help="prompts per pass on the local model")
    parser.add_argument("--model-concurrency", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="times each client sends the prompts to the local model")
    parser.add_argument("--chunk", type=int, default=4, help="prompts per turn when the clients alternate")
    args = parser.parse_args()
    logging.getLogger("synthchain.llm").setLevel(logging.ERROR)  # per-request failure warnings would flood the table

    t0 = time.perf_counter()
    print("load average before: %.2f %.2f %.2f on %d cores (other busy processes skew every figure here)"
          % (*os.getloadavg(), os.cpu_count() or 0))
    lines = []
    if args.part in ("faults", "all"):
        lines.append(part_faults(args))
    if args.part in ("smollm2", "all"):
        lines.append(part_smollm2(args))
    print(f"\ntotal {time.perf_counter() - t0:.0f} s; load average after: %.2f %.2f %.2f" % os.getloadavg())
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
