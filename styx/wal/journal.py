"""Journal entries, and TX's side of the WAL (Tarantool's `journal.h` and
`wal_write_async`).

A `JournalEntry` is one committed transaction's redo rows: `(request type,
encoded body, group id)` each, made in TX from the requests as they ran.
The WAL thread gives them LSNs and writes them; the entry comes back with
`lsn` (its last row's) or `error`, and `on_done(entry)` runs in TX.

`Journal.submit(entry)` is the group commit: if the last message staged in
the pipe to the WAL (not yet flushed: this loop pass) is a batch, the
entry joins it; otherwise a new batch is staged. Every transaction that
commits while the WAL is busy thus leaves in one batch, one block, one
sync. A batch goes to the WAL thread (hop `write`) and back to TX (hop
`complete`), which runs the entries' callbacks in order.

`wal_mode none` keeps the same path without a thread: the batch is
"written" by a writer that only assigns LSNs, in TX.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import cbus

__all__ = ["JournalEntry", "WalBatch", "Journal", "RedoRow"]

RedoRow = tuple[int, bytes, int]  # (request type, encoded body, group id: 1 for a local space)


class JournalEntry:
    __slots__ = ("rows", "on_done", "lsn", "error", "data")

    def __init__(self, rows: list[RedoRow], on_done: Callable[[JournalEntry], Any], data: Any = None) -> None:
        self.rows = rows
        self.on_done = on_done
        self.data = data  # the submitter's, for its callback
        self.lsn = 0
        self.error: BaseException | None = None


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
        self.in_flight = 0  # entries not back yet

    def submit(self, entry: JournalEntry) -> None:
        self.submitted += 1
        self.in_flight += 1
        batch = self.pipe.tail()
        if not isinstance(batch, WalBatch):
            batch = WalBatch(self.route)
            self.pipe.push(batch)
        batch.entries.append(entry)

    def complete(self, batch: WalBatch) -> None:
        """Back in TX: the entries' callbacks, in the order they were submitted."""
        for entry in batch.entries:
            self.in_flight -= 1
            entry.on_done(entry)
