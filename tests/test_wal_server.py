"""The WAL in a running server: what reaches the xlog, when replies leave,
what a failed write does, the directory lock (a kill -9: test_recovery.py).

Servers run with `wal_mode write` in a temporary directory; the xlogs are
read back with every checksum checked (styx/xlog).
"""

from __future__ import annotations

import asyncio
import errno
import threading
import time
from pathlib import Path
from typing import Any

import asynctnt
import pytest
import tarantool

from styx import Server
from styx.server import ConfigError
from styx.xlog import XlogReader, XlogWriter
from tests.walkit import WAL_APP

APP = WAL_APP
REPLACE, UPDATE, DELETE, UPSERT = 3, 4, 5, 9
KV = 512


def rows(wal_dir: Path) -> list[Any]:
    out = []
    for path in sorted(wal_dir.glob("*.xlog")):
        with XlogReader.open(str(path)) as r:
            out += list(r.rows())
    return out


def data_rows(wal_dir: Path, space: int = KV) -> list[tuple[Any, ...]]:
    """(type, what it carries): REPLACE its tuple, DELETE its key, UPDATE its
    key and ops, UPSERT its tuple and ops."""
    out: list[tuple[Any, ...]] = []
    for r in rows(wal_dir):
        if not r.body or r.body.get(0x10) != space:
            continue
        if r.type == UPDATE:
            out.append((UPDATE, r.body[0x20], r.body[0x21]))
        elif r.type == UPSERT:
            out.append((UPSERT, r.body[0x21], r.body[0x28]))
        else:
            out.append((r.type, r.body[0x21] if r.type == REPLACE else r.body[0x20]))
    return out


@pytest.fixture(params=[0, 2], ids=lambda n: f"threads{n}")
def wal_server(request: pytest.FixtureRequest, make_server: Any, tmp_path: Path) -> Server:
    return make_server(app=APP, wal_mode="write", work_dir=str(tmp_path), iproto_threads=request.param)


def test_every_change_reaches_the_xlog(wal_server: Server, tmp_path: Path) -> None:
    c = tarantool.Connection("127.0.0.1", wal_server.port)
    c.replace("kv", (1, "a"))
    c.insert("kv", (2, "b"))
    c.update("kv", 1, [("=", 1, "A")])
    c.upsert("kv", (3, "c"), [("=", 1, "C")])
    c.upsert("kv", (3, "c"), [("=", 1, "C2")])
    c.delete("kv", 2)
    c.update("kv", 99, [("=", 1, "nothing")])  # no tuple: nothing changes, nothing is logged
    c.call("put", 4, "d")
    c.call("put_two", 5, 6)
    c.replace("tmp", (1, "temporary"))  # a temporary space is not logged
    c.call("box.space.kv:truncate")
    c.close()
    wal_server.stop()
    # UPDATE and UPSERT as the requests they were (as Tarantool logs them); a
    # procedure's writes as what they changed.
    assert data_rows(tmp_path) == [
        (REPLACE, [1, "a"]), (REPLACE, [2, "b"]), (UPDATE, [1], [["=", 1, "A"]]),
        (UPSERT, [3, "c"], [["=", 1, "C"]]), (UPSERT, [3, "c"], [["=", 1, "C2"]]),
        (DELETE, [2]), (REPLACE, [4, "d"]), (REPLACE, [5, "txn"]), (REPLACE, [6, "txn"])]
    txn = [r for r in rows(tmp_path) if r.multi and r.body.get(0x10) == KV]
    assert [(r.tsn == txn[0].lsn, r.is_commit) for r in txn] == [(True, False), (True, True)]
    assert data_rows(tmp_path, 513) == []
    assert data_rows(tmp_path, 330) == [(REPLACE, [KV, 1])]  # the truncate, as Tarantool's _truncate row
    for path in tmp_path.glob("*.xlog"):
        with XlogReader.open(str(path)) as r:
            list(r.rows())
            assert r.eof  # closed at shutdown


def test_a_stream_transaction_is_one_wal_transaction(wal_server: Server, tmp_path: Path) -> None:
    async def go() -> None:
        conn = await asynctnt.connect(host="127.0.0.1", port=wal_server.port)
        stream = conn.stream()
        await stream.begin()
        await stream.replace("kv", [10, "x"])
        await stream.replace("kv", [11, "y"])
        await stream.commit()
        stream = conn.stream()
        await stream.begin()
        await stream.replace("kv", [12, "rolled back"])
        await stream.rollback()
        await conn.disconnect()

    asyncio.run(go())
    wal_server.stop()
    logged = [r for r in rows(tmp_path) if r.body and r.body.get(0x10) == KV]
    assert [(r.body[0x21], r.multi, r.is_commit) for r in logged] == [([10, "x"], True, False),
                                                                      ([11, "y"], True, True)]


def test_replies_wait_for_the_disk_and_reads_do_not(make_server: Any, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    real = XlogWriter.write_block
    gate = threading.Event()

    def slow_disk(self: XlogWriter, payload: bytes, compress: bool | None = None) -> int:
        gate.wait(5)
        return real(self, payload, compress)

    server = make_server(app=APP, wal_mode="write", work_dir=str(tmp_path))
    gate.set()
    monkeypatch.setattr(XlogWriter, "write_block", slow_disk)

    async def go() -> None:
        writer = await asynctnt.connect(host="127.0.0.1", port=server.port)
        reader = await asynctnt.connect(host="127.0.0.1", port=server.port)
        gate.clear()
        write = asyncio.ensure_future(writer.replace("kv", [1, "slow"]))
        call = asyncio.ensure_future(writer.call("put", [2, "slow too"]))
        await asyncio.sleep(0.3)
        assert not write.done() and not call.done()  # the disk holds them
        assert (await reader.select("kv", [1]))[0][1] == "slow"  # reads go on (2.6 shows it before the WAL)
        await reader.ping()
        gate.set()
        assert (await write)[0][1] == "slow" and (await call)[0][1] == "slow too"
        await writer.disconnect()
        await reader.disconnect()

    asyncio.run(go())


def test_a_failed_write_is_error_40_and_leaves_memory_as_it_was(make_server: Any, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    server = make_server(app=APP, wal_mode="write", work_dir=str(tmp_path))
    c = tarantool.Connection("127.0.0.1", server.port)
    c.replace("kv", (1, "kept"))
    real = XlogWriter.write_block

    def disk_full(self: XlogWriter, payload: bytes, compress: bool | None = None) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(XlogWriter, "write_block", disk_full)
    for write in (lambda: c.replace("kv", (1, "lost")), lambda: c.insert("kv", (2, "lost")),
                  lambda: c.delete("kv", 1), lambda: c.call("put", 3, "lost"), lambda: c.call("put_two", 4, 5)):
        with pytest.raises(tarantool.error.DatabaseError) as e:
            write()
        assert e.value.args[0] == 40 and "Failed to write to disk" in e.value.args[1]
    assert c.select("kv", []).data == [[1, "kept"]]  # every change was undone
    monkeypatch.setattr(XlogWriter, "write_block", real)
    c.replace("kv", (6, "after"))
    c.close()
    server.stop()
    assert data_rows(tmp_path) == [(REPLACE, [1, "kept"]), (REPLACE, [6, "after"])]


def test_a_procedure_that_fails_after_writing(wal_server: Server, tmp_path: Path) -> None:
    """Its write was an autocommit statement: it stays, and is logged; the
    error still reaches the caller, after the write."""
    c = tarantool.Connection("127.0.0.1", wal_server.port)
    with pytest.raises(tarantool.error.DatabaseError):
        c.call("put_then_fail", 7)
    assert c.select("kv", 7).data == [[7, "written"]]
    c.close()
    wal_server.stop()
    assert data_rows(tmp_path) == [(REPLACE, [7, "written"])]


def test_group_commit_under_concurrent_writers(wal_server: Server, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # A disk that takes 2 ms a block: the writes that arrive meanwhile are
    # together when it is free (on a fast, idle disk the WAL thread could keep
    # up with TX, and how many blocks it writes would be the scheduler's luck).
    real = XlogWriter.write_block

    def slow_disk(self: XlogWriter, payload: bytes, compress: bool | None = None) -> int:
        time.sleep(0.002)
        return real(self, payload, compress)

    monkeypatch.setattr(XlogWriter, "write_block", slow_disk)

    async def go() -> None:
        conns = [await asynctnt.connect(host="127.0.0.1", port=wal_server.port) for _ in range(8)]
        await asyncio.gather(*(c.replace("kv", [k * 100 + i, "v"]) for k, c in enumerate(conns) for i in range(50)))
        await asyncio.gather(*(c.call("put_later", [1000 + k, "v"]) for k, c in enumerate(conns)))
        for c in conns:
            await c.disconnect()

    asyncio.run(go())
    assert wal_server.wal is not None
    writer = wal_server.wal.writer
    wal_server.stop()
    assert len(data_rows(tmp_path)) == 408
    assert writer.blocks < 408 / 2, writer.blocks  # writes that arrive together are written together


def test_one_wal_directory_one_server(make_server: Any, tmp_path: Path) -> None:
    make_server(app=APP, wal_mode="write", work_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="locked"):
        make_server(app=APP, wal_mode="write", work_dir=str(tmp_path))


def test_a_failed_write_takes_the_writes_queued_behind_it(make_server: Any, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The second client's write builds on the first's, which the disk then
    refuses: both are undone (newest first), the second gets error 134, and
    memory is what it was. Nobody is told 'stored' of something that is not."""
    server = make_server(app=APP, wal_mode="write", work_dir=str(tmp_path))
    c = tarantool.Connection("127.0.0.1", server.port)
    c.replace("kv", (1, "a"))
    real = XlogWriter.write_block
    state = {"fail": 1}

    def slow_then_fail(self: XlogWriter, payload: bytes, compress: bool | None = None) -> int:
        if state["fail"]:
            state["fail"] -= 1
            time.sleep(0.3)
            raise OSError(errno.EIO, "Input/output error")
        return real(self, payload, compress)

    monkeypatch.setattr(XlogWriter, "write_block", slow_then_fail)

    async def go() -> tuple[Any, Any]:
        one = await asynctnt.connect(host="127.0.0.1", port=server.port)
        two = await asynctnt.connect(host="127.0.0.1", port=server.port)
        first = asyncio.ensure_future(one.replace("kv", [1, "b"]))
        await asyncio.sleep(0.1)
        second = asyncio.ensure_future(two.update("kv", [1], [["=", 1, "b+c"]]))  # sees "b"
        results = await asyncio.gather(first, second, return_exceptions=True)
        await one.disconnect()
        await two.disconnect()
        return results[0], results[1]

    first, second = asyncio.run(go())
    assert isinstance(first, asynctnt.exceptions.TarantoolDatabaseError) and first.code == 40
    assert isinstance(second, asynctnt.exceptions.TarantoolDatabaseError) and second.code == 134
    assert c.select("kv", 1).data == [[1, "a"]]
    c.replace("kv", (2, "later"))  # the WAL writes again
    c.close()
    server.stop()
    assert data_rows(tmp_path) == [(REPLACE, [1, "a"]), (REPLACE, [2, "later"])]


def test_a_ddl_whose_write_fails_is_undone(make_server: Any, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    server = make_server(app=APP, wal_mode="write", work_dir=str(tmp_path))
    c = tarantool.Connection("127.0.0.1", server.port)
    c.call("box.schema.user.create", "kept", {"password": "x"})
    c.call("box.schema.space.create", "mine")
    c.call("box.space.mine:create_index", "pk")
    c.insert("mine", (1,))
    c.replace("kv", (1, "kept"))
    real = XlogWriter.write_block

    def disk_full(self: XlogWriter, payload: bytes, compress: bool | None = None) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(XlogWriter, "write_block", disk_full)
    for ddl in (lambda: c.call("box.schema.space.create", "lost"),
                lambda: c.call("box.schema.user.create", "lost", {"password": "x"}),
                lambda: c.call("box.schema.user.grant", "kept", "read", "space", "mine"),
                lambda: c.call("box.space.mine.index.pk:rename", "renamed"),
                lambda: c.call("box.space.mine:drop"),
                lambda: c.call("box.space.kv:truncate"),
                lambda: c.call("box.schema.user.drop", "kept")):
        with pytest.raises(tarantool.error.DatabaseError) as e:
            ddl()
        assert e.value.args[0] == 40, e.value
    monkeypatch.setattr(XlogWriter, "write_block", real)
    spaces = {row[2]: row[0] for row in c.select("_vspace", []).data}
    users = {row[2] for row in c.select("_vuser", []).data}
    assert "lost" not in spaces and "mine" in spaces and "lost" not in users and "kept" in users
    assert {row[2] for row in c.select("_vindex", [spaces["mine"]]).data} == {"pk"}
    assert c.select("mine", []).data == [[1]] and c.select("kv", []).data == [[1, "kept"]]  # data came back
    assert not [p for p in c.select("_vpriv", []).data if p[2] == "space" and p[3] == spaces["mine"]
                and p[1] >= 32]
    c.call("box.schema.space.create", "later")  # the WAL and its diff go on from the undone state
    c.close()
    server.stop()
    names = {(r.body[0x10], r.body[0x21][2]) for r in rows(tmp_path)
             if r.type == REPLACE and r.body and r.body.get(0x10) in (280, 304)}
    assert names == {(280, "kv"), (280, "tmp"), (280, "mine"), (280, "later"), (304, "kept")}


def test_keys_of_every_type_are_logged(make_server: Any, tmp_path: Path) -> None:
    """A DELETE's key is packed as a request's would be: a uuid or decimal
    primary key (MessagePack extensions) is logged, and comes back."""
    import decimal
    import uuid

    server = make_server(app=APP, wal_mode="write", work_dir=str(tmp_path))
    c = tarantool.Connection("127.0.0.1", server.port)
    c.call("box.schema.space.create", "u", {"format": [{"name": "id", "type": "uuid"}]})
    c.call("box.space.u:create_index", "pk")
    c.call("box.schema.space.create", "d", {"format": [{"name": "id", "type": "decimal"}]})
    c.call("box.space.d:create_index", "pk")
    keep, gone = uuid.UUID(int=1), uuid.UUID(int=2)
    c.insert("u", (keep,))
    c.insert("u", (gone,))
    c.delete("u", gone)
    c.insert("d", (decimal.Decimal("1.5"),))
    c.delete("d", decimal.Decimal("1.5"))
    c.close()
    server.stop()
    server = make_server(app=APP, wal_mode="write", work_dir=str(tmp_path))
    c = tarantool.Connection("127.0.0.1", server.port)
    assert c.select("u", []).data == [[keep]] and c.select("d", []).data == []
    c.close()
