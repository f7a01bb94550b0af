"""Storage faults end in StorageErrors that name the object, never in raw tracebacks.

S3 faults are real: a moto_server subprocess this module starts (and stops, and restarts), and a small
HTTP proxy in front of it that answers 503 SlowDown or drops the connection for the first requests
before forwarding, so a transient fault heals after retries.
"""
from __future__ import annotations

import http.client
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest
from synthchain.storage import (
    LocalStorage,
    ObjectMissing,
    S3Storage,
    StorageError,
    open_storage,
    read_uri_bytes,
    read_uri_json,
    retry_settings,
    storage_for_uri,
)

BUCKET = "faults"
ATTEMPTS = 3
BOUND_S = 5.0  # 3 attempts against a refusing endpoint with a 0.05 s base wait take well under a second


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MotoServer:
    """A moto_server subprocess on a fixed port that can be stopped and started again."""

    def __init__(self):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.1)
        self.stop()
        pytest.fail("moto_server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            self.proc = None


@pytest.fixture(scope="module")
def moto():
    server = MotoServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def s3env(moto, monkeypatch):
    """Environment pointing at the module's moto server (restarted if a test stopped it), bucket created."""
    if not moto.running:
        moto.start()
    env = {"SYNTHCHAIN_S3_ENDPOINT": moto.url, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_DEFAULT_REGION": "us-east-1", "SYNTHCHAIN_STORAGE_RETRIES": str(ATTEMPTS),
           "SYNTHCHAIN_STORAGE_BACKOFF_S": "0.05"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    client = boto3.client("s3", endpoint_url=moto.url)
    if BUCKET not in [b["Name"] for b in client.list_buckets().get("Buckets", [])]:
        client.create_bucket(Bucket=BUCKET)
    yield moto
    if not moto.running:  # leave the server up for the next test
        moto.start()


# --- a fault-injecting proxy in front of moto ------------------------------------------------------

class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        server = self.server
        with server.lock:
            server.seen.append((self.command, self.path))
            action = server.plan.pop(0) if server.plan else "forward"
        if action == "drop":  # the request was read; close without a response
            self.close_connection = True
            return
        if action == "503":
            payload = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
                       b"<Message>Please reduce your request rate.</Message></Error>")
            self.send_response(503)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        upstream = http.client.HTTPConnection("127.0.0.1", server.upstream_port, timeout=10)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "expect")}
        upstream.request(self.command, self.path, body=body, headers=headers)
        reply = upstream.getresponse()
        data = reply.read()
        upstream.close()
        self.send_response(reply.status, reply.reason)
        for key, value in reply.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle


@pytest.fixture
def proxy(s3env, monkeypatch):
    """A proxy to moto; set `.plan` to e.g. ["503", "drop"] to fault the next requests. S3 env points at it."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ProxyHandler)
    server.daemon_threads = True
    server.upstream_port, server.plan, server.seen, server.lock = s3env.port, [], [], threading.Lock()
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("SYNTHCHAIN_S3_ENDPOINT", server.url)
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def _retry_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "synthchain.storage" and r.levelno == logging.WARNING]


# --- S3: an endpoint that goes away ----------------------------------------------------------------

def test_s3_endpoint_down_fails_naming_object_after_attempts(s3env, caplog):
    store = S3Storage(BUCKET, "runs")
    store.write_json("x/data.json", {"k": 1})
    assert store.read_json("x/data.json") == {"k": 1}
    s3env.stop()
    caplog.set_level(logging.WARNING, logger="synthchain.storage")
    cases = [
        ("read", lambda: store.read_bytes("x/data.json"), "s3://faults/runs/x/data.json"),
        ("write", lambda: store.write_bytes("x/other.parquet", b"data"), "s3://faults/runs/x/other.parquet"),
        ("list", lambda: store.list("x"), "s3://faults/runs/x"),
        ("list", lambda: store.exists("x/data.json"), "s3://faults/runs/x/data.json"),
        ("list", lambda: store.delete_prefix("x"), "s3://faults/runs/x"),
        ("list", lambda: store.move_prefix("x", "y"), "s3://faults/runs/x"),
    ]
    for op, call, target in cases:
        caplog.clear()
        started = time.monotonic()
        with pytest.raises(StorageError) as info:
            call()
        assert time.monotonic() - started < BOUND_S
        assert not isinstance(info.value, ObjectMissing)
        message = str(info.value)
        assert "\n" not in message
        assert re.fullmatch(
            rf"could not {op} {re.escape(target)}: endpoint {re.escape(s3env.url)} unreachable "
            rf"after {ATTEMPTS} attempts \(EndpointConnectionError\)", message), message
        warnings = _retry_warnings(caplog)
        assert len(warnings) == ATTEMPTS - 1
        assert "attempt 1 of 3" in warnings[0] and "attempt 2 of 3" in warnings[1]
        assert target in warnings[0]


def test_s3_endpoint_down_read_through_open_storage_and_uri(s3env, tmp_path):
    uri = open_storage(f"s3://{BUCKET}/cfg").write_json("runs/v1/manifest.json", {"v": 1})
    s3env.stop()
    started = time.monotonic()
    with pytest.raises(StorageError, match=rf"could not read {re.escape(uri)}: .* after 3 attempts"):
        read_uri_json(uri, default=LocalStorage(tmp_path / "local"))
    assert time.monotonic() - started < BOUND_S


def test_s3_endpoint_that_comes_back_is_used_again(s3env):
    store = S3Storage(BUCKET)
    s3env.stop()
    with pytest.raises(StorageError, match="unreachable after 3 attempts"):
        store.list("anything")
    s3env.start()
    boto3.client("s3", endpoint_url=s3env.url).create_bucket(Bucket=BUCKET)
    store.write_text("back.txt", "hello")  # the same storage object (and client) works again
    assert store.read_text("back.txt") == "hello"


# --- S3: transient faults that heal ----------------------------------------------------------------

def test_s3_slowdown_heals_after_retries(proxy, caplog):
    store = S3Storage(BUCKET, "heal")
    uri = store.write_json("a/meta.json", {"k": 1})
    caplog.set_level(logging.WARNING, logger="synthchain.storage")
    for call in (lambda: store.read_json(uri), lambda: store.list("a"),
                 lambda: store.write_json("a/meta.json", {"k": 1})):
        caplog.clear()
        proxy.plan, proxy.seen = ["503", "503"], []
        assert call() in ({"k": 1}, ["a/meta.json"], uri)
        assert len(proxy.seen) == 3  # two 503s, then the forwarded request
        warnings = _retry_warnings(caplog)
        assert len(warnings) == 2 and "SlowDown (HTTP 503)" in warnings[0]
        assert "attempt 1 of 3" in warnings[0] and "attempt 2 of 3" in warnings[1]


def test_s3_dropped_connections_heal_after_retries(proxy, caplog):
    store = S3Storage(BUCKET, "drop")
    caplog.set_level(logging.WARNING, logger="synthchain.storage")
    proxy.plan = ["drop", "drop"]
    uri = store.write_bytes("x.bin", b"\x00payload")
    assert len(proxy.seen) == 3
    proxy.plan = ["drop", "503"]
    assert store.read_bytes(uri) == b"\x00payload"
    warnings = _retry_warnings(caplog)
    assert len(warnings) == 4
    assert "closed the connection" in warnings[0] and "ConnectionClosedError" in warnings[0]
    proxy.plan = ["drop", "drop"]
    assert store.move_prefix("x.bin", "moved.bin") == 1  # copy + list + delete, each retried
    assert store.read_bytes("moved.bin") == b"\x00payload" and not store.exists("x.bin")


def test_s3_persistent_slowdown_gives_up_naming_object(proxy):
    store = S3Storage(BUCKET, "busy")
    proxy.plan = ["503"] * ATTEMPTS
    with pytest.raises(StorageError) as info:
        store.write_bytes("runs/x/data.parquet", b"x")
    assert str(info.value) == ("could not write s3://faults/busy/runs/x/data.parquet: SlowDown (HTTP 503): "
                               "Please reduce your request rate. after 3 attempts (ClientError)")
    assert len(proxy.seen) == ATTEMPTS


def test_s3_non_transient_error_fails_at_once(proxy, caplog):
    caplog.set_level(logging.WARNING, logger="synthchain.storage")
    store = S3Storage("no-such-bucket")
    with pytest.raises(StorageError) as info:
        store.read_bytes("a/b.json")
    assert not isinstance(info.value, ObjectMissing)
    assert str(info.value).startswith("could not read s3://no-such-bucket/a/b.json: NoSuchBucket")
    with pytest.raises(StorageError, match=r"could not write s3://no-such-bucket/a/b.json: NoSuchBucket"):
        store.write_bytes("a/b.json", b"{}")
    assert len(proxy.seen) == 2 and _retry_warnings(caplog) == []


def test_s3_missing_key_is_object_missing(s3env, caplog):
    caplog.set_level(logging.WARNING, logger="synthchain.storage")
    store = S3Storage(BUCKET, "p")
    with pytest.raises(ObjectMissing, match=r"^no object at s3://faults/p/nope/manifest.json$"):
        store.read_json("nope/manifest.json")
    with pytest.raises(ObjectMissing, match="no object at s3://faults/p/nope"):
        storage_for_uri("s3://faults/p/nope").read_bytes("s3://faults/p/nope")
    assert _retry_warnings(caplog) == []
    assert store.list("nope") == [] and not store.exists("nope") and store.delete_prefix("nope") == 0


def test_s3_client_has_short_timeouts_and_no_hidden_retries(s3env):
    config = S3Storage(BUCKET).client.meta.config
    assert config.connect_timeout == S3Storage.CONNECT_TIMEOUT_S and config.read_timeout == S3Storage.READ_TIMEOUT_S
    assert config.retries["total_max_attempts"] == 1


@pytest.mark.parametrize("name, value", [
    ("SYNTHCHAIN_STORAGE_RETRIES", "0"), ("SYNTHCHAIN_STORAGE_RETRIES", "three"),
    ("SYNTHCHAIN_STORAGE_RETRIES", "1000"), ("SYNTHCHAIN_STORAGE_RETRIES", "2.5"),
    ("SYNTHCHAIN_STORAGE_BACKOFF_S", "-1"), ("SYNTHCHAIN_STORAGE_BACKOFF_S", "nan"),
    ("SYNTHCHAIN_STORAGE_BACKOFF_S", "soon"), ("SYNTHCHAIN_STORAGE_BACKOFF_S", "1e9"),
])
def test_bad_retry_settings_name_the_variable(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(StorageError, match=name):
        retry_settings()
    with pytest.raises(StorageError, match=name):
        open_storage("s3://faults/x")


def test_retry_settings_defaults_and_values(monkeypatch):
    monkeypatch.delenv("SYNTHCHAIN_STORAGE_RETRIES", raising=False)
    monkeypatch.delenv("SYNTHCHAIN_STORAGE_BACKOFF_S", raising=False)
    assert retry_settings() == (5, 0.5)
    monkeypatch.setenv("SYNTHCHAIN_STORAGE_RETRIES", " 1 ")
    monkeypatch.setenv("SYNTHCHAIN_STORAGE_BACKOFF_S", "0")
    assert retry_settings() == (1, 0.0)


# --- local -----------------------------------------------------------------------------------------

def test_local_missing_key_is_object_missing(tmp_path):
    store = LocalStorage(tmp_path / "root")
    with pytest.raises(ObjectMissing, match=re.escape(f"no object at {tmp_path / 'root' / 'runs/v1/manifest.json'}")):
        store.read_json("runs/v1/manifest.json")
    store.write_text("runs/v1/report.html", "<p>")
    with pytest.raises(ObjectMissing):  # a folder is not an object
        store.read_bytes("runs/v1")
    with pytest.raises(ObjectMissing):  # nor is a key below a file
        store.read_bytes("runs/v1/report.html/inner")


def test_local_file_where_a_folder_should_be(tmp_path):
    store = LocalStorage(tmp_path / "root")
    store.write_text("runs", "not a folder")
    target = tmp_path / "root" / "runs" / "v1" / "data.parquet"
    with pytest.raises(StorageError) as info:
        store.write_bytes("runs/v1/data.parquet", b"x")
    assert str(info.value).startswith(f"could not write {target}: Not a directory")
    with pytest.raises(StorageError, match=re.escape(f"could not create storage root {tmp_path / 'root' / 'runs'}")):
        LocalStorage(tmp_path / "root" / "runs")
    store.write_text("quarantine/v1/a.txt", "a")
    with pytest.raises(StorageError, match=re.escape(f"could not move {tmp_path / 'root' / 'quarantine' / 'v1'}")):
        store.move_prefix("quarantine/v1", "runs/v1")
    assert [p.name for p in (tmp_path / "root").iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.skipif(os.geteuid() == 0,
                    reason="root ignores folder permissions (the file-where-a-folder test covers it)")
def test_local_permission_denied_names_the_path(tmp_path):
    store = LocalStorage(tmp_path / "root")
    store.write_text("locked/a.txt", "a")
    locked = tmp_path / "root" / "locked"
    locked.chmod(0o500)
    try:
        with pytest.raises(StorageError, match=re.escape(f"could not write {locked / 'b.txt'}: Permission denied")):
            store.write_text("locked/b.txt", "b")
        with pytest.raises(StorageError, match=re.escape(f"could not delete {locked}")):
            store.delete_prefix("locked")
        assert store.read_text("locked/a.txt") == "a"
        locked.chmod(0o000)  # an unreadable folder is an error, not an empty listing
        with pytest.raises(StorageError, match=re.escape(f"could not list {tmp_path / 'root'}")):
            store.list("")
        with pytest.raises(StorageError, match=re.escape(f"could not read {locked / 'a.txt'}: Permission denied")):
            store.read_bytes("locked/a.txt")
    finally:
        locked.chmod(0o700)


# --- reading by URI whatever the configured backend ------------------------------------------------

def test_storage_for_uri_reads_s3_while_configured_local(s3env, tmp_path):
    configured = open_storage(str(tmp_path / "local"))
    uri = S3Storage(BUCKET, "published").write_json("runs/v1/manifest.json", {"version": 1})
    other = storage_for_uri(uri, default=configured)
    assert isinstance(other, S3Storage) and other.bucket == BUCKET and other.prefix == ""
    assert other.read_json(uri) == {"version": 1}
    assert read_uri_json(uri, configured) == {"version": 1} and read_uri_json(uri) == {"version": 1}
    with pytest.raises(ObjectMissing, match="no object at s3://faults/published/runs/v2/manifest.json"):
        read_uri_bytes(uri.replace("v1", "v2"), configured)
    assert not (tmp_path / "local" / "s3:").exists()


def test_storage_for_uri_reads_file_while_configured_s3(s3env, tmp_path):
    configured = open_storage(f"s3://{BUCKET}/cfg")
    local = LocalStorage(tmp_path / "elsewhere with space")
    uri = local.write_json("runs/v1/manifest.json", {"version": 1})
    assert "%20" in uri
    other = storage_for_uri(uri, default=configured)
    assert isinstance(other, LocalStorage)
    assert other.read_json(uri) == {"version": 1} and read_uri_json(uri, configured) == {"version": 1}
    assert read_uri_bytes(uri) == local.read_bytes("runs/v1/manifest.json")
    assert local.key_of(uri) == "runs/v1/manifest.json"
    with pytest.raises(ObjectMissing, match="no object at"):
        read_uri_bytes(uri.replace("v1", "v2"), configured)
    assert not (tmp_path / "elsewhere with space" / "runs" / "v2").exists()  # reading creates nothing
    with pytest.raises(StorageError, match="outside storage root"):  # key_of still refuses, as before
        LocalStorage(tmp_path / "root").key_of(uri)


def test_storage_for_uri_routing(s3env, tmp_path):
    local = LocalStorage(tmp_path / "root")
    s3 = S3Storage(BUCKET, "cfg")
    assert storage_for_uri(local.uri("a.json"), local) is local
    assert storage_for_uri("s3://faults/cfg/a.json", s3) is s3
    outside = storage_for_uri("s3://faults/other/a.json", s3)
    assert outside is not s3 and outside.prefix == "" and outside.client is s3.client
    assert storage_for_uri("s3://another-bucket/a.json", s3).bucket == "another-bucket"
    assert storage_for_uri("runs/v1/a.json", local) is local
    with pytest.raises(StorageError, match="unsupported scheme"):
        storage_for_uri("gs://bucket/a.json", local)
    with pytest.raises(StorageError, match="no storage to read it from"):
        storage_for_uri("runs/v1/a.json")
    with pytest.raises(StorageError, match="only local file"):
        storage_for_uri("file://somehost/a.json")
    local.write_text("bad.json", "{not json")
    with pytest.raises(StorageError, match="is not JSON"):
        read_uri_json(local.uri("bad.json"))
