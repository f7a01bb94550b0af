"""A local chat-completions server that injects faults, for tests and benchmarks.

Speaks enough of the OpenAI protocol (`POST /v1/chat/completions`, `GET /v1/models`) for the
official SDK. Every reply waits `latency_s`; a seeded plan then picks at most one fault per
request: `delay` (a slow reply past a client's timeout), `429` (with `Retry-After`), `500`,
`reset` (the TCP connection is reset), `truncated` (a JSON body cut short) or `malformed`
(a body that is not JSON). `capacity` models a throttling server: requests beyond that many
in flight get 429. `bad_content` returns a well-formed reply whose content breaks the schema
(what a model does; the strategy's parser must reject it, not the transport). `kill()` dies as a
killed process does: later connects are refused and requests in flight get no reply.
"""
from __future__ import annotations

import json
import random
import socket
import struct
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

FAULTS = ("delay", "429", "500", "reset", "truncated", "malformed", "bad_content")


def content_for_schema(schema: dict | None, request: dict) -> str:
    """A reply that satisfies `schema` (strings echo a hash of the prompt so replies differ per request)."""
    prompt = json.dumps(request.get("messages", []), sort_keys=True)
    tag = f"{abs(hash((prompt, request.get('seed')))) % 10**8:08d}"

    def value(s: dict) -> Any:
        if "enum" in s:
            return s["enum"][int(tag) % len(s["enum"])]
        kind = s.get("type")
        if kind == "object":
            return {k: value(v) for k, v in s.get("properties", {}).items()}
        if kind == "array":
            return [value(s.get("items", {"type": "string"}))]
        if kind in ("integer", "number"):
            return s.get("maximum", s.get("minimum", 1))
        if kind == "boolean":
            return False
        return f"sample text {tag} about a product that arrived on time and tasted good"

    if schema is None:
        return f"plain reply {tag}"
    return json.dumps(value(schema))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # bursts of new connections must not wait for SYN retries (the default is 5)

    def __init__(self, *args, **kwargs):
        self.open_connections: set[socket.socket] = set()  # for kill(): keep-alive connections outlive shutdown()
        super().__init__(*args, **kwargs)

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that hung up (or kill()) is no server bug
            super().handle_error(request, client_address)

    def shutdown_request(self, request):
        self.open_connections.discard(request)
        super().shutdown_request(request)

    def get_request(self):
        conn, addr = super().get_request()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # headers and body go out without Nagle's wait
        self.open_connections.add(conn)
        return conn, addr


class FaultServer:
    """`with FaultServer(latency_s=0.05, faults={"429": 0.1}) as server: server.base_url`"""

    def __init__(self, *, latency_s: float = 0.0, faults: dict[str, float] | None = None, seed: int = 0,
                 retry_after_s: float = 0.2, capacity: int | None = None, delay_s: float = 5.0,
                 responder: Callable[[dict], str] | None = None, completion_tokens: int = 16,
                 refuse_json_schema: bool = False):
        unknown = set(faults or {}) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}; known: {FAULTS}")
        self.latency_s, self.faults, self.retry_after_s = latency_s, dict(faults or {}), retry_after_s
        self.capacity, self.delay_s, self.completion_tokens = capacity, delay_s, completion_tokens
        self.refuse_json_schema = refuse_json_schema  # as llama.cpp's server does: only `json_object` (+schema)
        self.responder = responder or (lambda request: content_for_schema(_schema_of(request), request))
        self.counts: Counter = Counter()
        self.in_flight = self.max_in_flight = 0
        self.requests: list[dict] = []
        self.killed = False
        self._rng, self._lock = random.Random(seed), threading.Lock()
        self._server = _Server(("127.0.0.1", 0), self._handler())

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> "FaultServer":
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def kill(self) -> None:
        """Die mid-run like a killed process: no reply to requests in flight, open connections closed, the port
        closed (connects refused). `__exit__` alone would keep serving established keep-alive connections."""
        self.killed = True
        try:  # stop listening at once (as the kernel does): shutdown() alone leaves the port accepting for a poll
            self._server.socket.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        for conn in list(self._server.open_connections):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.__exit__()

    def _pick(self) -> str | None:
        with self._lock:
            draw = self._rng.random()
        for name, p in self.faults.items():
            if draw < p:
                return name
            draw -= p
        return None

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None, length: int | None = None):
                if server.killed:  # a dead process sends nothing; the connection closes unanswered
                    self.close_connection = True
                    return
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body) if length is None else length))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)
                server.counts["sent"] += 1  # written out: what a client may have received (see kill())

            def do_GET(self):
                self._send(200, json.dumps({"object": "list", "data": [{"id": "fault-model", "object": "model"}]}).encode())

            def do_POST(self):
                request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                with server._lock:
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                    over = server.capacity is not None and server.in_flight > server.capacity
                try:
                    self._reply(request, "429" if over else server._pick())
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _reply(self, request: dict, fault: str | None):
                server.counts["requests"] += 1
                if server.refuse_json_schema and (request.get("response_format") or {}).get("type") == "json_schema":
                    server.counts["refused_schema"] += 1
                    return self._send(500, json.dumps({"error": {"message": (
                        "1 validation error: body.response_format.type: Input should be 'text' or 'json_object'")}}
                    ).encode())
                server.counts[fault or "ok"] += 1
                time.sleep(server.latency_s + (server.delay_s if fault == "delay" else 0.0))
                if fault == "429":
                    return self._send(429, b'{"error": {"message": "rate limited", "type": "rate_limit"}}',
                                      {"Retry-After": f"{server.retry_after_s:g}"})
                if fault == "500":
                    return self._send(500, b'{"error": {"message": "internal error"}}')
                if fault == "reset":  # RST instead of a reply: SO_LINGER with a zero timeout
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.close_connection = True
                    self.connection.close()
                    return
                content = server.responder(request)
                if fault == "bad_content":
                    content = content[: max(1, len(content) // 2)]  # cut mid-JSON, as a model stopping early does
                body = json.dumps({
                    "id": f"chatcmpl-{server.counts['requests']}", "object": "chat.completion", "created": int(time.time()),
                    "model": request.get("model", "fault-model"),
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": content}}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": server.completion_tokens,
                              "total_tokens": 10 + server.completion_tokens}}).encode()
                if fault == "truncated":
                    body = body[: len(body) // 2]
                elif fault == "malformed":
                    body = b"<html>502 bad gateway</html>" + body[:20]
                with server._lock:
                    server.requests.append(request)
                self._send(200, body)

        return Handler


def _schema_of(request: dict) -> dict | None:
    fmt = request.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        return (fmt.get("json_schema") or {}).get("schema")
    return fmt.get("schema")
