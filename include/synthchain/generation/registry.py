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


def resolve_class(name: str) -> type:
    if name in BUILTIN:
        return BUILTIN[name]
    if ":" not in name:
        raise GeneratorError(
            f"unknown generator {name!r}: use one of {sorted(BUILTIN)} or an import path 'package.module:Class'"
        )
    module_name, _, attr = name.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise GeneratorError(f"generator {name!r} cannot be imported: {exc}") from None
    if not (callable(getattr(cls, "fit", None)) and callable(getattr(cls, "sample", None))):
        raise GeneratorError(f"generator {name!r} has no fit/sample methods")
    return cls


def family_of(name: str) -> str:
    return getattr(resolve_class(name), "family", "custom")


def effective_params(spec: GeneratorSpec) -> dict[str, Any]:
    """Version defaults overlaid with the spec's params (what actually runs; hashed in provenance)."""
    cls = resolve_class(spec.name)
    versions = getattr(cls, "VERSIONS", {})
    if spec.name in BUILTIN and spec.version not in versions:
        raise GeneratorError(
            f"generator {spec.name!r} has no version {spec.version!r}; known versions: {sorted(versions)}"
        )
    return {**versions.get(spec.version, {}), **spec.params}


def build_generator(spec: GeneratorSpec) -> Any:
    cls = resolve_class(spec.name)
    params = effective_params(spec)
    try:
        return cls(**params)
    except TypeError as exc:
        raise GeneratorError(f"generator {spec.key}: bad params {params}: {exc}") from None
