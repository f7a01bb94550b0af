"""A real Airflow 3 deployment for tests: api-server, scheduler, dag-processor (and Celery workers) as processes.

    with LiveAirflow(tmp / "home", dags_folder, plugins_folder, "af_mytest", env={...}) as af:
        af.wait_for_dag("my_dag")
        run_id = af.trigger("my_dag", {"x": 1})
        af.wait_for_run("my_dag", run_id, timeout=300)

Each instance gets its own AIRFLOW_HOME, its own PostgreSQL metadata database and its own free
ports, so instances never share state. The environment of the calling process (pytest's, which
conftest.py fills with AIRFLOW__* settings for in-process tests) is NOT passed on: every
AIRFLOW*/SYNTHCHAIN_* variable the components see is set here or by the caller's `env`.

Top-level imports are stdlib only: `worker_hostname` is imported by every task process.
"""
from __future__ import annotations

import glob
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

PG = os.environ.get("SYNTHCHAIN_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
AIRFLOW = str(Path(sys.executable).parent / "airflow")  # the venv's CLI (not resolved: keeps the venv)
TESTS_DIR = Path(__file__).resolve().parent
USER, PASSWORD = "admin", "admin"


def worker_hostname() -> str:
    """`[core] hostname_callable`: $SYNTHCHAIN_WORKER_NAME, else the FQDN.

    Task instances record the hostname the task's supervisor reports (airflow.sdk.api.client.get_hostname,
    run inside the Celery worker), so workers on one host are told apart by setting this per worker.
    """
    return os.environ.get("SYNTHCHAIN_WORKER_NAME") or socket.getfqdn()


def __getattr__(name: str):
    """`live_airflow.CELERY_CONFIG` ([celery] celery_config_options): Airflow's default plus `imports`.

    Celery imports `imports` in the worker's main process before it forks its pool, and each task
    process is forked again from a pool process: modules named in $LIVE_AIRFLOW_PRELOAD are then
    imported once per worker instead of once per task (pandas, sklearn, Great Expectations: ~7 s of
    CPU per task on this machine). Built lazily (PEP 562) so that importing this module stays cheap.
    """
    if name != "CELERY_CONFIG":
        raise AttributeError(name)
    from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

    preload = [m for m in os.environ.get("LIVE_AIRFLOW_PRELOAD", "").split(",") if m]
    return {**DEFAULT_CELERY_CONFIG, "imports": [*DEFAULT_CELERY_CONFIG.get("imports", ()), *preload]}


def spec_folders(root: Path, specs: dict[str, dict]) -> tuple[Path, Path]:
    """A spec folder holding `specs` (file stem -> spec) and a dags folder as `synthchain dags sync` writes it."""
    import yaml
    from synthchain.ops.dagfiles import sync

    spec_dir, dags_dir = Path(root) / "specs", Path(root) / "dags"
    spec_dir.mkdir(parents=True)
    for stem, spec in specs.items():
        (spec_dir / f"{stem}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    sync(spec_dir, dags_dir)
    return spec_dir, dags_dir


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _admin():
    import psycopg

    return psycopg.connect(f"{PG}/postgres", autocommit=True)


def drop_database(name: str) -> None:
    with _admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def create_database(name: str, template: str | None = None) -> str:
    """(Re)create database `name`, empty or as a copy of `template`; returns its postgresql:// URL."""
    with _admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    return f"{PG}/{name}"


def _sqlalchemy_url(db: str) -> str:
    return f"postgresql+psycopg2://{PG.split('://', 1)[1]}/{db}"


def migrated_template() -> str:
    """A database holding a freshly migrated Airflow schema, built once per Airflow version.

    `airflow db migrate` on an empty database takes ~20 s on 2 cores; CREATE DATABASE ... TEMPLATE
    copies the result in well under a second. Built under a temporary name and renamed when complete,
    under an advisory lock, so concurrent or interrupted test runs never see a half-migrated template.
    """
    from importlib.metadata import version

    name = "airflow_template_" + version("apache-airflow-core").replace(".", "_")
    with _admin() as conn:
        conn.execute("SELECT pg_advisory_lock(734501)")
        try:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                return name
            building = name + "_building"
            create_database(building)
            with tempfile.TemporaryDirectory() as home:
                env = {**_clean_environ(), "AIRFLOW_HOME": home, "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                       "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": _sqlalchemy_url(building)}
                out = subprocess.run([AIRFLOW, "db", "migrate"], env=env, capture_output=True, text=True)
            if out.returncode:
                drop_database(building)
                raise RuntimeError(f"airflow db migrate failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
            conn.execute(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
            return name
        finally:
            conn.execute("SELECT pg_advisory_unlock(734501)")


def _clean_environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SYNTHCHAIN_", "_AIRFLOW"))}


def tail(path: Path, chars: int = 3000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, 2) - chars))
            return f.read().decode(errors="replace")
    except OSError as exc:
        return f"<{exc}>"


def _readable_task_log(text: str) -> str:
    """Airflow 3 task logs are JSON lines: show 'level event' and exception type/value/last frames."""
    out = []
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            out.append(line)
            continue
        if not isinstance(rec, dict):
            out.append(line)
            continue
        out.append(f"{rec.get('level', '')} {rec.get('event', '')}")
        for err in rec.get("error_detail") or []:
            for fr in (err.get("frames") or [])[-4:]:
                out.append(f"    {fr.get('filename')}:{fr.get('lineno')} in {fr.get('name')}")
            out.append(f"  {err.get('exc_type')}: {err.get('exc_value')}")
    return "\n".join(out)


def http_json(url: str, method: str = "GET", body: dict | None = None, token: str | None = None) -> tuple[int, object]:
    """(status, parsed JSON body or text) of one request; never raises on HTTP errors."""
    req = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    text = raw.decode(errors="replace")
    try:
        return status, json.loads(text) if text else None
    except ValueError:
        return status, text


class AirflowAPIError(RuntimeError):
    def __init__(self, method: str, path: str, status: int, body):
        super().__init__(f"{method} {path} -> HTTP {status}: {body}")
        self.status, self.body = status, body


class LiveAirflow:
    """Real Airflow components as process groups; logs under `home`/proc-logs/<component>.log."""

    def __init__(self, home: Path, dags_folder: Path, plugins_folder: Path | None = None,
                 metadata_db: str = "airflow_live", env: dict[str, str] | None = None,
                 executor: str = "LocalExecutor", celery_workers: list[str] | tuple[str, ...] = (),
                 worker_concurrency: int = 2, triggerer: bool = False, preload: list[str] | tuple[str, ...] = ()):
        self.home = Path(home)
        self.dags_folder, self.plugins_folder = Path(dags_folder), plugins_folder
        self.metadata_db, self.executor = metadata_db, executor
        self.celery_workers = list(celery_workers)
        if executor == "CeleryExecutor" and not self.celery_workers:
            raise ValueError("CeleryExecutor needs at least one name in celery_workers")
        self.worker_concurrency, self.triggerer, self.preload = worker_concurrency, triggerer, list(preload)
        self.caller_env = dict(env or {})
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_server_ports = (free_port(), free_port())  # worker (LocalExecutor: the scheduler), triggerer
        self.procs: dict[str, subprocess.Popen] = {}
        self._token: str | None = None
        self.startup_seconds: float | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def environ(self) -> dict[str, str]:
        """The environment every component gets (caller's `env` wins over these defaults)."""
        env = _clean_environ()
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS_DIR), env.get("PYTHONPATH")]))
        env.update({
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__EXECUTOR": self.executor,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__PARALLELISM": "4",  # 2 cores: more parallel task processes only thrash
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "live_airflow.worker_hostname",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": _sqlalchemy_url(self.metadata_db),
            "AIRFLOW__DATABASE__CHECK_MIGRATIONS": "False",  # every component would re-check at start
            # One secret for all: the scheduler signs task tokens that the api-server's execution API checks.
            "AIRFLOW__API_AUTH__JWT_SECRET": "synthchain-live-airflow-test-secret",
            "AIRFLOW__API__SECRET_KEY": "synthchain-live-airflow-test-secret",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__EXPOSE_STACKTRACE": "True",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "10",
            "AIRFLOW__DAG_PROCESSOR__STALE_DAG_THRESHOLD": "50",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "1",
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
            # Own ports, so several instances (or other people's Airflow) on this host never collide.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self.log_server_ports[0]),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(self.log_server_ports[1]),
            "AIRFLOW__LOGGING__COLORED_CONSOLE_LOG": "False",
            "HF_HUB_OFFLINE": "1",
            "GX_ANALYTICS_ENABLED": "False",
            # Task processes run side by side on 2 cores: OpenMP's one-thread-per-core default (sklearn's
            # HistGradientBoosting in the off-distribution filter) then spins and ran 3x slower here.
            "OMP_NUM_THREADS": "1",
            "SYNTHCHAIN_HOME": str(self.home / "synthchain"),
        })
        if self.plugins_folder:
            env["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(self.plugins_folder)
        if self.executor == "CeleryExecutor":
            env.setdefault("AIRFLOW__CELERY__WORKER_CONCURRENCY", str(self.worker_concurrency))
            env["AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER"] = "1"  # no hoarding: idle workers get the work
            if self.preload:  # see __getattr__ above
                env["AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS"] = "live_airflow.CELERY_CONFIG"
                env["LIVE_AIRFLOW_PRELOAD"] = ",".join(self.preload)
        env.update(self.caller_env)
        return env

    def _spawn(self, name: str, args: list[str], **extra_env: str) -> None:
        logs = self.home / "proc-logs"
        logs.mkdir(parents=True, exist_ok=True)
        with open(logs / f"{name}.log", "ab") as out:
            # Own session = own process group: stop() signals the CLI and every child it forked.
            self.procs[name] = subprocess.Popen([AIRFLOW, *args], env={**self.environ(), **extra_env},
                                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                                cwd=self.home)

    def start(self, timeout: float = 180) -> "LiveAirflow":
        t0 = time.monotonic()
        self.home.mkdir(parents=True, exist_ok=True)
        # The simple auth manager keeps passwords in a JSON file; writing it fixes admin's password.
        (self.home / "passwords.json").write_text(json.dumps({USER: PASSWORD}))
        create_database(self.metadata_db, template=migrated_template())
        scheduler_env = {}
        if self.preload and self.executor == "LocalExecutor":
            # LocalExecutor workers are forked from the scheduler and each task is forked from a worker:
            # modules the scheduler imports at start (airflow_local_settings, from $AIRFLOW_HOME/config)
            # are then imported once, not once per task. Only the scheduler gets the variable.
            (self.home / "config").mkdir(exist_ok=True)
            (self.home / "config" / "airflow_local_settings.py").write_text(
                "import importlib, os\n"
                "for _m in filter(None, os.environ.get('LIVE_AIRFLOW_SCHEDULER_PRELOAD', '').split(',')):\n"
                "    importlib.import_module(_m)\n")
            scheduler_env["LIVE_AIRFLOW_SCHEDULER_PRELOAD"] = ",".join(self.preload)
        try:
            self._spawn("api-server", ["api-server", "--port", str(self.port), "--host", "127.0.0.1"])
            self._spawn("scheduler", ["scheduler"], **scheduler_env)
            self._spawn("dag-processor", ["dag-processor"])
            if self.triggerer:
                self._spawn("triggerer", ["triggerer"])
            for name in self.celery_workers:
                # Distinct Celery node names (else DuplicateNodenameWarning) and log-server ports per worker.
                self._spawn(f"worker-{name}", ["celery", "worker", "--celery-hostname", f"{name}@%h",
                                               "--without-mingle", "--without-gossip"],
                            SYNTHCHAIN_WORKER_NAME=name, AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()))
            self._wait(self._ready, timeout, "components to become ready")
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - t0
        return self

    def _ready(self) -> bool:
        try:
            health = self.api_raw("GET", "/monitor/health", auth=False)[1]
        except OSError:
            return False
        if not isinstance(health, dict):
            return False
        parts = ["metadatabase", "scheduler", "dag_processor"] + (["triggerer"] if self.triggerer else [])
        if any((health.get(p) or {}).get("status") != "healthy" for p in parts):
            return False
        # Celery workers have no health endpoint: their log says "<name>@host ready." once consuming.
        return all(" ready." in tail(self.home / "proc-logs" / f"worker-{n}.log", 100_000)
                   for n in self.celery_workers)

    def _wait(self, check, timeout: float, what: str, interval: float = 0.5):
        deadline = time.monotonic() + timeout
        while True:
            result = check()
            if result:
                return result
            dead = {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}
            if dead or time.monotonic() > deadline:
                why = f"exited: {dead}" if dead else f"timed out after {timeout:.0f}s"
                raise RuntimeError(f"Waiting for {what}: {why}\n{self.component_logs()}")
            time.sleep(interval)

    def component_logs(self, chars: int = 2500) -> str:
        return "\n".join(f"----- {name} (tail) -----\n{tail(self.home / 'proc-logs' / f'{name}.log', chars)}"
                         for name in self.procs)

    def stop(self, timeout: float = 3) -> None:
        """SIGTERM every process group, SIGKILL what is left after `timeout`, drop the metadata DB. Idempotent.

        Short timeout on purpose: tests need no graceful drain, and the scheduler takes ~7 s to drain."""
        procs, self.procs = self.procs, {}
        for p in procs.values():
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + timeout
        for p in procs.values():
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:  # also children left behind after the leader exited (task processes, pool children)
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
        if procs:
            drop_database(self.metadata_db)

    def __enter__(self) -> "LiveAirflow":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- REST API (/api/v2) ----------------------------------------------------------------------
    def token(self) -> str:
        if self._token is None:
            status, body = self.api_raw("POST", "/auth/token", auth=False, root=True,
                                        username=USER, password=PASSWORD)
            if status != 201:
                raise AirflowAPIError("POST", "/auth/token", status, body)
            self._token = body["access_token"]
        return self._token

    def api_raw(self, method: str, path: str, *, auth: bool = True, root: bool = False, params: dict | None = None,
                **body) -> tuple[int, object]:
        """(status, parsed JSON body or text) for /api/v2<path>; never raises on HTTP errors."""
        url = self.url + ("" if root else "/api/v2") + path
        if params:
            url += "?" + urllib.parse.urlencode(params, doseq=True)
        return http_json(url, method, body or None, self.token() if auth else None)

    def api(self, method: str, path: str, params: dict | None = None, **body):
        status, data = self.api_raw(method, path, params=params, **body)
        if status >= 400:
            raise AirflowAPIError(method, path, status, data)
        return data

    def import_errors(self) -> list[dict]:
        return self.api("GET", "/importErrors", params={"limit": 100})["import_errors"]

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> dict:
        def parsed():
            status, dag = self.api_raw("GET", f"/dags/{dag_id}")
            return dag if status == 200 and not dag["is_stale"] else None
        try:
            return self._wait(parsed, timeout, f"DAG {dag_id}", interval=1)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\nimport errors: {self.import_errors()}") from None

    def unpause(self, dag_id: str) -> dict:
        return self.api("PATCH", f"/dags/{dag_id}", is_paused=False)

    def trigger(self, dag_id: str, conf: dict | None = None, logical_date: str | None = None) -> str:
        run = self.api("POST", f"/dags/{dag_id}/dagRuns", conf=conf or {}, logical_date=logical_date)
        return run["dag_run_id"]

    def dag_runs(self, dag_id: str) -> list[dict]:
        return self.api("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100, "order_by": "id"})["dag_runs"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        """All task instances of a run, mapped ones included (one row per map_index), paged through."""
        tis: list[dict] = []
        while True:
            page = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances",
                            params={"limit": 100, "offset": len(tis)})
            tis += page["task_instances"]
            if not page["task_instances"] or len(tis) >= page["total_entries"]:
                return tis

    def create_backfill(self, dag_id: str, from_date: str, to_date: str, max_active_runs: int = 1,
                        reprocess_behavior: str = "none", dag_run_conf: dict | None = None,
                        run_backwards: bool = False) -> dict:
        """POST /backfills (dates ISO 8601, e.g. '2026-01-01T00:00:00Z'); reprocess_behavior: none|failed|completed."""
        return self.api("POST", "/backfills", dag_id=dag_id, from_date=from_date, to_date=to_date,
                        max_active_runs=max_active_runs, reprocess_behavior=reprocess_behavior,
                        dag_run_conf=dag_run_conf or {}, run_backwards=run_backwards)

    def task_log(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1, chars: int = 3000) -> str:
        """Tail of the latest attempt's log, read from the shared log folder (all components share `home`)."""
        pattern = (f"{self.home}/logs/dag_id={dag_id}/run_id={glob.escape(run_id)}/task_id={task_id}/"
                   + (f"map_index={map_index}/" if map_index >= 0 else "") + "attempt=*.log")
        files = sorted(glob.glob(pattern), key=os.path.getmtime)
        return _readable_task_log(tail(Path(files[-1]), chars * 3))[-chars:] if files else "<no log file>"

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 300, expect: str = "success") -> str:
        """Poll until the run is success/failed; raise (with failed tasks' log tails) unless it ends in `expect`."""
        def finished():
            state = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]
            return state if state in ("success", "failed") else None
        try:
            state = self._wait(finished, timeout, f"run {dag_id}/{run_id}", interval=1)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n{self.describe_run(dag_id, run_id)}") from None
        if state != expect:
            raise RuntimeError(f"run {dag_id}/{run_id} ended {state}, expected {expect}\n"
                               f"{self.describe_run(dag_id, run_id)}")
        return state

    def describe_run(self, dag_id: str, run_id: str) -> str:
        """Task states, plus log tails of failed (or, on a hang, running) task instances."""
        try:
            tis = self.task_instances(dag_id, run_id)
        except Exception as exc:  # describing a failure must not hide it
            return f"<task instances unavailable: {exc}>"
        lines = [f"{ti['task_id']}[{ti['map_index']}]: {ti['state']} on {ti.get('hostname') or '-'}" for ti in tis]
        for ti in tis:
            if ti["state"] in ("failed", "up_for_retry", "running"):
                lines.append(f"----- log of {ti['task_id']}[{ti['map_index']}] ({ti['state']}) -----")
                lines.append(self.task_log(dag_id, run_id, ti["task_id"], ti["map_index"]))
        return "\n".join(lines)

