"""Graceful shutdown as Tarantool 2.10+ does it, Styx as a subprocess (SIGTERM).

server.py `_shutdown`: stop accepting, broadcast `box.shutdown = true`, wait
(up to --shutdown-timeout) for requests in flight to finish and reach the
sockets and for the watchers of box.shutdown to leave, then close what is
left and exit 0. Clients such as net.box watch box.shutdown, and on `true`
stop sending, collect their replies and close.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.iproto import Raw, packet
from tests.spawn import free_port

ROOT = Path(__file__).parent.parent
APP = str(Path(__file__).parent / "apps" / "watch_app.py")

CALL, PING, WATCH, EVENT = 0x0A, 0x40, 74, 76
EVENT_KEY, EVENT_DATA, DATA = 0x57, 0x58, 0x30



class Styx:
    """One `python -m styx serve` process; its output goes to a file."""

    def __init__(self, log: Path, *args: str) -> None:
        self.port = free_port()
        self.log = log
        self._out = open(log, "wb")  # noqa: SIM115 - closed by stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "styx", "serve", APP, "--listen", f"127.0.0.1:{self.port}",
             "--wal-mode", "none", *args],
            cwd=ROOT, stdout=self._out, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                Raw(self.port).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(self.output())

    def term(self) -> float:
        """SIGTERM; returns when it was sent (monotonic)."""
        t = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        return t

    def output(self) -> str:
        self._out.flush()
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._out.close()


@pytest.fixture
def styx(tmp_path: Path) -> Iterator[Any]:
    started: list[Styx] = []

    def start(*args: str) -> Styx:
        s = Styx(tmp_path / f"styx{len(started)}.log", *args)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def call_packet(sync: int, name: str, *args: Any) -> bytes:
    return packet({0: CALL, 1: sync}, {0x22: name, 0x21: list(args)})


def watch_shutdown(c: Raw, sync: int) -> None:
    """Watch box.shutdown as net.box does: the first EVENT (no value yet),
    then the acknowledgement, so the next value comes at once."""
    c.request(WATCH, sync, {EVENT_KEY: "box.shutdown"})
    h, b = c.reply()
    assert (h, b) == ({0: EVENT, 1: sync}, {EVENT_KEY: "box.shutdown"})
    c.request(WATCH, sync + 1, {EVENT_KEY: "box.shutdown"})
    c.request(PING, sync + 2)  # the ack is in once this is answered
    h, b = c.reply()
    assert (h[0], h[1]) == (0, sync + 2)


def expect_shutdown_event(c: Raw, sync: int) -> None:
    h, b = c.reply()
    assert (h, b) == ({0: EVENT, 1: sync}, {EVENT_KEY: "box.shutdown", EVENT_DATA: True})


def refused(port: int) -> bool:
    """A new connection is refused (not accepted and left hanging)."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
    except ConnectionRefusedError:
        return True
    s.close()
    return False


# -- requests in flight ---------------------------------------------------------------------------


@pytest.mark.parametrize("threads", ["0", "2"])
def test_requests_in_flight_all_get_their_replies(styx, threads):
    s = styx("--iproto-threads", threads, "--shutdown-timeout", "10")
    a, b = Raw(s.port), Raw(s.port)
    try:
        # Slow calls of different lengths on two connections, all running.
        a.send(b"".join(call_packet(i, "sleep", 0.3 + 0.1 * i, f"a{i}") for i in range(5)))
        b.send(b"".join(call_packet(i, "sleep", 0.6, f"b{i}") for i in range(3)))
        time.sleep(0.15)
        t0 = s.term()
        got = {}
        for c, n in ((a, 5), (b, 3)):
            for _ in range(n):
                h, body = c.reply()  # no EVENT: neither watches box.shutdown
                assert h[0] == 0, (h, body)
                got[body[DATA][0]] = h[1]
        assert got == {**{f"a{i}": i for i in range(5)}, **{f"b{i}": i for i in range(3)}}
        # Nothing keeps the server once the replies are out: it does not wait
        # for the 10 s timeout.
        assert s.proc.wait(5) == 0
        assert time.monotonic() - t0 < 3.0
        assert a.closed_by_peer(1) and b.closed_by_peer(1)
        assert "shutdown timeout" not in s.output()
    finally:
        a.close()
        b.close()


# -- watchers of box.shutdown ---------------------------------------------------------------------


@pytest.mark.parametrize("threads", ["0", "2"])
def test_watcher_gets_shutdown_event_then_leaves_and_server_exits_at_once(styx, threads):
    s = styx("--iproto-threads", threads, "--shutdown-timeout", "10")
    w = Raw(s.port)
    idle = Raw(s.port)  # not a watcher: not waited for
    try:
        watch_shutdown(w, 5)
        t0 = s.term()
        expect_shutdown_event(w, 6)  # the sync of the acknowledging WATCH
        assert time.monotonic() - t0 < 2.0
        # The server waits for the watcher, it does not close it yet.
        assert not w.closed_by_peer(0.3)
        assert s.proc.poll() is None
        w.close()
        t1 = time.monotonic()
        assert s.proc.wait(5) == 0
        assert time.monotonic() - t1 < 5  # far from the 10 s timeout
        assert idle.closed_by_peer(1)
        assert "shutdown timeout" not in s.output()
    finally:
        w.close()
        idle.close()


def test_watcher_with_a_request_in_flight_gets_event_then_reply(styx):
    s = styx("--iproto-threads", "1", "--shutdown-timeout", "10")
    with Raw(s.port) as w:
        watch_shutdown(w, 1)
        w.send(call_packet(50, "sleep", 0.5, "late"))
        time.sleep(0.1)
        s.term()
        expect_shutdown_event(w, 2)
        h, b = w.reply()
        assert (h[0], h[1], b) == (0, 50, {DATA: ["late"]})
        # The connection is still served while the server waits.
        w.request(PING, 51)
        h, b = w.reply()
        assert (h[0], h[1]) == (0, 51)
        assert s.proc.poll() is None
    assert s.proc.wait(5) == 0


def test_watcher_that_never_leaves_is_closed_after_the_timeout(styx):
    timeout = 1.5
    s = styx("--iproto-threads", "2", "--shutdown-timeout", str(timeout))
    watchers = [Raw(s.port) for _ in range(3)]
    try:
        for i, w in enumerate(watchers):
            watch_shutdown(w, 10 * i + 1)
        t0 = s.term()
        for i, w in enumerate(watchers):
            expect_shutdown_event(w, 10 * i + 2)
        # New connections are refused while the server waits.
        assert refused(s.port)
        assert s.proc.poll() is None
        # Closed by the server at the timeout, not before.
        assert watchers[0].closed_by_peer(timeout + 3)
        closed_at = time.monotonic() - t0
        assert timeout - 0.1 <= closed_at < timeout + 2.0, closed_at
        for w in watchers[1:]:
            assert w.closed_by_peer(1)
        assert s.proc.wait(5) == 0
        assert time.monotonic() - t0 < timeout + 3.0
        assert "shutdown timeout" in s.output()
    finally:
        for w in watchers:
            w.close()


def test_unacknowledged_watcher_gets_shutdown_on_its_ack(styx):
    # A watcher that has not acknowledged its last EVENT gets nothing new
    # until it does (§7.13), box.shutdown included; its ack then brings it.
    s = styx("--shutdown-timeout", "10")
    with Raw(s.port) as w:
        w.request(WATCH, 7, {EVENT_KEY: "box.shutdown"})
        assert w.reply() == ({0: EVENT, 1: 7}, {EVENT_KEY: "box.shutdown"})
        s.term()
        w.sock.settimeout(0.5)
        with pytest.raises(socket.timeout):
            w.sock.recv(1, socket.MSG_PEEK)
        w.sock.settimeout(10)
        w.request(WATCH, 8, {EVENT_KEY: "box.shutdown"})
        expect_shutdown_event(w, 8)
    assert s.proc.wait(5) == 0


def test_new_connections_are_refused_after_sigterm(styx):
    s = styx("--shutdown-timeout", "10")
    with Raw(s.port) as w:
        watch_shutdown(w, 1)  # holds the server in its shutdown wait
        s.term()
        expect_shutdown_event(w, 2)
        for _ in range(3):
            assert refused(s.port)
        # Connections already open still work.
        w.request(CALL, 3, {0x22: "echo", 0x21: [1]})
        h, b = w.reply()
        assert (h[0], b) == (0, {DATA: [1]})
    assert s.proc.wait(5) == 0
    assert refused(s.port)
