"""Execution sandbox for untrusted generated Python code (used by the execution verifier and the CLI).

`run_python(source)` runs the code in a fresh child interpreter and returns a `Verdict`. The layers, and why:

* netns   -- ``unshare --net``: an empty network namespace whose loopback is down, so the code reaches neither
             the internet (no exfiltration, no downloads) nor services listening on the host's 127.0.0.1.
* ipcns   -- ``unshare --ipc``: no access to the host's System V shared memory, semaphores and message queues.
* pidns   -- ``unshare --pid --fork --mount-proc``: the code sees only its own processes, so it can neither signal
             nor read /proc/<pid>/environ of host processes, and everything it spawns dies with the namespace.
* mountns -- a private mount table, so these mounts never reach the host:
  rootfs  -- the code is chrooted into a minimal root: read-only, nosuid binds of /usr, /bin, /lib*, /etc and the
             interpreter's prefix (pyenv's lives under /root, which itself stays hidden), null/zero/random devices
             and a fresh /proc. Everything else (/home, /root, /var, /run, the host's /tmp, the caller's cwd) does
             not exist in there: no writes, no reading other sandboxes' files, and no connecting to host services
             through unix sockets (/run/postgresql, /run/mysqld ...), which a network namespace does not cover.
  tmpfs   -- /tmp (the working directory, HOME and TMPDIR, holding a copy of the files) and /dev/shm are fresh
             size-capped tmpfs: the only writable places, bounded (no disk filling), gone with the namespace.
* uid     -- when we are root the code runs as a fresh, unused uid/gid (not `nobody`): it owns no file outside
             its directory, and RLIMIT_NPROC (counted per uid) caps its processes without sharing the count with
             concurrent sandboxes or host daemons. no_new_privs is set as well.
* rlimits -- CPU seconds, address space (memory), processes+threads, file size, open files, no core dumps.
* parent  -- a wall-clock timeout that kills the whole process group (the pid namespace takes the rest), output
             read from pipes with a cap (a child printing gigabytes costs us nothing), a scrubbed environment
             (no inherited secrets), a throw-away directory.

The user code runs as ``python -S -s -B main.py``: no site-packages, no user site, no bytecode files; the
environment is ours, so PYTHON* variables are safe (``-I`` would also drop the script's directory from sys.path,
which breaks helper modules passed in `files`). Without ``site``, the ``exit()``/``quit()`` builtins are absent.
Without root or a working ``unshare`` the namespaces and the uid switch are skipped; the rest still applies.
`Verdict.isolation` lists the layers that were actually active.
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

NPROC, NOFILE, FILE_SIZE, DISK_MB, TAIL = 16, 64, 8 << 20, 64, 2048
ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
       "PYTHONHASHSEED": "0", "PYTHONIOENCODING": "utf-8"}

# Runs as `python -I -S -c _LAUNCHER CONFIG`, inside the namespaces when available (then it is their pid 1):
# mounts, then forks the user code (rlimits, uid drop, exec), reaps, and reports on the status pipe as JSON lines.
_LAUNCHER = r'''
import ctypes, json, os, resource, shutil, signal, sys
cfg = json.loads(sys.argv[1]); fd, work, uid = cfg["status_fd"], cfg["work"], cfg["uid"]
libc = ctypes.CDLL(None, use_errno=True)
def report(**kw): os.write(fd, (json.dumps(kw) + "\n").encode())
def check(rc, what):
    if rc != 0: e = ctypes.get_errno(); raise OSError(e, os.strerror(e), what)
NOSUID, NODEV, NOEXEC, BIND, REC = 2, 4, 8, 4096, 16384  # MS_* mount flags
def mount(src, dst, fstype, flags, data=None):
    check(libc.mount(src.encode(), dst.encode(), fstype.encode(), ctypes.c_ulong(flags), data and data.encode()), dst)
try:
    layers = []
    if os.getpid() == 1:  # inside unshare's namespaces: build a minimal read-only root and chroot into it
        layers += ["netns", "ipcns", "mountns", "pidns"]
        src, prefix = os.open(work, os.O_RDONLY | os.O_DIRECTORY), os.open(cfg["prefix"], os.O_PATH)
        new = work  # the new root: an empty tmpfs over the (already opened) work directory
        mount("tmpfs", new, "tmpfs", NOSUID | NODEV, "size=1m,mode=755")
        for d in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc"):
            if os.path.islink(d): os.symlink(os.readlink(d), new + d)
            elif os.path.isdir(d): os.mkdir(new + d); mount(d, new + d, "", BIND | REC)
        if not os.path.isdir(new + cfg["prefix"]):  # e.g. pyenv under /root: bring in the interpreter only
            os.makedirs(new + cfg["prefix"]); mount(f"/proc/self/fd/{prefix}", new + cfg["prefix"], "", BIND | REC)
        for d in ("/proc", "/tmp", "/dev/shm"): os.makedirs(new + d)
        for dev in ("null", "zero", "full", "random", "urandom"):
            open(new + "/dev/" + dev, "w").close(); mount("/dev/" + dev, new + "/dev/" + dev, "", BIND)
        for i, name in enumerate(("stdin", "stdout", "stderr")): os.symlink(f"/proc/self/fd/{i}", new + "/dev/" + name)
        os.symlink("/proc/self/fd", new + "/dev/fd")
        mount("proc", new + "/proc", "proc", NOSUID | NODEV | NOEXEC)
        attr = (ctypes.c_uint64 * 4)(1 | 2, 0, 0, 0)  # MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID, AT_RECURSIVE
        check(libc.syscall(442, -100, new.encode(), 0x8000, attr, 32), "mount_setattr")
        layers.append("rootfs")
        mount("tmpfs", new + "/dev/shm", "tmpfs", NOSUID | NODEV, "size=16m,nr_inodes=1024,mode=1777")
        mount("tmpfs", new + "/tmp", "tmpfs", NOSUID | NODEV,
              f"size={cfg['disk_mb']}m,nr_inodes=4096,mode=700,uid={uid or 0},gid={uid or 0}")
        shutil.copytree(f"/proc/self/fd/{src}", new + "/tmp", dirs_exist_ok=True)
        os.chdir(new); os.chroot("."); os.close(src); os.close(prefix)
        work = "/tmp"; os.environ.update(HOME=work, TMPDIR=work)
        layers.append("tmpfs")
    if uid is not None:
        for root, dirs, files in os.walk(work):
            for name in [root] + [os.path.join(root, n) for n in dirs + files]: os.chown(name, uid, uid)
        layers.append(f"uid:{uid}")
    report(layers=layers + ["rlimits"])
    os.set_inheritable(fd, False)
    pid = os.fork()
    if pid == 0:
        try:
            for name, value in cfg["limits"].items():
                resource.setrlimit(getattr(resource, name), (value, value + (name == "RLIMIT_CPU")))
            if uid is not None:
                os.setgroups([]); os.setresgid(uid, uid, uid); os.setresuid(uid, uid, uid)
            check(libc.prctl(38, 1, 0, 0, 0), "no_new_privs")
            os.chdir(work)
            os.execve(cfg["exe"], [cfg["exe"], "-S", "-s", "-B", "main.py"], os.environ)
        except BaseException as e:
            report(error=f"{type(e).__name__}: {e}"); os._exit(127)
    signal.signal(signal.SIGALRM, lambda *_: os.kill(pid, signal.SIGKILL))  # in case our parent is gone
    signal.alarm(cfg["deadline"])
    while True:
        p, status, ru = os.wait4(-1, 0)
        if p == pid: break
    report(wait_status=status, cpu=ru.ru_utime + ru.ru_stime)
except Exception as e:
    report(error=f"{type(e).__name__}: {e}")
'''


@dataclasses.dataclass
class Verdict:
    status: str  # ok | error | timeout | memory | killed
    exit_code: int | None
    signal: str | None
    stdout: str
    stderr: str
    stdout_truncated: bool
    stderr_truncated: bool
    wall_s: float
    error: str  # one-line reason, "" when ok
    isolation: list[str]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class _Capture:
    """Keeps the first `cap` bytes and the last TAIL bytes of a stream, counts the rest."""

    def __init__(self, cap: int):
        self.cap, self.head, self.tail, self.total = cap, bytearray(), b"", 0

    def add(self, data: bytes) -> None:
        self.total += len(data)
        if len(self.head) < self.cap:
            self.head += data[: self.cap - len(self.head)]
        self.tail = (self.tail + data)[-TAIL:]

    def text(self) -> str:
        omitted = self.total - len(self.head)
        out = bytes(self.head)
        if omitted:
            tail = self.tail[-min(omitted, TAIL):]
            out += f"\n[... truncated: {omitted - len(tail)} bytes omitted ...]\n".encode() + tail
        return out.decode("utf-8", "replace")


@functools.lru_cache(maxsize=None)
def _unshare_prefix() -> tuple[str, ...] | None:
    """The unshare command line when we are root and it works here; None means run without namespaces."""
    exe = shutil.which("unshare") or "/usr/bin/unshare"
    cmd = (exe, "--net", "--ipc", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc", "--propagation",
           "private")
    if os.geteuid() != 0 or not os.path.exists(exe):
        return None
    try:
        return cmd if subprocess.run([*cmd, "true"], capture_output=True, timeout=10).returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def _reachable(path: str) -> bool:
    """Whether every directory above `path` can be traversed by any user."""
    return all(os.stat(p).st_mode & 1 for p in Path(path).parents)


def _pump(sel: selectors.BaseSelector, caps: dict[int, _Capture], until: float) -> None:
    while sel.get_map() and (left := until - time.monotonic()) > 0:
        for key, _ in sel.select(left):
            data = os.read(key.fd, 1 << 16)
            if data:
                caps[key.fd].add(data)
            else:
                sel.unregister(key.fd)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def run_python(source: str, *, timeout: float = 10.0, memory_mb: int = 512, cpu_s: float | None = None,
               max_output: int = 65536, files: dict[str, str] | None = None) -> Verdict:
    """Run `source` as main.py (beside `files`, relative name -> text) under every layer available here.

    `timeout` is wall-clock seconds, `cpu_s` CPU seconds (default: the timeout), `memory_mb` the address space,
    `max_output` the bytes of stdout and of stderr kept (head, plus the last few lines after a marker)."""
    cpu = max(1, math.ceil(cpu_s if cpu_s is not None else timeout))
    ns = _unshare_prefix()
    exe = os.path.realpath(sys.executable)
    uid = 1_000_000 + secrets.randbelow(1_000_000_000) if os.geteuid() == 0 and (ns or _reachable(exe)) else None
    limits = {"RLIMIT_CPU": cpu, "RLIMIT_AS": memory_mb << 20, "RLIMIT_FSIZE": FILE_SIZE, "RLIMIT_NOFILE": NOFILE,
              "RLIMIT_CORE": 0, **({"RLIMIT_NPROC": NPROC} if uid is not None else {})}
    work = tempfile.mkdtemp(prefix="synthchain-sandbox-")
    status_r, status_w = os.pipe()
    try:
        for name, text in {**(files or {}), "main.py": source}.items():
            if os.path.isabs(name) or ".." in Path(name).parts:
                raise ValueError(f"file name must be relative and stay inside the sandbox: {name!r}")
            (Path(work) / name).parent.mkdir(parents=True, exist_ok=True)
            (Path(work) / name).write_text(text)
        cfg = {"status_fd": status_w, "work": work, "uid": uid, "prefix": os.path.realpath(sys.base_prefix),
               "exe": exe, "limits": limits, "disk_mb": DISK_MB, "deadline": math.ceil(timeout) + 5}
        cmd = [*(ns + ("--",) if ns else ()), exe, "-I", "-S", "-c", _LAUNCHER, json.dumps(cfg)]
        start = time.monotonic()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                cwd=work, env={**ENV, "HOME": work, "TMPDIR": work}, start_new_session=True,
                                pass_fds=(status_w,))
        os.close(status_w)
        status_w = -1
        caps = {proc.stdout.fileno(): _Capture(max_output), proc.stderr.fileno(): _Capture(max_output),
                status_r: _Capture(1 << 16)}
        with selectors.DefaultSelector() as sel:
            for fd in caps:
                sel.register(fd, selectors.EVENT_READ)
            _pump(sel, caps, start + timeout)
            try:
                proc.wait(max(0.0, start + timeout - time.monotonic()))
                timed_out = False
            except subprocess.TimeoutExpired:
                timed_out = True
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
            wall = time.monotonic() - start
            _pump(sel, caps, time.monotonic() + 1.0)  # drain what is left in the pipes
        proc.stdout.close()
        proc.stderr.close()
    finally:
        for fd in (status_r, status_w):
            if fd >= 0:
                os.close(fd)
        shutil.rmtree(work, ignore_errors=True)
    out, err, st = (caps[fd] for fd in caps)
    info: dict = {}
    for line in st.text().splitlines():
        info.update(json.loads(line))
    return _verdict(info, timed_out, out, err, wall, timeout, cpu)


def _verdict(info: dict, timed_out: bool, out: _Capture, err: _Capture, wall: float, timeout: float,
             cpu: int) -> Verdict:
    code = sig = None
    if "wait_status" in info:
        ws = info["wait_status"]
        sig, code = (os.WTERMSIG(ws), None) if os.WIFSIGNALED(ws) else (None, os.WEXITSTATUS(ws))
    tail = err.tail.decode("utf-8", "replace")
    last = _last_line(tail)
    if timed_out:
        status, reason, sig = "timeout", f"timed out after {timeout:g} s", signal.SIGKILL
    elif "error" in info or "wait_status" not in info:
        status, reason = "error", f"sandbox setup failed: {info.get('error') or last or 'no status'}"
    elif sig is None and code == 0:
        status, reason = "ok", ""
    elif sig == signal.SIGXCPU or (sig == signal.SIGKILL and info.get("cpu", 0) >= cpu):
        status, reason = "timeout", f"cpu time limit exceeded ({cpu} s)"
    elif "MemoryError" in last or (sig is not None and "memory" in tail.lower()):
        status, reason = "memory", last or "out of memory"
    elif sig == signal.SIGXFSZ:
        status, reason = "killed", "file size limit exceeded (SIGXFSZ)"
    elif sig is not None:
        status, reason = "killed", f"killed by {signal.Signals(sig).name}"
    else:
        status, reason = "error", last or f"exit code {code}"
    return Verdict(status, code, signal.Signals(sig).name if sig else None, out.text(), err.text(),
                   out.total > out.cap, err.total > err.cap, round(wall, 3), reason, info.get("layers", []))


def run_file(path: str | os.PathLike, **kw) -> Verdict:
    return run_python(Path(path).read_text(), **kw)


def run_many(sources: list[str], *, max_workers: int = 2, **kw) -> list[Verdict]:
    """Run many candidates concurrently (each in its own sandbox); verdicts come back in input order."""
    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        return list(pool.map(lambda src: run_python(src, **kw), sources))


def main(argv: list[str]) -> int:
    """`sandbox run FILE [--timeout S] [--memory-mb M] [--cpu-s S] [--json]`: 0 if the code ran ok, else 1."""
    parser = argparse.ArgumentParser(prog="synthchain sandbox", description="run untrusted Python in a sandbox")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run a Python file and print its verdict")
    p.add_argument("file")
    p.add_argument("--timeout", type=float, default=10.0, help="wall-clock limit in seconds (default 10)")
    p.add_argument("--memory-mb", type=int, default=512, help="address-space limit in MiB (default 512)")
    p.add_argument("--cpu-s", type=float, default=None, help="CPU-time limit in seconds (default: the timeout)")
    p.add_argument("--json", action="store_true", help="print the verdict as one JSON object")
    args = parser.parse_args(argv)
    if not Path(args.file).is_file():
        print(f"sandbox: no such file: {args.file}", file=sys.stderr)
        return 2
    v = run_file(args.file, timeout=args.timeout, memory_mb=args.memory_mb, cpu_s=args.cpu_s)
    if args.json:
        print(json.dumps(v.to_dict()))
    else:
        print(f"{v.status}: {v.error or 'exit 0'} ({v.wall_s:.2f} s; isolation: {', '.join(v.isolation) or 'none'})")
    return 0 if v.status == "ok" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
