"""The six hops and publish, as plain functions over a RunContext.

Airflow tasks and the CLI call exactly these functions. Each takes the small
`state` dict earlier hops returned (URIs and ids, what XCom carries) and returns
its own additions.

A run builds an *attempt* at its dataset version: everything it writes lives under
the attempt's own staging prefix (`runs/<spec>/<date>/<config>/a<attempt>/`) and is
replaced on retry; a failed gate moves the hop's batch to the attempt's quarantine.
Publish is a swap: the attempt's files are moved under `published/.../a<attempt>/`
and the version's pointer, lineage and status change in one transaction, so a
failing or killed re-run leaves the version published before it untouched.
"""
from __future__ import annotations

import functools
import logging
import math
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from . import gates as g
from . import retention, rounds, targets
from .blending import blend
from .collapse.monitors import judge, measure_all, monitors_for
from .failpoints import failpoint
from .filters import run_filters
from .generators import fit_generator as fit_model
from .generators import sample_generator as sample_model
from .generators import sample_in_slice
from .lineage import row_hashes
from .modalities import modality_of
from .modality import HopData, Modality, data_columns
from .provenance import ProvenanceStore
from .provenance.lifecycle import VersionBusy
from .provenance.store import json_safe
from .report import html_table, measurement_table, render_report
from .seeds import derive_seed
from .settings import Lease, Retention
from .signing import dumps_signed, loads_signed
from .specs import DatasetSpec, SpecError, stable_hash
from .storage import Storage
from .targets import WHOLE, Slice

log = logging.getLogger(__name__)

HOPS = ("profiling", "generation", "verification", "filtering", "blending", "evaluation")
LINEAGE = ["_sc_row_id", "_sc_origin", "_sc_generator", "_sc_generator_version", "_sc_generation", "_sc_created_in"]


@dataclass
class RunContext:
    spec: DatasetSpec
    logical_date: date
    run_id: str
    run_kind: str
    storage: Storage
    store: ProvenanceStore
    workdir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()))
    dag_id: str = ""  # with run_id and try_number, the run record's identity ("" outside Airflow)
    try_number: int = 1
    attempt_id: int | None = None  # set by begin, then carried in the state every task receives

    @property
    def config_hash(self) -> str:
        """The dataset version's identity on its date: the effective configuration after overrides."""
        return self.spec.config_hash()

    @property
    def version_path(self) -> str:
        return f"{self.spec.name}/{self.logical_date.isoformat()}/{self.config_hash}"

    def bind(self, state: dict) -> "RunContext":
        """Take the attempt begin opened (tasks build a fresh context and get the attempt from the state)."""
        if state.get("attempt_id") is not None:
            self.attempt_id = state["attempt_id"]
        return self

    def prefixes(self, attempt_id: int) -> tuple[str, str, str]:
        """(staging, quarantine, published) prefixes of an attempt: one tree each, never shared by two runs."""
        tail = f"{self.version_path}/a{attempt_id}"
        return f"runs/{tail}", f"quarantine/{tail}", f"published/{tail}"

    def _under(self, which: int, parts: tuple[str, ...]) -> str:
        if self.attempt_id is None:
            raise RuntimeError("no attempt bound to this run context: begin() opens one")
        return "/".join([self.prefixes(self.attempt_id)[which], *parts])

    def staging(self, *parts: str) -> str:
        return self._under(0, parts)

    def quarantine(self, *parts: str) -> str:
        return self._under(1, parts)

    def published(self, *parts: str) -> str:
        return self._under(2, parts)

    @property
    def modality(self) -> Modality:
        return modality_of(self.spec)

    def hop_data(self, state: dict) -> HopData:
        """The modality's view of this run's artefacts (read lazily from storage)."""
        return HopData(self.spec, self.storage, state, self.logical_date, self.modality.load_profile)


def step(fn):
    """A hop after begin: bind the state's attempt and hold the run's lease (heartbeat) while it works."""
    @functools.wraps(fn)
    def run(ctx: "RunContext", state: dict, *args, **kwargs):
        ctx.bind(state)
        with ctx.store.lease(state["run_pk"], Lease.from_env().heartbeat_s):
            return fn(ctx, state, *args, **kwargs)
    return run


def _content_hash(frame: pd.DataFrame) -> np.ndarray:
    return np.array([f"{h:016x}" for h in row_hashes(data_columns(frame))], dtype=object)


# --- begin ---------------------------------------------------------------------------------

def begin(ctx: RunContext) -> dict:
    """Register the run, its generators and the dataset version; clear stale staging output."""
    spec = ctx.spec
    modality = ctx.modality
    known = sorted(m.name for m in monitors_for(spec.modality))
    unknown = sorted(set(spec.collapse.limits) - set(known))
    if unknown:  # checked before anything is written
        raise SpecError(f"{spec.name}: field 'collapse.limits': unknown {spec.modality} monitor(s) {unknown}; "
                        f"known: {known}")
    params_by_name = {gen.name: modality.effective_params(gen) for gen in spec.generators}  # bad versions fail here
    ctx.store.migrate()
    generator_ids = {}
    for gen in spec.generators:
        params = params_by_name[gen.name]
        generator_ids[gen.name] = ctx.store.register_generator(
            gen.name, gen.version, modality.generator_family(gen.impl), params, stable_hash(params)[:16])
    lease = Lease.from_env()  # a bad setting is refused before anything is written
    Retention.from_env()
    run_pk = ctx.store.start_run(ctx.run_id, spec.name, ctx.logical_date, ctx.run_kind,
                                 stable_hash(spec.model_dump())[:16], dag_id=ctx.dag_id, try_number=ctx.try_number)
    recursive = spec.generations.recursive
    parent = ctx.store.latest_published(spec.name, ctx.logical_date, line=spec.line, config_hash=ctx.config_hash) \
        if (recursive or spec.blend_mode == "accumulate") else None
    generation = parent["generation"] + 1 if (parent and recursive) else 0
    # The version record is found or created; a published one is not touched: this run builds an attempt.
    version_id = ctx.store.open_version(spec.name, ctx.logical_date, spec.generators_key(), run_pk,
                                        config_hash=ctx.config_hash, line=spec.line)
    try:
        ctx.attempt_id, abandoned = ctx.store.open_attempt(
            version_id, run_pk, generation=generation, generator_ids=generator_ids.values(),
            parents=[(parent["id"], "fitted_on")] if (parent and recursive) else [], prefixes=ctx.prefixes,
            stale_after_s=lease.stale_after_s)
    except VersionBusy as exc:
        ctx.store.finish_run(run_pk, "refused", str(exc))
        raise
    for dead in abandoned:  # a run that died on this version: what it left in published/ was never published
        log.warning("attempt %s of version %s abandoned: %s", dead["id"], version_id, dead["message"])
        ctx.storage.delete_prefix(dead["published_prefix"])
        retention.drop_real_copies(ctx.storage, ctx.store, dead)
    ctx.store.heartbeat(run_pk)
    failpoint("begin")
    return {"run_pk": run_pk, "version_id": version_id, "attempt_id": ctx.attempt_id,
            "config_hash": ctx.config_hash, "line": spec.line,
            "generator_ids": generator_ids, "generation": generation,
            "parent_version_id": parent["id"] if parent else None,
            "parent_uri": parent["storage_uri"] if parent else None}


# --- gate plumbing --------------------------------------------------------------------------

def gate(ctx: RunContext, state: dict, hop: str, batches: list[g.Batch], explain: dict[str, str] | None = None) -> dict:
    """Run a hop's GX suite; on failure quarantine its batch and raise GateFailed.

    `explain` maps a checked column to a sentence appended to its failure (e.g. a monitor's trend).
    """
    failpoint(f"gate.{hop}")  # the hop's outputs are written, its verdict not yet recorded
    result = g.run_gate(hop, batches, workdir=ctx.workdir)
    for failure in result.failures:
        if explain and failure.get("column") in explain:
            failure["description"] += f" — {explain[failure['column']]}"
    try:
        docs_uri = _upload_docs(ctx, hop, result.docs_dir)
    finally:
        shutil.rmtree(result.project_dir, ignore_errors=True)  # the temporary GX project
    ctx.store.record_gate(state["version_id"], state["run_pk"], hop, result.suite_name, result.success,
                          result.evaluated, result.failures, docs_uri)
    summary = {"hop": hop, "success": result.success, "evaluated": result.evaluated,
               "failures": result.failures, "docs_uri": docs_uri}
    if result.success:
        log.info(result.message())
        return summary
    quarantined = ctx.quarantine(hop)
    ctx.storage.move_prefix(ctx.staging(hop), quarantined)
    ctx.storage.write_json(f"{quarantined}/gate_failure.json", {**summary, "run_id": ctx.run_id})
    # A version published by an earlier attempt stays published: this attempt simply never replaces it.
    ctx.store.quarantine_attempt(state["attempt_id"], state["run_pk"], result.message())
    drop_real_copies(ctx)
    raise g.GateFailed(result, ctx.storage.uri(quarantined))


def _upload_docs(ctx: RunContext, hop: str, docs_dir: str | None) -> str | None:
    if not docs_dir:
        return None
    root = Path(docs_dir)
    prefix = ctx.staging("gx_docs")
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        rel = path.relative_to(root).as_posix()
        if rel == "index.html":
            rel = f"index_{hop}.html"
        elif rel.startswith("static/") and ctx.storage.exists(f"{prefix}/{rel}"):
            continue  # GX's static assets are the same for every hop
        ctx.storage.write_bytes(f"{prefix}/{rel}", path.read_bytes())
    return ctx.storage.uri(f"{prefix}/index_{hop}.html")


def _profile(ctx: RunContext, state: dict):
    return ctx.modality.load_profile(ctx.storage.read_json(state["profile_uri"]))


# --- 1. profiling --------------------------------------------------------------------------

def real_row_ids(frame: pd.DataFrame) -> np.ndarray:
    """Stable ids for real rows: content hash plus occurrence number for exact repeats."""
    hashes = pd.Series([f"{h:016x}" for h in row_hashes(frame)])
    occurrence = hashes.groupby(hashes).cumcount()
    return ("real:" + hashes + np.where(occurrence > 0, "-" + occurrence.astype(str), "")).to_numpy(dtype=object)


@step
def profiling(ctx: RunContext, state: dict) -> dict:
    """Reads the real source; writes real_train, holdout, fit_data, profile and the record suite."""
    spec = ctx.spec
    modality = ctx.modality
    train, holdout = modality.load_real(spec)
    profile = modality.profile(spec, train)
    train = train.assign(_sc_row_id=real_row_ids(train), _sc_origin="real", _sc_generator=None,
                         _sc_generator_version=None, _sc_generation=pd.array([pd.NA] * len(train), dtype="Int64"),
                         _sc_created_in=pd.array([pd.NA] * len(train), dtype="Int64"))
    suite = modality.record_suite(spec, profile)
    try:
        slices = targets.resolve(spec, data_columns(train), modality.error_slices)
    except targets.TargetError as exc:
        raise SpecError(f"{spec.name}: {exc}") from None
    pool = training_pool(ctx, state, train)
    train_uri = ctx.storage.write_parquet(ctx.staging("profiling", "real_train.parquet"), train)
    out = {
        "fit_uri": train_uri if pool is train else ctx.storage.write_parquet(
            ctx.staging("profiling", "fit_data.parquet"), pool),
        "fit_rows": len(pool), "fit_synthetic_rows": int((pool["_sc_origin"] == "synthetic").sum()),
        "train_uri": train_uri,
        "holdout_uri": ctx.storage.write_parquet(ctx.staging("profiling", "holdout.parquet"), holdout),
        "profile_uri": ctx.storage.write_json(ctx.staging("profiling", "profile.json"), profile.to_dict()),
        "suite_uri": ctx.storage.write_json(ctx.staging("profiling", "suite.json"), suite),
        "targets_uri": ctx.storage.write_json(ctx.staging("profiling", "targets.json"), targets.to_json(slices)),
        "real_rows": len(train) + len(holdout), "train_rows": len(train), "holdout_rows": len(holdout),
    }
    feasible, explain, feasibility = modality.feasibility(spec, data_columns(train), holdout, profile)
    gate(ctx, {**state, **out}, "profiling",
         [*modality.profiling_batches(spec, data_columns(train), holdout, profile), *feasible], explain)
    # each column's type, why, and what the published column holds: in provenance, beyond the staging tree
    columns = profile.to_dict().get("handling") or None
    ctx.store.record_metrics(state["attempt_id"], profile={"train_rows": len(train), "holdout_rows": len(holdout),
                                                           **({"columns": columns} if columns else {}),
                                                           **({"feasibility": feasibility} if feasibility else {})})
    return out


def training_pool(ctx: RunContext, state: dict, train: pd.DataFrame) -> pd.DataFrame:
    """What this generation's generators fit on (see GenerationsSpec); real rows when not recursive."""
    spec = ctx.spec.generations
    if not spec.recursive or not state.get("parent_uri"):
        return train
    synthetic = _previous_synthetic(ctx, state)
    if spec.mode == "replace":  # the self-consuming loop: only the last generation's own output
        own = synthetic.loc[synthetic["_sc_created_in"] == state["parent_version_id"]]
        return pd.concat([train, own], ignore_index=True) if spec.include_real else own.reset_index(drop=True)
    pool = pd.concat([train, synthetic], ignore_index=True)  # real rows are always in the pool, current ones
    if spec.mode == "accumulate-subsample":
        size = min(len(pool), spec.subsample_rows or len(train))
        rng = np.random.default_rng(derive_seed(ctx.spec.name, ctx.logical_date, "subsample"))
        pool = pool.iloc[np.sort(rng.choice(len(pool), size, replace=False))].reset_index(drop=True)
    return pool


# --- 2. generation ----------------------------------------------------------------------------

def plan_shards(ctx: RunContext, state: dict) -> list[dict]:
    """(slice × generator × shard) work items of round 0, with their row counts and derived seeds.

    Each slice's quota is split over the generators by their weights. A spec without targets has the one
    slice `all` and the shards (and seeds) it always had."""
    spec = ctx.spec
    shares = spec.generator_shares()
    shards = []
    for piece in _slices(ctx, state):
        counts = _split_total(piece.quota, [shares[gen.name] for gen in spec.generators])
        for gen, rows in zip(spec.generators, counts):
            n_shards = max(1, math.ceil(rows / spec.shard_rows))
            for index, shard_rows in enumerate(_split_total(rows, [1.0] * n_shards)):
                if shard_rows:
                    where = () if piece.name == WHOLE else (piece.name,)
                    shards.append({"generator": gen.name, "version": gen.version, "target": piece.name, "shard": index,
                                   "rows": shard_rows, "seed": derive_seed(spec.name, ctx.logical_date.isoformat(),
                                                                           gen.key, *where, index, spec.seed)})
    return shards


def _slices(ctx: RunContext, state: dict) -> list[Slice]:
    """The run's slices (profiling resolved them on the real rows)."""
    if not state.get("targets_uri"):  # a state from before targets: the whole table
        return [Slice(WHOLE, (), ctx.spec.target_rows)]
    return targets.from_json(ctx.storage.read_json(state["targets_uri"]))


def _split_total(total: int, weights: list[float]) -> list[int]:
    """Integer parts proportional to weights that add up exactly to total (largest remainder)."""
    raw = np.array(weights, dtype=float) / sum(weights) * total
    parts = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - parts))[: total - parts.sum()]:
        parts[i] += 1
    return parts.tolist()


def _generator_spec(ctx: RunContext, name: str):
    return next(gen for gen in ctx.spec.generators if gen.name == name)


@step
def fit_generator(ctx: RunContext, state: dict, name: str) -> str:
    gen = _generator_spec(ctx, name)
    fit_data = data_columns(ctx.storage.read_parquet(state["fit_uri"]))
    model = ctx.modality.build_generator(gen)
    conditioned = targets.condition_columns(_slices(ctx, state))
    if conditioned and hasattr(model, "condition_on"):
        model.condition_on(conditioned)
    model = fit_model(model, gen, fit_data, _profile(ctx, state))
    # signed: sample_shard loads it back only if the bytes are the ones this deployment wrote
    return ctx.storage.write_bytes(ctx.staging("generation", "models", f"{gen.slug}.pkl"), dumps_signed(model))


@step
def sample_shard(ctx: RunContext, state: dict, shard: dict) -> str:
    gen = _generator_spec(ctx, shard["generator"])
    model_key = ctx.staging("generation", "models", f"{gen.slug}.pkl")
    model = loads_signed(ctx.storage.read_bytes(model_key), ctx.storage.uri(model_key))
    if hasattr(model, "use_storage"):  # e.g. an endpoint generator's response cache lives on the run's storage
        model.use_storage(ctx.storage)
    target = shard.get("target", WHOLE)
    piece = next(s for s in _slices(ctx, state) if s.name == target)
    rows, sampling = _draw(ctx, model, gen, piece, shard["rows"], shard["seed"])
    name = f"{gen.slug}-{shard['shard']:04d}" if target == WHOLE else f"{gen.slug}-{target}-{shard['shard']:04d}"
    # Requests that failed or were rejected are accounted for next to the shard, never padded with empty rows.
    failures = pd.DataFrame(getattr(model, "failures_", None) or [],
                            columns=["index", "label", "attempt", "error", "model", "context"])
    ctx.storage.write_parquet(ctx.staging("generation", "shards", f"{name}.failures.parquet"),
                              failures.assign(generator=gen.name, shard=shard["shard"]).astype(
                                  {"label": object, "model": object, "context": object}))
    # rows a slice's sampling budget could not deliver are said, so that every planned row is accounted for
    short = {"slice_shortfall": max(shard["rows"] - len(rows) - len(failures), 0)} if sampling else {}
    ctx.storage.write_json(ctx.staging("generation", "shards", f"{name}.stats.json"),
                           {"planned": shard["rows"], "generator": gen.name, "target": target, **short,
                            **({"sampling": sampling} if sampling else {}), **(getattr(model, "stats_", None) or {})})
    where = "" if target == WHOLE else f"{target}/"
    rows = _with_lineage(ctx, state, gen, rows, f"{gen.slug}/{ctx.logical_date.isoformat()}/{where}s{shard['shard']}/",
                         0, target)
    return ctx.storage.write_parquet(ctx.staging("generation", "shards", f"{name}.parquet"), rows)


def _draw(ctx: RunContext, model, gen, piece: Slice, n: int, seed: int) -> tuple[pd.DataFrame, dict | None]:
    """n rows of a generator inside a slice: conditioned where the generator can, else by rejection."""
    if not piece.conditions:
        return sample_model(model, gen, n, seed), None
    return sample_in_slice(model, gen, n, seed, piece.conditions,
                           max_draws=max(n, int(n * ctx.spec.targets.max_draw_factor)))


def _with_lineage(ctx: RunContext, state: dict, gen, rows: pd.DataFrame, prefix: str, round_: int, target: str
                  ) -> pd.DataFrame:
    """Synthetic rows in the profile's column order with their lineage columns."""
    order = ctx.modality.output_columns(_profile(ctx, state))
    rows = rows[[c for c in order if c in rows.columns] + [c for c in rows.columns if c not in order]]
    n = len(rows)
    return rows.assign(
        _sc_row_id=[f"{prefix}{i}" for i in range(n)], _sc_origin="synthetic", _sc_generator=gen.name,
        _sc_generator_version=gen.version, _sc_generation=pd.array([state.get("generation", 0)] * n, dtype="Int64"),
        _sc_created_in=pd.array([state["version_id"]] * n, dtype="Int64"),
        _sc_round=pd.array([round_] * n, dtype="Int64"), _sc_target=pd.array([target] * n, dtype=object))


@step
def generation_gate(ctx: RunContext, state: dict, shard_uris: list[str]) -> dict:
    synthetic = pd.concat([ctx.storage.read_parquet(u) for u in shard_uris], ignore_index=True)
    uri = ctx.storage.write_parquet(ctx.staging("generation", "synthetic.parquet"), synthetic)
    counts = synthetic["_sc_generator"].value_counts().to_dict()
    requests = request_accounting(ctx, shard_uris, len(synthetic), counts)
    profile = _profile(ctx, state)
    ctx.store.record_generated_rows(state["attempt_id"], {state["generator_ids"][k]: int(v) for k, v in counts.items()})
    ctx.store.record_metrics(state["attempt_id"], generation=requests)
    figures = {k: requests[k] for k in ("planned", "rows", "failed", "unaccounted", "failed_share")}
    by_source, explain = source_figures(requests["by_source"], ctx.spec.gates.max_failed_request_share)
    gate(ctx, state, "generation", [
        *ctx.modality.generation_batches(ctx.spec, data_columns(synthetic), profile,
                                         ctx.storage.read_json(state["suite_uri"])),
        g.Batch("requests", g.metrics_frame(figures), [
            g.threshold("unaccounted", min_value=0, max_value=0),  # every planned row is a row or a stated failure
            g.threshold("failed_share", max_value=ctx.spec.gates.max_failed_request_share)]),
        *([by_source] if by_source.expectations else [])], explain)
    return {"synthetic_uri": uri, "generated_rows": len(synthetic), "generated_by": counts,
            "failures_uri": requests.pop("failures_uri")}


def source_figures(by_source: dict[str, dict], max_failed_share: float) -> tuple[g.Batch, dict[str, str]]:
    """Each source judged on its own: pooling hides a dead endpoint behind the rows of a live one.

    A source that was planned rows must deliver some, and its own failed share must stay under the limit; a
    failure names the source, its figures and its first failure reasons.
    """
    figures, expectations, explain = {}, [], {}
    for name, fig in by_source.items():
        if not fig["planned"]:
            continue
        rows_col, share_col = f"{name}.rows", f"{name}.failed_share"
        figures[rows_col], figures[share_col] = fig["rows"], fig["failed_share"]
        expectations += [g.threshold(rows_col, min_value=1), g.threshold(share_col, max_value=max_failed_share)]
        why = (f"source {name}: {fig['rows']} row(s) of {fig['planned']} planned, {fig['failed']} failed or rejected"
               + (f"; first failures: {' | '.join(fig['first_failures'])}" if fig["first_failures"] else ""))
        explain[rows_col] = explain[share_col] = why
    return g.Batch("requests_by_source", g.metrics_frame(figures), expectations), explain


def request_accounting(ctx: RunContext, shard_uris: list[str], rows: int, rows_by: dict[str, int]) -> dict:
    """Planned vs generated vs failed rows over all shards, with failure reasons and endpoint counters."""
    failures, totals, by_generator = [], {}, {}
    for shard_uri in shard_uris:
        base = shard_uri[: -len(".parquet")]
        if ctx.storage.exists(f"{base}.failures.parquet"):
            failures.append(ctx.storage.read_parquet(f"{base}.failures.parquet"))
        stats = ctx.storage.read_json(f"{base}.stats.json") if ctx.storage.exists(f"{base}.stats.json") else {}
        mine = by_generator.setdefault(stats.get("generator", "?"), {})
        for key, value in stats.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and "lowest" not in key:
                totals[key] = totals.get(key, 0) + value
                mine[key] = mine.get(key, 0) + value
    failed = pd.concat(failures, ignore_index=True) if failures else pd.DataFrame(columns=["error", "generator"])
    planned = int(totals.get("planned", rows))
    reasons = failed["error"].astype(str).str.split(":").str[0:2].str.join(":").value_counts().head(20)
    if len(failed):
        log.info("generation: %d of %d planned requests failed or were rejected: %s", len(failed), planned,
                 reasons.to_dict())
    by_source = {}
    for gen in ctx.spec.generators:  # every source the spec names, also one whose shards all came back empty
        mine = failed.loc[failed["generator"] == gen.name, "error"].astype(str)
        source_planned = int(by_generator.get(gen.name, {}).get("planned", 0))
        by_source[gen.name] = {"planned": source_planned, "rows": int(rows_by.get(gen.name, 0)),
                               "failed": len(mine), "failed_share": len(mine) / source_planned if source_planned else 0.0,
                               "first_failures": list(dict.fromkeys(e[:200] for e in mine))[:3]}
    return {**{k: v for k, v in totals.items() if k != "planned"}, "planned": planned, "rows": rows,
            "failed": len(failed), "unaccounted": planned - rows - len(failed) - int(totals.get("slice_shortfall", 0)),
            "failed_share": len(failed) / planned if planned else 0.0, "failure_reasons": reasons.to_dict(),
            "by_generator": by_generator, "by_source": by_source,
            "failures_uri": ctx.storage.write_parquet(ctx.staging("generation", "failures.parquet"), failed)}


# --- 3. verification -------------------------------------------------------------------------

@step
def plan_verification(ctx: RunContext, state: dict) -> list[dict]:
    """The pool's record shards (`shard_rows` rows each), after building once what every shard reads.

    At least one shard, always: an empty mapped task would skip the gate after it. A modality that does not
    check records by shard gets one shard that does nothing."""
    n = len(ctx.storage.read_parquet(state["synthetic_uri"]))
    if not ctx.modality.shards_records:
        return [{"shard": 0, "start": 0, "stop": n, "records": False}]
    ctx.modality.prepare_records(ctx.hop_data(state))
    size = ctx.spec.shard_rows
    return [{"shard": i, "start": lo, "stop": min(lo + size, n), "records": True}
            for i, lo in enumerate(range(0, max(n, 1), size))]


@step
def verify_shard(ctx: RunContext, state: dict, shard: dict) -> str | None:
    """One shard's per-row checks (rows start..stop of the pool), written where a retry overwrites them."""
    if not shard["records"]:
        return None
    rows = ctx.storage.read_parquet(state["synthetic_uri"]).iloc[shard["start"]:shard["stop"]]
    records = ctx.modality.verify_records(ctx.hop_data(state), data_columns(rows)).reset_index(drop=True)
    records.insert(0, "_sc_row_id", rows["_sc_row_id"].to_numpy())
    return ctx.storage.write_parquet(ctx.staging("verification", "records", f"shard-{shard['shard']:05d}.parquet"),
                                     records)


def _shard_records(ctx: RunContext, synthetic: pd.DataFrame, record_uris: list[str | None] | None
                   ) -> pd.DataFrame | None:
    """The shards' per-row checks, in the pool's row order; None when the modality checks rows in verify."""
    uris = [u for u in (record_uris or []) if u]
    if not uris:
        return None
    records = pd.concat([ctx.storage.read_parquet(u) for u in uris], ignore_index=True)
    if not np.array_equal(records["_sc_row_id"].to_numpy(), synthetic["_sc_row_id"].to_numpy()):
        raise ValueError(f"the record shards ({len(uris)} files, {len(records)} rows) do not cover the pool's "
                         f"{len(synthetic)} rows in order: re-run the verification shards")
    return records


@step
def verification(ctx: RunContext, state: dict, record_uris: list[str | None] | None = None) -> dict:
    """Reads synthetic, train, holdout and the shards' per-row checks; writes per-row checks, metrics and the
    modality's extras. Without `record_uris` the modality checks every row here."""
    synthetic = ctx.storage.read_parquet(state["synthetic_uri"])
    records = _shard_records(ctx, synthetic, record_uris)
    out, batches, figures = verify_pool(ctx, state, synthetic, _slices(ctx, state), "verification", records)
    ctx.store.record_metrics(state["attempt_id"], verification=figures)
    gate(ctx, state, "verification", batches)
    return out


def verify_pool(ctx: RunContext, state: dict, synthetic: pd.DataFrame, slices: list[Slice], stage: str,
                records: pd.DataFrame | None = None) -> tuple[dict, list[g.Batch], dict]:
    """Verify the synthetic pool as a whole (the table's figures and per-row checks every later hop reads) and,
    in a targeted run, each slice's rows against the real rows of that slice: a rare class judged against the
    whole table would fail on fidelity by design and pass on privacy by luck. Returns the state's additions,
    the gate's batches (the whole pool's, or each slice's when targeted) and the figures to record.
    `records`: the pool's per-row checks from the verification shards (None: checked here)."""
    result = ctx.modality.verify(ctx.hop_data(state), data_columns(synthetic), records)
    out = {**_stored_checks(ctx, synthetic, result, (stage,)), **result.summary}
    figures = {k: v for k, v in result.metrics.items() if not isinstance(v, dict)}
    if not targets.targeted(slices):
        return out, [g.Batch("metrics", g.metrics_frame(result.metrics), result.expectations)], figures
    train, holdout = ctx.storage.read_parquet(state["train_uri"]), ctx.storage.read_parquet(state["holdout_uri"])
    # privacy is the whole pool's too: every slice can pass on its own while the pool as a whole leaks
    private = [e for e in result.expectations if e["kwargs"].get("column") in ctx.modality.privacy_metrics]
    batches = [g.Batch("privacy", g.metrics_frame(result.metrics), private)] if private else []
    views, figures["by_slice"] = {}, {}
    for piece in slices:
        where = (stage, "slices", piece.name)
        rows = synthetic.loc[synthetic["_sc_target"].to_numpy() == piece.name].reset_index(drop=True)
        real, held = train.loc[piece.mask(train)], holdout.loc[piece.mask(holdout)]
        if rows.empty or len(real) < MIN_SLICE_REAL_ROWS or len(held) < 2:
            figures["by_slice"][piece.name] = {"verified": False, "rows": len(rows), "real_rows": len(real),
                                               "holdout_rows": len(held)}
            continue
        # the slice's real rows sit with the other real copies (profiling/), which every run's end removes
        real_at = ("profiling", "slices", piece.name)
        view = {**state, "all_train_uri": state["train_uri"],
                "train_uri": ctx.storage.write_parquet(ctx.staging(*real_at, "real_train.parquet"), real),
                "holdout_uri": ctx.storage.write_parquet(ctx.staging(*real_at, "holdout.parquet"), held),
                "synthetic_uri": ctx.storage.write_parquet(ctx.staging(*where, "synthetic.parquet"), rows),
                "targets_uri": ctx.storage.write_json(ctx.staging(*where, "targets.json"), [piece.record()])}
        mine = ctx.modality.verify(ctx.hop_data(view), data_columns(rows))
        views[piece.name] = {**view, **_stored_checks(ctx, rows, mine, where)}
        batches.append(g.Batch(f"slice_{piece.name}", g.metrics_frame(mine.metrics), mine.expectations))
        figures["by_slice"][piece.name] = {k: v for k, v in mine.metrics.items() if not isinstance(v, dict)}
    return {**out, "slice_views": views}, batches, figures


MIN_SLICE_REAL_ROWS = 10  # fewer real rows in a slice than this: its rows are judged with the whole table only


def _stored_checks(ctx: RunContext, rows: pd.DataFrame, result, where: tuple[str, ...]) -> dict:
    checks = result.checks.copy()
    checks.insert(0, "_sc_row_id", rows["_sc_row_id"].to_numpy())
    return {"checks_uri": ctx.storage.write_parquet(ctx.staging(*where, "row_checks.parquet"), checks),
            "verification_uri": ctx.storage.write_json(ctx.staging(*where, "metrics.json"), result.metrics),
            "verification_extras": {name: ctx.storage.write_parquet(ctx.staging(*where, f"{name}.parquet"), frame)
                                    for name, frame in result.extras.items()}}


# --- 4. filtering --------------------------------------------------------------------------------

def pair_bounds(n: int, shard_rows: int) -> list[tuple[int, int]]:
    """Shard bounds over n rows for a search of each row against every earlier row: shard k ends at
    n * sqrt(k / K), so every shard does about the same n^2 / 2K products (the first holds the most rows)."""
    shards = max(1, -(-n // max(shard_rows, 1)))
    cuts = sorted({0, n, *(round(n * (k / shards) ** 0.5) for k in range(1, shards))})
    return list(zip(cuts[:-1], cuts[1:])) or [(0, 0)]


@step
def plan_filtering(ctx: RunContext, state: dict) -> list[dict]:
    """The pool's pair shards (see `pair_bounds`), after building once what every shard reads. At least one
    shard; a modality without a pairwise pass gets one that does nothing."""
    n = len(ctx.storage.read_parquet(state["synthetic_uri"]))
    if not ctx.modality.shards_pairs:
        return [{"shard": 0, "start": 0, "stop": n, "pairs": False}]
    ctx.modality.prepare_pairs(ctx.hop_data(state))
    return [{"shard": i, "start": lo, "stop": hi, "pairs": True}
            for i, (lo, hi) in enumerate(pair_bounds(n, ctx.spec.shard_rows))]


@step
def pair_shard(ctx: RunContext, state: dict, shard: dict) -> dict | None:
    """One shard's pairs (rows start..stop against every earlier row), written where a retry overwrites them."""
    if not shard["pairs"]:
        return None
    found = ctx.modality.find_pairs(ctx.hop_data(state), shard["start"], shard["stop"])
    uri = ctx.storage.write_parquet(ctx.staging("filtering", "pairs", f"shard-{shard['shard']:05d}.parquet"), found)
    return {"uri": uri, "start": shard["start"], "stop": shard["stop"], "pairs": len(found)}


def _shard_pairs(ctx: RunContext, n: int, pair_shards: list[dict | None] | None) -> pd.DataFrame | None:
    """The pair shards' tables, joined; they must cover the pool's rows 0..n in order, else refused."""
    shards = [s for s in (pair_shards or []) if s]
    if not shards:
        return None
    bounds = [(s["start"], s["stop"]) for s in shards]
    if [b[0] for b in bounds] != [0, *[b[1] for b in bounds[:-1]]] or bounds[-1][1] != n:
        raise ValueError(f"the pair shards {bounds} do not cover the pool's {n} rows in order: re-run the "
                         "filtering pair shards")
    return pd.concat([ctx.storage.read_parquet(s["uri"]) for s in shards], ignore_index=True)


@step
def filtering(ctx: RunContext, state: dict, pair_shards: list[dict | None] | None = None) -> dict:
    """Reads synthetic rows, their checks and the pair shards' pairs; writes kept and dropped rows (each drop with
    filter and reason). Without `pair_shards` a modality with a pairwise pass searches the pool's pairs here.

    Slices still short of their quota of kept rows get more rows, verified and filtered with the rest, until
    every quota is met or the budget is spent (see rounds.py). A round's keep-first decisions about earlier
    rows cannot change (they depend on earlier rows only), so only its new rows' records and pairs are checked;
    the pool's figures and the filters' verdicts are then taken over the whole pool again."""
    spec, modality = ctx.spec, ctx.modality
    slices = _slices(ctx, state)
    synthetic = ctx.storage.read_parquet(state["synthetic_uri"])
    checks = ctx.storage.read_parquet(state["checks_uri"])
    planned = {s.name: s.quota for s in slices}  # round 0's plan: each quota, split over its shards
    sampling = _round0_sampling(ctx)
    pairs = _shard_pairs(ctx, len(synthetic), pair_shards)
    if pairs is None and modality.shards_pairs:
        pairs = modality.find_pairs(ctx.hop_data(state), 0, len(synthetic))
    keep, dropped, metrics = _filter_pool(ctx, state, synthetic, checks, slices, pairs)
    verified, used, out = None, {}, {}  # verified: the last round's verification batches
    train = None  # the real training rows, read once if a round needs them
    for round_ in range(1, spec.targets.max_rounds + 1):
        wanted = rounds.top_up(slices, rounds.counts(synthetic.loc[keep]), rounds.counts(synthetic),
                               spec.targets.max_draw_factor)
        extra = None
        if wanted:
            if train is None:
                train = ctx.storage.read_parquet(state["train_uri"])
            # a modality may aim a slice's top-up inside it (code: the problems with the lowest pass rate so far)
            aimed = [modality.aim_top_up(spec, s, train, synthetic, keep) for s in slices]
            extra = _draw_round(ctx, state, round_, wanted, aimed, sampling)
        if extra is None or extra.empty:
            break
        used.update(dict.fromkeys(wanted, round_))
        failpoint("filtering.round")  # a round's rows drawn and written, not yet verified
        synthetic = pd.concat([synthetic, extra], ignore_index=True)
        # the whole pool is verified and filtered again: later hops read it, its checks and its figures
        out["synthetic_uri"] = ctx.storage.write_parquet(ctx.staging("filtering", "synthetic_pool.parquet"), synthetic)
        records = None
        if modality.shards_records:  # earlier rows keep their record checks (same references): check the new ones
            fresh = modality.verify_records(ctx.hop_data({**state, **out}), data_columns(extra)).reset_index(drop=True)
            records = pd.concat([checks[fresh.columns].reset_index(drop=True), fresh], ignore_index=True)
        added, verified, figures = verify_pool(ctx, {**state, **out}, synthetic, slices, "filtering", records)
        out |= {**added, "generated_rows": len(synthetic)}
        if pairs is not None:  # earlier rows keep their pairs (they look back only): search the new rows'
            pairs = pd.concat([pairs, modality.find_pairs(ctx.hop_data({**state, **out}), len(synthetic) - len(extra),
                                                          len(synthetic))], ignore_index=True)
        checks = ctx.storage.read_parquet(out["checks_uri"])
        keep, dropped, metrics = _filter_pool(ctx, {**state, **out}, synthetic, checks, slices, pairs)
    if verified is not None:
        ctx.store.record_metrics(state["attempt_id"], verification=figures)
        by_generator = synthetic["_sc_generator"].value_counts().to_dict()
        out["generated_by"] = by_generator
        ctx.store.record_generated_rows(state["attempt_id"],
                                        {state["generator_ids"][k]: int(v) for k, v in by_generator.items()})
    kept = synthetic.loc[keep].reset_index(drop=True)
    for name in modality.lineage_checks:
        kept[f"_sc_{name}"] = checks.loc[keep, name].to_numpy()
    dropped_rows = synthetic.iloc[dropped["index"].to_numpy()].reset_index(drop=True).assign(
        _sc_filter=dropped["filter"].to_numpy(), _sc_reason=dropped["reason"].to_numpy())
    accounts = rounds.accounting(slices, planned, rounds.counts(synthetic), rounds.counts(kept), used, sampling)
    out |= {
        "kept_uri": ctx.storage.write_parquet(ctx.staging("filtering", "kept.parquet"), kept),
        "dropped_uri": ctx.storage.write_parquet(ctx.staging("filtering", "dropped.parquet"), dropped_rows),
        "kept_rows": len(kept), "dropped_rows": len(dropped_rows),
        "dropped_by": {k: v["dropped"] for k, v in metrics.items()},
        "detection_auc": metrics.get("off_distribution", {}).get("detection_auc"),
        "privacy_threshold": metrics.get("privacy", {}).get("threshold"),
        "rounds": max(used.values(), default=0),
    }
    ctx.store.replace_dropped(state["version_id"], "filtering", pd.DataFrame({
        "row_id": dropped_rows["_sc_row_id"], "filter": dropped_rows["_sc_filter"], "reason": dropped_rows["_sc_reason"],
        "generator_name": dropped_rows["_sc_generator"], "generator_version": dropped_rows["_sc_generator_version"],
        "content_hash": _content_hash(dropped_rows)}))
    judged = len(synthetic) - metrics.get("quota", {}).get("dropped", 0)  # rows over a met quota were not judged bad
    summary = {"kept_fraction": len(kept) / max(judged, 1), "kept_rows": len(kept)}
    kept_batches, kept_metrics = _kept_checks(ctx, {**state, **out}, kept)
    ctx.store.record_metrics(state["attempt_id"], filtering=metrics, targets={"slices": accounts, "rounds": out["rounds"]},
                             **({"kept": kept_metrics} if kept_metrics else {}))
    quotas, explain = quota_figures(accounts, spec.gates.max_quota_shortfall)
    gate(ctx, state, "filtering", [
        *kept_batches,
        g.Batch("metrics", g.metrics_frame(summary), [
            g.threshold("kept_fraction", min_value=1.0 - spec.gates.max_drop_fraction)]),
        *([quotas] if quotas.expectations else []),  # a spec without targets has no quota to gate
        *[replace(b, name=f"pool_{b.name}") for b in verified or []],
    ], explain)
    return out


def _filter_pool(ctx: RunContext, state: dict, synthetic: pd.DataFrame, checks: pd.DataFrame, slices: list[Slice],
                 pairs: pd.DataFrame | None = None) -> tuple[np.ndarray, pd.DataFrame, dict]:
    """The modality's filters, then each slice's own check: a kept row holds its slice's conditions, and a
    slice keeps no more than its quota. `pairs`: the pool's pairs from the pair shards (their rows numbered in
    the pool; a slice's filters read those among its rows)."""
    views = state.get("slice_views")
    if not views:
        keep, dropped, metrics = _run_filters(ctx, state, synthetic, checks, np.arange(len(synthetic)), pairs)
    else:  # each slice's rows filtered against the real rows of their slice (its view, see verify_pool)
        keep, parts, metrics = np.zeros(len(synthetic), dtype=bool), [], {}
        target = synthetic["_sc_target"].to_numpy()
        for piece in slices:
            at = np.flatnonzero(target == piece.name)
            if not len(at):
                continue
            view = views.get(piece.name, state)
            mine = ctx.storage.read_parquet(view["checks_uri"]) if piece.name in views else checks.iloc[at]
            kept_here, gone, figures = _run_filters(ctx, view, synthetic.iloc[at].reset_index(drop=True),
                                                    mine.reset_index(drop=True), at, pairs)
            keep[at[kept_here]] = True
            parts.append(gone.assign(index=at[gone["index"].to_numpy()]))
            for name, figure in figures.items():
                merged = metrics.setdefault(name, {"dropped": 0, "by_slice": {}})
                merged["dropped"] += figure.get("dropped", 0)
                merged["by_slice"][piece.name] = figure
        dropped = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["index", "filter", "reason"])
    positions = np.flatnonzero(keep)
    fits, reasons = rounds.enforce(synthetic.iloc[positions], slices)
    out = positions[~fits]
    keep[out] = False
    extra = pd.DataFrame({"index": out, "filter": [r.split(":")[0] for r in reasons[~fits]],
                          "reason": reasons[~fits]})
    for name in ("slice", "quota"):
        metrics[name] = {"dropped": int((extra["filter"] == name).sum())}
    return keep, pd.concat([dropped, extra], ignore_index=True), metrics


def _round0_sampling(ctx: RunContext) -> dict[str, dict]:
    """Round 0's sampling figures per slice (conditioned or rejection), from the shards' stats."""
    out: dict[str, dict] = {}
    for key in ctx.storage.list(ctx.staging("generation", "shards")):
        if key.endswith(".stats.json"):
            stats = ctx.storage.read_json(key)
            if stats.get("sampling"):
                _add_sampling(out, stats["target"], stats["sampling"])
    return out


def _add_sampling(out: dict[str, dict], target: str, stats: dict) -> None:
    mine = out.setdefault(target, {"method": stats["method"], "drawn": 0, "accepted": 0})
    mine["drawn"] += stats["drawn"]
    mine["accepted"] += stats["accepted"]
    mine["acceptance_rate"] = mine["accepted"] / max(mine["drawn"], 1)


def _run_filters(ctx: RunContext, state: dict, synthetic: pd.DataFrame, checks: pd.DataFrame, positions: np.ndarray,
                 pairs: pd.DataFrame | None):
    modality = ctx.modality
    inputs = modality.filter_input(ctx.hop_data(state), data_columns(synthetic), checks.drop(columns=["_sc_row_id"]))
    if pairs is not None:
        inputs = modality.with_pairs(inputs, pairs, positions)
    return run_filters(modality.filters(ctx.spec), inputs)


def _kept_checks(ctx: RunContext, state: dict, kept: pd.DataFrame) -> tuple[list[g.Batch], dict]:
    """The modality's checks of the rows to be published; in a targeted run each slice's kept rows against the
    real rows of their slice (gated), and the whole kept table's figures recorded beside them."""
    batches, figures = ctx.modality.kept_checks(ctx.hop_data(state), kept)
    views = state.get("slice_views")
    if not views:
        return batches, figures
    figures = {**figures, "by_slice": {}}
    target = kept["_sc_target"].to_numpy()
    batches = []
    for name, view in views.items():
        mine = kept.loc[target == name].reset_index(drop=True)
        if mine.empty:
            continue
        found, figures["by_slice"][name] = ctx.modality.kept_checks(ctx.hop_data(view), mine)
        batches += [replace(b, name=f"slice_{name}_{b.name}") for b in found]
    return batches, figures


def _draw_round(ctx: RunContext, state: dict, round_: int, wanted: dict[str, int], slices: list[Slice],
                sampling: dict[str, dict]) -> pd.DataFrame:
    """One more round of rows for the slices still short, from the generators fitted in round 0 (their weights
    split each slice's rows), written under the filtering hop's staging for audit."""
    spec = ctx.spec
    shares = spec.generator_shares()
    frames = []
    for piece in slices:
        if piece.name not in wanted:
            continue
        for gen, n in zip(spec.generators, _split_total(wanted[piece.name], [shares[x.name] for x in spec.generators])):
            if not n:
                continue
            model_key = ctx.staging("generation", "models", f"{gen.slug}.pkl")
            model = loads_signed(ctx.storage.read_bytes(model_key), ctx.storage.uri(model_key))
            if hasattr(model, "use_storage"):
                model.use_storage(ctx.storage)
            seed = derive_seed(spec.name, ctx.logical_date.isoformat(), gen.key, "round", round_, piece.name, spec.seed)
            rows, stats = _draw(ctx, model, gen, piece, n, seed)
            if stats:
                _add_sampling(sampling, piece.name, stats)
            rows = _with_lineage(ctx, state, gen, rows,
                                 f"{gen.slug}/{ctx.logical_date.isoformat()}/r{round_}/{piece.name}/", round_, piece.name)
            ctx.storage.write_parquet(ctx.staging("filtering", "rounds", f"r{round_}-{gen.slug}-{piece.name}.parquet"),
                                      rows)
            frames.append(rows)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def quota_figures(accounts: list[dict], max_shortfall: float) -> tuple[g.Batch, dict[str, str]]:
    """Each targeted slice's shortfall share against the gate, and a sentence naming the slice for a failure."""
    figures, expectations, explain = {}, [], {}
    for row in accounts:
        if row["name"] == WHOLE:  # a spec without targets: its shortfall is stated (report, metrics), not gated
            continue
        column = f"{row['name']}.shortfall_share"
        figures[column] = row["shortfall_share"]
        expectations.append(g.threshold(column, max_value=max_shortfall))
        explain[column] = (f"slice {row['name']} ({row['rule']}): {row['kept']} of {row['quota']} rows kept after "
                           f"{row['rounds']} extra round(s), {row['generated']} generated")
    return g.Batch("quotas", g.metrics_frame(figures), expectations), explain


# --- 5. blending -------------------------------------------------------------------------------

def _previous_synthetic(ctx: RunContext, state: dict) -> pd.DataFrame | None:
    if not state.get("parent_uri"):
        return None
    previous = ctx.storage.read_parquet(state["parent_uri"])
    return previous.loc[previous["_sc_origin"] == "synthetic"].reset_index(drop=True)


@step
def blending(ctx: RunContext, state: dict) -> dict:
    real = ctx.storage.read_parquet(state["train_uri"])
    kept = ctx.storage.read_parquet(state["kept_uri"])
    previous = _previous_synthetic(ctx, state)
    spec_b = ctx.spec.blend
    blended, plan = blend(real, kept, previous, spec_b.real_fraction, ctx.spec.blend_mode, spec_b.max_carried_fraction,
                          seed=derive_seed(ctx.spec.name, ctx.logical_date, "blend"))
    if state.get("parent_version_id") and plan.carried_synthetic:
        ctx.store.add_attempt_parent(state["attempt_id"], state["parent_version_id"], "carried_forward")
    out = {
        "blend_uri": ctx.storage.write_parquet(ctx.staging("blending", "blend.parquet"), blended),
        "real_rows": plan.real_rows, "new_synthetic_rows": plan.new_synthetic,
        "carried_rows": plan.carried_synthetic, "synthetic_share": plan.synthetic_share,
        # fewer kept synthetic rows than the blend has room for: the real share rises above the spec's; say so
        "synthetic_budget": plan.budget,
        "budget_shortfall": plan.budget - plan.new_synthetic - plan.carried_synthetic,
        "real_share": 1.0 - plan.synthetic_share, "spec_real_fraction": spec_b.real_fraction,
    }
    ctx.store.record_metrics(state["attempt_id"], blending={k: v for k, v in out.items() if k != "blend_uri"})
    gate(ctx, state, "blending", [
        *ctx.modality.blend_batches(ctx.hop_data(state), data_columns(blended)),
        g.Batch("metrics", g.metrics_frame({"real_rows": plan.real_rows, "synthetic_share": plan.synthetic_share}), [
            g.threshold("real_rows", min_value=len(real), max_value=len(real)),  # real rows are never replaced
            g.threshold("synthetic_share", max_value=ctx.spec.gates.max_synthetic_share)]),
    ])
    return out


# --- 6. evaluation -------------------------------------------------------------------------------

@step
def evaluation(ctx: RunContext, state: dict) -> dict:
    """Reads real train, kept synthetic, the blend and the holdout; writes utility and collapse monitors."""
    data = ctx.hop_data(state)
    real = data.train
    kept = data_columns(data.frame("kept_uri"))
    blended = data_columns(data.frame("blend_uri"))
    result = ctx.modality.evaluate(data, real, kept, blended)
    uri = ctx.storage.write_json(ctx.staging("evaluation", "metrics.json"), result)
    ctx.store.record_metrics(state["attempt_id"], evaluation=result)
    batches, explain = utility_batches(result, ctx.spec.gates)
    if result.get("slices"):
        aimed, why = slice_utility_batches(result["slices"], _slices(ctx, state), ctx.spec.gates.max_slice_utility_drop)
        batches, explain = [*batches, *aimed], {**explain, **why}
    monitors, verdicts = collapse_monitors(ctx, data, real, kept, result)
    if verdicts and ctx.spec.collapse.enforce:
        frame = g.metrics_frame({f"{v.monitor}_degradation": v.degradation for v in verdicts})
        batches.append(g.Batch("collapse", frame, [g.threshold(f"{v.monitor}_degradation", max_value=v.limit)
                                                   for v in verdicts]))
        explain.update({f"{v.monitor}_degradation": v.describe() for v in verdicts})
    gate(ctx, state, "evaluation", batches, explain)
    # XCom is JSON: a figure undefined on a small set (NaN) travels as null
    return json_safe({"evaluation_uri": uri, "collapse": monitors,
                      **{k: result.get(k) for k in ("metric", "trtr", "tstr", "blend")}})


def utility_batches(result: dict, limits) -> tuple[list[g.Batch], dict[str, str]]:
    """The utility gate's batches and failure explanations.

    With bootstrap intervals (tabular) a utility figure fails only when it misses its limit AND the miss is
    beyond the noise (see evaluation.shortfall_counts): the gated columns `blend_minus_trtr_beyond_noise` and
    `tstr_ratio_beyond_noise` carry the point when the miss counts, else the limit itself. Without intervals
    (text, code) the points are gated as before. `learner_ok` (1/0) fails when the real-only model is no
    better than chance or clearly worse than a simple tree: then no utility figure means anything."""
    from .utility import describe_interval, gated_figure

    scores = {k: result.get(k) for k in ("trtr", "tstr", "blend", "blend_minus_trtr", "tstr_ratio")
              if isinstance(result.get(k), float) and not math.isnan(result[k])}
    checks, explain = [], {}
    rule = "a drop fails when it is larger than the tolerance and its 95% interval lies below {ref}"
    gated = [("blend_minus_trtr", -limits.max_utility_drop, 0.0)]
    if limits.min_tstr_ratio > 0:
        gated.append(("tstr_ratio", limits.min_tstr_ratio, 1.0))
    for key, limit, reference in gated:
        if result.get(f"{key}_ci") is None:
            checks.append(g.threshold(key, min_value=limit))
            continue
        figure = gated_figure(result, key, limit, reference)
        if figure is None:
            continue
        scores[f"{key}_beyond_noise"] = figure
        checks.append(g.threshold(f"{key}_beyond_noise", min_value=limit))
        explain[f"{key}_beyond_noise"] = f"{describe_interval(result, key)}; {rule.format(ref=reference)}"
    batches = [g.Batch("metrics", g.metrics_frame(scores), checks)]
    if "learner_ok" in result:
        batches.append(g.Batch("learner", g.metrics_frame({"learner_ok": 1.0 if result["learner_ok"] else 0.0}),
                               [g.threshold("learner_ok", min_value=1.0)]))
        if result.get("learner_message"):
            explain["learner_ok"] = result["learner_message"]
    return batches, explain


def slice_utility_batches(table: dict, slices: list[Slice], tolerance: float) -> tuple[list[g.Batch], dict[str, str]]:
    """Each targeted class or slice: the blend's PR-AUC does not trail real-only by more than `tolerance` beyond
    the noise (paired bootstrap; the gate's figure is the point when the miss counts, else the limit). Rows
    with too few holdout rows are not judged; the report says so beside them."""
    from .utility import gated_figure

    aimed = {s.name for s in slices} | {str(c.value) for s in slices for c in s.conditions
                                        if s.why.get("rule") == "rebalance"}
    figures, checks, explain = {}, [], {}
    for row in table.get("rows", []):
        if not row.get("judged") or row["name"] not in aimed:
            continue
        diff = row["blend_minus_real"]["pr_auc"]
        key = f"{row['kind']}_{row['name']}.pr_auc_blend_minus_real"
        figure = gated_figure({"d": diff["point"], "d_ci": diff["ci"]}, "d", -tolerance, 0.0)
        if figure is None:
            continue
        figures[key] = figure
        checks.append(g.threshold(key, min_value=-tolerance))
        lo, hi = diff["ci"]
        explain[key] = (f"{row['kind']} {row['name']} ({row['rule']}): blend minus real-only PR-AUC "
                        f"{diff['point']:+.4f} (95% interval {lo:+.4f} to {hi:+.4f}); it fails when it trails by more "
                        f"than {tolerance} and the whole interval lies below 0")
    return ([g.Batch("slices", g.metrics_frame(figures), checks)] if checks else []), explain


def targets_table(record: dict) -> str:
    """The report's targets section: one row per slice with its rule, why, quota and what the rounds got."""
    rows = [{"slice": s["name"], "rule": s["rule"], "why": targets.why_words(s.get("why") or {}), "quota": s["quota"],
             "planned": s["planned"], "generated": s["generated"], "kept": s["kept"], "shortfall": s["shortfall"],
             "extra rounds": s["rounds"],
             "acceptance": f"{s['sampling']['acceptance_rate']:.3f} ({s['sampling']['method']})" if s.get("sampling")
             else "—"} for s in record["slices"]]
    return html_table(rows, ["slice", "rule", "why", "quota", "planned", "generated", "kept", "shortfall",
                             "extra rounds", "acceptance"])


def _ancestors(ctx: RunContext, state: dict) -> list[dict]:
    """The published versions this attempt descends from (fitted_on), oldest first."""
    parents = [p for p, relation in (ctx.store.attempt(state["attempt_id"])["parents"] or []) if relation == "fitted_on"]
    return ctx.store.ancestry(parents[0]) if parents else []


def collapse_monitors(ctx: RunContext, data: HopData, real: pd.DataFrame, synthetic: pd.DataFrame, evaluation: dict):
    """Measure every monitor of the modality for this version and judge it against generation 0 of its ancestry."""
    state = data.state
    monitors = measure_all(ctx.modality.monitor_input(data, real, synthetic, evaluation), ctx.spec.modality)
    history = [a["metrics"].get("collapse", {}) for a in _ancestors(ctx, state)]
    verdicts = judge(monitors, history, state.get("generation", 0), ctx.spec.collapse.limits)
    ctx.store.record_metrics(state["attempt_id"], collapse=monitors, collapse_verdicts=[
        {"monitor": v.monitor, "generation": v.generation, "value": v.value, "baseline": v.baseline,
         "degradation": v.degradation, "limit": v.limit, "tripped": v.tripped, "trend": v.trend} for v in verdicts])
    return monitors, verdicts


# --- publish ---------------------------------------------------------------------------------------

@step
def publish(ctx: RunContext, state: dict) -> dict:
    """Stage the version's files, then swap: move them under published/ and switch the version in one transaction."""
    version_id, attempt_id = state["version_id"], state["attempt_id"]
    attempt = ctx.store.attempt(attempt_id)
    if attempt["status"] == "published":  # a retry after the swap committed
        manifest = ctx.storage.read_json(ctx.published("manifest.json"))
        _after_publish(ctx, None)
        return {k: manifest[k] for k in (*manifest["summary_keys"], "data_uri", "report_uri", "manifest_uri")}
    blended = ctx.storage.read_parquet(state["blend_uri"])
    train = data_columns(ctx.storage.read_parquet(state["train_uri"]))
    synthetic = data_columns(blended.loc[blended["_sc_origin"] == "synthetic"])
    evaluation_metrics = ctx.storage.read_json(state["evaluation_uri"])
    verification_metrics = ctx.storage.read_json(state["verification_uri"])
    final = ctx.published()  # where the files will be once the swap has happened; nothing is written there before
    recorded = ctx.store.gate_results(version_id, state["run_pk"])
    docs_uris = {gr["hop"]: ctx.storage.uri(f"{final}/gx_docs/index_{gr['hop']}.html")
                 for gr in recorded if gr["docs_uri"]}
    gate_rows = sorted(({**gr, "docs_uri": docs_uris.get(gr["hop"])} for gr in recorded),
                       key=lambda r: HOPS.index(r["hop"]) if r["hop"] in HOPS else 99)

    staged = ctx.staging("publish")
    ctx.storage.delete_prefix(staged)
    for key in ctx.storage.list(ctx.staging("gx_docs")):  # report links stay valid next to the data
        ctx.storage.write_bytes(f"{staged}/gx_docs/{key.split('gx_docs/', 1)[1]}", ctx.storage.read_bytes(key))
    docs_links = {hop: f"gx_docs/index_{hop}.html" for hop in docs_uris}

    ctx.storage.write_parquet(f"{staged}/data.parquet", blended)
    data_uri, report_uri, manifest_uri = (ctx.storage.uri(f"{final}/{name}")
                                          for name in ("data.parquet", "report.html", "manifest.json"))
    published_ids = set(blended.loc[blended["_sc_created_in"] == version_id, "_sc_row_id"])
    counts = blended["_sc_origin"].value_counts().to_dict()
    carried = int((blended["_sc_origin"].eq("synthetic") & blended["_sc_created_in"].ne(version_id)).sum())
    metric = evaluation_metrics.get("metric") or "utility"
    figures = ctx.modality.summary_figures(verification_metrics)
    attempt_metrics = attempt["metrics"] or {}
    summary = {
        "dataset_version": version_id, "attempt": attempt_id, "spec": ctx.spec.name, "modality": ctx.spec.modality,
        "logical_date": ctx.logical_date.isoformat(),
        "run_id": ctx.run_id, "run_kind": ctx.run_kind, "generators": ctx.spec.generators_key(),
        "line": ctx.spec.line, "config_hash": ctx.config_hash, "dag_id": ctx.dag_id, "try_number": ctx.try_number,
        "generation": state.get("generation", 0),
        "rows": len(blended), "real_rows": int(counts.get("real", 0)), "synthetic_rows": int(counts.get("synthetic", 0)),
        "carried_rows": carried, **figures,
        f"trtr_{metric}": evaluation_metrics.get("trtr"),
        f"tstr_{metric}": evaluation_metrics.get("tstr"),
        f"blend_{metric}": evaluation_metrics.get("blend"),
    }
    ancestors = _ancestors(ctx, state)
    report = render_report(
        title=f"synthchain · {ctx.spec.name} · {ctx.logical_date.isoformat()} · version {version_id}",
        summary=summary, sections=[
            *([("Targets: slices, quotas and rounds", targets_table(attempt_metrics["targets"]))]
              if (attempt_metrics.get("targets") or {}).get("slices") else []),
            *ctx.modality.report_sections(ctx.hop_data(state), train, synthetic, published_ids),
            ("How the figures were measured", measurement_table(
                verification_metrics, attempt_metrics.get("filtering") or {}, evaluation_metrics,
                attempt_metrics.get("kept") or {}, attempt_metrics.get("blending") or {}))],
        evaluation=evaluation_metrics, gates=gate_rows, drops=state.get("dropped_by", {}), docs_links=docs_links,
        collapse_history=[{"generation": a["generation"], "values": (a["metrics"] or {}).get("collapse", {})}
                          for a in ancestors]
                         + [{"generation": state.get("generation", 0), "values": attempt_metrics.get("collapse", {})}],
        collapse_verdicts=attempt_metrics.get("collapse_verdicts"),
        collapse_limits=ctx.spec.collapse.limits)
    ctx.storage.write_text(f"{staged}/report.html", report)

    content_hash = _content_hash(blended)
    manifest = {
        **summary, "summary_keys": list(summary), "verification_figures": list(figures),
        "schema": {c: str(t) for c, t in blended.dtypes.items()},
        "data_uri": data_uri, "report_uri": report_uri, "manifest_uri": manifest_uri,
        "parent_version_id": state.get("parent_version_id") if carried else None,
        "content_sha256": stable_hash(sorted(content_hash.tolist())),
        "metrics": {"verification": {k: v for k, v in verification_metrics.items() if not isinstance(v, dict)},
                    "evaluation": evaluation_metrics, "filtering": state.get("dropped_by", {})},
        "gates": gate_rows,
        "targets": attempt_metrics.get("targets"),  # slices, quotas, why each was chosen, rounds, shortfalls
        "columns": ctx.storage.read_json(state["profile_uri"]).get("handling"),  # types, reasons, handling
        "lineage": blended.groupby(["_sc_origin", "_sc_generator", "_sc_generator_version"], dropna=False)
                          .size().reset_index(name="rows").astype(object).where(lambda f: f.notna(), None)
                          .to_dict("records"),
    }
    ctx.storage.write_json(f"{staged}/manifest.json", manifest)
    failpoint("publish.staged")
    lineage = pd.DataFrame({
        "row_id": blended["_sc_row_id"], "origin": blended["_sc_origin"], "generator_name": blended["_sc_generator"],
        "generator_version": blended["_sc_generator_version"], "generation": blended["_sc_generation"].astype("Int64"),
        "created_in_version_id": blended["_sc_created_in"].astype("Int64"), "content_hash": content_hash})
    dropped_rows = ctx.storage.read_parquet(state["dropped_uri"])
    dropped = {"filtering": pd.DataFrame({
        "row_id": dropped_rows["_sc_row_id"], "filter": dropped_rows["_sc_filter"], "reason": dropped_rows["_sc_reason"],
        "generator_name": dropped_rows["_sc_generator"], "generator_version": dropped_rows["_sc_generator_version"],
        "content_hash": _content_hash(dropped_rows)})}

    def move_into_place():  # runs inside the swap's transaction: if it fails, nothing is committed
        ctx.storage.delete_prefix(final)  # a partial copy from a killed earlier try of this publish
        ctx.storage.move_prefix(staged, final)

    ctx.store.mark_publishing(attempt_id)
    swap = ctx.store.publish_attempt(
        version_id, attempt_id, lineage, dropped=dropped, real_rows=summary["real_rows"],
        synthetic_rows=summary["synthetic_rows"], carried_rows=carried, storage_uri=data_uri,
        metrics={"summary": summary}, docs_uris=docs_uris, before_commit=move_into_place)
    failpoint("publish.committed")
    _after_publish(ctx, swap["superseded"])
    return {**summary, "data_uri": data_uri, "report_uri": report_uri, "manifest_uri": manifest_uri}


def _after_publish(ctx: RunContext, superseded: dict | None) -> None:
    """Retention right after a publish: the staging tree (or at least its real-row copies) and, unless kept
    for a while, the copy the swap replaced. `synthchain gc` does the same for anything a crash left behind."""
    retention = Retention.from_env()
    if not retention.keep_staging:
        ctx.storage.delete_prefix(ctx.staging())
        ctx.store.mark_cleaned(ctx.attempt_id, "staging")
    else:
        drop_real_copies(ctx)
    readers = [x for x in ctx.store.live_attempts() if x["spec_name"] == ctx.spec.name and x["id"] != ctx.attempt_id]
    # a live run of this spec may have the replaced copy as its parent: then gc removes it later
    if superseded is not None and retention.superseded_s <= 0 and not readers:
        ctx.storage.delete_prefix(superseded["published_prefix"])
        ctx.store.mark_cleaned(superseded["id"], "published")


def drop_real_copies(ctx: RunContext) -> None:
    if ctx.attempt_id is not None:
        retention.drop_real_copies(ctx.storage, ctx.store, ctx.store.attempt(ctx.attempt_id))


def fail_run(ctx: RunContext, state: dict, message: str) -> None:
    """Record an unexpected failure of the run's attempt (a gate failure has already quarantined it)."""
    ctx.bind(state)
    if state.get("attempt_id") is not None:
        ctx.store.fail_attempt(state["attempt_id"], state["run_pk"], message[:2000])
        try:
            drop_real_copies(ctx)
        except Exception as exc:  # storage may be what failed: gc removes them later; the first error stands
            log.warning("could not remove attempt %s's copies of real rows yet: %s", ctx.attempt_id, exc)
    elif ctx.store.run_status(state["run_pk"]) == "running":
        ctx.store.finish_run(state["run_pk"], "failed", message[:2000])


def run_all(ctx: RunContext) -> dict:
    """Every hop in order, in-process (the CLI's `run` and quick local use), holding the run's lease throughout."""
    state = begin(ctx)
    try:
        with ctx.store.lease(state["run_pk"], Lease.from_env().heartbeat_s):
            state |= profiling(ctx, state)
            shards = plan_shards(ctx, state)
            for name in dict.fromkeys(s["generator"] for s in shards):
                fit_generator(ctx, state, name)
            shard_uris = [sample_shard(ctx, state, shard) for shard in shards]
            state |= generation_gate(ctx, state, shard_uris)
            record_uris = [verify_shard(ctx, state, shard) for shard in plan_verification(ctx, state)]
            state |= verification(ctx, state, record_uris)
            pair_shards = [pair_shard(ctx, state, shard) for shard in plan_filtering(ctx, state)]
            state |= filtering(ctx, state, pair_shards)
            for hop in (blending, evaluation):
                state |= hop(ctx, state)
            return publish(ctx, state)
    except g.GateFailed:
        raise
    except BaseException as exc:
        fail_run(ctx, state, f"{type(exc).__name__}: {exc}")
        raise
