"""The WAL thread and TX's journal, over real cbus pipes and real files.

TX is this test's event loop; the WAL runs in its own thread. Entries are
submitted as TX would submit committed transactions, and come back with
their LSNs; the files are then read back with every checksum checked.
"""

from __future__ import annotations

import asyncio
import errno
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest

from styx import cbus
from styx.routes import wire_wal
from styx.wal import CascadeRollback, Journal, JournalEntry, WalThread, WalWriter
from styx.xlog import XlogReader, XlogWriter, encode_dml_body

UUID = "aaaaaaaa-0000-4000-8000-000000000001"
REPLACE = 3


class Wal:
    """A TX loop, a WAL thread, and the journal between them."""

    def __init__(self, wal_dir: Path, mode: str = "write", **kw: Any) -> None:
        self.loop = asyncio.new_event_loop()
        bus = cbus.Bus()
        self.feed = cbus.Feed(self.loop)
        tx = bus.register(cbus.Endpoint("tx", self.loop, feed=self.feed))
        self.writer = WalWriter(str(wal_dir), UUID, {}, mode=mode, **kw)
        self.thread = WalThread(self.writer)
        if mode == "none":
            self.thread.loop = self.loop
        else:
            self.thread.start()
        self.journal: Journal = wire_wal(tx, self.feed, self.thread, bus)

    def commit(self, *entries_rows: list[bytes]) -> list[JournalEntry]:
        """Submit one entry per list of row bodies, all in one loop pass;
        wait until every one is back."""
        done: list[JournalEntry] = []
        fut = self.loop.create_future()

        def on_done(e: JournalEntry) -> None:
            done.append(e)
            if len(done) == len(entries_rows):
                fut.set_result(None)

        entries = [JournalEntry([(REPLACE, body, 0) for body in rows], on_done) for rows in entries_rows]
        self.loop.call_soon(lambda: [self.journal.submit(e) for e in entries])
        self.loop.run_until_complete(asyncio.wait_for(fut, 10))
        if not any(e.error for e in entries):
            assert done == entries  # back in the order they were submitted
        return entries

    def close(self) -> None:
        self.thread.stop()
        self.loop.close()


@pytest.fixture
def wal(tmp_path: Path) -> Iterator[Wal]:
    w = Wal(tmp_path)
    yield w
    w.close()


def body(k: int, size: int = 4) -> bytes:
    return encode_dml_body(512, tuple=msgpack.packb([k, "v" * size]))


def read_rows(wal_dir: Path) -> list[Any]:
    rows = []
    for path in sorted(wal_dir.glob("*.xlog")):
        with XlogReader.open(str(path)) as r:
            rows += list(r.rows())
            assert r.eof
    return rows


def test_entries_get_lsns_and_rows_reach_the_file(wal: Wal, tmp_path: Path) -> None:
    single = wal.commit([body(1)])
    txn = wal.commit([body(2), body(3), body(4)])
    assert [e.lsn for e in single + txn] == [1, 4] and not any(e.error for e in single + txn)
    wal.close()
    rows = read_rows(tmp_path)
    assert [(r.lsn, r.replica_id, r.multi, r.tsn, r.is_commit) for r in rows] == [
        (1, 1, False, 1, True), (2, 1, True, 2, False), (3, 1, True, 2, False), (4, 1, True, 2, True)]
    assert [r.body[0x21][0] for r in rows] == [1, 2, 3, 4]
    assert all(r.timestamp > 0 for r in rows)


def test_group_commit_one_block_for_a_pass(wal: Wal, tmp_path: Path) -> None:
    entries = wal.commit(*[[body(k)] for k in range(100)])
    assert [e.lsn for e in entries] == list(range(1, 101))
    assert wal.writer.batches == 1 and wal.writer.blocks == 1  # 100 commits, one write
    wal.close()
    assert [r.lsn for r in read_rows(tmp_path)] == list(range(1, 101))


def test_concurrent_writers_share_writes(tmp_path: Path) -> None:
    """40 writers, each committing 5 times in a row (the next commit once the
    last is written). While a batch is on disk, the others' commits wait in
    TX; they come back together and commit together: one block per round."""
    w = Wal(tmp_path)
    lsns: list[int] = []

    async def writer(k: int) -> None:
        for i in range(5):
            fut = w.loop.create_future()
            w.journal.submit(JournalEntry([(REPLACE, body(k * 10 + i), 0)], lambda e, f=fut: f.set_result(e.lsn)))
            lsns.append(await fut)

    async def main() -> None:
        await asyncio.gather(*(writer(k) for k in range(40)))

    w.loop.run_until_complete(main())
    assert sorted(lsns) == list(range(1, 201))
    assert w.writer.blocks <= 10, w.writer.blocks  # 200 commits, 5 rounds
    w.close()
    assert len(read_rows(tmp_path)) == 200


def test_rotation_chains_the_files(tmp_path: Path) -> None:
    w = Wal(tmp_path, max_size=300)
    for k in range(6):
        w.commit([body(k, size=100)])
    w.close()
    paths = sorted(tmp_path.glob("*.xlog"))
    assert len(paths) >= 3
    prev = None
    for path in paths:
        with XlogReader.open(str(path)) as r:
            assert path.name == f"{sum(r.meta.vclock.values()):020d}.xlog"
            assert r.meta.prev_vclock == prev
            prev = r.meta.vclock
            first = next(iter(r.rows()))
            assert first.lsn == sum(r.meta.vclock.values()) + 1
    assert [r.lsn for r in read_rows(tmp_path)] == list(range(1, 7))


def test_fsync_mode(tmp_path: Path) -> None:
    w = Wal(tmp_path, mode="fsync")
    assert [e.lsn for e in w.commit([body(1)], [body(2)])] == [1, 2]
    w.close()
    assert [r.lsn for r in read_rows(tmp_path)] == [1, 2]


def test_mode_none_counts_lsns_and_writes_nothing(tmp_path: Path) -> None:
    w = Wal(tmp_path, mode="none")
    assert [e.lsn for e in w.commit([body(1)], [body(2), body(3)])] == [1, 3]
    w.close()
    assert list(tmp_path.iterdir()) == []


def test_a_failed_write_fails_its_batch_and_leaves_no_trace(wal: Wal, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    wal.commit([body(1)])
    real = XlogWriter.write_block
    calls = {"n": 0}

    def failing(self: XlogWriter, payload: bytes, compress: bool | None = None) -> int:
        calls["n"] += 1
        real(self, payload[: len(payload) // 2], compress)  # half of it reached the file
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(XlogWriter, "write_block", failing)
    failed = wal.commit([body(2)], [body(3), body(4)])
    # The batch's first entry failed; the one after it went with it.
    assert calls["n"] == 1 and isinstance(failed[0].error, OSError) and isinstance(failed[1].error, CascadeRollback)
    monkeypatch.setattr(XlogWriter, "write_block", real)
    after = wal.commit([body(5)])
    assert after[0].lsn == 2 and after[0].error is None  # the failed batch spent no LSN
    wal.close()
    rows = read_rows(tmp_path)  # every checksum holds: the half block was cut off
    assert [(r.lsn, r.body[0x21][0]) for r in rows] == [(1, 1), (2, 5)]
    assert wal.writer.failures == 1


def test_a_failure_takes_the_writes_after_it(wal: Wal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cascading rollback: batches queued behind a failed one are not written
    (they may build on it); TX hears of them newest first, then of the failed
    one; then the WAL writes again, with no LSN spent."""
    real = XlogWriter.write_block
    first = {"left": 1}

    def fails_once(self: XlogWriter, payload: bytes, compress: bool | None = None) -> int:
        if first["left"]:
            first["left"] -= 1
            time.sleep(0.1)  # the next batches queue up meanwhile
            raise OSError(errno.EIO, "Input/output error")
        return real(self, payload, compress)

    monkeypatch.setattr(XlogWriter, "write_block", fails_once)
    heard: list[tuple[str, str]] = []
    fut = wal.loop.create_future()

    def entry(name: str) -> JournalEntry:
        def on_done(e: JournalEntry) -> None:
            heard.append((name, type(e.error).__name__))
            if len(heard) == 3:
                fut.set_result(None)
        return JournalEntry([(REPLACE, body(len(heard)), 0)], on_done)

    async def go() -> None:
        wal.journal.submit(entry("a"))  # its batch fails
        await asyncio.sleep(0.02)
        wal.journal.submit(entry("b"))  # queued behind it
        await asyncio.sleep(0.02)
        wal.journal.submit(entry("c"))
        await asyncio.wait_for(fut, 5)

    wal.loop.run_until_complete(go())
    assert heard == [("c", "CascadeRollback"), ("b", "CascadeRollback"), ("a", "OSError")]
    [after] = wal.commit([body(9)])
    assert after.error is None and after.lsn == 1
    wal.close()
    assert [r.lsn for r in read_rows(tmp_path)] == [1]
