"""Wiring: configuration, start, stop.

`Server` builds one Styx instance: the TX thread, `iproto_threads` iproto
threads (or, with 0, the net role inside TX's own loop), the cbus endpoints
and pipes between them, the routes (each a tuple of hops: TX's handler, then
the net thread's), and the listener. This is the only module that sees both
worlds, so it is where routes are made, as Tarantool's `iproto.cc` builds
its routes from tx_* and net_* functions.

Two ways to run:
- `Server(config).run()` serves in the calling thread (the CLI; SIGTERM and
  SIGINT stop it gracefully).
- `server.start()` serves in a background thread and returns once the server
  listens; `server.stop()` shuts it down. Tests embed servers this way, and
  several can live in one process: nothing here is module-level state.

Graceful stop, as Tarantool 2.10+: stop accepting, broadcast
`box.shutdown = true`, let requests in flight finish and their replies reach
the sockets, and let clients watching `box.shutdown` leave by themselves (up
to `shutdown_timeout`, 3 s by default); then close what is left, stop the
threads.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from . import cbus
from .net.listener import Listener
from .net.thread import NetThread
from .tx.app import load_app
from .tx.fiber import current
from .tx.thread import NetControl, Tx

log = logging.getLogger("styx")

__all__ = ["Config", "Server", "VERSION", "make_loop", "parse_listen"]

# The Tarantool version the greeting names: 3.0.0, the first release whose
# IPROTO_ID answer includes every feature Styx advertises (protocol version 6:
# SPACE_AND_INDEX_NAMES and WATCH_ONCE came with 3.0; PAGINATION with 2.11;
# streams, transactions, error extension, watchers with 2.10). Connectors
# trust the greeting for what IPROTO_ID cannot say: at 2.10+ they send ID and
# then use only the features Styx answers with; their version-gated tests
# (tarantool-python's, asynctnt's) expect those features from a 3.0 server,
# and expect 3.0's semantics where 2.x differs: MP_BIN passed through a
# function comes back as MP_BIN (2.x's Lua turned it into a string), auth
# failures are error 47. 3.0 also has tuple extensions (features 7-9), which
# Styx lacks: asynctnt's test__features_3_0 fails on that (bench/peers).
# It must stay below 3.5, from which tarantool-python packs decimals with 76
# digits (Styx's, like Tarantool 2.x/3.0's, hold 38). tests/test_peer_fixes.py
# checks this story against the advertised features.
VERSION = (3, 0, 0)


@dataclass
class Config:
    """Options, named after Tarantool's box.cfg."""

    listen: str = "127.0.0.1:3301"
    app: str | None = None
    iproto_threads: int = 0  # measured: see README, "Threads"
    net_msg_max: int = 768
    readahead: int = 16320
    net_obuf_max: int = 4 << 20  # Styx only: stop reading a client with more unsent output
    memtx_memory: int = 256 << 20  # bytes tuples may take
    shutdown_timeout: float = 3.0
    instance_uuid: str | None = None
    use_uvloop: bool = True

    def check(self) -> None:
        if not 0 <= self.iproto_threads <= 1000:
            raise ValueError("iproto_threads must be between 0 and 1000")
        if self.net_msg_max < 2:
            raise ValueError("net_msg_max must be at least 2")
        if not 128 <= self.readahead < 2 ** 31:
            raise ValueError("readahead must be between 128 and 2147483647")
        if self.net_obuf_max < 1:
            raise ValueError("net_obuf_max must be positive")
        if self.memtx_memory < 1:
            raise ValueError("memtx_memory must be positive")


def make_loop(use_uvloop: bool = True) -> asyncio.AbstractEventLoop:
    if use_uvloop:
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def parse_listen(listen: str) -> tuple[int, Any]:
    """"host:port", "port", or "unix/:/path" -> (address family, address)."""
    if listen.startswith("unix/:"):
        return socket.AF_UNIX, listen[len("unix/:"):]
    host, _, port = listen.rpartition(":")
    if not port.isdigit():
        raise ValueError(f"bad listen address {listen!r}")
    host = host.strip("[]") or "0.0.0.0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return family, (host, int(port))


class Server:
    def __init__(self, config: Config | None = None, **options: Any) -> None:
        self.config = config or Config(**options)
        self.config.check()
        self.tx: Tx | None = None
        self.nets: list[NetThread] = []
        self.listener: Listener | None = None
        self.address: Any = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._done = threading.Event()

    # -- running ------------------------------------------------------------------

    def run(self, install_signals: bool = True) -> None:
        """Serve in this thread until stopped."""
        loop = make_loop(self.config.use_uvloop)
        self.loop = loop
        try:
            loop.run_until_complete(self._main(install_signals))
        finally:
            loop.close()
            self._done.set()

    def start(self, timeout: float = 30.0) -> "Server":
        """Serve in a background thread; return once listening."""

        def target() -> None:
            try:
                self.run(install_signals=False)
            except BaseException as e:  # noqa: BLE001 - reported to start()
                self._start_error = e
                self._started.set()

        self._thread = threading.Thread(target=target, name="styx-tx", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout):
            raise TimeoutError("server did not start")
        if self._start_error is not None:
            raise self._start_error
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Graceful stop, from any thread; returns when the server is down."""
        loop = self.loop
        if loop is not None and self._stop_requested is not None and not self._done.is_set():
            try:
                loop.call_soon_threadsafe(self._stop_requested.set)
            except RuntimeError:
                pass
        if self._thread is not None:
            self._thread.join(timeout if timeout is not None else self.config.shutdown_timeout + 10)
            self._thread = None

    def __enter__(self) -> "Server":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self.address[1]

    # -- inside the TX loop -----------------------------------------------------------

    async def _main(self, install_signals: bool) -> None:
        loop = asyncio.get_running_loop()
        self._stop_requested = asyncio.Event()
        cfg = self.config
        try:
            await self._setup(loop)
        except BaseException:
            self._stop_threads()
            raise
        if install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self._stop_requested.set)
        self._started.set()
        log.info("styx listening on %s, %d iproto thread(s)", cfg.listen, cfg.iproto_threads)
        await self._stop_requested.wait()
        await self._shutdown()

    async def _setup(self, loop: asyncio.AbstractEventLoop) -> None:
        cfg = self.config
        bus = cbus.Bus()
        tx = self.tx = Tx(
            version=VERSION,
            instance_uuid=cfg.instance_uuid or str(uuid.uuid4()),
            net_msg_max=cfg.net_msg_max,
            readahead=cfg.readahead,
            memtx_memory=cfg.memtx_memory,
        )
        tx_endpoint = tx.bind(loop, bus)
        tx.broadcast_system_keys()

        # The app first: its module code and init() run in TX, before listening.
        init = None
        if cfg.app:
            token = current.set(tx.fiber())
            try:
                module, tx.procedures = load_app(cfg.app)
            finally:
                current.reset(token)
            init = getattr(module, "init", None)
        await tx.run_init(init)

        # The iproto threads, each with its own loop (or TX's, with 0 threads).
        n = max(1, cfg.iproto_threads)
        self.nets = [NetThread(i, net_msg_max=cfg.net_msg_max, readahead=cfg.readahead,
                               net_obuf_max=cfg.net_obuf_max) for i in range(n)]
        loops: list[Any] = []
        for net in self.nets:
            if cfg.iproto_threads == 0:
                loops.append(loop)
                continue
            ready = threading.Event()
            net.start_thread(lambda: make_loop(cfg.use_uvloop), ready)
            ready.wait()
            loops.append(net.loop)

        max_input = max(1, cfg.net_msg_max // 2)
        handlers = tx.handlers()
        for net, nloop in zip(self.nets, loops):
            # One Feed per loop: with 0 threads the net role shares TX's.
            feed = tx.feed if nloop is loop else cbus.Feed(nloop)
            endpoint = bus.register(cbus.Endpoint(net.name, nloop, feed=feed))
            net.bind(endpoint, cbus.Pipe(tx_endpoint, feed, max_input))
            net.schema_version = lambda: tx.schema.version
            to_net = cbus.Pipe(endpoint, tx.feed, max_input)
            tx.net_pipes.append(to_net)
            tx.in_progress.append(0)
            tx.in_progress_total.append(0)
            tx.nets.append(NetControl(to_net, net.tx_pipe, net.stats, net.set_msg_max,
                                      net.set_readahead, net.busy, net.close_all))
            back = cbus.Hop(net.send_msg, None)
            net.routes = {t: (cbus.Hop(h, to_net), back) for t, h in handlers.items()}
            net.route_error = (cbus.Hop(tx.process_error, to_net), back)
            net.route_connect = (cbus.Hop(net.attach, net.tx_pipe),
                                 cbus.Hop(tx.process_connect, to_net),
                                 cbus.Hop(net.send_greeting, None))
            net.route_disconnect = (cbus.Hop(tx.process_disconnect, to_net),
                                    cbus.Hop(net.finish_disconnect, None))
            net.route_destroy = (cbus.Hop(tx.process_destroy, to_net),
                                 cbus.Hop(net.finish_destroy, None))
            tx.kharon_routes.append((cbus.Hop(net.process_push, net.tx_pipe),
                                     cbus.Hop(tx.process_end_push, None)))
            tx.discard_routes.append((cbus.Hop(net.discard_input, None),))

        # TX binds and listens; one loop accepts and deals connections out.
        family, addr = parse_listen(cfg.listen)
        sock = socket.socket(family, socket.SOCK_STREAM)
        if family == socket.AF_UNIX:
            if os.path.exists(addr):
                os.unlink(addr)
        else:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(socket.SOMAXCONN)
        self.address = sock.getsockname()
        accept_feed = self.nets[0].feed
        listener_pipes = [cbus.Pipe(net.endpoint, accept_feed) for net in self.nets]  # type: ignore[arg-type]
        self.listener = Listener(sock, accept_feed.loop, self.nets, listener_pipes)
        await self._in_loop(self.listener.loop, self.listener.start)

    async def _in_loop(self, target: Any, func: Callable[[], Any]) -> Any:
        """Run `func` in `target` loop and wait for it."""
        if target is asyncio.get_running_loop():
            return func()
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        me = asyncio.get_running_loop()

        def run() -> None:
            try:
                res = func()
            except BaseException as e:  # noqa: BLE001
                me.call_soon_threadsafe(_set_exc, fut, e)
            else:
                me.call_soon_threadsafe(_set_res, fut, res)

        target.call_soon_threadsafe(run)
        return await fut

    async def _shutdown(self) -> None:
        cfg = self.config
        tx = self.tx
        assert tx is not None
        log.info("styx shutting down")
        if self.listener is not None:
            await self._in_loop(self.listener.loop, self.listener.stop)
            if self.listener.sock.family == socket.AF_UNIX:
                try:
                    os.unlink(self.address)
                except OSError:
                    pass
        # Tell the clients (net.box and go-tarantool watch box.shutdown: they
        # stop sending, wait for their replies and close), then give requests
        # in flight the time to finish and their replies to reach the sockets,
        # and watchers of box.shutdown the time to go.
        tx.watchers.broadcast("box.shutdown", True)
        deadline = time.monotonic() + cfg.shutdown_timeout
        while time.monotonic() < deadline:
            if (not tx.watchers.watching("box.shutdown") and not tx.pool.running  # type: ignore[union-attr]
                    and not await tx.nets_busy()):
                break
            await asyncio.sleep(0.01)
        else:
            log.warning("shutdown timeout: closing connections with requests in flight")
        await tx.close_connections()
        tx.pool.cancel_all()  # type: ignore[union-attr]
        await asyncio.sleep(0)  # let disconnect routes run
        self._stop_threads()

    def _stop_threads(self) -> None:
        for net in self.nets:
            if self.config.iproto_threads:
                net.stop_thread()


def _set_res(fut: asyncio.Future[Any], res: Any) -> None:
    if not fut.done():
        fut.set_result(res)


def _set_exc(fut: asyncio.Future[Any], exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)

