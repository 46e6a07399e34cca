"""Journal entries, and TX's side of the WAL (Tarantool's `journal.h` and
`wal_write_async`).

A `JournalEntry` is one committed transaction's redo rows: `(request type,
encoded body, group id)` each, made in TX from the requests as they ran.
The WAL thread gives them LSNs and writes them; the entry comes back with
`lsn` (its last row's) or `error`, and `on_done(entry)` runs in TX.

`Journal.submit(entry)` is the group commit: if the last message staged in
the pipe to the WAL (not yet flushed: this loop pass) is a batch, the
entry joins it; otherwise a new batch is staged. Every transaction
committed in one pass of TX's loop thus leaves in one batch, one block,
one sync; while the WAL writes, the passes' batches queue behind it (as in
Tarantool, whose batch is the pipe's unflushed head). A batch goes to the
WAL thread (hop `write`) and back to TX (hop `complete`), which runs the
entries' callbacks in order.

A failed entry takes every entry submitted after it (`rollback`, Tarantool's
cascading rollback): they may build on what it changed. Their callbacks run
newest first, then its own; the WAL writes nothing meanwhile, until the
`end_rollback` message that follows them in the pipe.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

from .. import cbus

__all__ = ["JournalEntry", "WalBatch", "Journal", "RedoRow", "CascadeRollback"]

RedoRow = tuple[int, bytes, int]  # (request type, encoded body, group id: 1 for a local space)


class JournalEntry:
    __slots__ = ("rows", "on_done", "lsn", "error", "data", "done")

    def __init__(self, rows: list[RedoRow], on_done: Callable[[JournalEntry], Any], data: Any = None) -> None:
        self.rows = rows
        self.on_done = on_done
        self.data = data  # the submitter's, for its callback
        self.lsn = 0
        self.error: BaseException | None = None
        self.done = False  # its callback ran (early, if a rollback took it)


class CascadeRollback(Exception):
    """An entry written after a failed one is not written either (Tarantool's
    cascading rollback: it may depend on what was undone)."""


class WalBatch(cbus.Cmsg):
    __slots__ = ("entries",)

    def __init__(self, route: tuple[cbus.Hop, ...]) -> None:
        super().__init__(route)
        self.entries: list[JournalEntry] = []


class Journal:
    """TX's handle on the WAL: `submit`, and the route of a batch."""

    def __init__(self, pipe: cbus.Pipe, route: tuple[cbus.Hop, ...], back: cbus.Pipe | None = None) -> None:
        self.pipe = pipe
        self.route = route
        self.back = back  # the WAL's pipe to TX (for cbus.call)
        self.submitted = 0
        self.pending: collections.deque[JournalEntry] = collections.deque()  # not back yet, in order
        self.end_rollback: Callable[[], None] | None = None  # the WAL's (wire_wal sets it)

    @property
    def in_flight(self) -> int:
        return len(self.pending)

    def submit(self, entry: JournalEntry) -> None:
        self.submitted += 1
        self.pending.append(entry)
        batch = self.pipe.tail()
        if not isinstance(batch, WalBatch):
            batch = WalBatch(self.route)
            self.pipe.push(batch)
        batch.entries.append(entry)

    def complete(self, batch: WalBatch) -> None:
        """Back in TX: the entries' callbacks, in the order they were submitted.
        The first failed one takes every entry after it with it: `rollback`."""
        pending = self.pending
        for entry in batch.entries:
            if pending and pending[0] is entry:
                pending.popleft()
            if entry.done:
                continue  # a rollback already answered it
            if entry.error is not None:
                self.rollback(entry)
                continue
            entry.done = True
            entry.on_done(entry)

    def rollback(self, failed: JournalEntry) -> None:
        """Tarantool's cascading rollback: the entries submitted after `failed`
        fail too, newest first (each may build on the one before), then
        `failed` itself; then the WAL may write again. Entries submitted
        from now on follow the WAL's end of rollback in the pipe."""
        later = list(self.pending)
        self.pending.clear()
        for entry in reversed(later):
            if not entry.done:
                entry.error = CascadeRollback()
                entry.done = True
                entry.on_done(entry)
        failed.done = True
        failed.on_done(failed)
        if self.end_rollback is not None:
            cbus.send(self.pipe, self.end_rollback)
