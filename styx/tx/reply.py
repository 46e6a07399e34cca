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

import struct
from typing import Any

import msgpack

from ..iproto_msg import IprotoMsg, Srv
from ..protocol import constants as C
from ..protocol.codec import DATA_PREFIX_LEN, HEADER_LEN, SCHEMA_VERSION_MASK, pack_header_into
from ..protocol.errors import BoxError, encode_error_body

__all__ = ["reply_ok", "reply_map", "reply_data", "reply_error", "write_chunk"]

# A whole OK reply with an empty body, in one struct: the PING fast path.
_OK_EMPTY = struct.Struct(">BIBBBIBBQBBIB")
_OK_EMPTY_LEN = _OK_EMPTY.size  # 29
_DATA_HEAD = HEADER_LEN + DATA_PREFIX_LEN


def reply_ok(srv: Srv, msg: IprotoMsg, schema_version: int) -> None:
    """OK with an empty map body (PING, AUTH, ...)."""
    ob = srv.obuf[srv.p_obuf]
    buf, off = ob.alloc(_OK_EMPTY_LEN)
    _OK_EMPTY.pack_into(buf, off, 0xCE, _OK_EMPTY_LEN - 5, 0x83, C.REQUEST_TYPE, 0xCE, C.OK,
                        C.SYNC, 0xCF, msg.sync, C.SCHEMA_VERSION, 0xCE,
                        schema_version & SCHEMA_VERSION_MASK, 0x80)
    msg.wpos = (srv.p_obuf, ob.used)
    if msg.stream_id:
        _mark_txn(srv, msg)


def _mark_txn(srv: Srv, msg: IprotoMsg) -> None:
    """Tell net whether the stream keeps a transaction open after this request."""
    msg.txn_open = msg.stream_id in srv.session.txns


def reply_map(srv: Srv, msg: IprotoMsg, schema_version: int, body: bytes) -> None:
    """OK with an encoded body map (ID)."""
    _packet(srv, msg.sync, C.OK, schema_version, body)
    msg.wpos = srv.end()
    if msg.stream_id:
        _mark_txn(srv, msg)


def reply_error(srv: Srv, msg: IprotoMsg, schema_version: int, err: BoxError, packb: Any) -> None:
    _packet(srv, msg.sync, C.TYPE_ERROR | err.code, schema_version, encode_error_body(err, packb))
    msg.wpos = srv.end()
    if msg.stream_id:
        _mark_txn(srv, msg)


def reply_data(srv: Srv, msg: IprotoMsg, schema_version: int, items: list[bytes],
               position: str | None = None) -> None:
    """OK with `{DATA: [...]}`: `items` are the encoded elements; with a
    pagination `position`, `{DATA: [...], POSITION: position}`."""
    if position is None:
        _data_packet(srv, msg.sync, C.OK, schema_version, items, len(items))
    else:
        tail = bytes((C.POSITION,)) + msgpack.packb(position)
        _data_packet(srv, msg.sync, C.OK, schema_version, items, len(items), tail)
    msg.wpos = srv.end()
    if msg.stream_id:
        _mark_txn(srv, msg)



def write_chunk(srv: Srv, sync: int, schema_version: int, item: bytes) -> None:
    """An IPROTO_CHUNK push: `{DATA: [value]}` with the running request's sync."""
    _data_packet(srv, sync, C.CHUNK, schema_version, [item], 1)


def _packet(srv: Srv, sync: int, code: int, schema_version: int, body: bytes) -> None:
    ob = srv.obuf[srv.p_obuf]
    buf, off = ob.alloc(HEADER_LEN)
    ob.dup(body)
    pack_header_into(buf, off, HEADER_LEN - 5 + len(body), code, sync, schema_version)


# Header and DATA prefix in one struct: small replies are one alloc, one pack.
_DATA_HEADER = struct.Struct(">BIBBBIBBQBBIBBBI")
SMALL_REPLY = 16384


def _data_packet(srv: Srv, sync: int, code: int, schema_version: int, items: list[bytes],
                 count: int, tail: bytes = b"") -> None:
    """A `{DATA: [items]}` packet; `tail` is more key-value pairs of the body map."""
    ob = srv.obuf[srv.p_obuf]
    if count == 1 and not tail:
        body = items[0]
    elif count == 0 and not tail:
        body = b""
    else:
        body = b"".join(items) + tail
    total = _DATA_HEAD + len(body)
    if total <= SMALL_REPLY:
        buf, off = ob.alloc(total)
        buf[off + _DATA_HEAD:off + total] = body
    else:  # reserve the head, stream the items (they may span slabs)
        buf, off = ob.alloc(_DATA_HEAD)
        for item in items:
            ob.dup(item)
        if tail:
            ob.dup(tail)
    _DATA_HEADER.pack_into(buf, off, 0xCE, total - 5, 0x83, C.REQUEST_TYPE, 0xCE, code,
                           C.SYNC, 0xCF, sync, C.SCHEMA_VERSION, 0xCE, schema_version & SCHEMA_VERSION_MASK,
                           0x82 if tail else 0x81, C.DATA, 0xDD, count)
