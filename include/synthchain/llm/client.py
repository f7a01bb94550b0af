"""Chat completions that survive real endpoints: adaptive concurrency, retries, a deadline, a cache.

Built on the official SDK (`AsyncOpenAI`) with its own retries off: retrying here lets one
place see every outcome, so sustained throttling shrinks the shared concurrency limit (AIMD:
halve when 429s are a large share of the recent answers, once per congestion episode; grow by
1/limit per success, i.e. about one slot per round of successes, held while 429s are recent and
probing slowly past the width last throttled). A lone 429 only makes its own request wait
(`Retry-After`, else backoff): random 429s are not load.

Outcomes: a reply (from the endpoint or the cache) or a failure with its reason. Timeouts,
5xx, dropped connections and unreadable bodies are retried with exponential backoff and full
jitter; other 4xx are final. Nothing is ever turned into an empty reply. A dead endpoint
(connections refused several times in a row, nothing answered in between) opens a circuit
breaker: every pending and later request of the client fails at once with that reason, which
quotes the first refusal.
"""
from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import openai

from .cache import ResponseCache, cache_key
from .endpoint import Endpoint

log = logging.getLogger("synthchain.llm")


@dataclass
class ChatRequest:
    messages: list[dict[str, str]]
    temperature: float = 0.7
    max_tokens: int = 256
    seed: int | None = None
    sample_index: int = 0  # k-th candidate for the same prompt: its own draw and its own cache entry
    schema: dict[str, Any] | None = None  # JSON schema of the reply (structured output)
    schema_name: str = "reply"


@dataclass
class ChatReply:
    text: str | None
    error: str | None = None
    cached: bool = False
    attempts: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.text is not None


class AdaptiveLimit:
    """A concurrency limit that halves under sustained throttling and grows back slowly (AIMD).

    Cut when at least `cut_at` of the last `window` answers (ok or 429) to requests started under the current
    limit were 429s. One 429 says little: servers and gateways also throttle at random, and halving on each one
    cost 3x the wall time of the plain SDK at a 6% random 429 rate (bench/llm_client.py). 6 of 16 (37.5%) leaves a
    random 6% rate about a 4% chance of one cut in 600 answers, while a limit of 5 over a server that serves 3
    (40% throttled) is cut within about three rounds.

    Growth (1/limit per success) holds while any 429 is among the recent answers, and after a cut it stops one
    below the width that was throttled; past that it probes one slot at a time, each after 2 windows of successes
    in a row (servers do gain capacity). Without this the limit climbs back into the same throttling between cuts
    (a server 3 wide: about 65 429s for 80 requests instead of about 45).
    """

    def __init__(self, start: int, minimum: int = 1, maximum: int | None = None, window: int = 16, cut_at: int = 6):
        self.limit = float(max(start, minimum))
        self.minimum, self.maximum, self.cut_at = minimum, maximum or start, cut_at
        self.in_flight, self.epoch, self.cuts, self.lowest = 0, 0, 0, self.limit
        self._recent: deque[bool] = deque(maxlen=window)  # True = throttled, for this epoch's requests only
        self._ceiling, self._clean = float("inf"), 0  # widest limit not yet seen throttled; successes in a row
        self._cond = asyncio.Condition()

    async def acquire(self) -> int:
        async with self._cond:
            await self._cond.wait_for(lambda: self.in_flight < int(self.limit))
            self.in_flight += 1
            return self.epoch

    async def release(self, outcome: str, epoch: int) -> None:
        async with self._cond:
            self.in_flight -= 1
            # Requests started before the last cut report the congestion already acted on: only this epoch's count.
            if epoch == self.epoch and outcome in ("ok", "throttled"):
                self._recent.append(outcome == "throttled")
            if outcome == "throttled":
                self._clean = 0
                if sum(self._recent) >= self.cut_at:
                    self._ceiling = max(self.minimum, int(self.limit) - 1)
                    self.limit = max(self.minimum, self.limit / 2)
                    self.epoch, self.cuts, self.lowest = self.epoch + 1, self.cuts + 1, min(self.lowest, self.limit)
                    self._recent.clear()
            elif outcome == "ok":
                self._clean += 1
                grown = min(self.maximum, self.limit + 1.0 / self.limit)
                if any(self._recent):
                    pass  # some 429s, not enough to cut: hold
                elif int(grown) <= self._ceiling:
                    self.limit = grown
                elif self._clean >= 2 * self._recent.maxlen:  # probe one slot past the last throttled width
                    self.limit, self._ceiling, self._clean = grown, int(grown), 0
            self._cond.notify(max(1, int(self.limit) - self.in_flight))  # wake only as many as may start


def connect_failure(exc: BaseException) -> BaseException | None:
    """The root cause when a call failed before reaching any server (connection refused, host unreachable), else None.

    The SDK raises `APIConnectionError` from `ConnectError` of httpx or httpx2 (whichever it runs on) for a port
    nothing listens on; a reset or a disconnect mid-response is a `ReadError`/`RemoteProtocolError` instead: the
    server was there. Matched by name so both transports count.
    """
    connect, root, e = False, exc, exc.__cause__
    for _ in range(10):  # cause chains are short; a bound guards against cycles
        if e is None:
            break
        connect |= type(e).__name__ == "ConnectError" or isinstance(e, ConnectionRefusedError)
        root, e = e, e.__cause__ or e.__context__
    return root if connect else None


def retry_after(response: Any) -> float | None:
    """Seconds from `Retry-After` (seconds or an HTTP date) or `retry-after-ms`, if the server sent one."""
    headers = getattr(response, "headers", None) or {}
    if headers.get("retry-after-ms"):
        try:
            return float(headers["retry-after-ms"]) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time()) if when else None


@dataclass
class ClientStats:
    calls: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    retries: int = 0
    throttled: int = 0
    failed: int = 0
    completion_tokens: int = 0
    dead_endpoint_failures: int = 0  # requests failed by the open circuit (also counted in `failed`)
    breaker_open: bool = False
    errors: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {"calls": self.calls, "cache_hits": self.cache_hits, "cache_misses": self.cache_misses,
                "retries": self.retries, "throttled": self.throttled, "failed": self.failed,
                "completion_tokens": self.completion_tokens, "dead_endpoint_failures": self.dead_endpoint_failures,
                "breaker_open": self.breaker_open, "errors": dict(self.errors)}


class ChatClient:
    """`async with ChatClient(endpoint, model) as c: replies = await c.complete_all(requests)`."""

    def __init__(self, endpoint: Endpoint, model: str, *, concurrency: int = 8, min_concurrency: int | None = None,
                 timeout_s: float = 60.0, deadline_s: float | None = None, max_retries: int = 6,
                 backoff_s: float = 0.5, max_backoff_s: float = 30.0, cache: ResponseCache | None = None,
                 structured_output: str | None = None, dead_after: int | None = 5):
        self.endpoint, self.model = endpoint, model
        # The limit may fall to 1: a server whose capacity is below any floor would otherwise answer 429 forever
        # (tests: capacity 3). Only sustained throttling cuts it (AdaptiveLimit); `min_concurrency` raises the floor.
        self.concurrency = concurrency
        self.min_concurrency = 1 if min_concurrency is None else min_concurrency
        self.timeout_s, self.deadline_s, self.max_retries = timeout_s, deadline_s, max_retries
        self.backoff_s, self.max_backoff_s = backoff_s, max_backoff_s
        self.cache = cache
        self.structured = structured_output or endpoint.structured_output  # a generator may override the connection
        self.stats = ClientStats()
        self._client: openai.AsyncOpenAI | None = None
        # Circuit breaker: this many connect failures in a row, across all requests, with no HTTP answer in between,
        # mean nothing listens; retrying every request max_retries times with backoff would only add minutes. A live
        # server answers between refusals (any answer resets the count; resets, 5xx and 429s never count), so a
        # few are enough. Once open it stays open for this client (a later client tries again). None: never opens.
        self.dead_after = dead_after
        self._connect_streak, self._streak_cause, self._dead = 0, "", None

    async def __aenter__(self) -> "ChatClient":
        self._client = openai.AsyncOpenAI(base_url=self.endpoint.base_url, api_key=self.endpoint.api_key,
                                          max_retries=0, timeout=self.timeout_s)
        self.limit = AdaptiveLimit(self.concurrency, self.min_concurrency)
        self._dead_event = asyncio.Event()  # wakes requests sleeping in backoff when the circuit opens
        self._deadline = time.monotonic() + self.deadline_s if self.deadline_s else None
        return self

    async def __aexit__(self, *exc) -> None:
        await self._client.close()
        s = self.stats
        log.info("llm %s @ %s: %d calls, cache %d hits / %d misses, %d retries (%d throttled), %d failed; "
                 "concurrency limit now %.1f (lowest %.1f, %d cuts)", self.model, self.endpoint.base_url, s.calls,
                 s.cache_hits, s.cache_misses, s.retries, s.throttled, s.failed, self.limit.limit, self.limit.lowest,
                 self.limit.cuts)

    def _response_format(self, req: ChatRequest) -> dict | None:
        if req.schema is None or self.structured == "none":
            return None
        if self.structured == "json_object":  # llama.cpp-style servers also read a schema here
            return {"type": "json_object", "schema": req.schema}
        return {"type": "json_schema", "json_schema": {"name": req.schema_name, "schema": req.schema}}

    def _key(self, req: ChatRequest) -> str:
        params = {"temperature": req.temperature, "max_tokens": req.max_tokens, "schema": req.schema}
        return cache_key(self.model, req.messages, params, req.seed, req.sample_index)

    def _remaining(self) -> float | None:
        return None if self._deadline is None else self._deadline - time.monotonic()

    async def complete_all(self, requests: list[ChatRequest]) -> list[ChatReply]:
        return list(await asyncio.gather(*(self.complete(r) for r in requests)))

    async def complete(self, req: ChatRequest) -> ChatReply:
        key = self._key(req)
        if self.cache is not None:
            hit = await self.cache.aget(key)
            if hit is not None:
                self.stats.cache_hits += 1
                return ChatReply(hit["text"], cached=True, completion_tokens=hit.get("completion_tokens", 0),
                                 finish_reason=hit.get("finish_reason"))
            self.stats.cache_misses += 1
        reason, attempt = "", 0
        while True:
            if self._dead is not None:  # the circuit is open: no call to a dead endpoint, no further retries
                self.stats.dead_endpoint_failures += 1
                return self._fail(self._dead, attempt, quiet=True)  # logged once, when it opened
            remaining = self._remaining()
            if remaining is not None and remaining <= 0:
                return self._fail(f"deadline of {self.deadline_s:g} s passed ({reason or 'not started'})", attempt)
            sent = await self._attempt(req, remaining, attempt + 1)
            if sent is None:
                continue  # not sent: the circuit opened while this request waited for a slot
            attempt += 1
            reply, reason, wait = sent
            if reply is not None:
                reply.attempts = attempt
                if self.cache is not None:
                    await self.cache.aput(key, {"text": reply.text, "completion_tokens": reply.completion_tokens,
                                                "finish_reason": reply.finish_reason})
                return reply
            if wait is None or attempt > self.max_retries:
                return self._fail(reason, attempt)
            self.stats.retries += 1
            remaining = self._remaining()
            wait = wait if remaining is None else max(0.0, min(wait, remaining))
            try:  # a backoff sleep that ends early when the circuit opens
                await asyncio.wait_for(self._dead_event.wait(), wait)
            except asyncio.TimeoutError:
                pass

    def _fail(self, reason: str, attempts: int, quiet: bool = False) -> ChatReply:
        self.stats.failed += 1
        self.stats.errors[reason.split(":")[0]] += 1
        if not quiet:
            log.warning("llm request failed after %d attempt(s): %s", attempts, reason)
        return ChatReply(None, error=reason, attempts=attempts)

    def _backoff(self, attempt_index: int) -> float:
        return random.uniform(0, min(self.max_backoff_s, self.backoff_s * 2 ** attempt_index))

    def _connect_failed(self, root: BaseException) -> str:
        """Count a connect failure; open the circuit at `dead_after` in a row, keeping the first one's cause."""
        reason = f"connection: {type(root).__name__}: {root}"  # the root ("Connect call failed"), not httpx's wrapper
        self._connect_streak += 1
        if self._connect_streak == 1:
            self._streak_cause = reason
        if self.dead_after and self._connect_streak >= self.dead_after and self._dead is None:
            what = "connection refused" if "ConnectionRefusedError" in self._streak_cause else "connect failed"
            self._dead = (f"endpoint dead: {what} on {self._connect_streak} attempts in a row with no answer "
                          f"(circuit open): {self._streak_cause}")
            self.stats.breaker_open = True
            self._dead_event.set()
            log.error("llm endpoint %s: %s", self.endpoint.base_url, self._dead)
        return reason

    async def _attempt(self, req: ChatRequest, remaining: float | None,
                       attempt: int) -> tuple[ChatReply | None, str, float | None] | None:
        """One call: (reply, '', None) or (None, reason, seconds to wait before retrying or None if final);
        None when not sent because the circuit opened while waiting for a slot."""
        epoch = await self.limit.acquire()
        # outcome: ok / throttled / answered (any other HTTP answer, even an unreadable body) / error (no answer)
        outcome, retries_so_far = "error", attempt - 1  # this request's own retries set its backoff
        timeout = self.timeout_s if remaining is None else max(0.01, min(self.timeout_s, remaining))
        kwargs: dict[str, Any] = {"model": self.model, "messages": req.messages, "temperature": req.temperature,
                                  "max_tokens": req.max_tokens, "timeout": timeout}
        if req.seed is not None:
            kwargs["seed"] = int(req.seed) % (2 ** 31)
        used_mode, response_format = self.structured, self._response_format(req)
        if response_format:
            kwargs["response_format"] = response_format
        try:
            if self._dead is not None:
                return None
            self.stats.calls += 1
            response = await self._client.chat.completions.create(**kwargs)
            choice = response.choices[0]  # a body without choices is malformed (AttributeError/IndexError below)
            outcome = "ok"
            tokens = getattr(response.usage, "completion_tokens", 0) or 0
            self.stats.completion_tokens += tokens
            return ChatReply(choice.message.content or "", completion_tokens=tokens,
                             finish_reason=choice.finish_reason), "", None
        except openai.RateLimitError as exc:
            outcome = "throttled"
            self.stats.throttled += 1
            wait = retry_after(exc.response)
            return None, "HTTP 429: rate limited", wait if wait is not None else self._backoff(retries_so_far)
        except openai.APITimeoutError:
            return None, f"timeout: no reply within {timeout:.1f} s", self._backoff(retries_so_far)
        except openai.APIConnectionError as exc:
            root = connect_failure(exc)
            if root is not None:
                return None, self._connect_failed(root), self._backoff(retries_so_far)
            return None, f"connection: {exc.__cause__ or exc}", self._backoff(retries_so_far)
        except openai.APIStatusError as exc:
            outcome, status = "answered", exc.status_code
            if response_format and "response_format" in str(exc) and status in (400, 422, 500):
                # The server does not take this form of schema (llama.cpp's server refuses `json_schema` with a
                # 500): step down to `json_object` (+schema), then to the prompt alone; replies are still validated.
                if self.structured == used_mode:  # concurrent refusals of the same mode step down once
                    self.structured = "json_object" if used_mode == "json_schema" else "none"
                    log.warning("endpoint %s refused response_format %s; using %s", self.endpoint.base_url, used_mode,
                                self.structured)
                return None, f"HTTP {status}: response_format {used_mode} not supported", 0.0
            if status >= 500 or status in (408, 409):
                wait = retry_after(exc.response)
                return None, f"HTTP {status}: {str(exc)[:200]}", wait if wait is not None else self._backoff(retries_so_far)
            return None, f"HTTP {status}: {str(exc)[:200]}", None  # other client errors do not heal by retrying
        except (openai.APIResponseValidationError, json.JSONDecodeError, ValueError, AttributeError, IndexError,
                TypeError) as exc:
            outcome = "answered"
            return None, f"malformed response: {type(exc).__name__}: {str(exc)[:120]}", self._backoff(retries_so_far)
        finally:
            if outcome != "error":  # the server answered: whatever refused before, it is not dead
                self._connect_streak = 0
            await self.limit.release(outcome, epoch)
