"""Data to spec: targets in the spec, rounds until verified quotas are met, and the checks around them.

Fast tests pin the pieces (spec errors, quotas, which kept rows count for their slice, the round budget,
the holdout never read by targeting); the end-to-end ones run the real pipeline on real PostgreSQL: a
filter that drops about half of the rows makes the quotas take several rounds, a run killed inside a
round and re-run publishes exactly what an uninterrupted run publishes, and a budget that cannot meet a
quota fails the run naming the slice.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import ensure_database
from synthchain import rounds, targets
from synthchain.gates import GateFailed
from synthchain.pipeline import RunContext, run_all
from synthchain.provenance import ProvenanceStore
from synthchain.specs import SpecError, load_spec
from synthchain.storage import LocalStorage
from synthchain.targets import Condition, Slice

DAY = date(2026, 4, 1)
MID = {"name": "mid_income", "where": [{"column": "annual_inc", "op": "between", "value": [40000, 80000]}],
       "rows": 120}
SHORT_TERM = {"name": "short_term", "where": [{"column": "term", "op": "==", "value": "term_36"}], "rows": 80}


@pytest.fixture(scope="module")
def loans(tmp_path_factory, lending_club):
    root = Path(os.environ["SYNTHCHAIN_DATA_ROOTS"].split(os.pathsep)[0])
    path = root / "targets_loans.csv"
    lending_club.sample(2500, random_state=1).to_csv(path, index=False)
    return path


def spec_dict(loans: Path, **overrides) -> dict:
    spec = {"name": "tg_test", "source": str(loans), "target": "Class", "task": "classification",
            "holdout": {"fraction": 0.2, "seed": 7},
            "generators": [{"name": "cart", "version": "1.0", "weight": 1.0}],
            "target_rows": 200, "shard_rows": 200, "blend": {"real_fraction": 0.8, "mode": "replace"},
            # privacy_quantile 0.4: rows closer to a training row than 40% of real holdout rows are dropped,
            # about half of what CART makes: the quotas need rounds
            "filtering": {"privacy_quantile": 0.4},
            "targets": {"slices": [MID, SHORT_TERM], "max_rounds": 4},
            "gates": {"min_real_rows": 1000, "min_quality_score": 0.6, "max_synthetic_share": 0.5,
                      "max_utility_drop": 0.2, "max_dcr_closer_share": 0.9, "max_drop_fraction": 0.9,
                      "max_slice_utility_drop": 0.1}}
    spec.update(overrides)
    return spec


def _write(tmp_path: Path, data: dict, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# --- the spec -------------------------------------------------------------------------------------

@pytest.mark.parametrize("targets_, message", [
    ({"slices": [{"name": "x", "where": [{"column": "a", "op": "~", "value": 1}], "rows": 5}]},
     "targets.slices.0.where.0.op"),
    ({"slices": [{"name": "x", "where": [{"column": "a", "op": "between", "value": [3, 1]}], "rows": 5}]},
     "'between' needs low <= high"),
    ({"slices": [{"name": "x", "where": [{"column": "a", "op": "in", "value": 3}], "rows": 5}]},
     "'in' takes a non-empty list"),
    ({"slices": [{"name": "x", "where": [{"column": "a", "op": "==", "value": [1, 2]}], "rows": 5}]},
     "'==' takes one value, not a list"),
    ({"slices": [{"name": "x", "where": [], "rows": 5}]}, "targets.slices.0.where"),
    ({"slices": [MID, MID]}, "slice listed twice: mid_income"),
    ({"rebalance": {"good": -1}}, "rebalance shares must be numbers >= 0"),
    ({"slices": [{**MID, "where": [{"column": "rownames", "op": "<", "value": 3}]}]}, "is in drop_columns"),
])
def test_spec_refuses_bad_targets_naming_the_field(tmp_path, targets_, message):
    data = {**spec_dict(Path("loans.csv"), targets=targets_), "drop_columns": ["rownames"]}
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace("[", r"\[")):
        load_spec(_write(tmp_path, data))


def test_rebalance_needs_a_classification_target(tmp_path):
    data = {**spec_dict(Path("loans.csv"), targets={"rebalance": "balanced"}), "task": "regression",
            "target": "int_rate"}
    with pytest.raises(SpecError, match="targets.rebalance.*classification"):
        load_spec(_write(tmp_path, data))


def test_resolve_names_unknown_columns_labels_and_empty_slices(tmp_path, lending_club):
    def resolve(**targets_):
        return targets.resolve(load_spec(_write(tmp_path, spec_dict(Path("loans.csv"), targets=targets_))),
                               lending_club)

    with pytest.raises(targets.TargetError, match=r"'nowhere': column\(s\) \['income'\] not in the data"):
        resolve(slices=[{"name": "nowhere", "where": [{"column": "income", "op": ">", "value": 1}], "rows": 5}])
    with pytest.raises(targets.TargetError, match=r"'rich' \(annual_inc > 1000000000\) holds no real training row"):
        resolve(slices=[{"name": "rich", "where": [{"column": "annual_inc", "op": ">", "value": 10**9}], "rows": 5}])
    with pytest.raises(targets.TargetError, match=r"label\(s\) \['ugly'\] not in column 'Class'"):
        resolve(rebalance={"ugly": 1.0})
    found = resolve(rebalance="balanced", slices=[MID])
    assert [s.name for s in found] == ["label_bad", "mid_income"]
    assert found[0].quota == 200 and found[0].conditions == (Condition("Class", "==", "bad"),)
    assert found[0].why == {"rule": "rebalance", "real_rows": 517, "real_share": 0.05245, "target_share": 0.5}
    assert found[1].why["real_rows"] == int(lending_club["annual_inc"].between(40000, 80000).sum())


def test_rebalance_quotas_fill_the_furthest_below_first():
    assert targets.rebalance_quotas({"good": 9340, "bad": 517}, "balanced", 1000) == {"good": 0, "bad": 1000}
    # enough rows to balance: each label gets what it lacks of its share of the combined set
    assert targets.rebalance_quotas({"a": 50, "b": 30, "c": 20}, "balanced", 30) == {"a": 0, "b": 11, "c": 19}
    assert targets.rebalance_quotas({"a": 50, "b": 30}, {"a": 0.5, "b": 0.5}, 100) == {"a": 40, "b": 60}
    # a label above its share gets nothing; shares already met are kept by the new rows
    assert targets.rebalance_quotas({"a": 95, "b": 5}, "balanced", 10) == {"a": 0, "b": 10}
    assert targets.rebalance_quotas({"a": 90, "b": 10}, {"a": 0.9, "b": 0.1}, 50) == {"a": 45, "b": 5}


def test_conditions_compare_like_pandas_and_missing_values_never_match():
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, None], "g": ["a", "b", None, "a"]})
    assert Condition("x", "between", (1, 2)).mask(frame).tolist() == [True, True, False, False]
    assert Condition("x", "!=", 2).mask(frame).tolist() == [True, False, True, False]
    assert Condition("g", "in", ("a",)).mask(frame).tolist() == [True, False, False, True]
    assert Condition("g", "!=", "a").mask(frame).tolist() == [False, True, False, False]
    piece = Slice("s", (Condition("x", ">=", 2), Condition("g", "==", "b")), 3)
    assert piece.mask(frame).tolist() == [False, True, False, False]
    assert piece.words() == "x >= 2 and g == 'b'"
    assert targets.from_json(targets.to_json([piece])) == [piece]


# --- which kept rows count, and what the next round draws ------------------------------------------

def test_enforce_drops_rows_outside_their_slice_and_over_the_quota_latest_rounds_first():
    low = Slice("low", (Condition("x", "<", 10),), 2)
    rows = pd.DataFrame({"x": [1, 50, 2, 3, 4], "_sc_target": ["low", "low", "low", "low", "gone"],
                         "_sc_round": pd.array([1, 0, 0, 0, 0], dtype="Int64")})
    keep, reasons = rounds.enforce(rows, [low])
    assert keep.tolist() == [False, False, True, True, False]
    assert reasons[1] == "slice: outside its slice low (x < 10)"
    assert reasons[0] == "quota: slice low already has its 2 rows"  # round 1 goes before round-0 rows
    assert reasons[4] == "slice: drawn for a slice this run does not have"


def test_top_up_draws_the_deficit_over_the_keep_rate_within_the_budget():
    a, b, c = Slice("a", (), 100), Slice("b", (), 100), Slice("c", (), 100)
    wanted = rounds.top_up([a, b, c], kept={"a": 50, "b": 100, "c": 0}, generated={"a": 100, "b": 120, "c": 390},
                           max_draw_factor=4.0)
    assert wanted == {"a": 120, "c": 10}  # a: 50 short at a keep rate of 0.5 (+20%); b: met; c: 10 left of 400


# --- the pipeline ---------------------------------------------------------------------------------

def test_targeting_reads_the_training_rows_only(tmp_path, loans, store, storage, monkeypatch):
    """The slices are resolved on the real training rows: never a holdout row (their ids say which)."""
    from synthchain import pipeline

    seen = []
    original = targets.resolve
    monkeypatch.setattr(pipeline.targets, "resolve", lambda spec, frame, *rest: seen.append(frame) or original(spec, frame, *rest))
    spec = load_spec(_write(tmp_path, spec_dict(loans)))
    ctx = RunContext(spec, DAY, "targets__reads", "cli", storage, store)
    state = pipeline.begin(ctx)
    state |= pipeline.profiling(ctx, state)
    train = storage.read_parquet(state["train_uri"])
    holdout = storage.read_parquet(state["holdout_uri"])
    assert len(seen) == 1 and len(seen[0]) == len(train)
    assert seen[0].equals(train.drop(columns=[c for c in train.columns if c.startswith("_sc_")]))
    assert not set(map(tuple, seen[0].astype(str).values)) & set(map(tuple, holdout.astype(str).values))
    slices = targets.from_json(storage.read_json(state["targets_uri"]))
    assert [s.why["real_rows"] for s in slices] == [int(s.mask(seen[0]).sum()) for s in slices]


def test_quotas_are_met_over_rounds_when_a_filter_drops_about_half(tmp_path, loans, store, storage, monkeypatch):
    monkeypatch.setenv("SYNTHCHAIN_KEEP_STAGING", "true")
    spec = load_spec(_write(tmp_path, spec_dict(loans)))
    out = run_all(RunContext(spec, DAY, "targets__rounds", "cli", storage, store))
    version = store.version(out["dataset_version"])
    record = version["metrics"]["targets"]
    by_name = {s["name"]: s for s in record["slices"]}
    assert set(by_name) == {"mid_income", "short_term"}
    for name, quota in (("mid_income", 120), ("short_term", 80)):
        row = by_name[name]
        assert row["quota"] == quota and row["kept"] == quota and row["shortfall"] == 0
        assert row["rounds"] >= 1 and row["generated"] > 1.3 * quota  # the filter dropped enough to need rounds
        assert row["sampling"]["method"] == "conditioned" and row["sampling"]["acceptance_rate"] == 1.0
    assert record["rounds"] >= 1
    data = pd.read_parquet(out["data_uri"])
    synthetic = data.loc[data["_sc_origin"] == "synthetic"]
    assert synthetic["_sc_target"].value_counts().to_dict() == {"mid_income": 120, "short_term": 80}
    assert synthetic["_sc_round"].max() >= 1 and data.loc[data["_sc_origin"] == "real", "_sc_round"].isna().all()
    # every kept row holds its slice; the rows dropped along the way say why, privacy first among them
    assert synthetic.loc[synthetic["_sc_target"] == "mid_income", "annual_inc"].between(40000, 80000).all()
    assert (synthetic.loc[synthetic["_sc_target"] == "short_term", "term"] == "term_36").all()
    dropped = version["metrics"]["filtering"]
    assert dropped["privacy"]["dropped"] > 100 and set(dropped["privacy"]["by_slice"]) == {"mid_income", "short_term"}
    # each slice was verified against the real rows of its slice
    assert set(version["metrics"]["verification"]["by_slice"]) == {"mid_income", "short_term"}
    report = storage.read_text(out["report_uri"]) if hasattr(storage, "read_text") else \
        storage.read_bytes(out["report_uri"]).decode()
    assert "Targets: slices, quotas and rounds" in report and "annual_inc between 40000 and 80000" in report
    assert "Per class and slice, against class weights and SMOTE-NC" in report
    manifest = storage.read_json(out["manifest_uri"])
    assert manifest["targets"]["slices"][0]["name"] == "mid_income"
    table = manifest["metrics"]["evaluation"]["slices"]
    assert {r["name"] for r in table["rows"]} >= {"bad", "good", "mid_income", "short_term"}


def test_a_quota_the_budget_cannot_meet_fails_the_run_naming_the_slice(tmp_path, loans, store, storage):
    spec = load_spec(_write(tmp_path, spec_dict(loans, targets={"slices": [MID], "max_rounds": 0})))
    with pytest.raises(GateFailed) as failed:
        run_all(RunContext(spec, DAY, "targets__short", "cli", storage, store))
    message = str(failed.value)
    assert "mid_income.shortfall_share" in message
    assert "slice mid_income (annual_inc between 40000 and 80000):" in message and "after 0 extra round(s)" in message


def _cli(spec: Path, storage: Path, url: str, env: dict) -> subprocess.CompletedProcess:
    synthchain = str(Path(sys.executable).parent / "synthchain")
    return subprocess.run([synthchain, "run", str(spec), "--logical-date", DAY.isoformat(), "--storage", str(storage),
                           "--db-url", url], capture_output=True, text=True, env=env, timeout=900)


def test_a_run_killed_inside_a_round_publishes_exactly_once_what_an_unbroken_run_does(tmp_path, loans):
    spec = _write(tmp_path, spec_dict(loans, targets={"slices": [MID], "max_rounds": 4}))
    env = {**os.environ, "SYNTHCHAIN_HOME": str(tmp_path / "home"), "OMP_NUM_THREADS": "1"}
    env.pop("SYNTHCHAIN_FAILPOINTS", None)
    published = {}
    for name, kill in (("unbroken", False), ("killed", True)):
        url = ensure_database(os.environ.get("SYNTHCHAIN_TEST_DB", "synthchain_test") + f"_targets_{name}")
        store = ProvenanceStore(url)
        store.drop_all()
        store.migrate()
        root = tmp_path / name
        if kill:
            died = _cli(spec, root, url, {**env, "SYNTHCHAIN_FAILPOINTS": "filtering.round"})
            assert died.returncode == -signal.SIGKILL, died.stderr[-2000:]
            assert not [v for v in store.versions() if v["status"] == "published"]
        done = _cli(spec, root, url, env)
        assert done.returncode == 0, done.stderr[-3000:]
        versions = [v for v in store.versions() if v["status"] == "published"]
        assert len(versions) == 1
        storage = LocalStorage(root)
        manifest = storage.read_json(versions[0]["storage_uri"].rsplit("/", 1)[0] + "/manifest.json")
        assert manifest["targets"]["rounds"] >= 1  # the kill point was reached: a round ran
        published[name] = (manifest["content_sha256"], manifest["targets"]["slices"][0]["kept"])
        store.engine.dispose()
    assert published["killed"] == published["unbroken"]
    assert np.isclose(published["killed"][1], 120)
