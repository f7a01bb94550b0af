"""The modality contract: what a kind of data (tabular records, text) plugs into the hops.

`pipeline.py` orchestrates (begin, gates, quarantine, provenance, publish) and calls a
`Modality` for everything that depends on what the records are: how real records are
loaded and normalised, their profile and the GX expectations built from it, the
built-in generators, verifiers, filters, metrics, collapse monitors, the downstream
evaluator and the report sections. Data always moves as frames (Parquet on storage),
so lineage, blending and publishing stay the same for every modality.

A modality reads a hop's inputs through `HopData`, which loads each named artefact
on first use: what a hop reads is visible in the code that reads it.
"""
from __future__ import annotations

import io
import pickle
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import TYPE_CHECKING, Any, Callable, ClassVar

import numpy as np
import pandas as pd

from .generators import build_generator, effective_params, family_of
from .seeds import derive_seed

if TYPE_CHECKING:
    from .collapse.monitors import MonitorInput
    from .filters import RowFilter
    from .gates import Batch, Expectation
    from .specs import DatasetSpec, GeneratorSpec
    from .storage import Storage


def data_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame without synthchain's lineage columns (`_sc_*`)."""
    return frame[[c for c in frame.columns if not c.startswith("_sc_")]]


@dataclass
class HopData:
    """A hop's view of the run: the spec, the state XCom carries, and artefacts read on first use."""

    spec: "DatasetSpec"
    storage: "Storage"
    state: dict
    logical_date: date
    load_profile: Callable[[dict], Any]

    def uri(self, key: str) -> str:
        if key not in self.state:
            raise KeyError(f"artefact {key!r} is not in this run's state (have: {sorted(self.state)})")
        return self.state[key]

    def frame(self, key: str) -> pd.DataFrame:
        """The Parquet artefact behind state[key] (cached per hop)."""
        if key not in self._frames:
            self._frames[key] = self.storage.read_parquet(self.uri(key))
        return self._frames[key]

    def extra(self, name: str) -> pd.DataFrame:
        """A frame the verification hop stored for later hops (`Verified.extras`)."""
        return self.storage.read_parquet(self.state["verification_extras"][name])

    @cached_property
    def _frames(self) -> dict[str, pd.DataFrame]:
        return {}

    @cached_property
    def profile(self) -> Any:
        return self.load_profile(self.storage.read_json(self.uri("profile_uri")))

    @property
    def train(self) -> pd.DataFrame:
        return data_columns(self.frame("train_uri"))

    @property
    def holdout(self) -> pd.DataFrame:
        return data_columns(self.frame("holdout_uri"))

    def seed(self, label: str) -> int:
        return derive_seed(self.spec.name, self.logical_date, label)

    def cached_array(self, kind: str, key: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """A content-addressed array under `cache/<kind>/`: computed once, reused by every hop and re-run.

        The key must identify the content (e.g. a hash of the texts and the model), never the run.
        """
        path = f"cache/{kind}/{key}.npy"
        if self.storage.exists(path):
            return np.load(io.BytesIO(self.storage.read_bytes(path)), allow_pickle=False)
        value = compute()
        buf = io.BytesIO()
        np.save(buf, value, allow_pickle=False)
        self.storage.write_bytes(path, buf.getvalue())
        return value

    def cached_arrays(self, kind: str, key: str, parts: tuple[str, ...],
                      build: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """Several arrays of one object (an index, a sketch), each under `cache/<kind>_<part>/` like
        `cached_array`: `build` runs at most once, and only when a part is missing."""
        built: list[dict[str, np.ndarray]] = []

        def part_of(name: str) -> np.ndarray:
            if not built:
                built.append(build())
            return built[0][name]

        return {part: self.cached_array(f"{kind}_{part}", key, lambda p=part: part_of(p)) for part in parts}

    def cached_model(self, kind: str, key: str, compute: Callable[[], Any]) -> Any:
        """A fitted model under `cache/<kind>/`, content-addressed like `cached_array`: fitted once, then read
        by every shard of a hop (pickle: only this project's own storage is read back)."""
        path = f"cache/{kind}/{key}.pkl"
        if self.storage.exists(path):
            return pickle.loads(self.storage.read_bytes(path))
        value = compute()
        self.storage.write_bytes(path, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
        return value


@dataclass
class Verified:
    """What a modality's verification returns."""

    metrics: dict[str, Any]  # dataset-level figures, stored per version (nested dicts allowed)
    checks: pd.DataFrame  # per-row results, aligned with the synthetic rows
    expectations: list["Expectation"]  # thresholds on the scalar metrics (the verification gate)
    extras: dict[str, pd.DataFrame] = field(default_factory=dict)  # frames later hops read (HopData.extra)
    summary: dict[str, Any] = field(default_factory=dict)  # a few figures for XCom


class Modality(ABC):
    """One kind of data. Subclasses live in their own subpackage and register in `modalities.py`."""

    #: per-row checks that travel with kept rows as `_sc_<name>` lineage (e.g. code's execution verdict)
    lineage_checks: tuple[str, ...] = ()
    #: verification figures about the real records' privacy: in a targeted run they are gated on the whole pool
    #: as well as per slice (a slice's fidelity is judged against its own real rows only)
    privacy_metrics: tuple[str, ...] = ()

    name: ClassVar[str]

    # --- profiling -------------------------------------------------------------------------------
    @abstractmethod
    def load_real(self, spec: "DatasetSpec") -> tuple[pd.DataFrame, pd.DataFrame]:
        """(train, holdout) real records, normalised; the holdout is never shown to a generator."""

    @abstractmethod
    def profile(self, spec: "DatasetSpec", train: pd.DataFrame) -> Any:
        """The profile every later hop is checked against; must have `to_dict()`."""

    @abstractmethod
    def load_profile(self, data: dict) -> Any: ...

    @abstractmethod
    def profiling_batches(self, spec: "DatasetSpec", train: pd.DataFrame, holdout: pd.DataFrame,
                          profile: Any) -> list["Batch"]: ...

    def feasibility(self, spec: "DatasetSpec", train: pd.DataFrame, holdout: pd.DataFrame,
                    profile: Any) -> tuple[list["Batch"], dict[str, str], dict]:
        """Whether the data can pass the later gates at all, judged from the real rows before the heavy hops:
        (batches for the profiling gate, explanations by figure, figures). Nothing to say by default."""
        return [], {}, {}

    @abstractmethod
    def record_suite(self, spec: "DatasetSpec", profile: Any) -> list["Expectation"]:
        """GX expectations for a batch of generated records (tolerant: filters have not run yet)."""

    #: `targets.from_errors`: (spec, training rows) -> slices where the real-only model errs; None when the
    #: modality cannot find them (the spec validator refuses from_errors there)
    error_slices: Callable[[Any, pd.DataFrame], list] | None = None

    # --- generation ------------------------------------------------------------------------------
    #: the modality's built-in generators by name (a spec's `impl`); any other name must be a registered plug-in
    builtin_generators: ClassVar[dict[str, type]] = {}

    def build_generator(self, gen: "GeneratorSpec") -> Any:
        """An object with `fit(data, profile)` and `sample(n, seed)`."""
        return build_generator(gen, self.builtin_generators)

    def effective_params(self, gen: "GeneratorSpec") -> dict[str, Any]:
        return effective_params(gen, self.builtin_generators)

    def generator_family(self, name: str) -> str:
        return family_of(name, self.builtin_generators)

    def aim_top_up(self, spec: "DatasetSpec", piece: Any, train: pd.DataFrame, synthetic: pd.DataFrame,
                   kept: np.ndarray) -> Any:
        """The slice a top-up round draws `piece`'s rows from, given the pool so far (`kept`: its rows kept).
        Default: the slice itself. Rows drawn keep `piece`'s name and are verified against `piece`."""
        return piece

    @abstractmethod
    def output_columns(self, profile: Any) -> list[str]:
        """Data columns of a record, in order."""

    @abstractmethod
    def generation_batches(self, spec: "DatasetSpec", synthetic: pd.DataFrame, profile: Any,
                           suite: list["Expectation"]) -> list["Batch"]: ...

    # --- verification ----------------------------------------------------------------------------
    #: per-row checks that need only the row and the real references, so verification maps them over shards
    #: of the pool (Celery workers share them) and `verify` reads them back; False: `verify` checks every row
    shards_records: ClassVar[bool] = False

    def prepare_records(self, data: HopData) -> None:
        """Build what every shard's `verify_records` reads (a real-corpus index, a fitted judge) once, into the
        cache, before the shards run."""

    def verify_records(self, data: HopData, rows: pd.DataFrame) -> pd.DataFrame:
        """Per-row checks of `rows` (one shard), aligned with them. Only called when `shards_records`."""
        raise NotImplementedError(f"{type(self).__name__} does not check records by shard")

    @abstractmethod
    def verify(self, data: HopData, synthetic: pd.DataFrame, records: pd.DataFrame | None = None) -> Verified:
        """The pool's figures, per-row checks and gate. `records`: the shards' `verify_records` output for the
        whole pool, in its row order (None: compute them here)."""

    # --- filtering -------------------------------------------------------------------------------
    @abstractmethod
    def filters(self, spec: "DatasetSpec") -> list["RowFilter"]: ...

    # Filtering's costly global pass, split by shard: a modality with a pairwise search (text: semantic
    # duplicates, every row against every earlier row) finds each shard's pairs in a mapped task; the
    # filter then applies its keep-first rule to them. A top-up round searches only its new rows.
    shards_pairs: ClassVar[bool] = False

    def prepare_pairs(self, data: HopData) -> None:
        """Build what every pair shard reads (the pool's embeddings) once, into the cache."""

    def find_pairs(self, data: HopData, start: int, stop: int) -> pd.DataFrame:
        """The pairs of rows start..stop of the pool with earlier rows, as a table. Only when `shards_pairs`."""
        raise NotImplementedError(f"{type(self).__name__} does not search pairs by shard")

    def with_pairs(self, inputs: Any, pairs: pd.DataFrame, positions: np.ndarray) -> Any:
        """The filter input given the pool's pairs; `positions`: the pool rows `inputs` holds, ascending."""
        raise NotImplementedError(f"{type(self).__name__} does not search pairs by shard")

    @abstractmethod
    def filter_input(self, data: HopData, synthetic: pd.DataFrame, checks: pd.DataFrame) -> Any:
        """What the filters see; must have `subset(index)` (see filtering.FilterInput)."""

    @abstractmethod
    def kept_checks(self, data: HopData, kept: pd.DataFrame) -> tuple[list["Batch"], dict[str, Any]]:
        """Gate batches on the rows filtering kept (with lineage columns), and metrics measured on them."""

    # --- blending --------------------------------------------------------------------------------
    @abstractmethod
    def blend_batches(self, data: HopData, blended: pd.DataFrame) -> list["Batch"]:
        """Record-level checks on the blend (the pipeline adds the real-rows and synthetic-share checks)."""

    # --- evaluation ------------------------------------------------------------------------------
    @abstractmethod
    def evaluate(self, data: HopData, real: pd.DataFrame, kept: pd.DataFrame, blended: pd.DataFrame) -> dict:
        """Downstream utility on the real holdout: keys metric, trtr, tstr, blend, blend_minus_trtr, tstr_ratio."""

    @abstractmethod
    def monitor_input(self, data: HopData, real: pd.DataFrame, kept: pd.DataFrame,
                      evaluation: dict) -> "MonitorInput": ...

    # --- report ----------------------------------------------------------------------------------
    @abstractmethod
    def summary_figures(self, verification: dict) -> dict[str, Any]:
        """The headline verification figures of a published version."""

    @abstractmethod
    def report_sections(self, data: HopData, real: pd.DataFrame, synth: pd.DataFrame,
                        published_ids: set) -> list[tuple[str, str]]:
        """(heading, HTML) sections specific to this modality."""
