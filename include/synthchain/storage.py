"""Storage backends for the Parquet, JSON and HTML artefacts a run produces.

Stages pass URIs to each other, never frames: a URI is `file:///abs/path` for the
local backend or `s3://bucket/key` for S3. Writes replace whatever is at the key,
which is what makes a retried task idempotent.
"""
from __future__ import annotations

import io
import json
import os
import shutil
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pandas as pd


class StorageError(RuntimeError):
    pass


class Storage(ABC):
    """Key/value blob store addressed by '/'-separated keys under one root."""

    @abstractmethod
    def uri(self, key: str) -> str: ...

    @abstractmethod
    def write_bytes(self, key: str, data: bytes) -> str: ...

    @abstractmethod
    def read_bytes(self, uri_or_key: str) -> bytes: ...

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


class LocalStorage(Storage):
    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def key_of(self, uri_or_key: str) -> str:
        if uri_or_key.startswith("file://"):
            path = Path(urlparse(uri_or_key).path)
            try:
                return str(path.relative_to(self.root))
            except ValueError:
                raise StorageError(f"{uri_or_key} is outside storage root {self.root}") from None
        return uri_or_key.lstrip("/")

    def _path(self, uri_or_key: str) -> Path:
        return self.root / self.key_of(uri_or_key)

    def uri(self, key: str) -> str:
        return self._path(key).as_uri()

    def write_bytes(self, key: str, data: bytes) -> str:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a crashed task never leaves a half-written file behind.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        return self.uri(key)

    def read_bytes(self, uri_or_key: str) -> bytes:
        path = self._path(uri_or_key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise StorageError(f"no object at {path}") from None

    def exists(self, uri_or_key: str) -> bool:
        return self._path(uri_or_key).exists()

    def list(self, prefix: str) -> list[str]:
        base = self._path(prefix)
        if base.is_file():
            return [self.key_of(prefix)]
        if not base.exists():
            return []
        return sorted(str(p.relative_to(self.root)) for p in base.rglob("*") if p.is_file())

    def delete_prefix(self, prefix: str) -> int:
        base = self._path(prefix)
        if not base.exists():
            return 0
        count = len(self.list(prefix))
        shutil.rmtree(base) if base.is_dir() else base.unlink()
        return count

    def move_prefix(self, src: str, dst: str) -> int:
        source, target = self._path(src), self._path(dst)
        if not source.exists():
            return 0
        count = len(self.list(src))
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
        return count


class S3Storage(Storage):
    """S3 (or any S3-compatible endpoint, e.g. MinIO via SYNTHCHAIN_S3_ENDPOINT)."""

    def __init__(self, bucket: str, prefix: str = "", client: Any = None):
        import boto3

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client or boto3.client("s3", endpoint_url=os.environ.get("SYNTHCHAIN_S3_ENDPOINT") or None)

    def _full(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

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
        return uri_or_key.lstrip("/")

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._full(self.key_of(key))}"

    def write_bytes(self, key: str, data: bytes) -> str:
        key = self.key_of(key)
        self.client.put_object(Bucket=self.bucket, Key=self._full(key), Body=data)
        return self.uri(key)

    def read_bytes(self, uri_or_key: str) -> bytes:
        key = self._full(self.key_of(uri_or_key))
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except self.client.exceptions.NoSuchKey:
            raise StorageError(f"no object at s3://{self.bucket}/{key}") from None

    def exists(self, uri_or_key: str) -> bool:
        return bool(self.list(self.key_of(uri_or_key)))

    def list(self, prefix: str) -> list[str]:
        full = self._full(self.key_of(prefix))
        keys: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if key == full or key.startswith(full.rstrip("/") + "/"):
                    keys.append(key[len(self.prefix) + 1:] if self.prefix else key)
        return sorted(keys)

    def delete_prefix(self, prefix: str) -> int:
        keys = self.list(prefix)
        for start in range(0, len(keys), 1000):
            batch = [{"Key": self._full(k)} for k in keys[start:start + 1000]]
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch})
        return len(keys)


def open_storage(root: str | None = None) -> Storage:
    """Storage from a root URI: `s3://bucket/prefix` or a local folder (default from env)."""
    root = root or os.environ.get("SYNTHCHAIN_STORAGE") or str(Path.home() / ".synthchain" / "storage")
    if root.startswith("s3://"):
        parsed = urlparse(root)
        return S3Storage(parsed.netloc, parsed.path)
    if root.startswith("file://"):
        root = urlparse(root).path
    return LocalStorage(root)
