"""Fibers: where a request that may yield runs.

Tarantool runs every request in a fiber from the TX fiber pool; a request
that never yields is served back to back by one fiber. Python has no cheap
stackful coroutines, so Styx splits on what the request is:

- A request that cannot yield (PING, AUTH, a plain `def` procedure, ...)
  runs inline, in the cbus delivery loop of TX: no task, no switch. This is
  the pool fiber serving messages back to back.
- A request that may yield (an `async def` procedure) runs in its own
  asyncio Task: the fiber. Its message moves on when the task finishes; the
  TX loop serves other requests meanwhile. `FiberPool` caps how many run at
  once (Tarantool: 5 × net_msg_max) and queues the rest in FIFO order.

`current` is fiber-local storage (Tarantool's `fiber->storage`): the session
and the sync of the request being served, for `box.session.push` and
friends. Inline requests set and reset it around the call; a task sets it in
its own context, which asyncio keeps separate per task.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import logging
from collections.abc import Awaitable
from typing import Any

from .. import cbus

log = logging.getLogger("styx.tx")

__all__ = ["Fiber", "FiberPool", "current"]


class Fiber:
    """Fiber-local storage: who is being served, and the transaction the
    fiber's box calls belong to (its stream's, or one `box.begin()` made)."""

    __slots__ = ("tx", "session", "sync", "stream_id", "txn", "changes", "user")

    def __init__(self, tx: Any, session: Any, sync: int, stream_id: int = 0, txn: Any = None) -> None:
        self.tx = tx
        self.session = session
        self.sync = sync
        self.stream_id = stream_id
        self.txn = txn
        self.changes: list[Any] | None = None  # with a WAL: the call's changes, to journal (tx/commit.py)
        self.user: Any = None  # box.session.su(user, fn): whose rights fn runs with

    def take_changes(self) -> list[Any]:
        """The call's changes, to journal; later ones (a task it left running)
        are no longer this call's."""
        changes, self.changes = self.changes or [], None
        return changes


current: contextvars.ContextVar[Fiber | None] = contextvars.ContextVar("styx_fiber", default=None)


class FiberPool:
    """Runs the awaitables hop functions return, at most `max_size` at once."""

    def __init__(self, loop: asyncio.AbstractEventLoop, max_size: int) -> None:
        self.loop = loop
        self.max_size = max_size
        self.running = 0
        self._queue: collections.deque[tuple[Awaitable[Any], cbus.Cmsg]] = collections.deque()
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, waiter: Awaitable[Any], msg: cbus.Cmsg) -> None:
        if self.running >= self.max_size:
            if not self._queue:
                log.warning("fiber pool size %d reached on endpoint tx", self.max_size)
            self._queue.append((waiter, msg))
            return
        self._start(waiter, msg)

    def _start(self, waiter: Awaitable[Any], msg: cbus.Cmsg) -> None:
        self.running += 1
        task = self.loop.create_task(self._run(waiter, msg))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, waiter: Awaitable[Any], msg: cbus.Cmsg) -> None:
        try:
            await waiter
        except Exception:  # noqa: BLE001 - a handler bug must not lose the message
            log.exception("request fiber failed")
        finally:
            self.running -= 1
            cbus.forward(msg)
            if self._queue:
                self._start(*self._queue.popleft())

    def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()
