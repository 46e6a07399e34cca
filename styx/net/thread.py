"""An iproto thread: an event loop, its connections, and its end of cbus.

Each `NetThread` owns its connections for their whole life, a slab cache for
their ibufs, one packet decoder, the count of messages alive (for
`net_msg_max`), the FIFO of connections stopped by that limit, and its
counters. It registers the cbus endpoint `net<i>` and has one pipe to TX.

The hop functions here are the net halves of the routes (`send_msg`,
`send_greeting`, `process_push`, ...). `styx/routes.py` wires them with TX's
halves into routes and hands the thread its `TxLink`: the pipe to TX and the
routes that start here. This module never sees TX.

With `iproto_threads = 0` one NetThread runs inside TX's event loop: same
object, same routes, and its pipes are local (delivered in the same loop).
"""

from __future__ import annotations

import bisect
import collections
import itertools
import logging
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import cbus
from ..iproto_msg import BOUNCED, IprotoMsg, Kharon, ServiceMsg
from ..memory import SlabCache
from ..protocol import codec
from ..protocol.scan import BatchDecoder
from .connection import ALIVE, STOP_MSG_MAX, STOP_STARTING, Connection

log = logging.getLogger("styx.net")

# Upper bounds (seconds) of the request latency histograms' buckets.
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                   1.0, 2.5, 5.0, 10.0)

__all__ = ["NetThread", "TxLink", "setup_socket"]

Route = tuple[cbus.Hop, ...]


@dataclass(eq=False)
class TxLink:
    """An iproto thread's view of TX (Tarantool keeps these in `iproto_thread`):
    the pipe to TX, and the routes that start here, one per request type and
    one for each step of a connection's life."""

    pipe: cbus.Pipe  # this thread -> TX
    routes: dict[int, Route]  # request type -> route; a type not here is unknown
    error: Route  # a request net could not decode: TX replies with its error
    connect: Route  # listener -> this thread (adopt) -> TX (session, greeting) -> here
    disconnect: Route
    destroy: Route
    schema_version: Callable[[], int]  # for the errors net writes itself


class NetThread:
    def __init__(self, index: int, *, net_msg_max: int, readahead: int, net_obuf_max: int) -> None:
        self.index = index
        self.name = f"net{index}"
        self.net_msg_max = net_msg_max
        self.readahead = readahead
        self.net_obuf_max = net_obuf_max
        self.loop: Any = None
        self.feed: cbus.Feed = None  # type: ignore[assignment]  # bind() sets it, before any use
        self.endpoint: cbus.Endpoint = None  # type: ignore[assignment]  # bind() sets it, before any use
        self.tx: TxLink = None  # type: ignore[assignment]  # routes.wire() sets it, before any use
        self.slabc = SlabCache(min_size=512)
        self.decoder = BatchDecoder()
        self.packer = codec.new_packer()
        self.body_decoders = codec.BODY_DECODERS
        self.connections: set[Connection] = set()
        # Socket errors, watched apart from reading (see `_on_hangup`).
        self.hangups = select.epoll() if hasattr(select, "epoll") else None
        self.by_fd: dict[int, Connection] = {}
        self.stopped: collections.deque[Connection] = collections.deque()
        self.msg_count = 0
        # Counters (this thread only writes them; readers use `stats`).
        self.sent = 0
        self.received = 0
        self.connections_total = 0
        self.requests_total = 0
        # --metrics-listen: request type -> latency histogram (see _observe); None: off
        self.latency: dict[int, list[float]] | None = None
        self.streams_total = 0
        self.streams_current = 0
        self.stream_queue_total = 0
        self.stream_queue_current = 0
        self.kharon_trips = 0  # the Kharon's stops here (one per trip)
        self._window: list[tuple[float, tuple[int, ...]]] = []
        # Connections handed to this thread and not yet freed; the listener
        # (another thread) adds, this thread subtracts: guarded.
        self._assigned = 0
        self._assigned_lock = threading.Lock()
        self._next_conn_id = 1
        self._thread: threading.Thread | None = None

    # -- wiring ----------------------------------------------------------------

    def bind(self, endpoint: cbus.Endpoint) -> None:
        self.loop = endpoint.loop
        self.feed = endpoint.feed
        self.endpoint = endpoint
        self.loop.call_soon_threadsafe(self.stat_tick)
        if self.hangups is not None:
            self.loop.call_soon_threadsafe(self.loop.add_reader, self.hangups.fileno(),
                                           self._on_hangup)

    @property
    def assigned(self) -> int:
        with self._assigned_lock:
            return self._assigned

    def assign(self) -> None:
        with self._assigned_lock:
            self._assigned += 1

    # -- connection life ------------------------------------------------------

    def attach(self, msg: ServiceMsg) -> None:
        """First hop of the connect route, in this thread: adopt the socket."""
        conn = Connection(self, msg.sock, msg.peer, self._next_conn_id)
        self._next_conn_id += 1
        self.connections.add(conn)
        self.connections_total += 1
        msg.conn = conn
        log.debug("client %s: connected (connection %d, net%d)", conn.peer, conn.id, self.index)
        if self.hangups is not None:
            self.by_fd[conn.fd] = conn
            self.hangups.register(conn.fd, select.EPOLLET)  # errors only: always reported

    def _on_hangup(self) -> None:
        """A socket error (a reset): close the connection, reading or not.

        uvloop treats an error on a watched descriptor as fatal to its
        watcher: it calls the reader once and then never again, so a reader
        that found data in that last call never learns of the reset, and the
        descriptor leaks. A connection whose input is stopped (backpressure)
        is not watched at all. This epoll sees every error, edge-triggered,
        whatever the loop and the stop reasons."""
        for fd, events in self.hangups.poll(0):  # type: ignore[union-attr]  # watched only while set
            conn = self.by_fd.get(fd)
            if conn is not None and events & select.EPOLLERR:
                log.debug("%r: socket error, closing", conn)
                conn.close()

    def send_greeting(self, msg: ServiceMsg) -> None:
        """Last hop of the connect route: TX made the session and the greeting."""
        conn: Connection = msg.conn
        conn.tx_conn = msg.tx_conn
        if conn.state != ALIVE:
            # Closed while TX was making the session: now TX can be told.
            conn.state = ALIVE
            conn.close()
            return
        conn.set_wend(msg.wpos)
        if msg.close:
            conn.flush()
            conn.close()
            return
        conn.start_input(STOP_STARTING)

    def connection_closed(self, conn: Connection) -> None:
        """Before the socket closes."""
        self.connections.discard(conn)
        if self.by_fd.pop(conn.fd, None) is not None:
            try:
                self.hangups.unregister(conn.fd)  # type: ignore[union-attr]  # by_fd: only while set
            except OSError:
                pass
        try:
            self.stopped.remove(conn)
        except ValueError:
            pass

    def finish_disconnect(self, msg: ServiceMsg) -> None:
        msg.conn.try_destroy()

    def finish_destroy(self, msg: ServiceMsg) -> None:
        msg.conn.free()
        with self._assigned_lock:
            self._assigned -= 1

    # -- requests ---------------------------------------------------------------

    def send_msg(self, msg: IprotoMsg) -> None:
        """Last hop of every request route (`net_send_msg`)."""
        conn: Connection = msg.conn
        self.msg_count -= 1
        if self.latency is not None:
            self._observe(msg)
        if msg.bounce == BOUNCED:
            conn.defer(msg)
        else:
            conn.in_tx -= 1
            if msg.stream_id:
                conn.stream_next(msg)
            conn.release_input(msg)
            if conn.state == ALIVE:
                conn.set_wend(msg.wpos)  # the flush it feeds resends deferred requests, or closes after EOF
            else:
                conn.try_destroy()
        if self.stopped:
            self.resume_stopped()

    def _observe(self, msg: IprotoMsg) -> None:
        """(Metrics on) a request's time from its read to its reply, into its
        type's histogram: counts per bucket of LATENCY_BUCKETS (the last,
        over the last bound), then the sum of seconds."""
        t0 = getattr(msg, "t0", None)
        if t0 is None or msg.bounce == BOUNCED:
            return
        seconds = time.perf_counter() - t0
        h = self.latency.get(msg.type)  # type: ignore[union-attr]  # called only when it is set
        if h is None:
            h = self.latency[msg.type] = [0] * (len(LATENCY_BUCKETS) + 1) + [0.0]  # type: ignore[index]
        h[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        h[-1] += seconds

    def latency_stats(self) -> dict[int, list[float]]:
        """(In this thread: a cbus call) a copy of the latency histograms."""
        return {t: list(h) for t, h in (self.latency or {}).items()}

    def discard_input(self, dmsg: Any) -> None:
        """A request went into a fiber: its input is no longer needed."""
        dmsg.msg.conn.discard_input(dmsg.msg)

    def process_push(self, kharon: Kharon) -> None:
        """The Kharon's stop in net: take "new data up to here", hand back
        "written up to here". It sails back at once; it does not wait for the
        write."""
        conn: Connection = kharon.tx_conn.conn
        self.kharon_trips += 1
        wend = kharon.wpos
        kharon.wpos = conn.wpos
        if conn.state == ALIVE:
            conn.set_wend(wend)

    # -- backpressure -------------------------------------------------------------

    def stop_for_msg_max(self, conn: Connection) -> None:
        if not conn.stopped & STOP_MSG_MAX:
            conn.stop_input(STOP_MSG_MAX)
            self.stopped.append(conn)
            log.debug("stopping input on connection %r, net_msg_max limit is reached", conn)
            self.tx.pipe.flush()  # do not sit on staged requests while stopped
            if self.msg_count < self.net_msg_max:
                # With local pipes the requests may all have come back during
                # that flush: no later reply would resume us, so resume after
                # this pass.
                self.feed.defer(self.resume_stopped)

    def resume_stopped(self) -> None:
        stopped = self.stopped
        while stopped and self.msg_count < self.net_msg_max:
            conn = stopped.popleft()
            conn.start_input(STOP_MSG_MAX)

    def set_msg_max(self, value: int) -> None:
        """Runs in this thread (a cbus call from TX): `box.cfg{net_msg_max}`."""
        self.net_msg_max = value
        self.tx.pipe.max_input = max(1, value // 2)
        self.resume_stopped()

    def set_readahead(self, value: int) -> None:
        self.readahead = value

    # -- statistics and shutdown ------------------------------------------------

    def _totals(self) -> tuple[int, ...]:
        return (self.sent, self.received, self.connections_total, self.requests_total,
                self.streams_total, self.stream_queue_total)

    def stat_tick(self) -> None:
        """Once a second, in this thread: totals for the rps over 5 seconds."""
        self._window.append((self.loop.time(), self._totals()))
        del self._window[:-6]
        self._stat_timer = self.loop.call_later(1.0, self.stat_tick)

    def release(self) -> None:
        """In this thread's loop, when the server is going and the loop is
        not (iproto_threads = 0 in a host's loop): stop the timer and the
        error watch that bind() started."""
        timer = getattr(self, "_stat_timer", None)
        if timer is not None:
            timer.cancel()
        self._close_hangups()

    def stats(self) -> dict[str, dict[str, int]]:
        """`box.stat.net()` of this thread, Tarantool's shape (runs in this
        thread: a cbus call). rps is the mean over the last 5 seconds."""
        now = self._totals()
        if self._window:
            t0, old = self._window[0]
            span = self.loop.time() - t0
        else:
            old, span = now, 0.0

        def rps(i: int) -> int:  # no rate before a second has passed
            return int((now[i] - old[i]) / span) if span >= 1.0 else 0

        return {
            "SENT": {"total": now[0], "rps": rps(0)},
            "RECEIVED": {"total": now[1], "rps": rps(1)},
            "CONNECTIONS": {"total": now[2], "rps": rps(2), "current": len(self.connections)},
            "REQUESTS": {"total": now[3], "rps": rps(3), "current": self.msg_count},
            "STREAMS": {"total": now[4], "rps": rps(4), "current": self.streams_current},
            "REQUESTS_IN_STREAM_QUEUE": {"total": now[5], "rps": rps(5),
                                         "current": self.stream_queue_current},
        }

    def river_sample(self, top: int, picked: frozenset[int]) -> dict[str, Any]:
        """(In this thread: a cbus call from the river, styx/river/) this
        thread's figures now, and the buffers of its `top` busiest
        connections and of those a viewer `picked` (by id).

        Busiest: requests in flight, then unsent output, then requests read.
        The obufs' fill, TX's current obuf and the Kharon's trips are TX's
        ints, read here without a lock: at worst a pass stale, never torn
        (net already reads the obufs up to `wend` this way)."""
        conns = self.connections
        if len(conns) > top:
            chosen = sorted(conns, key=lambda c: (c.id not in picked, -sum(c.input_msg_count),
                                                  -c.unsent() if c.tx_conn is not None else 0, -c.requests))[:top]
            chosen.sort(key=lambda c: c.id)  # a steady order on screen
        else:
            chosen = sorted(conns, key=lambda c: c.id)
        pipe = self.tx.pipe
        return {
            "index": self.index,
            "to_tx": {"messages": pipe.messages, "flushes": pipe.flushes},
            "wakeups": self.endpoint.wakeups, "delivered": self.endpoint.delivered,
            "requests": self.requests_total, "sent": self.sent, "received": self.received,
            "msg_count": self.msg_count, "net_msg_max": self.net_msg_max,
            "stopped": len(self.stopped), "connections": len(conns),
            "streams": self.streams_current, "stream_queue": self.stream_queue_current,
            "kharon": self.kharon_trips,
            "conns": [_conn_sample(c) for c in chosen],
            # Every connection a viewer may pick (capped: a page lists, it does not scroll 10,000)
            "ids": sorted([c.id, str(c.peer)] for c in itertools.islice(conns, 256)),
        }

    def busy(self) -> bool:
        """Requests alive or output not yet written (for a graceful stop)."""
        if self.msg_count:
            return True
        return any(c.state == ALIVE and c.can_write and c.wpos != c.wend for c in self.connections)

    def close_all(self) -> None:
        """At shutdown: close every connection, then the error watch."""
        for conn in list(self.connections):
            conn.close()
        self._close_hangups()

    def _close_hangups(self) -> None:
        if self.hangups is not None:
            self.loop.remove_reader(self.hangups.fileno())
            self.hangups.close()
            self.hangups = None

    def start_thread(self, make_loop: Callable[[], Any]) -> None:
        self._thread, self.loop = cbus.start_loop_thread(f"styx-{self.name}", make_loop)

    def stop_thread(self) -> None:
        if self._thread is None:
            return
        cbus.stop_loop_thread(self._thread, self.loop)
        self._thread = None


def _conn_sample(c: Connection) -> dict[str, Any]:
    """One connection's buffers, for the river: each ibuf as [capacity,
    rpos, wpos, requests in flight], the obufs' fill, `wpos` and `wend`."""
    tx_conn = c.tx_conn
    return {
        "id": c.id, "peer": str(c.peer), "state": c.state, "stopped": c.stopped,
        "ibuf": [[b.capacity, b.rpos, b.wpos, n] for b, n in zip(c.ibuf, c.input_msg_count, strict=True)],
        "p_ibuf": c.p_ibuf, "parse_size": c.parse_size,
        "obuf": [tx_conn.obuf[0].used, tx_conn.obuf[1].used] if tx_conn is not None else [0, 0],
        "cur_obuf": tx_conn.cur_obuf if tx_conn is not None else 0,
        "kharon": tx_conn.kharon.trips if tx_conn is not None else 0,
        "wpos": list(c.wpos), "wend": list(c.wend), "requests": c.requests,
        "in_tx": c.in_tx, "deferred": len(c.deferred), "streams": len(c.streams),
    }


def setup_socket(sock: socket.socket) -> None:
    """Socket options of an accepted connection, as Tarantool sets them."""
    sock.setblocking(False)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    except OSError:
        pass  # a unix socket has no TCP options

