"""Collapse: closed forms vs simulation, monitors, the stop rule, and ancestry queries."""
import math
from datetime import date, timedelta

import pandas as pd
import pytest
from conftest import base_spec
from sqlalchemy import text
from synthchain.collapse.monitors import REGISTRY, Monitor, MonitorInput, judge, measure_all, monitors_for, register
from synthchain.collapse.theory import (
    TheoryError,
    gaussian_closed_form,
    linreg_closed_form,
    simulate_gaussian,
    simulate_linreg,
)
from synthchain.gates import GateFailed
from synthchain.ops.cli import main
from synthchain.pipeline import RunContext, run_all
from synthchain.specs import load_spec

# Tolerance: a simulated mean lies within 4 standard errors of the true expectation with probability
# 1 - 6e-5, so a correct simulation passes and a wrong closed form (or a wrong loop) does not.
Z = 4.0


@pytest.mark.parametrize("mode", ["replace", "accumulate"])
@pytest.mark.parametrize("d, T, n", [(3, 12, 4), (8, 40, 6)])
def test_linreg_simulation_matches_closed_form(mode, d, T, n):
    result = simulate_linreg(d, T, 0.7, n, mode, reps=3000, seed=d + n)
    assert result["closed_form"] == pytest.approx(linreg_closed_form(d, T, 0.7, n, mode))
    assert abs(result["simulated"] - result["closed_form"]) < Z * result["standard_error"]
    assert result["relative_error"] < 0.08


def test_linreg_replace_grows_linearly_and_accumulate_stays_bounded():
    first = linreg_closed_form(5, 30, 1.0, 1, "replace")
    assert linreg_closed_form(5, 30, 1.0, 10, "replace") == pytest.approx(10 * first)
    assert linreg_closed_form(5, 30, 1.0, 1000, "accumulate") < math.pi**2 / 6 * first
    sim = simulate_linreg(5, 30, 1.0, 8, "accumulate", reps=2000, seed=1)
    assert sim["simulated"] < math.pi**2 / 6 * first + Z * sim["standard_error"]
    with pytest.raises(TheoryError, match="T > d \\+ 1"):
        simulate_linreg(5, 6, 1.0, 3, "replace")


@pytest.mark.parametrize("M, n", [(10, 5), (40, 12)])
def test_gaussian_simulation_matches_closed_form(M, n):
    result = simulate_gaussian(M, 1.5, n, reps=20000, seed=M)
    assert result["closed_form"] == pytest.approx(1.5**2 * (1 + n / M))
    assert abs(result["simulated"] - result["closed_form"]) < Z * result["standard_error"]
    log_err = result["mean_log_fitted_variance_simulated"] - result["mean_log_fitted_variance_closed_form"]
    assert abs(log_err) < Z * result["mean_log_fitted_variance_standard_error"]


def test_fitted_variance_collapses_towards_zero():
    short = simulate_gaussian(10, 1.0, 5, reps=5000, seed=0)
    long = simulate_gaussian(10, 1.0, 100, reps=5000, seed=0)
    assert long["median_fitted_variance_simulated"] < 0.01 < short["median_fitted_variance_simulated"]
    assert gaussian_closed_form(10, 1.0, 100)["mean_log_fitted_variance"] < gaussian_closed_form(10, 1.0, 5)[
        "mean_log_fitted_variance"] < 0
    assert long["share_fitted_variance_below_sigma2"] > 0.99


def test_collapse_cli_prints_one_json_object(capsys):
    import json

    assert main(["collapse", "linreg", "--d", "4", "--T", "20", "--sigma", "1", "--n", "3", "--mode", "accumulate",
                 "--reps", "500", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"simulated", "closed_form", "relative_error"} <= set(out)
    assert main(["collapse", "gaussian", "--M", "20", "--sigma", "1", "--n", "4", "--reps", "2000", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"simulated", "closed_form", "relative_error", "median_fitted_variance_simulated"} <= set(out)
    assert main(["collapse", "gaussian", "--M", "1", "--sigma", "1", "--n", "4"]) == 2


# --- monitors -------------------------------------------------------------------------------------------

def test_monitors_see_lost_tails_and_shrunk_variance(split):
    train, holdout, profile = split
    healthy = measure_all(MonitorInput(train, holdout, profile, {"detection_auc": 0.6, "tstr": 0.7}), "tabular")
    numeric = [c for c, p in profile.columns.items() if p.kind in ("numeric", "integer")]
    squeezed = holdout.copy()
    for col in numeric:  # pull every value halfway to the median: variance and tails shrink
        squeezed[col] = (squeezed[col] + holdout[col].median()) / 2
    squeezed["addr_state"] = "CA"  # rare states disappear
    collapsed = measure_all(MonitorInput(train, squeezed, profile, {"detection_auc": 0.9, "tstr": 0.6}), "tabular")
    assert healthy["tail_coverage"] > 0.85 and collapsed["tail_coverage"] < healthy["tail_coverage"] - 0.3
    assert 0.8 < healthy["variance_ratio"] < 1.2 and collapsed["variance_ratio"] < 0.4
    assert collapsed["detection_auc"] == 0.9 and collapsed["tstr"] == 0.6
    assert healthy["correlation_drift"] < 0.05


def test_judge_names_monitor_generation_and_trend():
    history = [{"tail_coverage": 0.95, "detection_auc": 0.65}, {"tail_coverage": 0.90, "detection_auc": 0.70}]
    verdicts = {v.monitor: v for v in judge({"tail_coverage": 0.80, "detection_auc": 0.72}, history, 2,
                                            {"tail_coverage": 0.06, "detection_auc": 0.15})}
    assert verdicts["tail_coverage"].tripped and not verdicts["detection_auc"].tripped
    text_ = verdicts["tail_coverage"].describe()
    assert "collapse monitor tail_coverage at generation 2" in text_
    assert "0.9500 → 0.9000 → 0.8000" in text_ and "15.8% vs generation 0" in text_


def test_a_new_modalitys_monitors_plug_in_without_change():
    class DistinctTokens(Monitor):
        name = "distinct_1_test"
        modality = "toy_text"
        description = "distinct unigrams / tokens"

        def measure(self, data: MonitorInput) -> float:
            tokens = " ".join(data.synthetic["text"]).split()
            return len(set(tokens)) / len(tokens)

    register(DistinctTokens())
    try:
        assert "distinct_1_test" in [m.name for m in monitors_for("toy_text")]
        assert "distinct_1_test" not in [m.name for m in monitors_for("tabular") + monitors_for("text")]
        values = measure_all(MonitorInput(pd.DataFrame(), pd.DataFrame({"text": ["a b c", "a a a"]})), "toy_text")
        assert values == {"distinct_1_test": 0.5}
        verdict = judge(values, [{"distinct_1_test": 0.9}], 1, {"distinct_1_test": 0.2})[0]
        assert verdict.tripped and "distinct_1_test at generation 1" in verdict.describe()
    finally:
        REGISTRY.pop("distinct_1_test")


# --- the stop rule on the real pipeline ------------------------------------------------------------------

def _chain(spec, store, storage, generations, start=date(2026, 5, 1)):
    outs = []
    for k in range(generations):
        day = start + timedelta(days=k)
        outs.append(run_all(RunContext(spec, day, f"{spec.name}__{day}", "test", storage, store)))
    return outs


def test_replace_chain_is_refused_publication_by_a_monitor(spec_file, store, storage):
    spec = load_spec(spec_file(base_spec(name="lc_replace", target_rows=2400,
                                         generations={"source": "previous_version", "mode": "replace"})))
    with pytest.raises(GateFailed) as err:
        _chain(spec, store, storage, 3)
    message = str(err.value)
    assert "gate 'evaluation' failed" in message and "collapse monitor" in message
    assert " at generation " in message and "trend " in message and "vs generation 0" in message
    versions = store.versions("lc_replace")
    assert versions[-1]["status"] == "quarantined"
    assert all(v["status"] == "published" for v in versions[:-1])
    refused = store.version(versions[-1]["id"])
    assert refused["generation"] >= 1
    assert any(v["tripped"] for v in refused["metrics"]["collapse_verdicts"])
    assert not storage.list(f"published/lc_replace/{versions[-1]['logical_date']}")


def test_accumulate_chain_publishes_and_records_ancestry(spec_file, store, storage, monkeypatch):
    # the last generation's fit data is read back below: keep its staging tree, real-row copies included
    monkeypatch.setenv("SYNTHCHAIN_KEEP_STAGING", "true")
    monkeypatch.setenv("SYNTHCHAIN_KEEP_REAL_COPIES", "true")
    spec = load_spec(spec_file(base_spec(name="lc_acc", target_rows=2400,
                                         generations={"source": "previous_version", "mode": "accumulate"})))
    outs = _chain(spec, store, storage, 3)
    ids = [o["dataset_version"] for o in outs]
    assert [store.version(i)["status"] for i in ids] == ["published"] * 3
    assert [store.version(i)["generation"] for i in ids] == [0, 1, 2]
    assert [a["id"] for a in store.ancestry(ids[2])] == ids
    assert store.lineage(ids[2])["ancestry"] == ids
    verdicts = store.version(ids[2])["metrics"]["collapse_verdicts"]
    assert verdicts and not any(v["tripped"] for v in verdicts)
    with store.engine.connect() as conn:
        # every row's generation index: rows created in version k carry generation k, real rows none
        per_gen = conn.execute(text(
            "SELECT created_in_version_id, generation, origin, count(*) FROM row_lineage "
            "WHERE dataset_version_id = :v GROUP BY 1, 2, 3 ORDER BY 1"), {"v": ids[2]}).all()
        # the full parent chain as one recursive query: what the latest version was fitted on
        chain = conn.execute(text(
            "WITH RECURSIVE up(id) AS (SELECT CAST(:v AS integer) UNION "
            "SELECT p.parent_id FROM dataset_version_parents p JOIN up ON p.child_id = up.id "
            "WHERE p.relation = 'fitted_on') SELECT id FROM up ORDER BY id"), {"v": ids[2]}).scalars().all()
    assert chain == ids
    generations = {created: gen for created, gen, origin, _ in per_gen if origin == "synthetic"}
    assert generations[ids[2]] == 2 and set(generations) <= set(ids)
    assert all(gen is None for created, gen, origin, _ in per_gen if origin == "real")
    attempt = store.attempt(store.version(ids[2])["published_attempt_id"])
    assert attempt["staging_prefix"] == (f"runs/lc_acc/{date(2026, 5, 3)}/"
                                         f"{RunContext(spec, date(2026, 5, 3), 'x', 'x', storage, store).config_hash}"
                                         f"/a{attempt['id']}")
    fit = storage.read_parquet(storage.uri(f"{attempt['staging_prefix']}/profiling/fit_data.parquet"))
    assert (fit["_sc_origin"] == "real").sum() == 7886 and (fit["_sc_origin"] == "synthetic").sum() > 0


def test_unknown_monitor_limit_is_a_spec_error(spec_file, store, storage):
    from synthchain.specs import SpecError

    spec = load_spec(spec_file(base_spec(collapse={"limits": {"no_such_monitor": 0.1}})))
    with pytest.raises(SpecError, match="collapse.limits.*no_such_monitor"):
        run_all(RunContext(spec, date(2026, 5, 1), "x", "test", storage, store))
