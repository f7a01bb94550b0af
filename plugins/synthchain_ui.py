"""The synthchain page inside the Airflow UI.

- A FastAPI app mounted at /synthchain on the api-server. Every route depends on Airflow's own
  `get_user` (airflow.api_fastapi.core_api.security): it resolves the user from the JWT in the
  `_token` cookie the UI sets at login (or from an `Authorization: Bearer` token) through the
  configured auth manager; then that auth manager is asked whether the user may read DAG runs
  (all of them, no DAG named), since the page shows what every spec's runs published. Without a valid
  token: 401 (a browser is sent to Airflow's login page instead); a token without that right: 403.
- An external view with a `url_route`: a "synthchain" entry in the UI's navigation that opens the
  app inside the UI (an iframe at /plugin/synthchain), its href relative to the UI's base URL.

The pages themselves are synthchain.ops.dashboard's; this file only wires routes and auth.
"""
from __future__ import annotations

from functools import cache

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/synthchain"

# Stored artefacts are served on Airflow's own origin: their scripts (GX data docs have some) may run,
# but may not call any API with the user's session nor post forms, and only Airflow's UI may frame them.
ARTEFACT_CSP = ("default-src 'self' data: https: 'unsafe-inline'; connect-src 'none'; form-action 'none'; "
                "frame-ancestors 'self'")


@cache
def _store():
    from synthchain.provenance import ProvenanceStore
    from synthchain_airflow import provenance_url

    return ProvenanceStore(provenance_url())  # one engine (and pool) per api-server worker


@cache
def _storage():
    from synthchain.storage import open_storage

    return open_storage()


def create_app():
    # Imported here, not at module level: every Airflow component (and each task process) imports the
    # plugins folder, and only the api-server needs FastAPI and the API's security module.
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi import Depends, FastAPI, HTTPException, Request
    from fastapi.exception_handlers import http_exception_handler
    from fastapi.responses import HTMLResponse, RedirectResponse, Response
    from synthchain.ops import dashboard
    from synthchain_airflow import specs_dir

    def may_read_all_runs(user=Depends(get_user)) -> None:  # no annotation: this module postpones them
        # Airflow's requires_access_dag takes a `dag_id` from the query string, which would narrow this check
        # to one DAG the user may read (`/synthchain/?dag_id=x`) while the page shows every spec: ask about
        # DAG runs in general, with no DAG named.
        if not get_auth_manager().is_authorized_dag(method="GET", access_entity=DagAccessEntity.RUN,
                                                    details=DagDetails(id=None), user=user):
            raise HTTPException(403, "synthchain shows every spec's runs: reading all DAG runs is required")

    app = FastAPI(title="synthchain", docs_url=None, redoc_url=None, openapi_url=None,
                  dependencies=[Depends(may_read_all_runs)])

    @app.exception_handler(HTTPException)
    async def login_first(request: Request, exc: HTTPException):
        # A browser without a session goes to Airflow's login page and comes back; API clients get the 401.
        if exc.status_code == 401 and "text/html" in request.headers.get("accept", ""):
            back = request.url.path + (f"?{request.url.query}" if request.url.query else "")  # relative: proxy-safe
            return RedirectResponse(get_auth_manager().get_url_login(next_url=back), status_code=303)
        return await http_exception_handler(request, exc)

    def found(call, *args):
        """Run a dashboard call, turning its LookupError into 404 and PermissionError into 403."""
        try:
            return call(*args)
        except PermissionError as exc:
            raise HTTPException(403, str(exc)) from None
        except LookupError as exc:
            raise HTTPException(404, str(exc)) from None

    @app.get("/", response_class=HTMLResponse)
    def index():
        return dashboard.render_index(_store(), specs_dir())

    @app.get("/versions/{version_id}/", response_class=HTMLResponse)
    def version(version_id: int):
        return found(dashboard.render_version, _store(), _storage(), version_id)

    @app.get("/versions/{version_id}/files/{path:path}")
    def version_file(version_id: int, path: str):
        data, media_type = found(dashboard.version_file, _store(), _storage(), version_id, path)
        return Response(data, media_type=media_type,
                        headers={"Content-Security-Policy": ARTEFACT_CSP, "X-Content-Type-Options": "nosniff"})

    @app.get("/compare", response_class=HTMLResponse)
    def compare(spec: str, a: str, b: str):
        return found(dashboard.render_comparison, _store(), spec, a, b)

    return app


class SynthchainUIPlugin(AirflowPlugin):
    name = "synthchain_ui"
    external_views = [{
        "name": "synthchain",
        "href": "synthchain/",  # relative: resolved against the UI's <base href>, so a base_url subpath works
        "url_route": "synthchain",  # opens inside the UI at /plugin/synthchain
        "destination": "nav",
        "nav_top_level": True,
    }]

    @property
    def fastapi_apps(self) -> list[dict]:
        # Built on first use: only the api-server reads it (see create_app for why that matters).
        return [{"app": _app(), "url_prefix": URL_PREFIX, "name": "synthchain"}]


@cache
def _app():
    return create_app()
