"""The WAL thread: a cbus endpoint named `wal` with a writer behind it.

File I/O must not stall TX's event loop, so the WAL is a thread of its own
whatever `--iproto-threads` says (with `wal_mode none` there is nothing to
write, and the endpoint lives in TX's loop). A batch arrives (hop `write`),
is written by the `WalWriter` in this thread, blocking only it, and goes
back to TX on the next hop's pipe. Batches queue on the endpoint while one
is written: that queue is what the next group commit is made of.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from .. import cbus
from .journal import WalBatch
from .writer import WalWriter

__all__ = ["WalThread"]


class WalThread:
    name = "wal"

    def __init__(self, writer: WalWriter) -> None:
        self.writer = writer
        self.loop: asyncio.AbstractEventLoop | None = None
        self.endpoint: cbus.Endpoint | None = None
        self._thread: threading.Thread | None = None

    def write(self, batch: WalBatch) -> None:
        """Hop: write the batch (in this thread); it then goes back to TX."""
        self.writer.write(batch.entries)

    def end_rollback(self) -> None:
        """(In this thread) TX has undone the failed entries and those after
        them: the WAL may write again."""
        self.writer.in_rollback = False

    def begin_checkpoint(self) -> dict[int, int]:
        """(In this thread, behind every batch sent before) close the current
        xlog, so the next write starts one named by this vclock; the
        checkpoint's vclock (Tarantool's `wal_begin_checkpoint`)."""
        self.writer.close()
        return dict(self.writer.vclock)

    def start(self, make_loop: Callable[[], Any] | None = None) -> asyncio.AbstractEventLoop:
        """Start the thread and its loop; returns the loop once it runs."""
        self._thread, self.loop = cbus.start_loop_thread("styx-wal", make_loop or asyncio.new_event_loop)
        return self.loop

    def stop(self) -> None:
        """Stop the thread (after what it holds is written), close the xlog."""
        if self._thread is not None and self.loop is not None:
            done = threading.Event()
            self.loop.call_soon_threadsafe(done.set)  # behind every batch already queued
            done.wait(30)
            cbus.stop_loop_thread(self._thread, self.loop, timeout=30)
            self._thread = None
        self.writer.close()
