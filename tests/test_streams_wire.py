"""IPROTO_ID features STREAMS (0) and TRANSACTIONS (1), raw IPROTO (§7.12): the
wire checks tests/test_features.py maps those features to.

A stream runs its requests strictly one after another; different streams and
requests outside streams interleave. BEGIN/COMMIT/ROLLBACK work only inside a
stream; the transaction lives across the stream's requests, is seen by no one
else before COMMIT, and is rolled back by ROLLBACK, a timeout, a conflict, or
the client's disconnect.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.iproto import Raw, packet

APP = str(Path(__file__).parent / "apps" / "watch_app.py")

SELECT, REPLACE, UPDATE, DELETE, AUTH, CALL = 1, 3, 4, 5, 7, 10
BEGIN, COMMIT, ROLLBACK, PING, ID = 14, 15, 16, 0x40, 73
STREAM_ID, KEY, TUPLE, LIMIT, SPACE_NAME = 0x0A, 0x20, 0x21, 0x12, 0x5E
DATA, ERROR_24, TIMEOUT = 0x30, 0x31, 0x56


@pytest.fixture(params=[0, 2], ids=lambda n: f"threads{n}")
def server(request: pytest.FixtureRequest, make_server: Any) -> Any:
    return make_server(app=APP, iproto_threads=request.param)


def rq(c: Raw, rtype: int, sync: int, body: Any = None, stream: int = 0) -> tuple[dict, dict]:
    if stream:
        c.request(rtype, sync, body, k10=stream)
    else:
        c.request(rtype, sync, body)
    h, b = c.reply()
    assert h[1] == sync, (h, b)
    return h, b


def ok(c: Raw, rtype: int, sync: int, body: Any = None, stream: int = 0) -> Any:
    h, b = rq(c, rtype, sync, body, stream)
    assert h[0] == 0, (h, b)
    return b.get(DATA, b)


def get(c: Raw, sync: int, key: int, stream: int = 0) -> list:
    return ok(c, SELECT, sync, {SPACE_NAME: "items", KEY: [key], LIMIT: 10}, stream)


def call(sync: int, name: str, *args: Any, stream: int = 0) -> bytes:
    h = {0: CALL, 1: sync}
    if stream:
        h[STREAM_ID] = stream
    return packet(h, {0x22: name, 0x21: list(args)})


# -- streams ----------------------------------------------------------------------------------


def test_stream_requests_run_one_after_another(server):
    with Raw(server.port) as c:
        c.send(call(1, "sleep", 0.3, "s1-slow", stream=1)
               + call(2, "echo", "s1-fast", stream=1)
               + call(3, "echo", "s2", stream=2)
               + call(4, "echo", "none"))
        order = []
        for _ in range(4):
            h, b = c.reply()
            assert h[0] == 0
            order.append(b[DATA][0])
        # Stream 1's fast request waits for its slow one; the others do not.
        assert order[2:] == ["s1-slow", "s1-fast"]
        assert sorted(order[:2]) == ["none", "s2"]


def test_stream_rules_229_and_230(server):
    with Raw(server.port) as c:
        for t, name in ((BEGIN, "BEGIN"), (COMMIT, "COMMIT"), (ROLLBACK, "ROLLBACK")):
            h, b = rq(c, t, t, {})
            assert h[0] == 0x8000 | 230
            assert b[ERROR_24] == f"Unable to process {name} request out of stream"
        for t, name, body in ((AUTH, "AUTH", {0x23: "guest", 0x21: []}),
                              (ID, "ID", {0x54: 6, 0x55: []})):
            h, b = rq(c, t, 20 + t, body, stream=5)
            assert h[0] == 0x8000 | 229
            assert b[ERROR_24] == f"Unable to process {name} request in stream"
        assert ok(c, PING, 30, stream=5) == {}
        assert ok(c, CALL, 31, {0x22: "echo", 0x21: [1]}, stream=5) == [1]


# -- transactions -----------------------------------------------------------------------------


def test_commit_and_rollback(server):
    with Raw(server.port) as c, Raw(server.port) as other:
        assert ok(c, BEGIN, 1, {}, stream=1) == {}
        assert ok(c, REPLACE, 2, {SPACE_NAME: "items", TUPLE: [100, "new"]}, stream=1) == [[100, "new"]]
        assert get(c, 3, 100, stream=1) == [[100, "new"]]  # the stream sees its writes
        assert get(c, 4, 100) == []  # outside the stream: not yet
        assert get(other, 5, 100) == []
        assert ok(c, COMMIT, 6, {}, stream=1) == {}
        assert get(other, 7, 100) == [[100, "new"]]

        assert ok(c, BEGIN, 8, {}, stream=2) == {}
        assert ok(c, REPLACE, 9, {SPACE_NAME: "items", TUPLE: [1, "changed"]}, stream=2) == [[1, "changed"]]
        assert get(c, 10, 1, stream=2) == [[1, "changed"]]
        assert ok(c, ROLLBACK, 11, {}, stream=2) == {}
        assert get(other, 12, 1) == [[1, "item1"]]

        # BEGIN twice is error 79; COMMIT or ROLLBACK with nothing open is fine.
        assert ok(c, BEGIN, 13, {}, stream=3) == {}
        h, b = rq(c, BEGIN, 14, {}, stream=3)
        assert h[0] == 0x8000 | 79
        assert b[ERROR_24] == "Operation is not permitted when there is an active transaction "
        assert ok(c, ROLLBACK, 15, {}, stream=3) == {}
        assert ok(c, COMMIT, 16, {}, stream=4) == {}
        assert ok(c, ROLLBACK, 17, {}, stream=4) == {}


def test_delete_and_update_in_a_transaction(server):
    # IPROTO DELETE and UPDATE inside a stream's transaction.
    with Raw(server.port) as c, Raw(server.port) as other:
        assert ok(c, BEGIN, 1, {}, stream=1) == {}
        assert ok(c, DELETE, 2, {SPACE_NAME: "items", KEY: [3]}, stream=1) == [[3, "item3"]]
        assert ok(c, UPDATE, 3, {SPACE_NAME: "items", KEY: [4], TUPLE: [["=", 1, "upd"]]},
                  stream=1) == [[4, "upd"]]
        assert get(c, 4, 3, stream=1) == [] and get(c, 5, 4, stream=1) == [[4, "upd"]]
        assert get(other, 6, 3) == [[3, "item3"]] and get(other, 7, 4) == [[4, "item4"]]
        assert ok(c, COMMIT, 8, {}, stream=1) == {}
        assert get(other, 9, 3) == [] and get(other, 10, 4) == [[4, "upd"]]


def test_transaction_timeout_conflict_and_disconnect(server):
    with Raw(server.port) as c, Raw(server.port) as other:
        # A timeout rolls back; later requests of the stream get 231.
        assert ok(c, BEGIN, 1, {TIMEOUT: 0.2}, stream=1) == {}
        assert ok(c, REPLACE, 2, {SPACE_NAME: "items", TUPLE: [200, "t"]}, stream=1) == [[200, "t"]]
        time.sleep(0.4)
        h, b = rq(c, REPLACE, 3, {SPACE_NAME: "items", TUPLE: [201, "t"]}, stream=1)
        assert (h[0], b[ERROR_24]) == (0x8000 | 231, "Transaction has been aborted by timeout")
        h, b = rq(c, COMMIT, 4, {}, stream=1)
        assert h[0] == 0x8000 | 231
        assert get(other, 5, 200) == [] and get(other, 6, 201) == []

        # Two streams write one key: the second to commit is aborted (97).
        ok(c, BEGIN, 7, {}, stream=2)
        ok(c, BEGIN, 8, {}, stream=3)
        ok(c, REPLACE, 9, {SPACE_NAME: "items", TUPLE: [2, "a"]}, stream=2)
        ok(c, REPLACE, 10, {SPACE_NAME: "items", TUPLE: [2, "b"]}, stream=3)
        assert ok(c, COMMIT, 11, {}, stream=2) == {}
        h, b = rq(c, COMMIT, 12, {}, stream=3)
        assert (h[0], b[ERROR_24]) == (0x8000 | 97, "Transaction has been aborted by conflict")
        assert get(other, 13, 2) == [[2, "a"]]

        # A disconnect rolls back what the client left open.
        ok(other, BEGIN, 14, {}, stream=1)
        ok(other, REPLACE, 15, {SPACE_NAME: "items", TUPLE: [300, "left open"]}, stream=1)
    with Raw(server.port) as c:
        deadline = time.monotonic() + 5
        while any(s.txns for s in server.tx.sessions.values()) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert get(c, 16, 300) == []


def test_begin_timeout_nan_and_infinities(server):
    """Tarantool takes a NaN or +inf TIMEOUT (its timer never fires) and
    refuses -inf as any negative; NaN used to be an "Internal error"."""
    with Raw(server.port) as c:
        # The exact bytes of the report: BEGIN, sync 5, stream 1, {TIMEOUT: NaN}.
        c.send(bytes.fromhex("ce0000001283000e01050a018156cb7ff8000000000000"))
        h, b = c.reply()
        assert (h[0], h[1], b) == (0, 5, {})
        assert ok(c, REPLACE, 2, {SPACE_NAME: "items", TUPLE: [300, "nan"]}, stream=1)
        assert ok(c, COMMIT, 3, {}, stream=1) == {}
        assert ok(c, BEGIN, 4, {TIMEOUT: float("inf")}, stream=2) == {}
        assert ok(c, ROLLBACK, 5, {}, stream=2) == {}
        h, b = rq(c, BEGIN, 6, {TIMEOUT: float("-inf")}, stream=3)
        assert (h[0], b[ERROR_24]) == (0x8000 | 1, "Illegal parameters, timeout must be a number greater than 0")
        assert get(c, 7, 300) == [[300, "nan"]]


@pytest.mark.parametrize("timeout,code", [
    (float("nan"), 0), (float("inf"), 0), (5, 0),
    (float("-inf"), 1), (-1, 1), (0, 1), ("x", 1), (True, 1),
])
def test_box_begin_over_call_checks_its_timeout(server, timeout, code):
    """box.begin{timeout=} as Tarantool's Lua checks it (a number over 0;
    NaN and +inf pass and never fire); a NaN used to leak a Python
    ValueError (error 32)."""
    with Raw(server.port) as c:
        h, b = rq(c, CALL, 1, {0x22: "box.begin", 0x21: [{"timeout": timeout}]}, stream=1)
        assert h[0] & 0x7FFF == code, b
        if code:
            assert b[ERROR_24] == "Illegal parameters, timeout must be a number greater than 0"
        else:
            assert ok(c, REPLACE, 2, {SPACE_NAME: "items", TUPLE: [400, "begun"]}, stream=1)
            assert ok(c, COMMIT, 3, {}, stream=1) == {}
            assert get(c, 4, 400) == [[400, "begun"]]
