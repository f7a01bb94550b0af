"""The synthchain pages (synthchain.ops.dashboard) over a provenance store the real pipeline filled, and the
plugin app that serves them through Airflow's own api-server app and auth manager.

The pipeline runs once for the module (three runs: two generations of a recursive spec and one that a
gate quarantines) on a 2,000-row sample of Lending Club, so the pages have real gates, metrics, lineage
and collapse trends to show. It uses its own database: other tests drop and recreate `synthchain_test`.
"""
from __future__ import annotations

import json
import posixpath
import re
import sys
from datetime import date

import pytest
import yaml
from conftest import base_spec, ensure_database, environment
from synthchain.gates import GateFailed
from synthchain.ops import dashboard
from synthchain.pipeline import RunContext, run_all
from synthchain.provenance import ProvenanceStore
from synthchain.specs import load_spec
from synthchain.storage import LocalStorage

DAY1, DAY2 = date(2026, 3, 1), date(2026, 3, 2)


def _spec(name: str, source: str, **overrides) -> dict:
    spec = base_spec(name=name, source=source, target_rows=400, shard_rows=200, **overrides)
    spec.pop("drop_columns")  # the sample has no R row index
    return spec


@pytest.fixture(scope="module")
def site(tmp_path_factory, lending_club):
    """Specs, a store and a storage after: chain v1 (gen 0) -> v2 (gen 1, fitted on v1), and quarantined runs
    of a strict spec on its main line and on a candidate line (cart 1.1)."""
    root = tmp_path_factory.mktemp("dashboard")
    source = root / "lending_club_2000.parquet"
    lending_club.sample(n=2000, random_state=1).to_parquet(source, index=False)
    specs = root / "specs"
    specs.mkdir()
    chain = _spec("dash_chain", str(source), description="Two generations, each fitted on the last.",
                  generations={"source": "previous_version", "mode": "accumulate"}, collapse={"enforce": False},
                  candidates=[{"cart": "1.1"}])
    strict = _spec("dash_strict", str(source), gates={"min_quality_score": 0.999}, candidates=[{"cart": "1.1"}])
    (specs / "dash_chain.yaml").write_text(yaml.safe_dump(chain, sort_keys=False))
    (specs / "dash_strict.yaml").write_text(yaml.safe_dump(strict, sort_keys=False))
    (specs / "broken.yaml").write_text("name: broken\nsource: nowhere.csv\ntarget_rows: -5\n")

    url = ensure_database("synthchain.ops.dashboard_test")
    store = ProvenanceStore(url)
    store.drop_all()
    store.migrate()
    storage = LocalStorage(root / "storage")
    spec = load_spec(specs / "dash_chain.yaml")
    v1 = run_all(RunContext(spec, DAY1, "chain__1", "scheduled", storage, store))
    v2 = run_all(RunContext(spec, DAY2, "chain__2", "manual", storage, store))
    strict = load_spec(specs / "dash_strict.yaml")
    for line, run_id in (("main", "strict__1"), ("cart_1_1", "strict_cart__1")):  # both fail at verification
        with pytest.raises(GateFailed):
            run_all(RunContext(strict.lines()[line], DAY1, run_id, "manual", storage, store))
    quarantined = next(v for v in dashboard.dataset_versions(store, "dash_strict") if v["line"] == "main")
    yield {"specs": specs, "store": store, "storage": storage, "url": url, "v1": v1, "v2": v2,
           "q": quarantined["id"]}
    store.engine.dispose()


def test_index_lists_specs_versions_gates_and_metrics(site):
    store = site["store"]
    page = dashboard.render_index(store, site["specs"])
    v1, v2, q = site["v1"]["dataset_version"], site["v2"]["dataset_version"], site["q"]
    for vid in (v1, v2, q):
        assert f"<a href='versions/{vid}/'>{vid}</a>" in page
    assert "Two generations, each fitted on the last." in page
    assert "chain__1" in page and "chain__2" in page and "strict__1" in page and "scheduled" in page
    assert page.count("class=published>published") == 2 and page.count("class=quarantined>quarantined") == 2
    assert "<td>cart_1_1</td>" in page
    # the quarantined run's failed gate, in the gate's own words
    assert "verification: <span class=fail>FAIL</span>" in page
    assert "expect_column_values_to_be_between(column=&#x27;quality_score&#x27;, min_value=0.999)" in page
    # rows and headline metrics as stored
    v2_row = store.version(v2)
    summary = v2_row["metrics"]["summary"]
    assert f"<td class=num>{v2_row['real_rows']}</td><td class=num>{v2_row['synthetic_rows']}</td>" \
           f"<td class=num>{v2_row['carried_rows']}</td>" in page
    assert f"<tr><th>quality_score</th><td class=num>{summary['quality_score']:.4g}</td></tr>" in page
    assert f"<tr><th>blend_roc_auc</th><td class=num>{summary['blend_roc_auc']:.4g}</td></tr>" in page
    assert f"versions/{v2}/files/report.html" in page and f"versions/{q}/files/report.html" not in page
    # a spec that does not load is listed with its error; a spec with a candidate line links the comparison
    assert "id='spec-broken'" in page and "This spec does not load" in page and "target_rows" in page
    assert "compare?spec=dash_chain&amp;a=main&amp;b=cart_1_1" in page
    assert "compare?spec=dash_strict&amp;a=main&amp;b=cart_1_1" in page


def test_version_page_shows_gates_lineage_and_collapse_trend(site):
    store, storage = site["store"], site["storage"]
    v1, v2 = site["v1"]["dataset_version"], site["v2"]["dataset_version"]
    page = dashboard.render_version(store, storage, v2)
    assert "dash_chain · version" in page and "chain__2 · manual · try 1 · success" in page
    for hop in ("profiling", "generation", "verification", "filtering", "blending", "evaluation"):
        assert f"<a href='files/gx_docs/index_{hop}.html'>data docs</a>" in page
    assert "<a href='files/report.html'>HTML report</a>" in page
    assert "<a href='files/manifest.json'>manifest.json</a>" in page
    # lineage: v2 was fitted on v1
    assert f"<a href='../{v1}/'>version {v1}</a> (fitted_on)" in page
    lineage = store.lineage(v2)
    for row in lineage["rows"]:
        assert f"<td>{row['count']}</td>" in page
    # collapse monitors of both generations, oldest first, with a sparkline per monitor
    assert "<th>gen 0<br>" in page and "<th>gen 1<br>" in page
    for gen, version in ((0, v1), (1, v2)):
        for monitor, value in store.version(version)["metrics"]["collapse"].items():
            if value is not None:
                assert f"<td class=num>{value:.4g}</td>" in page, (gen, monitor)
    assert page.count("<svg") >= len(store.version(v2)["metrics"]["collapse"]) - 1
    assert "<polyline" in page


def test_quarantined_version_page_names_failure_and_keeps_data_docs(site):
    page = dashboard.render_version(site["store"], site["storage"], site["q"])
    assert "class=quarantined>quarantined" in page
    assert "quality_score" in page and "min_value=0.999" in page
    assert "<a href='files/gx_docs/index_verification.html'>data docs</a>" in page
    assert "files/report.html" not in page  # nothing was published


def test_version_files_are_served_from_storage(site):
    store, storage, out = site["store"], site["storage"], site["v2"]
    vid = out["dataset_version"]
    data, media = dashboard.version_file(store, storage, vid, "report.html")
    assert data == storage.read_bytes(out["report_uri"]) and media == "text/html; charset=utf-8"
    data, media = dashboard.version_file(store, storage, vid, "manifest.json")
    assert json.loads(data)["dataset_version"] == vid and media.startswith("application/json")
    index, _ = dashboard.version_file(store, storage, vid, "gx_docs/index_profiling.html")
    # the data docs' own relative links resolve under the same folder
    linked = re.search(r'href="(expectations/[^"]+\.html)"', index.decode()).group(1)
    page, _ = dashboard.version_file(store, storage, vid, f"gx_docs/{linked}")
    assert b"<html" in page.lower()
    # a quarantined version's data docs come from where its gates wrote them
    docs, _ = dashboard.version_file(store, storage, site["q"], "gx_docs/index_verification.html")
    assert b"verification_metrics" in docs  # the suite the failed gate ran
    with pytest.raises(LookupError):
        dashboard.version_file(store, storage, site["q"], "report.html")
    with pytest.raises(LookupError):
        dashboard.version_file(store, storage, vid, "gx_docs")  # a folder, not a file
    with pytest.raises(LookupError):
        dashboard.version_file(store, storage, 999_999, "report.html")
    with pytest.raises(LookupError):
        dashboard.render_version(store, storage, 999_999)


@pytest.mark.parametrize("path", ["../report.html", "gx_docs/../../../../etc/passwd", "/etc/passwd", "..", ".",
                                  "gx_docs/..", "gx_docs/./index_profiling.html", "a\\..\\b", ""])
def test_paths_that_leave_the_version_folder_are_refused(site, path):
    with pytest.raises(PermissionError):
        dashboard.version_file(site["store"], site["storage"], site["v1"]["dataset_version"], path)


def test_a_version_cannot_reach_its_siblings_files(site):
    """v1 and v2 sit side by side (published/<spec>/<date>/<hash>/a<attempt>/...): no path from v1 reaches
    v2's report."""
    store, storage = site["store"], site["storage"]
    v1 = site["v1"]["dataset_version"]
    v1_root = storage.key_of(site["v1"]["report_uri"]).rsplit("/", 1)[0]
    v2_report = storage.key_of(site["v2"]["report_uri"])
    assert v1_root == store.attempt(store.version(v1)["published_attempt_id"])["published_prefix"]
    sibling = posixpath.relpath(v2_report, v1_root)  # ../../../<date>/<hash>/a<attempt>/report.html
    assert posixpath.normpath(posixpath.join(v1_root, sibling)) == v2_report  # the path does lead there
    with pytest.raises(PermissionError):
        dashboard.version_file(store, storage, v1, sibling)


def test_line_comparison(site):
    store = site["store"]
    candidate = next(v for v in dashboard.dataset_versions(store, "dash_strict") if v["line"] == "cart_1_1")
    page = dashboard.render_comparison(store, "dash_strict", "main", "cart_1_1")
    assert "line cart_1_1 vs main" in page and "<a href='./'>← all datasets</a>" in page
    assert f"<td>{site['q']}</td><td>{candidate['id']}</td>" in page  # both lines' versions of the date
    with pytest.raises(LookupError, match="cart_1_1"):  # declared, but nothing ran on it yet
        dashboard.render_comparison(store, "dash_chain", "main", "cart_1_1")


# --- the plugin app, mounted by Airflow's own api-server app -------------------------------------------

@pytest.fixture(scope="module")
def api(site, airflow_db):
    """Airflow's api-server app (core APIs + plugins + auth manager) with the plugin reading `site`."""
    with environment(SYNTHCHAIN_DB_URL=site["url"], SYNTHCHAIN_STORAGE=str(site["storage"].root),
                     SYNTHCHAIN_SPECS_DIR=str(site["specs"])):
        from airflow.api_fastapi.app import create_app, get_auth_manager, purge_cached_app
        from fastapi.testclient import TestClient

        app = create_app("core")
        plugin = sys.modules["synthchain_ui"]  # loaded by Airflow's plugins manager from plugins/
        plugin._store.cache_clear()
        plugin._storage.cache_clear()
        with TestClient(app) as client:
            yield client, get_auth_manager()
        plugin._store.cache_clear()
        plugin._storage.cache_clear()
        purge_cached_app()


def _jwt(auth_manager, role: str | None) -> str:
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return auth_manager.generate_jwt(SimpleAuthManagerUser(username=f"user-{role}", role=role))


def test_plugin_refuses_requests_without_a_valid_airflow_token(api):
    client, auth_manager = api
    assert client.get("/synthchain/").status_code == 401
    login = client.get("/synthchain/", headers={"accept": "text/html"}, follow_redirects=False)
    assert (login.status_code, login.headers["location"]) == (303, "/auth/login?next=%2Fsynthchain%2F")
    assert client.get("/synthchain/", headers={"Authorization": "Bearer not-a-jwt"}).status_code == 403
    assert client.get("/synthchain/versions/1/files/report.html").status_code == 401
    # a valid token whose user may not read DAG runs
    no_role = client.get("/synthchain/", headers={"Authorization": f"Bearer {_jwt(auth_manager, None)}"})
    assert no_role.status_code == 403


def test_plugin_serves_pages_and_files_to_a_logged_in_user(api, site):
    client, auth_manager = api
    cookies = {"_token": _jwt(auth_manager, "viewer")}  # what the UI's login stores
    v2 = site["v2"]["dataset_version"]
    index = client.get("/synthchain/", cookies=cookies)
    assert index.status_code == 200 and f"<a href='versions/{v2}/'>{v2}</a>" in index.text
    assert client.get(f"/synthchain/versions/{v2}", cookies=cookies, follow_redirects=False).status_code == 307
    version = client.get(f"/synthchain/versions/{v2}/", cookies=cookies)
    assert version.status_code == 200 and "files/gx_docs/index_evaluation.html" in version.text
    report = client.get(f"/synthchain/versions/{v2}/files/report.html", cookies=cookies)
    assert report.status_code == 200 and report.content == site["storage"].read_bytes(site["v2"]["report_uri"])
    assert "connect-src 'none'" in report.headers["content-security-policy"]
    assert client.get(f"/synthchain/versions/{v2}/files/%2E%2E/%2E%2E/x", cookies=cookies).status_code == 403
    assert client.get(f"/synthchain/versions/{v2}/files/nope.html", cookies=cookies).status_code == 404
    assert client.get("/synthchain/versions/999999/", cookies=cookies).status_code == 404
    compare = client.get("/synthchain/compare", params={"spec": "dash_strict", "a": "main", "b": "cart_1_1"},
                         cookies=cookies)
    assert compare.status_code == 200 and "line cart_1_1 vs main" in compare.text
    assert client.get("/synthchain/compare", params={"spec": "dash_chain", "a": "main", "b": "cart_1_1"},
                      cookies=cookies).status_code == 404


def test_plugin_adds_a_navigation_entry(api):
    client, auth_manager = api
    plugins = client.get("/api/v2/plugins", headers={"Authorization": f"Bearer {_jwt(auth_manager, 'admin')}"})
    ours = next(p for p in plugins.json()["plugins"] if p["name"] == "synthchain_ui")
    assert ours["fastapi_apps"][0]["url_prefix"] == "/synthchain"
    view = ours["external_views"][0]
    assert (view["url_route"], view["href"], view["destination"]) == ("synthchain", "synthchain/", "nav")
