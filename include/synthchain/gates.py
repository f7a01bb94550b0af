"""Quality gates: a Great Expectations (GX Core 1.x) validation after every hop.

Suites are plain lists of `{"type": ..., "kwargs": ...}` so they are JSON, kept
with the run and readable without GX; `run_gate` turns them into GX expectations,
validates each batch through a checkpoint (which also builds GX's HTML data
docs) and reports every failed expectation with what was observed.
"""
from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TQDM_DISABLE", "1")
log = logging.getLogger(__name__)

Expectation = dict[str, Any]


def expect(type_: str, **kwargs: Any) -> Expectation:
    return {"type": type_, "kwargs": kwargs}


@dataclass
class Batch:
    """One frame to validate and the expectations it must meet."""

    name: str
    frame: pd.DataFrame
    expectations: list[Expectation]


@dataclass
class GateResult:
    hop: str
    suite_name: str
    success: bool
    evaluated: int
    failures: list[dict] = field(default_factory=list)
    docs_dir: str | None = None
    project_dir: str | None = None  # the temporary GX project; the caller removes it once docs are copied

    def message(self) -> str:
        if self.success:
            return f"gate '{self.hop}' passed ({self.evaluated} expectations)"
        lines = [f"gate '{self.hop}' failed {len(self.failures)} of {self.evaluated} expectations:"]
        lines += [f"  - {f['description']}" for f in self.failures]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return asdict(self)


class GateFailed(RuntimeError):
    """A hop's output did not meet its suite; the batch has been quarantined."""

    def __init__(self, result: GateResult, quarantine_uri: str | None = None):
        self.result = result
        self.quarantine_uri = quarantine_uri
        suffix = f"\nbatch quarantined at {quarantine_uri}" if quarantine_uri else ""
        super().__init__(result.message() + suffix)


# --- suites ---------------------------------------------------------------------------


def metrics_frame(metrics: dict[str, Any]) -> pd.DataFrame:
    """A one-row frame of scalar metrics, so thresholds become GX expectations."""
    return pd.DataFrame([{k: v for k, v in metrics.items() if isinstance(v, (int, float, bool)) and v is not None}])


def threshold(column: str, min_value: float | None = None, max_value: float | None = None) -> Expectation:
    return expect("expect_column_values_to_be_between", column=column, min_value=min_value, max_value=max_value)


# --- validation --------------------------------------------------------------------------

def _gx_expectation(spec: Expectation):
    import great_expectations as gx

    class_name = "".join(part.capitalize() for part in spec["type"].split("_"))
    cls = getattr(gx.expectations, class_name, None)
    if cls is None:
        raise ValueError(f"unknown GX expectation {spec['type']!r}")
    return cls(**spec["kwargs"])


def _describe(hop: str, batch: str, spec: dict, result: dict) -> str:
    kwargs = ", ".join(f"{k}={v!r}" for k, v in spec["kwargs"].items()
                       if k not in ("value_set", "column_set") or len(str(v)) < 80)
    if result.get("partial_missing_list"):
        observed = f"missing {result['partial_missing_list']!r}"
    elif result.get("observed_value") is not None:
        observed = f"observed {result['observed_value']!r}"
    elif result.get("element_count") == 1 and result.get("partial_unexpected_list"):
        observed = f"observed {result['partial_unexpected_list'][0]!r}"  # a one-row metrics batch
    elif "unexpected_percent" in result:
        sample = result.get("partial_unexpected_list", [])[:5]
        observed = f"observed {result['unexpected_percent']:.2f}% unexpected ({result.get('unexpected_count')} rows, e.g. {sample})"
    elif result.get("details"):
        observed = f"observed {result['details']}"
    else:
        observed = f"observed {result}"
    return f"[{hop}/{batch}] {spec['type']}({kwargs}): {observed}"


GX_LOGGER = "great_expectations"


@contextmanager
def quiet_gx(level: int = logging.WARNING) -> Iterator[None]:
    """GX's own loggers (`great_expectations` and below) drop records under `level` for the block, then are restored.

    Importing GX logs ~200 INFO lines ("Skipping registering function ...", from
    `great_expectations._docs_decorators`) and thousands at DEBUG (metric registry,
    fluent datasources), and a gate logs ~100 more; Airflow's task logging sends
    every stdlib record that passes its logger's level to the root handler (a
    structlog ProcessorFormatter), so the level of GX's loggers is what keeps them
    out of the task log. The import happens inside the block, so its chatter is
    covered too; a GX module that pins its own logger's level
    (`data_context.types.base` sets INFO) only exists after it, hence the second pass.
    Other loggers, synthchain's included, are not touched.
    """
    saved: dict[str, int] = {}

    def lower_levels() -> None:
        manager = logging.Logger.manager
        names = [GX_LOGGER] + [name for name, obj in list(manager.loggerDict.items())
                               if name.startswith(GX_LOGGER + ".") and isinstance(obj, logging.Logger)]
        for name in names:
            logger = logging.getLogger(name)
            # the parent gets `level` unless set stricter; a child only when it pins a laxer level of its own
            if (logger.level == logging.NOTSET and name != GX_LOGGER) or logger.level >= level:
                continue
            saved.setdefault(name, logger.level)
            logger.setLevel(level)

    lower_levels()
    try:
        import great_expectations  # noqa: F401  (the first import is the chattiest part)

        lower_levels()
        yield
    finally:
        for name, old in saved.items():
            logging.getLogger(name).setLevel(old)


def run_gate(hop: str, batches: list[Batch], workdir: str | Path | None = None) -> GateResult:
    """Validate every batch with GX in a fresh file-backed project (so GX builds data docs).

    A fresh project per call keeps retries independent of whatever an earlier
    attempt left behind; the caller copies `docs_dir` where it keeps run artefacts.
    GX's own logging is held at WARNING meanwhile (see `quiet_gx`).
    """
    with quiet_gx():
        return _run_gate(hop, batches, workdir)


def _run_gate(hop: str, batches: list[Batch], workdir: str | Path | None) -> GateResult:
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction
    from great_expectations.data_context.types.base import ProgressBarsConfig

    suite_name = f"synthchain_{hop}"
    root = Path(tempfile.mkdtemp(prefix=f"gx-{hop}-", dir=workdir))
    context = gx.get_context(mode="file", project_root_dir=str(root))
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_pandas(suite_name)
    failures: list[dict] = []
    evaluated = 0
    for batch in batches:
        name = re.sub(r"[^A-Za-z0-9_]", "_", f"{hop}_{batch.name}")
        definition = source.add_dataframe_asset(name).add_batch_definition_whole_dataframe(name)
        suite = context.suites.add(gx.ExpectationSuite(
            name=name, expectations=[_gx_expectation(e) for e in batch.expectations]))
        validation = context.validation_definitions.add(gx.ValidationDefinition(name=name, data=definition, suite=suite))
        checkpoint = context.checkpoints.add(gx.Checkpoint(
            name=name, validation_definitions=[validation],
            actions=[UpdateDataDocsAction(name="data_docs")], result_format="SUMMARY"))
        run = checkpoint.run(batch_parameters={"dataframe": batch.frame})
        for validation_result in run.run_results.values():
            for res in validation_result.results:
                evaluated += 1
                if res.success:
                    continue
                config = res.expectation_config
                spec = {"type": config.type, "kwargs": {k: v for k, v in config.kwargs.items() if k != "batch_id"}}
                result = dict(res.result or {})
                if res.exception_info and res.exception_info.get("raised_exception"):
                    result = {"details": res.exception_info.get("exception_message")}
                failures.append({
                    "batch": batch.name, "expectation": config.type, "column": spec["kwargs"].get("column"),
                    "kwargs": _jsonable(spec["kwargs"]), "observed": _jsonable(_observed(result)),
                    "description": _describe(hop, batch.name, spec, result),
                })
    docs = root / "gx" / "uncommitted" / "data_docs" / "local_site"
    return GateResult(hop, suite_name, not failures, evaluated, failures, str(docs) if docs.exists() else None,
                      str(root))


def _observed(result: dict) -> Any:
    if result.get("element_count") == 1 and result.get("partial_unexpected_list"):
        return result["partial_unexpected_list"][0]
    if result.get("partial_missing_list"):
        return {"missing": result["partial_missing_list"]}
    for key in ("observed_value", "unexpected_percent", "details"):
        if key in result:
            return result[key]
    return result


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
