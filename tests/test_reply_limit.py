"""`net_reply_max`: one procedure's huge reply is an error (32, naming the
size), not seconds of TX copying it while every other client waits.

Before the limit a 200 MB reply held other clients' PINGs for 0.5-1.5 s on
this machine (mostly encoding it and copying it into the obuf); now the
string's size is seen before anything is encoded, and PINGs wait for the
procedure only (it builds the string: about 0.1 s).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.iproto import Raw

PING = 0x40


def max_ping_while(port: int, action: Callable[[], Any]) -> tuple[Any, float]:
    """Run `action` while another client PINGs: (its result, the slowest PING)."""
    latencies: list[float] = []
    stop = threading.Event()
    started = threading.Event()

    def pinger() -> None:
        with Raw(port) as c:
            sync = 0
            while not stop.is_set():
                sync += 1
                t = time.perf_counter()
                c.request(PING, sync)
                c.reply()
                latencies.append(time.perf_counter() - t)
                started.set()
                time.sleep(0.002)

    th = threading.Thread(target=pinger)
    th.start()
    try:
        assert started.wait(10)
        result = action()
        time.sleep(0.05)
    finally:
        stop.set()
        th.join()
    return result, max(latencies)


@pytest.mark.parametrize("threads", [0, 1])
def test_huge_reply_does_not_stall_others(make_server: Callable[..., Any], threads: int) -> None:
    server = make_server(iproto_threads=threads)
    with Raw(server.port, timeout=60) as c:
        (h, b), slowest = max_ping_while(server.port, lambda: c.call("big", 200_000_000, sync=3))
        assert (h[0], h[1]) == (0x8000 | 32, 3)
        assert b[0x31] == ("Failed to encode the result: the reply would be at least 200000002 "
                           f"bytes, over net_reply_max ({64 << 20})")
        assert slowest < 1.0, slowest  # was 0.5-1.5 s; generous: a shared, noisy machine
        h, b = c.call("big", 10 << 20, sync=4)  # big but under the limit: served
        assert h[0] == 0 and len(b[0x30][0]) == 10 << 20


def test_reply_limit_edges(make_server: Callable[..., Any]) -> None:
    limit = 1 << 20
    server = make_server(net_reply_max=limit)
    with Raw(server.port) as c:
        # One string: 5 bytes of str header, so limit - 5 characters fit exactly.
        h, b = c.call("big", limit - 5)
        assert h[0] == 0 and len(b[0x30][0]) == limit - 5
        h, b = c.call("big", limit)
        assert h[0] == 0x8000 | 32 and "at least" in b[0x31]
        # Many small strings (past what is looked at before encoding): the
        # encoded size, exactly. 100 bytes each is 102 encoded, plus 3 for the array.
        h, b = c.call("many", 20_000, 100)
        assert (h[0], b[0x31]) == (0x8000 | 32, "Failed to encode the result: the reply would "
                                   f"be {20_000 * 102 + 3} bytes, over net_reply_max ({limit})")
        h, b = c.call("many", 10_000, 100)  # 1,020,003 bytes: under
        assert h[0] == 0 and len(b[0x30][0]) == 10_000
        assert c.call("big", 3)[1][0x30] == ["xxx"]


def test_net_reply_max_must_be_positive(make_server: Callable[..., Any]) -> None:
    from styx.server import ConfigError
    with pytest.raises(ConfigError, match="net_reply_max 0: must be positive"):
        make_server(net_reply_max=0)
