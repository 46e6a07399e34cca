"""A restart keeps what was acknowledged: recovery from the WAL.

Servers run with `wal_mode write` in one directory, one after the other;
the second must serve what the first was told to store, through real
connectors, and nothing that was rolled back. Then the damage cases: a
torn tail, a corrupted block (refused, naming the file and offset; or
skipped with force_recovery), a kill -9 under pipelined writes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import asynctnt
import pytest
import tarantool

from styx import Server
from styx.server import ConfigError
from styx.xlog import XlogReader
from tests.spawn import free_port
from tests.walkit import WAL_APP, start_wal_server


def fill(server: Server) -> None:
    """DDL over CALL and from the app, data in TREE and HASH indexes, a user
    with a password and grants, transactions kept and rolled back."""
    c = tarantool.Connection("127.0.0.1", server.port)
    c.call("box.schema.space.create", "t2", {"format": [{"name": "id", "type": "unsigned"},
                                                        {"name": "s", "type": "string"}]})
    c.call("box.space.t2:create_index", "pk")
    c.call("box.space.t2:create_index", "s", {"type": "hash", "parts": ["s"]})
    c.call("box.schema.user.create", "alice", {"password": "secret"})
    c.call("box.schema.user.grant", "alice", "read,write", "space", "t2")
    c.call("box.schema.user.create", "bob", {"password": "x"})
    c.call("box.schema.user.drop", "bob")
    c.call("box.schema.space.create", "gone")
    c.call("box.space.gone:create_index", "pk")
    c.insert("gone", (1,))
    c.call("box.space.gone:drop")
    for k in range(1, 6):
        c.insert("t2", (k, f"s{k}"))
    c.update("t2", 1, [("=", 1, "one")])
    c.delete("t2", 2)
    c.upsert("t2", (6, "s6"), [("=", 1, "no")])
    c.replace("kv", (1, "kept"))
    c.replace("tmp", (1, "temporary"))  # not logged: gone after a restart
    c.call("put_two", 10, 11)
    c.close()

    async def streams() -> None:
        conn = await asynctnt.connect(host="127.0.0.1", port=server.port)
        s = conn.stream()
        await s.begin()
        await s.replace("kv", [20, "committed"])
        await s.commit()
        s = conn.stream()
        await s.begin()
        await s.replace("kv", [21, "rolled back"])
        await s.rollback()
        await conn.disconnect()

    asyncio.run(streams())


def check(server: Server) -> None:
    c = tarantool.Connection("127.0.0.1", server.port)
    assert c.select("t2", []).data == [[1, "one"], [3, "s3"], [4, "s4"], [5, "s5"], [6, "s6"]]
    assert c.select("t2", "s4", index="s").data == [[4, "s4"]]  # the HASH index is back
    assert c.select("kv", []).data == [[1, "kept"], [10, "txn"], [11, "txn"], [20, "committed"]]
    assert c.select("tmp", []).data == []
    names = {row[2] for row in c.select("_vspace", []).data}
    assert "gone" not in names and {"kv", "tmp", "t2"} <= names
    users = {row[2] for row in c.select("_vuser", []).data}
    assert "alice" in users and "bob" not in users
    c.close()
    alice = tarantool.Connection("127.0.0.1", server.port, user="alice", password="secret")
    assert alice.select("t2", 3).data == [[3, "s3"]]  # her grant, and her password
    alice.insert("t2", (7, "s7"))
    with pytest.raises(tarantool.error.DatabaseError) as e:
        alice.call("put", 30, "denied")  # no execute
    assert e.value.args[0] == 42
    alice.close()


def test_a_restart_keeps_everything(tmp_path: Path) -> None:
    first = start_wal_server(tmp_path, iproto_threads=1)
    fill(first)
    uuid = first.tx.instance_uuid  # type: ignore[union-attr]
    first.stop()
    second = start_wal_server(tmp_path)
    try:
        assert second.tx.instance_uuid == uuid  # type: ignore[union-attr]
        check(second)  # (it writes one tuple too)
    finally:
        second.stop()
    third = start_wal_server(tmp_path, iproto_threads=2)  # two xlogs now, chained
    try:
        c = tarantool.Connection("127.0.0.1", third.port)
        assert c.select("t2", 7).data == [[7, "s7"]]
        c.close()
    finally:
        third.stop()
    xlogs = sorted(tmp_path.glob("*.xlog"))
    assert len(xlogs) == 2
    with XlogReader.open(str(xlogs[1])) as r:
        with XlogReader.open(str(xlogs[0])) as r0:
            assert r.meta.prev_vclock == r0.meta.vclock


def test_a_torn_tail_is_dropped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    s = start_wal_server(tmp_path)
    c = tarantool.Connection("127.0.0.1", s.port)
    c.replace("kv", (1, "a"))
    c.replace("kv", (2, "b"))
    c.close()
    s.stop()
    [xlog] = tmp_path.glob("*.xlog")
    data = xlog.read_bytes()
    xlog.write_bytes(data[:-4 - 10])  # no EOF marker, and the last block cut (a crash mid-write)
    s = start_wal_server(tmp_path)
    try:
        c = tarantool.Connection("127.0.0.1", s.port)
        assert c.select("kv", []).data == [[1, "a"]]
        c.close()
    finally:
        s.stop()
    assert "cut short" in caplog.text


def test_corruption_refuses_the_start_unless_forced(tmp_path: Path) -> None:
    s = start_wal_server(tmp_path)
    c = tarantool.Connection("127.0.0.1", s.port)
    for k in range(3):
        c.replace("kv", (k, "v" * 10))
    c.close()
    s.stop()
    [xlog] = tmp_path.glob("*.xlog")
    data = bytearray(xlog.read_bytes())
    blocks = [i for i in range(len(data)) if data[i:i + 4] == b"\xd5\xba\x0b\xab"]
    data[blocks[-2] + 25] ^= 0xFF  # a byte inside the second-to-last block
    xlog.write_bytes(bytes(data))
    with pytest.raises(ConfigError) as e:
        start_wal_server(tmp_path)
    assert str(xlog) in str(e.value) and f"offset {blocks[-2]}" in str(e.value)
    s = start_wal_server(tmp_path, force_recovery=True)
    try:
        c = tarantool.Connection("127.0.0.1", s.port)
        assert [t[0] for t in c.select("kv", []).data] == [0, 2]  # the damaged block's row is skipped
        c.close()
    finally:
        s.stop()


def test_kill_9_then_restart_keeps_every_acknowledged_write(tmp_path: Path) -> None:
    port = free_port()
    argv = [sys.executable, "-m", "styx", "serve", WAL_APP, "--listen", f"127.0.0.1:{port}", "--wal-mode", "write",
            "--work-dir", str(tmp_path)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    acked: list[int] = []
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)

        async def writer(k: int) -> None:
            conn = await asynctnt.connect(host="127.0.0.1", port=port, reconnect_timeout=0)
            try:
                for i in range(100000):
                    await conn.replace("kv", [k * 1_000_000 + i, "v"])
                    acked.append(k * 1_000_000 + i)
            except Exception:  # noqa: BLE001 - the server was killed under it
                pass

        async def go() -> None:
            tasks = [asyncio.ensure_future(writer(k)) for k in range(4)]
            await asyncio.sleep(0.7)
            os.kill(proc.pid, signal.SIGKILL)
            await asyncio.gather(*tasks)

        asyncio.run(go())
    finally:
        proc.kill()
        proc.wait()
    assert len(acked) > 100
    s = start_wal_server(tmp_path)
    try:
        c = tarantool.Connection("127.0.0.1", s.port)
        present = {t[0] for t in c.select("kv", []).data}
        c.close()
    finally:
        s.stop()
    assert not set(acked) - present
