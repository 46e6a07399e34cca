"""Server processes under test: Styx (`styx serve bench/app.py`) and Tarantool
(`tarantool bench/tarantool_init.lua`), each started with a raised open-files
limit (through `prlimit`), waited for (connect + greeting), measured through
/proc, and killed at the end."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from loadgen import GREETING_SIZE, check_greeting

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")

_live: list[ServerProc] = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_nofile(want: int) -> int:
    """Raise this process's RLIMIT_NOFILE to at least `want` if it can; children
    inherit it. Returns the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= want:
        return soft
    if hard != resource.RLIM_INFINITY and hard < want:
        try:  # root may raise the hard limit too
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            return want
        except (ValueError, OSError):
            want = hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return want


def cpu_seconds(pid: int) -> float:
    """utime + stime of a whole process (all its threads), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of stat(5)


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine, all cores, from /proc/stat.
    Busy includes time no process is charged for (softirq of loopback TCP)."""
    with open("/proc/stat") as f:
        vals = [int(v) for v in f.readline().split()[1:]]
    total = sum(vals[:8])  # user nice system idle iowait irq softirq steal
    idle = vals[3] + vals[4]
    return (total - idle) / CLK_TCK, total / CLK_TCK


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def nofile_limit(pid: int) -> int:
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    return -1


class ServerProc:
    """One server subprocess. `label` is what the table shows."""

    def __init__(self, label: str, kind: str, argv: list[str], port: int,
                 env: dict[str, str] | None = None, nofile: int = 20000) -> None:
        self.label = label
        self.kind = kind  # "styx" or "tarantool"
        self.port = port
        self.workdir = ""  # made by start(), removed by stop()
        self.log_path = ""
        self.workdir_env: str | None = None  # env var that gets the work directory
        self.env = dict(os.environ, **(env or {}))
        self.nofile = nofile
        if shutil.which("prlimit"):
            # prlimit execs the command: the pid we get is the server's own.
            self.argv = ["prlimit", f"--nofile={nofile}:{nofile}", "--"] + argv
        else:
            self.argv = argv
        self.proc: subprocess.Popen[bytes] | None = None
        self.threads: int | None = None  # Styx's --iproto-threads; None for Tarantool

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 30.0) -> ServerProc:
        if not self.workdir:
            self.workdir = tempfile.mkdtemp(prefix=f"styx-bench-{self.kind}-")
            self.log_path = os.path.join(self.workdir, "server.log")
            if self.workdir_env:
                self.env[self.workdir_env] = self.workdir
        elif self.proc is not None:  # a restart: keep the previous log
            self.restarts = getattr(self, "restarts", 0) + 1
            self.log_path = os.path.join(self.workdir, f"server.{self.restarts}.log")
        log = open(self.log_path, "wb")
        preexec = None
        if self.argv[0] != "prlimit":
            n = self.nofile

            def preexec() -> None:  # the "small wrapper" raising the limit
                try:
                    resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
                except (ValueError, OSError):
                    pass
        self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=self.workdir, env=self.env,
                                     preexec_fn=preexec, start_new_session=True)
        log.close()
        if self not in _live:
            _live.append(self)
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        """Ready = accepts a connection and sends a whole, well-formed greeting."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.label} exited with {self.proc.returncode} while starting:\n"
                                   + self.log_tail())
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2.0) as s:
                    g = b""
                    while len(g) < GREETING_SIZE:
                        chunk = s.recv(GREETING_SIZE - len(g))
                        if not chunk:
                            raise ConnectionError("closed before the greeting")
                        g += chunk
                    check_greeting(g)
                    return
            except OSError as e:
                last = e
                time.sleep(0.05)
        raise TimeoutError(f"{self.label} not ready in {timeout} s ({last}):\n" + self.log_tail())

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n: int = 20) -> str:
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode(errors="replace").splitlines()
            return "\n".join(lines[-n:])
        except OSError:
            return ""

    def death(self) -> str | None:
        """None while running; else how the server ended, and where its log is
        kept (the work directory is then not removed)."""
        if self.proc is None or self.proc.poll() is None:
            return None
        self.keep_log = True
        rc = self.proc.returncode
        how = f"killed by signal {-rc}" if rc < 0 else f"exited with {rc}"
        if rc == 0 and self.kind == "styx" and "shutting down" in self.log_tail(50):
            how += " after a graceful shutdown (it got SIGTERM/SIGINT, not from this bench)"
        return f"{self.label} {how}; log: {self.log_path}"

    keep_log = False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            except ProcessLookupError:
                pass
        if self in _live:
            _live.remove(self)
        if not self.keep_log and self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = ""

    def __enter__(self) -> ServerProc:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def stop_all() -> None:
    for s in list(_live):
        try:
            s.stop()
        except Exception:  # noqa: BLE001 - whatever failed, the run goes on and says so
            if s.proc is not None and s.proc.poll() is None:
                s.proc.kill()


DEFAULT_MEMTX_MEMORY = 256 << 20  # both servers' own default


def styx_server(threads: int, net_msg_max: int, nofile: int,
                memtx_memory: int = DEFAULT_MEMTX_MEMORY, keys: int = 10000, wal_mode: str = "none",
                tree: str | None = None) -> ServerProc:
    """`keys`: how many tuples app.py's init() puts in space `bench` (BENCH_KEYS).
    The WAL, if any, goes to the server's own temporary directory (its cwd).
    `tree`: run the Styx of that source tree instead (a baseline, "base t=N")."""
    port = free_port()
    styx = [str(ROOT / ".venv" / "bin" / "styx")] if tree is None else [sys.executable, "-m", "styx"]
    argv = styx + ["serve", str(BENCH / "app.py"), "--listen", f"127.0.0.1:{port}",
            "--iproto-threads", str(threads), "--net-msg-max", str(net_msg_max),
            "--memtx-memory", str(memtx_memory), "--wal-mode", wal_mode,
            "--log-level", "INFO"]  # INFO: start and shutdown lines only
    srv = ServerProc(f"{'styx' if tree is None else 'base'} t={threads}", "styx", argv, port, nofile=nofile)
    srv.threads = threads
    srv.env.update(BENCH_KEYS=str(keys))
    if tree is not None:
        srv.env["PYTHONPATH"] = os.path.abspath(tree)
    return srv


def tarantool_server(net_msg_max: int, nofile: int, binary: str = "tarantool",
                     memtx_memory: int = DEFAULT_MEMTX_MEMORY, keys: int = 10000,
                     wal_mode: str = "none") -> ServerProc:
    port = free_port()
    argv = [binary, str(BENCH / "tarantool_init.lua")]
    srv = ServerProc("tarantool", "tarantool", argv, port, nofile=nofile)
    srv.env.update(BENCH_LISTEN=f"127.0.0.1:{port}", BENCH_NET_MSG_MAX=str(net_msg_max),
                   BENCH_MEMTX_MEMORY=str(memtx_memory), BENCH_KEYS=str(keys), BENCH_WAL_MODE=wal_mode)
    srv.workdir_env = "BENCH_WORK_DIR"
    return srv


def tarantool_version(binary: str = "tarantool") -> str:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
        return out.splitlines()[0].strip()
    except (OSError, subprocess.SubprocessError, IndexError):
        return "tarantool (unknown version)"
