"""Resolve a spec's generator entry to a generator instance."""
from __future__ import annotations

from typing import Any

from ..plugins import GeneratorNotAllowed, check_registered, load_registered
from ..specs import GeneratorSpec
from .base import Generator, GeneratorError
from .cart import CartGenerator
from .copula import GaussianCopulaGenerator

BUILTIN: dict[str, type[Generator]] = {
    "gaussian_copula": GaussianCopulaGenerator,
    "cart": CartGenerator,
}


def resolve_class(name: str, builtin: dict[str, type] | None = None) -> type:
    """A built-in of the modality (`builtin`, tabular's by default), or a registered third-party generator.

    Third-party names are checked against the registry (entry points, allow-list) before any import.
    """
    builtin = BUILTIN if builtin is None else builtin
    if name in builtin:
        return builtin[name]
    from ..catalog import BUILTIN_GENERATORS

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


def family_of(name: str, builtin: dict[str, type] | None = None) -> str:
    return getattr(resolve_class(name, builtin), "family", "custom")


def effective_params(spec: GeneratorSpec, builtin: dict[str, type] | None = None) -> dict[str, Any]:
    """Version defaults overlaid with the spec's params (what actually runs; hashed in provenance)."""
    cls = resolve_class(spec.impl, builtin)
    versions = getattr(cls, "VERSIONS", {})
    if spec.impl in (BUILTIN if builtin is None else builtin) and spec.version not in versions:
        raise GeneratorError(
            f"generator {spec.name!r} ({spec.impl}) has no version {spec.version!r}; known versions: {sorted(versions)}"
        )
    return {**versions.get(spec.version, {}), **spec.params}


def build_generator(spec: GeneratorSpec, builtin: dict[str, type] | None = None) -> Any:
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
    import pandas as pd

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
