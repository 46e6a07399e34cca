"""`styx.serve`: Styx inside an asyncio program, on that program's loop."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from typing import Any

import asynctnt
import pytest
import tarantool
import uvloop

import styx
from styx.tx.app import AppError

from .conftest import APP

LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


@pytest.fixture(params=list(LOOPS))
def run_host(request: pytest.FixtureRequest) -> Callable[[Any], Any]:
    """Run a coroutine as the host program, on a stock or a uvloop loop."""

    def run(coro: Any) -> Any:
        with asyncio.Runner(loop_factory=LOOPS[request.param]) as runner:
            return runner.run(coro)

    return run


def grant_guest() -> None:
    styx.box.schema.user.grant("guest", "execute", "universe", if_not_exists=True)


class Ticker:
    """The host's own work: a timer every 10 ms."""

    def __init__(self) -> None:
        self.ticks = 0
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(0.01)
            self.ticks += 1


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def test_procedure_awaits_a_host_queue_while_the_host_runs(run_host: Callable[[Any], Any]) -> None:
    async def host() -> None:
        jobs: asyncio.Queue[str] = asyncio.Queue()

        async def take() -> str:  # a procedure awaiting the host's own object
            return await jobs.get()

        ticker = Ticker()
        async with styx.serve({"init": grant_guest, "take": take}, listen="127.0.0.1:0") as server:
            assert server.loop is asyncio.get_running_loop()
            conn = asynctnt.Connection(host=server.host, port=server.port)
            await conn.connect()
            call = asyncio.ensure_future(conn.call("take"))
            before = ticker.ticks
            await asyncio.sleep(0.2)
            assert not call.done()  # waiting on the queue, in a fiber
            assert ticker.ticks - before >= 10  # and the host's timers went on
            await jobs.put("job 1")
            assert (await asyncio.wait_for(call, 5)).body == ["job 1"]
            await conn.disconnect()
        ticker.task.cancel()

    run_host(host())


def test_leaving_waits_for_requests_without_blocking_the_loop(run_host: Callable[[Any], Any]) -> None:
    async def host() -> None:
        async def slow(seconds: float) -> float:
            await asyncio.sleep(seconds)
            return seconds

        ticker = Ticker()
        async with styx.serve({"init": grant_guest, "slow": slow}, listen="127.0.0.1:0") as server:
            port = server.port
            conn = asynctnt.Connection(host=server.host, port=port, reconnect_timeout=0)
            await conn.connect()
            call = asyncio.ensure_future(conn.call("slow", [0.3]))
            await asyncio.sleep(0.05)
            t0, ticks0 = time.monotonic(), ticker.ticks
        took = time.monotonic() - t0
        assert (await call).body == [0.3]  # the request in flight got its reply
        assert 0.2 < took < 2.0
        assert ticker.ticks - ticks0 >= 10  # the loop ran while the server stopped
        assert refused(port)
        assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == [ticker.task]
        ticker.task.cancel()
        await conn.disconnect()

    run_host(host())


def test_leaving_an_idle_server_is_quick_and_leaves_nothing_on_the_loop() -> None:
    async def host() -> float:
        loop = asyncio.get_running_loop()
        async with styx.serve(APP, listen="127.0.0.1:0", iproto_threads=0) as server:
            port = server.port
            assert server.tx.procedures["echo"]
            t0 = time.monotonic()
        took = time.monotonic() - t0
        assert refused(port)
        await asyncio.sleep(0)
        assert asyncio.all_tasks() == {asyncio.current_task()}
        pending = [h for h in getattr(loop, "_scheduled", []) if not h.cancelled()]
        assert pending == []  # no timer of the server's left behind (stock loop internals)
        return took

    with asyncio.Runner(loop_factory=asyncio.new_event_loop) as runner:
        assert runner.run(host()) < 0.5


def test_a_path_app_with_a_blocking_connector_in_a_thread(run_host: Callable[[Any], Any]) -> None:
    def client(port: int) -> list[Any]:
        conn = tarantool.Connection("127.0.0.1", port)
        try:
            return conn.call("echo", 1, "a").data
        finally:
            conn.close()

    async def host() -> None:
        async with styx.serve(APP, listen="127.0.0.1:0") as server:
            assert await asyncio.to_thread(client, server.port) == [1, "a"]

    run_host(host())


def test_iproto_threads_embedded(run_host: Callable[[Any], Any]) -> None:
    async def host() -> None:
        async with styx.serve(APP, listen="127.0.0.1:0", iproto_threads=2) as server:
            conn = asynctnt.Connection(host=server.host, port=server.port)
            await conn.connect()
            assert (await conn.call("echo", [1, "a"])).body == [1, "a"]
            await conn.disconnect()
            port = server.port
        assert refused(port)

    run_host(host())


def test_a_failing_app_raises_and_leaves_nothing() -> None:
    async def host() -> None:
        def init() -> None:
            raise RuntimeError("no")

        with pytest.raises(AppError, match="init\\(\\) failed: RuntimeError: no"):
            async with styx.serve({"init": init}, listen="127.0.0.1:0"):
                pass
        await asyncio.sleep(0)
        assert asyncio.all_tasks() == {asyncio.current_task()}
        loop = asyncio.get_running_loop()
        assert [h for h in getattr(loop, "_scheduled", []) if not h.cancelled()] == []

    with asyncio.Runner(loop_factory=asyncio.new_event_loop) as runner:
        runner.run(host())


def test_started_once() -> None:
    async def host() -> None:
        server = styx.Server(listen="127.0.0.1:0")
        await server.start_async()
        with pytest.raises(RuntimeError):
            await server.start_async()
        await server.stop_async()
        await server.stop_async()  # again: nothing to do

    asyncio.run(host())
