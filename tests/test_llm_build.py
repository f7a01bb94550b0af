"""The llama.cpp that runs here was built portably: the instruction sets the Makefile names, nothing native, no AMX.

ggml's AMX path crashes the server on AMX hosts (a general protection fault in libggml-cpu on the first
completion), and a `-march=native` build made on one host may not run on the next. The check reads what the
loaded library says it was compiled with (`llama_print_system_info`, the server's own system-info line) and
compares it with the flags in the Makefile: any AVX2 host compiling natively turns BMI2 on, which the Makefile
turns off, so a native build cannot pass for a portable one.
"""
from __future__ import annotations

import re
import subprocess
import sys
import textwrap

from conftest import ROOT

# ggml's x86 feature names as the CPU backend reports them, and the CMake option that compiles each in
X86_FEATURES = {"AVX": "GGML_AVX", "AVX2": "GGML_AVX2", "FMA": "GGML_FMA", "F16C": "GGML_F16C", "BMI2": "GGML_BMI2",
                "AVX_VNNI": "GGML_AVX_VNNI", "AVX512": "GGML_AVX512", "AVX512_VBMI": "GGML_AVX512_VBMI",
                "AVX512_VNNI": "GGML_AVX512_VNNI", "AVX512_BF16": "GGML_AVX512_BF16", "AMX_INT8": "GGML_AMX_INT8"}


def makefile_flags() -> dict[str, bool]:
    text = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    (args,) = re.findall(r"^LLAMA_CMAKE_ARGS\s*:=(.*)$", text, flags=re.M)
    return {name: value == "ON" for name, value in re.findall(r"-D(\w+)=(ON|OFF)", args)}


def compiled_features() -> dict[str, str]:
    """What the installed llama_cpp's ggml CPU backend was compiled with, read in a fresh process."""
    code = textwrap.dedent("""
        import llama_cpp
        info = llama_cpp.llama_print_system_info()
        print(info.decode() if isinstance(info, bytes) else info)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"llama_cpp does not load in {sys.prefix}: {done.stderr[-2000:]}"
    out = done.stdout
    features = dict(re.findall(r"(\w+) = (\w+)", out))
    assert features, f"no feature list in llama_print_system_info(): {out!r}"
    return features


def test_the_makefile_builds_llama_cpp_portably():
    flags = makefile_flags()
    assert flags["GGML_NATIVE"] is False
    for off in ("GGML_AMX_TILE", "GGML_AMX_INT8", "GGML_AMX_BF16", "GGML_AVX512", "GGML_AVX_VNNI", "GGML_BMI2"):
        assert flags[off] is False, off
    for on in ("GGML_AVX", "GGML_AVX2", "GGML_FMA", "GGML_F16C"):
        assert flags[on] is True, on


def test_the_installed_llama_cpp_has_exactly_the_makefile_instruction_sets():
    features = compiled_features()
    flags = makefile_flags()
    compiled = {name for name in X86_FEATURES if features.get(name) == "1"}
    wanted = {name for name, option in X86_FEATURES.items() if flags.get(option)}
    assert "AMX_INT8" not in compiled and not {f for f in compiled if f.startswith("AVX512")}, features
    assert compiled == wanted, (
        f"llama.cpp in {sys.prefix} was compiled with {sorted(compiled)}, the Makefile asks for {sorted(wanted)}: "
        "it was not built by `make install` (a native or cached wheel?). Remove the venv's llama_cpp_python and "
        "run `make install`.")


CRASHING_SERVER = """
import http.server, json, os, sys
class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass
    def do_GET(self):  # /v1/models answers, as llama_cpp.server does before the model has run once
        body = json.dumps({"data": [{"id": "m"}]}).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def do_POST(self):  # the first completion kills the process, as ggml's AMX path did
        print("ggml_backend_amx_buffer_set_tensor: amx repack tensor output.weight", flush=True)
        os._exit(139)
print("load_tensors: AMX model buffer size = 95.34 MiB", flush=True)
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


def test_the_local_server_is_ready_only_after_a_real_completion(tmp_path):
    """A server that lists its models and dies on the first completion is not ready: the error says so and
    quotes its log (before, `start` returned and every request then failed with "connection refused")."""
    import pytest

    from synthchain.llm.local_server import LocalModelServer, ServerFailed

    script = tmp_path / "crashing_server.py"
    script.write_text(CRASHING_SERVER)

    class Crashing(LocalModelServer):
        def command(self):
            return [sys.executable, str(script), str(self.port)]

    server = Crashing(log_path=tmp_path / "server.log")
    with pytest.raises(ServerFailed) as failed:
        server.start(timeout_s=30)
    message = str(failed.value)
    assert "failed its warm-up completion" in message and "died (exit 139)" in message, message
    assert str(tmp_path / "server.log") in message and "amx repack tensor" in message, message
    assert server.process.poll() is not None
