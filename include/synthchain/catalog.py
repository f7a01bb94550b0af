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


#: the version a spec gets when it names a built-in by default: the released one the shipped specs' main lines
#: use (a newer label is tried as a candidate line first; promoting it means changing it here)
CURRENT_VERSIONS: dict[str, str] = {"gaussian_copula": "1.0", "cart": "1.0", "kn_ngram": "1.0",
                                    "openai_compatible": "1.0"}

#: modality -> the built-ins a spec without `generators` gets (equal weights). Code has none: its solutions
#: come from an LLM behind a connection the spec must name.
DEFAULT_GENERATORS: dict[str, tuple[str, ...]] = {"tabular": ("gaussian_copula", "cart"), "text": ("kn_ngram",)}


def default_generators(modality: str) -> list[dict[str, Any]]:
    """Generator entries for a spec that lists none: [] when the modality has no default."""
    return [{"name": name, "version": CURRENT_VERSIONS[name]} for name in DEFAULT_GENERATORS.get(modality, ())]


# What each built-in's params may be, checked when the spec is validated (before any fit): a bad value fails
# the spec naming the param, instead of failing deep inside scikit-learn or numpy minutes later.
# Types are strict (no `true` as a number); None means "any value of a known name" (checked by the generator).
_PARAM_RULES: dict[str, dict[str, tuple[Any, dict[str, Any]]]] = {
    "gaussian_copula": {
        "marginal_knots": ("int", {"ge": 2, "le": 100_000}),
        "shrinkage": ("float", {"ge": 0.0, "le": 1.0}),
        "discrete_max_values": ("int", {"ge": 1, "le": 1_000_000}),
        "discrete_fraction": ("float", {"ge": 0.0, "le": 1.0}),
    },
    "cart": {
        "min_samples_leaf": ("int", {"ge": 1, "le": 1_000_000}),
        "max_depth": ("int?", {"ge": 1, "le": 1_000}),
        "smoothing": ("bool", {}),
        "visit_sequence": ("names?", {}),
    },
    "kn_ngram": {
        "order": ("int", {"ge": 1, "le": 10}),
        "discount": ("float", {"gt": 0.0, "lt": 1.0}),
        "temperature": ("float", {"gt": 0.0, "le": 10.0}),
        "min_count": ("int", {"ge": 1}),
    },
    "openai_compatible": {name: (None, {}) for name in (
        "connection", "model", "strategy", "temperature", "few_shot", "max_tokens", "concurrency", "timeout_s",
        "deadline_s", "max_retries", "batch_size", "task", "principles", "revise_rounds", "inputs",
        "structured_output")},
}


def check_builtin_params(name: str, params: dict[str, Any]) -> None:
    """ValueError naming the first param of built-in `name` that is unknown or out of range."""
    rules = _PARAM_RULES.get(name)
    if rules is None:
        return
    from pydantic import Field, StrictBool, StrictFloat, StrictInt, StrictStr, ValidationError, create_model

    types = {"int": StrictInt, "int?": StrictInt | None, "float": StrictFloat | StrictInt, "bool": StrictBool,
             "names?": list[StrictStr] | None, None: Any}
    unknown = sorted(set(params) - set(rules))
    if unknown:
        raise ValueError(f"{name} has no param(s) {unknown}; its params are {sorted(rules)}")
    fields = {key: (types[kind], Field(..., allow_inf_nan=False, **limits) if kind in ("float",) else
                    Field(..., **limits)) for key, (kind, limits) in rules.items() if key in params}
    model = create_model(f"{name}_params", **fields)
    try:
        model.model_validate(params)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = str(err["loc"][0])  # the param (a union type adds its member's name after it)
        raise ValueError(f"{name} param {loc!r}: {err['msg']}, got {params.get(err['loc'][0])!r}"[:300]) from None
