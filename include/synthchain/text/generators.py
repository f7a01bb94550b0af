"""Text generators: the batched, asynchronous contract and the offline n-gram built-in.

`sample(n, seed)` plans n requests (labels apportioned by the real label shares, one
derived seed per request) and runs them in batches. `sample(n, seed, conditions=...)` aims at a
slice: conditions on the label column choose the labels planned (in their real shares), so a
rare label is written for, not fished out of the whole distribution; conditions on other columns
choose the real seeds a generator that shows seeds draws from, and every row is checked against
the whole slice afterwards (generators.sample_in_slice). A generator that calls a model
over the network overrides the coroutine `agenerate(batch)` and sets
`max_concurrency`; a local one overrides `generate(batch)`. A failed request is kept
with its reason (`failures_`), never turned into an empty row.
"""
from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..catalog import BUILTIN_GENERATORS
from ..generators import Generator, GeneratorError
from ..seeds import derive_seed
from ..targets import Condition
from .ngram import KneserNeyLM, detokenize
from .profile import TextProfile


@dataclass
class TextRequest:
    index: int  # position in the sample
    seed: int  # this request's own seed
    label: str | None  # the label to write for (None when the spec has no labels)
    attempt: int = 0  # k-th candidate for the same prompt (rejection sampling)
    payload: dict[str, Any] | None = None  # what else the request is about (a seed record, a problem)


@dataclass
class TextResult:
    fields: dict[str, str] | None  # role -> text; None when the request failed
    error: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)  # e.g. model, temperature, attempt
    columns: dict[str, Any] = field(default_factory=dict)  # non-text columns copied from the request (task id, tests)


#: per-record provenance a generator may report; stored as `_sc_<name>` lineage columns next to each row
META_COLUMNS = ("model", "strategy", "temperature", "attempt", "revised")


def apportion(shares: dict[str, float], n: int, seed: int) -> list[str | None]:
    """n labels in real proportions (largest remainder), in a seeded order."""
    if not shares:
        return [None] * n
    labels = sorted(shares)
    raw = np.array([shares[k] for k in labels]) * n
    counts = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - counts), kind="stable")[: n - counts.sum()]:
        counts[i] += 1
    out = np.repeat(np.array(labels, dtype=object), counts)
    return np.random.default_rng(seed).permutation(out).tolist()


class TextGenerator(Generator):
    """fit(real records, TextProfile) / sample(n, seed[, conditions]) -> records with the profile's columns."""

    batch_size: int = 256
    max_concurrency: int = 1
    can_condition = True  # on the label column; other conditions are verified by rejection

    def fit(self, data: pd.DataFrame, profile: TextProfile) -> "TextGenerator":
        self.profile_ = profile
        self.columns_ = profile.columns
        # the label column's own values, so that a condition compares like with like (labels are str in the profile)
        self.label_values_ = {str(v): v for v in data[profile.label_column].dropna().unique()} \
            if profile.label_column else {}
        return self._fit(data, profile)

    def label_shares(self, conditions: tuple[Condition, ...] = ()) -> dict[str, float]:
        """The real label shares, kept to the labels the conditions on the label column allow."""
        shares = self.profile_.labels
        on_label = [c for c in conditions if c.column == self.profile_.label_column]
        if not on_label or not shares:
            return shares
        values = pd.DataFrame({self.profile_.label_column: [self.label_values_.get(k, k) for k in sorted(shares)]})
        allowed = np.ones(len(values), dtype=bool)
        for condition in on_label:
            allowed &= condition.mask(values)
        kept = {k: shares[k] for k, ok in zip(sorted(shares), allowed) if ok}
        if not kept:
            rule = " and ".join(c.words() for c in on_label)
            raise GeneratorError(f"no label of {sorted(shares)} meets {rule}")
        total = sum(kept.values())
        return {k: v / total for k, v in kept.items()}

    def _fit(self, data: pd.DataFrame, profile: TextProfile) -> "TextGenerator":
        return self

    def generate(self, batch: list[TextRequest]) -> list[TextResult]:
        raise NotImplementedError(f"{type(self).__name__} implements neither generate nor agenerate")

    async def agenerate(self, batch: list[TextRequest]) -> list[TextResult]:
        """Local generators run in a worker thread so that batches of remote ones can overlap."""
        return await asyncio.to_thread(self.generate, batch)

    def plan(self, n: int, seed: int, conditions: tuple[Condition, ...] = ()) -> list[TextRequest]:
        labels = apportion(self.label_shares(conditions), n, derive_seed(seed, "labels"))
        return [TextRequest(i, derive_seed(seed, i), label) for i, label in enumerate(labels)]

    async def asample(self, n: int, seed: int, conditions: tuple[Condition, ...] = ()) -> pd.DataFrame:
        self._check_fitted()
        requests = self.plan(n, seed, tuple(conditions))
        limit = asyncio.Semaphore(self.max_concurrency)

        async def run(batch):
            async with limit:
                return await self.agenerate(batch)

        batches = [requests[i:i + self.batch_size] for i in range(0, len(requests), self.batch_size)]
        results = [r for part in await asyncio.gather(*(run(b) for b in batches)) for r in part]
        return self._to_frame(requests, results)

    def sample(self, n: int, seed: int, conditions: tuple[Condition, ...] = ()) -> pd.DataFrame:
        return asyncio.run(self.asample(n, seed, tuple(conditions)))

    def _to_frame(self, requests: list[TextRequest], results: list[TextResult]) -> pd.DataFrame:
        profile = self.profile_
        rows, self.failures_ = [], []
        for request, result in zip(requests, results):
            if result.fields is None:
                # what the request was about (e.g. its problem's id), so that a rejected candidate still counts
                context = {k: v for k, v in result.columns.items() if len(str(v)) <= 200}
                self.failures_.append({"index": request.index, "label": request.label, "attempt": request.attempt,
                                       "error": result.error, "model": result.meta.get("model"),
                                       "context": json.dumps(context, default=str)})
                continue
            row = {col: result.fields.get(role, "") for role, col in profile.roles.items()}
            if profile.label_column:  # a labelling strategy (distillation) returns its own label
                row[profile.label_column] = result.fields.get("_label", request.label)
            row.update(result.columns)
            row.update({f"_sc_{k}": result.meta[k] for k in META_COLUMNS if k in result.meta})
            rows.append(row)
        frame = pd.DataFrame(rows)
        return frame.reindex(columns=list(dict.fromkeys(profile.columns + list(frame.columns))))


class NgramTextGenerator(TextGenerator):
    """Per-label word n-gram models with interpolated Kneser-Ney smoothing (offline, deterministic).

    One model per (label, text field). Texts are held within the real token-length band
    (0.5% to 99.5% quantiles): `</s>` is refused before the low end and sampling stops at the
    high end, so that the length check judges content, not a known bias of n-gram sampling
    (short texts: `</s>` is likely after any sentence end).
    """

    family, VERSIONS = BUILTIN_GENERATORS["kn_ngram"]
    # Lock-step sampling pays a fixed numpy cost per step (up to max_tokens steps), so a group of a few
    # hundred texts runs at a fifth of the rate of a few thousand; a shard (5000 rows by default) is one batch.
    batch_size = 10_000

    def __init__(self, order: int = 3, discount: float = 0.75, temperature: float = 1.0, min_count: int = 1):
        super().__init__(order=order, discount=discount, temperature=temperature, min_count=min_count)
        if temperature <= 0:
            raise GeneratorError(f"kn_ngram: temperature must be > 0, got {temperature}")
        self.order, self.discount, self.temperature, self.min_count = order, discount, temperature, min_count

    def _fit(self, data: pd.DataFrame, profile: TextProfile) -> "NgramTextGenerator":
        groups = data.groupby(profile.label_column, sort=True) if profile.label_column else [(None, data)]
        self.models_: dict[tuple[str | None, str], KneserNeyLM] = {}
        for label, part in groups:
            for role, col in profile.roles.items():
                model = KneserNeyLM(order=self.order, discount=self.discount, min_count=self.min_count)
                # tokenised chunk by chunk inside fit_texts: a million texts' token lists are never all held
                self.models_[(None if label is None else str(label), role)] = model.fit_texts(part[col])
        self.max_tokens_ = {role: max(1, int(profile.lengths[col]["q995"])) for role, col in profile.roles.items()}
        self.min_tokens_ = {role: max(1, int(np.ceil(profile.lengths[col]["q005"]))) for role, col in profile.roles.items()}
        return self

    def generate(self, batch: list[TextRequest]) -> list[TextResult]:
        # One lock-step call per (label, field): the model samples a whole group at once.
        out: list[TextResult | None] = [None] * len(batch)
        by_label: dict[str | None, list[int]] = {}
        for i, request in enumerate(batch):
            by_label.setdefault(request.label, []).append(i)
        for label, positions in by_label.items():
            seed = derive_seed(*(batch[i].seed for i in positions))
            texts = {role: self.models_[(label, role)].generate(
                len(positions), seed=derive_seed(seed, role), temperature=self.temperature,
                max_tokens=self.max_tokens_[role], min_tokens=self.min_tokens_[role]) for role in self.profile_.roles}
            for k, i in enumerate(positions):
                fields = {role: detokenize(texts[role][k]) for role in texts}
                out[i] = TextResult(fields, meta={"temperature": self.temperature})
        return out  # type: ignore[return-value]


BUILTIN: dict[str, type[Generator]] = {"kn_ngram": NgramTextGenerator}
