"""Streams (IPROTO_STREAM_ID) and interactive transactions (BEGIN, COMMIT,
ROLLBACK, box.begin/commit/rollback), through asynctnt and raw sockets, with
0 and 2 iproto threads. The app is tests/apps/stream_app.py.

What Styx promises (styx/box/txn.py): a transaction's writes are private
until COMMIT, it reads its own writes over the data others committed,
another's commit of what it read aborts it (97) if it has written and sends
it to a read view if it has not, COMMIT fails with 97 when another
transaction committed a change to a key it wrote (first committer wins), a
TIMEOUT rolls it back (231 after),
and a disconnect rolls back what is open. Requests of one stream run one after
another; requests of other streams and outside streams do not wait.

Some tests pin behaviours where Styx once differed from Tarantool (UPDATE and
DELETE in a stream transaction, stream queues on disconnect, a procedure's
transaction on disconnect, STREAMS counting); Styx now behaves as Tarantool."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asynctnt
import pytest
from asynctnt.api import Isolation
from asynctnt.connection import ConnectionState
from asynctnt.exceptions import TarantoolDatabaseError, TarantoolNotConnectedError

from tests.iproto import Raw, packet
from tests.rawkit import Reply, assert_error, assert_ok, read_reply

APP = str(Path(__file__).parent / "apps" / "stream_app.py")

# Request types and keys.
SELECT, INSERT, REPLACE, UPDATE, DELETE, CALL = 1, 2, 3, 4, 5, 10
AUTH, BEGIN, COMMIT, ROLLBACK, PING, ID = 7, 14, 15, 16, 64, 73
WATCH, UNWATCH, WATCH_ONCE = 74, 75, 77
STREAM_ID, TIMEOUT, TXN_ISOLATION = 0x0A, 0x56, 0x59
DATA, ERROR_24 = 0x30, 0x31

ACC = 512  # the first user space: `acc` in stream_app.py

CONFLICT = "Transaction has been aborted by conflict"
TIMED_OUT = "Transaction has been aborted by timeout"
ACTIVE = "Operation is not permitted when there is an active transaction "
TX_ACTIVE_AT_RETURN = "Transaction is active at return from function"


@pytest.fixture(params=[0, 2], ids=lambda n: f"threads{n}")
def tx_conn(request: pytest.FixtureRequest, make_server: Callable[..., Any]) -> Any:
    return make_server(app=APP, iproto_threads=request.param)


# -- raw helpers ------------------------------------------------------------------------


def req(rtype: int, sync: int, body: Any = None, sid: int = 0) -> bytes:
    h = {0: rtype, 1: sync}
    if sid:
        h[STREAM_ID] = sid
    return packet(h, body)


def call(sync: int, name: str, *args: Any, sid: int = 0) -> bytes:
    return req(CALL, sync, {0x22: name, 0x21: list(args)}, sid)


def insert(sync: int, tup: list[Any], sid: int = 0) -> bytes:
    return req(INSERT, sync, {0x10: ACC, 0x21: tup}, sid)


def select_all(sync: int, sid: int = 0) -> bytes:
    return req(SELECT, sync, {0x10: ACC, 0x11: 0, 0x20: [], 0x14: 2, 0x12: 1000}, sid)


def ask(c: Raw, data: bytes) -> Reply:
    c.send(data)
    return read_reply(c)


def committed(port: int) -> list[list[Any]]:
    """What a fresh connection, outside any stream, sees in acc."""
    with Raw(port) as c:
        r = ask(c, select_all(1))
        assert_ok(r, 1)
        return r.body[DATA]


def ok_rows(r: Reply, sync: int) -> list[Any]:
    assert_ok(r, sync)
    return r.body[DATA]


def wait_no_open_txn(server: Any, timeout: float = 5.0) -> None:
    """The disconnect has reached TX: no session holds a transaction."""
    deadline = time.monotonic() + timeout
    while any(s.txns for s in list(server.tx.sessions.values())):
        assert time.monotonic() < deadline, "a transaction outlived its connection"
        time.sleep(0.01)


def close_server_side(server: Any) -> None:
    """Close every client connection from the server (each net thread, in its loop)."""
    for net in server.nets:
        net.loop.call_soon_threadsafe(net.close_all)


# -- asynctnt helpers ---------------------------------------------------------------------


def run(server: Any, body: Callable[..., Awaitable[Any]], n: int = 2, **kw: Any) -> Any:
    """Open `n` asynctnt connections as `test`, run body(*conns), close them."""

    async def main() -> Any:
        conns = [asynctnt.Connection(host="127.0.0.1", port=server.port, username="test",
                                     password="secret", connect_timeout=10, **kw)
                 for _ in range(n)]
        for c in conns:
            await c.connect()
        try:
            return await asyncio.wait_for(body(*conns), 30)
        finally:
            for c in conns:
                await c.disconnect()

    return asyncio.run(main())


def rows(resp: Any) -> list[list[Any]]:
    return [list(t) for t in resp.body]


ITER_DESC = {"REQ", "LE", "LT"}


def model_select(data: dict[int, list[Any]], index: str, iterator: str, key: list[Any],
                 offset: int = 0, limit: int = 1 << 32) -> list[list[Any]]:
    """Tarantool's TREE select over rows {id: [id, name, val]}: `primary` on
    id, the non-unique `name` ordered by (name, id)."""
    sort_key = (lambda t: (t[0],)) if index == "primary" else (lambda t: (t[1], t[0]))
    out = sorted(data.values(), key=sort_key, reverse=iterator in ITER_DESC)
    if key:
        k = tuple(key)

        def prefix(t: list[Any]) -> tuple[Any, ...]:
            return sort_key(t)[:len(k)]

        test = {"EQ": lambda p: p == k, "REQ": lambda p: p == k, "GE": lambda p: p >= k,
                "GT": lambda p: p > k, "LE": lambda p: p <= k, "LT": lambda p: p < k,
                "ALL": lambda p: p >= k}[iterator]
        out = [t for t in out if test(prefix(t))]
    return out[offset:offset + limit]


SELECTS = [  # (index, iterator, key, offset, limit)
    ("primary", "ALL", [], 0, 100),
    ("primary", "GE", [3], 1, 2),
    ("primary", "GT", [2], 0, 100),
    ("primary", "LT", [9], 0, 100),
    ("primary", "LE", [5], 0, 2),
    ("primary", "REQ", [3], 0, 100),
    ("primary", "EQ", [7], 0, 100),
    ("name", "EQ", ["b"], 0, 100),
    ("name", "REQ", ["b"], 0, 100),
    ("name", "EQ", ["b"], 1, 1),
    ("name", "GE", ["b"], 1, 3),
    ("name", "GT", ["b"], 0, 100),
    ("name", "LT", ["c"], 0, 100),
    ("name", "LE", ["c"], 1, 100),
    ("name", "ALL", [], 0, 100),
    ("name", "ALL", [], 2, 2),
]


# == asynctnt ============================================================================


def test_commit_makes_writes_visible_to_others(tx_conn):
    async def body(c1, c2):
        s = c1.stream()
        assert s.stream_id == 1
        assert (await s.begin()).code == 0
        assert rows(await s.insert("acc", [1, "a", 10])) == [[1, "a", 10]]
        assert rows(await s.replace("acc", [2, "b", None])) == [[2, "b", None]]
        assert rows(await s.upsert("acc", [3, "c", 1], [["+", 2, 5]])) == []
        assert rows(await s.upsert("acc", [1, "a", 0], [["+", 2, 5]])) == []
        mine = [[1, "a", 15], [2, "b", None], [3, "c", 1]]
        assert rows(await s.select("acc")) == mine
        # Neither the other connection nor this one outside the stream sees them.
        assert rows(await c2.select("acc")) == []
        assert rows(await c1.select("acc")) == []
        resp = await s.commit()
        assert resp.code == 0 and resp.body is None
        assert rows(await c2.select("acc")) == mine
        assert rows(await c1.select("acc")) == mine
        # After COMMIT the stream has no transaction: its writes are autocommitted.
        assert rows(await s.insert("acc", [4, "d", None])) == [[4, "d", None]]
        assert rows(await c2.select("acc", [4])) == [[4, "d", None]]

    run(tx_conn, body)


def test_rollback_discards(tx_conn):
    async def body(c1, c2):
        await c2.insert("acc", [1, "a", "orig"])
        s = c1.stream()
        await s.begin()
        await s.replace("acc", [1, "a", "changed"])
        await s.insert("acc", [2, "b", None])
        assert rows(await s.select("acc")) == [[1, "a", "changed"], [2, "b", None]]
        resp = await s.rollback()
        assert resp.code == 0 and resp.body is None
        assert rows(await s.select("acc")) == [[1, "a", "orig"]]
        assert rows(await c2.select("acc")) == [[1, "a", "orig"]]
        # The async context manager: an exception rolls back...
        with pytest.raises(RuntimeError):
            async with c1.stream() as s2:
                await s2.insert("acc", [3, "c", None])
                raise RuntimeError("abandon")
        assert rows(await c2.select("acc")) == [[1, "a", "orig"]]
        # ... and a clean exit commits.
        async with c1.stream() as s3:
            await s3.insert("acc", [3, "c", None])
        assert rows(await c2.select("acc")) == [[1, "a", "orig"], [3, "c", None]]

    run(tx_conn, body)


def test_isolation_own_writes_in_index_and_range_selects(tx_conn):
    """The transaction sees its writes (insert, replace changing the indexed
    name, upsert, a delete and an update made by procedures it calls) in
    every select: by primary and secondary keys, with every TREE iterator,
    offsets and limits; another connection sees only committed data, until
    COMMIT."""
    base = {1: [1, "b", 0], 3: [3, "d", 0], 5: [5, "b", 0], 7: [7, "f", 0], 8: [8, "c", 0]}

    async def body(c1, c2):
        for t in base.values():
            await c2.insert("acc", t)
        s = c1.stream()
        await s.begin()
        await s.insert("acc", [2, "b", 1])          # a new 'b' between committed ones
        await s.replace("acc", [3, "a", 1])         # moves from 'd' to 'a'
        await s.insert("acc", [9, "c", 1])
        await s.upsert("acc", [5, "x", 1], [["=", 2, 9]])  # existing: updated
        assert (await s.call("remove", [7])).body == [[7, "f", 0]]
        assert (await s.call("rename", [8, "b"])).body == [[8, "b", 0]]
        mine = {1: [1, "b", 0], 2: [2, "b", 1], 3: [3, "a", 1], 5: [5, "b", 9],
                8: [8, "b", 0], 9: [9, "c", 1]}
        for index, it, key, offset, limit in SELECTS:
            kw = {"index": index, "iterator": it, "offset": offset, "limit": limit}
            want_mine = model_select(mine, index, it, key, offset, limit)
            want_base = model_select(base, index, it, key, offset, limit)
            assert rows(await s.select("acc", key, **kw)) == want_mine, (index, it, key)
            assert rows(await c2.select("acc", key, **kw)) == want_base, (index, it, key)
            assert rows(await c1.select("acc", key, **kw)) == want_base, (index, it, key)
        # Spot checks of the model itself, so a wrong model cannot hide a bug.
        assert rows(await s.select("acc", ["b"], index="name")) == [
            [1, "b", 0], [2, "b", 1], [5, "b", 9], [8, "b", 0]]
        assert rows(await s.select("acc", ["b"], index="name", iterator="REQ")) == [
            [8, "b", 0], [5, "b", 9], [2, "b", 1], [1, "b", 0]]
        assert rows(await s.select("acc", [3], iterator="GE", offset=1, limit=2)) == [
            [5, "b", 9], [8, "b", 0]]
        assert rows(await c2.select("acc", ["b"], index="name")) == [[1, "b", 0], [5, "b", 0]]
        assert rows(await s.select("acc", [7])) == []
        assert rows(await c2.select("acc", [7])) == [[7, "f", 0]]
        # A procedure called in the stream sees the same.
        assert (await s.call("all_rows")).body == [[mine[k] for k in sorted(mine)]]
        assert (await c2.call("all_rows")).body == [[base[k] for k in sorted(base)]]
        await s.commit()
        for index, it, key, offset, limit in SELECTS:
            kw = {"index": index, "iterator": it, "offset": offset, "limit": limit}
            assert rows(await c2.select("acc", key, **kw)) == \
                model_select(mine, index, it, key, offset, limit)

    run(tx_conn, body)


def test_conflicting_commit_fails_with_97_and_changes_nothing(tx_conn):
    async def body(c1, c2):
        await c1.insert("acc", [5, "x", 0])
        s1, s2 = c1.stream(), c2.stream()
        await s1.begin()
        await s2.begin()
        await s1.replace("acc", [5, "x", 1])
        await s2.replace("acc", [5, "y", 2])
        await s2.insert("acc", [6, "z", 2])  # a write of s2's that no one else touched
        # Each sees its own version.
        assert rows(await s1.select("acc", [5])) == [[5, "x", 1]]
        assert rows(await s2.select("acc", [5])) == [[5, "y", 2]]
        assert (await s1.commit()).code == 0
        with pytest.raises(TarantoolDatabaseError) as e:
            await s2.commit()
        assert e.value.code == 97 and e.value.message == CONFLICT
        assert rows(await c2.select("acc")) == [[5, "x", 1]]  # nothing of s2's, not even 6
        # The failed COMMIT ended s2's transaction: a new one begins.
        await s2.begin()
        assert rows(await s2.select("acc")) == [[5, "x", 1]]
        await s2.rollback()
        # Two inserts of the same new key: the first committer wins.
        await s1.begin()
        await s2.begin()
        await s1.insert("acc", [8, "first", None])
        await s2.insert("acc", [8, "second", None])
        await s1.commit()
        with pytest.raises(TarantoolDatabaseError) as e:
            await s2.commit()
        assert e.value.code == 97 and e.value.message == CONFLICT
        assert rows(await c1.select("acc", [8])) == [[8, "first", None]]
        # A delete racing a replace of the same key.
        await s1.begin()
        await s2.begin()
        assert (await s1.call("remove", [8])).body == [[8, "first", None]]
        await s2.replace("acc", [8, "kept", None])
        await s2.commit()
        with pytest.raises(TarantoolDatabaseError) as e:
            await s1.commit()
        assert e.value.code == 97 and e.value.message == CONFLICT
        assert rows(await c1.select("acc", [8])) == [[8, "kept", None]]

    run(tx_conn, body)


def test_a_read_only_transaction_goes_to_a_read_view(tx_conn):
    """Another's commit of what a transaction read: a transaction that has
    only read goes on seeing the data as it was (no non-repeatable read, no
    phantom), and is aborted (97) if it then writes; a read-modify-write
    cannot lose the other's update. Uncommitted writes are never visible."""
    async def body(c1, c2):
        await c2.insert("acc", [1, "n", 1])
        s = c1.stream()
        await s.begin(isolation=Isolation.BEST_EFFORT)
        assert rows(await s.select("acc", [1])) == [[1, "n", 1]]
        assert rows(await s.select("acc", [2])) == []
        await c2.replace("acc", [1, "n", 5])           # committed by another
        await c2.insert("acc", [2, "phantom", None])
        await c2.insert("acc", [3, "later", None])      # after: not seen either
        assert rows(await s.select("acc", [1])) == [[1, "n", 1]]     # repeatable
        assert rows(await s.select("acc", [2])) == []                # no phantom
        assert rows(await s.select("acc")) == [[1, "n", 1]]
        # Read-modify-write on what it read (val 1): the write is refused,
        # and so is everything after, COMMIT included.
        with pytest.raises(TarantoolDatabaseError) as e:
            await s.replace("acc", [1, "n", 1 + 1])
        assert e.value.code == 97 and e.value.message == CONFLICT
        with pytest.raises(TarantoolDatabaseError) as e:
            await s.select("acc", [1])
        assert e.value.code == 97
        with pytest.raises(TarantoolDatabaseError) as e:
            await s.commit()
        assert e.value.code == 97
        assert rows(await c2.select("acc", [1])) == [[1, "n", 5]]
        # A read-only transaction in a read view commits.
        await s.begin()
        assert rows(await s.select("acc", [3])) == [[3, "later", None]]
        await c2.delete("acc", [3])
        assert rows(await s.select("acc", [3])) == [[3, "later", None]]
        assert (await s.commit()).code == 0
        # Uncommitted writes of another transaction are never visible (no dirty read).
        s2 = c2.stream()
        await s2.begin()
        await s2.replace("acc", [1, "dirty", 0])
        await s.begin()
        assert rows(await s.select("acc", [1])) == [[1, "n", 5]]
        await s2.rollback()
        await s.rollback()

    run(tx_conn, body)


def test_closing_connection_rolls_back_open_transaction(tx_conn):
    async def body(c2):
        c1 = asynctnt.Connection(host="127.0.0.1", port=tx_conn.port, username="test",
                                 password="secret", reconnect_timeout=0)
        await c1.connect()
        s = c1.stream()
        await s.begin()
        await s.insert("acc", [1, "a", None])
        await s.call("insert", [2, "b"])
        s_other = c1.stream()
        await s_other.begin()
        await s_other.insert("acc", [3, "c", None])
        await c1.disconnect()
        await asyncio.get_running_loop().run_in_executor(None, wait_no_open_txn, tx_conn)
        assert rows(await c2.select("acc")) == []
        # Nothing of theirs is pending: another transaction on the same keys commits.
        s2 = c2.stream()
        await s2.begin()
        await s2.insert("acc", [1, "mine", None])
        await s2.insert("acc", [3, "mine", None])
        assert (await s2.commit()).code == 0
        assert rows(await c2.select("acc")) == [[1, "mine", None], [3, "mine", None]]

    run(tx_conn, body, n=1)


def test_pushes_from_procedure_in_stream_transaction(tx_conn):
    async def body(c1, c2):
        await c2.insert("acc", [1, "a", None])
        s = c1.stream()
        await s.begin()
        fut = s.call("insert_and_push", [7, "p"], push_subscribe=True)
        seen = [p async for p in asynctnt.PushIterator(fut)]
        # It pushed what the transaction sees: two rows, and its own insert.
        assert seen == [[2], [[7, "p", None]]]
        assert (await fut).body == ["pushed"]
        assert rows(await c2.select("acc")) == [[1, "a", None]]
        # Outside the transaction (another connection), the same procedure
        # sees committed data only and autocommits.
        fut = c2.call("insert_and_push", [8, "q"], push_subscribe=True)
        assert [p async for p in asynctnt.PushIterator(fut)] == [[2], [[8, "q", None]]]
        assert (await fut).body == ["pushed"]
        # That insert went into the range the transaction counted, and the
        # transaction has written: it is aborted.
        with pytest.raises(TarantoolDatabaseError) as e:
            await s.select("acc")
        assert e.value.code == 97
        await s.rollback()
        assert rows(await c2.select("acc")) == [[1, "a", None], [8, "q", None]]

    run(tx_conn, body)


def test_asynctnt_reconnect_after_server_side_close(tx_conn):
    """asynctnt (2.x) on a lost connection: with reconnect_timeout > 0 (the
    default is 1/3 s) it reconnects by itself; a stream made before is bound
    to the old connection and fails with TarantoolNotConnectedError, its
    transaction rolled back by the server; new streams work (their ids
    start over at 1). With reconnect_timeout=0 it stays disconnected until
    connect() is called."""
    async def main():
        again = asynctnt.Connection(host="127.0.0.1", port=tx_conn.port, username="test",
                                    password="secret", reconnect_timeout=0.05)
        once = asynctnt.Connection(host="127.0.0.1", port=tx_conn.port, username="test",
                                   password="secret", reconnect_timeout=0)
        await again.connect()
        await once.connect()
        assert again.reconnect_timeout == 0.05 and once.reconnect_timeout == 0
        s = again.stream()
        await s.begin()
        await s.insert("acc", [1, "lost", None])
        assert s.stream_id == 1
        old_sessions = set(tx_conn.tx.sessions)
        close_server_side(tx_conn)
        deadline = time.monotonic() + 5
        while not (once.state == ConnectionState.DISCONNECTED
                   and again.is_fully_connected and set(tx_conn.tx.sessions) - old_sessions):
            assert time.monotonic() < deadline, (once.state, again.state)
            await asyncio.sleep(0.01)
        # The reconnected connection is a new session, with the schema fetched.
        assert again.state == ConnectionState.CONNECTED
        assert (await again.ping()).code == 0
        assert again.schema.spaces["acc"].sid == ACC
        await asyncio.get_running_loop().run_in_executor(None, wait_no_open_txn, tx_conn)
        assert rows(await again.select("acc")) == []  # the old transaction is gone
        with pytest.raises(TarantoolNotConnectedError):
            await s.commit()  # the stream belongs to the lost connection
        s2 = again.stream()
        assert s2.stream_id == 1
        await s2.begin()
        await s2.insert("acc", [2, "kept", None])
        await s2.commit()
        # The one without reconnect stays down until asked.
        assert not once.is_connected
        with pytest.raises(TarantoolNotConnectedError):
            await once.ping()
        await once.connect()
        assert rows(await once.select("acc")) == [[2, "kept", None]]
        await again.disconnect()
        await once.disconnect()

    asyncio.run(asyncio.wait_for(main(), 30))


# == raw protocol ========================================================================


def test_stream_ordering_with_slow_procedures(tx_conn):
    """One write: stream 1: slow(0.3,'a'), fast('b'); stream 2: fast('c'); no
    stream: fast('d'); stream 3: slow(0.1,'e'). c, d and e finish before a,
    b after a; b does not even start before a has finished, while c, d and e
    start (and e sleeps) while a sleeps."""
    with Raw(tx_conn.port) as c:
        assert_ok(ask(c, call(9, "take_log")), 9)  # start with an empty log
        c.send(call(1, "slow", 0.3, "a", sid=1) + call(2, "fast", "b", sid=1)
               + call(3, "fast", "c", sid=2) + call(4, "fast", "d")
               + call(5, "slow", 0.1, "e", sid=3))
        replies = [read_reply(c) for _ in range(5)]
        assert {r.sync: (r.code, r.body) for r in replies} == {
            1: (0, {DATA: ["a"]}), 2: (0, {DATA: ["b"]}), 3: (0, {DATA: ["c"]}),
            4: (0, {DATA: ["d"]}), 5: (0, {DATA: ["e"]})}
        order = [r.body[DATA][0] for r in replies]
        assert sorted(order[:2]) == ["c", "d"] and order[2:] == ["e", "a", "b"]
        log = ok_rows(ask(c, call(10, "take_log")), 10)[0]
    events = [(what, tag) for what, tag, _ in log]
    at = {(what, tag): t for what, tag, t in log}
    assert sorted(events) == sorted((w, t) for w in ("start", "end") for t in "abcde")
    # b starts only after a has ended.
    assert events.index(("start", "b")) > events.index(("end", "a"))
    assert at[("start", "b")] >= at[("end", "a")]
    assert at[("end", "a")] - at[("start", "a")] >= 0.29
    # Other streams and no stream do not wait for a: c and d (plain functions,
    # run inline) even start before a's fiber does; e sleeps while a sleeps.
    for tag in "cde":
        assert events.index(("end", tag)) < events.index(("end", "a"))
        assert at[("start", tag)] <= at[("end", tag)] < at[("end", "a")]
    assert events.index(("start", "a")) < events.index(("start", "e"))
    assert at[("end", "e")] - at[("start", "e")] >= 0.09


def test_txn_requests_out_of_stream_230(tx_conn):
    with Raw(tx_conn.port) as c:
        for sync, (t, name) in enumerate([(BEGIN, "BEGIN"), (COMMIT, "COMMIT"),
                                          (ROLLBACK, "ROLLBACK")], 1):
            r = ask(c, req(t, sync))
            assert_error(r, 230, f"Unable to process {name} request out of stream", sync)
        # Also with a body (BEGIN with TIMEOUT): the stream rule is checked first.
        assert_error(ask(c, req(BEGIN, 4, {TIMEOUT: 1.0})), 230,
                     "Unable to process BEGIN request out of stream", 4)
        assert_ok(ask(c, insert(5, [1, "a", None])), 5)  # the connection goes on
        assert committed(tx_conn.port) == [[1, "a", None]]


def test_requests_not_allowed_in_stream_229(tx_conn):
    cases = [
        (AUTH, "AUTH", {0x23: "guest", 0x21: []}),
        (ID, "ID", {0x54: 3, 0x55: [1]}),
        (WATCH, "WATCH", {0x57: "key"}),
        (UNWATCH, "UNWATCH", {0x57: "key"}),
        (WATCH_ONCE, "WATCH_ONCE", {0x57: "key"}),
    ]
    with Raw(tx_conn.port) as c:
        for sync, (t, name, body) in enumerate(cases, 1):
            r = ask(c, req(t, sync, body, sid=7))
            assert_error(r, 229, f"Unable to process {name} request in stream", sync)
        # PING, CALL, SELECT and DML are allowed in a stream.
        assert_ok(ask(c, req(PING, 20, sid=7)), 20, {})
        assert_ok(ask(c, call(21, "fast", "x", sid=7)), 21, {DATA: ["x"]})
        assert_ok(ask(c, insert(22, [1, "a", None], sid=7)), 22, {DATA: [[1, "a", None]]})
        assert_ok(ask(c, select_all(23, sid=7)), 23, {DATA: [[1, "a", None]]})


def test_begin_twice_79_and_commit_rollback_without_txn_ok(tx_conn):
    with Raw(tx_conn.port) as c:
        # COMMIT and ROLLBACK with no transaction: OK, empty body.
        assert_ok(ask(c, req(COMMIT, 1, sid=1)), 1, {})
        assert_ok(ask(c, req(ROLLBACK, 2, sid=1)), 2, {})
        assert_ok(ask(c, req(BEGIN, 3, sid=1)), 3, {})
        assert_ok(ask(c, insert(4, [1, "a", None], sid=1)), 4)
        assert_error(ask(c, req(BEGIN, 5, sid=1)), 79, ACTIVE, 5)
        # box.begin() in a procedure running in that transaction: also 79.
        assert_error(ask(c, call(6, "begin_no_commit", 2, "b", sid=1)), 79, ACTIVE, 6)
        # The first transaction is intact: its write is there, and commits.
        assert ok_rows(ask(c, select_all(7, sid=1)), 7) == [[1, "a", None]]
        assert committed(tx_conn.port) == []
        assert_ok(ask(c, req(COMMIT, 8, sid=1)), 8, {})
        assert committed(tx_conn.port) == [[1, "a", None]]
        # Each stream of a connection has a transaction of its own.
        assert_ok(ask(c, req(BEGIN, 9, sid=1)), 9, {})
        assert_ok(ask(c, req(BEGIN, 10, sid=2)), 10, {})
        assert_ok(ask(c, insert(11, [2, "s2", None], sid=2)), 11)
        assert ok_rows(ask(c, select_all(12, sid=1)), 12) == [[1, "a", None]]
        assert_ok(ask(c, req(ROLLBACK, 13, sid=1)), 13, {})
        assert_ok(ask(c, req(COMMIT, 14, sid=2)), 14, {})
        assert committed(tx_conn.port) == [[1, "a", None], [2, "s2", None]]


def test_begin_timeout_231(tx_conn):
    with Raw(tx_conn.port) as c:
        assert_ok(ask(c, req(BEGIN, 1, {TIMEOUT: 0.2}, sid=1)), 1, {})
        assert_ok(ask(c, insert(2, [1, "early", None], sid=1)), 2, {DATA: [[1, "early", None]]})
        time.sleep(0.4)
        assert_error(ask(c, insert(3, [2, "late", None], sid=1)), 231, TIMED_OUT, 3)
        assert_error(ask(c, select_all(4, sid=1)), 231, TIMED_OUT, 4)
        r = ask(c, call(5, "insert", 3, "proc", sid=1))
        assert r.code == 0x8000 | 231 and r.body[ERROR_24] == TIMED_OUT
        assert committed(tx_conn.port) == []  # the early write was rolled back too
        assert_ok(ask(c, req(ROLLBACK, 6, sid=1)), 6, {})
        assert_ok(ask(c, req(BEGIN, 7, sid=1)), 7, {})
        assert_ok(ask(c, insert(8, [4, "fresh", None], sid=1)), 8)
        assert_ok(ask(c, req(COMMIT, 9, sid=1)), 9, {})
        assert committed(tx_conn.port) == [[4, "fresh", None]]
        # COMMIT of a timed-out transaction: 231, and it is over.
        assert_ok(ask(c, req(BEGIN, 10, {TIMEOUT: 0.1}, sid=2)), 10, {})
        assert_ok(ask(c, insert(11, [5, "x", None], sid=2)), 11)
        time.sleep(0.25)
        assert_error(ask(c, req(COMMIT, 12, sid=2)), 231, TIMED_OUT, 12)
        assert_ok(ask(c, req(BEGIN, 13, sid=2)), 13, {})
        assert_ok(ask(c, req(ROLLBACK, 14, sid=2)), 14, {})
        assert committed(tx_conn.port) == [[4, "fresh", None]]
        # A timeout that does not expire changes nothing.
        assert_ok(ask(c, req(BEGIN, 15, {TIMEOUT: 5.0}, sid=3)), 15, {})
        assert_ok(ask(c, insert(16, [6, "y", None], sid=3)), 16)
        assert_ok(ask(c, req(COMMIT, 17, sid=3)), 17, {})
        assert committed(tx_conn.port) == [[4, "fresh", None], [6, "y", None]]
        # A negative TIMEOUT is refused.
        r = ask(c, req(BEGIN, 18, {TIMEOUT: -1.0}, sid=4))
        assert_error(r, 1, "Illegal parameters, timeout must be a number greater than 0", 18)


def test_txn_isolation_levels(tx_conn):
    with Raw(tx_conn.port) as c:
        for level in range(5):
            assert_ok(ask(c, req(BEGIN, 10 + level, {TXN_ISOLATION: level}, sid=1)), 10 + level, {})
            assert_ok(ask(c, insert(20 + level, [level, "i", None], sid=1)), 20 + level)
            assert committed(tx_conn.port) == [[i, "i", None] for i in range(level)]
            assert_ok(ask(c, req(COMMIT, 30 + level, sid=1)), 30 + level, {})
        assert committed(tx_conn.port) == [[i, "i", None] for i in range(5)]
        r = ask(c, req(BEGIN, 40, {TXN_ISOLATION: 5}, sid=1))
        assert r.code == 0x8000 | 1 and r.sync == 40
        assert r.body[ERROR_24].startswith("Illegal parameters, unknown ")
        assert r.body[ERROR_24].endswith("isolation level")
        # The refused BEGIN opened nothing: a write autocommits.
        assert_ok(ask(c, insert(41, [9, "auto", None], sid=1)), 41)
        assert committed(tx_conn.port)[-1] == [9, "auto", None]


def test_txn_isolation_bad_level_message_as_tarantool(make_server):
    server = make_server(app=APP)
    with Raw(server.port) as c:
        assert_error(ask(c, req(BEGIN, 1, {TXN_ISOLATION: 5}, sid=1)), 1,
                     "Illegal parameters, unknown isolation level", 1)


def test_procedure_in_stream_transaction(tx_conn):
    with Raw(tx_conn.port) as c, Raw(tx_conn.port) as other:
        assert_ok(ask(other, insert(1, [1, "committed", None])), 1)
        assert_ok(ask(c, req(BEGIN, 1, sid=5)), 1, {})
        assert_ok(ask(c, call(2, "in_txn", sid=5)), 2, {DATA: [True]})
        assert_ok(ask(c, call(3, "in_txn")), 3, {DATA: [False]})        # outside the stream
        assert_ok(ask(c, call(4, "in_txn", sid=6)), 4, {DATA: [False]})  # another stream
        assert_ok(ask(c, call(5, "insert", 2, "proc", sid=5)), 5, {DATA: [[2, "proc", None]]})
        # The stream's own SELECT and a later procedure see it; others do not.
        assert ok_rows(ask(c, select_all(6, sid=5)), 6) == [[1, "committed", None],
                                                            [2, "proc", None]]
        assert ok_rows(ask(c, call(7, "all_rows", sid=5)), 7) == [
            [[1, "committed", None], [2, "proc", None]]]
        assert ok_rows(ask(c, select_all(8)), 8) == [[1, "committed", None]]
        assert ok_rows(ask(other, call(9, "all_rows")), 9) == [[[1, "committed", None]]]
        # A duplicate inside the procedure is checked against the transaction's view.
        r = ask(c, call(10, "insert", 2, "again", sid=5))
        assert r.code == 0x8000 | 3
        # (Tarantool 2.6's message, which Styx follows: no tuples in it.)
        assert r.body[ERROR_24] == "Duplicate key exists in unique index 'primary' in space 'acc'"
        assert_ok(ask(c, call(11, "remove", 1, sid=5)), 11, {DATA: [[1, "committed", None]]})
        assert ok_rows(ask(other, select_all(12)), 12) == [[1, "committed", None]]
        assert_ok(ask(c, req(COMMIT, 13, sid=5)), 13, {})
        assert ok_rows(ask(other, select_all(14)), 14) == [[2, "proc", None]]


def test_box_begin_in_procedure_without_commit(tx_conn):
    with Raw(tx_conn.port) as c:
        assert_ok(ask(c, insert(1, [1, "keep", None])), 1)
        # Outside a stream: error 30, and the writes are rolled back.
        assert_error(ask(c, call(2, "begin_no_commit", 2, "x")), 30, TX_ACTIVE_AT_RETURN, 2)
        assert_error(ask(c, call(3, "begin_no_commit_async", 3, "y")), 30, TX_ACTIVE_AT_RETURN, 3)
        r = ask(c, call(4, "begin_fail", 4, "z"))
        assert r.code == 0x8000 | 32 and r.body[ERROR_24] == "ValueError: boom"
        assert committed(tx_conn.port) == [[1, "keep", None]]
        # The next call on this connection is not in a transaction.
        assert_ok(ask(c, call(5, "in_txn")), 5, {DATA: [False]})
        # box.commit() with no transaction: nothing happens.
        assert_ok(ask(c, call(6, "commit_only")), 6, {DATA: ["committed"]})
        # In a stream the transaction a procedure began lives on, like BEGIN's.
        assert_ok(ask(c, call(7, "begin_no_commit", 5, "open", sid=3)), 7, {DATA: ["left open"]})
        assert_ok(ask(c, call(8, "in_txn", sid=3)), 8, {DATA: [True]})
        assert committed(tx_conn.port) == [[1, "keep", None]]
        assert ok_rows(ask(c, select_all(9, sid=3)), 9) == [[1, "keep", None], [5, "open", None]]
        assert_error(ask(c, req(BEGIN, 10, sid=3)), 79, ACTIVE, 10)
        assert_ok(ask(c, req(COMMIT, 11, sid=3)), 11, {})
        assert committed(tx_conn.port) == [[1, "keep", None], [5, "open", None]]
        # ... and a procedure may commit a transaction BEGIN opened.
        assert_ok(ask(c, req(BEGIN, 12, sid=3)), 12, {})
        assert_ok(ask(c, insert(13, [6, "by proc", None], sid=3)), 13)
        assert_ok(ask(c, call(14, "commit_only", sid=3)), 14, {DATA: ["committed"]})
        assert_ok(ask(c, call(15, "in_txn", sid=3)), 15, {DATA: [False]})
        assert committed(tx_conn.port)[-1] == [6, "by proc", None]


def test_box_begin_commit_in_one_procedure(tx_conn):
    with Raw(tx_conn.port) as c:
        # Inside: its write visible to itself, in a transaction; after commit, not.
        assert_ok(ask(c, call(1, "begin_commit", 1, "x")), 1, {DATA: [[1, "x", None], True, False]})
        assert committed(tx_conn.port) == [[1, "x", None]]
        assert_ok(ask(c, call(2, "begin_rollback", 2, "y")), 2, {DATA: []})
        assert committed(tx_conn.port) == [[1, "x", None]]
        # The same inside a stream with no transaction.
        assert_ok(ask(c, call(3, "begin_commit", 3, "z", sid=4)), 3,
                  {DATA: [[3, "z", None], True, False]})
        assert_ok(ask(c, call(4, "in_txn", sid=4)), 4, {DATA: [False]})
        assert committed(tx_conn.port) == [[1, "x", None], [3, "z", None]]
        # A yield inside box.begin/box.commit: both writes commit.
        assert_ok(ask(c, call(5, "begin_write_sleep_write_commit", 10, 11, 0.05)), 5,
                  {DATA: ["committed"]})
        assert [t[0] for t in committed(tx_conn.port)] == [1, 3, 10, 11]


def test_disconnect_with_open_transaction_raw(tx_conn):
    """BEGIN and writes, then the client goes: the transaction is rolled back."""
    c = Raw(tx_conn.port)
    c.send(req(BEGIN, 1, sid=1) + insert(2, [1, "a", None], sid=1)
           + call(3, "insert", 2, "b", sid=1))
    for sync in (1, 2, 3):
        assert_ok(read_reply(c), sync)
    c.close()
    wait_no_open_txn(tx_conn)
    assert committed(tx_conn.port) == []


def test_disconnect_during_procedure_commits_all_or_nothing(tx_conn):
    c = Raw(tx_conn.port)
    c.send(call(1, "begin_write_sleep_write_commit", 1, 2, 0.3, sid=1))
    time.sleep(0.1)
    c.close()
    time.sleep(0.45)
    wait_no_open_txn(tx_conn)
    # Tarantool finishes the request (the rollback on disconnect waits for
    # it), so both rows; all or nothing at least, never one of the two.
    assert [t[0] for t in committed(tx_conn.port)] == [1, 2]


def test_queued_stream_requests_run_after_client_close(tx_conn):
    c = Raw(tx_conn.port)
    c.send(req(BEGIN, 1, sid=1) + call(2, "slow", 0.2, "a", sid=1)
           + insert(3, [1, "a", None], sid=1) + req(COMMIT, 4, sid=1))
    time.sleep(0.05)
    c.close()
    time.sleep(0.4)
    wait_no_open_txn(tx_conn)
    assert committed(tx_conn.port) == [[1, "a", None]]


def test_update_and_delete_in_stream_transaction(tx_conn):
    with Raw(tx_conn.port) as c:
        assert_ok(ask(c, insert(1, [1, "a", 1])), 1)
        assert_ok(ask(c, insert(2, [2, "b", 2])), 2)
        assert_ok(ask(c, req(BEGIN, 3, sid=1)), 3, {})
        r = ask(c, req(UPDATE, 4, {0x10: ACC, 0x11: 0, 0x20: [1], 0x21: [["=", 2, 5]]}, sid=1))
        assert_ok(r, 4, {DATA: [[1, "a", 5]]})
        r = ask(c, req(DELETE, 5, {0x10: ACC, 0x11: 0, 0x20: [2]}, sid=1))
        assert_ok(r, 5, {DATA: [[2, "b", 2]]})
        assert committed(tx_conn.port) == [[1, "a", 1], [2, "b", 2]]
        assert_ok(ask(c, req(COMMIT, 6, sid=1)), 6, {})
        assert committed(tx_conn.port) == [[1, "a", 5]]


# == counters ============================================================================


def net_stat(c: Raw, sync: int) -> dict[str, dict[str, int]]:
    return ok_rows(ask(c, call(sync, "net_stat")), sync)[0]


def test_stream_counters(tx_conn):
    with Raw(tx_conn.port) as c, Raw(tx_conn.port) as watch:
        before = net_stat(watch, 1)
        assert before["STREAMS"]["current"] == 0
        assert before["REQUESTS_IN_STREAM_QUEUE"]["current"] == 0
        # 5 requests in stream 1 behind a slow one (4 wait), 3 in stream 2 (2 wait).
        c.send(call(1, "slow", 0.3, "a", sid=1)
               + b"".join(call(2 + i, "fast", i, sid=1) for i in range(4))
               + call(10, "slow", 0.3, "b", sid=2) + call(11, "fast", "x", sid=2)
               + call(12, "fast", "y", sid=2))
        time.sleep(0.1)
        during = net_stat(watch, 2)
        assert during["STREAMS"]["current"] == 2
        assert during["STREAMS"]["total"] - before["STREAMS"]["total"] == 2
        assert during["REQUESTS_IN_STREAM_QUEUE"]["current"] == 6
        assert during["REQUESTS_IN_STREAM_QUEUE"]["total"] - \
            before["REQUESTS_IN_STREAM_QUEUE"]["total"] == 6
        assert during["REQUESTS_IN_PROGRESS"]["current"] == 3  # two slow ones and net_stat
        syncs = [read_reply(c).sync for _ in range(8)]
        assert sorted(syncs) == [1, 2, 3, 4, 5, 10, 11, 12]
        assert [s for s in syncs if s < 10] == [1, 2, 3, 4, 5]
        assert [s for s in syncs if s >= 10] == [10, 11, 12]
        after = net_stat(watch, 3)
        assert after["STREAMS"]["current"] == 0
        assert after["REQUESTS_IN_STREAM_QUEUE"]["current"] == 0
        assert after["STREAMS"]["total"] - before["STREAMS"]["total"] == 2
        assert after["REQUESTS_IN_STREAM_QUEUE"]["total"] - \
            before["REQUESTS_IN_STREAM_QUEUE"]["total"] == 6
        # Requests outside streams touch neither counter.
        for i in range(3):
            assert_ok(ask(c, call(20 + i, "fast", i)), 20 + i)
        quiet = net_stat(watch, 4)
        assert quiet["STREAMS"]["total"] == after["STREAMS"]["total"]
        assert quiet["REQUESTS_IN_STREAM_QUEUE"]["total"] == \
            after["REQUESTS_IN_STREAM_QUEUE"]["total"]
        # A client that goes with requests queued: the queue is emptied.
        c.send(call(30, "slow", 0.2, "c", sid=3) + call(31, "fast", 1, sid=3)
               + call(32, "fast", 2, sid=3))
        time.sleep(0.05)
        assert net_stat(watch, 5)["REQUESTS_IN_STREAM_QUEUE"]["current"] == 2
    time.sleep(0.4)
    with Raw(tx_conn.port) as watch:
        gone = net_stat(watch, 6)
        assert gone["REQUESTS_IN_STREAM_QUEUE"]["current"] == 0
        assert gone["STREAMS"]["current"] == 0
        assert gone["REQUESTS_IN_STREAM_QUEUE"]["total"] - \
            after["REQUESTS_IN_STREAM_QUEUE"]["total"] == 2


def test_stream_counters_with_open_transaction(tx_conn):
    with Raw(tx_conn.port) as c, Raw(tx_conn.port) as watch:
        before = net_stat(watch, 1)
        assert_ok(ask(c, req(BEGIN, 1, sid=1)), 1, {})
        assert_ok(ask(c, insert(2, [1, "a", None], sid=1)), 2)
        open_txn = net_stat(watch, 2)
        assert_ok(ask(c, req(COMMIT, 3, sid=1)), 3, {})
        after = net_stat(watch, 3)
    assert open_txn["STREAMS"]["current"] == 1
    assert after["STREAMS"]["current"] == 0
    assert after["STREAMS"]["total"] - before["STREAMS"]["total"] == 1
