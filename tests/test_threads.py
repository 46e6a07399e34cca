"""Connections are spread evenly over iproto threads, and every request on
every thread is answered."""

from __future__ import annotations

import threading

import pytest

from tests.iproto import Raw, packet


@pytest.mark.parametrize("threads", [0, 2, 3])
def test_connections_spread_evenly(make_server, threads):
    server = make_server(iproto_threads=threads)
    n = 30
    clients = [Raw(server.port) for _ in range(n)]
    try:
        for i, c in enumerate(clients):
            h, b = c.call("echo", i, sync=i)
            assert b[0x30] == [i]
        per_thread = [len(net.connections) for net in server.nets]
        assert sum(per_thread) == n
        assert max(per_thread) - min(per_thread) <= 1, per_thread
        # Requests counted per thread add up to what was sent.
        assert sum(net.requests_total for net in server.nets) == n
    finally:
        for c in clients:
            c.close()


def test_spread_holds_with_churn(make_server):
    """Least-loaded placement: closing connections on one thread sends the next ones there."""
    server = make_server(iproto_threads=2)
    first = [Raw(server.port) for _ in range(4)]
    for c in first:
        c.call("echo", 1)
    assert [len(n.connections) for n in server.nets] == [2, 2]
    # Close the two connections of thread 0 (the 1st and 3rd, by round robin).
    first[0].close()
    first[2].close()
    for _ in range(100):
        if server.nets[0].assigned == 0:
            break
        threading.Event().wait(0.02)
    assert server.nets[0].assigned == 0
    again = [Raw(server.port) for _ in range(2)]
    for c in again:
        c.call("echo", 2)
    assert [len(n.connections) for n in server.nets] == [2, 2]
    for c in first[1::2] + again:
        c.close()


@pytest.mark.parametrize("threads", [0, 2, 3])
def test_many_clients_in_parallel_all_answered(make_server, threads):
    server = make_server(iproto_threads=threads)
    errors: list[str] = []

    def client(k: int) -> None:
        try:
            with Raw(server.port) as c:
                c.send(b"".join(packet({0: 0x0A, 1: i}, {0x22: "echo", 0x21: [k, i]})
                                for i in range(200)))
                got = {}
                for _ in range(200):
                    h, b = c.reply()
                    got[h[1]] = b[0x30]
                if got != {i: [k, i] for i in range(200)}:
                    errors.append(f"client {k}: wrong replies")
        except Exception as e:  # noqa: BLE001 - reported by the test
            errors.append(f"client {k}: {e!r}")

    ts = [threading.Thread(target=client, args=(k,)) for k in range(12)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert errors == []
