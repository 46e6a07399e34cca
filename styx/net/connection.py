"""One client connection, seen from its iproto thread.

What it owns: the socket, two ibufs and the per-ibuf count of requests still
in flight, the unparsed tail (`parse_size`), and the output cursor: `wpos`,
how far the obufs have been written to the socket, and `wend`, how far TX
has announced data. It never touches box or sessions; the obufs belong to
TX (`TxConn`), and this side only reads them up to `wend`.

Input (Tarantool's `iproto_connection_on_input` / `iproto_enqueue_batch`):
pick an input buffer (`_input_buffer`, the two-ibuf rotation), `recv_into`
its free tail, frame and decode every complete packet in one call
(`protocol/scan.py`, compiled when it can be), then prepare one message per
request (stream rules, route, the body decoded for its type) and push them
to TX. The plain requests (no stream, a body of the usual shape) get their
messages from one compiled call (`_prepare`); the loop of `_enqueue` makes
the rest, and all of them when nothing is compiled: it is the twin. A
buffer is consumed only when every
request parsed from it is finished, then given back to the slab cache whole;
new input meanwhile goes to the other buffer, which gets only the partial
tail copied over. Input stops (and the reader is removed) when:
- the thread has `net_msg_max` messages alive (resumed in FIFO order by the
  thread as messages finish),
- both ibufs hold requests in flight (resumed when one is released),
- the connection has more than `net_obuf_max` bytes of unsent output: a
  client that never reads cannot make the server buffer without bound
  (resumed when output drains). Tarantool has no such limit.
- TX sent requests back unexecuted (`defer`): they are kept, in order, and
  sent again once output has drained (below).
- end of input (EOF: the client closed or half-closed).

Output bound (`net_obuf_max`). Stopping input is not enough: one read can
hold hundreds of requests, all sent to TX at once, each with a big reply.
So TX checks the output it holds for the connection before it executes a
request, and sends the request back unexecuted (`msg.bounce = BOUNCED`)
when that is over the limit and not all written, or when an earlier request
of this connection was sent back (order). Here those requests wait in
`deferred`, reading stops, and once all output is written and none of this
connection's requests is still between net and TX's check (`in_tx`, less
those running in fibers), they go again as one round whose first is marked
`RETRY`, which lets TX execute again. A client that never reads thus costs
at most `net_obuf_max` plus one reply, however its requests arrive.

End of input: reading stops; requests already read still run and their
replies are written (a half-closed client still reads); then the connection
closes.

Output (`iproto_flush`): one vectored `sendmsg` of the obuf slabs between
`wpos` and `wend`, older obuf first; a partial write waits for writability.
A write error stops output but not request processing (a half-closed client
may still be sending, #6292), and re-arms the reader (`_rearm_input`).

Close: stop watching, close the socket, and send the disconnect route to TX;
the connection is destroyed (second route) once no request references it.
A socket error closes it whatever it was doing (`NetThread._on_hangup`).
"""

from __future__ import annotations

import collections
import logging
import socket
import time
from typing import TYPE_CHECKING, Any

from ..iproto_msg import RETRY, WPOS_ZERO, IprotoMsg, ServiceMsg, TxConn, Wpos
from ..memory import Ibuf
from ..protocol import constants as C
from ..protocol.accel import accel
from ..protocol.codec import BODY_DECODERS, NO_BODY, CallRequest, encode_reply
from ..protocol.errors import ER, BoxError, encode_error_body
from ..protocol.scan import BAD_BODY, Record

if TYPE_CHECKING:
    from .thread import NetThread

log = logging.getLogger("styx.net")

__all__ = ["Connection"]

# States, as Tarantool's iproto_connection.
ALIVE, CLOSED, PENDING_DESTROY, DESTROYED = range(4)

# Why input is stopped (bit flags: several can hold at once).
STOP_MSG_MAX = 1
STOP_READAHEAD = 2
STOP_OUTPUT = 4
STOP_STARTING = 8  # the greeting has not been sent yet
STOP_DEFERRED = 16  # TX sent requests back: they go first
STOP_EOF = 32  # end of input: nothing more to read


# Types allowed in a stream: the data and call requests (up to 18, except
# AUTH), and PING (Tarantool: type <= IPROTO_TYPE_STAT_MAX).
STREAM_TYPE_MAX = 18
TXN_TYPES = frozenset((C.BEGIN, C.COMMIT, C.ROLLBACK))


def _stream_rules(msg: IprotoMsg, t: int, stream_id: int) -> None:
    """Tarantool's stream rules, checked before the body: BEGIN, COMMIT and
    ROLLBACK need a stream (229), a stream takes only the data and call
    requests and PING (230)."""
    if not stream_id:
        msg.diag = BoxError(ER.UNABLE_TO_PROCESS_OUT_OF_STREAM, C.TYPE_NAMES[t])
    elif not (t <= STREAM_TYPE_MAX and t != C.AUTH or t == C.PING):
        msg.diag = BoxError(ER.UNABLE_TO_PROCESS_IN_STREAM, C.TYPE_NAMES.get(t, "unknown"))
    else:
        msg.stream_id = stream_id


def _prepare_kinds() -> dict[int, int]:
    """For the compiled `prepare`: how each request type's body is decoded
    there (0 as it is, 1 DML, 2 CALL, 3 EVAL: the shapes codec's decoders
    take without their general checks). A type not here goes the general
    way: BEGIN, COMMIT, ROLLBACK (their stream rules) and the rest with a
    decoder (AUTH, ID, watchers)."""
    kinds = {t: 0 for t in C.TYPE_NAMES if t not in BODY_DECODERS and t not in TXN_TYPES}
    kinds.update({t: 1 for t in (C.SELECT, C.INSERT, C.REPLACE, C.UPDATE, C.DELETE, C.UPSERT)})
    kinds.update({C.CALL: 2, C.CALL_16: 2, C.EVAL: 3})
    return kinds


if accel is not None:
    accel.configure_prepare(IprotoMsg, CallRequest, _prepare_kinds())
# The plain requests of a read, made in one compiled call; None: all go
# through `_enqueue`'s own loop, which is its twin (STYX_PURE=1, no compiler).
_prepare = None if accel is None else accel.prepare


class Stream:
    """One stream of a connection: the request in TX, and those waiting."""

    __slots__ = ("current", "queue")

    def __init__(self) -> None:
        self.current: IprotoMsg | None = None
        self.queue: collections.deque[IprotoMsg] = collections.deque()


class Connection:
    __slots__ = (
        "thread", "sock", "fd", "peer", "id", "ibuf", "p_ibuf", "input_msg_count",
        "parse_size", "to_read", "long_poll_count", "tx_conn", "wpos", "wend", "state",
        "stopped", "reading", "writing", "output_fed", "can_write", "streams", "in_tx",
        "deferred", "requests", "__weakref__",
    )

    def __init__(self, thread: NetThread, sock: socket.socket, peer: Any, conn_id: int) -> None:
        self.thread = thread
        self.sock = sock
        self.fd = sock.fileno()
        self.peer = peer
        self.id = conn_id
        readahead = thread.readahead
        self.ibuf = (Ibuf(thread.slabc, readahead), Ibuf(thread.slabc, readahead))
        self.p_ibuf = 0
        self.input_msg_count = [0, 0]
        self.parse_size = 0  # unparsed bytes at the tail of the current ibuf
        self.to_read = 3  # bytes needed to make progress (3 = the smallest request)
        self.long_poll_count = 0  # requests whose input was released early
        self.tx_conn: TxConn | None = None
        self.wpos = WPOS_ZERO  # written to the socket up to here
        self.wend = WPOS_ZERO  # TX has announced output up to here
        self.state = ALIVE
        self.stopped = STOP_STARTING
        self.reading = False
        self.writing = False
        self.output_fed = False
        self.can_write = True
        self.streams: dict[int, Stream] = {}
        self.in_tx = 0  # requests sent to TX and not back yet
        self.deferred: collections.deque[IprotoMsg] = collections.deque()
        self.requests = 0  # read from this connection (per batch: for the river's "busiest")

    def __repr__(self) -> str:
        return f"<Connection {self.id} {self.peer} on net{self.thread.index}>"

    # -- input ---------------------------------------------------------------

    def start_input(self, reason: int) -> None:
        """Clear one stop reason; watch the socket again if none is left."""
        self.stopped &= ~reason
        if self.stopped or self.state != ALIVE:
            return
        if not self.reading:
            self.reading = True
            self.thread.loop.add_reader(self.fd, self.on_input)
        # Requests may already sit in the buffer (stopped mid-batch): parse them.
        if self.parse_size:
            self.enqueue_batch()

    def stop_input(self, reason: int) -> None:
        self.stopped |= reason
        if self.reading:
            self.reading = False
            self.thread.loop.remove_reader(self.fd)

    def on_input(self) -> None:
        th = self.thread
        if th.msg_count >= th.net_msg_max:
            th.stop_for_msg_max(self)
            return
        if self.unsent() > th.net_obuf_max:
            self.stop_input(STOP_OUTPUT)
            return
        ibuf = self._input_buffer()
        if ibuf is None:
            self.stop_input(STOP_READAHEAD)
            return
        mv = ibuf.mv
        assert mv is not None  # _input_buffer made room
        try:
            n = self.sock.recv_into(mv[ibuf.wpos:])
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close()
            return
        if n == 0:
            self.input_eof()
            return
        ibuf.wpos += n
        self.parse_size += n
        th.received += n
        self.enqueue_batch()

    def _input_buffer(self) -> Ibuf | None:
        """Tarantool's `iproto_connection_input_buffer`: where the next read goes."""
        p = self.p_ibuf
        ibuf = self.ibuf[p]
        # A declared length is a claim, not data: make room for it
        # geometrically, as bytes actually arrive, so a client announcing
        # 1 GiB and sending one byte costs one readahead, not a gigabyte.
        to_read = min(self.to_read, max(self.thread.readahead, 2 * self.parse_size))
        if ibuf.buf is not None and ibuf.unused() >= to_read:
            return ibuf
        if self.input_msg_count[p] == 0:
            # Only the unparsed tail lives here: nothing points into it, so it
            # may move (grow or defragment in place).
            ibuf.reserve(to_read)
            return ibuf
        other = self.ibuf[1 - p]
        if self.input_msg_count[1 - p]:
            return None  # both buffers hold requests in flight
        tail = self.parse_size
        other.release()
        other.start_capacity = self.thread.readahead
        other.reserve(tail + to_read)
        if tail:
            assert other.buf is not None and ibuf.buf is not None  # reserved; holds the tail
            other.buf[0:tail] = ibuf.buf[ibuf.wpos - tail:ibuf.wpos]
            other.wpos = tail
            ibuf.wpos -= tail
        if ibuf.used() == 0:
            ibuf.release()
        self.p_ibuf = 1 - p
        return other

    def enqueue_batch(self) -> None:
        """Frame, decode and send to TX every complete request in the buffer
        (Tarantool's `iproto_enqueue_batch`), at most up to `net_msg_max`."""
        th = self.thread
        p = self.p_ibuf
        ibuf = self.ibuf[p]
        assert ibuf.buf is not None and ibuf.mv is not None  # it holds what was just read
        end = ibuf.wpos
        budget = th.net_msg_max - th.msg_count
        records, pos, to_read, fatal = th.decoder.scan(ibuf.buf, ibuf.mv, end - self.parse_size, end, budget)
        if to_read >= 0:
            self.to_read = to_read
        self.parse_size = end - pos
        if records:
            self._enqueue(records, p)
        if fatal is not None:
            self.fatal_error(BoxError(ER.INVALID_MSGPACK, fatal))
        elif len(records) >= budget and pos < end:
            th.stop_for_msg_max(self)

    def _enqueue(self, records: list[Record], p: int) -> None:
        """One message per decoded packet, pushed to TX (Tarantool's
        `iproto_msg_prepare`, then `iproto_msg_decode`): the header's stream
        rules and the route first, then the body, decoded for its type."""
        th = self.thread
        tx_conn = self.tx_conn
        assert tx_conn is not None  # requests are read only after the greeting
        routes = th.tx.routes
        decoders = th.body_decoders
        error_route = th.tx.error
        pipe = th.tx.pipe
        wpos = self.wpos
        n = len(records)
        self.input_msg_count[p] += n
        self.in_tx += n  # stream_push takes back those it queues
        th.msg_count += n
        th.requests_total += n
        self.requests += n
        latency = th.latency
        t0 = time.perf_counter() if latency is not None else 0.0  # (--metrics-listen) one read per batch
        out: list[IprotoMsg] = []  # pushed together; a stream's request first sends those before it
        push = out.append
        prepare = _prepare if latency is None else None  # (the compiled one does not stamp t0)
        i = 0
        while i < n:
            if prepare is not None:
                i = prepare(records, i, self, tx_conn, p, wpos, routes, out)
                if i == n:
                    break
            pos, pend, t, sync, sv, stream_id, body = records[i]
            i += 1
            msg = IprotoMsg(self, tx_conn, p, pend - pos, wpos)
            msg.sync = sync
            if latency is not None:
                msg.t0 = t0
            if t is None:  # a header Tarantool would not decode: the error is in `body`
                msg.diag = body
                msg.route = error_route
                push(msg)
                continue
            msg.type = t
            msg.schema_version = sv
            if stream_id or t in TXN_TYPES:
                _stream_rules(msg, t, stream_id)
            if body is BAD_BODY:
                body = NO_BODY
                if t != C.PING:  # PING never looks at its body (as Tarantool)
                    msg.diag = BoxError(ER.INVALID_MSGPACK, "packet body")
            route = routes.get(t)
            if route is None:
                if msg.diag is None:
                    msg.diag = BoxError(ER.UNKNOWN_REQUEST_TYPE, t)
            elif msg.diag is None:
                decode = decoders.get(t)
                if decode is None:
                    msg.req = body
                else:
                    try:
                        msg.req = decode(body)
                    except BoxError as e:
                        msg.diag = e
            msg.route = error_route if route is None or msg.diag is not None else route
            if msg.stream_id:
                if out:
                    pipe.push_many(out)
                    out.clear()
                self.stream_push(msg)
            else:
                push(msg)
        if out:
            pipe.push_many(out)

    def stream_push(self, msg: IprotoMsg) -> None:
        """A request of a stream goes to TX only when the one before it is back:
        requests of one stream run strictly one after another, in order."""
        th = self.thread
        stream = self.streams.get(msg.stream_id)
        if stream is None:
            stream = self.streams[msg.stream_id] = Stream()
            th.streams_total += 1
            th.streams_current += 1
        if stream.current is not None:
            stream.queue.append(msg)
            self.in_tx -= 1
            th.stream_queue_total += 1
            th.stream_queue_current += 1
            return
        stream.current = msg
        th.tx.pipe.push(msg)

    def stream_next(self, msg: IprotoMsg) -> None:
        """The current request of its stream is back: send the next, or free
        the stream (a transaction, if open, lives on in TX)."""
        th = self.thread
        stream = self.streams.get(msg.stream_id)
        if stream is None:
            return
        if stream.queue:
            nxt = stream.queue.popleft()
            th.stream_queue_current -= 1
            nxt.wpos = self.wpos
            stream.current = nxt
            self.in_tx += 1
            th.tx.pipe.push(nxt)
            return
        stream.current = None
        if msg.txn_open and self.state == ALIVE:
            return  # a stream lives on while its transaction is open (as Tarantool)
        del self.streams[msg.stream_id]
        th.streams_current -= 1

    def defer(self, msg: IprotoMsg) -> None:
        """TX sent `msg` back unexecuted: output is over `net_obuf_max`."""
        self.in_tx -= 1
        self.deferred.append(msg)
        if self.state != ALIVE:
            self.redispatch()  # closed: TX runs it now (the reply goes nowhere)
            return
        self.stop_input(STOP_DEFERRED)
        self.redispatch_if_ready()

    def redispatch_if_ready(self) -> None:
        """Send the deferred requests again once all output is written (TX
        would send them back again before that) and no request sent before
        them can still come back deferred (order)."""
        if self.deferred and self.in_tx <= self.long_poll_count and self.wpos == self.wend:
            self.redispatch()

    def redispatch(self) -> None:
        th = self.thread
        deferred = self.deferred
        n = len(deferred)
        if self.state == ALIVE:  # keep within net_msg_max; the rest goes next round
            n = min(n, max(1, th.net_msg_max - th.msg_count))
        # The round leaves the queue, and is counted, before it is sent: with
        # local pipes TX may send some back while this loop still runs.
        round_ = [deferred.popleft() for _ in range(n)]
        self.in_tx += n
        th.msg_count += n
        for msg in round_:
            msg.bounce = RETRY if msg is round_[0] else 0
            msg.hop = 0
            msg.wpos = self.wpos
            th.tx.pipe.push(msg)
        if not self.deferred:
            self.start_input(STOP_DEFERRED)

    def input_eof(self) -> None:
        """The client closed or half-closed: stop reading; what was read runs,
        and its replies are written (`close_if_done`)."""
        self.stop_input(STOP_EOF)
        self.close_if_done()

    def close_if_done(self) -> None:
        if (self.stopped & STOP_EOF and self.state == ALIVE and self.is_idle()
                and not self.deferred and self.wpos == self.wend):
            self.close()

    def release_input(self, msg: IprotoMsg) -> None:
        """A request is finished with its input: consume its ibuf once all are."""
        if not msg.len:
            self.long_poll_count -= 1
            return
        p = msg.p_ibuf
        left = self.input_msg_count[p] - 1
        self.input_msg_count[p] = left
        if left:
            return
        ibuf = self.ibuf[p]
        if p == self.p_ibuf:
            ibuf.rpos = ibuf.wpos - self.parse_size
            if not self.parse_size:
                ibuf.release()
        else:
            ibuf.release()
        if self.stopped & STOP_READAHEAD:
            self.start_input(STOP_READAHEAD)

    def discard_input(self, msg: IprotoMsg) -> None:
        """Release a long request's input early (Tarantool #946)."""
        if msg.len:
            self.release_input(msg)
            msg.len = 0
            self.long_poll_count += 1

    def is_idle(self) -> bool:
        return not (self.input_msg_count[0] or self.input_msg_count[1] or self.long_poll_count)

    # -- output --------------------------------------------------------------

    def set_wend(self, wend: Wpos) -> None:
        self.wend = wend
        if self.state == ALIVE and not self.output_fed:
            self.output_fed = True
            self.thread.feed.defer(self.flush)

    def unsent(self) -> int:
        (wo, wu), (eo, eu) = self.wpos, self.wend
        if wo == eo:
            return eu - wu
        assert self.tx_conn is not None  # output exists only after the greeting
        return self.tx_conn.obuf[wo].used - wu + eu

    def flush(self) -> None:
        """Write everything announced so far, older obuf first."""
        self.output_fed = False
        if self.state != ALIVE or self.writing:
            return
        assert self.tx_conn is not None  # output exists only after the greeting
        obufs = self.tx_conn.obuf
        while True:
            (wo, wu), wend = self.wpos, self.wend
            # In the other obuf? Then this one is final: TX moved on from it.
            end = wend[1] if wend[0] == wo else obufs[wo].used
            total = end - wu
            if total <= 0:
                if wend[0] == wo:
                    break
                self.wpos = (wend[0], 0)
                continue
            if self.can_write:
                iov = obufs[wo].iov_range(wu, end)
                try:
                    n = self.sock.sendmsg(iov) if len(iov) > 1 else self.sock.send(iov[0])
                except (BlockingIOError, InterruptedError):
                    n = 0
                except OSError as e:
                    log.debug("%r: write failed: %s; output is discarded from now on", self, e)
                    self.can_write = False
                    n = total
                    self.thread.feed.defer(self._rearm_input)
                else:
                    self.thread.sent += n
            else:
                n = total
            self.wpos = (wo, wu + n)
            if n < total:
                self.writing = True
                self.thread.loop.add_writer(self.fd, self._on_writable)
                return
        if self.stopped & STOP_OUTPUT:
            self.start_input(STOP_OUTPUT)
        if self.deferred:
            self.redispatch_if_ready()
        elif self.stopped & STOP_EOF:
            self.close_if_done()

    def _rearm_input(self) -> None:
        """After a write error: watch the socket afresh. The peer may still be
        sending (#6292), or be gone; if it reset the connection, uvloop may
        have dropped its watcher for good after one last read (see
        `NetThread._on_hangup`), and the write took the error that would
        have told us. A new watcher sees the end of input."""
        if self.state == ALIVE and self.reading:
            loop = self.thread.loop
            loop.remove_reader(self.fd)
            loop.add_reader(self.fd, self.on_input)

    def _on_writable(self) -> None:
        self.writing = False
        self.thread.loop.remove_writer(self.fd)
        self.flush()

    def fatal_error(self, err: BoxError) -> None:
        """A framing error: write the error with sync 0 right here, then close."""
        body = encode_error_body(err, self.thread.packer.pack)
        packet = encode_reply(C.TYPE_ERROR | err.code, 0, self.thread.tx.schema_version(), body)
        if self.state == ALIVE:
            self.flush()
            try:
                self.sock.send(packet)
            except OSError:
                pass
        self.close()

    # -- close ---------------------------------------------------------------

    def close(self) -> None:
        """Tarantool's `iproto_connection_close`: then disconnect, then destroy."""
        if self.state != ALIVE:
            return
        th = self.thread
        self.stop_input(0)
        if self.writing:
            self.writing = False
            th.loop.remove_writer(self.fd)
        self.state = CLOSED
        log.debug("client %s: closed (connection %d)", self.peer, self.id)
        th.connection_closed(self)
        try:
            self.sock.close()
        except OSError:
            pass
        # Requests already read still run, those queued in streams included
        # (as Tarantool): the connection is destroyed once they are done.
        # Idle streams (kept for their transactions) go; TX rolls those back.
        for stream_id in [i for i, st in self.streams.items() if st.current is None]:
            del self.streams[stream_id]
            th.streams_current -= 1
        # Discard the unparsed tail.
        ibuf = self.ibuf[self.p_ibuf]
        ibuf.wpos -= self.parse_size
        self.parse_size = 0
        if ibuf.used() == 0 and not self.input_msg_count[self.p_ibuf]:
            ibuf.release()
        if self.tx_conn is None:
            # The connect route has not come back yet: it will find us closed.
            return
        th.tx.pipe.push(ServiceMsg(th.tx.disconnect, self, self.tx_conn))
        if self.deferred:
            # Requests already read still run; behind the disconnect, TX
            # knows the connection is gone and does not send them back.
            self.redispatch()

    def try_destroy(self) -> None:
        """Destroy once idle (`iproto_connection_try_to_start_destroy`)."""
        if self.state not in (CLOSED, PENDING_DESTROY):
            return
        if not self.is_idle():
            self.state = PENDING_DESTROY
            return
        self.state = DESTROYED
        self.thread.tx.pipe.push(ServiceMsg(self.thread.tx.destroy, self, self.tx_conn))

    def free(self) -> None:
        self.ibuf[0].release()
        self.ibuf[1].release()
        self.tx_conn = None
