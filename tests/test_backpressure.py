"""Backpressure: net_msg_max bounds requests in flight; a client that never
reads cannot grow the server's output memory past net_obuf_max."""

from __future__ import annotations

import socket
import time

import pytest

from tests.iproto import Raw, packet

CALL = 0x0A


@pytest.mark.parametrize("threads", [0, 1, 2])
def test_net_msg_max_bounds_requests_in_flight(make_server, threads):
    limit = 4
    server = make_server(iproto_threads=threads, net_msg_max=limit)
    n = 40
    with Raw(server.port) as c:
        c.call("reset_counted")
        c.send(b"".join(packet({0: CALL, 1: 100 + i}, {0x22: "slow_counted", 0x21: [0.02]})
                        for i in range(n)))
        seen = {}
        for _ in range(n):
            h, b = c.reply()
            assert h[0] == 0, b
            seen[h[1]] = b[0x30][0]
    assert sorted(seen) == list(range(100, 100 + n))  # every request answered once
    # The procedure counts how many of its calls ran at once.
    assert max(seen.values()) <= limit
    assert max(seen.values()) >= 2  # and they did overlap: the limit, not a serial server


def test_net_msg_max_shared_by_connections_in_fifo(make_server):
    """Several connections on one thread share the limit; all are served."""
    limit = 3
    server = make_server(iproto_threads=1, net_msg_max=limit)
    clients = [Raw(server.port) for _ in range(5)]
    try:
        clients[0].call("reset_counted")
        for c in clients:
            c.send(b"".join(packet({0: CALL, 1: i}, {0x22: "slow_counted", 0x21: [0.01]})
                            for i in range(10)))
        peak = 0
        for c in clients:
            syncs = set()
            for _ in range(10):
                h, b = c.reply()
                assert h[0] == 0
                syncs.add(h[1])
                peak = max(peak, b[0x30][0])
            assert syncs == set(range(10))
        assert peak <= limit
    finally:
        for c in clients:
            c.close()


def test_net_msg_max_changes_at_runtime(make_server):
    server = make_server(iproto_threads=2, net_msg_max=2)
    with Raw(server.port) as c:
        c.call("set_net_msg_max", 6)
        deadline = time.time() + 5
        while time.time() < deadline and any(n.net_msg_max != 6 for n in server.nets):
            time.sleep(0.01)
        assert [n.net_msg_max for n in server.nets] == [6, 6]
        c.call("reset_counted")
        c.send(b"".join(packet({0: CALL, 1: i}, {0x22: "slow_counted", 0x21: [0.05]})
                        for i in range(12)))
        peak = max(c.reply()[1][0x30][0] for _ in range(12))
        assert 2 < peak <= 6


def _fill(sock: socket.socket, data: bytes, seconds: float) -> int:
    """Send as much of `data` as the server accepts in `seconds`, never blocking."""
    sock.setblocking(False)
    sent = 0
    deadline = time.time() + seconds
    while sent < len(data) and time.time() < deadline:
        try:
            sent += sock.send(data[sent:sent + 65536])
        except BlockingIOError:
            time.sleep(0.01)
    return sent


@pytest.mark.parametrize("threads", [0, 2])
def test_client_that_never_reads_is_bounded(make_server, threads):
    bound = 256 * 1024
    server = make_server(iproto_threads=threads, net_obuf_max=bound, net_msg_max=64)
    reply = 2000  # bytes per reply
    # 1 KB requests (an unknown body key is skipped), so that the kernel's
    # socket buffers (megabytes on loopback) cannot swallow them all.
    req = packet({0: CALL, 1: 1}, {0x22: "big", 0x21: [reply], 0x99: "p" * 1000})
    n = 30000  # 30 MB of requests, 60 MB of replies if the server kept reading
    c = Raw(server.port)
    witness = Raw(server.port)
    try:
        sent = _fill(c.sock, req * n, seconds=3.0)
        requested = sent // len(req)
        assert requested < n, "the server kept reading a client that never reads"
        # Output memory held by TX (obuf slabs) stays near the bound.
        held = server.tx.slabc.used
        assert held <= 2 * bound + 64 * 4096, held
        # Another client is served meanwhile.
        h, b = witness.call("echo", "alive")
        assert b[0x30] == ["alive"]
        # Now read: every reply the server accepted a request for arrives intact.
        c.sock.setblocking(True)
        c.sock.settimeout(10)
        got = 0
        while got < requested:
            h, b = c.reply()
            assert h[0] == 0 and len(b[0x30][0]) == reply
            got += 1
    finally:
        c.close()
        witness.close()


@pytest.mark.parametrize("threads", [0, 1])
@pytest.mark.parametrize("limit,n", [(768, 1000), (64, 200), (64, 3000), (4, 130)])
def test_more_buffered_requests_than_net_msg_max_are_all_answered(make_server, threads, limit, n):
    """With local pipes (0 threads) every request of a batch may be back before
    input stops: the stopped connection must still be resumed (a hang once)."""
    server = make_server(iproto_threads=threads, net_msg_max=limit)
    with Raw(server.port) as c:
        c.send(b"".join(packet({0: 0x40, 1: i}) for i in range(n)))
        syncs = [c.reply()[0][1] for _ in range(n)]
    assert sorted(syncs) == list(range(n))
