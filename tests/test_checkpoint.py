"""Checkpoints: box.snapshot() over CALL and from Python, the daemon, the
files a checkpoint makes unnecessary, and recovery from a snapshot and the
xlogs after it, while writes go on."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import asynctnt
import pytest
import tarantool

from styx import Server
from styx.server import ConfigError
from styx.xlog import XlogReader
from tests.walkit import WAL_APP, start_wal_server


def start(tmp_path: Path, **kw: Any) -> Server:
    kw.setdefault("checkpoint_interval", 0)  # checkpoints when a test asks
    return start_wal_server(tmp_path, **kw)


def names(tmp_path: Path, kind: str) -> list[str]:
    return sorted(p.name for p in tmp_path.glob(f"*.{kind}"))


def test_a_snapshot_and_the_xlogs_after_it_come_back(tmp_path: Path) -> None:
    s = start(tmp_path)
    c = tarantool.Connection("127.0.0.1", s.port)
    c.call("box.schema.space.create", "t2", {"format": [{"name": "id", "type": "unsigned"},
                                                        {"name": "s", "type": "string"}]})
    c.call("box.space.t2:create_index", "pk")
    c.call("box.space.t2:create_index", "s", {"type": "hash", "parts": ["s"]})
    c.call("box.schema.user.create", "alice", {"password": "secret"})
    c.call("box.schema.user.grant", "alice", "read", "space", "t2")
    for k in range(1, 4):
        c.insert("t2", (k, f"s{k}"))
    c.call("fill", 1000)
    assert c.call("box.snapshot").data == ["ok"]
    c.insert("t2", (4, "s4"))  # after the snapshot: in the next xlog
    c.delete("kv", 5)
    assert c.call("snap").data == ["ok"]  # from a Python procedure: await box.snapshot()
    c.insert("t2", (5, "s5"))
    c.close()
    s.stop()
    snaps = names(tmp_path, "snap")
    assert len(snaps) == 2  # checkpoint_count 2
    with XlogReader.open(str(tmp_path / snaps[-1])) as r:
        rows = list(r.rows())
        assert r.eof and r.meta.filetype == "SNAP"
        assert snaps[-1] == f"{sum(r.meta.vclock.values()):020d}.snap"
    assert all(row.type == 2 for row in rows)
    spaces = [row.body[0x10] for row in rows]
    assert spaces == sorted(spaces)  # system spaces first, then the user spaces by id
    s = start(tmp_path)
    try:
        c = tarantool.Connection("127.0.0.1", s.port)
        assert c.select("t2", []).data == [[1, "s1"], [2, "s2"], [3, "s3"], [4, "s4"], [5, "s5"]]
        assert c.select("t2", "s4", index="s").data == [[4, "s4"]]
        assert len(c.select("kv", []).data) == 999 and c.select("kv", 5).data == []
        c.close()
        a = tarantool.Connection("127.0.0.1", s.port, user="alice", password="secret")
        assert a.select("t2", 1).data == [[1, "s1"]]
        a.close()
    finally:
        s.stop()


def test_old_files_go(tmp_path: Path) -> None:
    s = start(tmp_path, checkpoint_count=2)
    c = tarantool.Connection("127.0.0.1", s.port)
    made = []
    for round_ in range(4):
        c.call("fill", 10, round_ * 10)
        c.call("box.snapshot")
        made.append(names(tmp_path, "snap")[-1])
    c.call("fill", 10, 100)
    c.close()
    s.stop()
    assert names(tmp_path, "snap") == made[-2:]
    oldest = int(made[-2].split(".")[0])
    xlogs = names(tmp_path, "xlog")
    # What is left is what the oldest snapshot kept still needs, and no more.
    assert xlogs and all(int(n.split(".")[0]) >= oldest for n in xlogs[1:])
    assert int(xlogs[0].split(".")[0]) >= int(made[-3].split(".")[0])
    s = start(tmp_path)
    try:
        c = tarantool.Connection("127.0.0.1", s.port)
        assert len(c.select("kv", []).data) == 50
        c.close()
    finally:
        s.stop()


def test_a_snapshot_while_writes_go_on(tmp_path: Path) -> None:
    s = start(tmp_path)
    acked: list[int] = []

    async def go() -> None:
        conn = await asynctnt.connect(host="127.0.0.1", port=s.port)
        await conn.call("fill", [20000])
        stop = asyncio.Event()

        async def writer(k: int) -> None:
            i = 0
            while not stop.is_set():
                await conn.replace("kv", [100000 + k * 100000 + i, "during"])
                acked.append(100000 + k * 100000 + i)
                i += 1

        tasks = [asyncio.ensure_future(writer(k)) for k in range(4)]
        await asyncio.sleep(0.05)
        assert (await conn.call("box.snapshot"))[0] == "ok"
        await asyncio.sleep(0.05)
        stop.set()
        await asyncio.gather(*tasks)
        await conn.disconnect()

    asyncio.run(go())
    s.stop()
    assert acked
    s = start(tmp_path)
    try:
        c = tarantool.Connection("127.0.0.1", s.port)
        keys = {t[0] for t in c.select("kv", []).data}
        c.close()
    finally:
        s.stop()
    assert set(range(20000)) <= keys and not set(acked) - keys


def test_the_checkpoint_daemon(tmp_path: Path) -> None:
    s = start(tmp_path, checkpoint_interval=0.2)
    try:
        c = tarantool.Connection("127.0.0.1", s.port)
        c.replace("kv", (1, "x"))
        c.close()
        deadline = time.monotonic() + 5
        while not names(tmp_path, "snap") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert names(tmp_path, "snap")
    finally:
        s.stop()


def test_a_snapshot_cut_short_is_refused(tmp_path: Path) -> None:
    s = start(tmp_path)
    c = tarantool.Connection("127.0.0.1", s.port)
    c.replace("kv", (1, "x"))
    c.call("box.snapshot")
    c.close()
    s.stop()
    bootstrap, snap = sorted(tmp_path.glob("*.snap"))
    snap.write_bytes(snap.read_bytes()[:-4])  # no EOF marker
    with pytest.raises(ConfigError, match="EOF"):
        start(tmp_path)
    s = start(tmp_path, force_recovery=True)
    try:
        c = tarantool.Connection("127.0.0.1", s.port)
        assert c.select("kv", 1).data == [[1, "x"]]
        c.close()
    finally:
        s.stop()


def test_no_snapshot_without_a_wal(make_server: Any) -> None:
    s = make_server(app=WAL_APP)
    c = tarantool.Connection("127.0.0.1", s.port)
    with pytest.raises(tarantool.error.DatabaseError) as e:
        c.call("box.snapshot")
    assert "wal_mode none" in e.value.args[1]
    c.close()


def test_box_cfg_changes_the_checkpoint_options(tmp_path: Path) -> None:
    s = start(tmp_path)  # checkpoint_interval 0: no daemon
    try:
        c = tarantool.Connection("127.0.0.1", s.port)
        c.replace("kv", (1, "x"))
        time.sleep(0.3)
        assert names(tmp_path, "snap") == [f"{0:020d}.snap"]  # the new instance's
        c.call("cfg", {"checkpoint_interval": 0.1, "checkpoint_count": 1})
        deadline = time.monotonic() + 5
        while names(tmp_path, "snap") == [f"{0:020d}.snap"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert names(tmp_path, "snap")[-1] > f"{0:020d}.snap"
        c.call("cfg", {"checkpoint_interval": 0})
        with pytest.raises(tarantool.error.DatabaseError):
            c.call("cfg", {"checkpoint_count": 0})
        c.close()
    finally:
        s.stop()
    assert len(names(tmp_path, "snap")) == 1  # checkpoint_count 1
