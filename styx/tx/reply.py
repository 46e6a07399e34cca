"""Replies, written by TX into the connection's obuf.

Every packet follows the obuf savepoint recipe: allocate the fixed-width
header (and the DATA prefix), stream the body after it, then patch the header
with the length, code, sync and schema version. The obuf is fetched only
*after* a request has executed: a request may yield, and the obufs may rotate
meanwhile (Tarantool #3255). Encoding never yields, so each packet is
contiguous in the stream and two replies never interleave.

After writing, `msg.wpos` is the new end of output: the net thread flushes
up to it when the message comes back.
"""

from __future__ import annotations

from typing import Any

import msgpack

from ..iproto_msg import IprotoMsg, TxConn, Wpos
from ..memory.obuf import Obuf
from ..protocol import constants as C
from ..protocol.accel import accel
from ..protocol.codec import DATA_HEAD, HEADER_LEN, OK_PACKET_LEN, data_packet, ok_packet, pack_header_into
from ..protocol.errors import BoxError, encode_error_body

__all__ = ["reply_ok", "reply_map", "reply_data", "reply_one", "reply_array", "array_header_len", "reply_error",
           "write_chunk"]


def reply_ok(tx_conn: TxConn, msg: IprotoMsg, schema_version: int) -> None:
    """OK with an empty map body (PING, AUTH, ...)."""
    ob = tx_conn.obuf[tx_conn.cur_obuf]
    buf, off = ob.alloc(OK_PACKET_LEN)
    ok_packet(buf, off, msg.sync, schema_version)
    msg.wpos = (tx_conn.cur_obuf, ob.used)
    if msg.stream_id:
        _mark_txn(tx_conn, msg)


def _mark_txn(tx_conn: TxConn, msg: IprotoMsg) -> None:
    """Tell net whether the stream keeps a transaction open after this request."""
    msg.txn_open = msg.stream_id in tx_conn.session.txns


def reply_map(tx_conn: TxConn, msg: IprotoMsg, schema_version: int, body: bytes) -> None:
    """OK with an encoded body map (ID)."""
    _packet(tx_conn, msg.sync, C.OK, schema_version, body)
    msg.wpos = tx_conn.end()
    if msg.stream_id:
        _mark_txn(tx_conn, msg)


def reply_error(tx_conn: TxConn, msg: IprotoMsg, schema_version: int, err: BoxError, packb: Any) -> None:
    write_error(tx_conn, msg.sync, schema_version, err, packb)
    msg.wpos = tx_conn.end()
    if msg.stream_id:
        _mark_txn(tx_conn, msg)


def reply_data(tx_conn: TxConn, msg: IprotoMsg, schema_version: int, items: list[bytes],
               position: str | None = None) -> None:
    """OK with `{DATA: [...]}`: `items` are the encoded elements; with a
    pagination `position`, `{DATA: [...], POSITION: position}`."""
    n = len(items)
    if position is None:
        body = items[0] if n == 1 else b"".join(items)
        msg.wpos = _data_packet(tx_conn, msg.sync, C.OK, schema_version, body, n)
    else:
        body = b"".join(items) + bytes((C.POSITION,)) + msgpack.packb(position)
        msg.wpos = _data_packet(tx_conn, msg.sync, C.OK, schema_version, body, n, 2)
    if msg.stream_id:
        _mark_txn(tx_conn, msg)


def reply_one(tx_conn: TxConn, msg: IprotoMsg, schema_version: int, data: bytes | None) -> None:
    """OK with `{DATA: [data]}`, or `{DATA: []}` for None, outside a
    stream: a point read's, a DML's."""
    if data is None:
        msg.wpos = _data_packet(tx_conn, msg.sync, C.OK, schema_version, b"", 0)
    else:
        msg.wpos = _data_packet(tx_conn, msg.sync, C.OK, schema_version, data, 1)


def reply_array(tx_conn: TxConn, msg: IprotoMsg, schema_version: int, packed: bytes, count: int) -> None:
    """OK with `{DATA: [...]}`, from the `count` elements packed as one
    MessagePack array: its header is replaced by Tarantool's `0xDD u32`."""
    msg.wpos = _data_packet(tx_conn, msg.sync, C.OK, schema_version, packed, count, 1, array_header_len(count))
    if msg.stream_id:
        _mark_txn(tx_conn, msg)


def array_header_len(count: int) -> int:
    """The bytes of a MessagePack array header for `count` elements, as
    msgpack packs it (fixarray, array 16, array 32)."""
    return 1 if count < 16 else 3 if count < 0x10000 else 5


def write_error(tx_conn: TxConn, sync: int, schema_version: int, err: BoxError, packb: Any) -> None:
    _packet(tx_conn, sync, C.TYPE_ERROR | err.code, schema_version, encode_error_body(err, packb))


def write_chunk(tx_conn: TxConn, sync: int, schema_version: int, item: bytes) -> None:
    """An IPROTO_CHUNK push: `{DATA: [value]}` with the running request's sync."""
    _data_packet(tx_conn, sync, C.CHUNK, schema_version, item, 1)


def _packet(tx_conn: TxConn, sync: int, code: int, schema_version: int, body: bytes) -> None:
    ob = tx_conn.obuf[tx_conn.cur_obuf]
    buf, off = ob.alloc(HEADER_LEN)
    ob.dup(body)
    pack_header_into(buf, off, HEADER_LEN - 5 + len(body), code, sync, schema_version)


SMALL_REPLY = 16384  # a reply up to this size is one contiguous allocation


def _py_data_packet(tx_conn: TxConn, sync: int, code: int, schema_version: int, body: bytes | memoryview,
                    count: int, map_size: int = 1, skip: int = 0) -> Wpos:
    """A `{DATA: [count elements], ...}` packet: `body[skip:]` is the
    elements, then the other `map_size - 1` key-value pairs of the body
    map. Returns the new end of output. `put_data` (_accel.c) is this,
    compiled, for a reply that fits in the obuf's current slab."""
    cur = tx_conn.cur_obuf
    ob = tx_conn.obuf[cur]
    total = DATA_HEAD + len(body) - skip
    if total <= SMALL_REPLY:
        buf, off = ob.alloc(total)
        data_packet(buf, off, total, code, sync, schema_version, map_size, count, body, skip)
    else:  # the head, then the body streamed (it may span slabs)
        buf, off = ob.alloc(DATA_HEAD)
        data_packet(buf, off, total, code, sync, schema_version, map_size, count, b"")
        ob.dup(memoryview(body)[skip:] if skip else body)
    return (cur, ob.used)


if accel is not None:
    accel.configure_reply(TxConn, Obuf, _py_data_packet, SMALL_REPLY)
# The compiled twin gives the same bytes (tests/unit/test_accel.py).
_data_packet = _py_data_packet if accel is None else accel.put_data
