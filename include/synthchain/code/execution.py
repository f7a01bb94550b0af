"""The execution verifier: a candidate passes when the problem's tests run clean in the sandbox."""
from __future__ import annotations

import pandas as pd

from ..sandbox import run_many


def program(solution: str, test: str, entry_point: str) -> str:
    """The candidate, then the problem's tests, then the call that runs them (HumanEval's `check`)."""
    return f"{solution}\n\n{test}\n\ncheck({entry_point})\n"


def execute(frame: pd.DataFrame, solution_col: str, test_col: str, entry_col: str, *, timeout_s: float,
            memory_mb: int, workers: int = 2) -> pd.DataFrame:
    """Per-row verdict (ok / error / timeout / memory / killed), passed flag and the captured error."""
    sources = [program(s, t, e) for s, t, e in zip(frame[solution_col], frame[test_col], frame[entry_col])]
    verdicts = run_many(sources, max_workers=workers, timeout=timeout_s, memory_mb=memory_mb) if sources else []
    return pd.DataFrame({
        "verdict": [v.status for v in verdicts],
        "passed": [v.status == "ok" for v in verdicts],
        "exec_error": [(v.error or "")[:300] for v in verdicts],
        "exec_seconds": [v.wall_s for v in verdicts],
    }, index=frame.index)
