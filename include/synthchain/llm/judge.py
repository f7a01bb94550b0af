"""The LLM judge: a rubric prompt, a parsed integer score, a threshold from the spec.

An independent check only if the judge is not the generator: the spec refuses a judge
model that also generates (unless `allow_self_judge` is set), because a policy graded by
its own kind learns to please the grader. Scores go into the per-row checks; the judge
filter drops rows under the threshold with the judge's reason.
"""
from __future__ import annotations

import asyncio
from typing import Any

from .cache import ResponseCache
from .client import ChatClient, ChatRequest
from .endpoint import resolve_endpoint
from .replies import parse_json


class Judge:
    version = "1.0"

    def __init__(self, connection: str, model: str, rubric: str, scale: tuple[int, int] = (1, 5),
                 concurrency: int = 4, max_tokens: int = 96, timeout_s: float = 60.0):
        self.connection, self.model, self.rubric = connection, model, rubric
        self.low, self.high = scale
        self.concurrency, self.max_tokens, self.timeout_s = concurrency, max_tokens, timeout_s
        self.stats_: dict[str, Any] = {}

    def schema(self) -> dict[str, Any]:
        return {"type": "object", "additionalProperties": False, "required": ["score", "reason"],
                "properties": {"score": {"type": "integer", "minimum": self.low, "maximum": self.high},
                               "reason": {"type": "string"}}}

    def messages(self, text: str) -> list[dict[str, str]]:
        return [{"role": "system", "content": "You grade one example for a training dataset against a rubric. Reply "
                                              "with JSON {\"score\": <integer>, \"reason\": <one sentence>}."},
                {"role": "user", "content": f"Rubric: {self.rubric}\nScore from {self.low} (worst) to {self.high} "
                                            f"(best).\n\nExample:\n{text}"}]

    async def ascore(self, texts: list[str], storage=None) -> list[tuple[float | None, str]]:
        cache = ResponseCache(storage) if storage is not None else None
        async with ChatClient(resolve_endpoint(self.connection), self.model, concurrency=self.concurrency,
                              timeout_s=self.timeout_s, cache=cache) as client:
            replies = await client.complete_all([
                ChatRequest(self.messages(t), temperature=0.0, max_tokens=self.max_tokens, seed=0,
                            schema=self.schema(), schema_name="judgement") for t in texts])
        out, malformed = [], 0
        for reply in replies:
            if not reply.ok:
                out.append((None, f"judge request failed: {reply.error}"))
                continue
            value, reason = parse_json(reply.text, self.schema())
            if value is None:
                malformed += 1
                out.append((None, f"judge reply rejected: {reason}"))
            else:
                out.append((float(value["score"]), str(value["reason"])[:300]))
        self.stats_ = {**client.stats.as_dict(), "malformed": malformed}
        return out

    def score(self, texts: list[str], storage=None) -> list[tuple[float | None, str]]:
        return asyncio.run(self.ascore(texts, storage))
