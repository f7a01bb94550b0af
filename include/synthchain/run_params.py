"""Run-time parameters: what a manual trigger, a backfill's conf or the CLI may change, and their bounds.

One table drives both the Airflow trigger form (Params) and the run's own check. The run checks
again because Airflow accepts conf keys that are not Params, and its form clamps some out-of-range
numbers to the bound instead of refusing them: what reaches a run must still make sense.
"""
from __future__ import annotations

import re
from typing import Any

from .modalities import MIN_TARGET_ROWS, MIN_TARGET_ROWS_OTHER

MAX_TARGET_ROWS = 10_000_000
MAX_SEED = 2**31 - 1
VERSION = re.compile(r"^[A-Za-z0-9._-]+$")


def param_schemas(spec) -> dict[str, dict[str, Any]]:
    """JSON-schema per parameter, defaults from the spec (Airflow's Param takes these as keywords)."""
    from .catalog import builtin_versions

    versions = {}
    for gen in spec.generators:
        schema = {"type": "string", "description": f"version of generator {gen.name}", "pattern": VERSION.pattern}
        if builtin_versions(gen.impl):
            schema["enum"] = builtin_versions(gen.impl)
        versions[gen.name] = schema
    return {
        "target_rows": dict(default=spec.target_rows, type="integer",
                            minimum=min(MIN_TARGET_ROWS.get(spec.modality, MIN_TARGET_ROWS_OTHER), spec.target_rows),
                            maximum=MAX_TARGET_ROWS, title="Synthetic rows",
                            description="How many synthetic rows to generate before filtering."),
        "real_fraction": dict(default=spec.blend.real_fraction, type="number", exclusiveMinimum=0, maximum=1,
                              title="Real fraction", description="Share of real rows in the published blend (0–1]."),
        "blend_mode": dict(default=spec.blend.mode, type="string", enum=["accumulate", "replace"], title="Blend mode",
                           description="accumulate carries the previous version's synthetic rows; replace does not."),
        "seed": dict(default=spec.seed, type="integer", minimum=0, maximum=MAX_SEED, title="Seed",
                     description="Mixed into every derived seed; the same seed gives the same rows."),
        "generator_versions": dict(
            default={gen.name: gen.version for gen in spec.generators}, type="object", title="Generator versions",
            description="Version per generator. A different version makes a different dataset version; "
                        "to compare a new version over past dates, list it under the spec's candidates.",
            properties=versions, additionalProperties=False),
    }


class RunParamError(ValueError):
    """A run parameter that is not known or out of its bounds (the spec turns it into a SpecError)."""


def check_overrides(spec, overrides: dict[str, Any]) -> dict[str, Any]:
    """The overrides if every key is a parameter and every value within its bounds; else RunParamError naming it."""
    schemas = param_schemas(spec)
    unknown = sorted(set(overrides) - set(schemas))
    if unknown:
        raise RunParamError(f"{spec.name}: run parameter(s) {unknown} are not known; known: {sorted(schemas)}")
    for key, value in overrides.items():
        if value is None:
            continue
        problem = _problem(key, value, schemas[key], spec)
        if problem:
            raise RunParamError(f"{spec.name}: run parameter '{key}' = {value!r} refused: {problem}")
    return overrides


def _problem(key: str, value: Any, schema: dict, spec) -> str | None:
    kind = schema["type"]
    if kind == "integer" and (isinstance(value, bool) or not isinstance(value, int)):
        return "must be a whole number"
    if kind == "number" and (isinstance(value, bool) or not isinstance(value, (int, float))):
        return "must be a number"
    if kind == "string" and not isinstance(value, str):
        return "must be a string"
    if kind == "object" and not isinstance(value, dict):
        return "must be a mapping of generator name to version"
    if "minimum" in schema and value < schema["minimum"]:
        return f"below the minimum {schema['minimum']}"
    if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
        return f"must be greater than {schema['exclusiveMinimum']}"
    if "maximum" in schema and value > schema["maximum"]:
        return f"above the maximum {schema['maximum']}"
    if "enum" in schema and value not in schema["enum"]:
        return f"must be one of {schema['enum']}"
    if kind == "object":
        unknown = sorted(set(value) - set(schema["properties"]))
        if unknown:
            return f"names generator(s) {unknown} that are not in the spec; known: {sorted(schema['properties'])}"
        for name, version in value.items():
            sub = schema["properties"][name]
            if not isinstance(version, str) or not VERSION.match(version):
                return f"version {version!r} of {name!r} may only hold letters, digits, '.', '_' and '-'"
            if "enum" in sub and version not in sub["enum"]:
                return f"{name!r} has no version {version!r}; built-in versions: {sub['enum']}"
    return None
