"""Fitted generators travel between tasks as pickles; a pickle read back from storage is only loaded
when its HMAC-SHA256, made with a key that never lives in storage, checks out.

Generators are arbitrary Python objects (sklearn trees, copulas, n-gram models, endpoint clients):
no code-free format holds them all, so pickle stays, authenticated. Anyone who can write to the
storage root but not read the key cannot make a worker load their bytes.

The key: $SYNTHCHAIN_SIGNING_KEY (any string; give every worker the same one), else the file
$SYNTHCHAIN_SIGNING_KEY_FILE, else <SYNTHCHAIN_HOME>/signing.key, created (0600) on first use.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import pickle
import secrets
from pathlib import Path
from typing import Any

MAGIC = b"SCSIG1\n"
DIGEST = hashlib.sha256().digest_size


class TamperedArtefact(RuntimeError):
    """Bytes from storage whose signature does not check out: never deserialised."""


def _key_file() -> Path:
    explicit = os.environ.get("SYNTHCHAIN_SIGNING_KEY_FILE")
    if explicit:
        return Path(explicit)
    home = Path(os.environ.get("SYNTHCHAIN_HOME") or Path.home() / ".synthchain")
    return home / "signing.key"


def signing_key() -> bytes:
    env = os.environ.get("SYNTHCHAIN_SIGNING_KEY")
    if env:
        return hashlib.sha256(env.encode()).digest()
    path = _key_file()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # written whole under a private name, then linked into place: two tasks starting at once agree on one
        # key, and neither ever reads a half-written file
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(secrets.token_hex(32).encode())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    key = path.read_bytes().strip()
    if len(key) < 32:
        raise TamperedArtefact(f"signing key file {path} holds fewer than 32 bytes; remove it to make a new one")
    return key


def sign(payload: bytes) -> bytes:
    return MAGIC + hmac.new(signing_key(), payload, hashlib.sha256).digest() + payload


def verify(blob: bytes, where: str) -> bytes:
    """The payload of signed bytes, or TamperedArtefact naming where they came from."""
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + DIGEST:
        raise TamperedArtefact(f"{where} is not a signed synthchain artefact: refused to load it")
    mac, payload = blob[len(MAGIC):len(MAGIC) + DIGEST], blob[len(MAGIC) + DIGEST:]
    if not hmac.compare_digest(mac, hmac.new(signing_key(), payload, hashlib.sha256).digest()):
        raise TamperedArtefact(f"{where} failed its integrity check (HMAC-SHA256): it was changed after it was "
                               "written, or written with another signing key; refused to load it")
    return payload


def dumps_signed(obj: Any) -> bytes:
    return sign(pickle.dumps(obj))


def loads_signed(blob: bytes, where: str) -> Any:
    return pickle.loads(verify(blob, where))  # only bytes this deployment signed reach pickle
