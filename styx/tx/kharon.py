"""The Kharon: out-of-band output from TX to a connection, and news back.

A reply reaches the network because its request message goes back to the net
thread. A push (IPROTO_CHUNK from `box.session.push`; watcher events later)
has no message of its own, so each connection has one ferryman: TX appends
the packet to the obuf and calls `push`. If the Kharon is at home, he sails
at once with "new data up to here" (`wpos` = the end of TX's output); if he
is already on the river, a flag says "go again when you are back", so any
number of pushes ride one trip. At the net thread he swaps his cargo for
"written up to here" and comes straight back (he does not wait for the
write); TX then recycles the obufs already written (`accept_wpos`).

He travels on the same tx->net pipe as replies, so a push and the replies
written after it reach the network in order. When the session closes, the
pending flag is cleared, so a returning Kharon does not sail again
(Tarantool #6520).
"""

from __future__ import annotations

from ..iproto_msg import Kharon, TxConn, Wpos
from ..protocol.accel import accel

__all__ = ["accept_wpos", "push", "end_push"]


def py_accept_wpos(tx_conn: TxConn, wpos: Wpos) -> int:
    """Net has written everything before `wpos`: recycle and rotate obufs.

    Returns the output bytes held for a client that has not taken them all:
    the data of both obufs if some of it is not written yet, else 0 (what
    is held then goes at the next rotation; waiting would not free it).

    If the written position is inside the obuf TX is filling, the other one
    has been written out completely: recycle it. Then, if the
    current one holds data and the other is empty, switch, so new output goes
    to a fresh buffer while net drains the old one.
    """
    cur = tx_conn.cur_obuf
    obuf = tx_conn.obuf
    used = obuf[cur].used
    if wpos[0] != cur:  # net is still in the other one
        held = obuf[1 - cur].used
        return held + used if used or held > wpos[1] else 0
    prev = obuf[1 - cur]
    if prev.used:
        prev.recycle()
    if used:
        tx_conn.cur_obuf = 1 - cur
    return used if used > wpos[1] else 0


if accel is not None:
    accel.configure_accept(py_accept_wpos)
# Every request's first step in TX, compiled when it can be (the twin
# gives the same results: tests/unit/test_accel.py).
accept_wpos = py_accept_wpos if accel is None else accel.accept_wpos


def push(tx_conn: TxConn) -> None:
    """TX appended out-of-band output to `tx_conn`'s obuf: tell the net thread."""
    kharon = tx_conn.kharon
    if kharon.is_push_sent:
        kharon.is_push_pending = True
        return
    _sail(kharon)


def _sail(kharon: Kharon) -> None:
    tx_conn = kharon.tx_conn
    link = tx_conn.net
    kharon.wpos = tx_conn.end()
    kharon.is_push_pending = False
    kharon.is_push_sent = True
    kharon.trips += 1
    kharon.route = link.kharon_route
    kharon.hop = 0
    link.pipe.push(kharon)


def end_push(kharon: Kharon) -> None:
    """The Kharon is back in TX with the written position."""
    tx_conn = kharon.tx_conn
    kharon.is_push_sent = False
    if not tx_conn.alive:
        return
    accept_wpos(tx_conn, kharon.wpos)
    if kharon.is_push_pending:
        _sail(kharon)
