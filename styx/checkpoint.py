"""Checkpoints: `box.snapshot()`, the checkpoint daemon, and the removal of
files a checkpoint makes unnecessary (Tarantool's `gc_do_checkpoint`).

A checkpoint, while requests go on:
1. In TX, in one step: the rows of the system spaces, and for every
   persistent user space the list of its tuples (references to the stored
   bytes, in primary-key order). This copy of references is the only
   moment TX is held, and it is what makes the snapshot consistent.
2. The WAL closes its xlog behind every batch sent before (a cbus call):
   its vclock is the checkpoint's, and the next write starts a new xlog
   named by it.
3. Another thread writes `<vclock>.snap.inprogress`: system rows first
   (ascending space id: Tarantool 2.6's bootstrap rows and what DDL
   made, so that 2.6 loads the file too), then the tuples, 128 KiB blocks
   (zstd), the EOF marker, fsync, rename to `.snap`.
4. Files no checkpoint needs go: all but the newest `checkpoint_count`
   snapshots, and every xlog whose rows all precede the oldest one kept.

Why a copy of references and not a fork or MVCC read views: Python's
tuples here are immutable `bytes`, so a list of them is a consistent view
that costs 8 bytes a tuple and a few milliseconds per 100,000, and stays
valid while TX replaces them; a fork would copy the interpreter's pages as
refcounts change. The stall is measured in bench/snapshot.py.

A change made in memory whose journal entry is still on its way (an async
procedure's, until it returns) may be in both the snapshot and the next
xlog: every row Styx logs replaces or deletes by key, so replaying it again
gives the same data.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections.abc import Iterator
from typing import Any

import msgpack

from . import cbus
from .box.schema import Schema, snapshot_rows
from .box.space import Space
from .wal import Journal, WalThread
from .xlog import Meta, XlogWriter, encode_header, encode_snapshot_body, file_name, files, name_signature

log = logging.getLogger("styx.checkpoint")

__all__ = ["Checkpointer", "collect_garbage"]

BLOCK = 128 * 1024
INSERT = 2


class Checkpointer:
    def __init__(self, schema: Schema, journal: Journal, wal: WalThread, memtx_dir: str, instance_uuid: str,
                 *, count: int = 2, version: str = "") -> None:
        self.schema = schema
        self.journal = journal
        self.wal = wal
        self.memtx_dir = memtx_dir
        self.instance_uuid = instance_uuid
        self.count = count
        self.version = version
        self._running: asyncio.Future[str] | None = None
        self.last_stall = 0.0  # seconds TX was held by the last checkpoint's copy
        self.checkpoints = 0
        self.interval = 0.0
        self._daemon: asyncio.Task[None] | None = None

    def set_interval(self, seconds: float) -> None:
        """The checkpoint daemon: a checkpoint every `seconds` (0: none), the
        first after a random part of it, as Tarantool's, so that servers
        started together do not checkpoint together."""
        self.interval = seconds
        if self._daemon is not None:
            self._daemon.cancel()
            self._daemon = None
        if seconds:
            self._daemon = asyncio.get_running_loop().create_task(self._run_daemon(seconds))

    async def _run_daemon(self, seconds: float) -> None:
        await asyncio.sleep(seconds * (0.5 + random.random() / 2))
        while True:
            try:
                await self.checkpoint()
            except Exception:  # noqa: BLE001 - a failed checkpoint is logged; the next one tries again
                log.exception("checkpoint failed")
            await asyncio.sleep(seconds)

    def stop(self) -> None:
        self.set_interval(0)

    async def checkpoint(self) -> str:
        """Make a checkpoint; one at a time (a second caller waits for the
        running one, as Tarantool's box.snapshot does). The snapshot's path."""
        if self._running is not None:
            return await asyncio.shield(self._running)
        loop = asyncio.get_running_loop()
        self._running = loop.create_future()
        try:
            path = await self._checkpoint(loop)
        except BaseException as e:
            self._running.set_exception(e)
            self._running.exception()  # retrieved: a waiter may not exist
            raise
        else:
            self._running.set_result(path)
            return path
        finally:
            self._running = None

    async def _checkpoint(self, loop: asyncio.AbstractEventLoop) -> str:
        t0 = time.perf_counter()
        rows = snapshot_rows(self.schema)
        spaces = [(s.id, list(s.tuples())) for s in sorted(self._persistent(), key=lambda s: s.id)]
        self.last_stall = time.perf_counter() - t0
        assert self.journal.back is not None  # wire_wal sets it
        vclock = await cbus.call(self.journal.pipe, self.journal.back, self.wal.begin_checkpoint)
        path = os.path.join(self.memtx_dir, file_name(vclock, "snap"))
        if os.path.exists(path):
            os.utime(path)  # nothing new since: as Tarantool, touch it
        else:
            meta = Meta("SNAP", self.instance_uuid, vclock, version=self.version)
            await loop.run_in_executor(None, _write, self.memtx_dir, meta, rows, spaces)
        self.checkpoints += 1
        n = sum(len(t) for _, t in spaces)
        log.info("checkpoint %s: %d tuples, TX held %.1f ms", os.path.basename(path), n, self.last_stall * 1000)
        collect_garbage(self.memtx_dir, self.wal.writer.wal_dir, self.count, sum(vclock.values()))
        return path

    def _persistent(self) -> Iterator[Space]:
        for space in self.schema.spaces.values():
            if isinstance(space, Space) and not space.flags.get("temporary") and space.indexes:
                yield space


def _write(directory: str, meta: Meta, rows: list[tuple[int, list[Any]]],
           spaces: list[tuple[int, list[bytes]]]) -> None:
    """(In a worker thread.) The snapshot file: system rows, then tuples."""
    w = XlogWriter(directory, meta)
    try:
        packb = msgpack.Packer(use_bin_type=True).pack
        now = time.time()
        lsn = 0
        buf = bytearray()
        for sid, row in rows:
            buf += encode_header(INSERT, lsn=lsn, timestamp=now) + encode_snapshot_body(sid, packb(row))
            lsn += 1
        for sid, tuples in spaces:
            for data in tuples:
                buf += encode_header(INSERT, lsn=lsn, timestamp=now) + encode_snapshot_body(sid, data)
                lsn += 1
                if len(buf) >= BLOCK:
                    w.write_block(bytes(buf))
                    buf.clear()
        if buf:
            w.write_block(bytes(buf))
        w.close()
    except BaseException:
        w.discard()
        raise


def collect_garbage(memtx_dir: str, wal_dir: str, count: int, closed_at: int = 0) -> None:
    """Keep the newest `count` snapshots, and the xlogs they still need.
    `closed_at`: the signature where the last xlog was closed (the
    checkpoint's), if it was."""
    snaps = files(memtx_dir, "snap")
    if not snaps:
        return
    keep = snaps[-max(1, count):]
    for path in snaps[:-len(keep)]:
        os.unlink(path)
        log.info("removed %s", os.path.basename(path))
    oldest = name_signature(keep[0])
    xlogs = files(wal_dir, "xlog")
    # An xlog holds the rows after its own vclock up to the next one's (or,
    # the last one, up to where it was closed): it is needed unless that end
    # is at or before the oldest snapshot kept.
    ends = [name_signature(p) for p in xlogs[1:]]
    if xlogs and closed_at > name_signature(xlogs[-1]):
        ends.append(closed_at)
    for path, end in zip(xlogs, ends, strict=False):
        if end <= oldest:
            os.unlink(path)
            log.info("removed %s", os.path.basename(path))

