"""The TX thread: the world of the living.

`Tx` owns everything a request may touch: the schema and users (box), the
sessions, the app's procedures, the obuf memory (its own slab cache: only TX
writes output), the fiber pool, and the TX end of every pipe. It registers
the cbus endpoint "tx"; its handlers (tx/process.py) are the TX halves of
the routes.

What TX knows of an iproto thread is its `NetLink`, made by the wiring
(`styx/routes.py`): the pipes both ways, the routes TX starts towards it,
and the thread's functions TX may run there by message (statistics,
configuration). Each connection's `TxConn` holds its thread's link. TX never
imports net/.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack

from .. import cbus
from ..box.schema import Schema
from ..box.txn import Txn
from ..box.users import Users
from ..iproto_msg import DiscardMsg, IprotoMsg, ServiceMsg, TxConn
from ..memory import Obuf, SlabCache
from ..protocol import constants as C
from ..protocol.codec import plain_first
from ..protocol.errors import ER, BoxError
from ..protocol.ext import default as ext_default
from . import process
from .api import Box, SessionTriggers
from .app import Procedure
from .builtins import Builtins
from .commit import Committer
from .fiber import Fiber, FiberPool, current
from .kharon import push as kharon_push
from .reply import write_chunk
from .session import Session
from .watchers import Watchers

log = logging.getLogger("styx.tx")

__all__ = ["Tx", "NetLink"]

OBUF_START = 512  # first obuf slab; each next one doubles (idle connections stay small)


Route = tuple[cbus.Hop, ...]


@dataclass(eq=False)
class NetLink:
    """TX's view of one iproto thread."""

    index: int
    pipe: cbus.Pipe  # TX -> that thread
    back: cbus.Pipe  # that thread -> TX (for synchronous calls)
    kharon_route: Route  # the Kharon's round trip: there and back
    discard_route: Route  # a request went into a fiber: release its input there
    # The thread's functions TX runs there by message:
    stats: Callable[[], dict[str, dict[str, int]]]
    latency_stats: Callable[[], dict[int, list[float]]]
    set_msg_max: Callable[[int], None]
    set_readahead: Callable[[int], None]
    busy: Callable[[], bool]
    close_all: Callable[[], None]
    # Requests of this thread running in fibers (inline ones finish before
    # anyone could see them in progress):
    in_progress: int = 0
    in_progress_total: int = 0


class Tx:
    def __init__(self, *, version: tuple[int, int, int], instance_uuid: str, net_msg_max: int,
                 readahead: int, memtx_memory: int = 256 << 20,
                 net_obuf_max: int = 4 << 20, net_reply_max: int = 64 << 20) -> None:
        self.version = version
        self.instance_uuid = instance_uuid
        self.net_msg_max = net_msg_max
        self.readahead = readahead
        self.net_obuf_max = net_obuf_max  # unsent output above which requests wait
        self.net_reply_max = net_reply_max  # the largest CALL reply body
        self.users = Users()
        self.schema = Schema(self.users, instance_uuid, memtx_memory)
        self.procedures: dict[str, Procedure] = {}
        self.sessions: dict[int, Session] = {}
        self._session_ids = itertools.count(1)
        self.slabc = SlabCache(min_size=OBUF_START)
        self.packb = plain_first(msgpack.Packer(use_bin_type=True, unicode_errors="surrogateescape",
                                                default=self._encode_plain).pack)
        self.packb_ext = plain_first(msgpack.Packer(use_bin_type=True, unicode_errors="surrogateescape",
                                                    default=self._encode_ext).pack)
        self._packb_inner = msgpack.Packer(use_bin_type=True, unicode_errors="surrogateescape").pack
        self.watchers = Watchers(self.packb, self._send_event)
        self.session_triggers = SessionTriggers()  # box.session.on_connect and friends
        self.errors = 0
        # box.stat(): requests by type, and a window of totals for the rps.
        self.req_counts = [0] * 128
        self._stat_window: list[tuple[float, list[int], int, list[int]]] = []
        # The box API gets what it uses: the schema, the users, the counters,
        # TX for its few services (api.TxServices), the watchers' broadcast.
        self.box = Box(self.schema, self.users, self.req_counts, self,
                       broadcast=self.watchers.broadcast, version=version,
                       instance_uuid=instance_uuid)
        self.builtins = Builtins(self.box)
        self.committer: Committer | None = None  # with a WAL (attach_wal)
        self.static_cfg: dict[str, Any] = {}  # box.cfg's options, as the server was started with
        self.thread_ident = threading.get_ident()  # TX's thread (bind sets it again, in the loop's)
        self._lua: Any = None  # Lua state, made by lua()
        self.checkpointer: Any = None  # with a WAL: styx/checkpoint.py's, set by the server
        self.loop: Any = None
        self.feed: cbus.Feed | None = None
        self.endpoint: cbus.Endpoint | None = None
        self.pool: FiberPool = None  # type: ignore[assignment]  # bind() sets it, before any use
        self.nets: list[NetLink] = []  # one per iproto thread, by index (routes.wire)

    def __repr__(self) -> str:
        return f"<Tx {self.instance_uuid}>"

    def bind(self, loop: Any, bus: cbus.Bus) -> cbus.Endpoint:
        """(In TX's thread, on its loop.)"""
        self.loop = loop
        self.thread_ident = threading.get_ident()  # box refuses other threads (api._fiber)
        self.pool = FiberPool(loop, 5 * self.net_msg_max)
        self.endpoint = bus.register(cbus.Endpoint("tx", loop, spawn=self.pool.spawn,
                                                   on_error=self.hop_failed))
        self.feed = self.endpoint.feed
        self.stat_tick()
        return self.endpoint


    async def snapshot(self) -> None:
        if self.checkpointer is None:
            raise BoxError(ER.UNSUPPORTED, "Styx", "box.snapshot() with wal_mode none")
        await self.checkpointer.checkpoint()

    def attach_wal(self, journal: Any) -> None:
        """From now on every change is journaled, and replies wait for it
        (tx/commit.py). `journal` is the WAL link (routes.wire_wal)."""
        assert self.feed is not None, "bind() comes first"
        self.committer = Committer(journal, self.feed.defer, self.schema)
        self.schema.changes.record = self.committer.record
        self.schema.on_ddl = self.committer.record_ddl

    def hop_failed(self, msg: cbus.Cmsg, exc: Exception) -> None:
        """A handler raised where it should have replied: a bug. The client gets
        an error reply, the message goes on, the server goes on."""
        log.error("request failed inside TX", exc_info=exc)
        if isinstance(msg, IprotoMsg):
            process.reply_failure(self, msg, exc)
        cbus.forward(msg)

    def fiber(self) -> Fiber:
        """Fiber-local storage for code that runs outside a request (init)."""
        return Fiber(self, None, 0)

    # -- encoding values ------------------------------------------------------

    def _encode_plain(self, obj: Any) -> Any:
        if isinstance(obj, BoxError):
            return obj.message  # without ERROR_EXTENSION an error is its message
        return _encode_other(obj)

    # -- box.stat -------------------------------------------------------------------

    def stat_tick(self) -> None:
        """Once a second: remember the totals, for rps over the last 5 s."""
        now = self.loop.time()
        self._stat_window.append((now, list(self.req_counts), self.errors,
                                  [net.in_progress_total for net in self.nets]))
        del self._stat_window[:-6]
        self._stat_timer = self.loop.call_later(1.0, self.stat_tick)

    def release(self) -> None:
        """Stop the timers bind() started (the server is going, its loop may not)."""
        timer = getattr(self, "_stat_timer", None)
        if timer is not None:
            timer.cancel()

    def request_stats(self) -> dict[str, dict[str, int]]:
        counts = self.req_counts
        old = self._stat_window[0] if self._stat_window else None
        span = (self.loop.time() - old[0]) if old else 0.0

        def entry(total: int, before: int) -> dict[str, int]:
            return {"total": total, "rps": int((total - before) / span) if span >= 1.0 else 0}

        out = {}
        for name, types in STAT_TYPES.items():
            total = sum(counts[t] for t in types)
            before = sum(old[1][t] for t in types) if old else total
            out[name] = entry(total, before)
        out["ERROR"] = entry(self.errors, old[2] if old else self.errors)
        return out

    def _encode_ext(self, obj: Any) -> Any:
        if isinstance(obj, BoxError):
            return msgpack.ExtType(C.EXT_ERROR, self._packb_inner({C.ERROR_STACK: obj.stack()}))
        return _encode_other(obj)

    # -- sessions -----------------------------------------------------------------

    def new_session(self, msg: ServiceMsg) -> tuple[TxConn, Session]:
        tx_conn = TxConn(msg.conn, self.nets[msg.net],
                  (Obuf(self.slabc, OBUF_START), Obuf(self.slabc, OBUF_START)))
        session = Session(next(self._session_ids), tx_conn, self.users.by_id[0], msg.peer, self.packb)
        tx_conn.session = session
        self.sessions[session.id] = session
        return tx_conn, session

    def _send_event(self, session: Session, packet: bytes) -> None:
        if session.closed:
            return
        tx_conn = session.tx_conn
        tx_conn.obuf[tx_conn.cur_obuf].dup(packet)
        kharon_push(tx_conn)

    def broadcast_system_keys(self) -> None:
        """Tarantool's own keys, set at start (box.shutdown only at shutdown)."""
        uid = uuid.UUID(self.instance_uuid)
        self.watchers.broadcast("box.id", {"id": 1, "instance_uuid": uid, "replicaset_uuid": uid})
        self.watchers.broadcast("box.status", {"is_ro": False, "is_ro_cfg": False,
                                               "status": "running"})

    def new_txn(self, timeout: float | None, isolation: int = 0) -> Txn:
        """A transaction, rolled back by a timer if it outlives `timeout`."""
        txn = Txn(timeout, isolation, self.schema.txns)
        if timeout is not None:
            txn.timer = self.loop.call_later(timeout, txn.expire)
        return txn

    def discard_input(self, msg: IprotoMsg) -> None:
        net = msg.tx_conn.net
        net.pipe.push(DiscardMsg(net.discard_route, msg))

    def push_chunk(self, session: Session, sync: int, value: Any) -> None:
        """`box.session.push`: an IPROTO_CHUNK into the obuf, then the Kharon."""
        if session.closed:
            raise BoxError(ER.SESSION_CLOSED)
        item = session.packb(value)
        tx_conn = session.tx_conn
        write_chunk(tx_conn, sync, self.schema.version, item)
        kharon_push(tx_conn)

    # -- configuration and statistics -------------------------------------------------

    def lua(self) -> Any:
        """TX's Lua state (tx/lua.py), made at its first use (EVAL, a Lua
        file), or given by the server (an init script, attach_lua)."""
        if self._lua is None:
            from .lua import Lua  # LuaJIT is loaded only by servers that run Lua

            self.attach_lua(Lua())
        return self._lua

    def attach_lua(self, lua: Any) -> None:
        lua.attach(self.box, self.box.session.push, self._lua_fiber)
        self._lua = lua

    def lua_if_running(self) -> Any:
        return self._lua

    def _lua_fiber(self) -> Fiber:
        """A Lua fiber's record: its creator's session (its rights), no
        transaction of its own yet."""
        f = current.get()
        return Fiber(self, f.session if f is not None else None, 0)

    def cfg_values(self) -> dict[str, Any]:
        """box.cfg as it is now: the server's options (`static_cfg`, set at
        start), with the dynamic ones as last changed."""
        values = dict(self.static_cfg)
        values["net_msg_max"] = self.net_msg_max
        values["readahead"] = self.readahead
        values["read_only"] = self.schema.changes.read_only
        cp = self.checkpointer
        if cp is not None:
            values.update(checkpoint_interval=cp.interval, checkpoint_count=cp.count,
                          wal_max_size=cp.wal.writer.max_size)
        return values

    def reconfigure(self, options: dict[str, Any]) -> None:
        for name, value in options.items():
            if name == "net_msg_max":
                if type(value) is not int or value < 2:
                    raise BoxError(ER.CFG, name, "the value must be an integer not less than 2")
                self.net_msg_max = value
                if self.pool is not None:
                    self.pool.max_size = 5 * value
                for net in self.nets:
                    net.pipe.max_input = max(1, value // 2)
                    cbus.send(net.pipe, net.set_msg_max, value)
            elif name == "readahead":
                if type(value) is not int or not 128 <= value < 2 ** 31:
                    raise BoxError(ER.CFG, name, "the value must be between 128 and 2147483647")
                self.readahead = value
                for net in self.nets:
                    cbus.send(net.pipe, net.set_readahead, value)
            elif name in ("checkpoint_interval", "checkpoint_count", "wal_max_size"):
                self._reconfigure_wal(name, value)
            elif name == "read_only":
                if type(value) is not bool:
                    raise BoxError(ER.CFG, name, "should be of type boolean")
                self.schema.changes.read_only = value
            else:
                raise BoxError(ER.CFG, name, "unknown or not a dynamic option")

    def _reconfigure_wal(self, name: str, value: Any) -> None:
        """box.cfg's dynamic WAL options (taken, and without effect, with wal_mode none)."""
        if type(value) not in (int, float) or value < (1 if name != "checkpoint_interval" else 0):
            raise BoxError(ER.CFG, name, "the value must be a number" + (
                " not less than 0" if name == "checkpoint_interval" else " not less than 1"))
        cp = self.checkpointer
        if cp is None:
            return
        if name == "checkpoint_interval":
            cp.set_interval(float(value))
        elif name == "checkpoint_count":
            cp.count = int(value)
        else:
            cp.wal.writer.max_size = int(value)  # read by the WAL thread before each batch

    async def net_stats_threads(self) -> list[dict[str, dict[str, int]]]:
        """`box.stat.net.thread()`: each iproto thread's counters (a synchronous
        cbus call to each), with TX's count of requests in progress for it."""
        now = self.loop.time()
        old = self._stat_window[0] if self._stat_window else None
        span = now - old[0] if old else 0.0
        threads = []
        for i, net in enumerate(self.nets):
            stats = await cbus.call(net.pipe, net.back, net.stats)
            total = net.in_progress_total
            before = old[3][i] if old and i < len(old[3]) else 0
            stats["REQUESTS_IN_PROGRESS"] = {
                "total": total, "current": net.in_progress,
                "rps": int((total - before) / span) if span >= 1.0 else 0}
            threads.append(stats)
        return threads

    def river_sample(self) -> dict[str, Any]:
        """(In TX: a cbus call from the river, styx/river/) TX's figures now:
        its endpoint's deliveries and wake-ups, each pipe to an iproto
        thread, requests running in fibers, sessions."""
        ep = self.endpoint
        assert ep is not None  # bound before the river starts
        return {
            "wakeups": ep.wakeups, "delivered": ep.delivered,
            "to_net": [{"messages": n.pipe.messages, "flushes": n.pipe.flushes, "in_progress": n.in_progress}
                       for n in self.nets],
            "fibers": self.pool.running if self.pool is not None else 0,
            "sessions": len(self.sessions),
        }

    async def net_latency_threads(self) -> list[dict[int, list[float]]]:
        """Each iproto thread's request latency histograms (a cbus call to each)."""
        return [await cbus.call(net.pipe, net.back, net.latency_stats) for net in self.nets]

    async def wal_stats(self) -> dict[str, int] | None:
        """The WAL writer's counters, read in the WAL thread (a cbus call); None without a WAL."""
        committer, cp = self.committer, self.checkpointer
        if committer is None or cp is None or committer.journal.back is None:
            return None
        w = cp.wal.writer
        return await cbus.call(committer.journal.pipe, committer.journal.back,
                               lambda: {"rows": w.rows, "batches": w.batches, "blocks": w.blocks,
                                        "bytes": w.bytes, "failures": w.failures})

    async def net_stats(self) -> dict[str, dict[str, int]]:
        """`box.stat.net()`: the threads' counters summed, Tarantool's shape."""
        threads = await self.net_stats_threads()
        total: dict[str, dict[str, int]] = {}
        for stats in threads:
            for metric, fields in stats.items():
                into = total.setdefault(metric, dict.fromkeys(fields, 0))
                for k, v in fields.items():
                    into[k] += v
        return total

    async def nets_busy(self) -> bool:
        for net in self.nets:
            if await cbus.call(net.pipe, net.back, net.busy):
                return True
        return False

    async def close_connections(self) -> None:
        for net in self.nets:
            await cbus.call(net.pipe, net.back, net.close_all)

    async def run_init(self, init: Callable[[], Any] | None) -> None:
        if init is None:
            return
        token = current.set(self.fiber())
        try:
            result = init()
            if asyncio.iscoroutine(result):
                await result
        finally:
            current.reset(token)


def _encode_other(obj: Any) -> Any:
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    return ext_default(obj)  # Decimal, UUID; raises TypeError for the rest


# box.stat() keys, as Tarantool shows them.
STAT_TYPES = {
    "SELECT": (C.SELECT,), "INSERT": (C.INSERT,), "REPLACE": (C.REPLACE,),
    "UPDATE": (C.UPDATE,), "DELETE": (C.DELETE,), "UPSERT": (C.UPSERT,),
    "CALL": (C.CALL, C.CALL_16), "EVAL": (C.EVAL,), "AUTH": (C.AUTH,),
    "EXECUTE": (C.EXECUTE,), "PREPARE": (C.PREPARE,), "BEGIN": (C.BEGIN,),
    "COMMIT": (C.COMMIT,), "ROLLBACK": (C.ROLLBACK,),
}
