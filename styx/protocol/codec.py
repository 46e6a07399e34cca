"""Framing, headers and bodies: IPROTO packets in and out, no sockets.

In: a packet is `<length><header map>[<body map>]`, the length a MessagePack
unsigned integer of any width. `frame` reads the length prefix in place;
`PacketDecoder` decodes complete packets with one reusable msgpack Unpacker
(fed once per batch, so that a burst of pipelined requests costs one copy;
scan.py's pure-Python batch decoder is built on it);
`decode_header` and the `decode_*` body functions check types the way
Tarantool's xrow decoders do and raise `BoxError` with Tarantool's codes.

Out: every reply (OK, error, CHUNK) starts with the same fixed-width 28-byte
header Tarantool writes (captures.md), `0xCE u32 length | 0x83 | 0x00 0xCE u32
code | 0x01 0xCF u64 sync | 0x05 0xCE u32 schema_version`: the schema version
is a uint32, as in Tarantool 2.x; connectors such as Node's tarantool-driver
read the body at that fixed offset. It is written once the body length is known
(`pack_header_into`), so a writer reserves it, writes the body, then patches
it. Data replies continue with the 7-byte `0x81 0x30 0xDD u32 count` prefix.

Strings: MP_STR is decoded with `surrogateescape`, and encoded back the same
way, so bytes that are not UTF-8 (a chap-sha1 scramble sent as MP_STR) survive
the round trip exactly. MP_BIN stays `bytes`. Decimal and uuid extensions
decode to `Decimal` and `UUID` (protocol/ext.py); other extensions stay
`msgpack.ExtType`.
"""

from __future__ import annotations

import functools
import math
import struct
from collections.abc import Callable
from typing import Any, NamedTuple

import msgpack

from . import constants as C
from .accel import accel
from .errors import ER, BoxError
from .ext import default, ext_hook

__all__ = [
    "HEADER_LEN", "DATA_PREFIX_LEN", "DATA_HEAD", "OK_PACKET_LEN", "pack_header_into", "data_packet", "ok_packet",
    "encode_reply",
    "encode_packet", "frame", "PacketDecoder", "decode_header", "new_packer", "new_unpacker",
    "CallRequest", "AuthRequest", "IdRequest", "DmlRequest", "BeginRequest", "NO_BODY", "Pairs",
    "map_size", "map_pairs", "HeaderError", "BODY_DECODERS",
    "decode_call", "decode_auth", "decode_id", "decode_dml", "decode_begin", "decode_watch",
]

HEADER = struct.Struct(">BIBBBIBBQBBI")
HEADER_LEN = HEADER.size  # 28
SCHEMA_VERSION_MASK = 0xFFFFFFFF  # written as a uint32 (0xCE), as Tarantool 2.x does
DATA_PREFIX = struct.Struct(">BBBI")
DATA_PREFIX_LEN = DATA_PREFIX.size  # 7
UNPACKER_MAX = 2 ** 31 - 1


def new_packer() -> msgpack.Packer:
    return msgpack.Packer(use_bin_type=True, unicode_errors="surrogateescape", default=default)


def plain_first(pack: Callable[[Any], bytes]) -> Callable[[Any], bytes]:
    """`pack` (a msgpack packer with use_bin_type=True and surrogateescape),
    with the plain values (None, bool, int, float, str, bytes, and lists and
    dicts of them) packed by the compiled `Packer` when there is one: the
    same bytes, about 120 ns less for a small tuple. Anything else goes to
    `pack` whole."""
    return pack if accel is None else accel.Packer(pack)


def new_unpacker() -> msgpack.Unpacker:
    return msgpack.Unpacker(
        raw=False,
        strict_map_key=False,
        unicode_errors="surrogateescape",
        max_buffer_size=UNPACKER_MAX,
        ext_hook=ext_hook,  # decimal and uuid become Decimal and UUID
    )


def pack_header_into(buf: bytearray, off: int, length: int, code: int, sync: int, schema_version: int) -> None:
    """Write the 28-byte reply header; `length` counts everything after the prefix."""
    HEADER.pack_into(buf, off, 0xCE, length, 0x83, C.REQUEST_TYPE, 0xCE, code,
                     C.SYNC, 0xCF, sync, C.SCHEMA_VERSION, 0xCE, schema_version & SCHEMA_VERSION_MASK)


DATA_HEAD = HEADER_LEN + DATA_PREFIX_LEN  # 35: a DATA reply's fixed head
_DATA_HEAD_STRUCT = struct.Struct(">BIBBBIBBQBBIBBBI")


def py_data_packet(buf: bytearray, off: int, total: int, code: int, sync: int, schema_version: int,
                   map_size: int, count: int, body: bytes | memoryview, skip: int = 0) -> None:
    """Write a `{DATA: [count elements], ...}` reply at `buf[off:]`: the
    35-byte head (the length field says `total - 5`), then `body[skip:]`,
    the elements and the other `map_size - 1` pairs of the body map (empty
    when the caller streams them itself). `data_packet` is this, compiled
    when it can be (_accel.c)."""
    if len(body) > skip:
        buf[off + DATA_HEAD:off + DATA_HEAD + len(body) - skip] = memoryview(body)[skip:] if skip else body
    _DATA_HEAD_STRUCT.pack_into(buf, off, 0xCE, total - 5, 0x83, C.REQUEST_TYPE, 0xCE, code,
                                C.SYNC, 0xCF, sync, C.SCHEMA_VERSION, 0xCE, schema_version & SCHEMA_VERSION_MASK,
                                0x80 | map_size, C.DATA, 0xDD, count)


OK_PACKET = struct.Struct(">BIBBBIBBQBBIB")  # an OK reply with an empty body map: PING's
OK_PACKET_LEN = OK_PACKET.size  # 29


def py_ok_packet(buf: bytearray, off: int, sync: int, schema_version: int) -> None:
    """Write an OK reply with an empty body map (`OK_PACKET_LEN` bytes) at
    `buf[off:]`; `ok_packet` is this, compiled when it can be (_accel.c)."""
    OK_PACKET.pack_into(buf, off, 0xCE, OK_PACKET_LEN - 5, 0x83, C.REQUEST_TYPE, 0xCE, C.OK, C.SYNC, 0xCF, sync,
                        C.SCHEMA_VERSION, 0xCE, schema_version & SCHEMA_VERSION_MASK, 0x80)


def encode_reply(code: int, sync: int, schema_version: int, body: bytes) -> bytes:
    """A whole reply packet as bytes (for errors written outside an obuf, and tests)."""
    out = bytearray(HEADER_LEN + len(body))
    pack_header_into(out, 0, HEADER_LEN - 5 + len(body), code, sync, schema_version)
    out[HEADER_LEN:] = body
    return bytes(out)


def encode_packet(header: dict[int, Any], body: Any = None, packb: Any = None) -> bytes:
    """A packet with a minimal header encoding (requests in tests, EVENT pushes)."""
    packb = packb or new_packer().pack
    payload = packb(header) + (packb(body) if body is not None else b"")
    return b"\xce" + len(payload).to_bytes(4, "big") + payload


# -- framing ---------------------------------------------------------------

_PREFIX_LEN = {0xCC: 2, 0xCD: 3, 0xCE: 5, 0xCF: 9}


class FramingError(Exception):
    """The length prefix is not a MessagePack uint, or claims too much: fatal."""


def frame(buf: bytearray | bytes, pos: int, end: int) -> tuple[int, int]:
    """Read the length prefix at `pos`: (prefix length, packet length).

    (0, 0) means the prefix itself is incomplete. Raises FramingError for a
    prefix that is not an unsigned integer or a length over PACKET_SIZE_MAX.
    """
    b = buf[pos]
    if b < 0x80:
        return 1, b
    hl = _PREFIX_LEN.get(b)
    if hl is None:
        raise FramingError("packet length")
    if end - pos < hl:
        return 0, 0
    length = int.from_bytes(buf[pos + 1:pos + hl], "big")
    if length > C.PACKET_SIZE_MAX:
        raise FramingError(f"too big packet size in the header: {length}")
    return hl, length


class PacketDecoder:
    """One reusable msgpack Unpacker for decoding runs of complete packets.

    `begin(view, start, end)` feeds `view[start:end]`, a run of complete
    packets, in one copy. The caller then unpacks from `u` (or reads a
    header in place and lets `u` skip it later), the buffer position of the
    unpacker is `origin + u.tell()`, and `finish()` ends the run. After a decode error
    the unpacker's position is unknown: `resync(view, next, end)` continues
    with a fresh one from the next packet and returns the new origin.
    """

    __slots__ = ("u", "origin", "_fed", "_end")

    def __init__(self) -> None:
        self.u = new_unpacker()
        self.origin = 0
        self._fed = 0
        self._end = 0  # u.tell() once everything fed is consumed

    def begin(self, view: memoryview, start: int, end: int) -> int:
        u = self.u
        if self._fed > (1 << 20) or u.tell() != self._end:
            # A huge batch (do not keep its buffer), or one not consumed to
            # the end: never let one connection's bytes reach the next batch.
            u = self.u = new_unpacker()
        self._fed = end - start
        self.origin = start - u.tell()
        self._end = u.tell() + self._fed
        u.feed(view[start:end])
        return self.origin

    def finish(self) -> None:
        """The run is done; what the caller read in place instead of
        unpacking is consumed here, so the next run keeps this unpacker."""
        left = self._end - self.u.tell()
        if left > 0:
            self.u.read_bytes(left)

    def resync(self, view: memoryview, start: int, end: int) -> int:
        self.u = new_unpacker()
        self._fed = self._end = 0
        self.origin = start
        if start < end:
            self.begin(view, start, end)
        return self.origin


# Header keys Tarantool type-checks, with their MessagePack type. Other keys
# are skipped (2.11.1+, gh-8745: a newer peer may send keys we do not know).
_HEADER_DOUBLE = C.TIMESTAMP
_HEADER_MAX_KNOWN = C.STREAM_ID


def decode_header(h: Any) -> tuple[int, int, int, int]:
    """(request type, sync, schema version, stream id) of a decoded header.

    Keys must be unsigned integers; known keys must have their type. On error
    the HeaderError carries `sync`: the SYNC decoded before the failure, else 0,
    which is what Tarantool replies with (it decodes keys in wire order, and
    a Python dict keeps that order).
    """
    if type(h) is Pairs:
        items: Any = h
    elif type(h) is not dict:
        raise HeaderError(0)
    else:
        items = h.items()
    if len(h) == 2 and type(h) is dict:  # the common {REQUEST_TYPE, SYNC}: no loop
        k0, k1 = h
        if type(k0) is int and type(k1) is int:  # (False and 0.0 also hash as 0)
            t = h.get(C.REQUEST_TYPE)
            sync = h.get(C.SYNC)
            if type(t) is int and type(sync) is int and t >= 0 and 0 <= sync < 1 << 64:
                return t, sync, 0, 0
    t = sync = sv = stream_id = 0
    for k, v in items:
        if type(k) is not int or k < 0:
            raise HeaderError(sync)
        if k > _HEADER_MAX_KNOWN:
            continue
        if k == _HEADER_DOUBLE:
            if type(v) is not float:
                raise HeaderError(sync)
            continue
        if type(v) is not int or v < 0 or v >= 1 << 64:
            raise HeaderError(sync)
        if k == C.REQUEST_TYPE:
            t = v
        elif k == C.SYNC:
            sync = v
        elif k == C.SCHEMA_VERSION:
            sv = v
        elif k == C.STREAM_ID:
            stream_id = v
    return t, sync, sv, stream_id


class HeaderError(BoxError):
    """A header Tarantool would not decode (error 20), with the SYNC decoded
    before the failure: the reply goes out with it."""

    def __init__(self, sync: int) -> None:
        super().__init__(ER.INVALID_MSGPACK, "packet header")
        self.sync = sync



def _is_uint(v: Any) -> bool:
    return type(v) is int and 0 <= v < 1 << 64


# -- maps whose keys Python would merge -------------------------------------


class Pairs(list[Any]):
    """A map decoded as its (key, value) pairs, in wire order."""


def map_size(buf: bytearray | bytes, pos: int) -> int:
    """The entry count of the MessagePack map at `pos`, or -1 if not a map."""
    b = buf[pos]
    if 0x80 <= b <= 0x8F:
        return b & 0x0F
    if b == 0xDE:
        return int.from_bytes(buf[pos + 1:pos + 3], "big")
    if b == 0xDF:
        return int.from_bytes(buf[pos + 1:pos + 5], "big")
    return -1


def map_pairs(data: bytes) -> Pairs:
    """Decode a map's top level as pairs.

    Python merges keys that compare equal (0, 0.0 and False are one dict
    key), and then a key of the wrong type would go unseen. When a decoded
    dict is shorter than its map, the caller decodes it again this way.
    """
    u = new_unpacker()
    u.feed(data)
    n = u.read_map_header()
    return Pairs((u.unpack(), u.unpack()) for _ in range(n))


# -- bodies ------------------------------------------------------------------

NO_BODY: Any = type("NoBody", (), {"__repr__": lambda self: "NO_BODY"})()
"""The body of a packet that has none (a body of nil is present, and not a map)."""


_ABSENT: Any = object()  # a key not in the body (nil is a present value of the wrong type)


def _bad(what: str = "packet body") -> BoxError:
    return BoxError(ER.INVALID_MSGPACK, what)


def _missing(key: int) -> BoxError:
    return BoxError(ER.MISSING_REQUEST_FIELD, C.KEY_NAMES.get(key, str(key)))


def _strict_map(body: Any, what: str = "packet body") -> dict[int, Any]:
    """CALL, AUTH and ID bodies: required, a map, every key an unsigned int."""
    if body is NO_BODY:
        raise _bad("missing request body" if what == "packet body" else what)
    if type(body) is Pairs:
        if any(type(k) is not int or k < 0 for k, _ in body):
            raise _bad(what)
        return dict(body)
    if type(body) is not dict:
        raise _bad(what)
    for k in body:
        if type(k) is not int or k < 0:
            raise _bad(what)
    return body


class CallRequest(NamedTuple):
    name: str
    args: list[Any]


_new_tuple = tuple.__new__  # a NamedTuple made without its Python-level __new__


def decode_call(body: Any, key: int = C.FUNCTION_NAME) -> CallRequest:
    """CALL, CALL_16 (FUNCTION_NAME) and EVAL (`key=EXPR`): name and arguments."""
    if type(body) is dict and len(body) == 2:  # the usual shape: both keys and nothing else
        name = body.get(key)
        args = body.get(C.TUPLE)
        if type(name) is str and type(args) is list:
            return _new_tuple(CallRequest, (name, args))
    m = _strict_map(body)
    name = m.get(key, _ABSENT)
    args = m.get(C.TUPLE, [])
    if (name is not _ABSENT and type(name) is not str) or type(args) is not list:
        raise _bad()
    if name is _ABSENT:
        raise _missing(key)
    return CallRequest(name, args)


class AuthRequest(NamedTuple):
    user: str
    tuple: list[Any]


def decode_auth(body: Any) -> AuthRequest:
    m = _strict_map(body)
    user = m.get(C.USER_NAME, _ABSENT)
    tup = m.get(C.TUPLE, _ABSENT)
    if (user is not _ABSENT and type(user) is not str) or (tup is not _ABSENT and type(tup) is not list):
        raise _bad()
    if user is _ABSENT:
        raise _missing(C.USER_NAME)
    if tup is _ABSENT:
        raise _missing(C.TUPLE)
    return AuthRequest(user, tup)


class IdRequest(NamedTuple):
    version: int
    features: list[int]
    auth_type: str | None


def decode_id(body: Any) -> IdRequest:
    """An empty body is an error, an empty map is version 0 with no features."""
    m = _strict_map(body, "request body")
    version = m.get(C.VERSION, 0)
    features = m.get(C.FEATURES, [])
    auth_type = m.get(C.AUTH_TYPE, _ABSENT)
    if not _is_uint(version) or type(features) is not list:
        raise _bad("request body")
    if any(not _is_uint(f) for f in features):
        raise _bad("request body")
    if auth_type is _ABSENT:
        auth_type = None
    elif type(auth_type) is not str:
        raise _bad("request body")
    return IdRequest(version, features, auth_type)


class DmlRequest:
    """A decoded SELECT/INSERT/REPLACE/UPDATE/DELETE/UPSERT body.

    A plain class: the decoder stores only the keys the request has, in the
    instance dict, and the class attributes are the defaults of the rest.
    """

    type = 0
    space_id: int | None = None
    space_name: str | None = None
    index_id = 0
    index_name: str | None = None
    limit = 0xFFFFFFFF
    offset = 0
    iterator = C.ITER_EQ
    # decode_dml sets these where the request type requires them:
    key: list[Any] = None  # type: ignore[assignment]  # (see above)
    tuple: list[Any] = None  # type: ignore[assignment]  # (see above)
    ops: list[Any] = None  # type: ignore[assignment]  # (see above)
    index_base = 0
    fetch_position = False
    after_position: str | bytes | None = None
    after_tuple: list[Any] | None = None
    # A point read, set by the fast decode: a SELECT with EQ, offset 0, a
    # limit and a key of one unsigned int, which is this (TX reads it with
    # one dict look-up when the index allows: tx/process.py).
    point: int | None = None


_UINT, _ARRAY, _STR, _BOOL, _POS = range(5)
# Body keys a DML request reads: (attribute, the MessagePack type it must have).
_DML_KEYS = {
    C.SPACE_ID: ("space_id", _UINT), C.INDEX_ID: ("index_id", _UINT),
    C.LIMIT: ("limit", _UINT), C.OFFSET: ("offset", _UINT),
    C.ITERATOR: ("iterator", _UINT), C.INDEX_BASE: ("index_base", _UINT),
    C.KEY: ("key", _ARRAY), C.TUPLE: ("tuple", _ARRAY), C.OPS: ("ops", _ARRAY),
    C.AFTER_TUPLE: ("after_tuple", _ARRAY), C.SPACE_NAME: ("space_name", _STR),
    C.INDEX_NAME: ("index_name", _STR), C.FETCH_POSITION: ("fetch_position", _BOOL),
    C.AFTER_POSITION: ("after_position", _POS),
}
_MANDATORY = {
    C.SELECT: (C.SPACE_ID, C.LIMIT, C.KEY),
    C.INSERT: (C.SPACE_ID, C.TUPLE),
    C.REPLACE: (C.SPACE_ID, C.TUPLE),
    C.UPDATE: (C.SPACE_ID, C.KEY, C.TUPLE),
    C.DELETE: (C.SPACE_ID, C.KEY),
    C.UPSERT: (C.SPACE_ID, C.TUPLE, C.OPS),
}  # each in key order: Tarantool reports the lowest missing key


def decode_dml(req_type: int, body: Any) -> DmlRequest:
    """SELECT, INSERT, REPLACE, UPDATE, DELETE, UPSERT (`xrow_decode_dml`).

    No body is not an error here (the mandatory-field check reports it);
    keys that are not unsigned ints are skipped; a known key of the wrong
    type is "packet body". One pass over the body.
    """
    if type(body) is dict and len(body) <= 6:
        # The shape of nearly every request: SPACE_ID, INDEX_ID, ITERATOR,
        # LIMIT, OFFSET, KEY (SELECT), or SPACE_ID and TUPLE (INSERT/REPLACE).
        fast = _fast_dml(req_type, body)
        if fast is not None:
            return fast
    if body is NO_BODY:
        m: dict[Any, Any] = {}
    elif type(body) is Pairs:
        m = {k: v for k, v in body if type(k) is int and k >= 0}
    elif type(body) is not dict:
        raise _bad()
    else:
        m = body
    req = DmlRequest()
    d = req.__dict__
    d["type"] = req_type
    keys = _DML_KEYS
    for k, v in m.items():
        spec = keys.get(k)
        if spec is None or type(k) is not int:
            if type(k) is not int or k < 0:  # skipped, as Tarantool does (16.0 is no uint)
                return decode_dml(req_type, {k2: v2 for k2, v2 in m.items()
                                             if type(k2) is int and k2 >= 0})
            continue
        name, kind = spec
        if kind == _UINT:
            if type(v) is not int or v < 0 or v >= 1 << 64:
                raise _bad()
            if v > 0xFFFFFFFF:
                v &= 0xFFFFFFFF  # Tarantool keeps these fields in 32 bits
        elif kind == _ARRAY:
            if type(v) is not list:
                raise _bad()
        elif kind == _STR:
            if type(v) is not str:
                raise _bad()
        elif kind == _BOOL:
            if type(v) is not bool:
                raise _bad()
        elif type(v) is not str and type(v) is not bytes:
            raise _bad()
        d[name] = v
    for k in _MANDATORY.get(req_type, ()):
        if k not in m and not (k == C.SPACE_ID and C.SPACE_NAME in m):
            raise _missing(k)
    return req


_SELECT_KEYS = frozenset((C.SPACE_ID, C.INDEX_ID, C.ITERATOR, C.LIMIT, C.OFFSET, C.KEY))
_UPDATE_KEYS = frozenset((C.SPACE_ID, C.INDEX_ID, C.KEY, C.TUPLE, C.INDEX_BASE))
_DELETE_KEYS = frozenset((C.SPACE_ID, C.INDEX_ID, C.KEY))


def _py_fast_dml(req_type: int, m: dict[Any, Any]) -> DmlRequest | None:
    """`decode_dml` for the common shapes (SELECT; INSERT and REPLACE of a
    tuple; UPDATE and DELETE by a key), all checks inline; None if the body
    is anything else (the general path then decides). A key that is not an
    int is for the general path too, even one equal to an int (16.0 is not
    SPACE_ID: Tarantool skips it)."""
    for k in m:
        if type(k) is not int:
            return None
    get = m.get
    space_id = get(C.SPACE_ID)
    if type(space_id) is not int or not 0 <= space_id <= 0xFFFFFFFF:
        return None
    if req_type == C.SELECT:
        if not m.keys() <= _SELECT_KEYS:
            return None
        iid = get(C.INDEX_ID, 0)
        it = get(C.ITERATOR, 0)
        limit = get(C.LIMIT)
        offset = get(C.OFFSET, 0)
        key = get(C.KEY)
        if (type(iid) is not int or type(it) is not int or type(limit) is not int
                or type(offset) is not int or type(key) is not list
                or not 0 <= iid <= 0xFFFFFFFF or not 0 <= it <= 0xFFFFFFFF
                or not 0 <= limit <= 0xFFFFFFFF or not 0 <= offset <= 0xFFFFFFFF):
            return None
        fields = {"type": req_type, "space_id": space_id, "index_id": iid, "iterator": it,
                  "limit": limit, "offset": offset, "key": key}
        if it == 0 and offset == 0 and limit and len(key) == 1 and type(key[0]) is int and key[0] >= 0:
            fields["point"] = key[0]
        return _dml_request(fields)
    if req_type == C.UPDATE or req_type == C.DELETE:
        if not m.keys() <= (_UPDATE_KEYS if req_type == C.UPDATE else _DELETE_KEYS):
            return None
        iid = get(C.INDEX_ID, 0)
        base = get(C.INDEX_BASE, 0)
        key = get(C.KEY)
        ops = get(C.TUPLE) if req_type == C.UPDATE else []
        if (type(iid) is not int or type(base) is not int or type(key) is not list or type(ops) is not list
                or not 0 <= iid <= 0xFFFFFFFF or not 0 <= base <= 0xFFFFFFFF):
            return None
        fields = {"type": req_type, "space_id": space_id, "index_id": iid, "key": key}
        if req_type == C.UPDATE:
            fields.update(tuple=ops, index_base=base)  # an UPDATE's operations travel under TUPLE
        return _dml_request(fields)
    if req_type in (C.INSERT, C.REPLACE) and len(m) == 2:
        tup = get(C.TUPLE)
        if type(tup) is not list:
            return None
        return _dml_request({"type": req_type, "space_id": space_id, "tuple": tup})
    return None


def _dml_request(fields: dict[str, Any]) -> DmlRequest:
    req = DmlRequest()
    req.__dict__.update(fields)  # only what the request has: the class holds the defaults
    return req


if accel is not None:
    accel.configure_dml(DmlRequest, _SELECT_KEYS, _UPDATE_KEYS, _DELETE_KEYS)
# The compiled twins give the same results (tests/unit/test_accel.py).
_fast_dml = _py_fast_dml if accel is None else accel.fast_dml
data_packet = py_data_packet if accel is None else accel.data_packet
ok_packet = py_ok_packet if accel is None else accel.ok_packet


class BeginRequest(NamedTuple):
    timeout: float | None
    isolation: int
    is_sync: bool


def decode_begin(body: Any) -> BeginRequest:
    """BEGIN: optional TIMEOUT (seconds), TXN_ISOLATION (0..4), IS_SYNC (true)."""
    if body is NO_BODY:
        return BeginRequest(None, 0, False)
    if type(body) is not dict:
        raise _bad()
    timeout = body.get(C.TIMEOUT)
    isolation = body.get(C.TXN_ISOLATION, 0)
    is_sync = body.get(C.IS_SYNC, False)
    if timeout is not None and (type(timeout) not in (int, float) or type(timeout) is bool):
        raise _bad()
    if not _is_uint(isolation) or type(is_sync) is not bool:
        raise _bad()
    if timeout is not None and timeout < 0:
        raise BoxError(ER.ILLEGAL_PARAMS, "timeout must be a number greater than 0")
    if isolation > 4:
        raise BoxError(ER.ILLEGAL_PARAMS, "unknown isolation level")
    # A TIMEOUT of 0 (what some connectors send by default) means none.
    # Tarantool takes NaN (it fails `timeout <= 0`) and +inf, and their
    # timers never fire: no timeout either.
    if not timeout or timeout != timeout or timeout == math.inf:
        return BeginRequest(None, isolation, is_sync)
    return BeginRequest(float(timeout), isolation, is_sync)


def decode_watch(body: Any) -> str:
    """WATCH, UNWATCH, WATCH_ONCE: the EVENT_KEY (a string)."""
    m = _strict_map(body)
    key = m.get(C.EVENT_KEY, _ABSENT)
    if key is _ABSENT:
        raise _missing(C.EVENT_KEY)
    if type(key) is not str:
        raise _bad()
    return key


# Request bodies decoded in the iproto thread, as Tarantool does, by request
# type. Types not listed need no body (PING) or take it as it is.
BODY_DECODERS: dict[int, Callable[[Any], Any]] = {
    C.CALL: decode_call,
    C.CALL_16: decode_call,
    C.EVAL: functools.partial(decode_call, key=C.EXPR),
    C.AUTH: decode_auth,
    C.ID: decode_id,
    C.BEGIN: decode_begin,
    C.WATCH: decode_watch,
    C.UNWATCH: decode_watch,
    C.WATCH_ONCE: decode_watch,
    **{t: functools.partial(decode_dml, t)
       for t in (C.SELECT, C.INSERT, C.REPLACE, C.UPDATE, C.DELETE, C.UPSERT)},
}
