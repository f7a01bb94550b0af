"""The synthchain page in a live Airflow, driven by a real browser as a person would use it.

A live api-server, scheduler and dag-processor (tests/live_airflow.py) run the DAG of a small spec;
Playwright drives Debian's Chromium (never a browser `playwright install` would download): log in on
Airflow's login page, trigger the DAG from its Params form, open "synthchain" from the UI's navigation,
find the run's new version there and open its report, all inside the Airflow UI.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from live_airflow import PASSWORD, USER, LiveAirflow, create_database, drop_database, spec_folders

pytestmark = pytest.mark.airflow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
METADATA_DB = "synthchain_ui_airflow"
PROVENANCE_DB = "synthchain_ui_provenance"
DAG_ID = "synthchain__ui_small"
TARGET_ROWS = 500  # typed into the trigger form: differs from the spec's 600, so we see the form's value arrive


def small_spec(source: Path) -> dict:
    """The shipped lending_club spec, small and unscheduled, on a 2,000-row sample of its data (keeps the run short)."""
    spec = yaml.safe_load((ROOT / "include" / "specs" / "lending_club.yaml").read_text())
    spec.update(name="ui_small", source=str(source), target_rows=600, shard_rows=300, schedule=None)
    spec.pop("drop_columns", None)  # the sample has no R row index
    spec.pop("candidates", None)  # one DAG is enough here
    return spec


@pytest.fixture(scope="module")
def live(tmp_path_factory, lending_club):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    tmp = tmp_path_factory.mktemp("ui")
    source = tmp / "lending_club_2000.parquet"
    lending_club.sample(n=2000, random_state=1).to_parquet(source, index=False)
    specs, dags = spec_folders(tmp, {"ui_small": small_spec(source)})  # its DAG file, as `synthchain dags sync` writes it
    env = {"SYNTHCHAIN_SPECS_DIR": str(specs), "SYNTHCHAIN_DB_URL": create_database(PROVENANCE_DB),
           "SYNTHCHAIN_STORAGE": str(tmp / "storage"), "SYNTHCHAIN_DATA_ROOTS": str(tmp)}
    with LiveAirflow(tmp / "home", dags, ROOT / "plugins", METADATA_DB, env,
                     preload=["synthchain.pipeline", "great_expectations"]) as af:  # imported once, not per task
        print(f"live Airflow started in {af.startup_seconds:.1f}s")
        yield af
    drop_database(PROVENANCE_DB)


def test_synthchain_page_requires_login(live):
    status, body = live.api_raw("GET", "/synthchain/", auth=False, root=True)
    assert status == 401, body
    status, _ = live.api_raw("GET", "/synthchain/versions/1/files/report.html", auth=False, root=True)
    assert status == 401


def test_trigger_from_the_ui_and_open_the_new_versions_report(live):
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=60_000)  # a loaded 2-core machine renders slowly
    af, started = live, time.monotonic()
    af.wait_for_dag(DAG_ID)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)

        # Not logged in: the synthchain page sends the browser to Airflow's login, which sends it back.
        page.goto(f"{af.url}/synthchain/")
        expect(page).to_have_url(re.compile(r"/auth/login\?next="))
        page.get_by_label("Username").fill(USER)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(f"{af.url}/synthchain/")
        expect(page.locator("h1")).to_have_text("synthchain datasets")

        # Trigger a run from the DAG's trigger form, with a Param changed in the form.
        page.goto(f"{af.url}/dags/{DAG_ID}")
        page.get_by_role("button", name="Trigger").first.click()
        form = page.get_by_role("dialog")
        form.locator("input[name=element_target_rows]").fill(str(TARGET_ROWS))
        form.get_by_role("button", name="Trigger").click()
        expect(form).to_be_hidden()
        runs = af._wait(lambda: af.dag_runs(DAG_ID), 60, f"a run of {DAG_ID}")
        assert len(runs) == 1 and runs[0]["conf"]["target_rows"] == TARGET_ROWS, runs
        run_id = runs[0]["dag_run_id"]
        af.wait_for_run(DAG_ID, run_id, timeout=600)
        run_seconds = time.monotonic() - started

        # The synthchain entry of the UI's navigation opens the page inside the UI.
        page.goto(f"{af.url}/")
        page.get_by_test_id("nav-sidebar").get_by_role("link", name="synthchain", exact=True).click()
        expect(page).to_have_url(f"{af.url}/plugin/synthchain")
        frame = page.frame_locator("iframe[title=synthchain]")
        row = frame.locator("tr", has_text=run_id)
        expect(row).to_contain_text("published")
        expect(row).to_contain_text("evaluation: pass")

        # The version page: the form's row count reached the plan. The spec targets its minority class, so the
        # rows are planned per slice (the Targets table's 'planned' column, the 5th); the generators drew at least
        # that many (top-up rounds draw more where filters dropped rows).
        row.get_by_role("link").first.click()
        expect(frame.locator("h1")).to_contain_text("ui_small · version")
        planned = frame.locator("h2:has-text('Targets') + table td:nth-child(5)").all_inner_texts()
        assert sum(int(n) for n in planned) == TARGET_ROWS, planned
        generated = frame.locator("h3:has-text('Generators') + table td:last-child").all_inner_texts()
        assert sum(int(n) for n in generated) >= TARGET_ROWS, generated

        # Its report, served from storage, shown inside the UI.
        frame.get_by_role("link", name="HTML report").click()
        expect(frame.locator("h1")).to_contain_text(re.compile(r"synthchain · ui_small · \S+ · version \d+"))
        expect(frame.locator("h2", has_text="Gates")).to_be_visible()
        expect(page).to_have_url(re.compile(r"/plugin/synthchain/synthchain/versions/\d+/files/report\.html$"))
        browser.close()
    print(f"UI test: run finished after {run_seconds:.0f}s, whole test {time.monotonic() - started:.0f}s")
