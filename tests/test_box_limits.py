"""Limits of the box: `memtx_memory` (the quota tuples live in), EVAL
pipelined among other requests (tests/test_eval.py compares it with
Tarantool), and SQL (EXECUTE, PREPARE: none in Styx).

The memtx scenario runs against Styx with `Config(memtx_memory=1 MiB)` (0
and 2 iproto threads) and, as the oracle, against Debian's Tarantool 2.6
serving the same space (tests/lua/tarantool_server.lua `memtx`) with 32 MiB,
the smallest quota 2.6 boots with (its own system spaces need the room).
Both must fail inserts the same way once full, keep serving reads, take new
tuples after deletes, and keep every index consistent.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import asynctnt
import pytest
import tarantool
from tarantool.error import DatabaseError

from tests.iproto import Raw
from tests.oracle import tarantool_server

MEMTX_APP = str(Path(__file__).parent / "apps" / "memtx_app.py")
SPACE = 512
SIZE = 1000  # bytes of data per tuple
OOM = re.compile(r"^Failed to allocate (\d+) bytes in slab allocator for memtx_tuple$")
MEMORY_ISSUE = 2
SQL_UNSUPPORTED = "Styx does not support SQL"

SELECT, INSERT, UPDATE, DELETE, EVAL, CALL, EXECUTE, PREPARE, PING = 1, 2, 4, 5, 8, 10, 11, 13, 0x40


class Target(NamedTuple):
    kind: str
    port: int
    memtx_memory: int


@pytest.fixture(params=["threads0", "threads2", "tarantool"])
def target(request: pytest.FixtureRequest, make_server: Callable[..., Any],
           tmp_path: Path) -> Iterator[Target]:
    if request.param == "tarantool":
        tarantool_bin = request.getfixturevalue("tarantool_bin")
        with tarantool_server(tarantool_bin, "memtx", tmp_path / "tarantool", 32 << 20) as port:
            yield Target("tarantool", port, 32 << 20)
    else:
        server = make_server(app=MEMTX_APP, memtx_memory=1 << 20,
                             iproto_threads=int(request.param.removeprefix("threads")))
        yield Target("styx", server.port, 1 << 20)


class Conn:
    def __init__(self, port: int) -> None:
        self.raw = Raw(port)
        self.sync = 0

    def send(self, rtype: int, body: Any = None) -> int:
        self.sync += 1
        self.raw.request(rtype, self.sync, body)
        return self.sync

    def replies(self, n: int) -> dict[int, tuple[dict[int, Any], dict[int, Any]]]:
        """n replies by sync (Tarantool may answer pipelined requests out of order)."""
        out = {}
        for _ in range(n):
            h, b = self.raw.reply()
            out[h[1]] = (h, b or {})
        return out

    def req(self, rtype: int, body: Any = None) -> tuple[int, Any, dict[int, Any] | None]:
        """(code, DATA or message, the first MP_ERROR entry)."""
        sync = self.send(rtype, body)
        h, b = self.replies(1)[sync]
        if h[0] == 0:
            return 0, b.get(0x30), None
        return h[0] & 0x7FFF, b[0x31], b[0x52][0][0]

    def insert(self, tup: list[Any]) -> tuple[int, Any, Any]:
        return self.req(INSERT, {0x10: SPACE, 0x21: tup})

    def select(self, key: list[Any] | None = None, index: int = 0) -> list[list[Any]]:
        code, data, _ = self.req(SELECT, {0x10: SPACE, 0x11: index, 0x12: 1 << 30, 0x13: 0,
                                          0x14: 0, 0x20: key or []})
        assert code == 0, data
        return data


def row(i: int) -> list[Any]:
    return [i, f"g{i % 10}", "x" * SIZE]


def fill(c: Conn) -> tuple[int, list[tuple[int, Any, Any]]]:
    """Insert row(1), row(2), ... in pipelined batches until inserts fail.
    Returns (how many went in, the errors of the failed batch's rest)."""
    ok, errors = 0, []
    while not errors:
        first = c.sync + 1
        for i in range(first, first + 100):
            c.send(INSERT, {0x10: SPACE, 0x21: row(i)})
        got = c.replies(100)
        for sync in range(first, first + 100):
            h, b = got[sync]
            if h[0] == 0:
                # Every insert before the first failure went in; none after.
                assert not errors, (sync, errors[0])
                assert b[0x30] == [row(sync)]
                ok += 1
            else:
                errors.append((h[0] & 0x7FFF, b[0x31], b[0x52][0][0]))
        assert ok < 100_000, "the quota never ran out"
    return ok, errors


def check_oom(code: int, message: str, error: dict[int, Any] | None) -> int:
    """Tarantool's memory error; returns the size it failed to allocate."""
    assert code == MEMORY_ISSUE, (code, message)
    m = OOM.match(message)
    assert m, message
    assert error is not None
    assert (error[0], error[5], error[3]) == ("OutOfMemory", MEMORY_ISSUE, message)
    return int(m.group(1))


def test_memtx_memory_full(target):
    c = Conn(target.port)
    n, errors = fill(c)
    # Tuples of ~1 KB: the quota holds fewer than memtx_memory / SIZE of them,
    # and most of it is used (Tarantool: the rest is its own system data).
    assert target.memtx_memory // SIZE * 0.4 < n < target.memtx_memory // SIZE
    sizes = {check_oom(*e) for e in errors}
    assert len(sizes) == 1 and sizes.pop() >= SIZE  # the same tuple size each time

    # Full stays full: the same insert fails again, a bigger update fails and
    # leaves the tuple as it was.
    check_oom(*c.insert(row(n + 1)))
    code, message, err = c.req(UPDATE, {0x10: SPACE, 0x11: 0, 0x20: [1],
                                        0x21: [["=", 2, "y" * (4 * SIZE)]]})
    check_oom(code, message, err)
    # Reads keep working, and see exactly the tuples that went in.
    assert c.select([1]) == [row(1)]
    assert c.select([n]) == [row(n)]
    assert c.select([n + 1]) == []
    assert c.req(CALL, {0x22: "box.space.t:count", 0x21: []}) == (0, [n], None)
    everything = c.select()
    assert [t[0] for t in everything] == list(range(1, n + 1))
    assert everything == [row(i) for i in range(1, n + 1)]
    assert [t[0] for t in c.select(["g3"], index=1)] == list(range(3, n + 1, 10))

    # Deleting frees room for about as many tuples of the same size. (Styx
    # exactly as many; Tarantool's slab allocator is within a tuple or two:
    # the last tuple freed is not reusable at once.)
    for i in range(1, 11):
        assert c.req(DELETE, {0x10: SPACE, 0x11: 0, 0x20: [i]}) == (0, [row(i)], None)
    for i in range(n + 1, n + 9):
        assert c.insert(row(i)) == (0, [row(i)], None)
    last = n + 8
    while True:
        code, message, error = c.insert(row(last + 1))
        if code:
            check_oom(code, message, error)
            break
        last += 1
        assert last < n + 13
    if target.kind == "styx":
        assert last == n + 10
    check_oom(*c.insert(row(last + 1)))

    count = last - 10
    assert c.req(CALL, {0x22: "box.space.t:count", 0x21: []}) == (0, [count], None)
    assert c.select() == [row(i) for i in range(11, last + 1)]
    assert [t[0] for t in c.select(["g3"], index=1)] == list(range(13, last + 1, 10))
    assert c.req(PING) == (0, None, None)


def test_memtx_memory_full_through_connectors(target):
    c = Conn(target.port)
    n, _ = fill(c)
    conn = tarantool.Connection("127.0.0.1", target.port, connection_timeout=10)
    try:
        with pytest.raises(DatabaseError) as ei:
            conn.insert("t", row(n + 1))
        assert ei.value.code == MEMORY_ISSUE and OOM.match(ei.value.message)
        assert ei.value.extra_info.type == "OutOfMemory"
        assert conn.select("t", [n]).data == [row(n)]
        for i in (n, n - 1, n - 2):
            assert conn.delete("t", [i]).data == [row(i)]
        assert conn.insert("t", row(n + 1)).data == [row(n + 1)]
    finally:
        conn.close()

    async def main() -> None:
        a = asynctnt.Connection(host="127.0.0.1", port=target.port, connect_timeout=10)
        await a.connect()
        try:
            # The three deletes made room for about two more; then full again.
            with pytest.raises(asynctnt.exceptions.TarantoolDatabaseError) as ei:
                for i in range(n + 2, n + 10):
                    await a.insert("t", row(i))
            assert ei.value.code == MEMORY_ISSUE and OOM.match(ei.value.message)
            assert ei.value.error.trace[0].error_type == "OutOfMemory"
            assert [list(t) for t in (await a.select("t", [n + 1])).body] == [row(n + 1)]
        finally:
            await a.disconnect()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_memtx_memory_error_errno(target):
    """Tarantool's OutOfMemory carries errno ENOMEM (12) in MP_ERROR."""
    c = Conn(target.port)
    _, errors = fill(c)
    code, message, error = errors[0]
    check_oom(code, message, error)
    assert error[4] == 12


# -- EVAL ----------------------------------------------------------------------------


@pytest.fixture(params=[0, 2], ids=lambda n: f"threads{n}")
def styx_port(request: pytest.FixtureRequest, make_server: Callable[..., Any]) -> int:
    return make_server(app=MEMTX_APP, iproto_threads=request.param).port


def test_eval_raw_and_pipelined(styx_port):
    c = Conn(styx_port)
    for expr, args, want in (("return 1", [], [1]), ("return ...", [1, 2], [1, 2]), ("", [], [])):
        code, data, _ = c.req(EVAL, {0x27: expr, 0x21: args})
        assert (code, data) == (0, want)
    # Pipelined between other requests: each gets its own reply, in order of sync.
    s1 = c.send(PING)
    s2 = c.send(EVAL, {0x27: "return box.space.t:count()", 0x21: []})
    s3 = c.send(INSERT, {0x10: SPACE, 0x21: row(1)})
    got = c.replies(3)
    assert got[s1][0][0] == 0
    assert got[s2][0][0] == 0 and got[s2][1][0x30] == [0]
    assert got[s3][0][0] == 0 and got[s3][1][0x30] == [row(1)]
    # The connection is still open and serving.
    assert c.select() == [row(1)]
    assert not c.raw.closed_by_peer(timeout=0.2)


def test_eval_connectors(styx_port):
    conn = tarantool.Connection("127.0.0.1", styx_port, connection_timeout=10)
    try:
        assert conn.eval("return 1 + 1").data == [2]
        assert conn.insert("t", row(7)).data == [row(7)]
        assert conn.ping(notime=True) == "Success"
    finally:
        conn.close()

    async def main() -> None:
        a = asynctnt.Connection(host="127.0.0.1", port=styx_port, connect_timeout=10)
        await a.connect()
        try:
            assert (await a.eval("return ...", [1])).body == [1]
            assert [list(t) for t in (await a.select("t", [7])).body] == [row(7)]
            assert a.is_connected
        finally:
            await a.disconnect()

    asyncio.run(asyncio.wait_for(main(), 30))


@pytest.mark.parametrize("threads", [0, 2])
def test_memtx_memory_is_charged_inside_a_transaction(make_server, threads):
    """A transaction's writes take the quota when they are made (memtx
    allocates them then): the write that does not fit gets error 2 and the
    transaction goes on; a BEGIN with no timeout cannot hold more than the
    quota (it took 20,000 more 1 KB tuples and failed only at COMMIT)."""
    server = make_server(app=MEMTX_APP, memtx_memory=1 << 20, iproto_threads=threads)
    c = Conn(server.port)
    BEGIN, COMMIT, ROLLBACK, REPLACE = 14, 15, 16, 3

    def in_stream(rtype: int, body: Any = None, stream: int = 1) -> tuple[int, Any]:
        c.sync += 1
        c.raw.request(rtype, c.sync, body, k10=stream)
        h, b = c.raw.reply()
        return h[0] & 0x7FFF, (b or {}).get(0x30, (b or {}).get(0x31))

    assert in_stream(BEGIN, {}) == (0, None)
    n = 0
    while True:
        code, data = in_stream(REPLACE, {0x10: SPACE, 0x21: row(n + 1)})
        if code:
            assert code == MEMORY_ISSUE and OOM.match(data), data
            break
        n += 1
        assert n < 2000, "the transaction wrote past memtx_memory"
    assert (1 << 20) // SIZE * 0.4 < n < (1 << 20) // SIZE
    # Nothing is visible outside, and nothing else fits meanwhile.
    assert c.select() == []
    check_oom(*c.insert(row(10_000)))
    # The transaction still works: it reads its writes, and commits them.
    assert in_stream(SELECT, {0x10: SPACE, 0x11: 0, 0x12: 10, 0x13: 0, 0x14: 0,
                              0x20: [n]}) == (0, [row(n)])
    assert in_stream(COMMIT) == (0, None)
    assert [t[0] for t in c.select()] == list(range(1, n + 1))
    check_oom(*c.insert(row(n + 1)))

    # A rolled back transaction gives its charge back; rewriting one key in
    # a transaction is charged once.
    for i in range(1, n + 1):
        assert c.req(DELETE, {0x10: SPACE, 0x11: 0, 0x20: [i]})[0] == 0
    assert in_stream(BEGIN, {}, stream=2)[0] == 0
    for _ in range(3 * n):
        assert in_stream(REPLACE, {0x10: SPACE, 0x21: row(1)}, stream=2)[0] == 0
    assert in_stream(REPLACE, {0x10: SPACE, 0x21: row(2)}, stream=2)[0] == 0
    assert in_stream(ROLLBACK, stream=2) == (0, None)
    for i in range(1, n + 1):
        assert c.insert(row(i))[0] == 0, i


# -- SQL -----------------------------------------------------------------------------


def test_sql_is_unsupported_raw(styx_port):
    c = Conn(styx_port)
    # SQL_TEXT (0x40) or STMT_ID (0x43) with SQL_BIND (0x41); an empty body too.
    for rtype, body in ((EXECUTE, {0x40: "SELECT 1", 0x41: []}), (EXECUTE, {0x43: 7, 0x41: [1]}),
                        (PREPARE, {0x40: "SELECT ?"}), (EXECUTE, None), (PREPARE, {})):
        code, message, error = c.req(rtype, body)
        assert (code, message) == (5, SQL_UNSUPPORTED)
        assert (error[0], error[5], error[3]) == ("ClientError", 5, SQL_UNSUPPORTED)
    s1 = c.send(EXECUTE, {0x40: "SELECT 1", 0x41: []})
    s2 = c.send(INSERT, {0x10: SPACE, 0x21: row(1)})
    got = c.replies(2)
    assert got[s1][0][0] == 0x8000 | 5 and got[s1][1][0x31] == SQL_UNSUPPORTED
    assert got[s2][0][0] == 0 and got[s2][1][0x30] == [row(1)]
    assert not c.raw.closed_by_peer(timeout=0.2)


def test_sql_is_unsupported_connectors(styx_port):
    conn = tarantool.Connection("127.0.0.1", styx_port, connection_timeout=10)
    try:
        with pytest.raises(DatabaseError) as ei:
            conn.execute("SELECT 1", [])
        assert (ei.value.code, ei.value.message) == (5, SQL_UNSUPPORTED)
        assert conn.ping(notime=True) == "Success"
    finally:
        conn.close()

    async def via_asynctnt() -> None:
        a = asynctnt.Connection(host="127.0.0.1", port=styx_port)
        await a.connect()
        try:
            for call in (lambda: a.execute("SELECT 1"), lambda: a.prepare("SELECT ?").prepare()):
                with pytest.raises(asynctnt.exceptions.TarantoolDatabaseError) as ei:
                    await call()
                assert (ei.value.code, ei.value.message) == (5, SQL_UNSUPPORTED)
            stat = await a.call("box.stat")
            # One EXECUTE each from tarantool-python and asynctnt, counted as Tarantool counts.
            assert stat[0]["EXECUTE"]["total"] == 2 and stat[0]["PREPARE"]["total"] == 1
        finally:
            await a.disconnect()

    asyncio.run(via_asynctnt())
