"""asynctnt (PyPI `asynctnt`) against Styx, in every iproto thread mode.

asynctnt multiplexes requests on one connection (a sync counter and a dict of
waiters). The greeting says 3.0.0 (2.10+), so it sends IPROTO_ID asking for streams,
transactions and error_extension, and any ID error would fail the connection.
With `fetch_schema` (the default) it pipelines SELECTs of _vspace and _vindex.
Note that `auto_refetch_schema=True` (the default) forces `fetch_schema` on,
so a schema-less connection needs both off."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asynctnt
import pytest
from asynctnt.exceptions import TarantoolDatabaseError

AUTH_FAILED = "User not found or supplied credentials are invalid"
NO_SCHEMA = {"fetch_schema": False, "auto_refetch_schema": False}


def run(server, body: Callable[..., Awaitable[Any]], **kw: Any) -> Any:
    """Connect with `kw`, run `body(conn)`, always disconnect."""

    async def main() -> Any:
        conn = asynctnt.Connection(host="127.0.0.1", port=server.port,
                                   connect_timeout=10, **kw)
        await conn.connect()
        try:
            return await asyncio.wait_for(body(conn), 30)
        finally:
            await conn.disconnect()

    return asyncio.run(main())


def test_connect_id_features_without_schema(server):
    async def body(conn):
        assert conn.version == (3, 0, 0)
        f = conn.features
        # What the server advertises: streams, transactions, error extension,
        # watchers, pagination, names, watch_once.
        assert f.error_extension is True
        assert f.pagination is True and f.space_and_index_names is True
        assert f.streams is True and f.transactions is True
        assert f.watchers is True and f.watch_once is True
        assert f.dml_tuple_extension is False
        assert f.call_ret_tuple_extension is False and f.call_arg_tuple_extension is False
        assert conn.fetch_schema is False
        assert len(conn.schema.spaces) == 0
        ping = await conn.ping()
        assert ping.code == 0 and ping.body is None
        user, sid = (await conn.call("whoami")).body
        assert user == "guest" and isinstance(sid, int)

    run(server, body, **NO_SCHEMA)


def test_connect_default_fetches_schema(server):
    async def body(conn):
        assert conn.fetch_schema is True
        assert conn.schema_id == server.tx.schema.version
        spaces = conn.schema.spaces
        assert spaces[281].name == "_vspace" and spaces["_vspace"].sid == 281
        assert spaces["_vindex"].sid == 289
        assert spaces["_vcollation"].sid == 277
        idx = spaces["_vspace"].indexes
        assert (idx["primary"].iid, idx["owner"].iid, idx["name"].iid) == (0, 1, 2)
        # Names resolve through the fetched schema.
        row = (await conn.select("_vspace", [281])).body[0]
        assert row["name"] == "_vspace" and row["engine"] == "sysview"
        row = (await conn.select("_vspace", ["_vindex"], index="name")).body[0]
        assert row["id"] == 289
        assert (await conn.call("echo", [1, "a"])).body == [1, "a"]
        assert conn.features.error_extension is True

    run(server, body)


@pytest.mark.parametrize("kw", [NO_SCHEMA, {}], ids=["no_schema", "schema"])
def test_auth_whoami(server, kw):
    async def body(conn):
        user, sid = (await conn.call("whoami")).body
        assert user == "test"
        return sid

    sid = run(server, body, username="test", password="secret", **kw)

    async def guest(conn):
        user, gsid = (await conn.call("whoami")).body
        assert user == "guest" and gsid != sid

    run(server, guest, **kw)


def test_call_return_shapes(server):
    async def body(conn):
        assert (await conn.call("echo", [1, "a"])).body == [1, "a"]
        assert (await conn.call("echo", [[1, 2], {"k": "v"}, None, 2.5, True])).body == \
            [[1, 2], {"k": "v"}, None, 2.5, True]
        assert (await conn.call("echo")).body == []
        assert (await conn.call("one", [5])).body == [5]
        assert (await conn.call("one", [[1, 2]])).body == [[1, 2]]
        assert (await conn.call("nothing")).body == []
        assert (await conn.call("sum", [2, 3])).body == [5]
        resp = await conn.call("echo", ["x", "y", "z"])
        assert resp.code == 0 and resp.rowcount == 3

    run(server, body, **NO_SCHEMA)


def test_pushes(server):
    async def body(conn):
        fut = conn.call("progress", [3], push_subscribe=True)
        seen = [p async for p in asynctnt.PushIterator(fut)]
        assert seen == [[{"step": 0}], [{"step": 1}], [{"step": 2}]]
        assert (await fut).body == ["done"]
        # An async procedure interleaving pushes and sleeps.
        fut = conn.call("push_then_sleep", [3, 0.01], push_subscribe=True)
        seen = [p async for p in asynctnt.PushIterator(fut)]
        assert seen == [[0], [1], [2]]
        assert (await fut).body == [3]
        # Without push_subscribe the pushes are dropped; the reply arrives.
        assert (await conn.call("progress", [2])).body == ["done"]

    run(server, body, **NO_SCHEMA)


def test_async_procedure(server):
    async def body(conn):
        t0 = time.monotonic()
        assert (await conn.call("sleep", [0.1, "woke"])).body == ["woke"]
        assert time.monotonic() - t0 >= 0.09
        assert (await conn.call("sleep", [0.01])).body == []

    run(server, body, **NO_SCHEMA)


def test_errors(server):
    async def body(conn):
        with pytest.raises(TarantoolDatabaseError) as ei:
            await conn.call("fail", ["boom"])
        e = ei.value
        assert (e.code, e.message) == (32, "ValueError: boom")
        frame = e.error.trace[0]  # IPROTO_ERROR, decoded (error_extension)
        assert (frame.error_type, frame.code, frame.message) == \
            ("CustomError", 32, "ValueError: boom")

        with pytest.raises(TarantoolDatabaseError) as ei:
            await conn.call("fail_box", [1000, "msg"])
        assert (ei.value.code, ei.value.message) == (1000, "msg")
        assert ei.value.error.trace[0].error_type == "ClientError"

        with pytest.raises(TarantoolDatabaseError) as ei:
            await conn.call("x")
        assert (ei.value.code, ei.value.message) == (33, "Procedure 'x' is not defined")

        assert (await conn.ping()).code == 0
        assert (await conn.call("echo", [1])).body == [1]

    run(server, body, **NO_SCHEMA)


@pytest.mark.parametrize("user,password", [("test", "bad"), ("nobody", "x")],
                         ids=["wrong_password", "unknown_user"])
def test_auth_failure(server, user, password):
    async def main():
        conn = asynctnt.Connection(host="127.0.0.1", port=server.port, username=user,
                                   password=password, connect_timeout=10, **NO_SCHEMA)
        try:
            with pytest.raises(TarantoolDatabaseError) as ei:
                await conn.connect()
        finally:
            await conn.disconnect()
        assert ei.value.code == 47
        assert ei.value.message == AUTH_FAILED
        assert not conn.is_connected

    asyncio.run(main())


@pytest.mark.parametrize("kw", [NO_SCHEMA, {}], ids=["no_schema", "schema"])
def test_pipelining_many_calls(server, kw):
    async def body(conn):
        args = [[i, f"v{i}", [i] * (i % 4), {"i": i}] for i in range(200)]
        responses = await asyncio.gather(*(conn.call("echo", a) for a in args))
        assert [r.body for r in responses] == args
        assert len({r.sync for r in responses}) == 200

    run(server, body, **kw)


def test_concurrent_sleeps_overlap(server):
    async def body(conn):
        delays = [0.1, 0.2, 0.3, 0.4, 0.5]  # sum 1.5 s, max 0.5 s
        t0 = time.monotonic()
        rs = await asyncio.gather(*(conn.call("sleep", [d, i]) for i, d in enumerate(delays)))
        elapsed = time.monotonic() - t0
        assert [r.body for r in rs] == [[i] for i in range(len(delays))]
        assert 0.49 <= elapsed < 1.4  # well under the 1.5 s a serial server needs
        # All five were in flight at once on the server.
        await conn.call("reset_counted")
        rs = await asyncio.gather(*(conn.call("slow_counted", [0.2]) for _ in range(5)))
        assert max(r.body[0] for r in rs) == 5

    run(server, body, **NO_SCHEMA)
