"""SIGTERM: stop accepting, finish in-flight requests, write their replies, exit 0."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.iproto import Raw, packet
from tests.spawn import free_port

ROOT = Path(__file__).parent.parent
APP = str(Path(__file__).parent / "apps" / "app.py")



def start_styx(*args: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "styx", "serve", APP, "--listen", f"127.0.0.1:{port}", "--wal-mode", "none",
         *args],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            Raw(port).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(proc.stdout.read().decode())


@pytest.mark.parametrize("threads", ["0", "2"])
def test_sigterm_finishes_in_flight_requests(threads):
    proc, port = start_styx("--iproto-threads", threads, "--shutdown-timeout", "5")
    try:
        c = Raw(port)
        idle = Raw(port)
        c.send(b"".join(packet({0: 0x0A, 1: i}, {0x22: "sleep", 0x21: [0.5, i]}) for i in range(5)))
        time.sleep(0.1)  # the calls are running
        t0 = time.time()
        proc.send_signal(signal.SIGTERM)
        replies = {}
        for _ in range(5):
            h, b = c.reply()
            replies[h[1]] = b[0x30]
        assert replies == {i: [i] for i in range(5)}
        assert proc.wait(10) == 0
        assert time.time() - t0 < 5
        assert c.closed_by_peer(2) and idle.closed_by_peer(2)
        with pytest.raises(OSError):
            Raw(port)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_sigterm_gives_up_after_the_timeout():
    proc, port = start_styx("--shutdown-timeout", "0.5")
    try:
        c = Raw(port)
        c.send(packet({0: 0x0A, 1: 1}, {0x22: "sleep", 0x21: [30, 1]}))
        time.sleep(0.1)
        t0 = time.time()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert time.time() - t0 < 3
        assert c.closed_by_peer(2)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_sigint_exits_zero_when_idle():
    proc, port = start_styx()
    try:
        with Raw(port) as c:
            c.request(0x40, 1)
            assert c.reply()[0][0] == 0
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
