"""Resolve a spec's generator entry to a generator instance."""
from __future__ import annotations

import importlib
from typing import Any

from ..specs import GeneratorSpec
from .base import Generator, GeneratorError
from .cart import CartGenerator
from .copula import GaussianCopulaGenerator

BUILTIN: dict[str, type[Generator]] = {
    "gaussian_copula": GaussianCopulaGenerator,
    "cart": CartGenerator,
}


def resolve_class(name: str, builtin: dict[str, type] | None = None) -> type:
    """A built-in of the modality (`builtin`, tabular's by default) or an import path 'package.module:Class'."""
    builtin = BUILTIN if builtin is None else builtin
    if name in builtin:
        return builtin[name]
    if ":" not in name:
        raise GeneratorError(
            f"unknown generator {name!r}: use one of {sorted(builtin)} or an import path 'package.module:Class'"
        )
    module_name, _, attr = name.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise GeneratorError(f"generator {name!r} cannot be imported: {exc}") from None
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
    except TypeError as exc:
        raise GeneratorError(f"generator {spec.key}: bad params {params}: {exc}") from None
