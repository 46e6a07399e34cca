"""A Styx server as a child process, for the peer suites' harnesses.

`StyxProcess(app, port).start()` runs `python -m styx serve APP --listen
HOST:PORT` with the Styx tree in STYX_PEERS_ROOT (default: this checkout) on
PYTHONPATH, and waits for the greeting. `stop()` terminates it. Log lines go to
STYX_PEERS_LOG_DIR, one file per start."""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = Path(os.environ.get("STYX_PEERS_ROOT") or HERE.parent.parent)
PYTHON = os.environ.get("STYX_PEERS_PYTHON") or sys.executable
LOG_DIR = Path(os.environ.get("STYX_PEERS_LOG_DIR") or (HERE / ".work" / "logs"))
_count = itertools.count(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _connect(host: str, port: int | str) -> socket.socket:
    if host == "unix/":
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(1)
        s.connect(str(port))
        return s
    return socket.create_connection((host, int(port)), timeout=1)


def _greeting(host: str, port: int | str, n: int = 128) -> bytes:
    """The first `n` bytes the server sends (fewer if it closes first)."""
    with _connect(host, port) as s:
        data = b""
        while len(data) < n:
            chunk = s.recv(n - len(data))
            if not chunk:
                break
            data += chunk
        return data


def terminate(proc: subprocess.Popen[bytes]) -> None:
    """Stop a server: SIGTERM, then SIGKILL if it has not gone in 10 s."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_greeting(host: str, port: int | str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if len(_greeting(host, port)) == 128:
                return True
        except OSError:
            pass
        time.sleep(0.05)
    return False


def greeting_version(host: str, port: int | str, timeout: float = 10.0) -> tuple[int, ...]:
    """The version the server's greeting names ("Tarantool 3.0.0 (Binary) ...")."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            words = _greeting(host, port, 64).decode("ascii", "replace").split()
            return tuple(int(x) for x in words[1].split("-")[0].split("."))
        except (OSError, IndexError, ValueError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class StyxProcess:
    def __init__(self, app: str | Path, port: int | str, host: str = "127.0.0.1") -> None:
        """`host` "unix/" and `port` a path: listen on that unix socket."""
        self.app, self.host, self.port = str(app), host, port
        self.proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self, wait: bool = True, timeout: float = 20.0) -> StyxProcess:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        log = open(LOG_DIR / f"styx-{Path(self.app).stem}-{os.getpid()}-{next(_count)}.log", "w")
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        listen = f"unix/:{self.port}" if self.host == "unix/" else f"{self.host}:{self.port}"
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "styx", "serve", self.app, "--listen", listen]
            + (["--wal-mode", "none"] if (ROOT / "styx" / "wal").is_dir() else []),  # a tree that has a WAL
            cwd=str(ROOT), env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        if wait and not wait_greeting(self.host, self.port, timeout):
            self.stop()
            raise RuntimeError(f"styx did not start on {self.host}:{self.port} (app {self.app})")
        return self

    def stop(self) -> None:
        p, self.proc = self.proc, None
        if p is not None:
            terminate(p)
