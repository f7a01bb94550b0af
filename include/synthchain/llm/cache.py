"""Content-addressed response cache on the run's storage.

The key hashes everything that determines a reply: model, messages, sampling parameters,
the request's seed and its sample index (the k-th candidate of one prompt is a different
draw). Each reply is its own object, written the moment it arrives, so a task killed
half-way keeps what it already paid for, and re-runs, retries and backfills read it back.
"""
from __future__ import annotations

import asyncio
import json
from typing import Any

from ..specs import stable_hash
from ..storage import Storage

CACHE_PREFIX = "llm_cache"


def cache_key(model: str, messages: list[dict], params: dict[str, Any], seed: int | None, sample_index: int) -> str:
    return stable_hash({"model": model, "messages": messages, "params": params, "seed": seed, "k": sample_index})


class ResponseCache:
    def __init__(self, storage: Storage, prefix: str = CACHE_PREFIX):
        self.storage, self.prefix = storage, prefix.rstrip("/")

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key[:2]}/{key}.json"

    def get(self, key: str) -> dict | None:
        path = self._key(key)
        if not self.storage.exists(path):
            return None
        try:
            return json.loads(self.storage.read_bytes(path))
        except (ValueError, OSError):  # a torn or foreign object is a miss, and is overwritten on success
            return None

    def put(self, key: str, reply: dict) -> None:
        self.storage.write_bytes(self._key(key), json.dumps(reply, sort_keys=True).encode())

    async def aget(self, key: str) -> dict | None:
        return await asyncio.to_thread(self.get, key)

    async def aput(self, key: str, reply: dict) -> None:
        await asyncio.to_thread(self.put, key, reply)
