"""For tests that run a server in a process of its own: a free port, and a
connection once the server is up."""

from __future__ import annotations

import socket
import subprocess
import time
from typing import Any

import tarantool


def free_port() -> int:
    """A port nothing listens on now (the OS's pick)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def connect_when_up(port: int, proc: subprocess.Popen[Any], timeout: float = 30.0,
                    **options: Any) -> tarantool.Connection:
    """A tarantool-python connection to `proc`'s server, retried until it
    listens; fails at once if `proc` has exited."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return tarantool.Connection("127.0.0.1", port, **options)
        except tarantool.error.NetworkError:
            out = proc.stdout.read() if proc.stdout is not None and proc.poll() is not None else ""
            assert proc.poll() is None and time.monotonic() < deadline, out
            time.sleep(0.05)
