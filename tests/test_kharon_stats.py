"""The Kharon coalesces pushes; per-thread statistics add up."""

from __future__ import annotations

import pytest

from tests.iproto import Raw, packet


@pytest.mark.parametrize("threads", [0, 2])
def test_pushes_arrive_in_order_before_the_reply_and_ride_few_trips(make_server, threads):
    server = make_server(iproto_threads=threads)
    n = 1000
    with Raw(server.port) as c:
        c.request(0x0A, 77, {0x22: "progress", 0x21: [n]})
        steps = []
        while True:
            h, b = c.reply()
            assert h[1] == 77
            if h[0] == 0x80:  # IPROTO_CHUNK
                steps.append(b[0x30][0]["step"])
                continue
            assert h[0] == 0 and b[0x30] == ["done"]
            break
        assert steps == list(range(n))
        session = next(s for s in server.tx.sessions.values() if s.peer[1] == c.sock.getsockname()[1])
        trips = session.tx_conn.kharon.trips
        assert 1 <= trips < 10, trips  # a thousand pushes, a handful of trips


def test_pushes_from_an_async_procedure(make_server):
    server = make_server(iproto_threads=1)
    with Raw(server.port) as c:
        c.request(0x0A, 5, {0x22: "push_then_sleep", 0x21: [3, 0.01]})
        got = []
        while True:
            h, b = c.reply()
            if h[0] == 0x80:
                got.append(b[0x30][0])
                continue
            assert b[0x30] == [3]
            break
        assert got == [0, 1, 2]


@pytest.mark.parametrize("threads", [1, 3])
def test_stats_add_up(make_server, threads):
    server = make_server(iproto_threads=threads)
    conns = [Raw(server.port) for _ in range(6)]
    try:
        per_conn = 25
        for c in conns:
            c.send(b"".join(packet({0: 0x40, 1: i}) for i in range(per_conn)))
            for _ in range(per_conn):
                assert c.reply()[0][0] == 0
        with Raw(server.port) as probe:
            stats = probe.call("net_stat")[1][0x30][0]
            threads_ = probe.call("net_stat_threads", sync=2)[1][0x30][0]
        assert len(threads_) == threads
        # The probe's own connection and its calls are counted too.
        assert stats["CONNECTIONS"]["current"] == 7
        assert stats["REQUESTS"]["total"] == 6 * per_conn + 1
        assert stats["REQUESTS"]["current"] == 1  # the net_stat call itself
        assert stats["REQUESTS_IN_PROGRESS"]["current"] == 1  # it runs in a fiber
        # Per thread, the same metrics, summing to the totals (the probe's
        # second call came after the first: compare what cannot have moved).
        for metric in ("CONNECTIONS",):
            for field in ("total", "current"):
                assert stats[metric][field] == sum(t[metric][field] for t in threads_)
        assert sum(t["REQUESTS"]["total"] for t in threads_) == stats["REQUESTS"]["total"] + 1
        assert stats["RECEIVED"]["total"] >= 6 * per_conn * 10
        assert stats["SENT"]["total"] >= 6 * per_conn * 33
    finally:
        for c in conns:
            c.close()
