"""Serializable transactions, through asynctnt streams against a real server
(styx/box/txn.py): the anomalies read committed lets through, each tried,
and refused. A transaction that gets error 97 is retried, as an application
does. The model check (every committed history has a serial order) is
tests/unit/test_txn_model.py."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asynctnt
import pytest
from asynctnt.exceptions import TarantoolDatabaseError

from styx import Server

APP = Path(__file__).parent / "apps" / "stream_app.py"  # acc: {id, name, val}
CONFLICT = 97


@pytest.fixture
def server(make_server: Callable[..., Server]) -> Server:
    return make_server(app=str(APP), iproto_threads=1)


@pytest.fixture(params=["none", "write"])
def wal_server(request: pytest.FixtureRequest, make_server: Callable[..., Server], tmp_path: Path) -> Server:
    """With the WAL on, a commit is in memory before it is on disk: the
    default level reads past it until it is."""
    return make_server(app=str(APP), iproto_threads=1, wal_mode=request.param, work_dir=str(tmp_path))


def rows(resp: Any) -> list[list[Any]]:
    return [list(t) for t in resp.body]


async def connect(server: Server) -> asynctnt.Connection:
    return await asynctnt.connect(host="127.0.0.1", port=server.port)


async def in_txn(conn: asynctnt.Connection, body: Callable[[Any], Awaitable[Any]]) -> tuple[Any, int]:
    """Run `body(stream)` in a transaction until it commits; (its result, the
    attempts that got error 97)."""
    conflicts = 0
    while True:
        stream = conn.stream()
        await stream.begin()
        try:
            result = await body(stream)
            await stream.commit()
            return result, conflicts
        except TarantoolDatabaseError as e:
            if e.code != CONFLICT:
                raise
            conflicts += 1
            await stream.rollback()


def test_no_lost_update(wal_server: Server) -> None:
    """8 connections x 4 workers increment one counter (SELECT, then REPLACE
    v + 1) 15 times each: every increment that committed is there."""
    async def main() -> tuple[int, int]:
        conns = [await connect(wal_server) for _ in range(8)]
        await conns[0].replace("acc", [1, "counter", 0])

        async def increment(stream: Any) -> None:
            v = rows(await stream.select("acc", [1]))[0][2]
            await asyncio.sleep(0)  # let the others in between the read and the write
            await stream.replace("acc", [1, "counter", v + 1])

        async def worker(conn: asynctnt.Connection) -> int:
            conflicts = 0
            for _ in range(15):
                conflicts += (await in_txn(conn, increment))[1]
            return conflicts

        conflicts = await asyncio.gather(*(worker(c) for c in conns for _ in range(4)))
        final = rows(await conns[0].select("acc", [1]))[0][2]
        for c in conns:
            await c.disconnect()
        return final, sum(conflicts)

    final, conflicts = asyncio.run(main())
    assert final == 8 * 4 * 15
    assert conflicts > 0  # the workers did race: without read tracking, increments would be lost


def test_write_skew_is_refused(server: Server) -> None:
    """Two transactions each read both switches and turn one off if both are
    on (the invariant: at least one stays on). The second to commit fails."""
    async def main() -> None:
        c1, c2 = await connect(server), await connect(server)
        await c1.replace("acc", [10, "switch", True])
        await c1.replace("acc", [11, "switch", True])
        s1, s2 = c1.stream(), c2.stream()
        await s1.begin()
        await s2.begin()
        for s in (s1, s2):
            assert all(r[2] for r in rows(await s.select("acc", [10], iterator="GE", limit=2)))
        await s1.replace("acc", [10, "switch", False])
        await s2.replace("acc", [11, "switch", False])
        await s1.commit()
        with pytest.raises(TarantoolDatabaseError) as e:
            await s2.commit()
        assert e.value.code == CONFLICT
        assert [r[2] for r in rows(await c1.select("acc", [10], iterator="GE", limit=2))] == [False, True]
        await c1.disconnect()
        await c2.disconnect()

    asyncio.run(main())


def test_phantom_is_refused(server: Server) -> None:
    """A transaction counts the rows of a range and writes the count; another
    inserts into the range and commits first: the count is stale, the
    first cannot commit it. Then, retried, it writes the right count."""
    async def main() -> None:
        c1, c2 = await connect(server), await connect(server)
        for k in (20, 21, 22):
            await c1.replace("acc", [k, "item", None])
        s = c1.stream()
        await s.begin()
        n = len([r for r in rows(await s.select("acc", [20], iterator="GE")) if r[0] < 30])
        assert n == 3
        await c2.insert("acc", [25, "item", None])  # a phantom for s, autocommitted
        with pytest.raises(TarantoolDatabaseError) as e:
            await s.replace("acc", [40, "count", n])
            await s.commit()
        assert e.value.code == CONFLICT
        await s.rollback()
        assert rows(await c1.select("acc", [40])) == []

        async def count(stream: Any) -> int:
            k = len([r for r in rows(await stream.select("acc", [20], iterator="GE")) if r[0] < 30])
            await stream.replace("acc", [40, "count", k])
            return k

        assert (await in_txn(c1, count))[0] == 4
        assert rows(await c1.select("acc", [40])) == [[40, "count", 4]]
        await c1.disconnect()
        await c2.disconnect()

    asyncio.run(main())


def test_bank(wal_server: Server) -> None:
    """Transfers between 5 accounts in transactions, while read-only
    transactions read every balance one by one: every reader sees the same
    total, none is aborted (a reader overtaken by a commit reads from a read
    view), and the total at the end is unchanged."""
    accounts = range(100, 105)

    async def main() -> tuple[list[int], int, int]:
        conns = [await connect(wal_server) for _ in range(6)]
        for a in accounts:
            await conns[0].replace("acc", [a, "account", 100])
        rnd = random.Random(7)

        async def transfer(conn: asynctnt.Connection) -> None:
            for _ in range(25):
                a, b = rnd.sample(list(accounts), 2)
                amount = rnd.randint(1, 30)

                async def body(stream: Any, a: int = a, b: int = b, amount: int = amount) -> None:
                    x = rows(await stream.select("acc", [a]))[0][2]
                    await asyncio.sleep(0)
                    y = rows(await stream.select("acc", [b]))[0][2]
                    await stream.replace("acc", [a, "account", x - amount])
                    await stream.replace("acc", [b, "account", y + amount])

                await in_txn(conn, body)

        totals: list[int] = []
        reader_conflicts = 0

        async def read(conn: asynctnt.Connection) -> None:
            nonlocal reader_conflicts
            for _ in range(25):
                async def body(stream: Any) -> int:
                    total = 0
                    for a in accounts:
                        total += rows(await stream.select("acc", [a]))[0][2]
                        await asyncio.sleep(0)
                    return total

                total, conflicts = await in_txn(conn, body)
                totals.append(total)
                reader_conflicts += conflicts

        await asyncio.gather(*(transfer(c) for c in conns[:4]), *(read(c) for c in conns[4:]))
        final = 0
        for a in accounts:
            final += rows(await conns[0].select("acc", [a]))[0][2]
        for c in conns:
            await c.disconnect()
        return totals, final, reader_conflicts

    totals, final, reader_conflicts = asyncio.run(main())
    assert len(totals) == 50 and set(totals) == {500}
    assert reader_conflicts == 0
    assert final == 500
    assert wal_server.tx is not None and wal_server.tx.schema.txns.read_views > 0  # the readers were overtaken


def test_nothing_is_tracked_outside_transactions(server: Server) -> None:
    """Requests outside transactions leave no trace in the transaction
    manager, and once transactions end, it watches nothing."""
    async def main() -> None:
        c = await connect(server)
        await c.replace("acc", [1, "x", 0])
        await c.select("acc", [1])
        assert server.tx is not None and server.tx.schema.changes.watch is None
        s = c.stream()
        await s.begin()
        await s.select("acc", [1])
        assert server.tx.schema.changes.watch is not None
        await s.commit()
        assert server.tx.schema.changes.watch is None and not server.tx.schema.txns.txns
        await c.disconnect()

    asyncio.run(main())


def test_box_begin_takes_an_isolation_level(server: Server) -> None:
    """box.begin(txn_isolation=...) takes box.txn_isolation_level's names and
    numbers, and refuses others with Tarantool's error."""
    async def main() -> None:
        c = await connect(server)
        for level in ("default", "read-committed", "read-confirmed", "best-effort", "BEST_EFFORT", 0, 3):
            assert (await c.call("begin_with", [level])).body[0] >= 0
        for level in ("serializable", 7, True):
            with pytest.raises(TarantoolDatabaseError) as e:
                await c.call("begin_with", [level])
            assert e.value.message == ("Illegal parameters, txn_isolation must be one of "
                                       "box.txn_isolation_level (keys or values)")
        await c.disconnect()

    asyncio.run(main())
