"""Storage backends for the Parquet, JSON and HTML artefacts a run produces.

Stages pass URIs to each other, never frames: a URI is `file:///abs/path` for the
local backend or `s3://bucket/key` for S3. Writes replace whatever is at the key,
which is what makes a retried task idempotent.

Failures are `StorageError`s whose one-line message names the operation and the object,
never a raw OS or botocore traceback. `ObjectMissing` (a `StorageError`) says that the
store answered and the object is not there, so readers can tell "missing" from
"unreachable". S3 calls retry transient faults with exponential backoff (see `S3Storage`).

A URI written by one backend can be read whatever the configured backend is:
`storage_for_uri`, `read_uri_bytes`, `read_uri_json`.
"""
from __future__ import annotations

import io
import json
import logging
import math
import os
import random
import re
import shutil
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Callable, TypeVar
from urllib.parse import unquote, urlparse

import pandas as pd

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRIES_ENV = "SYNTHCHAIN_STORAGE_RETRIES"
BACKOFF_ENV = "SYNTHCHAIN_STORAGE_BACKOFF_S"
DEFAULT_ATTEMPTS = 5
DEFAULT_BACKOFF_S = 0.5
MAX_ATTEMPTS = 20
MAX_BACKOFF_S = 60.0
MAX_SLEEP_S = 10.0  # one wait between attempts never exceeds this, whatever the base delay

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class StorageError(RuntimeError):
    pass


class ObjectMissing(StorageError):
    """The store answered and there is no object at the key (as opposed to a store that cannot be reached)."""


class Storage(ABC):
    """Key/value blob store addressed by '/'-separated keys under one root."""

    @abstractmethod
    def uri(self, key: str) -> str: ...

    @abstractmethod
    def write_bytes(self, key: str, data: bytes) -> str: ...

    @abstractmethod
    def read_bytes(self, uri_or_key: str) -> bytes:
        """The object's bytes; ObjectMissing when there is none, StorageError when it cannot be read."""

    @abstractmethod
    def exists(self, uri_or_key: str) -> bool: ...

    @abstractmethod
    def list(self, prefix: str) -> list[str]:
        """Keys under prefix."""

    @abstractmethod
    def delete_prefix(self, prefix: str) -> int: ...

    @abstractmethod
    def key_of(self, uri_or_key: str) -> str: ...

    def move_prefix(self, src: str, dst: str) -> int:
        """Move every key under src to dst (used for quarantine); returns how many."""
        keys = self.list(src)
        for key in keys:
            self.write_bytes(dst.rstrip("/") + "/" + key[len(src.rstrip("/")) + 1:], self.read_bytes(key))
        self.delete_prefix(src)
        return len(keys)

    # Convenience formats -------------------------------------------------
    def write_parquet(self, key: str, frame: pd.DataFrame) -> str:
        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        return self.write_bytes(key, buf.getvalue())

    def read_parquet(self, uri_or_key: str) -> pd.DataFrame:
        return pd.read_parquet(io.BytesIO(self.read_bytes(uri_or_key)))

    def write_json(self, key: str, obj: Any) -> str:
        return self.write_bytes(key, json.dumps(obj, indent=2, sort_keys=True, default=str).encode())

    def read_json(self, uri_or_key: str) -> Any:
        return json.loads(self.read_bytes(uri_or_key))

    def write_text(self, key: str, text: str) -> str:
        return self.write_bytes(key, text.encode())

    def read_text(self, uri_or_key: str) -> str:
        return self.read_bytes(uri_or_key).decode()


# --- local -----------------------------------------------------------------------------------------

def _os_reason(exc: OSError, path: Path | str) -> str:
    """The OS's reason in words, naming the other path involved when it is not `path` itself."""
    reason = exc.strerror or type(exc).__name__
    other = exc.filename2 if exc.filename2 is not None else exc.filename
    if other is not None and str(other) != str(path):
        reason += f" ({other})"
    return reason


def _raise(exc: OSError) -> None:
    raise exc


def _file_uri_path(uri: str) -> Path:
    parsed = urlparse(uri)
    if parsed.netloc not in ("", "localhost"):
        raise StorageError(f"{uri} names host {parsed.netloc!r}; only local file:// URIs can be read")
    return Path(unquote(parsed.path))


def _refuse_foreign(uri_or_key: str, here: str) -> None:
    """A URI of another backend is never read as a key here (an s3:// URI is no local path)."""
    scheme = urlparse(uri_or_key).scheme if "://" in uri_or_key else ""
    if scheme:
        raise StorageError(f"{uri_or_key} is not in {here}: read it with storage_for_uri")


class LocalStorage(Storage):
    """A folder on the local filesystem. OS errors become StorageErrors naming the path and the reason."""

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().resolve()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"could not create storage root {self.root}: {_os_reason(exc, self.root)}") from None

    def key_of(self, uri_or_key: str) -> str:
        if uri_or_key.startswith("file://"):
            path = _file_uri_path(uri_or_key)
            try:
                return str(path.relative_to(self.root))
            except ValueError:
                raise StorageError(f"{uri_or_key} is outside storage root {self.root}") from None
        _refuse_foreign(uri_or_key, f"storage root {self.root}")
        key = uri_or_key.lstrip("/")
        if ".." in key.split("/"):
            raise StorageError(f"key {uri_or_key!r} climbs out of storage root {self.root}")
        return key

    def _path(self, uri_or_key: str) -> Path:
        return self.root / self.key_of(uri_or_key)

    def uri(self, key: str) -> str:
        return self._path(key).as_uri()

    def write_bytes(self, key: str, data: bytes) -> str:
        path = self._path(key)
        # Write then rename, so a crashed task never leaves a half-written file behind.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                tmp.write_bytes(data)
                os.replace(tmp, path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise StorageError(f"could not write {path}: {_os_reason(exc, path)}") from None
        return self.uri(key)

    def read_bytes(self, uri_or_key: str) -> bytes:
        path = self._path(uri_or_key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            # a folder, or a file where a folder of the key should be: no object at that key (as on S3)
            raise ObjectMissing(f"no object at {path}") from None
        except OSError as exc:
            raise StorageError(f"could not read {path}: {_os_reason(exc, path)}") from None

    def exists(self, uri_or_key: str) -> bool:
        path = self._path(uri_or_key)
        try:
            return path.exists()
        except OSError as exc:
            raise StorageError(f"could not look up {path}: {_os_reason(exc, path)}") from None

    def list(self, prefix: str) -> list[str]:
        base = self._path(prefix)
        try:
            if base.is_file():
                return [self.key_of(prefix)]
            if not base.exists():
                return []
            keys = []
            for folder, _, files in os.walk(base, onerror=_raise):  # a folder it cannot read is an error, not empty
                keys += [str(Path(folder, name).relative_to(self.root)) for name in files
                         if Path(folder, name).is_file()]
            return sorted(keys)
        except OSError as exc:
            raise StorageError(f"could not list {base}: {_os_reason(exc, base)}") from None

    def delete_prefix(self, prefix: str) -> int:
        base = self._path(prefix)
        if not self.exists(prefix):
            return 0
        count = len(self.list(prefix))
        try:
            shutil.rmtree(base) if base.is_dir() else base.unlink()
        except OSError as exc:
            raise StorageError(f"could not delete {base}: {_os_reason(exc, base)}") from None
        return count

    def move_prefix(self, src: str, dst: str) -> int:
        source, target = self._path(src), self._path(dst)
        if not self.exists(src):
            return 0
        count = len(self.list(src))
        try:
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
        except OSError as exc:
            raise StorageError(f"could not move {source} to {target}: {_os_reason(exc, source)}") from None
        return count


# --- S3 --------------------------------------------------------------------------------------------

def _env_setting(name: str, default, parse, valid, expected: str):
    """A setting from the environment: the default when unset, else parsed and checked, or a StorageError."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = parse(raw)
    except ValueError:
        value = None
    if value is None or not valid(value):
        raise StorageError(f"{name} must be {expected}, got {raw!r}")
    return value


def retry_settings() -> tuple[int, float]:
    """(attempts, base delay in seconds) from SYNTHCHAIN_STORAGE_RETRIES / SYNTHCHAIN_STORAGE_BACKOFF_S."""
    attempts = _env_setting(RETRIES_ENV, DEFAULT_ATTEMPTS, int, lambda v: 1 <= v <= MAX_ATTEMPTS,
                            f"a whole number of attempts from 1 to {MAX_ATTEMPTS}")
    backoff = _env_setting(BACKOFF_ENV, DEFAULT_BACKOFF_S, float,
                           lambda v: math.isfinite(v) and 0 <= v <= MAX_BACKOFF_S,
                           f"a number of seconds from 0 to {MAX_BACKOFF_S:g}")
    return attempts, backoff


def backoff_delay(base: float, attempt: int) -> float:
    """Wait after failed attempt `attempt` (1-based): base * 2**(attempt-1), capped, with jitter in its upper half."""
    ceiling = min(MAX_SLEEP_S, base * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)


_TRANSIENT_CODES = frozenset({
    "SlowDown", "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled",
    "RequestThrottledException", "TooManyRequestsException", "RequestLimitExceeded", "RequestTimeout",
    "RequestTimeoutException", "InternalError", "InternalFailure", "ServiceUnavailable", "ServiceUnavailableException",
})
_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


def _client_error_parts(exc: Any) -> tuple[str, int | None, str]:
    response = getattr(exc, "response", None) or {}
    error = response.get("Error") or {}
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    return str(error.get("Code") or ""), status, str(error.get("Message") or "")


class S3Storage(Storage):
    """S3 (or any S3-compatible endpoint, e.g. MinIO via SYNTHCHAIN_S3_ENDPOINT).

    Every client call goes through one retry loop. Transient faults (the endpoint cannot be reached,
    the connection drops or times out, HTTP 5xx/429, SlowDown, Throttling, RequestTimeout, InternalError,
    ServiceUnavailable) are retried up to SYNTHCHAIN_STORAGE_RETRIES attempts in all (default 5), waiting
    SYNTHCHAIN_STORAGE_BACKOFF_S * 2**(n-1) seconds after failed attempt n (default base 0.5 s; each wait
    drawn from the upper half of that, never above 10 s), each retry logged at WARNING. Then a StorageError
    names the operation, the object, the attempts and the cause. Other errors (AccessDenied, NoSuchBucket,
    no credentials, ...) fail at once; a missing key is ObjectMissing.

    The client built here has botocore's own retries off and timeouts of CONNECT_TIMEOUT_S (3 s) to
    connect and READ_TIMEOUT_S (15 s) per socket read, so the worst case for one client call is
    attempts * (3 + 15) s + the waits: with the defaults 5 * 18 + (0.5 + 1 + 2 + 4) = 97.5 s; an
    endpoint that refuses connections fails in about 7.5 s. (A listing pays this per page of 1000 keys,
    a delete per batch of 1000, a move per object; a server that keeps trickling bytes is not cut off by
    the read timeout, which bounds silence, not duration.) A client passed in is used as it is.
    """

    CONNECT_TIMEOUT_S = 3.0
    READ_TIMEOUT_S = 15.0

    def __init__(self, bucket: str, prefix: str = "", client: Any = None):
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.attempts, self.backoff_s = retry_settings()
        self.client = client or self._make_client()

    @classmethod
    def _make_client(cls) -> Any:
        import boto3
        from botocore.config import Config

        config = Config(connect_timeout=cls.CONNECT_TIMEOUT_S, read_timeout=cls.READ_TIMEOUT_S,
                        retries={"mode": "standard", "total_max_attempts": 1})
        try:
            return boto3.client("s3", endpoint_url=os.environ.get("SYNTHCHAIN_S3_ENDPOINT") or None, config=config)
        except Exception as exc:  # botocore: a malformed endpoint URL, an unknown region, ...
            raise StorageError(f"could not set up an S3 client: {exc}") from None

    def _full(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _object_uri(self, full_key: str) -> str:
        return f"s3://{self.bucket}/{full_key}"

    def key_of(self, uri_or_key: str) -> str:
        if uri_or_key.startswith("s3://"):
            parsed = urlparse(uri_or_key)
            if parsed.netloc != self.bucket:
                raise StorageError(f"{uri_or_key} is not in bucket {self.bucket}")
            key = parsed.path.lstrip("/")
            if self.prefix:
                if not key.startswith(self.prefix + "/"):
                    raise StorageError(f"{uri_or_key} is outside prefix {self.prefix}")
                key = key[len(self.prefix) + 1:]
            return key
        _refuse_foreign(uri_or_key, f"bucket {self.bucket}")
        return uri_or_key.lstrip("/")

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._full(self.key_of(key))}"

    # The retry loop ----------------------------------------------------------------------------------
    def _classify(self, exc: BaseException) -> str:
        """'missing', 'transient' or 'fatal'."""
        from botocore import exceptions as bx

        if isinstance(exc, bx.ClientError):
            code, status, _ = _client_error_parts(exc)
            if code in _MISSING_CODES:
                return "missing"
            if code in _TRANSIENT_CODES or (status is not None and (status >= 500 or status == 429)):
                return "transient"
            return "fatal"
        transient: tuple[type, ...] = (bx.ConnectionError, bx.HTTPClientError)
        transient += tuple(getattr(bx, name) for name in ("ResponseStreamingError", "IncompleteReadError")
                           if hasattr(bx, name))
        return "transient" if isinstance(exc, transient) else "fatal"

    def _describe(self, exc: BaseException) -> str:
        """The cause in a few words."""
        from botocore import exceptions as bx

        endpoint = getattr(getattr(self.client, "meta", None), "endpoint_url", None) or "S3"
        if isinstance(exc, bx.ClientError):
            code, status, message = _client_error_parts(exc)
            text = f"{code or 'error'}" + (f" (HTTP {status})" if status else "")
            return text + (f": {message}" if message and message != code else "")
        if isinstance(exc, (bx.EndpointConnectionError, bx.ConnectTimeoutError)):
            return f"endpoint {endpoint} unreachable"
        if isinstance(exc, bx.ConnectionClosedError):
            return f"endpoint {endpoint} closed the connection"
        if isinstance(exc, bx.ReadTimeoutError):
            return f"endpoint {endpoint} did not answer in time"
        text = " ".join(str(exc).split()) or type(exc).__name__
        return text if len(text) <= 300 else text[:297] + "..."

    def _call(self, op: str, target: str, fn: Callable[[], T], missing: str | None = None) -> T:
        """fn() with retries for transient faults; every failure ends as a StorageError naming `target`.

        A missing key is ObjectMissing naming `missing` (default: `target`).
        """
        from botocore.exceptions import BotoCoreError, ClientError

        for attempt in range(1, self.attempts + 1):
            try:
                return fn()
            except (BotoCoreError, ClientError) as exc:
                kind = self._classify(exc)
                if kind == "missing" and op in ("read", "copy"):
                    raise ObjectMissing(f"no object at {missing or target}") from None
                if kind in ("fatal", "missing"):
                    raise StorageError(f"could not {op} {target}: {self._describe(exc)} "
                                       f"({type(exc).__name__})") from None
                if attempt == self.attempts:
                    raise StorageError(f"could not {op} {target}: {self._describe(exc)} after {attempt} "
                                       f"attempt{'s' if attempt > 1 else ''} ({type(exc).__name__})") from None
                delay = backoff_delay(self.backoff_s, attempt)
                log.warning("could not %s %s (attempt %d of %d): %s (%s); retrying in %.2f s", op, target,
                            attempt, self.attempts, self._describe(exc), type(exc).__name__, delay)
                time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    # Operations --------------------------------------------------------------------------------------
    def write_bytes(self, key: str, data: bytes) -> str:
        key = self.key_of(key)
        full = self._full(key)
        self._call("write", self._object_uri(full),
                   lambda: self.client.put_object(Bucket=self.bucket, Key=full, Body=data))
        return self.uri(key)

    def read_bytes(self, uri_or_key: str) -> bytes:
        full = self._full(self.key_of(uri_or_key))
        # the body is read inside the loop: a connection dropped mid-stream is retried like any other
        return self._call("read", self._object_uri(full),
                          lambda: self.client.get_object(Bucket=self.bucket, Key=full)["Body"].read())

    def exists(self, uri_or_key: str) -> bool:
        return bool(self.list(self.key_of(uri_or_key)))

    def _list_full(self, full: str) -> list[str]:
        """Full keys under `full` (the key itself, or keys below it as a folder)."""
        keys: list[str] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": full}
            if token:
                kwargs["ContinuationToken"] = token
            page = self._call("list", self._object_uri(full), lambda: self.client.list_objects_v2(**kwargs))
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if key == full or key.startswith(full.rstrip("/") + "/"):
                    keys.append(key)
            token = page.get("NextContinuationToken") if page.get("IsTruncated") else None
            if not token:
                return keys

    def list(self, prefix: str) -> list[str]:
        keys = self._list_full(self._full(self.key_of(prefix)))
        return sorted(key[len(self.prefix) + 1:] if self.prefix else key for key in keys)

    def delete_prefix(self, prefix: str) -> int:
        full_prefix = self._full(self.key_of(prefix))
        keys = self._list_full(full_prefix)
        for start in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[start:start + 1000]]
            reply = self._call("delete", self._object_uri(full_prefix),
                               lambda: self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch}))
            errors = reply.get("Errors") or []
            if errors:
                first = errors[0]
                raise StorageError(f"could not delete {len(errors)} of {len(batch)} objects under "
                                   f"{self._object_uri(full_prefix)}: {self._object_uri(first.get('Key', '?'))}: "
                                   f"{first.get('Code', 'error')} ({first.get('Message', '')})")
        return len(keys)

    def move_prefix(self, src: str, dst: str) -> int:
        """Server-side copy of every key under src to dst, then delete src; returns how many."""
        src_key, dst_key = self.key_of(src).rstrip("/"), self.key_of(dst).rstrip("/")
        keys = self.list(src_key)
        for key in keys:
            source, target = self._full(key), self._full(dst_key + key[len(src_key):])
            self._call("copy", f"{self._object_uri(source)} to {self._object_uri(target)}",
                       lambda: self.client.copy_object(Bucket=self.bucket, Key=target,
                                                       CopySource={"Bucket": self.bucket, "Key": source}),
                       missing=self._object_uri(source))
        self.delete_prefix(src_key)
        return len(keys)


# --- opening ---------------------------------------------------------------------------------------

def open_storage(root: str | None = None) -> Storage:
    """Storage from a root URI: `s3://bucket/prefix` or a local folder (default from env)."""
    root = root or os.environ.get("SYNTHCHAIN_STORAGE") or str(Path.home() / ".synthchain" / "storage")
    if root.startswith("s3://"):
        parsed = urlparse(root)
        return S3Storage(parsed.netloc, parsed.path)
    if root.startswith("file://"):
        root = str(_file_uri_path(root))
    return LocalStorage(root)


def storage_for_uri(uri: str, default: Storage | None = None) -> Storage:
    """A storage that can read `uri` whatever backend is configured.

    `s3://bucket/key`: `default` when it is an S3Storage that holds the URI, else an S3Storage for that
    bucket with no prefix. `file:///abs/path`: `default` when it is a LocalStorage whose root holds the
    path, else a LocalStorage rooted at the filesystem root (nothing is created). Anything without a
    scheme is a key of `default`; with no default, or with another scheme, StorageError.
    """
    if uri.startswith("s3://"):
        bucket = urlparse(uri).netloc
        if not bucket:
            raise StorageError(f"{uri} names no bucket")
        if isinstance(default, S3Storage) and default.bucket == bucket:
            try:
                default.key_of(uri)
                return default
            except StorageError:
                pass
        return S3Storage(bucket, "", client=default.client if isinstance(default, S3Storage) else None)
    if uri.startswith("file://"):
        path = _file_uri_path(uri)
        if not path.is_absolute():
            raise StorageError(f"{uri} is not an absolute file:// URI")
        if isinstance(default, LocalStorage):
            try:
                default.key_of(uri)
                return default
            except StorageError:
                pass
        return LocalStorage(path.anchor)
    if _SCHEME.match(uri):
        raise StorageError(f"{uri}: unsupported scheme (use s3:// or file://)")
    if default is None:
        raise StorageError(f"{uri} is not an s3:// or file:// URI and there is no storage to read it from")
    return default


def read_uri_bytes(uri: str, default: Storage | None = None) -> bytes:
    """The bytes at an s3:// or file:// URI (or a key of `default`); ObjectMissing when there are none."""
    return storage_for_uri(uri, default).read_bytes(uri)


def read_uri_json(uri: str, default: Storage | None = None) -> Any:
    """The JSON document at an s3:// or file:// URI (or a key of `default`); StorageError when it is not JSON."""
    data = read_uri_bytes(uri, default)
    try:
        return json.loads(data)
    except ValueError as exc:
        raise StorageError(f"{uri} is not JSON: {exc}") from None
