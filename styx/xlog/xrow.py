"""Rows of Tarantool's .xlog and .snap files (Tarantool's `xrow`), sans I/O.

A row on disk is an IPROTO request without its length prefix and SYNC: a
header map, then a body map (none for NOP). Rows follow each other inside a
block with nothing between them.

The header keys go in the order Tarantool writes them, each only when it is
set: REQUEST_TYPE, REPLICA_ID, GROUP_ID, LSN, TIMESTAMP (always a float64),
TSN (in multi-row transactions only, as `lsn - tsn`), FLAGS (on the last row
of a multi-row transaction: COMMIT). A DML body's keys go in the order
SPACE_ID, INDEX_ID, INDEX_BASE, KEY, OPS, TUPLE_META, TUPLE, zeros left
out; the values are MessagePack bytes the caller packed (a stored tuple
goes in verbatim). A snapshot row's body is always `82 10 ce <u32> 21` and
the tuple's bytes. So encoded, rows are byte for byte what Tarantool 2.6
writes (reference: ../shared/reference/tarantool-xlog.md, section 4; the
tests check its vectors).

Decoding gives `Row`s with the body decoded and its bytes kept (`body_raw`),
so a reader can replay it and a writer can copy it.

Risk: Tarantool's reader is strict about MessagePack that Python is lenient
about (and back); rows are built here from packed parts, never from a dict
that Python might reorder or merge.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..protocol import constants as C
from ..protocol.codec import new_unpacker

__all__ = ["Row", "autocommit_header", "encode_header", "encode_dml_body", "encode_snapshot_body", "encode_row",
           "decode_rows", "RowError", "NOP", "FLAG_COMMIT", "GROUP_LOCAL"]

NOP = 12  # IPROTO_NOP: a row with no body
FLAG_COMMIT = 0x01  # IPROTO_FLAG_COMMIT, the last row of a transaction
GROUP_LOCAL = 1  # GROUP_ID of a row of a local space

# Header keys (Tarantool's iproto_key), in the order Tarantool writes them.
_REPLICA_ID, _LSN, _TIMESTAMP, _GROUP_ID, _TSN, _FLAGS = 0x02, 0x03, 0x04, 0x07, 0x08, 0x09
_F64 = struct.Struct(">Bd")
_TS = struct.Struct(">BBd")  # TIMESTAMP: key, float64
_SNAP_BODY = struct.Struct(">BBBIB")  # 82 10 ce <space id> 21


class RowError(ValueError):
    """A row that is not valid MessagePack, or not a row."""


@dataclass(slots=True)
class Row:
    type: int
    body: Any = None  # the decoded body map; None for none
    body_raw: bytes = b""
    replica_id: int = 0
    group_id: int = 0
    lsn: int = 0
    timestamp: float = 0.0
    tsn: int = 0  # the transaction's id: its first row's LSN
    is_commit: bool = True  # the last row of its transaction
    multi: bool = False  # one of several rows of a transaction (TSN on disk)


_FIXINT = [bytes((i,)) for i in range(0x80)]
_U8, _U16, _U32, _U64 = (struct.Struct(f">B{c}") for c in "BHIQ")


def _uint(v: int) -> bytes:
    """The smallest MessagePack encoding of an unsigned integer (as msgpack's,
    without a Packer per call)."""
    if v < 0x80:
        return _FIXINT[v]
    if v <= 0xFF:
        return _U8.pack(0xCC, v)
    if v <= 0xFFFF:
        return _U16.pack(0xCD, v)
    if v <= 0xFFFFFFFF:
        return _U32.pack(0xCE, v)
    return _U64.pack(0xCF, v)


def encode_header(type: int, *, replica_id: int = 0, group_id: int = 0, lsn: int = 0,
                  timestamp: float = 0.0, tsn: int | None = None, is_commit: bool = True) -> bytes:
    """A row header. `tsn` (the transaction's first LSN) is given for the
    rows of a multi-row transaction only; `is_commit` marks its last row."""
    if replica_id and lsn and timestamp and tsn is None and not group_id:  # the WAL's common row
        return b"\x84\x00" + _uint(type) + b"\x02" + _uint(replica_id) + b"\x03" + _uint(lsn) + _TS.pack(
            0x04, 0xCB, timestamp)
    parts = [b"\x00", _uint(type)]
    if replica_id:
        parts += (b"\x02", _uint(replica_id))
    if group_id:
        parts += (b"\x07", _uint(group_id))
    if lsn:
        parts += (b"\x03", _uint(lsn))
    if timestamp:
        parts += (b"\x04", _F64.pack(0xCB, timestamp))
    if tsn is not None:
        parts += (b"\x08", _uint(lsn - tsn))
        if is_commit:
            parts += (b"\x09", _uint(FLAG_COMMIT))
    return bytes((0x80 | (len(parts) // 2),)) + b"".join(parts)


def autocommit_header(replica_id: int, timestamp: float) -> Callable[[int, int], bytes]:
    """`header(type, lsn)`: encode_header for the WAL's common row (one
    statement, a replicated space) of one batch: what the rows of a batch
    share (the replica id, the time) is encoded once."""
    mid = b"\x02" + _uint(replica_id) + b"\x03"
    ts = _TS.pack(0x04, 0xCB, timestamp)

    def header(type_: int, lsn: int) -> bytes:
        return b"\x84\x00" + _FIXINT[type_] + mid + _uint(lsn) + ts  # request types are fixints

    return header


def encode_dml_body(space_id: int, *, index_id: int = 0, index_base: int = 0, key: bytes | None = None,
                    ops: bytes | None = None, tuple_meta: bytes | None = None,
                    tuple: bytes | None = None) -> bytes:
    """A DML body from packed values, in Tarantool's key order."""
    if tuple is not None and space_id and not (index_id or index_base) and key is ops is tuple_meta is None:
        return b"\x82\x10" + _uint(space_id) + b"\x21" + tuple  # INSERT, REPLACE
    parts: list[bytes] = []
    if space_id:
        parts += (b"\x10", _uint(space_id))
    if index_id:
        parts += (b"\x11", _uint(index_id))
    if index_base:
        parts += (b"\x15", _uint(index_base))
    if key is not None:
        parts += (b"\x20", key)
    if ops is not None:
        parts += (b"\x28", ops)
    if tuple_meta is not None:
        parts += (b"\x2a", tuple_meta)
    if tuple is not None:
        parts += (b"\x21", tuple)
    return bytes((0x80 | (len(parts) // 2),)) + b"".join(parts)


def encode_snapshot_body(space_id: int, tuple: bytes) -> bytes:
    """A snapshot row's body: the space id always as a uint32, the tuple verbatim."""
    return _SNAP_BODY.pack(0x82, C.SPACE_ID, 0xCE, space_id, C.TUPLE) + tuple


def encode_row(row: Row) -> bytes:
    """A decoded row again, its body copied as it was."""
    header = encode_header(row.type, replica_id=row.replica_id, group_id=row.group_id, lsn=row.lsn,
                           timestamp=row.timestamp, tsn=row.tsn if row.multi else None,
                           is_commit=row.is_commit)
    return header + row.body_raw


def decode_rows(payload: bytes) -> list[Row]:
    """Every row of a block's (decompressed) payload, in order."""
    u = new_unpacker()
    u.feed(payload)
    rows = []
    end = len(payload)
    try:
        while u.tell() < end:
            h = u.unpack()
            if type(h) is not dict:
                raise RowError(f"row header at {u.tell()} is not a map")
            row = _row_from_header(h)
            if row.type != NOP and u.tell() < end:
                start = u.tell()
                row.body = u.unpack()
                row.body_raw = payload[start:u.tell()]
            rows.append(row)
    except RowError:
        raise
    except Exception as e:  # noqa: BLE001 - msgpack's errors, and OutOfData, are one thing here
        raise RowError(f"invalid MessagePack in a row: {e}") from e
    return rows


def _row_from_header(h: dict[Any, Any]) -> Row:
    def uint(key: int) -> int:
        v = h.get(key, 0)
        if type(v) is not int or v < 0:
            raise RowError(f"row header key {key}: {v!r} is not an unsigned integer")
        return v

    t = h.get(C.REQUEST_TYPE)
    if type(t) is not int:
        raise RowError("row header has no request type")
    lsn = uint(_LSN)
    ts = h.get(_TIMESTAMP, 0.0)
    if type(ts) not in (float, int):
        raise RowError("row header timestamp is not a number")
    multi = _TSN in h
    return Row(type=t, replica_id=uint(_REPLICA_ID), group_id=uint(_GROUP_ID), lsn=lsn, timestamp=float(ts),
               tsn=lsn - uint(_TSN) if multi else lsn,
               is_commit=bool(uint(_FLAGS) & FLAG_COMMIT) if multi else True, multi=multi)
