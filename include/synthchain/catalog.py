"""Built-in generators and their versions, without importing them.

Kept import-light because the DAG factory reads it at parse time (for the Params
form) and must not pull in scikit-learn for that.
"""
from __future__ import annotations

from typing import Any

#: name -> (family, {version label -> default params})
BUILTIN_GENERATORS: dict[str, tuple[str, dict[str, dict[str, Any]]]] = {
    "gaussian_copula": ("copula", {
        "1.0": {"marginal_knots": 256, "shrinkage": 0.0},
        "1.1": {"marginal_knots": 1024, "shrinkage": 0.0},
    }),
    "cart": ("cart", {
        "1.0": {"min_samples_leaf": 5, "max_depth": None, "smoothing": False},
        "1.1": {"min_samples_leaf": 10, "max_depth": 20, "smoothing": True},
    }),
    # text
    "kn_ngram": ("ngram", {
        "1.0": {"order": 3, "discount": 0.75, "temperature": 1.0},
        "1.1": {"order": 4, "discount": 0.75, "temperature": 0.9},
    }),
    # text, through an OpenAI-compatible endpoint (connection and model come from the spec's params)
    "openai_compatible": ("llm", {
        "1.0": {"strategy": "self_instruct", "temperature": 0.8, "few_shot": 3, "max_tokens": 192},
        "1.1": {"strategy": "self_instruct", "temperature": {"from": 0.5, "to": 1.0}, "few_shot": 4,
                "max_tokens": 192},
    }),
}


def builtin_versions(name: str) -> list[str]:
    return sorted(BUILTIN_GENERATORS[name][1]) if name in BUILTIN_GENERATORS else []
