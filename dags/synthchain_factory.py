"""One Airflow DAG per dataset spec: `synthchain__<spec name>`.

Thin by design: every task calls a synthchain.pipeline function and passes on a
small dict of URIs and ids. A spec that fails validation is reported as an
import error naming its file and field, and the other specs' DAGs still load.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import DAG, Asset, Param, dag, get_current_context, task, task_group
from airflow.sdk.exceptions import AirflowFailException

from synthchain.catalog import builtin_versions
from synthchain.specs import DatasetSpec, SpecError, discover_specs, load_spec
from synthchain_airflow import airflow_connection, provenance_url, specs_dir  # plugins/: on sys.path in Airflow


class BrokenSpecDag(DAG):
    """Stands in for specs that do not validate; DagBag records its error as an import error."""

    def __init__(self, errors: list[str], **kwargs):
        super().__init__(**kwargs)
        self.spec_errors = errors

    def validate(self):
        raise SpecError("\n".join(self.spec_errors))


def run_context(spec_path: str):
    from synthchain.pipeline import RunContext
    from synthchain.provenance import ProvenanceStore
    from synthchain.llm.endpoint import set_connection_lookup
    from synthchain.storage import open_storage

    set_connection_lookup(airflow_connection)  # endpoint URLs and keys come from Airflow connections
    context = get_current_context()
    dag_run = context["dag_run"]
    when = context.get("logical_date") or dag_run.run_after  # manual runs may have no logical date
    spec = load_spec(spec_path).with_overrides(dict(context["params"]))
    kind = getattr(dag_run.run_type, "value", dag_run.run_type)
    return RunContext(spec, when.date(), dag_run.run_id, str(kind), open_storage(), ProvenanceStore(provenance_url()))


def call(spec_path: str, step: str, *args):
    """Run synthchain.pipeline.<step>; a failed gate fails the task without retries (the data won't change).

    Steps are looked up by name so that parsing this file never imports the heavy pipeline modules.
    """
    from synthchain import pipeline
    from synthchain.gates import GateFailed

    ctx = run_context(spec_path)
    try:
        return getattr(pipeline, step)(ctx, *args)
    except GateFailed as exc:
        raise AirflowFailException(str(exc)) from exc
    except Exception as exc:
        state = args[0] if args and isinstance(args[0], dict) else {}
        if "run_pk" in state:
            pipeline.fail_run(ctx, state["run_pk"], f"{type(exc).__name__}: {exc}")
        raise


def build_params(spec: DatasetSpec) -> dict[str, Param]:
    versions = {}
    for gen in spec.generators:
        schema = {"type": "string", "description": f"version of generator {gen.name}"}
        if builtin_versions(gen.impl):
            schema["enum"] = builtin_versions(gen.impl)
        versions[gen.name] = schema
    return {
        "target_rows": Param(spec.target_rows, type="integer", minimum=1, maximum=10_000_000,
                             title="Synthetic rows", description="How many synthetic rows to generate before filtering."),
        "real_fraction": Param(spec.blend.real_fraction, type="number", exclusiveMinimum=0, maximum=1,
                               title="Real fraction", description="Share of real rows in the published blend (0–1]."),
        "blend_mode": Param(spec.blend.mode, type="string", enum=["accumulate", "replace"], title="Blend mode",
                            description="accumulate carries the previous version's synthetic rows; replace does not."),
        "seed": Param(spec.seed, type="integer", minimum=0, title="Seed",
                      description="Mixed into every derived seed; the same seed gives the same rows."),
        "generator_versions": Param(
            {gen.name: gen.version for gen in spec.generators}, type="object", title="Generator versions",
            description="Version per generator, e.g. to backfill a new version beside the old one.",
            properties=versions, additionalProperties=False),
    }


def build_dag(spec: DatasetSpec, spec_path: Path):
    path = str(spec_path)
    gens = [g.name for g in spec.generators]

    @dag(
        dag_id=f"synthchain__{spec.name}",
        description=spec.description or f"synthchain dataset {spec.name}",
        schedule=spec.schedule,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        params=build_params(spec),
        tags=["synthchain", *spec.tags],
        default_args={"retries": 1, "retry_delay": timedelta(minutes=2)},
        doc_md=f"Built from `{spec_path.name}`. Hops: profiling → generation → verification → filtering → "
               "blending → evaluation → publish, each gated by Great Expectations.",
    )
    def pipeline_dag():
        @task
        def begin() -> dict:
            return call(path, "begin")

        @task_group(group_id="profiling")
        def profiling(state):
            @task(task_id="profile_and_gate")
            def run(state: dict) -> dict:
                return {**state, **call(path, "profiling", state)}
            return run(state)

        @task_group(group_id="generation")
        def generation(state):
            @task
            def plan(state: dict) -> list[dict]:
                return call(path, "plan_shards")

            @task(map_index_template="{{ task.op_kwargs['name'] }}")
            def fit(state: dict, name: str) -> str:
                return call(path, "fit_generator", state, name)

            @task(map_index_template="{{ task.op_kwargs['shard']['generator'] }}-{{ task.op_kwargs['shard']['shard'] }}")
            def sample(state: dict, shard: dict) -> str:
                return call(path, "sample_shard", state, shard)

            @task(task_id="gate")
            def gate(state: dict, shard_uris: list[str]) -> dict:
                return {**state, **call(path, "generation_gate", state, list(shard_uris))}

            fitted = fit.partial(state=state).expand(name=gens)
            shards = sample.partial(state=state).expand(shard=plan(state))
            fitted >> shards
            return gate(state, shards)

        def hop(step: str):
            @task_group(group_id=step)
            def group(state):
                @task(task_id=f"{step}_and_gate")
                def run(state: dict) -> dict:
                    return {**state, **call(path, step, state)}
                return run(state)
            return group

        @task(outlets=[Asset(f"synthchain://{spec.name}")])
        def publish(state: dict) -> dict:
            return call(path, "publish", state)

        state = profiling(begin())
        state = generation(state)
        for step in ("verification", "filtering", "blending", "evaluation"):
            state = hop(step)(state)
        publish(state)

    return pipeline_dag()


def _load_all() -> None:
    broken = []
    for spec_path in discover_specs(specs_dir()):
        try:
            spec = load_spec(spec_path)
        except SpecError as exc:
            broken.append(str(exc))
            continue
        globals()[f"synthchain__{spec.name}"] = build_dag(spec, spec_path)
    if broken:
        globals()["synthchain__broken_specs"] = BrokenSpecDag(broken, dag_id="synthchain__broken_specs", schedule=None)


_load_all()
