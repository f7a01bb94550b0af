"""Generation: built-in generator families and the fit/sample contract."""
from .base import Generator, GeneratorError, derive_seed
from .cart import CartGenerator
from .copula import GaussianCopulaGenerator
from .registry import BUILTIN, build_generator, effective_params, family_of, resolve_class

__all__ = [
    "BUILTIN", "CartGenerator", "GaussianCopulaGenerator", "Generator", "GeneratorError",
    "build_generator", "derive_seed", "effective_params", "family_of", "resolve_class",
]
