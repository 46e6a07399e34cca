"""Configuration, start, stop.

`Server` builds one Styx instance, in named steps (`_setup`): the TX thread,
the app, `iproto_threads` iproto threads (or, with 0, the net role inside
TX's own loop), the routes between them (`routes.wire`: endpoints, pipes,
routes, and each side's link to the other), and the listener. With
routes.py, this is the only module that sees both worlds.

Three ways to run:
- `Server(config).run()` serves in the calling thread (the CLI). SIGTERM and
  SIGINT stop it gracefully, a second one skips the waiting; SIGHUP reopens
  a log file that was moved (logrotate), as Tarantool does.
- `server.start()` serves in a background thread and returns once the server
  listens; `server.stop()` shuts it down. Tests embed servers this way, and
  several can live in one process: nothing here is module-level state.
- `await server.start_async()` / `await server.stop_async()` (or `async
  with serve(app)`) serve on the caller's running loop: TX's role, and with
  `iproto_threads = 0` the network's, run in an asyncio program's own loop,
  so procedures may await its objects. Stopping is awaited, never a join on
  that loop; what the server put on the loop (timers, readers) goes with it.

Graceful stop, as Tarantool 2.10+: stop accepting, broadcast
`box.shutdown = true`, let requests in flight finish and their replies reach
the sockets, and let clients watching `box.shutdown` leave by themselves (up
to `shutdown_timeout`, 3 s by default); then close what is left, stop the
threads.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import fcntl
import logging
import logging.handlers
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from . import cbus
from .checkpoint import Checkpointer
from .console import ConsoleServer
from .metrics import MetricsServer
from .net.listener import Listener
from .net.thread import NetThread
from .recovery import Recovered, RecoveryError, instance_of, recover
from .routes import wire, wire_river, wire_wal
from .tx.app import AppError, app_of_object, load_app
from .tx.fiber import current
from .tx.thread import Tx
from .wal import WAL_MODES, WalThread, WalWriter

log = logging.getLogger("styx")

__all__ = ["Config", "ConfigError", "Server", "VERSION", "make_loop", "parse_listen", "serve"]


class ConfigError(ValueError):
    """An option Styx cannot start with: the message names the value."""

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
    # A .py file; embedded (styx.serve, Server): also a module object, or a
    # mapping of procedure names to functions (see tx/app.py, app_of_object).
    app: str | os.PathLike[str] | ModuleType | Mapping[str, Callable[..., Any]] | None = None
    iproto_threads: int = 0  # measured: see docs/design.md, "Threads"
    net_msg_max: int = 768
    readahead: int = 16320
    net_obuf_max: int = 4 << 20  # Styx only: stop reading a client with more unsent output
    # Styx only: the largest CALL reply; a bigger one is answered with error 32
    # (encoding and copying it would stall every other client: TX is one thread).
    net_reply_max: int = 64 << 20
    memtx_memory: int = 256 << 20  # bytes tuples may take
    read_only: bool = False  # box.cfg{read_only}: data changes fail (temporary spaces excepted)
    shutdown_timeout: float = 3.0
    instance_uuid: str | None = None
    use_uvloop: bool = True
    # The WAL. `styx serve` defaults to write, as Tarantool; a server made from
    # Python (embedded, in tests) writes nothing unless asked.
    wal_mode: str = "none"
    work_dir: str = "."
    wal_dir: str | None = None  # default: work_dir
    wal_max_size: int = 256 << 20
    force_recovery: bool = False  # skip damaged files, blocks and rows instead of refusing to start
    memtx_dir: str | None = None  # snapshots; default: work_dir
    checkpoint_interval: float = 3600.0  # seconds between checkpoints; 0: none but box.snapshot()
    checkpoint_count: int = 2  # snapshots kept
    admin_socket: str | None = None  # a unix socket for `styx console` (a Python REPL in TX)
    metrics_listen: str | None = None  # HOST:PORT of a Prometheus /metrics endpoint
    river_listen: str | None = None  # HOST:PORT of the live page of the river (styx/river/)
    # The options given on purpose (the command line's), which an init
    # script's box.cfg{} does not override; None: those not at their default.
    given: frozenset[str] | None = None

    def check(self) -> None:
        if not 0 <= self.iproto_threads <= 1000:
            raise ConfigError(f"iproto_threads {self.iproto_threads}: must be between 0 and 1000")
        if self.net_msg_max < 2:
            raise ConfigError(f"net_msg_max {self.net_msg_max}: must be at least 2")
        if not 128 <= self.readahead < 2 ** 31:
            raise ConfigError(f"readahead {self.readahead}: must be between 128 and 2147483647")
        if self.net_obuf_max < 1:
            raise ConfigError(f"net_obuf_max {self.net_obuf_max}: must be positive")
        if self.net_reply_max < 1:
            raise ConfigError(f"net_reply_max {self.net_reply_max}: must be positive")
        if self.memtx_memory < 1:
            raise ConfigError(f"memtx_memory {self.memtx_memory}: must be positive")
        if self.shutdown_timeout < 0:
            raise ConfigError(f"shutdown_timeout {self.shutdown_timeout}: must not be negative")
        if self.wal_mode not in WAL_MODES:
            raise ConfigError(f"wal_mode {self.wal_mode!r}: must be one of {', '.join(WAL_MODES)}")
        if self.checkpoint_interval < 0:
            raise ConfigError(f"checkpoint_interval {self.checkpoint_interval}: must not be negative")
        if self.checkpoint_count < 1:
            raise ConfigError(f"checkpoint_count {self.checkpoint_count}: must be at least 1")
        if self.wal_max_size < 1:
            raise ConfigError(f"wal_max_size {self.wal_max_size}: must be positive")
        parse_listen(self.listen)


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
    """"host:port", "port", "unix/:/path", or a path ("/path", "./path", as
    Tarantool's URIs read it) -> (address family, address)."""
    if listen.startswith("unix/:"):
        path = listen[len("unix/:"):]
        if not path:
            raise ConfigError(f"listen {listen!r}: the socket path is missing (unix/:PATH)")
        return socket.AF_UNIX, path
    if listen.startswith(("/", "./", "../")):
        return socket.AF_UNIX, listen
    host, _, port = listen.rpartition(":")
    if not port.isdigit():
        raise ConfigError(f"listen {listen!r}: expected HOST:PORT, PORT or unix/:PATH")
    if int(port) > 65535:
        raise ConfigError(f"listen {listen!r}: port {port} is out of range 0..65535")
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
        self.console: ConsoleServer | None = None
        self.metrics: MetricsServer | None = None
        self.river: Any = None  # styx.river.server.River with river_listen (aiohttp is imported only then)
        self.address: Any = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stop_requested: asyncio.Event | None = None
        self._forced = False  # a second signal: stop waiting for anything
        self._thread: threading.Thread | None = None
        self.wal: WalThread | None = None
        self._wal_lock: int | None = None
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._done = threading.Event()
        self._embedded = False  # start_async(): on a loop that is not ours
        self._serving: asyncio.Task[None] | None = None

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

    def start(self, timeout: float = 30.0) -> Server:
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

    async def start_async(self) -> Server:
        """Serve on the running event loop, an asyncio program's own: TX runs
        there (and with `iproto_threads = 0`, the default, the network too).
        Returns once listening; `stop_async()` stops it."""
        if self.loop is not None:
            raise RuntimeError("this server was already started")
        loop = self.loop = asyncio.get_running_loop()
        self._embedded = True
        await self._start(loop, install_signals=False)
        self._serving = loop.create_task(self._serve_embedded(), name="styx-serve")
        return self

    async def stop_async(self) -> None:
        """Graceful stop of a server started by `start_async()`, awaited:
        the loop goes on running while it waits."""
        if self._serving is None:
            return
        assert self._stop_requested is not None
        self._stop_requested.set()
        await asyncio.shield(self._serving)  # a cancelled caller does not cut the shutdown short

    async def _serve_embedded(self) -> None:
        try:
            await self._serve_until_stopped()
        finally:
            self._done.set()

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def host(self) -> str:
        return self.address[0]

    @property
    def port(self) -> int:
        return self.address[1]

    # -- inside the TX loop -----------------------------------------------------------

    async def _main(self, install_signals: bool) -> None:
        await self._start(asyncio.get_running_loop(), install_signals)
        await self._serve_until_stopped()

    async def _start(self, loop: asyncio.AbstractEventLoop, install_signals: bool) -> None:
        self._stop_requested = asyncio.Event()
        cfg = self.config
        try:
            await self._setup(loop)
        except BaseException:
            self._stop_threads()
            self._release_loop()
            raise
        if install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self._on_stop_signal, sig)
            loop.add_signal_handler(signal.SIGHUP, _reopen_logs)
        self._started.set()
        log.info("styx listening on %s, %d iproto thread(s)", cfg.listen, cfg.iproto_threads)

    async def _serve_until_stopped(self) -> None:
        assert self._stop_requested is not None
        await self._stop_requested.wait()
        await self._shutdown()

    async def _setup(self, loop: asyncio.AbstractEventLoop) -> None:
        """TX, the app, the iproto threads, the routes between them, listen."""
        bus = cbus.Bus()
        script = await self._start_lua_script()  # an init.lua: up to its box.cfg{}
        wal_dir = self._lock_wal_dir()
        tx = self.tx = self._start_tx(loop, bus, wal_dir)
        if wal_dir is not None:
            recovered = self._recover(tx, wal_dir)
            self._start_wal(tx, bus, wal_dir, recovered)
            if not recovered.files:  # a new instance: its first snapshot, as Tarantool's bootstrap writes
                assert tx.checkpointer is not None
                await tx.checkpointer.checkpoint()
        if script is not None:
            await self._finish_lua_script(tx, *script)  # after recovery, as the Python app
        else:
            await self._load_app(tx)  # after recovery: if_not_exists finds what was there
        self.nets = self._start_net_threads(loop)
        wire(tx, self.nets, bus, self.config.net_msg_max)
        await self._listen()

    def _start_tx(self, loop: asyncio.AbstractEventLoop, bus: cbus.Bus, wal_dir: str | None) -> Tx:
        cfg = self.config
        # The instance is the one its files name, unless the configuration names it.
        known = instance_of(wal_dir, self._memtx_dir()) if wal_dir is not None else None
        if cfg.instance_uuid and known and cfg.instance_uuid != known:
            raise ConfigError(f"instance_uuid {cfg.instance_uuid}: the WAL in {wal_dir} is instance {known}")
        tx = Tx(
            version=VERSION,
            instance_uuid=cfg.instance_uuid or known or str(uuid.uuid4()),
            net_msg_max=cfg.net_msg_max,
            readahead=cfg.readahead,
            memtx_memory=cfg.memtx_memory,
            net_obuf_max=cfg.net_obuf_max,
            net_reply_max=cfg.net_reply_max,
        )
        tx.bind(loop, bus)
        tx.static_cfg = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)
                         if f.name not in ("app", "use_uvloop")}
        tx.static_cfg["instance_uuid"] = tx.instance_uuid
        tx.broadcast_system_keys()
        return tx

    def _lock_wal_dir(self) -> str | None:
        """The WAL directory, made if missing and locked; None without a WAL."""
        cfg = self.config
        if cfg.wal_mode == "none":
            return None
        wal_dir = os.path.abspath(os.path.join(cfg.work_dir, cfg.wal_dir or ""))
        try:
            os.makedirs(wal_dir, exist_ok=True)
            lock = os.open(wal_dir, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as e:
            raise ConfigError(f"wal_dir {wal_dir!r}: {e.strerror}") from e
        try:
            # The directory itself is locked, as Tarantool locks it: two
            # servers, Styx or Tarantool, cannot share one WAL.
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(lock)
            raise ConfigError(f"wal_dir {wal_dir!r} is locked by another server ({e.strerror})") from e
        self._wal_lock = lock
        return wal_dir

    def _recover(self, tx: Tx, wal_dir: str) -> Recovered:
        """Replay the WAL directory into box, before the app and the WAL start."""
        token = current.set(tx.fiber())
        try:
            return recover(tx.schema, wal_dir, self._memtx_dir(), instance_uuid=tx.instance_uuid,
                           force=self.config.force_recovery)
        except RecoveryError as e:
            raise ConfigError(f"recovery failed: {e}") from e
        finally:
            current.reset(token)

    def _start_wal(self, tx: Tx, bus: cbus.Bus, wal_dir: str, recovered: Recovered) -> None:
        """The WAL thread, linked to TX, going on from the recovered vclock;
        TX journals every change from now on."""
        cfg = self.config
        if recovered.empty_last is not None:
            os.unlink(recovered.empty_last)  # the new xlog takes its name
        writer = WalWriter(wal_dir, tx.instance_uuid, recovered.vclock, mode=cfg.wal_mode,
                           max_size=cfg.wal_max_size, version="styx " + ".".join(map(str, VERSION)),
                           prev_vclock=recovered.last_vclock)
        self.wal = WalThread(writer)
        self.wal.start(lambda: make_loop(cfg.use_uvloop))
        assert tx.endpoint is not None and tx.feed is not None  # bound by _start_tx
        journal = wire_wal(tx.endpoint, tx.feed, self.wal, bus)
        tx.attach_wal(journal)
        memtx_dir = self._memtx_dir()
        os.makedirs(memtx_dir, exist_ok=True)
        tx.checkpointer = Checkpointer(tx.schema, journal, self.wal, memtx_dir, tx.instance_uuid,
                                       count=cfg.checkpoint_count, version=writer.version)
        tx.checkpointer.set_interval(cfg.checkpoint_interval)
        log.info("WAL: %s mode, in %s, from vclock %s", cfg.wal_mode, wal_dir, recovered.vclock)

    def _memtx_dir(self) -> str:
        cfg = self.config
        return os.path.abspath(os.path.join(cfg.work_dir, cfg.memtx_dir or ""))

    async def _load_app(self, tx: Tx) -> None:
        """The app's module code and init() run in TX, before listening."""
        app = self.config.app
        if app is None or app == "":
            return
        if isinstance(app, (str, os.PathLike)):
            token = current.set(tx.fiber())
            try:
                module, tx.procedures = load_app(os.fspath(app))  # a file or a module name
            finally:
                current.reset(token)
            init = getattr(module, "init", None)
            path = Path(getattr(module, "__file__", None) or str(app))
        else:
            init, tx.procedures, path = app_of_object(app)
        log.info("app %s: %d procedure(s): %s", app if isinstance(app, (str, os.PathLike)) else path,
                 len(tx.procedures), ", ".join(sorted(tx.procedures)) or "none")
        try:
            await tx.run_init(init)
        except Exception as e:
            raise AppError.from_exception("init()", path, e) from e

    async def _start_lua_script(self) -> tuple[Any, Any] | None:
        """A Lua init script runs as Tarantool runs one: up to its first
        box.cfg{}, whose options become the server's (except those given on
        purpose, `Config.given`), before anything starts; the rest once box
        is up (`_finish_lua_script`). Returns (Lua, the rest) or None."""
        app = self.config.app
        if not isinstance(app, (str, os.PathLike)) or not os.fspath(app).endswith(".lua"):
            return None
        from .tx.lua import Lua, LuaScriptError  # LuaJIT is loaded only by servers that run Lua

        path = os.fspath(app)  # as given: Lua's messages name it so, as Tarantool's do
        if not os.path.isfile(path):
            raise AppError(f"{os.path.abspath(path)}: no such file")
        lua = Lua()
        try:
            rest = lua.start_script(path)
        except LuaScriptError as e:
            raise AppError(f"{e}") from e
        task = None
        if rest is not None:
            task = asyncio.ensure_future(rest)
            given = asyncio.ensure_future(lua.cfg_given.wait())
            await asyncio.wait([task, given], return_when=asyncio.FIRST_COMPLETED)
            given.cancel()
            if task.done() and task.exception() is not None:
                raise AppError(_script_error(task.exception()))
        if lua.cfg_request is not None:
            self._apply_script_cfg(lua.cfg_request)
        return lua, task

    def _apply_script_cfg(self, options: dict[str, Any]) -> None:
        from .tx.lua import CFG_OPTIONS

        cfg = self.config
        defaults = Config()
        given = cfg.given if cfg.given is not None else frozenset(
            f.name for f in dataclasses.fields(cfg) if getattr(cfg, f.name) != getattr(defaults, f.name))
        for key, value in options.items():
            field = CFG_OPTIONS[key]
            if field is None:
                log.info("box.cfg option %s: Styx has no use for it", key)
            elif field in given:
                log.info("box.cfg option %s: the command line's value is kept", key)
            else:
                if field == "listen":
                    value = str(int(value)) if isinstance(value, (int, float)) else str(value)
                elif isinstance(getattr(defaults, field), int) and isinstance(value, float):
                    value = int(value)  # memtx_memory = 0.1 * 1024^3
                setattr(cfg, field, value)
        try:
            cfg.check()
        except ConfigError as e:
            raise AppError(f"box.cfg: {e}") from e

    async def _finish_lua_script(self, tx: Tx, lua: Any, rest: asyncio.Future[Any] | None) -> None:
        """Box is up: the script's box.cfg{} returns and the script goes on;
        the server listens when it has ended."""
        if self.config.read_only:  # an init script's box.cfg{read_only = true}
            tx.reconfigure({"read_only": True})
        tx.attach_lua(lua)
        if rest is not None:
            try:
                await rest
            except Exception as e:
                raise AppError(_script_error(e)) from e
        log.info("init script %s: done", self.config.app)

    def _start_net_threads(self, loop: asyncio.AbstractEventLoop) -> list[NetThread]:
        """The iproto threads, each with its own loop; with 0, one NetThread
        in TX's loop."""
        cfg = self.config
        nets = [NetThread(i, net_msg_max=cfg.net_msg_max, readahead=cfg.readahead,
                          net_obuf_max=cfg.net_obuf_max)
                for i in range(max(1, cfg.iproto_threads))]
        for net in nets:
            if cfg.metrics_listen:
                net.latency = {}  # before its thread starts: the thread owns it from then on
            if cfg.iproto_threads == 0:
                net.loop = loop
                continue
            net.start_thread(lambda: make_loop(cfg.use_uvloop))
        return nets

    async def _listen(self) -> None:
        """TX binds and listens; one loop accepts and deals connections out."""
        cfg = self.config
        family, addr = parse_listen(cfg.listen)
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            if family == socket.AF_UNIX:
                if os.path.exists(addr):
                    os.unlink(addr)
            else:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(addr)
            sock.listen(socket.SOMAXCONN)
        except OSError as e:
            sock.close()
            raise ConfigError(f"cannot listen on {cfg.listen!r}: {e.strerror or e}") from e
        self.address = sock.getsockname()
        if cfg.admin_socket:
            await self._start_console(cfg.admin_socket)
        if cfg.metrics_listen:
            await self._start_metrics(cfg.metrics_listen)
        if cfg.river_listen:
            await self._start_river(cfg.river_listen)
        accept_feed = self.nets[0].feed
        listener_pipes = [cbus.Pipe(net.endpoint, accept_feed) for net in self.nets]
        self.listener = Listener(sock, accept_feed.loop, self.nets, listener_pipes)
        await self._in_loop(self.listener.loop, self.listener.start)

    async def _start_metrics(self, listen: str) -> None:
        assert self.tx is not None
        family, addr = parse_listen(listen)
        if family != socket.AF_INET and family != socket.AF_INET6:
            raise ConfigError(f"metrics_listen {listen!r}: expected HOST:PORT")
        self.metrics = MetricsServer(self.tx, addr[0], addr[1])
        try:
            await self.metrics.start()
        except OSError as e:
            raise ConfigError(f"cannot serve metrics on {listen!r}: {e.strerror or e}") from e
        log.info("metrics on http://%s:%s/metrics", *self.metrics.address[:2])

    async def _start_river(self, listen: str) -> None:
        """The live page (styx/river/), in a thread and loop of its own."""
        assert self.tx is not None
        family, addr = parse_listen(listen)
        if family != socket.AF_INET and family != socket.AF_INET6:
            raise ConfigError(f"river_listen {listen!r}: expected HOST:PORT")
        try:
            from .river.server import River
        except ImportError as e:
            raise ConfigError(f"river_listen needs aiohttp ({e}): pip install 'styx-iproto[river]'") from e
        tx, nets, cfg = self.tx, self.nets, self.config
        self.river = River(lambda loop: wire_river(tx, nets, loop, cfg.iproto_threads), addr[0], addr[1],
                           lambda: make_loop(cfg.use_uvloop))
        try:
            await self.river.start()
        except OSError as e:
            self.river.stop_thread()
            self.river = None
            raise ConfigError(f"cannot serve the river on {listen!r}: {e.strerror or e}") from e
        log.info("the river on http://%s:%s/", *self.river.address[:2])

    async def _start_console(self, path: str) -> None:
        tx = self.tx
        assert tx is not None
        from . import box  # the proxy app code uses: in the console, the same `box`

        self.console = ConsoleServer(path, {"box": box, "__name__": "__console__"},
                                     lambda: current.set(tx.fiber()), current.reset)
        try:
            await self.console.start()
        except OSError as e:
            raise ConfigError(f"admin_socket {path!r}: {e.strerror or e}") from e
        log.info("admin console on %s", path)

    def _on_stop_signal(self, sig: int) -> None:
        assert self._stop_requested is not None
        if not self._stop_requested.is_set():
            log.info("%s: graceful shutdown (send it again to skip the waiting)",
                     signal.Signals(sig).name)
            self._stop_requested.set()
        elif not self._forced:
            log.warning("%s again: shutting down now", signal.Signals(sig).name)
            self._forced = True

    async def _in_loop(self, target: Any, func: Callable[[], Any]) -> Any:
        """Run `func` in `target` loop and wait for it."""
        if target is asyncio.get_running_loop():
            return func()
        done: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def run() -> None:
            try:
                done.set_result(func())
            except BaseException as e:  # noqa: BLE001 - the waiter gets it
                done.set_exception(e)

        target.call_soon_threadsafe(run)
        return await asyncio.wrap_future(done)

    async def _shutdown(self) -> None:
        cfg = self.config
        tx = self.tx
        assert tx is not None
        log.info("styx shutting down")
        if self.console is not None:
            await self.console.stop()
        if self.metrics is not None:
            await self.metrics.stop()
        if self.river is not None:
            await self.river.stop()
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
        while time.monotonic() < deadline and not self._forced:
            if (not tx.watchers.watching("box.shutdown") and not tx.pool.running
                    and not await tx.nets_busy()):
                break
            await asyncio.sleep(0.01)
        else:
            log.warning("shutdown %s: closing connections with requests in flight",
                        "forced" if self._forced else "timeout")
        await tx.close_connections()
        tx.pool.cancel_all()
        if tx.lua_if_running() is not None:
            tx.lua_if_running().cancel_all()  # Lua's background fibers
        await asyncio.sleep(0)  # let disconnect routes run
        if tx.checkpointer is not None:
            tx.checkpointer.stop()
        # What was committed reaches the disk before the WAL stops.
        while tx.committer is not None and tx.committer.journal.in_flight and time.monotonic() < deadline + 5:
            await asyncio.sleep(0.01)
        self._release_loop()
        if self._embedded:
            await asyncio.to_thread(self._stop_threads)  # joins: not on the host's loop
        else:
            self._stop_threads()

    def _release_loop(self) -> None:
        """Cancel what this server left on TX's loop (timers, readers). With
        `run()` that loop closes anyway; a host's loop (`start_async`) goes on."""
        if self.tx is not None:
            self.tx.release()
            if self.tx.checkpointer is not None:
                self.tx.checkpointer.stop()
        if self.config.iproto_threads == 0:
            for net in self.nets:
                if net.loop is not None:
                    net.loop.call_soon(net.release)  # after what bind() scheduled

    def _stop_threads(self) -> None:
        if self.river is not None:
            self.river.stop_thread()  # only if the start failed: a graceful stop ended it already
        for net in self.nets:
            if self.config.iproto_threads:
                net.stop_thread()
        if self.wal is not None:
            self.wal.stop()
            self.wal = None
        if self._wal_lock is not None:
            os.close(self._wal_lock)
            self._wal_lock = None


def _script_error(e: BaseException | None) -> str:
    from .protocol.errors import BoxError

    return f"init script: {e.message if isinstance(e, BoxError) else e}"


@contextlib.asynccontextmanager
async def serve(app: Any = None, *, listen: str = "127.0.0.1:3301", **options: Any) -> AsyncIterator[Server]:
    """Styx inside an asyncio program, on its running loop:

        async with styx.serve("app.py", listen="127.0.0.1:3301") as server:
            ...   # server.port; procedures may await the program's objects

    `app` is a .py file, a module, or a mapping of names to functions;
    `options` are Config's. Leaving the block stops the server gracefully,
    awaited (the loop goes on meanwhile)."""
    server = Server(Config(app=app, listen=listen, **options))
    await server.start_async()
    try:
        yield server
    finally:
        await server.stop_async()


def _reopen_logs() -> None:
    """SIGHUP, as Tarantool: reopen the log file if it was moved (logrotate)."""
    reopened = False
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.handlers.WatchedFileHandler):
            handler.reopenIfNeeded()
            reopened = True
    log.info("SIGHUP: %s", "log file reopened" if reopened else "no log file to reopen, ignored")
