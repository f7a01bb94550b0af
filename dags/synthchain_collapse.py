"""`synthchain__collapse_experiment`: model collapse, in theory and on the real pipeline.

Theory checks compare simulations with the literature's closed forms; pipeline chains run a
spec for N generations in replace / accumulate mode (each chain mapped to its own task);
the report task writes trend plots and tables next to the other artefacts.
"""
from __future__ import annotations

from datetime import datetime

from airflow.sdk import Param, dag, task

from synthchain.specs import discover_specs
from synthchain_airflow import specs_dir

SPEC_NAMES = sorted(p.stem for p in discover_specs(specs_dir()))


@dag(
    dag_id="synthchain__collapse_experiment",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["synthchain", "collapse"],
    params={
        "spec": Param("lending_club" if "lending_club" in SPEC_NAMES else (SPEC_NAMES or [""])[0], type="string",
                      enum=SPEC_NAMES or [""], description="Spec (file stem in include/specs) to run through the chain."),
        "generations": Param(5, type="integer", minimum=2, maximum=20, description="Generations per chain."),
        "modes": Param(["replace", "accumulate"], type="array",
                       items={"type": "string", "enum": ["replace", "accumulate", "accumulate-subsample"]},
                       description="Generation modes to compare."),
        "reps": Param(3, type="integer", minimum=1, maximum=10, description="Independent chains per mode."),
        "target_rows": Param(4000, type="integer", minimum=100, description="Synthetic rows per generation."),
        "d": Param(10, type="integer", minimum=1, description="linreg: features"),
        "T": Param(60, type="integer", minimum=3, description="linreg: rows (T > d + 1)"),
        "sigma": Param(1.0, type="number", exclusiveMinimum=0, description="noise / Gaussian standard deviation"),
        "M": Param(50, type="integer", minimum=2, description="gaussian: samples per generation"),
        "theory_reps": Param(4000, type="integer", minimum=100, description="simulation repetitions"),
    },
    doc_md=__doc__,
)
def collapse_experiment():
    @task(map_index_template="{{ task.op_kwargs['mode'] }}")
    def theory_linreg(mode: str, params=None) -> dict:
        from synthchain.collapse.theory import simulate_linreg

        return simulate_linreg(params["d"], params["T"], params["sigma"], params["generations"], mode,
                               reps=params["theory_reps"])

    @task
    def theory_gaussian(params=None) -> dict:
        from synthchain.collapse.theory import simulate_gaussian

        return simulate_gaussian(params["M"], params["sigma"], params["generations"], reps=params["theory_reps"] * 5)

    @task
    def plan_chains(params=None) -> list[dict]:
        return [{"mode": m, "rep": r} for m in params["modes"] for r in range(params["reps"])]

    @task(map_index_template="{{ task.op_kwargs['chain']['mode'] }}-{{ task.op_kwargs['chain']['rep'] }}")
    def chain(chain: dict, params=None) -> list[dict]:
        from synthchain.collapse.experiment import run_mode
        from synthchain.connections import set_connection_lookup
        from synthchain.provenance import ProvenanceStore
        from synthchain.specs import load_spec
        from synthchain.storage import open_storage
        from synthchain_airflow import airflow_connection, provenance_url

        set_connection_lookup(airflow_connection)  # SQL sources and LLM endpoints come from Airflow connections
        spec = load_spec(specs_dir() / f"{params['spec']}.yaml")
        store = ProvenanceStore(provenance_url())
        store.migrate()
        return run_mode(spec, chain["mode"], params["generations"], open_storage(), store,
                        target_rows=params["target_rows"], rep=chain["rep"])

    @task
    def report(linreg: list[dict], gaussian: dict, chains: list[list[dict]], params=None) -> dict:
        from synthchain.collapse.experiment import write_report
        from synthchain.storage import open_storage

        theory = [*linreg, gaussian]
        out = write_report(params["spec"], [row for rows in chains for row in rows], open_storage(), theory)
        bad = [t for t in theory if abs(t["z_score"]) > 5]
        if bad:  # a simulation this far from its closed form means the code, not chance, is wrong
            raise ValueError(f"simulation disagrees with its closed form: {bad}")
        return {"summary": out["summary"], "report_uri": out["report_uri"]}

    report(theory_linreg.expand(mode=["replace", "accumulate"]), theory_gaussian(),
           chain.expand(chain=plan_chains()))


collapse_experiment()
