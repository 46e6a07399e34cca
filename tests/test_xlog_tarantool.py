"""Styx's .xlog/.snap format against Debian's Tarantool 2.6, both ways.

- Tarantool writes a data directory (DDL, every kind of DML, a user and a
  grant, a transaction, a compressed block, a snapshot, more writes). Styx
  reads every file with every checksum checked, finds the rows Tarantool
  logged, and re-encodes every row byte for byte.
- Styx writes the xlog that follows Tarantool's snapshot (REPLACE, a
  transaction, UPDATE, DELETE, UPSERT, a compressed block). Tarantool
  recovers from it and holds exactly the data those rows make, at the
  vclock they end with.
- A Styx server with its WAL on makes a space, indexes, a user with a
  password, grants and data over IPROTO; Tarantool, starting from its own
  bootstrap snapshot and Styx's xlog, has all of it, and the user logs in.
- Styx starts on a copy of Tarantool's data directory (snapshot and
  xlogs), serves its data to the user Tarantool made, writes more; then
  Tarantool starts on that directory and has Styx's writes too.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import asynctnt
import msgpack
import pytest
import tarantool as tarantool_client

from styx.box.schema import Schema, snapshot_rows
from styx.box.space import Space
from styx.box.users import Users
from styx.server import ConfigError
from styx.xlog import (
    Meta,
    XlogReader,
    XlogWriter,
    decode_rows,
    encode_dml_body,
    encode_header,
    encode_row,
)
from tests.spawn import free_port
from tests.walkit import start_wal_server

SCRIPT = Path(__file__).parent / "lua" / "xlog_writer.lua"
LOGIN = """
box.cfg{{work_dir = '{dir}', instance_uuid = '{uuid}', listen = '127.0.0.1:{port}', log = '{dir}/login.log'}}
local c = require('net.box').connect('{user}:{password}@127.0.0.1:{port}')
print(c.error or c.state, #c.space.{space}:select{{}})
os.exit(0)
"""
UUID = "aaaaaaaa-0000-4000-8000-000000000001"
INSERT, REPLACE, UPDATE, DELETE, UPSERT = 2, 3, 4, 5, 9


def tarantool(bin_: str, mode: str, work_dir: Path) -> str:
    proc = subprocess.run([bin_, str(SCRIPT), mode, str(work_dir), UUID], capture_output=True, text=True,
                          timeout=60)
    log = work_dir / "tarantool.log"
    assert proc.returncode == 0, (proc.stderr, log.read_text() if log.exists() else "")
    return proc.stdout


@pytest.fixture(scope="module")
def tarantool_dir(tmp_path_factory: pytest.TempPathFactory, tarantool_bin: str) -> Path:
    work = tmp_path_factory.mktemp("tarantool_wrote")
    tarantool(tarantool_bin, "write", work)
    return work


def files(work: Path, kind: str) -> list[Path]:
    return sorted(work.glob(f"*.{kind}"))


def test_styx_reads_every_file_tarantool_wrote(tarantool_dir: Path) -> None:
    snaps, xlogs = files(tarantool_dir, "snap"), files(tarantool_dir, "xlog")
    assert len(snaps) == 2 and xlogs  # the bootstrap snapshot and box.snapshot()'s
    seen: dict[int, int] = {}
    compressed = 0
    for path in snaps + xlogs:
        with XlogReader.open(str(path)) as r:  # raises on any bad checksum
            assert r.meta.instance_uuid == UUID
            assert path.name == f"{sum(r.meta.vclock.values()):020d}.{path.suffix[1:]}"
            for offset, payload in r.blocks():
                with open(path, "rb") as f:
                    f.seek(offset)
                    compressed += f.read(4) == b"\xd5\xba\x0b\xba"
                rows = decode_rows(payload)
                # Byte for byte: every row re-encoded gives the payload again.
                assert b"".join(encode_row(row) for row in rows) == payload
                for row in rows:
                    seen[row.type] = seen.get(row.type, 0) + 1
            assert r.eof and r.torn is None
    assert compressed >= 2  # the bootstrap snapshot, and the 4 KiB row's block
    assert all(seen.get(t) for t in (INSERT, REPLACE, UPDATE, DELETE, UPSERT))


def test_a_new_styx_snapshot_holds_tarantools_bootstrap_rows(tmp_path: Path, tarantool_bin: str) -> None:
    """The system rows Styx snapshots for a new instance are the rows of
    Tarantool 2.6's first snapshot, in the same order; only the replicaset
    uuid (random in both) differs."""
    tarantool(tarantool_bin, "bootstrap", tmp_path)
    [snap] = files(tmp_path, "snap")
    theirs = [(row.body[0x10], row.body[0x21]) for row in XlogReader.open(str(snap)).rows()]
    schema = Schema(Users(), instance_uuid=UUID)
    ours = snapshot_rows(schema)
    cluster = [i for i, (sid, row) in enumerate(theirs) if sid == 272 and row[0] == "cluster"]
    assert ours[cluster[0]] == (272, ["cluster", schema.replicaset_uuid])
    del ours[cluster[0]], theirs[cluster[0]]
    assert ours == theirs


def test_tarantools_transaction_rows(tarantool_dir: Path) -> None:
    rows = [row for path in files(tarantool_dir, "xlog") for row in XlogReader.open(str(path)).rows()]
    txn = [row for row in rows if row.multi]
    assert [(row.tsn, row.is_commit) for row in txn] == [(txn[0].lsn, False), (txn[0].lsn, True)]
    assert [row.body[0x21][0] for row in txn] == [5, 6]
    user = [row for row in rows if row.type == INSERT and row.body.get(0x10) == 304]
    assert user and user[0].body[0x21][2] == "alice"


def test_tarantool_recovers_from_styx_rows(tarantool_dir: Path, tmp_path: Path, tarantool_bin: str) -> None:
    work = tmp_path / "styx_wrote"
    shutil.copytree(tarantool_dir, work, ignore=shutil.ignore_patterns("*.log"))
    # Styx continues after Tarantool's snapshot: the xlogs after it go, and
    # Styx writes its own, named by the snapshot's vclock.
    snap = files(work, "snap")[-1]
    with XlogReader.open(str(snap)) as r:
        vclock = r.meta.vclock
    older = []
    for path in files(work, "xlog"):
        with XlogReader.open(str(path)) as r:
            if sum(r.meta.vclock.values()) >= sum(vclock.values()):
                path.unlink()
            else:
                older.append(r.meta.vclock)
    lsn = vclock[1]
    t = 1700000000.0

    def row(type_: int, body: bytes, **kw: Any) -> bytes:
        nonlocal lsn
        lsn += 1
        return encode_header(type_, replica_id=1, lsn=lsn, timestamp=t, **kw) + body

    packb = msgpack.packb
    w = XlogWriter(str(work), Meta("XLOG", UUID, dict(vclock), prev_vclock=older[-1] if older else None))
    w.write_block(row(REPLACE, encode_dml_body(512, tuple=packb([20, "t", 1]))))
    tsn = lsn + 1
    w.write_block(row(INSERT, encode_dml_body(512, tuple=packb([21, "u", 2])), tsn=tsn, is_commit=False)
                  + row(DELETE, encode_dml_body(512, key=packb([1])), tsn=tsn))
    w.write_block(row(UPDATE, encode_dml_body(512, index_base=1, key=packb([2]), tuple=packb([["+", 3, 40]])))
                  + row(UPSERT, encode_dml_body(512, index_base=1, ops=packb([["+", 3, 100]]),
                                                tuple=packb([4, "d", 0]))))
    big = b"".join(row(REPLACE, encode_dml_body(512, tuple=packb([100 + i, f"big{i}", i]))) for i in range(100))
    assert w.write_block(big) < len(big)  # compressed
    w.close()

    out = json.loads(tarantool(tarantool_bin, "read", work).strip().splitlines()[-1])
    assert out["vclock"] == {"1": lsn}
    # The snapshot's state (Tarantool's writes after it were in the xlogs
    # that went), then Styx's rows: 20 in, 21 in and 1 out in one
    # transaction, 2 updated, 4 upserted, 100..199 in.
    expected = {2: [2, "b", 40], 4: [4, "d", 101], 5: [5, "e", 0], 6: [6, "f", 0], 7: [7, "x" * 4096, 0],
                20: [20, "t", 1], 21: [21, "u", 2]}
    expected.update({100 + i: [100 + i, f"big{i}", i] for i in range(100)})
    assert {t[0]: t for t in out["test"]} == expected
    assert out["indexes"] == {"pk": "TREE", "name": "HASH"} and "alice" in out["users"]


def _styx_writes(c: tarantool_client.Connection, port: int) -> None:
    """DDL, users, grants and DML of every kind over IPROTO; a committed
    and a rolled-back stream transaction."""
    c.call("box.schema.space.create", "test", {"format": [{"name": "id", "type": "unsigned"},
                                                           {"name": "name", "type": "string"},
                                                           {"name": "n", "type": "unsigned"}]})
    c.call("box.space.test:create_index", "pk")
    c.call("box.space.test:create_index", "name", {"type": "hash", "parts": ["name"]})
    c.call("box.schema.user.create", "alice", {"password": "secret"})
    c.call("box.schema.user.grant", "alice", "read,write", "space", "test")
    for k in range(1, 6):
        c.insert("test", (k, f"n{k}", k))
    c.update("test", 1, [("+", 2, 100)])
    c.delete("test", 2)
    c.upsert("test", (3, "n3", 0), [("+", 2, 1)])

    async def streams() -> None:
        conn = await asynctnt.connect(host="127.0.0.1", port=port)
        for end in ("commit", "rollback"):
            stream = conn.stream()
            await stream.begin()
            await stream.replace("test", [20, end, 1])
            await stream.delete("test", [4])
            await getattr(stream, end)()
        await conn.disconnect()

    asyncio.run(streams())


def _login(tarantool_bin: str, work: Path, user: str, password: str, space: str) -> list[str]:
    """net.box, in a Tarantool started on `work`, logs in as `user`: its
    state, and how many tuples it sees in `space`."""
    port = free_port()
    script = LOGIN.format(dir=work, uuid=UUID, port=port, user=user, password=password, space=space)
    proc = subprocess.run([tarantool_bin, "-e", script], capture_output=True, text=True, timeout=60)
    return proc.stdout.strip().splitlines()[-1].split() if proc.stdout.strip() else [proc.stderr]


@pytest.mark.parametrize("snapshot", [False, True], ids=["bootstrap snapshot and xlogs", "snapshot and xlogs"])
def test_tarantool_starts_on_a_styx_data_directory(tmp_path: Path, tarantool_bin: str, snapshot: bool) -> None:
    """Everything in the directory is Styx's: the new instance's snapshot
    (Tarantool 2.6's bootstrap rows), or box.snapshot()'s, then xlogs.
    Tarantool 2.6 starts on it and has the same data, schema and users."""
    styx_dir, work = tmp_path / "styx", tmp_path / "tarantool"
    server = start_wal_server(styx_dir, instance_uuid=UUID)  # its app makes kv and tmp (temporary)
    try:
        c = tarantool_client.Connection("127.0.0.1", server.port)
        _styx_writes(c, server.port)
        if snapshot:
            c.call("box.snapshot")
        # After the snapshot (in the next xlog): a space, a role, a user and grants.
        c.call("box.schema.space.create", "pairs", {"format": [{"name": "k", "type": "string"},
                                                                {"name": "v", "type": "any"}]})
        c.call("box.space.pairs:create_index", "pk", {"parts": ["k"]})
        c.call("box.schema.role.create", "reader")
        c.call("box.schema.role.grant", "reader", "read", "space", "pairs")
        c.call("box.schema.user.create", "bob", {"password": "pw"})
        c.call("box.schema.user.grant", "bob", "reader", None, None)
        c.replace("pairs", ("a", [1, {"x": 2.5}]))
        c.replace("pairs", ("b", None))
        c.replace("kv", (1, "one"))
        c.call("box.space.kv:truncate")
        c.replace("kv", (1, "one again"))
        c.call("box.schema.space.create", "gone")
        c.call("box.space.gone:create_index", "pk")
        c.call("box.space.gone:truncate")
        c.call("box.space.gone:drop")  # its _truncate row goes with it
        c.replace("tmp", (1, "not logged"))
        truncated = c.select("_truncate", []).data
        styx_data = {name: c.select(name, []).data for name in ("kv", "tmp", "test", "pairs")}
        styx_data["tmp"] = []  # temporary: not logged
        test_id = c.select("_vspace", "test", index="name").data[0][0]
        assert c.call("box.info").data[0]["cluster"]["uuid"] != UUID  # a replicaset uuid of its own
        cluster = c.select("_schema", "cluster").data[0][1]
        c.close()
    finally:
        server.stop()
    assert len(files(styx_dir, "snap")) == 1 + snapshot
    shutil.copytree(styx_dir, work, ignore=shutil.ignore_patterns("*.log"))
    out = json.loads(tarantool(tarantool_bin, "read", work).strip().splitlines()[-1])
    assert out["spaces"] == styx_data
    assert out["truncate"] == truncated == [[512, 1]]
    assert {t[0]: t for t in out["test"]} == {1: [1, "n1", 101], 3: [3, "n3", 4], 5: [5, "n5", 5],
                                             20: [20, "commit", 1]}
    assert out["indexes"] == {"pk": "TREE", "name": "HASH"}
    assert [f["name"] for f in out["format"]] == ["id", "name", "n"]
    assert out["schema"]["version"] == ["version", 2, 3, 1]
    assert out["schema"]["cluster"] == ["cluster", cluster]
    assert out["schema"]["max_id"] == ["max_id", test_id + 2]  # pairs, then gone
    assert {"alice", "bob", "reader"} <= set(out["users"])
    alice, reader, bob = 32, 33, 34
    assert [alice, "space", test_id, 3] in out["privs"]  # read,write on test
    assert [bob, "role", reader, 4] in out["privs"]
    # The passwords came through: net.box logs in as each user.
    assert _login(tarantool_bin, work, "alice", "secret", "test") == ["active", "4"]
    assert _login(tarantool_bin, work, "bob", "pw", "pairs") == ["active", "2"]


def test_styx_serves_a_tarantool_data_directory_and_goes_on(tarantool_dir: Path, tmp_path: Path,
                                                            tarantool_bin: str) -> None:
    """Tarantool's snapshot and xlogs, loaded by Styx; Styx's writes on top,
    loaded by Tarantool again."""
    work = tmp_path / "both"
    shutil.copytree(tarantool_dir, work, ignore=shutil.ignore_patterns("*.log"))
    server = start_wal_server(work, app=None)
    try:
        assert server.tx is not None and server.tx.instance_uuid == UUID
        # alice: her password and her grant on `test` came from Tarantool's files.
        alice = tarantool_client.Connection("127.0.0.1", server.port, user="alice", password="secret")
        got = {t[0]: t for t in alice.select("test", []).data}
        assert got[1] == [1, "aa", 10] and got[4] == [4, "d", 1] and got[8] == [8, "h", 0]
        assert 2 not in got and 3 not in got and got[7][1] == "x" * 4096
        assert alice.select("test", "f", index="name").data == [[6, "f", 0]]
        alice.insert("test", (50, "from styx", 5))
        alice.close()
    finally:
        server.stop()
    out = json.loads(tarantool(tarantool_bin, "read", work).strip().splitlines()[-1])
    assert [50, "from styx", 5] in out["test"] and [8, "h", 0] in out["test"]


def test_what_styx_cannot_carry_over_is_named(tmp_path: Path, tarantool_bin: str,
                                             caplog: pytest.LogCaptureFixture) -> None:
    """A vinyl space (its data is in vinyl's own files) and a sequence stop
    the start, named; --force-recovery starts without them, and says so."""
    tarantool(tarantool_bin, "unsupported", tmp_path)
    with pytest.raises(ConfigError, match="vinyl space 'v'"):
        start_wal_server(tmp_path, app=None)
    server = start_wal_server(tmp_path, app=None, force_recovery=True)
    try:
        assert server.tx is not None
        schema = server.tx.schema
        assert "v" not in schema.by_name
        kept = schema.by_name["kept"]
        assert isinstance(kept, Space)
        assert [msgpack.unpackb(t) for t in kept.tuples()] == [[1, "memtx"], [2, "after"]]
    finally:
        server.stop()
    skipped = "\n".join(r.getMessage() for r in caplog.records if r.levelname == "ERROR")
    assert "vinyl space 'v'" in skipped and "_sequence" in skipped
