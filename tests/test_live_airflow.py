"""End to end on live Airflow: api-server, scheduler and dag-processor as separate processes
(LocalExecutor, PostgreSQL metadata, their own databases and ports), driven through the REST API.

(a) a broken spec beside the others: its own import error, the others active, scheduled, triggerable;
(b) a manual run with conf, and another configuration of the same date as a version of its own;
(c) a candidate generator version backfilled over three past dates beside the main line: both lines
    published per date, the main line's Airflow runs and provenance untouched, carried rows in date order;
(d) bad conf refused with its reason.
"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from conftest import ROOT
from live_airflow import LiveAirflow, create_database, drop_database, spec_folders
from sqlalchemy import select

pytestmark = pytest.mark.airflow

METADATA_DB = "synthchain_live_e2e_airflow"
PROVENANCE_DB = "synthchain_live_e2e_provenance"
SPEC = "e2e_loans"
MAIN, CANDIDATE = f"synthchain__{SPEC}", f"synthchain__{SPEC}__cart_1_1"
DATES = ["2026-10-01", "2026-10-02", "2026-10-03"]
RUN_TIMEOUT = 900


def e2e_spec() -> dict:
    """The shipped lending_club spec with its cart 1.1 candidate, smaller: two 400-row shards per run."""
    spec = yaml.safe_load((ROOT / "include" / "specs" / "lending_club.yaml").read_text())
    spec.update(name=SPEC, target_rows=800, shard_rows=400)
    assert spec["candidates"] == [{"cart": "1.1"}] and spec["blend"]["mode"] == "accumulate"
    return spec


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    from synthchain.provenance import ProvenanceStore

    tmp = tmp_path_factory.mktemp("live-e2e")
    broken = {**e2e_spec(), "name": "broken_loans", "target_rows": -10, "candidates": []}
    specs, dags = spec_folders(tmp, {SPEC: e2e_spec(), "broken_loans": broken})  # one DAG file per spec
    db_url = create_database(PROVENANCE_DB)
    store = ProvenanceStore(db_url)
    store.drop_all()
    store.migrate()
    env = {"SYNTHCHAIN_SPECS_DIR": str(specs), "SYNTHCHAIN_DB_URL": db_url,
           "SYNTHCHAIN_STORAGE": str(tmp / "storage"),
           # The scheduler creates no cron runs here, so only the runs each test starts use the 2 cores;
           # backfills and manual runs are not affected (next_dagrun is still computed: see test a).
           "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False"}
    af = LiveAirflow(tmp / "home", dags, ROOT / "plugins", METADATA_DB, env,
                     preload=["synthchain.pipeline", "great_expectations"])  # imported once, not per task
    with af:
        print(f"live Airflow started in {af.startup_seconds:.1f}s")
        yield af, store, tmp
    store.engine.dispose()
    drop_database(PROVENANCE_DB)


def _runs_by_date(af: LiveAirflow, dag_id: str) -> dict[str, dict]:
    return {r["logical_date"][:10]: r for r in af.dag_runs(dag_id) if r["logical_date"]}


def _wait_all(af: LiveAirflow, dag_id: str, dates: list[str]) -> dict[str, dict]:
    af._wait(lambda: len([d for d in _runs_by_date(af, dag_id) if d in dates]) == len(dates) or None,
             120, f"{dag_id} runs for {dates}", interval=1)
    runs = _runs_by_date(af, dag_id)
    for day in dates:
        af.wait_for_run(dag_id, runs[day]["dag_run_id"], timeout=RUN_TIMEOUT)
    return _runs_by_date(af, dag_id)


def _line(store, line: str) -> dict[str, dict]:
    return {v["logical_date"]: v for v in store.versions(SPEC, line=line)}


def _carried_from(store, version_id: int) -> set[int]:
    """The versions the carried synthetic rows of a version were first created in."""
    from synthchain.provenance.models import RowLineage

    with store.engine.connect() as conn:
        return set(conn.execute(select(RowLineage.created_in_version_id).where(
            RowLineage.dataset_version_id == version_id, RowLineage.origin == "synthetic",
            RowLineage.created_in_version_id != version_id).distinct()).scalars())


def test_a_broken_spec_leaves_the_other_dags_active(live):
    af, store, tmp = live
    dag = af.wait_for_dag(MAIN, timeout=180)
    candidate = af.wait_for_dag(CANDIDATE, timeout=60)
    errors = af._wait(lambda: [e for e in af.import_errors() if e["filename"].endswith("synthchain__broken_loans.py")]
                      or None, 120, "the broken spec's import error")
    assert "broken_loans.yaml: field 'target_rows': Input should be greater than 0" in errors[0]["stack_trace"]
    # the good spec's DAGs stay active and scheduled after several parse rounds of the broken file
    af._wait(lambda: af.api("GET", f"/dags/{MAIN}")["last_parsed_time"] != dag["last_parsed_time"] or None,
             120, "a re-parse of the good spec's file")
    for dag_id in (MAIN, CANDIDATE):
        current = af.api("GET", f"/dags/{dag_id}")
        assert not current["is_stale"] and current["has_import_errors"] is False, current
    assert af.api("GET", f"/dags/{MAIN}")["next_dagrun_logical_date"]  # on its nightly schedule
    assert af.api("GET", f"/dags/{MAIN}")["is_paused"] is False
    assert candidate["is_paused"] is True  # a candidate line starts paused: unpausing it is deliberate
    assert af.api_raw("GET", "/dags/synthchain__broken_loans")[0] == 404


def test_d_bad_conf_is_refused_with_its_reason(live):
    af, store, tmp = live
    af.wait_for_dag(MAIN, timeout=180)
    status, body = af.api_raw("POST", f"/dags/{MAIN}/dagRuns", conf={"target_rows": 5}, logical_date=None)
    assert status == 400 and "target_rows" in json.dumps(body), body  # Airflow validates Params at trigger
    run_id = af.trigger(MAIN, conf={"target_rowz": 900}, logical_date="2026-09-01T00:00:00Z")
    af.wait_for_run(MAIN, run_id, timeout=RUN_TIMEOUT, expect="failed")
    states = {ti["task_id"]: ti["state"] for ti in af.task_instances(MAIN, run_id)}
    assert states["begin"] == "failed" and states["publish"] == "upstream_failed"
    log = af.task_log(MAIN, run_id, "begin")
    assert "run parameter(s) ['target_rowz'] are not known" in log, log
    assert store.versions(SPEC) == []  # refused before anything was written


def test_b_manual_run_with_conf_and_c_candidate_backfill_beside_the_main_line(live):
    af, store, tmp = live
    af.wait_for_dag(MAIN, timeout=180)
    # The main line over three past dates. Three runs may be active at once (Airflow's backfill default is
    # 10): each waits for its previous date, so accumulation carries the right rows whatever the setting.
    af.create_backfill(MAIN, f"{DATES[0]}T00:00:00Z", f"{DATES[-1]}T23:59:59Z", max_active_runs=3)
    main_runs = _wait_all(af, MAIN, DATES)
    main = _line(store, "main")
    assert [main[d]["status"] for d in DATES] == ["published"] * 3
    assert main[DATES[0]]["carried_rows"] == 0 and main[DATES[1]]["carried_rows"] > 0
    assert _carried_from(store, main[DATES[1]]["id"]) == {main[DATES[0]]["id"]}
    assert _carried_from(store, main[DATES[2]]["id"]) <= {main[DATES[0]]["id"], main[DATES[1]]["id"]}
    before_runs = {d: {k: r[k] for k in ("dag_run_id", "state", "conf", "end_date")}
                   for d, r in main_runs.items() if d in DATES}
    before_versions = {d: {k: v[k] for k in ("id", "run_pk", "status", "config_hash", "carried_rows", "metrics")}
                       for d, v in main.items()}
    before_records = [r for r in store.runs(SPEC) if r["dag_id"] == MAIN]

    # (b) a manual run with conf: another configuration of a date is a version of its own
    manual = af.trigger(MAIN, conf={"target_rows": 900, "real_fraction": 0.7}, logical_date=f"{DATES[2]}T12:00:00Z")
    # (c) the candidate line: unpaused (it starts paused), backfilled natively over the same dates
    af.unpause(CANDIDATE)
    af.create_backfill(CANDIDATE, f"{DATES[0]}T00:00:00Z", f"{DATES[-1]}T23:59:59Z", max_active_runs=1)
    af.wait_for_run(MAIN, manual, timeout=RUN_TIMEOUT)
    _wait_all(af, CANDIDATE, DATES)

    same_day = [v for v in store.versions(SPEC, line="main") if v["logical_date"] == DATES[2]]
    assert len(same_day) == 2 and len({v["config_hash"] for v in same_day}) == 2
    other = next(v for v in same_day if v["run_id"] == manual)
    assert other["status"] == "published" and store.lineage(other["id"])["generators"]
    whole = store.version(other["id"])["metrics"]["targets"]["slices"][0]  # the conf's 900, topped up by rounds
    assert whole["planned"] == 900 and whole["kept"] + whole["shortfall"] == 900
    assert sum(g["rows_generated"] for g in store.lineage(other["id"])["generators"]) == whole["generated"] >= 900
    # the asset event tells consumers which version was published and where its report is
    events = af.api("GET", "/assets/events", params={"source_dag_id": MAIN, "source_run_id": manual})["asset_events"]
    assert len(events) == 1 and events[0]["extra"]["version_id"] == other["id"], events
    assert events[0]["extra"]["report_uri"].endswith("report.html") and events[0]["extra"]["line"] == "main"

    candidate = _line(store, "cart_1_1")
    assert [candidate[d]["status"] for d in DATES] == ["published"] * 3
    events = af.api("GET", "/assets/events", params={"source_dag_id": CANDIDATE})["asset_events"]
    assert sorted(e["extra"]["version_id"] for e in events) == sorted(candidate[d]["id"] for d in DATES)
    assert {e["extra"]["line"] for e in events} == {"cart_1_1"}
    assert all(candidate[d]["generators"] == "cart@1.1+gaussian_copula@1.0" for d in DATES)
    # carried rows in date order, from the candidate's own earlier dates, never from the main line
    assert candidate[DATES[0]]["carried_rows"] == 0
    assert _carried_from(store, candidate[DATES[1]]["id"]) == {candidate[DATES[0]]["id"]}
    assert _carried_from(store, candidate[DATES[2]]["id"]) <= {candidate[DATES[0]]["id"], candidate[DATES[1]]["id"]}

    # the main line is untouched: its Airflow runs, its versions, its run records
    after_runs = {r["logical_date"][:10]: {k: r[k] for k in ("dag_run_id", "state", "conf", "end_date")}
                  for r in af.dag_runs(MAIN) if r["logical_date"][:10] in DATES and r["dag_run_id"] != manual}
    assert after_runs == before_runs
    main_after = {v["logical_date"]: v for v in store.versions(SPEC, line="main") if v["run_id"] != manual}
    assert {d: {k: v[k] for k in before_versions[d]} for d, v in main_after.items()} == before_versions
    assert [r for r in store.runs(SPEC) if r["dag_id"] == MAIN and r["run_id"] != manual] == before_records

    # the two lines side by side, per date
    out = subprocess.run([sys.executable, "-m", "synthchain.ops.cli", "compare", "--spec", SPEC, "--lines", "main",
                          "cart_1_1", "--json", "--db-url", store.url, "--html", str(tmp / "compare.html")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert [d["logical_date"] for d in result["dates"]] == DATES
    for day in result["dates"]:
        assert day["a"]["status"] == day["b"]["status"] == "published"
        assert {"quality_score", "dcr_closer_share", "tstr", "blend"} <= set(day["delta"])
    html = (tmp / "compare.html").read_text()
    assert "line cart_1_1 vs main" in html and html.count("<h2>") == 3
