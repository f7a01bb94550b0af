"""Seeds: every random choice in a run derives from the run's identity, so a retry or another worker
makes the same rows. Used by every hop and modality; imports nothing of synthchain."""
from __future__ import annotations

import hashlib
from typing import Any


def derive_seed(*parts: Any) -> int:
    """A 63-bit seed from the run's identity: same inputs, same rows, on any worker."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1
