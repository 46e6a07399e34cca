"""The WAL's disk side (Tarantool's `wal_write_to_disk`), run in the WAL thread.

`WalWriter.write(entries)` takes one batch of journal entries (every
transaction TX committed while the previous batch was on disk: the group
commit), gives their rows LSNs, the replica id, the transaction's id (its
first LSN) and the commit flag on its last row, stamps the time, and writes
them as one block (split at a transaction boundary past 128 KiB, as
Tarantool's autocommit threshold does). In `fsync` mode the file is opened
O_SYNC, so the write returns when the block is on disk: one sync per batch.
Then it returns; the thread sends the batch back to TX.

Files: the current xlog is named by the vclock when it was opened, and
carries the previous one's vclock (`PrevVClock`). Before a batch, a file
that reached `max_size` is closed (EOF marker, fsync) and the next is
opened lazily by the batch's first write, as Tarantool does. A failed write
(disk full, an I/O error) cuts the file back to its size before the batch,
and every entry of the batch fails: nothing half-written stays, and the
LSNs are not spent.

Risks: a write that fails after part of it reached the disk leaves bytes
that `truncate` removes; if truncate fails too, the file is closed and the
next batch opens a new one. A torn block at a crash is dropped by recovery.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from ..protocol.accel import accel
from ..xlog import Meta, XlogWriter, autocommit_header, encode_header
from .journal import CascadeRollback, JournalEntry

log = logging.getLogger("styx.wal")

__all__ = ["WalWriter", "WAL_MODES", "BLOCK_AUTOCOMMIT"]

WAL_MODES = ("none", "write", "fsync")
BLOCK_AUTOCOMMIT = 128 * 1024  # XLOG_TX_AUTOCOMMIT_THRESHOLD


def py_encode_batch(entries: Sequence[JournalEntry], lsn: int, replica_id: int, now: float,
                    block_max: int) -> tuple[list[bytes], int]:
    """The rows of a batch, as blocks: each entry's rows get the LSNs after
    `lsn` (the entry's `lsn` is set to its last one), the replica id (0 for
    a local space's), the time, and a multi-row entry its TSN (its first
    LSN) and the commit flag on its last row. A block is cut after the
    entry that takes it to `block_max` bytes. Returns (blocks, last LSN).
    The accelerator's `encode_wal_batch` gives the same (tests/unit/test_accel.py)."""
    payload = bytearray()
    blocks = []
    header = autocommit_header(replica_id, now)
    for entry in entries:
        rows = entry.rows
        if len(rows) == 1 and not rows[0][2]:  # the common row: one statement, not local
            lsn += 1
            payload += header(rows[0][0], lsn)
            payload += rows[0][1]
        else:
            tsn = lsn + 1
            last = len(rows) - 1
            for i, (type_, body, group_id) in enumerate(rows):
                lsn += 1
                payload += encode_header(type_, replica_id=0 if group_id else replica_id, group_id=group_id,
                                         lsn=lsn, timestamp=now, tsn=tsn if last else None, is_commit=i == last)
                payload += body
        entry.lsn = lsn
        if len(payload) >= block_max:
            blocks.append(bytes(payload))
            payload.clear()
    if payload:
        blocks.append(bytes(payload))
    return blocks, lsn


encode_batch = accel.encode_wal_batch if accel is not None else py_encode_batch


class WalWriter:
    def __init__(self, wal_dir: str, instance_uuid: str, vclock: dict[int, int], *, replica_id: int = 1,
                 mode: str = "write", max_size: int = 256 << 20, version: str = "",
                 prev_vclock: dict[int, int] | None = None) -> None:
        if mode not in WAL_MODES:
            raise ValueError(f"wal_mode: {mode!r} is not one of {', '.join(WAL_MODES)}")
        self.wal_dir = wal_dir
        self.instance_uuid = instance_uuid
        self.replica_id = replica_id
        self.vclock = dict(vclock)
        self.mode = mode
        self.max_size = max_size
        self.version = version
        self.prev_vclock = prev_vclock  # the vclock of the last xlog before ours, if any
        self.file: XlogWriter | None = None
        # Counters (what was written, and how).
        self.blocks = 0
        self.batches = 0
        self.rows = 0
        self.bytes = 0
        self.failures = 0
        self.in_rollback = False  # a batch failed; TX has not yet undone the ones after it

    @property
    def lsn(self) -> int:
        return self.vclock.get(self.replica_id, 0)

    def write(self, entries: Sequence[JournalEntry]) -> None:
        """Write one batch; set each entry's `lsn` (its last row's) or `error`."""
        if self.mode == "none":
            self._assign(entries, time.time())
            return
        if self.in_rollback:  # after a failure, until TX has undone what followed it
            for entry in entries:
                entry.error = CascadeRollback()
            return
        try:
            self._rotate_if_full()
            f = self._file()
            start = f.size
            blocks, lsn = encode_batch(entries, self.lsn, self.replica_id, time.time(), BLOCK_AUTOCOMMIT)
            try:
                for block in blocks:
                    self.bytes += f.write_block(block)
            except OSError:
                self._cut(f, start)
                raise
        except OSError as e:
            self.failures += 1
            self.in_rollback = True
            log.error("WAL write failed (%s): %d transaction(s) rolled back", e, len(entries))
            for entry in entries:
                entry.error = e
            return
        self.rows += lsn - self.lsn  # one LSN a row
        self.vclock[self.replica_id] = lsn
        self.blocks += len(blocks)
        self.batches += 1

    def _assign(self, entries: Sequence[JournalEntry], now: float) -> None:
        """wal_mode none: LSNs advance, nothing is written (as Tarantool)."""
        lsn = self.lsn
        for entry in entries:
            lsn += len(entry.rows)
            entry.lsn = lsn
        self.vclock[self.replica_id] = lsn

    def _file(self) -> XlogWriter:
        if self.file is None:
            meta = Meta("XLOG", self.instance_uuid, dict(self.vclock), prev_vclock=self.prev_vclock,
                        version=self.version)
            self.file = XlogWriter(self.wal_dir, meta, sync=self.mode == "fsync")
            self.prev_vclock = dict(self.vclock)
        return self.file

    def _rotate_if_full(self) -> None:
        if self.file is not None and self.file.size >= self.max_size:
            self.close()

    def _cut(self, f: XlogWriter, size: int) -> None:
        try:
            f.truncate(size)
        except OSError as e:
            log.error("WAL: cannot cut %s back after a failed write (%s); closing it", f.path, e)
            try:
                f.close()
            except OSError:
                pass
            self.file = None

    def close(self) -> None:
        """Close the current xlog (EOF marker, fsync); the next write opens one."""
        if self.file is not None:
            f, self.file = self.file, None
            try:
                f.close()
            except OSError as e:
                log.error("WAL: closing %s failed: %s", f.path, e)
