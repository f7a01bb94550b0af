"""Builds the Airflow DAGs of one spec: its main line `synthchain__<spec>` and one DAG per candidate line.

Each spec has its own thin DAG file in dags/ (written by `synthchain dags sync`) that calls
`spec_dags`. The dag-processor marks every DAG of a file with an import error as stale, so one
file per spec is what keeps a broken spec from taking the others down: its error names its
YAML file and field, in its own file's import error.

Tasks are thin: each calls a synthchain.pipeline function and passes on a small dict of URIs
and ids (what XCom carries).
"""
from __future__ import annotations

import logging
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

from airflow.sdk import DAG, Asset, Param, dag, get_current_context, task, task_group
from airflow.sdk.exceptions import AirflowFailException, AirflowRescheduleException
from synthchain.run_params import param_schemas
from synthchain.specs import DatasetSpec, SpecError, load_spec, spec_file
from synthchain_airflow import airflow_connection, provenance_url, specs_dir

log = logging.getLogger(__name__)

# how often a run whose previous date is still running checks again (it gives its worker slot back meanwhile),
# and for how long at most ($SYNTHCHAIN_LINE_ORDER_WAIT_S; 0 turns the wait off): a run left "running" by a
# killed scheduler must not hold its line forever
ORDER_POKE = timedelta(seconds=15)
ORDER_MAX_WAIT = timedelta(hours=2)


def spec_dags(spec_stem: str) -> dict[str, DAG]:
    """Every line of one spec as {dag_id: DAG}; a spec that does not validate raises SpecError naming file and field."""
    path = spec_file(specs_dir(), spec_stem)
    spec = load_spec(path)
    return {dag_id_of(spec, line): build_dag(line_spec, path, line) for line, line_spec in spec.lines().items()}


def dag_id_of(spec: DatasetSpec, line: str) -> str:
    return f"synthchain__{spec.name}" if line == "main" else f"synthchain__{spec.name}__{line}"


def run_context(spec_path: str, line: str):
    from synthchain.llm.endpoint import set_connection_lookup
    from synthchain.pipeline import RunContext
    from synthchain.provenance import ProvenanceStore
    from synthchain.storage import open_storage

    set_connection_lookup(airflow_connection)  # endpoint URLs and keys come from Airflow connections
    context = get_current_context()
    dag_run = context["dag_run"]
    when = context.get("logical_date") or dag_run.run_after  # manual runs may have no logical date
    # Params hold every key with its default; conf may also hold keys that are no Param (Airflow keeps them):
    # both go through the spec's own check, which refuses unknown keys and out-of-range values by name.
    overrides = {**dict(context["params"]), **dict(dag_run.conf or {})}
    lines = load_spec(spec_path).lines()
    if line not in lines:  # the spec was edited while this run was in flight
        raise SpecError(f"{spec_path}: line {line!r} is no longer one of this spec's lines {sorted(lines)}")
    spec = lines[line].with_overrides(overrides)
    kind = getattr(dag_run.run_type, "value", dag_run.run_type)
    return RunContext(spec, when.date(), dag_run.run_id, str(kind), open_storage(), ProvenanceStore(provenance_url()),
                      dag_id=dag_run.dag_id, try_number=int(context["ti"].try_number or 1))


def call(spec_path: str, line: str, step: str, *args):
    """Run synthchain.pipeline.<step>; a failed gate or a refused parameter fails the task without retries.

    Steps are looked up by name so that parsing a DAG file never imports the heavy pipeline modules.
    """
    from synthchain import pipeline
    from synthchain.gates import GateFailed
    from synthchain.generators import GeneratorError
    from synthchain.provenance.lifecycle import VersionBusy
    from synthchain.provenance.store import AttemptClosed
    from synthchain.settings import ConfigError
    from synthchain.signing import TamperedArtefact
    from synthchain.sources import SourceError
    from synthchain.storage import StorageError

    try:
        ctx = run_context(spec_path, line)
    except (SpecError, ConfigError) as exc:  # bad conf or setting: the message names it; retrying cannot help
        raise AirflowFailException(str(exc)) from None
    state = args[0] if args and isinstance(args[0], dict) else {}
    ctx.bind(state)
    if state.get("config_hash") not in (None, ctx.config_hash):  # every task re-reads the spec file
        message = (f"{spec_path} changed during this run (configuration {state['config_hash']} at begin, "
                   f"{ctx.config_hash} now): re-run it to build the new configuration's version")
        pipeline.fail_run(ctx, state, message)
        raise AirflowFailException(message)
    try:
        return getattr(pipeline, step)(ctx, *args)
    except GateFailed as exc:
        raise AirflowFailException(str(exc)) from exc
    except (SpecError, SourceError, GeneratorError, ConfigError, VersionBusy, TamperedArtefact, AttemptClosed) as exc:
        # bad input or a refusal: the message names the file, field or run; a retry would say the same
        if "run_pk" in state:
            pipeline.fail_run(ctx, state, f"{type(exc).__name__}: {exc}")
        raise AirflowFailException(str(exc)) from None
    except Exception as exc:
        ti = get_current_context()["ti"]
        if "run_pk" in state and int(ti.try_number or 1) > int(getattr(ti, "max_tries", 0) or 0):
            pipeline.fail_run(ctx, state, f"{type(exc).__name__}: {exc}")  # the last try: the attempt ends
        if isinstance(exc, StorageError):  # already one clear line naming the object; no botocore chain
            raise StorageError(str(exc)) from None
        raise


def mark_failed_in_provenance(context) -> None:
    """DAG on_failure_callback: a run Airflow failed (a task killed, a timeout, a zombie) ends its attempt
    in provenance with Airflow's reason, and its copies of real rows go."""
    from synthchain.provenance import ProvenanceStore
    from synthchain.retention import drop_real_copies
    from synthchain.storage import open_storage

    dag_run = context["dag_run"]
    store = ProvenanceStore(provenance_url())
    reason = f"Airflow marked run {dag_run.run_id} failed: {context.get('reason') or 'a task failed'}"
    for attempt in store.attempts_of_airflow_run(dag_run.dag_id, dag_run.run_id):
        store.fail_attempt(attempt["id"], attempt["run_pk"], reason)
        drop_real_copies(open_storage(), store, attempt)


def wait_for_previous_date(spec: DatasetSpec) -> None:
    """Runs of one line build on the previous date's published version (accumulate, recursive generations):
    while the previous date's run of this DAG is running, give the slot back and look again later.

    Airflow runs a backfill's dates concurrently (its own max_active_runs, default 10); this keeps a line's
    dates in order however the runs were started. Only a *running* predecessor is waited for: a queued one
    may itself be waiting for this run's slot (max_active_runs), and waiting on it would deadlock.
    """
    limit = timedelta(seconds=float(os.environ.get("SYNTHCHAIN_LINE_ORDER_WAIT_S", ORDER_MAX_WAIT.total_seconds())))
    if (spec.blend_mode != "accumulate" and not spec.generations.recursive) or not limit:
        return
    context = get_current_context()
    previous = context["ti"].get_previous_dagrun()
    state = str(getattr(previous.state, "value", previous.state)) if previous else None
    if state != "running":
        return
    first = context["ti"].get_first_reschedule_date(context)
    now = datetime.now(timezone.utc)
    if first and now - first > limit:
        raise AirflowFailException(
            f"the previous date's run {previous.run_id} of this line has been running for over {limit}; this run "
            "carries its rows, so it did not start. Finish or fail that run (or raise "
            "SYNTHCHAIN_LINE_ORDER_WAIT_S), then clear this one.")
    log.info("waiting for the previous run %s of this line to finish: this run carries its rows", previous.run_id)
    raise AirflowRescheduleException(now + ORDER_POKE)


def build_dag(spec: DatasetSpec, spec_path: Path, line: str = "main") -> DAG:
    path = str(spec_path)
    gens = [g.name for g in spec.generators]
    candidate = line != "main"
    asset = Asset(f"synthchain://{spec.name}" + (f"/{line}" if candidate else ""))
    doc = (f"Built from `{spec_path.name}`. Hops: profiling → generation → verification → filtering → "
           "blending → evaluation → publish, each gated by Great Expectations.")
    if candidate:
        doc += (f"\n\nCandidate line `{line}` ({spec.generators_key()}), paused at creation: unpause it and "
                f"backfill past dates beside the main line `synthchain__{spec.name}`, which it never touches. "
                "Compare the two with "
                f"`synthchain compare --spec {spec.name} --lines main {line}`; promote it by changing the spec.")

    @dag(
        dag_id=dag_id_of(spec, line),
        description=spec.description or f"synthchain dataset {spec.name}",
        schedule=spec.schedule,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        params={key: Param(**schema) for key, schema in param_schemas(spec).items()},
        tags=["synthchain", *spec.tags, *(["candidate"] if candidate else [])],
        default_args={"retries": 1, "retry_delay": timedelta(minutes=2)},
        on_failure_callback=mark_failed_in_provenance,
        # A candidate keeps the spec's schedule: Airflow only backfills periodic DAGs, and only unpaused ones.
        # It starts paused; unpausing it (to backfill, or to run nightly beside main) is a deliberate act.
        is_paused_upon_creation=True if candidate else None,
        doc_md=doc,
    )
    def pipeline_dag():
        @task
        def begin() -> dict:
            wait_for_previous_date(spec)
            return call(path, line, "begin")

        @task_group(group_id="profiling")
        def profiling(state):
            @task(task_id="profile_and_gate")
            def run(state: dict) -> dict:
                return {**state, **call(path, line, "profiling", state)}
            return run(state)

        @task_group(group_id="generation")
        def generation(state):
            @task
            def plan(state: dict) -> list[dict]:
                return call(path, line, "plan_shards", state)

            @task(map_index_template="{{ task.op_kwargs['name'] }}")
            def fit(state: dict, name: str) -> str:
                return call(path, line, "fit_generator", state, name)

            @task(map_index_template="{{ task.op_kwargs['shard']['generator'] }}-{{ task.op_kwargs['shard']['target'] }}-{{ task.op_kwargs['shard']['shard'] }}")
            def sample(state: dict, shard: dict) -> str:
                return call(path, line, "sample_shard", state, shard)

            @task(task_id="gate")
            def gate(state: dict, shard_uris: list[str]) -> dict:
                # one slice request: iterating a mapped result reads one past the end, which Airflow logs at ERROR
                return {**state, **call(path, line, "generation_gate", state, shard_uris[:])}

            fitted = fit.partial(state=state).expand(name=gens)
            shards = sample.partial(state=state).expand(shard=plan(state))
            fitted >> shards
            return gate(state, shards)

        def mapped_hop(group_id: str, plan_step: str, shard_step: str, shard_task: str, gate_step: str):
            """plan -> one mapped task per shard (so the Celery workers share them) -> the hop's gate task, which
            reads the shards' results back (verification: record checks; filtering: semantic pairs)."""
            @task_group(group_id=group_id)
            def group(state):
                @task
                def plan(state: dict) -> list[dict]:
                    return call(path, line, plan_step, state)

                @task(task_id=shard_task, map_index_template="{{ task.op_kwargs['shard']['shard'] }}")
                def run_shard(state: dict, shard: dict):
                    return call(path, line, shard_step, state, shard)

                @task(task_id=f"{gate_step}_and_gate")
                def run(state: dict, shard_results: list) -> dict:
                    return {**state, **call(path, line, gate_step, state, shard_results[:])}

                return run(state, run_shard.partial(state=state).expand(shard=plan(state)))
            return group

        verification = mapped_hop("verification", "plan_verification", "verify_shard", "check_records", "verification")
        filtering = mapped_hop("filtering", "plan_filtering", "pair_shard", "find_pairs", "filtering")

        def hop(step: str):
            @task_group(group_id=step)
            def group(state):
                @task(task_id=f"{step}_and_gate")
                def run(state: dict) -> dict:
                    return {**state, **call(path, line, step, state)}
                return run(state)
            return group

        @task(outlets=[asset])
        def publish(state: dict) -> dict:
            out = call(path, line, "publish", state)
            # consumers of the asset learn which version was published and where its report is
            get_current_context()["outlet_events"][asset].extra = {
                "version_id": out["dataset_version"], "report_uri": out["report_uri"],
                "manifest_uri": out["manifest_uri"], "data_uri": out["data_uri"], "spec": spec.name, "line": line,
                "logical_date": out["logical_date"], "config_hash": out["config_hash"]}
            return out

        state = profiling(begin())
        state = filtering(verification(generation(state)))
        for step in ("blending", "evaluation"):
            state = hop(step)(state)
        publish(state)

    return pipeline_dag()
