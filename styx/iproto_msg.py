"""The boats: what net threads and TX exchange over cbus.

net/ and tx/ never import each other; they meet here and in cbus. This module
holds the message types (Tarantool's `iproto_msg`, the connect/disconnect
service messages, the Kharon) and `Srv`, the per-connection output state that
both worlds see:

- TX creates a `Srv` when a connection arrives (the connect route) and is its
  only writer: the session, the two obufs and which one is being filled, the
  Kharon's flags.
- A net thread only reads obuf slabs up to the end position TX sent it, and
  reports back how far it has written (`wpos` on every request, and the
  Kharon's return trip).

A position in a connection's output is `Wpos(obuf index, Svp)`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .cbus import Cmsg
from .memory import SVP_ZERO, Obuf, Svp

__all__ = ["Wpos", "WPOS_ZERO", "Srv", "IprotoMsg", "DiscardMsg", "ServiceMsg", "Kharon"]


class Wpos(NamedTuple):
    obuf: int  # 0 or 1: which of the connection's two obufs
    svp: Svp


WPOS_ZERO = Wpos(0, SVP_ZERO)


class Kharon(Cmsg):
    """One per connection: carries "new output up to here" from TX to net and
    "written up to here" back (see tx/kharon.py). At most one trip in flight."""

    __slots__ = ("srv", "wpos", "is_push_sent", "is_push_pending")

    def __init__(self, srv: "Srv") -> None:
        super().__init__()
        self.srv = srv
        self.wpos = WPOS_ZERO
        self.is_push_sent = False
        self.is_push_pending = False


class Srv:
    """Per-connection output state shared by net and TX (written by TX only)."""

    __slots__ = ("conn", "net", "session", "obuf", "p_obuf", "kharon", "alive")

    def __init__(self, conn: Any, net: int, obufs: tuple[Obuf, Obuf]) -> None:
        self.conn = conn  # net's connection: opaque to TX, passed back in messages
        self.net = net  # index of the iproto thread that owns the connection
        self.session: Any = None  # TX's session
        self.obuf = obufs
        self.p_obuf = 0  # the obuf TX appends to
        self.kharon = Kharon(self)
        self.alive = True  # cleared by TX when the session closes

    def end(self) -> Wpos:
        """The current end of TX's output."""
        return Wpos(self.p_obuf, self.obuf[self.p_obuf].svp())


class IprotoMsg(Cmsg):
    """One request, from its decoding in net to its reply being flushed.

    Net fills the header fields and the decoded body (`req`, a per-type value;
    or `diag`, a decode error TX will reply with). TX writes the reply and
    sets `wpos` to its end; on the way in, `wpos` is the connection's flushed
    position, so TX can recycle obufs.
    """

    __slots__ = (
        "conn", "srv", "type", "sync", "schema_version", "stream_id", "req", "diag",
        "p_ibuf", "len", "wpos", "discard",
    )

    def __init__(self) -> None:
        super().__init__()
        self.diag: BaseException | None = None
        self.len = 0
        self.discard: Cmsg | None = None


class ServiceMsg(Cmsg):
    """Connect, disconnect and destroy: the connection's own life as routes.

    Connect starts in the listener with `sock`, `peer` and `net` (the thread
    chosen); net fills `conn`, TX fills `srv` and `wpos` (the greeting), or
    sets `close` to refuse the connection.
    """

    __slots__ = ("conn", "srv", "sock", "peer", "net", "wpos", "close")

    def __init__(self, route: tuple[Any, ...], conn: Any = None, srv: Srv | None = None) -> None:
        super().__init__(route)
        self.conn = conn
        self.srv = srv
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
