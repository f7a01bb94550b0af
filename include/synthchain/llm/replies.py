"""A model's JSON reply, parsed and validated against the schema it was asked for (strategies, judge)."""
from __future__ import annotations

import json
import re
from typing import Any

import jsonschema


def parse_json(text: str, schema: dict[str, Any]) -> tuple[dict | None, str | None]:
    """The reply as a validated object, or (None, reason). Tolerates a ```json fence around the object."""
    body = text.strip()
    fence = re.match(r"^```(?:json)?\s*(.*?)\s*```$", body, re.S)
    if fence:
        body = fence.group(1)
    try:
        value = json.loads(body, strict=False)  # raw newlines inside strings: small models write code that way
    except json.JSONDecodeError as exc:
        return None, f"not JSON ({exc.msg} at char {exc.pos})"
    try:
        jsonschema.validate(value, schema)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "reply"
        return None, f"schema: {where}: {exc.message[:120]}"
    return value, None
