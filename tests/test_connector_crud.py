"""Real connectors with their DEFAULT settings (schema fetch on) doing CRUD by
space and index names against tests/apps/crud_app.py: tarantool-python
(and its ConnectionPool), asynctnt, and net.box from Debian's Tarantool 2.6.

Every test runs against Styx with 0 and 2 iproto threads, and against
Tarantool 2.6 itself serving the same spaces and grants
(tests/lua/tarantool_server.lua `crud`): the expected values are what
Tarantool answers, so a Styx-only failure is a difference from Tarantool.

The app: `tester` [id unsigned, name string, value any] with a TREE
`primary` on id and a non-unique TREE `name`; `hashy` [key string, value
any] with a HASH `pk`; guest may read, write and execute on the universe;
`crud`/`pw` may read and write both spaces and execute; `nogrants`/`pw` has
only the defaults; `boss`/`pw` has the role `super`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asynctnt
import pytest
import tarantool
from asynctnt.exceptions import TarantoolDatabaseError, TarantoolSchemaError
from tarantool import Mode
from tarantool.const import ITERATOR_GE, ITERATOR_GT, ITERATOR_LE, ITERATOR_LT, ITERATOR_REQ
from tarantool.error import DatabaseError, PoolTopologyError, SchemaError

from tests.oracle import tarantool_server

CRUD_APP = str(Path(__file__).parent / "apps" / "crud_app.py")
NETBOX_SCRIPT = Path(__file__).parent / "lua" / "netbox_crud.lua"
TESTER = 512  # `tester`: the first user space, in both servers

DUP_PRIMARY = "Duplicate key exists in unique index 'primary' in space 'tester'"
UPDATE_PK = "Attempt to modify a tuple field which is part of index 'primary' in space 'tester'"
HASH_NO_PARTIAL = ("HASH index  does not support selects via a partial key (expected 1 parts, "
                   "got 0). Please Consider changing index type to TREE.")


@dataclass
class Target:
    kind: str  # "styx" or "tarantool"
    port: int
    server: Any = None  # the styx Server

    def schema_version(self) -> int | None:
        return self.server.tx.schema.version if self.server is not None else None


@pytest.fixture(params=["threads0", "threads2", "tarantool"])
def spawn(request: pytest.FixtureRequest, make_server: Callable[..., Any],
          tmp_path: Path) -> Iterator[Callable[[], Target]]:
    """Start servers of this test's kind: Styx (0 or 2 iproto threads) or Tarantool 2.6."""
    with contextlib.ExitStack() as stack:
        count = 0

        def start() -> Target:
            nonlocal count
            count += 1
            if request.param == "tarantool":
                tarantool_bin = request.getfixturevalue("tarantool_bin")
                port = stack.enter_context(
                    tarantool_server(tarantool_bin, "crud", tmp_path / f"tarantool{count}"))
                return Target("tarantool", port)
            threads = int(request.param.removeprefix("threads"))
            server = make_server(app=CRUD_APP, iproto_threads=threads)
            return Target("styx", server.port, server)

        yield start


@pytest.fixture
def target(spawn: Callable[[], Target]) -> Target:
    return spawn()


# -- tarantool-python ----------------------------------------------------------------


@pytest.fixture
def py_connect(target: Target) -> Iterator[Callable[..., tarantool.Connection]]:
    conns: list[tarantool.Connection] = []

    def make(user: str | None = "crud", password: str | None = "pw") -> tarantool.Connection:
        conn = tarantool.Connection("127.0.0.1", target.port, user=user, password=password,
                                    connection_timeout=10)
        conns.append(conn)
        return conn

    yield make
    for c in conns:
        c.close()


def test_python_select_by_names(target, py_connect):
    conn = py_connect()
    assert conn.insert("tester", [1, "alice", 10]).data == [[1, "alice", 10]]
    assert conn.insert("tester", (2, "bob", 20)).data == [[2, "bob", 20]]
    assert conn.insert("tester", [3, "bob", {"k": [1, 2]}]).data == [[3, "bob", {"k": [1, 2]}]]
    assert conn.insert("tester", [4, "carol", None]).data == [[4, "carol", None]]

    assert conn.select("tester").data == [[1, "alice", 10], [2, "bob", 20],
                                          [3, "bob", {"k": [1, 2]}], [4, "carol", None]]
    assert conn.select("tester", 2).data == [[2, "bob", 20]]
    assert conn.select("tester", [99]).data == []
    # The secondary index, by name and by number: non-unique, ordered by id.
    assert conn.select("tester", "bob", index="name").data == [[2, "bob", 20],
                                                               [3, "bob", {"k": [1, 2]}]]
    assert conn.select("tester", ["bob"], index=1).data == conn.select(
        "tester", "bob", index="name").data
    # Iterators, limits, offsets.
    assert conn.select("tester", 2, iterator=ITERATOR_GE).data == [
        [2, "bob", 20], [3, "bob", {"k": [1, 2]}], [4, "carol", None]]
    assert conn.select("tester", 2, iterator=ITERATOR_GT, limit=1).data == [
        [3, "bob", {"k": [1, 2]}]]
    assert conn.select("tester", 3, iterator=ITERATOR_LT).data == [[2, "bob", 20],
                                                                 [1, "alice", 10]]
    assert conn.select("tester", [], offset=1, limit=2).data == [[2, "bob", 20],
                                                                 [3, "bob", {"k": [1, 2]}]]
    assert [t[0] for t in conn.select("tester", "bob", index="name",
                                      iterator=ITERATOR_REQ).data] == [3, 2]
    assert [t[1] for t in conn.select("tester", "bob", index="name",
                                      iterator=ITERATOR_LE).data] == ["bob", "bob", "alice"]
    # The HASH space, by name.
    assert conn.insert("hashy", ["k1", 1]).data == [["k1", 1]]
    assert conn.insert("hashy", ["k2", [1, 2]]).data == [["k2", [1, 2]]]
    assert conn.select("hashy", "k2").data == [["k2", [1, 2]]]
    assert sorted(conn.select("hashy").data) == [["k1", 1], ["k2", [1, 2]]]


def test_python_dml_ops_by_number_and_name(target, py_connect):
    conn = py_connect()
    conn.insert("tester", [1, "alice", 10])
    conn.insert("tester", [2, "bob", 20])
    # tarantool-python sends no INDEX_BASE: field numbers are 0-based.
    assert conn.update("tester", 1, [("=", 2, 11)]).data == [[1, "alice", 11]]
    assert conn.update("tester", 1, [("+", "value", 5)]).data == [[1, "alice", 16]]
    assert conn.update("tester", 2, [("=", "name", "bobby"), ("-", 2, 1)]).data == \
        [[2, "bobby", 19]]
    assert conn.update("tester", 99, [("=", 2, 0)]).data == []
    # The renamed tuple moved in the secondary index.
    assert conn.select("tester", "bob", index="name").data == []
    assert conn.select("tester", "bobby", index="name").data == [[2, "bobby", 19]]

    assert conn.upsert("tester", [5, "eve", 1], [("+", 2, 10)]).data == []
    assert conn.select("tester", 5).data == [[5, "eve", 1]]  # inserted as given
    assert conn.upsert("tester", [5, "eve", 1], [("+", 2, 10)]).data == []
    assert conn.upsert("tester", [5, "eve", 1], [("+", "value", 100)]).data == []
    assert conn.select("tester", 5).data == [[5, "eve", 111]]

    assert conn.replace("tester", [5, "zed", None]).data == [[5, "zed", None]]
    assert conn.replace("tester", [6, "fay", 6]).data == [[6, "fay", 6]]
    assert conn.delete("tester", 5).data == [[5, "zed", None]]
    assert conn.delete("tester", 5).data == []
    assert conn.update("hashy", "none", [("=", 1, 0)]).data == []
    conn.insert("hashy", ["k", 1])
    assert conn.update("hashy", "k", [("+", "value", 1)]).data == [["k", 2]]
    assert conn.delete("hashy", "k").data == [["k", 2]]
    assert conn.select("tester").data == [[1, "alice", 16], [2, "bobby", 19], [6, "fay", 6]]
    assert conn.select("hashy").data == []


def test_python_call(target, py_connect):
    conn = py_connect()
    for i, name in enumerate(["alice", "bob", "bob"], 1):
        conn.insert("tester", [i, name, i * 10])
    assert conn.call("add", 2, 3).data == [5]
    assert conn.call("whoami").data == ["crud"]
    assert conn.call("tester_names").data == [["alice", "bob", "bob"]]
    assert conn.call("box.space.tester:count").data == [3]
    assert conn.call("box.space.tester:select", [2]).data == [[[2, "bob", 20]]]
    assert conn.call("box.space.tester:get", [3]).data == [[3, "bob", 30]]
    assert conn.call("box.space.tester.index.name:select", ["bob"]).data == [
        [[2, "bob", 20], [3, "bob", 30]]]
    assert conn.call("box.space.tester:insert", [[4, "dan", 40]]).data == [[4, "dan", 40]]
    assert conn.call("box.space.tester:delete", [4]).data == [[4, "dan", 40]]
    info = conn.call("box.info").data[0]
    assert info["ro"] is False and info["status"] == "running"


def test_python_errors(target, py_connect):
    conn = py_connect()
    conn.insert("tester", [1, "alice", 10])

    def error(fn: Callable[[], Any]) -> tuple[int, str, str | None]:
        with pytest.raises(DatabaseError) as ei:
            fn()
        e = ei.value
        return e.code, e.message, e.extra_info.type if e.extra_info else None

    assert error(lambda: conn.insert("tester", [1, "again", 0])) == (3, DUP_PRIMARY, "ClientError")
    conn.insert("hashy", ["k", 0])
    assert error(lambda: conn.insert("hashy", ["k", 1])) == (
        3, "Duplicate key exists in unique index 'pk' in space 'hashy'", "ClientError")
    assert error(lambda: conn.insert("tester", ["one", "x", 0])) == (
        23, "Tuple field 1 type does not match one required by operation: expected unsigned",
        "ClientError")
    assert error(lambda: conn.insert("tester", [2, 5, 0])) == (
        23, "Tuple field 2 type does not match one required by operation: expected string",
        "ClientError")
    assert error(lambda: conn.insert("tester", [2])) == (
        39, "Tuple field 2 required by space format is missing", "ClientError")
    assert error(lambda: conn.update("tester", 1, [("=", "id", 100)])) == (
        94, UPDATE_PK, "ClientError")
    assert error(lambda: conn.update("tester", 1, [("+", "name", 1)])) == (
        26, "Argument type in operation '+' on field 2 does not match field type: "
            "expected a number", "ClientError")
    assert error(lambda: conn.delete("tester", "alice", index="name")) == (
        41, "Get() doesn't support partial keys and non-unique indexes", "ClientError")
    # A numeric space id goes to the server as is.
    assert error(lambda: conn.select(9999)) == (36, "Space '9999' does not exist", "ClientError")
    assert error(lambda: conn.insert(9999, [1])) == (36, "Space '9999' does not exist",
                                                     "ClientError")
    assert error(lambda: conn.select("tester", 1, index=7)) == (
        35, "No index #7 is defined in space 'tester'", "ClientError")

    # A user without grants: 42, AccessDeniedError.
    nog = py_connect("nogrants", "pw")
    assert error(lambda: nog.select(TESTER)) == (
        42, "Read access to space 'tester' is denied for user 'nogrants'", "AccessDeniedError")
    assert error(lambda: nog.insert(TESTER, [9, "x", 0])) == (
        42, "Write access to space 'tester' is denied for user 'nogrants'", "AccessDeniedError")
    assert error(lambda: nog.call("add", 1, 2)) == (
        42, "Execute access to function 'add' is denied for user 'nogrants'",
        "AccessDeniedError")
    # Nothing changed.
    assert conn.select("tester").data == [[1, "alice", 10]]
    assert conn.select("hashy").data == [["k", 0]]
    assert conn.ping(notime=True) == "Success"


def test_python_schema_hides_unreadable_spaces(target, py_connect):
    """The schema a user fetches (_vspace) lists only spaces it may access,
    so tarantool-python cannot even resolve the name for `nogrants`."""
    nog = py_connect("nogrants", "pw")
    with pytest.raises(SchemaError) as ei:
        nog.select("tester")
    assert ei.value.message == "There's no space with name 'tester'"
    crud = py_connect()
    assert crud.select("tester").data == []


def test_python_connection_pool(spawn):
    a, b = spawn(), spawn()
    pool = tarantool.ConnectionPool(
        [{"host": "127.0.0.1", "port": t.port} for t in (a, b)], user="crud", password="pw",
        connection_timeout=10)
    try:
        # The pool asked each server for box.info: both are healthy and RW.
        assert pool.ping(notime=True, mode=Mode.ANY) == "Success"
        assert pool.call("add", [1, 2], mode=Mode.ANY).data == [3]
        assert pool.call("add", 3, 4, mode=Mode.RW).data == [7]
        assert pool.call("whoami", mode=Mode.PREFER_RO).data == ["crud"]
        with pytest.raises(PoolTopologyError) as ei:
            pool.call("add", 1, 2, mode=Mode.RO)
        assert str(ei.value) == "Can't find healthy ro instance in pool"
        rows = [[i, f"n{i}", i] for i in range(1, 5)]
        for row in rows:
            assert pool.insert("tester", row, mode=Mode.RW).data == [row]
        with pytest.raises(DatabaseError) as err:
            pool.insert("tester", ["one", "n1", 1])
        assert (err.value.code, err.value.message) == (
            23, "Tuple field 1 type does not match one required by operation: expected unsigned")
        seen = sorted(pool.select("tester", [], mode=Mode.ANY).data
                      + pool.select("tester", [], mode=Mode.ANY).data)
    finally:
        pool.close()
    # Round robin spread the inserts over both servers, each row on one.
    per_server = []
    for t in (a, b):
        c = tarantool.Connection("127.0.0.1", t.port, user="crud", password="pw")
        per_server.append(c.select("tester").data)
        c.close()
    ids = [[r[0] for r in data] for data in per_server]
    assert all(ids), ids
    assert sorted(ids[0] + ids[1]) == [1, 2, 3, 4]
    assert seen == sorted(per_server[0] + per_server[1])


# -- asynctnt ----------------------------------------------------------------------


def arun(target: Target, body: Callable[..., Awaitable[Any]], **kw: Any) -> Any:
    """Connect (defaults: schema fetch on), run `body(conn)`, disconnect."""

    async def main() -> Any:
        conn = asynctnt.Connection(host="127.0.0.1", port=target.port, connect_timeout=10, **kw)
        await conn.connect()
        try:
            return await asyncio.wait_for(body(conn), 30)
        finally:
            await conn.disconnect()

    return asyncio.run(main())


def rows(resp: Any) -> list[list[Any]]:
    return [list(t) for t in resp.body]


def test_asynctnt_schema_and_dml(target):
    async def body(conn):
        assert conn.fetch_schema is True
        if target.server is not None:
            assert conn.schema_id == target.schema_version()
        tester = conn.schema.spaces["tester"]
        assert tester.sid == TESTER and conn.schema.spaces[TESTER].name == "tester"
        assert (tester.indexes["primary"].iid, tester.indexes["name"].iid) == (0, 1)
        assert conn.schema.spaces["hashy"].indexes["pk"].iid == 0

        assert rows(await conn.insert("tester", [1, "alice", 10])) == [[1, "alice", 10]]
        # A dict is laid out by the space format the schema brought.
        assert rows(await conn.insert("tester", {"id": 2, "name": "bob", "value": 20})) == \
            [[2, "bob", 20]]
        assert rows(await conn.insert("tester", [3, "bob", [1]])) == [[3, "bob", [1]]]
        assert rows(await conn.replace("tester", [4, "dan", "d"])) == [[4, "dan", "d"]]
        # Tuples come back with field names.
        t = (await conn.select("tester", [1])).body[0]
        assert (t["id"], t["name"], t["value"]) == (1, "alice", 10)

        assert rows(await conn.update("tester", [1], [["=", 2, 11]])) == [[1, "alice", 11]]
        assert rows(await conn.update("tester", [1], [["+", "value", 5]])) == [[1, "alice", 16]]
        assert rows(await conn.update("tester", [3], [["=", "value", "z"]], index="primary")) == \
            [[3, "bob", "z"]]
        assert rows(await conn.update("tester", [99], [["=", 2, 0]])) == []
        assert (await conn.upsert("tester", [5, "eve", 1], [["+", "value", 1]])).body == []
        assert (await conn.upsert("tester", [5, "eve", 1], [["+", 2, 10]])).body == []
        assert rows(await conn.select("tester", [5])) == [[5, "eve", 11]]
        assert rows(await conn.delete("tester", [4])) == [[4, "dan", "d"]]
        assert rows(await conn.delete("tester", [4])) == []
        assert rows(await conn.insert("hashy", ["a", 1])) == [["a", 1]]
        assert rows(await conn.update("hashy", ["a"], [["+", "value", 1]])) == [["a", 2]]
        assert rows(await conn.select("hashy", ["a"])) == [["a", 2]]

        with pytest.raises(TarantoolDatabaseError) as ei:
            await conn.insert("tester", [1, "x", 0])
        assert (ei.value.code, ei.value.message) == (3, DUP_PRIMARY)
        with pytest.raises(TarantoolDatabaseError) as ei:
            await conn.update("tester", [1], [["=", "id", 7]])
        assert (ei.value.code, ei.value.message) == (94, UPDATE_PK)
        with pytest.raises(TarantoolDatabaseError) as ei:
            await conn.select(9999)
        assert (ei.value.code, ei.value.message) == (36, "Space '9999' does not exist")
        with pytest.raises(TarantoolSchemaError):
            await conn.select("nosuch")  # unknown to the fetched schema: never sent

        assert (await conn.call("add", [1, 2])).body == [3]
        assert (await conn.call("box.space.tester:count")).body == [4]
        assert rows(await conn.select("tester")) == [[1, "alice", 16], [2, "bob", 20],
                                                     [3, "bob", "z"], [5, "eve", 11]]

    arun(target, body, username="crud", password="pw")


def test_asynctnt_select_iterators(target):
    async def body(conn):
        for row in ([1, "alice", 1], [2, "bob", 2], [3, "bob", 3], [4, "carol", 4]):
            await conn.insert("tester", row)

        async def ids(*args: Any, **kw: Any) -> list[int]:
            return [t[0] for t in (await conn.select("tester", *args, **kw)).body]

        assert await ids() == [1, 2, 3, 4]
        assert await ids([2], iterator="GE") == [2, 3, 4]
        assert await ids([2], iterator=asynctnt.Iterator.GT) == [3, 4]
        assert await ids([3], iterator="LT", limit=1) == [2]
        assert await ids([3], iterator="LE") == [3, 2, 1]
        assert await ids([], iterator="ALL", offset=1, limit=2) == [2, 3]
        assert await ids([2], iterator="EQ") == [2]
        assert await ids(["bob"], index="name") == [2, 3]
        assert await ids(["bob"], index="name", iterator="REQ") == [3, 2]
        assert await ids(["bob"], index="name", iterator="LE") == [3, 2, 1]
        assert await ids(["bob"], index="name", iterator="GT") == [4]
        assert await ids(["b"], index="name", iterator="GE", limit=2) == [2, 3]
        assert await ids([0], iterator="LT") == []

    arun(target, body, username="crud", password="pw")


HASH_KEYS = ["a", "b", "c", "d"]


def hash_run(target: Target, body: Callable[..., Awaitable[Any]]) -> None:
    """`hashy` filled with HASH_KEYS, then `body(conn)`."""

    async def filled(conn):
        for k in HASH_KEYS:
            await conn.insert("hashy", [k, 1])
        await body(conn)

    arun(target, filled)


async def hash_keys(conn: Any, key: list[Any], iterator: str, **kw: Any) -> list[str]:
    return [t[0] for t in (await conn.select("hashy", key, iterator=iterator, **kw)).body]


def test_asynctnt_hash_eq_and_all(target):
    async def body(conn):
        assert rows(await conn.select("hashy", ["b"])) == [["b", 1]]
        assert rows(await conn.select("hashy", ["zz"])) == []
        assert sorted(await hash_keys(conn, [], "ALL")) == HASH_KEYS
        assert len(await hash_keys(conn, [], "ALL", limit=3)) == 3
        # LT/LE/REQ are not hash orders.
        for it in ("LT", "LE", "REQ"):
            with pytest.raises(TarantoolDatabaseError) as ei:
                await conn.select("hashy", ["b"], iterator=it)
            assert (ei.value.code, ei.value.message) == (
                112, "Index 'pk' (HASH) of space 'hashy' (memtx) does not support requested "
                     "iterator type")

    hash_run(target, body)


def test_asynctnt_hash_all_ignores_key(target):
    async def body(conn):
        assert sorted(await hash_keys(conn, ["b"], "ALL")) == HASH_KEYS

    hash_run(target, body)


def test_asynctnt_hash_gt_pages_through(target):
    """GT on a HASH index: the tuples after the key's one, in the index's own
    order; with no key, from the start. Paging one at a time sees each once."""

    async def body(conn):
        assert sorted(await hash_keys(conn, [], "GT")) == HASH_KEYS
        seen: list[str] = []
        last: list[str] = []
        for _ in range(10):
            page = await hash_keys(conn, last, "GT", limit=1)
            if not page:
                break
            seen.append(page[0])
            last = [page[0]]
        assert sorted(seen) == HASH_KEYS and len(seen) == 4

    hash_run(target, body)


def test_asynctnt_hash_needs_full_key(target):
    """EQ and GE on a HASH index with an empty key: error 136, not a full scan."""

    async def body(conn):
        for it in ("EQ", "GE"):
            with pytest.raises(TarantoolDatabaseError) as ei:
                await conn.select("hashy", [], iterator=it)
            assert (ei.value.code, ei.value.message) == (136, HASH_NO_PARTIAL), it

    hash_run(target, body)


def test_asynctnt_sees_runtime_ddl(target):
    """A guest connection opened before another session's DDL resolves the new
    space by name once it has noticed the new schema_version."""

    async def main() -> None:
        guest = asynctnt.Connection(host="127.0.0.1", port=target.port, connect_timeout=10)
        boss = asynctnt.Connection(host="127.0.0.1", port=target.port, username="boss",
                                   password="pw", connect_timeout=10)
        await guest.connect()
        await boss.connect()
        try:
            v0 = guest.schema_id
            assert "late" not in guest.schema.spaces
            with pytest.raises(TarantoolSchemaError):
                await guest.select("late")
            with contextlib.suppress(TarantoolDatabaseError):
                # Tarantool returns a space object here, which CALL cannot encode
                # (error 32); the space is created all the same.
                await boss.call("box.schema.space.create", ["late"])
            idx = (await boss.call("box.space.late:create_index", ["pk"])).body[0]
            assert (idx["name"], idx["id"], idx["type"]) == ("pk", 0, "TREE")
            assert (await guest.call("add", [1, 2])).body == [3]
            for _ in range(500):
                if "late" in guest.schema.spaces:
                    break
                await asyncio.sleep(0.01)
            assert guest.schema_id > v0
            if target.server is not None:
                assert guest.schema_id == target.schema_version()
            assert rows(await guest.insert("late", [1, "x"])) == [[1, "x"]]
            assert rows(await guest.select("late", [1], index="pk")) == [[1, "x"]]
        finally:
            await guest.disconnect()
            await boss.disconnect()

    asyncio.run(asyncio.wait_for(main(), 30))


# -- net.box -----------------------------------------------------------------------


def netbox(tarantool_bin: str, scenario: str, port: int) -> dict[str, Any]:
    proc = subprocess.run([tarantool_bin, str(NETBOX_SCRIPT), scenario, str(port)],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, f"net.box script failed:\n{proc.stdout}\n{proc.stderr}"
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert len(lines) == 1, proc.stdout
    return json.loads(lines[0])


def ok(value: Any = None, n: int = 1) -> dict[str, Any]:
    return {"ok": True, "n": n, "value": value} if n else {"ok": True, "n": 0}


def test_netbox_crud(target, tarantool_bin):
    r = netbox(tarantool_bin, "crud", target.port)
    assert r["state"] == "active"
    assert r["space_id"] == TESTER
    assert r["index_names"] == ["primary", "name"] and r["index_by_name"] == 1
    assert r["empty"] == []
    assert r["ins1"] == ok([1, "alice", 10])
    assert r["ins3"] == ok([3, "bob", {"k": "v"}])
    assert r["dup"] == {"ok": False, "code": 3, "type": "ClientError", "message": DUP_PRIMARY}
    assert r["wrong_type"] == {
        "ok": False, "code": 23, "type": "ClientError",
        "message": "Tuple field 1 type does not match one required by operation: expected unsigned"}
    assert r["replace"] == ok([4, "dave", 41])
    # INDEX_BASE = 1: field 3 is `value`.
    assert r["update_no"] == ok([1, "alice", 15])
    assert r["update_name"] == ok([1, "alicia", 14])
    assert r["update_missing"] == ok(n=0)
    assert r["update_pk"] == {"ok": False, "code": 94, "type": "ClientError", "message": UPDATE_PK}
    assert r["upsert_new"] == r["upsert_old"] == r["upsert_name"] == ok(n=0)
    assert r["get5"] == [5, "eve", 111]
    assert r["get_none"] is True
    assert r["delete"] == ok([4, "dave", 41])
    assert r["delete_none"] == ok(n=0)
    all_rows = [[1, "alicia", 14], [2, "bob", 20], [3, "bob", {"k": "v"}], [5, "eve", 111]]
    assert r["all"] == all_rows
    assert r["by_name"] == [[2, "bob", 20], [3, "bob", {"k": "v"}]]
    assert r["by_name_none"] == []
    assert r["by_name_all"] == all_rows  # alicia < bob < eve
    assert r["ge_2"] == all_rows[1:]
    assert r["ge_2_limit"] == all_rows[1:3]
    assert r["lt_5"] == all_rows[2::-1]
    assert r["lt_5_limit"] == [all_rows[2]]
    assert r["gt_offset"] == [all_rows[2]]
    assert r["name_lt"] == [all_rows[0]]
    assert r["name_le"] == [all_rows[2], all_rows[1]]
    assert r["pages"] == [[1, 2], [3, 5]]
    assert r["names_desc"] == [["eve", 5], ["bob", 3], ["alicia", 1]]
    assert r["count_call"] == [4]
    assert r["count_key"] == [3]
    assert r["count_index"] == 2
    assert r["count_name"] == 2
    assert r["names_call"] == [["alicia", "bob", "bob", "eve"]]
    assert r["add"] == [5]
    assert r["index_select_call"] == [[[5, "eve", 111]]]
    assert r["hash_insert"] == ok(["k1", 1])
    assert r["hash_get"] == ["k1", 1]
    assert r["hash_update"] == ok(["k1", 2])
    assert r["hash_delete"] == ok(["k1", 2])
    assert r["hash_empty"] == []


def test_netbox_runtime_ddl(target, tarantool_bin):
    r = netbox(tarantool_bin, "ddl", target.port)
    assert r["before"] is True
    assert r["index"]["ok"] is True
    assert r["index"]["value"] == {
        "id": 0, "name": "pk", "type": "TREE", "unique": True, "space_id": 514,
        "parts": [{"fieldno": 1, "type": "unsigned", "is_nullable": False}]}
    # The guest connection reloaded its schema after seeing the new version.
    assert r["after"] is True
    assert r["version_after"] > r["version_before"]
    if target.server is not None:
        assert r["version_after"] == target.schema_version()
    assert (r["late_id"], r["late_index"]) == (514, 0)
    assert r["insert"] == ok([1, "x"])
    assert r["select"] == [[1, "x"]]
