"""Generators, for every modality: the contract and the registry that turns a spec entry into one.

The contract is scikit-learn's / SDV's: construct with params, `fit(data, profile)` on a frame and the
modality's profile, `sample(n, seed)` returns n new rows with the same columns; the same fitted generator
and seed give the same rows. Each modality passes its own built-ins (`builtin`: name -> class) to the
registry; a name that is not a built-in must be a registered third-party generator (plugins.py).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import pandas as pd

from .plugins import GeneratorNotAllowed, check_registered, load_registered
from .specs import GeneratorSpec


class GeneratorError(ValueError):
    pass


class Generator(ABC):
    family: ClassVar[str] = "custom"
    #: version label -> default params; a built-in refuses versions it does not know.
    VERSIONS: ClassVar[dict[str, dict[str, Any]]] = {}

    def __init__(self, **params: Any):
        self.params = params
        self.columns_: list[str] | None = None

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


def sample_generator(model: Any, spec: GeneratorSpec, n: int, seed: int):
    """`model.sample(n, seed=seed)` as a DataFrame; anything else fails naming the generator."""
    try:
        rows = model.sample(n, seed=seed)
    except GeneratorError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise GeneratorError(f"generator {spec.key} ({spec.impl}) failed to sample {n:,} rows: "
                             f"{type(exc).__name__}: {_first_line(exc)}") from None
    if not isinstance(rows, pd.DataFrame):
        raise GeneratorError(f"generator {spec.key} ({spec.impl}): sample() returned {type(rows).__name__}, "
                             "not a pandas DataFrame")
    return rows


def _first_line(exc: BaseException, limit: int = 300) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else "")[:limit]


def _short(params: dict, limit: int = 200) -> str:
    text = repr(params)
    return text if len(text) <= limit else text[:limit] + "…"
