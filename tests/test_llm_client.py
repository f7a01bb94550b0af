"""The endpoint client against a local server that injects faults (real HTTP on 127.0.0.1, the real SDK)."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import openai
import pandas as pd
import pytest
from synthchain.llm.cache import ResponseCache
from synthchain.llm.client import AdaptiveLimit, ChatClient, ChatRequest
from synthchain.llm.endpoint import Endpoint, EndpointError, resolve_endpoint
from synthchain.llm.faults import FaultServer
from synthchain.llm.local_server import free_port
from synthchain.storage import LocalStorage
from synthchain.text.llm_generator import OpenAICompatibleGenerator, temperature_schedule
from synthchain.text.profile import TextProfile

SCHEMA = {"type": "object", "required": ["text"], "properties": {"text": {"type": "string", "minLength": 1}}}


def requests(n: int) -> list[ChatRequest]:
    return [ChatRequest([{"role": "user", "content": f"write review {i}"}], seed=i, schema=SCHEMA) for i in range(n)]


def run(server: FaultServer, reqs, **kw):
    async def go():
        async with ChatClient(Endpoint("t", server.base_url, "k"), "fault-model", **kw) as client:
            return await client.complete_all(reqs), client
    return asyncio.run(go())


def test_retries_recover_from_5xx_resets_and_broken_bodies():
    with FaultServer(latency_s=0.01, faults={"500": 0.15, "reset": 0.1, "truncated": 0.1, "malformed": 0.1},
                     seed=3) as server:
        replies, client = run(server, requests(60), concurrency=8, backoff_s=0.01, max_retries=10)
    assert all(r.ok for r in replies), [r.error for r in replies if not r.ok]
    assert all(json.loads(r.text)["text"] for r in replies)
    for fault in ("500", "reset", "truncated", "malformed"):
        assert server.counts[fault] > 0, server.counts
    assert client.stats.retries == sum(server.counts[f] for f in ("500", "reset", "truncated", "malformed"))
    assert not client.stats.breaker_open  # resets and broken bodies come from a live server: never a dead endpoint


def test_adaptive_limit_shrinks_under_429_and_honours_the_server_capacity():
    with FaultServer(latency_s=0.05, capacity=3, retry_after_s=0.05) as server:
        replies, client = run(server, requests(80), concurrency=16, max_retries=30)
    assert all(r.ok for r in replies)
    assert client.stats.throttled > 0 and client.limit.cuts >= 1
    assert client.limit.lowest <= 4  # halved from 16 towards the server's capacity of 3
    assert server.counts["429"] < 80  # once the limit settled most requests went through first time


def test_random_429s_do_not_cut_the_limit_but_a_capacity_limited_server_does():
    # 6% of requests throttled at random, whatever the load: cutting would only slow the run down
    with FaultServer(latency_s=0.01, faults={"429": 0.06}, retry_after_s=0.02, seed=5) as server:
        replies, client = run(server, requests(300), concurrency=16, max_retries=10)
    assert all(r.ok for r in replies) and server.counts["429"] >= 10, server.counts
    assert client.limit.cuts <= 1 and not client.stats.breaker_open  # a cut is ~4% likely per run, two ~0
    with FaultServer(latency_s=0.02, capacity=3, retry_after_s=0.02) as server:
        replies, client = run(server, requests(60), concurrency=16, max_retries=30)
    assert all(r.ok for r in replies) and client.limit.cuts >= 2 and client.limit.lowest <= 4


def test_adaptive_limit_cuts_on_a_share_of_429s_once_per_episode():
    async def go():
        limit = AdaptiveLimit(16)  # cut at 6 of the last 16 answers throttled
        for i in range(160):  # one 429 in 16, spread out: no cut
            e = await limit.acquire()
            await limit.release("throttled" if i % 16 == 0 else "ok", e)
        assert limit.cuts == 0 and limit.limit == 16
        epoch = await limit.acquire()
        for _ in range(5):
            await limit.release("throttled", epoch)
            await limit.acquire()
        assert limit.cuts == 0
        stale = epoch
        await limit.release("throttled", epoch)  # the 6th: cut
        assert limit.limit == 8 and limit.cuts == 1
        for _ in range(8):  # requests started before the cut report the same congestion: no second cut
            await limit.release("throttled", stale)
            await limit.acquire()
        assert limit.limit == 8 and limit.cuts == 1
        return limit
    asyncio.run(go())


def test_adaptive_limit_grows_back_slowly_after_successes():
    async def go():
        limit = AdaptiveLimit(16, cut_at=1)
        epoch = await limit.acquire()
        await limit.release("throttled", epoch)
        stale = await limit.acquire()
        await limit.release("throttled", epoch)  # same congestion episode: no second cut
        assert limit.limit == 8 and limit.cuts == 1
        await limit.release("ok", stale)
        for _ in range(8):
            e = await limit.acquire()
            await limit.release("ok", e)
        return limit
    limit = asyncio.run(go())
    assert 9 <= limit.limit < 10.5  # about one slot per round of `limit` successes, not one per success


def test_adaptive_limit_regrows_to_below_the_throttled_width_then_probes():
    async def go():
        limit = AdaptiveLimit(8, cut_at=1)
        await limit.release("throttled", await limit.acquire())  # 8 wide was throttled: 4, free regrowth up to 7
        assert limit.limit == 4
        for i in range(40):
            await limit.release("ok", await limit.acquire())
            if i == 30:
                assert 7 <= limit.limit < 8  # 31 successes in a row: not yet enough to try 8 again
        assert limit.limit == 8  # 32 in a row: one slot more (here the maximum)
    asyncio.run(go())


def test_retry_after_is_honoured_and_a_final_failure_keeps_its_reason():
    with FaultServer(faults={"429": 1.0}, retry_after_s=0.6) as server:
        t0 = time.monotonic()
        replies, client = run(server, requests(1), max_retries=1)
    assert time.monotonic() - t0 >= 0.6
    assert not replies[0].ok and replies[0].error.startswith("HTTP 429") and replies[0].attempts == 2


def test_a_port_nothing_listens_on_opens_the_breaker_after_a_few_attempts():
    url = f"http://127.0.0.1:{free_port()}/v1"  # bound and released: connects are refused

    async def go():
        async with ChatClient(Endpoint("dead", url, "k"), "m", concurrency=8, max_retries=6, dead_after=5) as c:
            return await c.complete_all(requests(50)), c
    t0 = time.monotonic()
    replies, client = asyncio.run(go())
    wall = time.monotonic() - t0
    errors = {r.error for r in replies}
    assert len(errors) == 1 and not any(r.ok for r in replies), errors
    # the reason says what happened and keeps the first real cause
    assert errors.pop().startswith("endpoint dead: connection refused on 5 attempts in a row with no answer "
                                   "(circuit open): connection: ConnectionRefusedError:")
    assert client.stats.calls <= 5 + 8  # the threshold, plus the attempts already in flight when it opened
    assert client.stats.breaker_open and client.stats.dead_endpoint_failures == 50
    assert client.stats.as_dict()["breaker_open"] is True
    assert wall < 2.0, wall  # 50 requests x 7 attempts with 0.5 s backoff doubling would take minutes


def test_a_server_killed_mid_run_keeps_the_replies_it_sent_and_fails_the_rest_quickly():
    server = FaultServer(latency_s=0.05)
    killed_at: list[float] = []

    def kill_after_ten():
        while server.counts["ok"] < 10:
            time.sleep(0.005)
        server.kill()  # in flight: no reply; later connects: refused
        killed_at.append(time.monotonic())

    with server:
        threading.Thread(target=kill_after_ten, daemon=True).start()
        replies, client = run(server, requests(40), concurrency=4, max_retries=6, backoff_s=0.5)
    done = time.monotonic()
    ok = [r for r in replies if r.ok]
    assert len(ok) == server.counts["sent"] >= 6, (len(ok), server.counts)  # every reply written out was kept
    assert all(json.loads(r.text)["text"] for r in ok)
    assert all(r.error.startswith("endpoint dead: connection refused") for r in replies if not r.ok)
    assert client.stats.dead_endpoint_failures == 40 - len(ok)
    # beyond the answered calls: those in flight at the kill, one per pooled connection found closed, then the
    # threshold plus those in flight when the breaker opened
    assert client.stats.calls - len(ok) <= 4 + 4 + 5 + 4, client.stats
    assert done - killed_at[0] < 1.5  # requests in backoff did not sit out their retries


def test_any_http_answer_resets_the_connect_failure_count():
    from types import SimpleNamespace

    script = iter(["refused", "refused", 500, "refused", "refused", 429, "refused", "refused", "reply",
                   "refused", "refused", "refused", "reply"])

    async def create(**kwargs):  # the SDK call, scripted: refused connects between real answers
        step = next(script)
        if step == "refused":
            raise openai.APIConnectionError(request=None) from ConnectionRefusedError(111, "Connection refused")
        if step == "reply":
            choice = SimpleNamespace(message=SimpleNamespace(content="hi"), finish_reason="stop")
            return SimpleNamespace(choices=[choice], usage=None)
        error = openai.RateLimitError if step == 429 else openai.InternalServerError
        raise error("busy", response=SimpleNamespace(status_code=step, headers={}, request=None), body=None)

    async def go():
        async with ChatClient(Endpoint("t", "http://127.0.0.1:9/v1", "k"), "m", concurrency=1, max_retries=20,
                              backoff_s=0.001, dead_after=3) as c:
            c._client.chat.completions.create = create
            first = await c.complete(requests(1)[0])  # never 3 refusals in a row: a 5xx and a 429 answered between
            assert first.ok and first.attempts == 9 and not c.stats.breaker_open
            return await c.complete(requests(1)[0])
    second = asyncio.run(go())
    assert second.error.startswith("endpoint dead: connection refused on 3 attempts") and second.attempts == 3


def test_per_request_timeout_and_overall_deadline():
    with FaultServer(faults={"delay": 1.0}, delay_s=1.5) as server:
        replies, _ = run(server, requests(2), timeout_s=0.3, max_retries=1, backoff_s=0.01)
        assert all(r.error.startswith("timeout") for r in replies)
        t0 = time.monotonic()
        replies, _ = run(server, requests(2), timeout_s=5, deadline_s=0.5, max_retries=5)
    assert time.monotonic() - t0 < 1.5
    assert all("deadline" in r.error or r.error.startswith("timeout") for r in replies)


def test_a_refused_response_format_steps_down_to_json_object_once():
    with FaultServer(refuse_json_schema=True) as server:
        replies, client = run(server, requests(6), concurrency=6)
    assert all(r.ok for r in replies)
    assert client.structured == "json_object" and 1 <= server.counts["refused_schema"] <= 6
    assert all(r["response_format"]["type"] == "json_object" for r in server.requests)


# --- endpoints ------------------------------------------------------------------------------------

def test_endpoint_from_airflow_style_environment(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_LLM_A", json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": 8080,
                                                         "schema": "v1", "password": "sk-1",
                                                         "extra": {"structured_output": "json_object"}}))
    monkeypatch.setenv("AIRFLOW_CONN_LLM_B", "https://:sk-2@api.example.com/v1")
    a, b = resolve_endpoint("llm_a"), resolve_endpoint("llm_b")
    assert (a.base_url, a.api_key, a.structured_output) == ("http://127.0.0.1:8080/v1", "sk-1", "json_object")
    assert (b.base_url, b.api_key) == ("https://api.example.com/v1", "sk-2")
    assert "sk-" not in repr(a)
    with pytest.raises(EndpointError, match="connection 'nope' not found.*AIRFLOW_CONN_NOPE"):
        resolve_endpoint("nope")


def test_temperature_schedules():
    assert temperature_schedule(0.7, 3) == [0.7] * 3
    assert temperature_schedule([0.2, 1.0], 3) == [0.2, 1.0, 0.2]
    assert temperature_schedule({"from": 0.2, "to": 1.0}, 5) == [0.2, 0.4, 0.6, 0.8, 1.0]


# --- the generator: cache, rejections ------------------------------------------------------------

def profile_and_data():
    data = pd.DataFrame({"review": [f"real review number {i} about tea and coffee" for i in range(40)],
                         "score": ["great", "other"] * 20})
    profile = TextProfile(40, ["review"], {"text": "review"}, "score", {"great": 0.5, "other": 0.5},
                          {"review": {"q005": 3, "q995": 60}})
    return data, profile


def generator(monkeypatch, server, **params):
    monkeypatch.setenv("AIRFLOW_CONN_FAULTY", json.dumps({"host": server.base_url}))
    data, profile = profile_and_data()
    gen = OpenAICompatibleGenerator(connection="faulty", model="fault-model", concurrency=4, **params)
    return gen.fit(data, profile)


def test_second_identical_run_makes_zero_endpoint_calls(monkeypatch, tmp_path):
    with FaultServer(latency_s=0.01) as server:
        gen = generator(monkeypatch, server, temperature=[0.3, 0.9], batch_size=5)
        gen.use_storage(LocalStorage(tmp_path))
        first = gen.sample(12, seed=7)
        calls = server.counts["requests"]
        gen.use_storage(LocalStorage(tmp_path))
        second = gen.sample(12, seed=7)
        assert server.counts["requests"] == calls == 12
    assert gen.stats_["cache_hits"] == 12 and gen.stats_["calls"] == 0
    pd.testing.assert_frame_equal(first, second)
    assert set(first["_sc_temperature"]) == {0.3, 0.9} and set(first["_sc_model"]) == {"fault-model"}
    assert sorted(first["score"].value_counts()) == [6, 6]


def test_malformed_replies_are_rejected_with_a_reason_never_padded(monkeypatch, tmp_path):
    with FaultServer(faults={"bad_content": 0.5}, seed=1) as server:
        gen = generator(monkeypatch, server)
        rows = gen.sample(20, seed=1)
    assert len(rows) + len(gen.failures_) == 20 and len(gen.failures_) > 0
    assert all(f["error"].startswith("rejected: not JSON") for f in gen.failures_)
    assert gen.stats_["rejected"] == len(gen.failures_) and (rows["review"].str.len() > 0).all()


def test_cache_survives_a_killed_run(monkeypatch, tmp_path):
    with FaultServer(latency_s=0.25) as server:
        monkeypatch.setenv("AIRFLOW_CONN_FAULTY", json.dumps({"host": server.base_url}))
        script = tmp_path / "sample.py"
        script.write_text(f"""
import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})
from test_llm_client import profile_and_data
from synthchain.text.llm_generator import OpenAICompatibleGenerator
from synthchain.storage import LocalStorage
data, profile = profile_and_data()
gen = OpenAICompatibleGenerator(connection="faulty", model="fault-model", concurrency=1).fit(data, profile)
gen.use_storage(LocalStorage({str(tmp_path / 'store')!r}))
gen.sample(16, seed=3)
""")
        child = subprocess.Popen([sys.executable, str(script)], env=os.environ.copy())
        deadline = time.monotonic() + 60
        while server.counts["ok"] < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.1)
        child.send_signal(signal.SIGKILL)
        child.wait()
        paid = len(list((tmp_path / "store" / "llm_cache").rglob("*.json")))
        assert 3 <= paid < 16  # each reply is on storage as soon as it arrived
        gen = generator(monkeypatch, server)
        gen.use_storage(LocalStorage(tmp_path / "store"))
        before = server.counts["requests"]
        gen.sample(16, seed=3)
        assert gen.stats_["cache_hits"] == paid
        assert server.counts["requests"] - before == 16 - paid


# --- the judge ---------------------------------------------------------------------------------------

def text_spec(**judge):
    return {"name": "reviews", "modality": "text", "source": "reviews.csv", "text_column": "review",
            "label_column": "score", "target_rows": 10,
            "generators": [{"name": "writer", "type": "openai_compatible", "version": "1.0",
                            "params": {"connection": "llm", "model": "model-a"}}],
            "text": {"judge": {"connection": "llm", "rubric": "a specific, plausible product review", **judge}}}


def test_judge_refuses_to_grade_its_own_model_unless_the_spec_allows_it():
    from pydantic import ValidationError
    from synthchain.specs import DatasetSpec, SpecError, format_validation_error

    with pytest.raises(ValidationError) as err:
        DatasetSpec.model_validate(text_spec(model="model-a"))
    message = format_validation_error("spec.yaml", err.value)
    assert "field 'text.judge.model'" in message and "allow_self_judge" in message
    assert DatasetSpec.model_validate(text_spec(model="model-a", allow_self_judge=True)).text.judge.model == "model-a"
    assert DatasetSpec.model_validate(text_spec(model="model-b")).text.judge.threshold == 3.0


def test_judge_scores_parse_and_the_judge_filter_drops_low_scores_with_reasons(monkeypatch):
    import numpy as np
    from synthchain.llm.judge import Judge
    from synthchain.specs import TextSpec
    from synthchain.text.filters import JudgeFilter, TextFilterInput

    def grade(request):
        text = request["messages"][-1]["content"].split("Example:")[-1]
        if "garbled" in text:
            return '{"score": "high"'  # a malformed judgement: ungraded, never a silent pass
        return json.dumps({"score": 4 if "specific" in text else 2, "reason": "graded"})

    with FaultServer(responder=grade) as server:
        monkeypatch.setenv("AIRFLOW_CONN_JUDGE", json.dumps({"host": server.base_url}))
        texts = ["a specific review of green tea", "vague words", "garbled"]
        graded = Judge("judge", "model-b", "a specific review").score(texts)
    assert [s for s, _ in graded] == [4.0, 2.0, None] and graded[2][1].startswith("judge reply rejected")
    checks = pd.DataFrame({"judge_score": [s if s is not None else np.nan for s, _ in graded],
                           "judge_reason": [r for _, r in graded]})
    settings = TextSpec.model_validate({"judge": {"connection": "judge", "model": "model-b", "rubric": "a specific review"}})
    decision = JudgeFilter().decide(TextFilterInput(pd.DataFrame({"review": texts}), checks, texts,
                                                    np.zeros((3, 0)), [], settings))
    assert decision.keep.tolist() == [True, False, False]
    assert decision.reasons[1].startswith("judge score 2 < 3")


# --- strategies: distillation, the constitutional loop, Evol-Instruct's elimination -------------------

def test_distillation_labels_real_unlabelled_inputs(monkeypatch, tmp_path):
    inputs = tmp_path / "unlabelled.csv"
    pd.DataFrame({"body": ["superb tea, will buy again", "stale and bland"]}).to_csv(inputs, index=False)

    def teacher(request):
        text = request["messages"][-1]["content"].split("Label this:")[-1]
        return json.dumps({"label": "great" if "superb" in text else "other"})

    with FaultServer(responder=teacher) as server:
        gen = generator(monkeypatch, server, strategy="distill",
                        inputs={"uri": str(inputs), "columns": {"text": "body"}})
        rows = gen.sample(4, seed=0)
    assert sorted(zip(rows["review"], rows["score"])) == [
        ("stale and bland", "other"), ("stale and bland", "other"),
        ("superb tea, will buy again", "great"), ("superb tea, will buy again", "great")]
    assert rows["_sc_attempt"].tolist().count(1) == 2  # the second pass over the inputs is a second draw


def test_critique_and_revise_against_the_spec_principles(monkeypatch, tmp_path):
    def model(request):
        system, user = request["messages"][0]["content"], request["messages"][-1]["content"]
        if "against principles" in system:  # the critic
            return json.dumps({"violations": ["names a price"] if "$" in user else []})
        if "follows every principle" in user:  # the revision
            return json.dumps({"text": "Smooth roast, fair value for a daily coffee."})
        return json.dumps({"text": "Smooth roast, only $5 a bag!"})  # the draft breaks the principle

    with FaultServer(responder=model) as server:
        gen = generator(monkeypatch, server, principles=["Never state a price."], revise_rounds=2)
        rows = gen.sample(3, seed=0)
    assert rows["review"].tolist() == ["Smooth roast, fair value for a daily coffee."] * 3
    assert rows["_sc_revised"].all()


def test_evol_instruct_eliminates_failed_evolutions():
    from synthchain.text.strategies import EvolInstruct, Item

    evol = EvolInstruct(["instruction", "response"])
    seed = {"instruction": "Explain what a hash map is.", "response": "A hash map stores key value pairs."}
    item = Item(seed=seed, operation="constrain")
    ok = json.dumps({"instruction": "Explain a hash map in three sentences, with one Python example.",
                     "response": "A hash map stores pairs by hashing keys. Lookups are O(1) on average. d = {}"})
    assert evol.parse(ok, item)[0]["instruction"].startswith("Explain a hash map in three")
    for reply, reason in [
        (json.dumps(seed), "nearly) the seed"),
        (json.dumps({"instruction": "#Rewritten Prompt#: explain maps", "response": "Maps map keys to values."}),
         "meta-prompt leaked"),
        (json.dumps({"instruction": "Explain hash maps to a child", "response": "Sorry, as an AI I cannot."}),
         "refusal"),
        (json.dumps({"instruction": "Explain hash maps to a child", "response": "Keys."}), "trivial answer"),
        ('{"instruction": "unfinished', "not JSON"),
    ]:
        fields, why = evol.parse(reply, item)
        assert fields is None and reason in why, (reply, why)


def test_sandbox_from_the_synthchain_cli(tmp_path, capsys):
    from synthchain.ops.cli import main

    script = tmp_path / "hostile.py"
    script.write_text("import socket\nsocket.create_connection(('127.0.0.1', 5432), timeout=1)\n")
    assert main(["sandbox", "run", str(script), "--timeout", "3", "--json"]) == 1
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["status"] == "error" and "netns" in verdict["isolation"]
    assert "Error" in verdict["error"]  # e.g. OSError: Network is unreachable


def test_pass_at_k_is_the_unbiased_estimator():
    from math import comb

    from synthchain.code.passk import pass_at_k, pass_table

    for n, c, k in [(4, 1, 1), (4, 1, 4), (10, 3, 2), (10, 0, 5), (5, 5, 1)]:
        assert pass_at_k(n, c, k) == pytest.approx(1 - comb(n - c, k) / comb(n, k))
    assert pass_at_k(3, 1, 4) is None  # fewer candidates than k: no estimate, never a silent 0
    table = pass_table(pd.DataFrame({"task": ["a"] * 4 + ["b"] * 4, "passed": [1, 0, 0, 0] + [0] * 4}), ["task"], [1, 4])
    assert table["pass@1"].tolist() == [0.25, 0.0] and table["pass@4"].tolist() == [1.0, 0.0]
