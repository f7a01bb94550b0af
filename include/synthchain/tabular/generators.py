"""Tabular built-in generators by name (the spec's `impl`); versions and parameters live in catalog.py."""
from __future__ import annotations

from ..generators import Generator
from .cart import CartGenerator
from .copula import GaussianCopulaGenerator

BUILTIN: dict[str, type[Generator]] = {
    "gaussian_copula": GaussianCopulaGenerator,
    "cart": CartGenerator,
}
