"""The river's web server: the page, its event stream, and one-off samples.

What: `River` runs aiohttp in a thread of its own with its own event loop
(never TX's), and serves `/` (page.html), `/events` (Server-Sent Events:
one JSON sample every `period` seconds while the viewer stays) and
`/snapshot` (one JSON sample, now).

Why SSE: the page only listens (a pick of a connection rides in the
stream's URL), so a one-way stream over plain HTTP is enough, and the
browser reconnects by itself.

Plan: the sampler task runs only while at least one viewer is connected;
it fans each sample out to every viewer's small queue, dropping the oldest
for a viewer that cannot keep up (a slow browser never holds the sampler).

Risks: stopping must not wait for viewers: `stop` ends their streams first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Callable
from importlib import resources
from typing import Any

from aiohttp import web

from .. import cbus
from . import RiverLink, Sampler

log = logging.getLogger("styx.river")

__all__ = ["River"]

_END = b""  # put in a viewer's queue: the server is stopping


class River:
    """The page's server. Its thread and loop start at once; `make_link`
    (routes.wire_river) then makes the river's lines for that loop."""

    def __init__(self, make_link: Callable[[Any], RiverLink], host: str, port: int,
                 make_loop: Callable[[], asyncio.AbstractEventLoop], period: float = 0.25) -> None:
        self.host, self.port, self.period = host, port, period
        self._thread: threading.Thread | None = None
        self._thread, self.loop = cbus.start_loop_thread("styx-river", make_loop)
        self.link = make_link(self.loop)
        self.sampler = Sampler(self.link)
        self.viewers: dict[asyncio.Queue[bytes], frozenset[tuple[int, int]]] = {}
        self.samples = 0  # taken for viewers (tests: none without one)
        self._task: asyncio.Task[None] | None = None
        self._runner: web.AppRunner | None = None
        self.address: Any = None

    # -- from any thread ----------------------------------------------------------

    async def start(self) -> None:
        """Bind and serve (awaited from the caller's loop); OSError if the
        address is taken."""
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._start(), self.loop))

    async def stop(self) -> None:
        if self._thread is None:
            return
        with contextlib.suppress(RuntimeError):
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._stop(), self.loop))
        thread, self._thread = self._thread, None
        await asyncio.to_thread(cbus.stop_loop_thread, thread, self.loop)

    def stop_thread(self) -> None:
        """The server failed to start (from a thread that is not the river's):
        close what was opened, and the thread goes."""
        if self._thread is None:
            return
        with contextlib.suppress(Exception):  # noqa: BLE001 - already failing: the first error is the one told
            asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(5)
        cbus.stop_loop_thread(self._thread, self.loop)
        self._thread = None

    def sample_now(self, timeout: float = 5.0) -> dict[str, Any]:
        """One sample, from a thread that is not the river's (record.py)."""
        return asyncio.run_coroutine_threadsafe(self.sampler.sample(), self.loop).result(timeout)

    # -- in the river's loop ----------------------------------------------------------

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/", self._page)
        app.router.add_get("/events", self._events)
        app.router.add_get("/snapshot", self._snapshot)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        self.address = runner.addresses[0]  # the real port, when asked for port 0

    async def _stop(self) -> None:
        for queue in self.viewers:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(_END)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _page(self, request: web.Request) -> web.Response:
        html = resources.files(__package__).joinpath("page.html").read_text(encoding="utf-8")
        return web.Response(text=html, content_type="text/html", headers={"Cache-Control": "no-store"})

    async def _snapshot(self, request: web.Request) -> web.Response:
        try:
            return web.json_response(await self.sampler.sample())
        except TimeoutError:
            return web.Response(status=503, text="a thread did not answer in time\n")

    async def _events(self, request: web.Request) -> web.StreamResponse:
        pick = _parse_pick(request.query.get("conn", ""))
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
        await resp.prepare(request)
        queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=4)
        self.viewers[queue] = pick
        self._picks_changed()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._sample_loop(), name="river-sampler")
        try:
            while True:
                data = await queue.get()
                if data is _END:
                    break
                await resp.write(b"data: " + data + b"\n\n")
        except (ConnectionError, asyncio.CancelledError):
            pass  # the viewer left
        finally:
            del self.viewers[queue]
            self._picks_changed()
        return resp

    def _picks_changed(self) -> None:
        self.sampler.picked = frozenset().union(*self.viewers.values()) if self.viewers else frozenset()

    async def _sample_loop(self) -> None:
        """While anyone watches: sample, send to each viewer, sleep."""
        while self.viewers:
            try:
                data = json.dumps(await self.sampler.sample(), separators=(",", ":")).encode()
            except TimeoutError:
                log.warning("river: a thread did not answer the sampler in time")
                await asyncio.sleep(self.period)
                continue
            except Exception:  # noqa: BLE001 - a bug in a sample must not leave the viewers hanging
                log.exception("river: a sample failed")
                await asyncio.sleep(1.0)
                continue
            self.samples += 1
            for queue in self.viewers:
                if queue.full():
                    queue.get_nowait()  # this viewer is behind: it gets the newest
                queue.put_nowait(data)
            await asyncio.sleep(self.period)


def _parse_pick(value: str) -> frozenset[tuple[int, int]]:
    """`?conn=1:7` (thread 1, connection 7); anything else picks nothing."""
    thread, _, cid = value.partition(":")
    if thread.isdigit() and cid.isdigit():
        return frozenset({(int(thread), int(cid))})
    return frozenset()
