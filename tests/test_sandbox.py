"""The execution sandbox against real hostile snippets (no mocks): each is stopped, with the right status and reason.

The hostile snippets run concurrently once per module (`verdicts`); each case is then its own test.
"""
import json
import os
import re
import socket
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from synthchain import sandbox
from synthchain.sandbox import main, run_many, run_python

NAMESPACES = os.geteuid() == 0 and sandbox._unshare_prefix() is not None
UID = os.geteuid() == 0 and (NAMESPACES or sandbox._reachable(os.path.realpath(sys.executable)))
# The layers this machine should give us: a case that needs a missing layer is skipped, not run.
EXPECTED = ({"rlimits"} | ({"uid"} if UID else set())
            | ({"netns", "ipcns", "mountns", "pidns", "rootfs", "tmpfs"} if NAMESPACES else set()))
TAG = uuid.uuid4().hex[:10]
SECRET = f"s3cr3t-{TAG}"
ESCAPES = {  # host paths hostile code tries to create
    "tmp": f"/tmp/sbx-escape-{TAG}", "var_tmp": f"/var/tmp/sbx-escape-{TAG}",
    "dev_shm": f"/dev/shm/sbx-escape-{TAG}", "run_lock": f"/run/lock/sbx-escape-{TAG}",
    "parent_cwd": str(Path.cwd() / f"sbx-escape-{TAG}"), "home": str(Path.home() / f"sbx-escape-{TAG}"),
    "etc": f"/etc/sbx-escape-{TAG}",
}
DENIED = r"Read-only file system|Permission denied|No such file or directory"
SHORT = {"timeout": 2}

# name: (source, run_python kwargs, expected status, regex the reason must match, layer needed)
CASES = {
    "infinite_loop": ("while True: pass", SHORT, "timeout", r"timed out after 2 s", "rlimits"),
    "cpu_burn": ("while True: pass", {"cpu_s": 1, "timeout": 8}, "timeout", r"cpu time limit exceeded \(1 s\)",
                 "rlimits"),
    "fork_bomb": ("import os, time\nn = 0\ntry:\n    while True:\n        if os.fork() == 0:\n"
                  "            time.sleep(60); os._exit(0)\n        n += 1\nexcept OSError:\n    print(n); raise\n",
                  {}, "error", r"BlockingIOError.*Resource temporarily unavailable", "uid"),
    "fork_bomb_persistent": ("import os, time\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n"
                             "        time.sleep(0.01)\n", SHORT, "timeout", r"timed out", "pidns"),
    "thread_bomb": ("import threading, time\nwhile True:\n"
                    "    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n",
                    {}, "error", r"can't start new thread", "rlimits"),
    "memory_bomb": ("bytearray(10**10)", {}, "memory", r"MemoryError", "rlimits"),
    "memory_growing": ("x = []\nwhile True:\n    x.append(bytearray(1 << 20))\n", {"memory_mb": 128}, "memory",
                       r"MemoryError", "rlimits"),
    "huge_output": ("import sys\nfor _ in range(100_000):\n    sys.stdout.write('x' * 999 + '\\n')\n", {}, "ok",
                    r"^$", "rlimits"),
    "endless_output": ("while True:\n    print('y' * 1000)\n", SHORT, "timeout", r"timed out", "rlimits"),
    **{f"write_{name}": (f"open({path!r}, 'w').write('pwned')", {}, "error", DENIED,
                         "uid" if name in ("home", "etc") else "rootfs")
       for name, path in ESCAPES.items() if name not in ("tmp", "dev_shm")},
    # /tmp and /dev/shm are private tmpfs in the sandbox: the write succeeds in there and leaves no trace here
    **{f"write_{name}": (f"open({ESCAPES[name]!r}, 'w').write('pwned')", {}, "ok", r"^$", "tmpfs")
       for name in ("tmp", "dev_shm")},
    "unix_socket_connect": ("import socket\nsocket.socket(socket.AF_UNIX).connect(UNIX_PATH)", {}, "error",
                            r"No such file or directory", "rootfs"),
    "read_parent_env": ("import os\nprint(sorted(os.environ))\n"
                        "for p in ('/proc/1/environ', f'/proc/{os.getppid()}/environ', '/proc/HOST_PID/environ'):\n"
                        "    try:\n        print(p, open(p, 'rb').read())\n"
                        "    except OSError as e:\n        print(p, type(e).__name__)\n", {}, "ok", r"^$", "pidns"),
    "loopback_connect": ("import socket\nsocket.create_connection(('127.0.0.1', PORT), timeout=2)", {}, "error",
                         r"Network is unreachable", "netns"),
    "outbound_connect": ("import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=2)", {}, "error",
                         r"Network is unreachable", "netns"),
    "sysv_ipc_listing": ("print(len(open('/proc/sysvipc/shm').read().splitlines()))", {}, "ok", r"^$", "ipcns"),
    "dns_lookup": ("import socket\nsocket.getaddrinfo('example.com', 443)", {}, "error", r"gaierror", "netns"),
    "subprocess_sleep": ("import subprocess\nsubprocess.run(['sleep', '100'])", SHORT, "timeout", r"timed out",
                         "pidns"),
    "subprocess_inherits_limits": ("import subprocess\nsubprocess.run(['sh', '-c', 'ulimit -v; ulimit -p; id -u'])",
                                   {}, "ok", r"^$", "uid"),
    "kill_parents": ("import os, signal\nfor pid in (os.getppid(), HOST_PID, 1):\n    try:\n"
                     "        os.kill(pid, signal.SIGKILL); print(pid, 'sent')\n"
                     "    except OSError as e:\n        print(pid, type(e).__name__)\n", {}, "ok", r"^$", "uid"),
    "setuid_root": ("import os\nos.setuid(0)", {}, "error", r"PermissionError.*Operation not permitted", "uid"),
    "file_size_bomb": ("open('big', 'wb').write(b'x' * 100_000_000)", {}, "error", r"File too large", "rlimits"),
    "file_size_signal": ("import signal\nsignal.signal(signal.SIGXFSZ, signal.SIG_DFL)\n"
                         "open('big', 'wb').write(b'x' * 100_000_000)", {}, "killed", r"file size limit", "rlimits"),
    "disk_fill": ("for i in range(1000):\n    open(f'f{i}', 'wb').write(b'x' * (4 << 20))\n", {}, "error",
                  r"No space left on device", "tmpfs"),
    "too_many_files": ("fs = [open('main.py') for _ in range(10_000)]", {}, "error", r"Too many open files",
                       "rlimits"),
    "sys_exit": ("import sys\nsys.exit(3)", {}, "error", r"^exit code 3$", "rlimits"),
    "os_exit": ("import os\nos._exit(7)", {}, "error", r"^exit code 7$", "rlimits"),
    "self_kill": ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", {}, "killed", r"killed by SIGKILL",
                  "rlimits"),
    "segfault": ("import ctypes\nctypes.string_at(0)", {}, "killed", r"killed by SIGSEGV", "rlimits"),
    "recursion_bomb": ("def f():\n    return f()\nf()", {}, "error", r"RecursionError", "rlimits"),
}


def _layers(v) -> set[str]:
    return {layer.split(":")[0] for layer in v.isolation}


def _uid(v) -> int | None:
    return next((int(layer.split(":")[1]) for layer in v.isolation if layer.startswith("uid:")), None)


def _processes_of(uid: int) -> list[str]:
    found = []
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and f"Uid:\t{uid}\t" in (d / "status").read_text():
                found.append(d.name)
        except OSError:
            pass
    return found


@pytest.fixture(scope="module")
def listener():
    """A TCP listener on the host's loopback and a world-connectable unix socket, like a database's."""
    tcp, unix = socket.socket(), socket.socket(socket.AF_UNIX)
    tcp.bind(("127.0.0.1", 0))
    unix.bind(f"/tmp/sbx-socket-{TAG}")
    os.chmod(unix.getsockname(), 0o777)
    for srv in (tcp, unix):
        srv.listen()
        srv.setblocking(False)
    yield tcp, unix
    tcp.close()
    unix.close()
    os.remove(f"/tmp/sbx-socket-{TAG}")


@pytest.fixture(scope="module")
def verdicts(listener):
    """Every runnable hostile case, four at a time, with a secret in our environment."""
    assert not any(os.path.exists(p) for p in ESCAPES.values())
    os.environ["SECRET"] = SECRET
    fill = {"PORT": str(listener[0].getsockname()[1]), "UNIX_PATH": repr(listener[1].getsockname()),
            "HOST_PID": str(os.getpid())}
    runnable = {name: case for name, case in CASES.items() if case[4] in EXPECTED}

    def run(item):
        name, (src, kw, *_) = item
        for key, value in fill.items():
            src = src.replace(key, value)
        return name, run_python(src, **kw)

    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            yield dict(pool.map(run, runnable.items()))
    finally:
        os.environ.pop("SECRET", None)
        for path in ESCAPES.values():  # never leave a trace, even when a test fails
            if os.path.exists(path):
                os.remove(path)


@pytest.mark.parametrize("name", list(CASES))
def test_hostile(name, verdicts, listener):
    src, kw, status, reason, needs = CASES[name]
    if needs not in EXPECTED:
        pytest.skip(f"layer {needs!r} is not available here (not root or no unshare)")
    v = verdicts[name]
    assert (v.status, _layers(v) >= EXPECTED) == (status, True), v
    assert re.search(reason, v.error), v.error
    if name.startswith("write_"):  # failed, or went to a private tmpfs: nothing on the host either way
        assert not os.path.exists(ESCAPES[name[len("write_"):]])
    elif name == "fork_bomb":
        assert 0 < int(v.stdout) < sandbox.NPROC
    elif name in ("huge_output", "endless_output"):
        assert v.stdout_truncated and len(v.stdout) < 65536 + 4096 and "truncated" in v.stdout
    elif name == "read_parent_env":
        assert "SECRET" not in v.stdout and SECRET not in v.stdout, v.stdout
        assert v.stdout.count("PermissionError") + v.stdout.count("FileNotFoundError") == 3, v.stdout
    elif name in ("loopback_connect", "unix_socket_connect"):
        with pytest.raises(BlockingIOError):
            listener[name.startswith("unix")].accept()  # nothing ever reached the host's listener
    elif name == "subprocess_inherits_limits":
        vmem, nproc, uid = v.stdout.split()
        assert (int(vmem), int(nproc), int(uid)) == (512 * 1024, sandbox.NPROC, _uid(v))
    elif name == "sysv_ipc_listing":
        assert v.stdout == "1\n", v.stdout  # only the header: none of the host's shared memory segments
    elif name == "kill_parents":
        assert "sent" not in v.stdout, v.stdout  # and we are still alive to check it
    if name.startswith(("fork_bomb", "subprocess_sleep", "thread_bomb")) and _uid(v) is not None:
        deadline = time.monotonic() + 3  # nothing it started survives the sandbox
        while _processes_of(_uid(v)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _processes_of(_uid(v)) == []


def test_all_layers_active_when_root_with_unshare():
    if not NAMESPACES:
        pytest.skip("needs root and a working unshare")
    v = run_python("print('hi')")
    assert _layers(v) == {"netns", "ipcns", "mountns", "pidns", "rootfs", "tmpfs", "uid", "rlimits"}, v.isolation


def test_passing_snippet_and_private_workdir():
    src = ("import os, tempfile\nopen('out.txt', 'w').write('x')\ntempfile.TemporaryFile().close()\n"
           "from pkg import helper\nprint(helper.twice(21), os.environ['HOME'] == os.getcwd())")
    workdirs = set(Path(tempfile.gettempdir()).glob("synthchain-sandbox-*"))
    v = run_python(src, files={"pkg/helper.py": "def twice(x):\n    return 2 * x\n"})
    assert (v.status, v.exit_code, v.signal, v.error, v.stdout) == ("ok", 0, None, "", "42 True\n"), v
    assert set(Path(tempfile.gettempdir()).glob("synthchain-sandbox-*")) <= workdirs  # the throw-away dir is gone
    with pytest.raises(ValueError):
        run_python("pass", files={"../evil.py": ""})


def test_assertion_failure_and_syntax_error():
    failed, broken = run_many(["assert 1 + 1 == 3", "def f(:\n    pass"])
    assert (failed.status, failed.exit_code, failed.error) == ("error", 1, "AssertionError")
    assert broken.status == "error" and broken.error.startswith("SyntaxError")
    assert "Traceback" in failed.stderr and json.loads(json.dumps(failed.to_dict()))["status"] == "error"


def test_run_many_keeps_order():
    verdicts = run_many([f"print({i})" for i in range(5)], max_workers=2, timeout=5)
    assert [v.stdout.strip() for v in verdicts] == [str(i) for i in range(5)]


def test_degraded_without_namespaces(monkeypatch):
    monkeypatch.setattr(sandbox, "_unshare_prefix", lambda: None)
    ok, loop = run_many(["print('plain')", "while True: pass"], timeout=1.5)
    assert ok.status == "ok" and ok.stdout == "plain\n"
    assert "rlimits" in ok.isolation and not {"netns", "pidns", "rootfs"} & _layers(ok)
    assert (loop.status, loop.error) == ("timeout", "timed out after 1.5 s")


def test_cli_json(tmp_path, capsys):
    good, bad = tmp_path / "good.py", tmp_path / "bad.py"
    good.write_text("print('hello')")
    bad.write_text("while True: pass")
    assert main(["run", str(good), "--json", "--timeout", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["status"], out["stdout"]) == ("ok", "hello\n") and "rlimits" in out["isolation"]
    assert main(["run", str(bad), "--json", "--timeout", "1"]) == 1
    assert json.loads(capsys.readouterr().out)["status"] == "timeout"
    assert main(["run", str(good)]) == 0
    assert capsys.readouterr().out.startswith("ok: exit 0")


def test_cli_missing_file(tmp_path, capsys):
    missing = tmp_path / "nope.py"
    assert main(["run", str(missing), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.strip() == f"sandbox: no such file: {missing}"
