"""styx.cbus: routes of hops across two real event loops in two threads,
local delivery, batching, max_input, call/send, and hops that continue in
a fiber."""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from styx import cbus
from styx.cbus import Bus, Cmsg, Endpoint, Feed, Hop, Pipe

WAIT = 5.0


class LoopThread:
    """An asyncio event loop running forever in its own thread."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, fn: Callable[[], Any]) -> Any:
        """Run `fn` as one callback of this loop (one iteration) and return its result."""
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def cb() -> None:
            try:
                fut.set_result(fn())
            except BaseException as e:  # noqa: BLE001 - handed to the waiting thread
                fut.set_exception(e)

        self.loop.call_soon_threadsafe(cb)
        return fut.result(WAIT)

    def run_coro(self, coro: Awaitable[Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(WAIT)  # type: ignore[arg-type]  # any awaitable the test gives

    def spawn(self, waiter: Awaitable[Any], msg: Cmsg) -> None:
        """A minimal fiber pool: run the awaitable, then send the message on."""

        async def run() -> None:
            await waiter
            cbus.forward(msg)

        self.loop.create_task(run())

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(WAIT)
        self.loop.close()


class Two:
    """Loops A and B, an endpoint in each, a pipe each way."""

    def __init__(self, max_input: int = 1 << 30) -> None:
        self.a = LoopThread("loop-a")
        self.b = LoopThread("loop-b")
        self.feed_a = Feed(self.a.loop)
        self.feed_b = Feed(self.b.loop)
        self.bus = Bus()
        self.ep_a = self.bus.register(Endpoint("a", self.a.loop, spawn=self.a.spawn, feed=self.feed_a))
        self.ep_b = self.bus.register(Endpoint("b", self.b.loop, spawn=self.b.spawn, feed=self.feed_b))
        self.a_to_b = self.bus.pipe("b", self.feed_a, max_input)
        self.b_to_a = self.bus.pipe("a", self.feed_b, max_input)

    def stop(self) -> None:
        self.a.stop()
        self.b.stop()


@pytest.fixture
def two() -> Iterator[Two]:
    t = Two()
    yield t
    t.stop()


class Trace(Cmsg):
    __slots__ = ("log", "done")

    def __init__(self, route: tuple[Hop, ...]) -> None:
        super().__init__(route)
        self.log: list[tuple[str, str, int]] = []
        self.done = threading.Event()


def hop(name: str, last: bool = False) -> Callable[[Trace], None]:
    def f(msg: Trace) -> None:
        msg.log.append((name, threading.current_thread().name, msg.hop))
        if last:
            msg.done.set()

    return f


# -- routes ---------------------------------------------------------------------------


def test_pipes_are_local_or_not(two: Two) -> None:
    assert two.a_to_b.local is False and two.b_to_a.local is False
    assert two.a_to_b.endpoint is two.ep_b and two.a_to_b.loop is two.a.loop
    assert Pipe(two.ep_a, two.feed_a).local is True


def test_route_of_several_hops_across_two_threads(two: Two) -> None:
    route = (
        Hop(hop("one"), two.b_to_a),  # runs in B, then to A
        Hop(hop("two"), two.a_to_b),  # runs in A, then to B
        Hop(hop("three"), two.b_to_a),  # B, then A
        Hop(hop("four", last=True), None),  # A: the end
    )
    msg = Trace(route)
    two.a.run(lambda: two.a_to_b.push(msg))
    assert msg.done.wait(WAIT)
    assert msg.log == [("one", "loop-b", 0), ("two", "loop-a", 1), ("three", "loop-b", 2), ("four", "loop-a", 3)]
    assert msg.hop == 3
    assert two.ep_b.delivered == 2 and two.ep_a.delivered == 2
    assert two.a_to_b.flushes == 2 and two.b_to_a.flushes == 2


def test_same_route_local_delivery() -> None:
    """The same route with every pipe local: all hops in one thread, in order."""
    lt = LoopThread("solo")
    try:
        feed = Feed(lt.loop)
        ep = Endpoint("solo", lt.loop, feed=feed)
        pipe = Pipe(ep, feed)
        assert pipe.local
        route = (Hop(hop("one"), pipe), Hop(hop("two"), pipe), Hop(hop("three"), pipe),
                 Hop(hop("four", last=True), None))
        msg = Trace(route)
        lt.run(lambda: pipe.push(msg))
        assert msg.done.wait(WAIT)
        assert msg.log == [("one", "solo", 0), ("two", "solo", 1), ("three", "solo", 2), ("four", "solo", 3)]
        assert ep.delivered == 4 and pipe.flushes == 4
        # Nothing is delivered at push time: the batch leaves at the end of the pass.
        msg2 = Trace((Hop(hop("x", last=True), None),))
        assert lt.run(lambda: (pipe.push(msg2), list(msg2.log), pipe.staged)[1:]) == ([], 1)
        assert msg2.done.wait(WAIT)
        assert pipe.staged == 0
    finally:
        lt.stop()


def test_last_hop_may_be_the_first(two: Two) -> None:
    msg = Trace((Hop(hop("only", last=True), None),))
    two.a.run(lambda: two.a_to_b.push(msg))
    assert msg.done.wait(WAIT)
    assert msg.log == [("only", "loop-b", 0)]


# -- batching ----------------------------------------------------------------------------


def _wait_for(cond: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.002)


def _count_route(counter: list[int]) -> tuple[Hop, ...]:
    def f(msg: Cmsg) -> None:
        counter[0] += 1

    return (Hop(f, None),)


def test_batching_one_wakeup_for_a_thousand(two: Two) -> None:
    counter = [0]
    route = _count_route(counter)

    def push_all() -> None:
        for _ in range(1000):
            two.a_to_b.push(Cmsg(route))
        assert two.a_to_b.staged == 1000  # nothing left yet: one flush at the end of the pass

    two.a.run(push_all)
    _wait_for(lambda: two.ep_b.delivered == 1000)
    assert two.b.run(lambda: counter[0]) == 1000
    assert two.a_to_b.flushes == 1
    assert two.ep_b.wakeups == 1


def test_max_input_forces_early_flush() -> None:
    t = Two(max_input=100)
    try:
        counter = [0]
        route = _count_route(counter)
        staged: list[int] = []

        def push_all() -> None:
            for _ in range(1000):
                t.a_to_b.push(Cmsg(route))
                staged.append(t.a_to_b.staged)
            return None

        t.a.run(push_all)
        _wait_for(lambda: t.ep_b.delivered == 1000)
        assert t.a_to_b.flushes == 10  # every 100th push flushed at once
        assert max(staged) == 99 and staged[99] == 0 and staged[100] == 1
        assert 1 <= t.ep_b.wakeups <= 10
        assert t.b.run(lambda: counter[0]) == 1000
        # 1050: ten early flushes, then the rest at the end of the pass.
        t.a.run(lambda: [t.a_to_b.push(Cmsg(route)) for _ in range(50)])
        _wait_for(lambda: t.ep_b.delivered == 1050)
        assert t.a_to_b.flushes == 11
    finally:
        t.stop()



def test_push_many_is_push_of_each() -> None:
    # Under max_input: one step, one flush at the end of the pass, order
    # kept after what was staged before. Reaching max_input: each message
    # is pushed, so the early flushes are where single pushes make them.
    t = Two(max_input=100)
    try:
        got: list[int] = []
        route = (Hop(lambda m: got.append(m.n), None),)

        class N(Cmsg):
            __slots__ = ("n",)

            def __init__(self, n: int) -> None:
                super().__init__(route)
                self.n = n

        def under() -> tuple[int, int]:
            t.a_to_b.push(N(0))
            t.a_to_b.push_many([N(1), N(2), N(3)])
            return t.a_to_b.staged, t.a_to_b.flushes

        assert t.a.run(under) == (4, 0)
        _wait_for(lambda: len(got) == 4)
        assert got == [0, 1, 2, 3] and t.a_to_b.flushes == 1

        def over() -> list[int]:
            t.a_to_b.push_many([N(i) for i in range(4, 254)])
            return [t.a_to_b.staged, t.a_to_b.flushes]

        assert t.a.run(over) == [50, 3]  # two early flushes of 100, then 50 staged
        _wait_for(lambda: len(got) == 254)
        assert got == list(range(254)) and t.a_to_b.flushes == 4
    finally:
        t.stop()

def test_feed_runs_deferred_work_once_per_pass() -> None:
    lt = LoopThread("feed")
    try:
        feed = Feed(lt.loop)
        calls: list[str] = []

        def in_loop() -> tuple[list[str], int]:
            feed.defer(lambda: calls.append("x"))
            feed.defer(lambda: (calls.append("y"), feed.defer(lambda: calls.append("z"))))
            return list(calls), feed.runs

        assert lt.run(in_loop) == ([], 0)  # deferred: nothing ran yet
        _wait_for(lambda: len(calls) == 3)
        assert calls == ["x", "y", "z"]  # work deferred while running runs in the same pass
        assert lt.run(lambda: feed.runs) == 2
    finally:
        lt.stop()


# -- call and send -----------------------------------------------------------------------


def test_call_returns_result_from_other_loop(two: Two) -> None:
    def work(x: int, y: int) -> tuple[int, str]:
        return x + y, threading.current_thread().name

    async def caller() -> Any:
        return await cbus.call(two.a_to_b, two.b_to_a, work, 2, 3)

    assert two.a.run_coro(caller()) == (5, "loop-b")


def test_call_raises_the_exception(two: Two) -> None:
    class Boom(Exception):
        pass

    def work() -> None:
        raise Boom("no")

    async def caller() -> Any:
        try:
            await cbus.call(two.a_to_b, two.b_to_a, work)
        except Boom as e:
            return ("raised", str(e), threading.current_thread().name)
        return "no exception"

    assert two.a.run_coro(caller()) == ("raised", "no", "loop-a")


def test_call_timeout(two: Two) -> None:
    async def caller() -> Any:
        try:
            await cbus.call(two.a_to_b, two.b_to_a, time.sleep, 0.3, timeout=0.05)
        except TimeoutError:
            return "timeout"
        return "no timeout"

    assert two.a.run_coro(caller()) == "timeout"
    # The late answer finds the caller gone and is dropped quietly; later calls still work.
    async def again() -> Any:
        return await cbus.call(two.a_to_b, two.b_to_a, lambda: "ok")

    assert two.a.run_coro(again()) == "ok"


def test_send_runs_in_other_loop(two: Two) -> None:
    seen: list[tuple[Any, ...]] = []
    done = threading.Event()

    def work(*args: Any) -> None:
        seen.append((*args, threading.current_thread().name))
        done.set()

    two.a.run(lambda: cbus.send(two.a_to_b, work, 1, "x"))
    assert done.wait(WAIT)
    assert seen == [(1, "x", "loop-b")]


# -- fibers -------------------------------------------------------------------------------


def test_hop_returning_a_coroutine_continues_when_it_completes(two: Two) -> None:
    events: list[tuple[str, str]] = []
    done = threading.Event()

    def slow_hop(msg: Cmsg) -> Awaitable[None]:
        events.append(("slow-hop", threading.current_thread().name))

        async def body() -> None:
            await asyncio.sleep(0.05)
            events.append(("slow-end", threading.current_thread().name))

        return body()

    def fast_hop(msg: Cmsg) -> None:
        events.append(("fast", threading.current_thread().name))

    def after(msg: Cmsg) -> None:
        events.append(("after", threading.current_thread().name))
        done.set()

    slow = Cmsg((Hop(slow_hop, two.b_to_a), Hop(after, None)))
    fast = Cmsg((Hop(fast_hop, None),))

    def push() -> None:
        two.a_to_b.push(slow)
        two.a_to_b.push(fast)

    two.a.run(push)
    assert done.wait(WAIT)
    assert events == [
        ("slow-hop", "loop-b"),
        ("fast", "loop-b"),  # the loop went on while the fiber waited
        ("slow-end", "loop-b"),
        ("after", "loop-a"),  # the route continued only after the coroutine completed
    ]
    assert slow.hop == 1


def test_coroutine_on_endpoint_without_fibers_is_an_error() -> None:
    loop = asyncio.new_event_loop()
    try:
        feed = Feed(loop)
        errors: list[Exception] = []
        ep = Endpoint("nofibers", loop, feed=feed, on_error=lambda msg, e: errors.append(e))
        assert ep.spawn is None
        coros: list[Any] = []

        async def body() -> None:
            pass

        def f(msg: Cmsg) -> Any:
            c = body()
            coros.append(c)
            return c

        ep.process([Cmsg((Hop(f, None),))])
        assert [type(e) for e in errors] == [TypeError]
        coros[0].close()
    finally:
        loop.close()


def test_forward_at_the_last_hop_does_nothing() -> None:
    msg = Cmsg((Hop(lambda m: None, None),))
    cbus.forward(msg)
    assert msg.hop == 0


def test_bus_registry() -> None:
    loop = asyncio.new_event_loop()
    try:
        bus = Bus()
        ep = bus.register(Endpoint("x", loop))
        assert bus.endpoint("x") is ep
        with pytest.raises(ValueError):
            bus.register(Endpoint("x", loop))
        with pytest.raises(KeyError):
            bus.endpoint("y")
        p = bus.pipe("x", Feed(loop), max_input=7)
        assert p.endpoint is ep and p.max_input == 7 and p.local
    finally:
        loop.close()


# -- deliver: the compiled loop and its twin -------------------------------------------

_compiled_deliver = cbus._compiled()
needs_c = pytest.mark.skipif(_compiled_deliver is None, reason="styx/_cbus.c is not built")


class _Feed:
    """Records what a pipe defers instead of running it."""

    loop = None

    def __init__(self, log: list[Any], name: str) -> None:
        self.log, self.name = log, name

    def defer(self, fn: Callable[[], Any]) -> None:
        self.log.append(("defer", self.name, fn.__name__))  # type: ignore[attr-defined]  # a bound method


class _Sink:
    """A pipe's endpoint that records the batches flushed to it."""

    loop = None  # the feed's: the pipe is local

    def __init__(self, log: list[Any], name: str) -> None:
        self.log, self.name = log, name

    def process(self, batch: list[Any]) -> None:
        self.log.append(("flush", self.name, [m.tag for m in batch]))


class _Msg(Cmsg):
    __slots__ = ("tag",)


class _Duck:
    """A message that is no Cmsg: its route and hop are found by name."""

    def __init__(self, route: Any, tag: int) -> None:
        self.route, self.hop, self.tag = route, 0, tag


def _run(deliver: Callable[..., None], plan: list[tuple[str, int, bool]], max_input: int,
         with_spawn: bool) -> list[Any]:
    """Deliver messages whose hops do what `plan` says (return None, PARK,
    an awaitable, raise, or move the message on themselves); what happened,
    in order."""
    log: list[Any] = []
    pipes = [Pipe(_Sink(log, name), _Feed(log, name), max_input)  # type: ignore[arg-type]  # recording stand-ins
             for name in ("a", "b")]

    def hop(kind: str) -> Callable[[Any], Any]:
        def f(msg: Any) -> Any:
            log.append(("hop", msg.tag, kind, msg.hop))
            if kind == "park":
                return cbus.PARK
            if kind == "await":
                return ("awaitable", msg.tag)
            if kind == "raise":
                raise ValueError(msg.tag)
            if kind == "skip":
                msg.hop += 1  # the hop moved the message on itself
            if kind == "exit":
                raise KeyboardInterrupt
            return None
        return f

    batch: list[Any] = []
    for tag, (kind, pipe_no, duck) in enumerate(plan):
        route = (Hop(hop(kind), None if pipe_no == 2 else pipes[pipe_no]), Hop(hop("none"), None),
                 Hop(hop("none"), None))
        if duck:
            batch.append(_Duck(route, tag))
        else:
            m = _Msg(route)
            m.tag = tag
            batch.append(m)
    spawn = (lambda waiter, msg: log.append(("spawn", waiter, msg.tag))) if with_spawn else None
    try:
        deliver(batch, spawn, lambda msg, e: log.append(("failed", msg.tag, type(e).__name__,
                                                         re.sub(" at 0x[0-9a-f]+", "", str(e)))))
    except KeyboardInterrupt:
        log.append("stopped")
    log.append(("hops", [m.hop for m in batch]))
    return log


@needs_c
@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["none", "none", "park", "await", "raise", "skip", "exit"]),
                          st.integers(0, 2), st.booleans()), max_size=12),
       st.integers(1, 4), st.booleans())
def test_deliver_is_its_twin(plan: list[tuple[str, int, bool]], max_input: int, with_spawn: bool) -> None:
    assert _run(_compiled_deliver, plan, max_input, with_spawn) == _run(cbus.py_deliver, plan, max_input,
                                                                         with_spawn)
