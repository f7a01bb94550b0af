"""Third-party generator classes for tests, importable as `plugin_generators:<Class>` (tests/ is on sys.path).

Nothing here is imported unless a test registers it (allow-list or entry point): spec validation refuses
unregistered import paths before importing them.
"""
from __future__ import annotations

import pandas as pd

IMPORTED = []  # a test checks that an unregistered name never imports this module


IMPORTED.append(__name__)


class ResampleGenerator:
    """A minimal well-behaved plug-in: fits by keeping the rows, samples them with replacement."""

    family = "resample"

    def __init__(self, noise: float = 0.0):
        self.noise = noise

    def fit(self, data: pd.DataFrame, profile=None) -> "ResampleGenerator":
        self.rows_ = data.reset_index(drop=True)
        return self

    def sample(self, n: int, seed: int) -> pd.DataFrame:
        return self.rows_.sample(n, replace=True, random_state=seed % 2**32).reset_index(drop=True)


class ListSampler(ResampleGenerator):
    """Samples a list of dicts instead of a DataFrame."""

    def sample(self, n: int, seed: int):
        return super().sample(n, seed).to_dict("records")


class NeedsAModel:
    """A constructor that requires a param the spec does not give."""

    def __init__(self, model_path: str):
        self.model_path = model_path

    def fit(self, data, profile=None):
        return self

    def sample(self, n, seed):
        raise NotImplementedError
