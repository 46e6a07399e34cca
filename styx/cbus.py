"""cbus: messages that travel between event loops along a route of hops.

This is Tarantool's `lib/core/cbus.c` in Python, and it knows nothing about
iproto. The vocabulary is the same:

- An **Endpoint** is a named consumer: a queue drained in its owner's event
  loop. Registering it in a `Bus` makes it findable by name.
- A **Pipe** (cpipe) is a one-way channel from one producer loop to one
  endpoint. The producer *stages* messages and flushes them once per
  event-loop iteration, or at once when `max_input` messages are staged.
- A **Feed** is libev's `ev_feed_event` for one loop: work deferred to the
  end of the current pass. A pipe feeds its flush when the first message of
  a batch is staged; the feed runs once per iteration (one `call_soon`), and
  also right after an endpoint delivers a batch, so that what the batch
  caused (replies going back, sockets to flush) leaves in the same pass.
- A **Cmsg** carries a **route**: a tuple of **Hop**s, each "a function to run
  at this stop, and the pipe to the next stop" (None for the last stop).
  Delivering a message runs the current hop's function, then pushes the
  message onto the hop's pipe. The pipe is read *before* the call, since the
  last hop may recycle the message.

Two deliveries, one abstraction. A pipe whose endpoint lives in the producer's
own loop is *local*: a flush hands the batch straight to the consumer. A
cross-thread pipe splices the batch onto the endpoint's queue under its lock
and wakes the consumer (`call_soon_threadsafe`) only if the queue was empty:
the consumer is woken once per batch, never once per message, and `wakeups`
counts it (Tarantool's cbus EVENTS). Placement is configuration: routes and
messages do not change when a pipe becomes local.

Fibers. A hop function may return an awaitable instead of None: the hop then
continues in a fiber (see `Endpoint.spawn`), and the message moves on to the
next stop when the awaitable completes. Nothing else in cbus knows fibers.
A hop may also return `PARK`: whoever it gave the message to (the WAL's
journal, say) calls `forward` when its work is done; no fiber is needed.

Delivery is the hottest loop in Styx (every request crosses it twice), so
it is compiled when it can be: `styx/_cbus.c` (built by setup.py, optional;
STYX_PURE=1 leaves it out) is `py_deliver`, its twin, in C. The tests run
both (tests/unit/test_cbus.py).

Free-threaded CPython: the endpoint queue is the only state two threads
touch, and it is guarded by the endpoint's lock. A pipe's staging list
belongs to its producer thread.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NamedTuple

log = logging.getLogger("styx.cbus")

__all__ = ["Bus", "Cmsg", "Endpoint", "Feed", "Hop", "Pipe", "PARK", "call", "forward", "send", "start_loop_thread",
           "stop_loop_thread"]


class Hop(NamedTuple):
    f: Callable[[Any], Any]
    pipe: Pipe | None


class Cmsg:
    """A message header: the route and the index of the current hop."""

    __slots__ = ("route", "hop")

    def __init__(self, route: tuple[Hop, ...] = ()) -> None:
        self.route = route
        self.hop = 0


PARK: Any = type("Park", (), {"__repr__": lambda self: "PARK"})()
"""A hop's answer: the message waits; its holder calls `forward(msg)`."""


def forward(msg: Cmsg) -> None:
    """Send a message whose hop finished in a fiber on to its next stop."""
    pipe = msg.route[msg.hop].pipe
    if pipe is not None:
        msg.hop += 1
        pipe.push(msg)


class Feed:
    """Callbacks deferred to the end of this loop pass, each run once."""

    __slots__ = ("loop", "_pending", "_scheduled", "_running", "runs")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._pending: list[Callable[[], Any]] = []
        self._scheduled = False
        self._running = False
        self.runs = 0

    def defer(self, fn: Callable[[], Any]) -> None:
        self._pending.append(fn)
        if not self._scheduled and not self._running:
            self._scheduled = True
            self.loop.call_soon(self.run)

    def run(self) -> None:
        self._scheduled = False
        if self._running:
            return  # the outer run picks up what was added
        self._running = True
        try:
            while self._pending:
                self.runs += 1
                pending, self._pending = self._pending, []
                for fn in pending:
                    fn()
        finally:
            self._running = False


class Endpoint:
    """The consumer side: a named queue drained in `loop`."""

    def __init__(
        self,
        name: str,
        loop: asyncio.AbstractEventLoop,
        spawn: Callable[[Awaitable[Any], Cmsg], None] | None = None,
        feed: Feed | None = None,
        on_error: Callable[[Cmsg, Exception], None] | None = None,
    ) -> None:
        self.name = name
        self.loop = loop
        self.spawn = spawn
        self.on_error = on_error
        self.feed = feed or Feed(loop)
        self._lock = threading.Lock()
        self._output: list[Cmsg] = []
        self.wakeups = 0  # times the consumer was woken (cbus EVENTS)
        self.delivered = 0

    def put(self, batch: list[Cmsg]) -> None:
        """Called by a pipe flushing from another thread."""
        with self._lock:
            was_empty = not self._output
            self._output.extend(batch)
        if was_empty:
            try:
                self.loop.call_soon_threadsafe(self._drain)
            except RuntimeError:
                pass  # the consumer loop is closed: the messages die with it

    def process(self, batch: list[Cmsg]) -> None:
        """Deliver a batch in the consumer loop (`deliver`)."""
        self.wakeups += 1
        self.delivered += len(batch)
        deliver(batch, self.spawn, self._failed)

    def _failed(self, msg: Cmsg, error: Exception) -> None:
        """A hop raised: one bad message must not stop the batch."""
        if self.on_error is None:
            log.error("cbus endpoint %s: a hop failed", self.name, exc_info=error)
        else:
            self.on_error(msg, error)

    def _drain(self) -> None:
        with self._lock:
            batch = self._output
            self._output = []
        if batch:
            self.process(batch)
            self.feed.run()


def py_deliver(batch: list[Cmsg], spawn: Callable[[Awaitable[Any], Cmsg], None] | None,
               failed: Callable[[Cmsg, Exception], None]) -> None:
    """Run each message's current hop, and send it on to the next stop (a
    hop that returned an awaitable sends it on when that completes:
    `forward`; one that returned PARK, when its holder calls `forward`).
    The hop's pipe is read before the call, since the last hop may recycle
    the message. An Exception goes to `failed`, and the batch goes on."""
    for msg in batch:
        try:
            f, pipe = msg.route[msg.hop]
            waiter = f(msg)
            if waiter is not None:
                if waiter is PARK:
                    continue
                if spawn is None:
                    raise TypeError(f"{f!r} returned an awaitable on an endpoint without fibers")
                spawn(waiter, msg)  # `forward` runs when it completes
            elif pipe is not None:
                msg.hop += 1
                pipe.push(msg)
        except Exception as e:  # noqa: BLE001 - one bad message must not stop the batch
            failed(msg, e)


class Pipe:
    """A one-way channel from the producer loop (`feed.loop`) to `endpoint`."""

    __slots__ = ("endpoint", "feed", "max_input", "_input", "local", "flushes", "messages")

    def __init__(self, endpoint: Endpoint, feed: Feed, max_input: int = 1 << 30) -> None:
        self.endpoint = endpoint
        self.feed = feed
        self.max_input = max_input
        self._input: list[Cmsg] = []
        self.local = endpoint.loop is feed.loop
        self.flushes = 0
        # Messages that left, counted per flush (not per push: the hot path
        # pays one addition per batch). Written by the producer thread only;
        # readers elsewhere (the river, styx/river/) see an int a pass stale.
        self.messages = 0

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self.feed.loop

    def push(self, msg: Cmsg) -> None:
        """Stage a message; it leaves at the end of this loop pass."""
        staged = self._input
        staged.append(msg)
        n = len(staged)
        if n == 1:
            self.feed.defer(self.flush)
        elif n >= self.max_input:
            self.flush()

    def push_many(self, msgs: Sequence[Cmsg]) -> None:
        """`push` each of `msgs`, in one step when they stay under `max_input`."""
        staged = self._input
        if len(staged) + len(msgs) >= self.max_input:
            for msg in msgs:
                self.push(msg)
            return
        if not staged:
            self.feed.defer(self.flush)
        staged.extend(msgs)

    def flush(self) -> None:
        batch = self._input
        if not batch:
            return
        self._input = []
        self.flushes += 1
        self.messages += len(batch)
        if self.local:
            self.endpoint.process(batch)
        else:
            self.endpoint.put(batch)

    @property
    def staged(self) -> int:
        return len(self._input)

    def tail(self) -> Cmsg | None:
        """The last message staged and not flushed yet (Tarantool's
        `cpipe` head, which the WAL's group commit appends to)."""
        return self._input[-1] if self._input else None


def start_loop_thread(name: str, make_loop: Callable[[], asyncio.AbstractEventLoop]
                      ) -> tuple[threading.Thread, asyncio.AbstractEventLoop]:
    """A thread running a new event loop forever (Tarantool's cord): an
    endpoint's home. Returns once the loop exists."""
    ready = threading.Event()
    box: list[asyncio.AbstractEventLoop] = []

    def run() -> None:
        loop = make_loop()
        box.append(loop)
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.close()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    ready.wait()
    return thread, box[0]


def stop_loop_thread(thread: threading.Thread, loop: asyncio.AbstractEventLoop, timeout: float = 5) -> None:
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=timeout)


class Bus:
    """The registry of endpoints by name (one per server, not per process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._endpoints: dict[str, Endpoint] = {}

    def register(self, endpoint: Endpoint) -> Endpoint:
        with self._lock:
            if endpoint.name in self._endpoints:
                raise ValueError(f"endpoint {endpoint.name!r} already exists")
            self._endpoints[endpoint.name] = endpoint
        return endpoint

    def endpoint(self, name: str) -> Endpoint:
        with self._lock:
            return self._endpoints[name]

    def pipe(self, name: str, feed: Feed, max_input: int = 1 << 30) -> Pipe:
        return Pipe(self.endpoint(name), feed, max_input)


class _RunMsg(Cmsg):
    __slots__ = ("func", "args")

    def __init__(self, func: Callable[..., Any], args: tuple[Any, ...]) -> None:
        super().__init__((Hop(_run_hop, None),))
        self.func = func
        self.args = args


def _run_hop(msg: _RunMsg) -> None:
    msg.func(*msg.args)


def send(pipe: Pipe, func: Callable[..., Any], *args: Any) -> None:
    """Run `func(*args)` in the pipe's consumer loop; do not wait (a one-hop route)."""
    pipe.push(_RunMsg(func, args))


class _CallMsg(Cmsg):
    __slots__ = ("func", "args", "result", "error", "future")

    def __init__(self, caller: Pipe, func: Callable[..., Any], args: tuple[Any, ...]) -> None:
        super().__init__((Hop(_call_run, caller), Hop(_call_done, None)))
        self.func = func
        self.args = args
        self.result: Any = None
        self.error: BaseException | None = None
        self.future: asyncio.Future[Any] = caller.endpoint.loop.create_future()


def _call_run(msg: _CallMsg) -> None:
    try:
        msg.result = msg.func(*msg.args)
    except BaseException as e:  # noqa: BLE001 - carried back to the caller
        msg.error = e


def _call_done(msg: _CallMsg) -> None:
    fut = msg.future
    if fut.done():
        return  # the caller timed out and went away
    if msg.error is not None:
        fut.set_exception(msg.error)
    else:
        fut.set_result(msg.result)


async def call(
    callee: Pipe, caller: Pipe, func: Callable[..., Any], *args: Any, timeout: float | None = None
) -> Any:
    """Run `func(*args)` in the callee's loop and wait for the result (cbus_call).

    `callee` goes from the caller's loop to the callee; `caller` comes back.
    The calling fiber waits; everything else in its loop goes on.
    """
    msg = _CallMsg(caller, func, args)
    callee.push(msg)
    callee.flush()  # a synchronous call should not wait for the end of the iteration
    if timeout is None:
        return await msg.future
    return await asyncio.wait_for(asyncio.shield(msg.future), timeout)


def _compiled() -> Callable[..., None] | None:
    if os.environ.get("STYX_PURE"):
        return None
    try:
        from . import _cbus  # type: ignore[attr-defined]  # built by setup.py, when it can be
    except ImportError:
        return None
    _cbus.configure(Cmsg, Pipe, PARK)
    return _cbus.deliver


# The compiled twin does the same (tests/unit/test_cbus.py).
deliver = _compiled() or py_deliver
