"""Generators, for every modality: the contract and the registry that turns a spec entry into one.

The contract is scikit-learn's / SDV's: construct with params, `fit(data, profile)` on a frame and the
modality's profile, `sample(n, seed)` returns n new rows with the same columns; the same fitted generator
and seed give the same rows. Each modality passes its own built-ins (`builtin`: name -> class) to the
registry; a name that is not a built-in must be a registered third-party generator (plugins.py).

A generator that can aim at a slice (`can_condition`) also takes `sample(n, seed, conditions=...)`;
`sample_in_slice` uses that where it exists and rejection sampling everywhere else.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Sequence

import numpy as np
import pandas as pd

from .plugins import GeneratorNotAllowed, check_registered, load_registered
from .seeds import derive_seed
from .specs import GeneratorSpec
from .targets import Condition


class GeneratorError(ValueError):
    pass


class Generator(ABC):
    family: ClassVar[str] = "custom"
    #: version label -> default params; a built-in refuses versions it does not know.
    VERSIONS: ClassVar[dict[str, dict[str, Any]]] = {}
    #: True when `sample(n, seed, conditions=())` draws inside a slice: it returns at most n rows, all meant to
    #: meet every condition (fewer when the model cannot place some), and with `conditions=()` exactly what
    #: `sample(n, seed)` returns.
    can_condition: ClassVar[bool] = False

    def __init__(self, **params: Any):
        self.params = params
        self.columns_: list[str] | None = None

    def condition_on(self, columns: Sequence[str]) -> None:
        """Called before `fit` in a targeted run with the columns its slices condition on, so a generator that
        models columns in an order can put them first (CART: exact conditioning there). Default: nothing."""

    @abstractmethod
    def fit(self, data: pd.DataFrame, profile: Any) -> "Generator": ...

    @abstractmethod
    def sample(self, n: int, seed: int) -> pd.DataFrame: ...

    def _check_fitted(self) -> None:
        if self.columns_ is None:
            raise GeneratorError(f"{type(self).__name__} must be fitted before sampling")


def resolve_class(name: str, builtin: dict[str, type]) -> type:
    """A built-in of the modality (`builtin`), or a registered third-party generator.

    Third-party names are checked against the registry (entry points, allow-list) before any import.
    """
    if name in builtin:
        return builtin[name]
    from .catalog import BUILTIN_GENERATORS

    if name in BUILTIN_GENERATORS:
        raise GeneratorError(f"generator {name!r} is a built-in of another modality; here: {sorted(builtin)}")
    try:
        check_registered(name, frozenset(builtin))
        cls = load_registered(name)
    except GeneratorNotAllowed as exc:
        raise GeneratorError(str(exc)) from None
    if not (callable(getattr(cls, "fit", None)) and callable(getattr(cls, "sample", None))):
        raise GeneratorError(f"generator {name!r} has no fit/sample methods")
    return cls


def family_of(name: str, builtin: dict[str, type]) -> str:
    return getattr(resolve_class(name, builtin), "family", "custom")


def effective_params(spec: GeneratorSpec, builtin: dict[str, type]) -> dict[str, Any]:
    """Version defaults overlaid with the spec's params (what actually runs; hashed in provenance)."""
    cls = resolve_class(spec.impl, builtin)
    versions = getattr(cls, "VERSIONS", {})
    if spec.impl in builtin and spec.version not in versions:
        raise GeneratorError(
            f"generator {spec.name!r} ({spec.impl}) has no version {spec.version!r}; known versions: {sorted(versions)}"
        )
    return {**versions.get(spec.version, {}), **spec.params}


def build_generator(spec: GeneratorSpec, builtin: dict[str, type]) -> Any:
    cls = resolve_class(spec.impl, builtin)
    params = effective_params(spec, builtin)
    try:
        return cls(**params)
    except GeneratorError:
        raise
    except Exception as exc:  # noqa: BLE001 - a constructor refusing its params: name them, no traceback
        raise GeneratorError(f"generator {spec.key} ({spec.impl}) refused its params {_short(params)}: "
                             f"{type(exc).__name__}: {_first_line(exc)}") from None


def fit_generator(model: Any, spec: GeneratorSpec, data, profile) -> Any:
    """`model.fit(data, profile)`; a generator that cannot take the frame fails naming itself, no traceback.

    Third-party estimators (and built-ins on data they cannot model) raise anything from deep inside
    numpy or scikit-learn; the run only needs which generator failed and why.
    """
    try:
        fitted = model.fit(data, profile)
    except GeneratorError:
        raise
    except MemoryError:
        raise GeneratorError(f"generator {spec.key} ({spec.impl}) ran out of memory fitting {len(data):,} rows "
                             f"x {data.shape[1]} columns") from None
    except Exception as exc:  # noqa: BLE001
        raise GeneratorError(f"generator {spec.key} ({spec.impl}) cannot fit the training rows "
                             f"({len(data):,} x {data.shape[1]}): {type(exc).__name__}: {_first_line(exc)}") from None
    return model if fitted is None else fitted


def sample_generator(model: Any, spec: GeneratorSpec, n: int, seed: int, conditions: Sequence[Condition] = ()):
    """`model.sample(n, seed=seed)` as a DataFrame (with `conditions=` when given); anything else fails naming
    the generator."""
    try:
        rows = model.sample(n, seed=seed, conditions=tuple(conditions)) if conditions else model.sample(n, seed=seed)
    except GeneratorError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise GeneratorError(f"generator {spec.key} ({spec.impl}) failed to sample {n:,} rows: "
                             f"{type(exc).__name__}: {_first_line(exc)}") from None
    if not isinstance(rows, pd.DataFrame):
        raise GeneratorError(f"generator {spec.key} ({spec.impl}): sample() returned {type(rows).__name__}, "
                             "not a pandas DataFrame")
    return rows


def sample_in_slice(model: Any, spec: GeneratorSpec, n: int, seed: int, conditions: Sequence[Condition],
                    max_draws: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    """min(n, accepted) rows that meet every condition, and how they were found.

    A model that can condition draws inside the slice; one that cannot draws from its whole distribution and
    the rows outside are rejected. Either way every row is checked (a generator's promise is verified, never
    trusted), and short draws are topped up with derived seeds, each batch sized by the acceptance so far,
    until n rows are accepted or `max_draws` rows have been drawn. The first batch uses `seed` itself, so a
    slice every row meets gives exactly `sample_generator(model, spec, n, seed)`.
    """
    conditions = tuple(conditions)
    conditioned = bool(getattr(model, "can_condition", False))
    kept: list[pd.DataFrame] = []
    drawn = accepted = batch_no = 0
    while accepted < n and drawn < max_draws:
        size = min(_batch_size(n - accepted, accepted, drawn), max_draws - drawn)
        batch_seed = seed if batch_no == 0 else derive_seed(seed, "top-up", batch_no)
        rows = sample_generator(model, spec, size, batch_seed, conditions if conditioned else ())
        rows = rows[_meets(rows, conditions, spec)]
        kept.append(rows)
        drawn, accepted, batch_no = drawn + size, accepted + len(rows), batch_no + 1
    out = pd.concat(kept, ignore_index=True).head(n) if kept else pd.DataFrame()
    return out, {"method": "conditioned" if conditioned else "rejection", "requested": n, "drawn": drawn,
                 "accepted": accepted, "acceptance_rate": accepted / drawn if drawn else 0.0}


def _batch_size(needed: int, accepted: int, drawn: int) -> int:
    """Rows to draw for `needed` more at the acceptance seen so far (10% spare so one batch usually does it).

    Before any row is accepted the rate is at most 1/drawn, so an empty slice's batches grow geometrically."""
    if not drawn:
        return needed
    return math.ceil(1.1 * needed * drawn / max(accepted, 1))


def _meets(rows: pd.DataFrame, conditions: tuple[Condition, ...], spec: GeneratorSpec) -> np.ndarray:
    keep = np.ones(len(rows), dtype=bool)
    for condition in conditions:
        if condition.column not in rows.columns:
            raise GeneratorError(f"generator {spec.key} ({spec.impl}) sampled no column {condition.column!r}, "
                                 f"which the slice ({condition.words()}) needs")
        keep &= condition.mask(rows)
    return keep


def _first_line(exc: BaseException, limit: int = 300) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else "")[:limit]


def _short(params: dict, limit: int = 200) -> str:
    text = repr(params)
    return text if len(text) <= limit else text[:limit] + "…"
