"""The boats: what net threads and TX exchange over cbus.

net/ and tx/ never import each other; they meet here and in cbus. This module
holds the message types (Tarantool's `iproto_msg`, the connect/disconnect
service messages, the Kharon) and `TxConn`, a connection as TX holds it
(its session, output and Kharon), which both worlds see:

- TX creates a `TxConn` when a connection arrives (the connect route) and is
  its only writer: the session, the two obufs and which one is being filled
  (`cur_obuf`), the Kharon's flags.
- A net thread only reads obuf slabs up to the end position TX sent it, and
  reports back how far it has written (`wpos` on every request, and the
  Kharon's return trip).

A position in a connection's output is a plain tuple `(obuf index, offset)`,
the offset counted in bytes from the start of that obuf (its `used` at that
point). Plain tuples: a few are made per request, on the hot path.
"""

from __future__ import annotations

from typing import Any

from .cbus import Cmsg
from .memory import Obuf
from .protocol.errors import BoxError

__all__ = ["Wpos", "WPOS_ZERO", "TxConn", "IprotoMsg", "DiscardMsg", "ServiceMsg", "Kharon",
           "BOUNCED", "RETRY"]


Wpos = tuple[int, int]  # (which of the two obufs, bytes into it)
WPOS_ZERO: Wpos = (0, 0)

# `IprotoMsg.bounce` (see net/connection.py, "Output bound"): TX sent the
# request back unexecuted; or net sends it again, first of a round.
BOUNCED, RETRY = 1, 2


class Kharon(Cmsg):
    """One per connection: carries "new output up to here" from TX to net and
    "written up to here" back (see tx/kharon.py). At most one trip in flight."""

    __slots__ = ("tx_conn", "wpos", "is_push_sent", "is_push_pending", "trips")

    def __init__(self, tx_conn: TxConn) -> None:
        super().__init__()
        self.tx_conn = tx_conn
        self.wpos = WPOS_ZERO
        self.is_push_sent = False
        self.is_push_pending = False
        self.trips = 0


class TxConn:
    """A connection as TX holds it: session, output, Kharon (written by TX only;
    net reads the obufs up to the end TX sent it)."""

    __slots__ = ("conn", "net", "session", "obuf", "cur_obuf", "kharon", "alive", "deferring")

    def __init__(self, conn: Any, net: Any, obufs: tuple[Obuf, Obuf]) -> None:
        self.conn = conn  # net's connection: opaque to TX, passed back in messages
        self.net = net  # TX's link to the iproto thread that owns the connection (tx.NetLink)
        self.session: Any = None  # TX's session
        self.obuf = obufs
        self.cur_obuf = 0  # the obuf TX appends to
        self.kharon = Kharon(self)
        self.alive = True  # cleared by TX when the session closes
        self.deferring = False  # TX sent a request back: the later ones follow it

    def end(self) -> Wpos:
        """The current end of TX's output."""
        p = self.cur_obuf
        return (p, self.obuf[p].used)


class IprotoMsg(Cmsg):
    """One request, from its decoding in net to its reply being flushed.

    Net fills the header fields and the decoded body (`req`, a per-type value;
    or `diag`, a decode error TX will reply with). TX writes the reply and
    sets `wpos` to its end; on the way in, `wpos` is the connection's flushed
    position, so TX can recycle obufs.
    """

    __slots__ = (
        "conn", "tx_conn", "type", "sync", "schema_version", "stream_id", "req", "diag",
        "p_ibuf", "len", "wpos", "txn_open", "bounce", "t0",
    )
    t0: float  # when net read it (perf_counter), set only with --metrics-listen

    def __init__(self, conn: Any, tx_conn: TxConn, p_ibuf: int, length: int, wpos: Wpos) -> None:
        self.route = ()  # Cmsg's fields, set here: one call less per request
        self.hop = 0
        self.conn = conn
        self.tx_conn = tx_conn
        self.p_ibuf = p_ibuf  # which of the connection's ibufs holds its bytes
        self.len = length  # its bytes there; 0 once released early
        self.wpos = wpos
        self.type = 0
        self.sync = 0
        self.schema_version = 0
        self.stream_id = 0
        self.req: Any = None
        self.diag: BoxError | None = None
        self.txn_open = False  # TX: its stream has a transaction open after it
        self.bounce = 0  # output over the limit: TX sent it back; or net sends it again


class ServiceMsg(Cmsg):
    """Connect, disconnect and destroy: the connection's own life as routes.

    Connect starts in the listener with `sock`, `peer` and `net` (the thread
    chosen); net fills `conn`, TX fills `tx_conn` and `wpos` (the greeting), or
    sets `close` to refuse the connection.
    """

    __slots__ = ("conn", "tx_conn", "sock", "peer", "net", "wpos", "close")

    def __init__(self, route: tuple[Any, ...], conn: Any = None, tx_conn: TxConn | None = None) -> None:
        super().__init__(route)
        self.conn = conn
        self.tx_conn = tx_conn
        self.sock: Any = None
        self.peer: Any = None
        self.net = 0
        self.wpos = WPOS_ZERO
        self.close = False


class DiscardMsg(Cmsg):
    """TX to net: this request went into a fiber, release its input now, so a
    long-running call does not pin the ibuf (Tarantool #946)."""

    __slots__ = ("msg",)

    def __init__(self, route: tuple[Any, ...], msg: IprotoMsg) -> None:
        super().__init__(route)
        self.msg = msg
