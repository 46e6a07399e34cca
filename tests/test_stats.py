"""box.stat.net() and box.stat.net.thread() (reference §8.1), checked against
what the test itself sent and received: totals exactly, rps as rates.

Each iproto thread counts its own SENT/RECEIVED bytes, CONNECTIONS,
REQUESTS, STREAMS and REQUESTS_IN_STREAM_QUEUE; TX counts
REQUESTS_IN_PROGRESS (requests that ran in a fiber). rps is the mean over
the window kept from one-second snapshots (the last 5 s; before that, since
the thread started)."""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.iproto import Raw, packet

APP = str(Path(__file__).parent / "apps" / "watch_app.py")
CALL, PING = 0x0A, 0x40
DATA = 0x30
GREETING = 128
METRICS = ("SENT", "RECEIVED", "CONNECTIONS", "REQUESTS", "REQUESTS_IN_PROGRESS", "STREAMS",
           "REQUESTS_IN_STREAM_QUEUE")
WITH_CURRENT = {"CONNECTIONS", "REQUESTS", "REQUESTS_IN_PROGRESS", "STREAMS",
                "REQUESTS_IN_STREAM_QUEUE"}


def call_bytes(sync: int, name: str, *args: Any, stream: int = 0) -> bytes:
    h = {0: CALL, 1: sync}
    if stream:
        h[0x0A] = stream
    return packet(h, {0x22: name, 0x21: list(args)})


def thread_of(server: Any, c: Raw) -> int:
    """The iproto thread serving this client's connection."""
    port = c.sock.getsockname()[1]
    (net,) = [s.tx_conn.net.index for s in list(server.tx.sessions.values()) if s.peer[1] == port]
    return net


def without_rps(stats: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """The shape is Tarantool's; the counters without the rates."""
    assert set(stats) == set(METRICS)
    for metric, fields in stats.items():
        want = {"total", "rps", "current"} if metric in WITH_CURRENT else {"total", "rps"}
        assert set(fields) == want, (metric, fields)
        assert all(type(v) is int and v >= 0 for v in fields.values()), (metric, fields)
    return {m: {k: v for k, v in f.items() if k != "rps"} for m, f in stats.items()}


class Expect:
    """What one iproto thread must report."""

    def __init__(self) -> None:
        self.v = {m: {"total": 0, **({"current": 0} if m in WITH_CURRENT else {})}
                  for m in METRICS}

    def add(self, metric: str, total: int = 0, current: int = 0) -> None:
        self.v[metric]["total"] += total
        if current:
            self.v[metric]["current"] += current


def summed(expects: list[Expect]) -> dict[str, dict[str, int]]:
    out = Expect().v
    for e in expects:
        for m, f in e.v.items():
            for k, val in f.items():
                out[m][k] += val
    return out


def wait_for(cond: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


# -- totals -------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 2, 3])
def test_totals_add_up_exactly(make_server, k):
    server = make_server(app=APP, iproto_threads=k)
    m = 7
    conns = [Raw(server.port) for _ in range(m)]
    exp = [Expect() for _ in range(k)]
    try:
        for i, c in enumerate(conns):
            j = thread_of(server, c)
            n = 5 + 3 * i  # PINGs, pipelined in one write, then one CALL
            data = b"".join(packet({0: PING, 1: s}) for s in range(n)) + call_bytes(n, "echo", i)
            c.send(data)
            for _ in range(n):
                assert c.reply()[0][0] == 0
            assert c.reply()[1] == {DATA: [i]}
            e = exp[j]
            e.add("CONNECTIONS", 1, 1)
            e.add("REQUESTS", n + 1)
            e.add("RECEIVED", len(data))
        # One stream of three calls on the first connection: the first yields
        # (a fiber: in progress), the two after it wait in the stream's queue.
        c, j = conns[0], thread_of(server, conns[0])
        data = (call_bytes(100, "sleep", 0.05, "s", stream=9) + call_bytes(101, "echo", 1, stream=9)
                + call_bytes(102, "echo", 2, stream=9))
        c.send(data)
        assert [c.reply()[0][1] for _ in range(3)] == [100, 101, 102]
        exp[j].add("REQUESTS", 3)
        exp[j].add("RECEIVED", len(data))
        exp[j].add("STREAMS", 1)
        exp[j].add("REQUESTS_IN_STREAM_QUEUE", 2)
        exp[j].add("REQUESTS_IN_PROGRESS", 1)
        for c in conns:  # every byte the server sent: the greeting and the replies
            exp[thread_of(server, c)].add("SENT", GREETING + sum(map(len, c.raw_replies)))
        # Two clients leave: still in the totals, no longer current.
        for c in conns[:2]:
            exp[thread_of(server, c)].v["CONNECTIONS"]["current"] -= 1
            c.close()
        wait_for(lambda: sum(len(n.connections) for n in server.nets) == m - 2)

        with Raw(server.port) as probe:
            p = thread_of(server, probe)
            exp[p].add("CONNECTIONS", 1, 1)
            exp[p].add("SENT", GREETING)
            # The probe's request is in the counts: received, alive, in a fiber.
            req1 = call_bytes(1, "net_stat_both")
            exp[p].add("REQUESTS", 1, current=1)
            exp[p].add("RECEIVED", len(req1))
            exp[p].add("REQUESTS_IN_PROGRESS", 1, current=1)
            h, b = probe.call("net_stat_both", sync=1)
            assert h[0] == 0, b
            total, threads = b[DATA]
            assert len(threads) == k
            assert [without_rps(t) for t in threads] == [e.v for e in exp]
            assert without_rps(total) == summed(exp)
            if k > 1:  # the spread: no thread was left out
                assert all(t["CONNECTIONS"]["total"] >= 2 for t in threads)

            # Two more requests, through the two procedures: each one's own
            # request is counted, the reply before it is in SENT.
            exp[p].add("SENT", len(probe.raw_replies[-1]))
            exp[p].add("REQUESTS", 1)
            exp[p].add("REQUESTS_IN_PROGRESS", 1)
            exp[p].add("RECEIVED", len(call_bytes(2, "net_stat")))
            h, b = probe.call("net_stat", sync=2)
            assert without_rps(b[DATA][0]) == summed(exp)
            exp[p].add("SENT", len(probe.raw_replies[-1]))
            exp[p].add("REQUESTS", 1)
            exp[p].add("REQUESTS_IN_PROGRESS", 1)
            exp[p].add("RECEIVED", len(call_bytes(3, "net_stat_threads")))
            h, b = probe.call("net_stat_threads", sync=3)
            assert [without_rps(t) for t in b[DATA][0]] == [e.v for e in exp]
    finally:
        for c in conns:
            c.close()


# -- rps ----------------------------------------------------------------------------------------


class Loader(threading.Thread):
    """One connection sending one request at a time until stopped."""

    def __init__(self, port: int, name: str | None) -> None:
        super().__init__(daemon=True)
        self.c = Raw(port)
        self.name_ = name  # None: PING; else CALL of this procedure with no args
        self.sent = self.replied = self.bytes_out = self.bytes_in = 0
        self.stop = threading.Event()

    def run(self) -> None:
        c = self.c
        i = 0
        while not self.stop.is_set():
            i = (i + 1) % 100
            data = packet({0: PING, 1: i}) if self.name_ is None else call_bytes(i, self.name_, 0)
            self.sent += 1
            self.bytes_out += len(data)
            c.send(data)
            h, _ = c.reply()
            assert h[0] == 0
            self.bytes_in += len(c.raw_replies.pop())
            self.replied += 1


def rate_bounds(total: int, span_lo: float, span_hi: float) -> tuple[int, int]:
    """The int(total / span) Styx reports, for a window span we know only
    within [span_lo, span_hi] (a little slack for where the thread's first
    snapshot fell)."""
    return math.floor(total / (span_hi + 0.05)), math.floor(total / max(span_lo - 0.05, 0.01))


@pytest.mark.parametrize("k", [1, 2, 3])
def test_rps_under_steady_load(make_server, k):
    t_before = time.monotonic()
    server = make_server(app=APP, iproto_threads=k)
    t_after = time.monotonic()
    probe = Raw(server.port)
    loaders = [Loader(server.port, None), Loader(server.port, None), Loader(server.port, "sleep")]
    try:
        t_load = time.monotonic()
        for ld in loaders:
            ld.start()
        time.sleep(2.0)
        replied = sum(ld.replied for ld in loaders)  # all of these were counted
        calls_lo = loaders[2].replied
        t_sent = time.monotonic()
        h, b = probe.call("net_stat_both")
        t_reply = time.monotonic()
        assert h[0] == 0, b
        sent = sum(ld.sent for ld in loaders)  # at most these were
        calls_hi = loaders[2].sent
    finally:
        for ld in loaders:
            ld.stop.set()
        for ld in loaders:
            ld.join(5)
            ld.c.close()
        probe.close()
    total, threads = b[DATA]
    assert replied > 500, f"the load is too thin to judge: {replied} requests in 2 s"
    assert replied + 1 <= total["REQUESTS"]["total"] <= sent + 1
    assert total["CONNECTIONS"]["total"] == 4

    # The window began when each thread started, at most ~2.x s ago: each
    # thread's rps is its total over that span.
    span_lo, span_hi = t_sent - t_after, t_reply - t_before
    for t in threads:
        for metric in ("REQUESTS", "SENT", "RECEIVED", "CONNECTIONS"):
            lo, hi = rate_bounds(t[metric]["total"], span_lo, span_hi)
            assert lo <= t[metric]["rps"] <= hi, (metric, t[metric], lo, hi)
    # The totals are the threads' sums (taken a moment before the per-thread
    # list, under load), each thread's rate rounded down.
    for metric in ("REQUESTS", "SENT", "RECEIVED", "CONNECTIONS"):
        lo, hi = rate_bounds(total[metric]["total"], span_lo, span_hi)
        assert lo - k <= total[metric]["rps"] <= hi, (metric, total[metric], lo, hi)

    # Against the rate the test generated: the reported rate is that rate
    # diluted only by the short idle start (t_load - t_before).
    load_rate = replied / (t_sent - t_load)
    rps = total["REQUESTS"]["rps"]
    assert rps > 0
    assert 0.75 * load_rate <= rps <= 1.1 * sent / (t_sent - t_load) + 5, (rps, load_rate)
    # Bytes: a PING is 10 bytes in, a 33-byte reply out.
    assert 0.75 * 10 * load_rate <= total["RECEIVED"]["rps"]
    assert 0.75 * 33 * load_rate <= total["SENT"]["rps"]
    # The async calls ran in fibers: REQUESTS_IN_PROGRESS counts them, and
    # its rate is theirs.
    assert calls_lo <= total["REQUESTS_IN_PROGRESS"]["total"] - 1 <= calls_hi
    call_rate = calls_lo / (t_sent - t_load)
    assert calls_lo > 100
    assert 0.75 * call_rate <= total["REQUESTS_IN_PROGRESS"]["rps"] <= 1.1 * calls_hi / (t_sent - t_load) + 5, \
        (total["REQUESTS_IN_PROGRESS"], call_rate)


def test_rps_falls_to_zero_once_the_load_left_the_window(make_server):
    server = make_server(app=APP, iproto_threads=2)
    probe = Raw(server.port)
    loaders = [Loader(server.port, None) for _ in range(2)]
    try:
        for ld in loaders:
            ld.start()
        time.sleep(1.0)
        h, b = probe.call("net_stat", sync=1)
        assert b[DATA][0]["REQUESTS"]["rps"] > 100  # under load
        for ld in loaders:
            ld.stop.set()
        for ld in loaders:
            ld.join(5)
            ld.c.close()
        t_end = time.monotonic()
        loaded = sum(ld.sent for ld in loaders)
        # Snapshots are one second apart and the oldest kept is 5-6 s old:
        # after 6.3 s of quiet the window holds none of the load.
        time.sleep(max(0.0, t_end + 6.3 - time.monotonic()))
        req = call_bytes(2, "net_stat")
        h, b = probe.call("net_stat", sync=2)
        assert h[0] == 0, b
    finally:
        for ld in loaders:
            ld.stop.set()
            ld.c.close()
        probe.close()
    stats = b[DATA][0]
    assert stats["REQUESTS"]["total"] == loaded + 2
    assert stats["CONNECTIONS"]["current"] == 1
    # In the window: the probe's request (its bytes, one request), nothing sent.
    assert stats["REQUESTS"]["rps"] == 0  # int(1 / >= 5 s)
    assert stats["SENT"]["rps"] == 0
    assert stats["CONNECTIONS"]["rps"] == 0
    assert stats["REQUESTS_IN_PROGRESS"]["rps"] == 0
    assert len(req) // 7 <= stats["RECEIVED"]["rps"] <= len(req) // 5
