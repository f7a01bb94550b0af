"""Verifying that a targeted row belongs to its target: a label the real rows disagree with is dropped with its
probability, and copies of a rare slice's real rows are caught by the slice's own privacy checks in a run."""
from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from synthchain.lineage import row_hashes
from synthchain.pipeline import RunContext, run_all
from synthchain.specs import load_spec
from synthchain.tabular.filters import FilterInput, LabelAgreementFilter
from synthchain.tabular.verification import verify


def _judge(rows: pd.DataFrame, train: pd.DataFrame, holdout: pd.DataFrame, profile) -> np.ndarray:
    _, checks, holdout_dcr = verify(rows, train, holdout, profile)
    return LabelAgreementFilter("Class", quantile=0.05).decide(
        FilterInput(rows.reset_index(drop=True), checks, train, profile, holdout_dcr, seed=11))


def test_a_label_the_features_contradict_is_dropped_with_its_probability():
    from synthchain.tabular.profile import profile_frame

    rng = np.random.default_rng(0)
    n = 3000
    frame = pd.DataFrame({"x": rng.random(n), "z": rng.normal(size=n), "kind": rng.choice(["a", "b", "c"], n)})
    frame["Class"] = np.where(frame["x"] > 0.8, "rare", "common")  # the label follows x
    # a little label noise, under the filter's 5% quantile: the bar is the least plausible real rare rows', so
    # real labels noisier than that (2% of all rows flipped: ~8% of the rare ones) would let as much through
    flip = rng.random(n) < 0.005
    frame.loc[flip, "Class"] = np.where(frame.loc[flip, "Class"] == "rare", "common", "rare")
    train, holdout = frame.iloc[:2400].reset_index(drop=True), frame.iloc[2400:].reset_index(drop=True)
    profile = profile_frame(train, "Class", "classification")
    fresh = pd.DataFrame({"x": rng.random(400), "z": rng.normal(size=400), "kind": rng.choice(["a", "b", "c"], 400)})
    claimed = fresh.assign(Class="rare")  # every row claims the rare label; it holds where x > 0.8
    decision = _judge(claimed, train, holdout, profile)
    truly = (fresh["x"] > 0.85).to_numpy()
    clearly_not = (fresh["x"] < 0.75).to_numpy()
    assert decision.keep[truly].mean() >= 0.9, decision.keep[truly].mean()
    assert (~decision.keep[clearly_not]).mean() >= 0.95, (~decision.keep[clearly_not]).mean()
    reason = decision.reasons[int(np.flatnonzero(~decision.keep)[0])]
    assert reason.startswith("label_disagrees: p(rare)=") and "the 5% quantile of real rare rows" in reason
    assert decision.metrics["flagged"] == int((~decision.keep).sum())


def test_on_lending_club_a_wrong_label_is_dropped_far_more_often_than_a_right_one(split):
    """Bad and good loans overlap: only clear contradictions go (the bar is the 5% quantile of real bad rows'
    out-of-fold p(bad)), but a wrong claim is still dropped several times as often as a right one."""
    train, holdout, profile = split
    goods = train.loc[train["Class"] == "good"].sample(300, random_state=1).assign(Class="bad")
    bads = train.loc[train["Class"] == "bad"].sample(300, random_state=2)
    decision = _judge(pd.concat([goods, bads], ignore_index=True), train, holdout, profile)
    wrong, right = (~decision.keep[:300]).mean(), (~decision.keep[300:]).mean()
    assert wrong >= 3 * max(right, 0.01), (wrong, right)
    assert 0.0 < decision.metrics["bars"]["bad"] < 0.5  # a rare class is never predicted with confidence


@pytest.fixture(scope="module")
def loans(lending_club):
    root = Path(os.environ["SYNTHCHAIN_DATA_ROOTS"].split(os.pathsep)[0])
    path = root / "targeted_checks_loans.csv"
    lending_club.sample(2500, random_state=3).to_csv(path, index=False)
    return path


def test_copies_of_a_rare_slices_real_rows_are_dropped_by_the_slices_privacy_checks(tmp_path, loans, store, storage,
                                                                                    monkeypatch):
    # a generator that copies real rows (drawn by rejection for the slice: it cannot condition) beside CART
    monkeypatch.setenv("SYNTHCHAIN_ALLOWED_GENERATORS", "plugin_generators:ResampleGenerator")
    spec = {"name": "copied_rare", "source": str(loans), "target": "Class", "task": "classification",
            "holdout": {"fraction": 0.2, "seed": 7},
            "generators": [{"name": "cart", "version": "1.0", "weight": 4.0},
                           {"name": "plugin_generators:ResampleGenerator", "version": "1", "weight": 1.0}],
            "target_rows": 200, "shard_rows": 200, "blend": {"real_fraction": 0.8, "mode": "accumulate"},
            "targets": {"rebalance": "balanced", "max_rounds": 4},
            "gates": {"min_real_rows": 1000, "min_quality_score": 0.5, "max_synthetic_share": 0.5,
                      "max_utility_drop": 0.2, "max_dcr_closer_share": 0.95, "max_drop_fraction": 0.9,
                      "max_slice_utility_drop": 0.2}}
    path = tmp_path / "copied_rare.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    out = run_all(RunContext(load_spec(path), date(2026, 4, 2), "copied", "cli", storage, store))
    version = store.version(out["dataset_version"])
    (aimed,) = version["metrics"]["targets"]["slices"]
    assert aimed["name"] == "label_bad" and aimed["kept"] == aimed["quota"] == 200
    # every copy of a real bad loan was caught inside the slice (each is the only training row with its profile)
    lineage = store.lineage(out["dataset_version"])
    made = {g["name"]: g["rows_generated"] for g in lineage["generators"]}["plugin_generators:ResampleGenerator"]
    dropped = {(d["filter"], d["generator"]): d["count"] for d in lineage["dropped"]}
    assert made >= 5 and dropped.get(("exact_dedup", "plugin_generators:ResampleGenerator")) == made
    copies = version["metrics"]["filtering"]["exact_dedup"]
    assert copies["dropped"] == copies["by_slice"]["label_bad"]["dropped"] >= made
    data = pd.read_parquet(out["data_uri"])
    synthetic = data.loc[data["_sc_origin"] == "synthetic"]
    assert (synthetic["Class"] == "bad").all()
    real = pd.read_csv(loans)
    columns = [c for c in real.columns if c in synthetic.columns]
    # nothing published is a real row (row_hashes compares the values as text: the float 5000.0 and the CSV's
    # integer 5000 are read back alike through parquet and pandas)
    assert not np.isin(row_hashes(synthetic[columns]), row_hashes(real[columns])).any()
