"""The compiled accelerator and its pure-Python twins give the same results.

`styx/protocol/scan.py` has a pure-Python batch decoder and a compiled one
(`_accel.c`), and so has codec.py's `_fast_dml`. Every record, the stop position, `to_read` and the fatal error
must be the same for any input: well-formed batches with every header and
body shape, the same with bytes flipped or cut, and random bytes. A few
fixed cases pin what the results are (the contract), so that the two cannot
agree on a wrong answer unnoticed.
"""

from __future__ import annotations

import math
import os
import struct
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from styx.iproto_msg import TxConn
from styx.memory.obuf import Obuf
from styx.memory.slab import SlabCache
from styx.protocol.accel import accel
from styx.protocol.codec import (
    DATA_HEAD,
    NO_BODY,
    OK_PACKET_LEN,
    DmlRequest,
    HeaderError,
    Pairs,
    _py_fast_dml,
    py_data_packet,
    py_ok_packet,
)
from styx.protocol.errors import BoxError
from styx.protocol.ext import default, ext_hook
from styx.protocol.scan import ACCELERATED, BAD_BODY, CBatchDecoder, PyBatchDecoder
from styx.tx.kharon import py_accept_wpos
from styx.tx.reply import _py_data_packet
from tests.iproto import frame

needs_c = pytest.mark.skipif(not ACCELERATED, reason="the compiled decoder is not built")

SETTINGS = settings(max_examples=int(os.environ.get("STYX_FUZZ_EXAMPLES", 300)), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
                    database=None)


def canon(v: Any) -> Any:
    """A comparable form: types kept (Pairs is not a list, True is not 1),
    NaN equal to itself, errors by class, code and text."""
    if isinstance(v, BoxError):
        return ("error", type(v).__name__, v.code, str(v), getattr(v, "sync", None))
    if isinstance(v, float):
        return ("float", "nan" if math.isnan(v) else v.hex())
    if isinstance(v, list):
        return (type(v).__name__, [canon(x) for x in v])
    if isinstance(v, tuple):
        return ("tuple", [canon(x) for x in v])
    if isinstance(v, dict):
        return ("dict", [(canon(k), canon(x)) for k, x in v.items()])
    return (type(v).__name__, repr(v))


def scan_both(data: bytes, start: int = 0, end: int | None = None, budget: int = 1 << 20) -> Any:
    end = len(data) if end is None else end
    results = []
    for dec in (PyBatchDecoder(), CBatchDecoder()):
        buf = bytearray(data)
        with memoryview(buf) as mv:
            results.append(dec.scan(buf, mv, start, end, budget))
    assert canon(results[0]) == canon(results[1])
    return results[0]


def scan_py(data: bytes, budget: int = 1 << 20) -> Any:
    buf = bytearray(data)
    with memoryview(buf) as mv:
        return PyBatchDecoder().scan(buf, mv, 0, len(buf), budget)


def packb(v: Any) -> bytes:
    return msgpack.packb(v, use_bin_type=True, default=default)


# -- the contract, fixed cases ---------------------------------------------


def test_records_of_a_plain_batch() -> None:
    ping = frame(packb({0: 0x40, 1: 7}))
    select = frame(packb({0: 1, 1: 300, 5: 9, 0x0A: 2}) + packb({0x10: 512}))
    data = ping + select + frame(b"")  # an empty packet: no record
    records, pos, to_read, fatal = scan_py(data)
    n = len(ping)
    assert records == [(0, n, 0x40, 7, 0, 0, NO_BODY), (n, n + len(select), 1, 300, 9, 2, {0x10: 512})]
    assert (pos, to_read, fatal) == (len(data), 3, None)


def test_errors_in_records() -> None:
    bad_header = frame(packb({1: 5, 0: "x"}))  # a string type: error 20 with the sync read before
    bad_body = frame(packb({0: 1, 1: 6}) + b"\xc1")
    dup_body = frame(packb({0: 1, 1: 8}) + b"\x82\x10\x01\x10\x02")  # duplicate key: Pairs
    records, _, _, _ = scan_py(bad_header + bad_body + dup_body)
    (_, _, t, sync, _, _, err), r2, r3 = records
    assert (t, sync, type(err), err.code) == (None, 5, HeaderError, 20)
    assert r2[2:] == (1, 6, 0, 0, BAD_BODY)
    assert type(r3[6]) is Pairs and r3[6] == [(0x10, 1), (0x10, 2)]


def test_framing_stops() -> None:
    ping = frame(packb({0: 0x40, 1: 1}))
    assert scan_py(ping + ping[:3])[1:] == (len(ping), 9, None)  # the prefix is cut
    assert scan_py(ping + ping[:7])[1:] == (len(ping), len(ping), None)  # the packet is cut
    assert scan_py(ping * 3, budget=2)[1:] == (2 * len(ping), -1, None)
    assert scan_py(ping + b"\xc1")[1:] == (len(ping), -1, "packet length")
    big = b"\xce\x80\x00\x00\x01"
    assert scan_py(big)[1:] == (0, -1, f"too big packet size in the header: {2 ** 31 + 1}")
    # A sync whose bytes run past the packet (and the buffer): error 20, sync 0.
    [(_, _, t, sync, _, _, err)], _, _, _ = scan_py(frame(b"\x82\x00\x00\x01\xcc"))
    assert (t, sync, err.code) == (None, 0, 20)


@needs_c
@pytest.mark.parametrize("body", [
    {0x10: 512, 0x20: [1, "a", b"b", 1.5, -3, None, True, [], {}]},
    {0x21: [Decimal("1.5"), uuid.UUID(int=7), msgpack.ExtType(99, b"xy")]},
    {0x21: [msgpack.Timestamp(1, 2)]},  # ext -1: the compiled decoder leaves it to Python
    # datetime (ext 4): 8 and 16 bytes, one keeping nanoseconds, one undecodable
    {0x21: [datetime(2024, 1, 2, 3, 4, 5), datetime(2024, 1, 2, tzinfo=timezone(timedelta(hours=-3))),
            msgpack.ExtType(4, b"\x01" * 8 + b"\x07\x00\x00\x00" + b"\x00" * 4),
            msgpack.ExtType(4, b"\x00" * 9)]},
    {0x21: [[[[[[[1]]]]]]] * 3, 0x22: "x" * 70000, 0x23: b"y" * 300},
    {0x21: [2 ** 64 - 1, -(2 ** 63), 0.1, float("inf"), float("nan")]},
    [1, 2],
    "not a map",
])
def test_bodies_agree(body: Any) -> None:
    [(_, _, t, sync, _, _, decoded)], _, _, _ = scan_both(frame(packb({0: 10, 1: 1}) + packb(body)))
    assert (t, sync) == (10, 1) and canon(decoded) == canon(msgpack.unpackb(packb(body), ext_hook=ext_hook,
                                                                            strict_map_key=False))


@needs_c
def test_deep_nesting_and_float32_agree() -> None:
    deep = b"\x91" * 300 + b"\x01"  # deeper than the compiled decoder goes
    f32 = b"\x81\x01\xca" + struct.pack(">f", 0.1)
    bad_utf8 = b"\x81\x01\xa2\xff\xfe"
    for body in (deep, f32, bad_utf8):
        scan_both(frame(packb({0: 10, 1: 1}) + body))


# -- the two agree on anything -----------------------------------------------

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2 ** 63), 2 ** 64 - 1), st.floats(),
    st.floats(width=32).map(lambda f: ("f32", f)), st.text(max_size=20), st.binary(max_size=20),
    st.sampled_from([Decimal("3.14"), uuid.UUID(int=1), msgpack.ExtType(5, b"abc"),
                     msgpack.ExtType(1, b"\xff"), msgpack.Timestamp(3, 0),
                     datetime(1999, 12, 31, 23, 59, 59, 999999), msgpack.ExtType(4, b"\x00")]),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.one_of(st.integers(0, 40), st.text(max_size=3)), inner,
                                                 max_size=4)), max_leaves=12)


def pack_value(v: Any) -> bytes:
    if isinstance(v, tuple) and v and v[0] == "f32":
        return b"\xca" + struct.pack(">f", v[1])
    if isinstance(v, list):
        return _array(v)
    if isinstance(v, dict):
        return _map(list(v.items()))
    return packb(v)


def _array(v: list[Any]) -> bytes:
    n = len(v)
    head = bytes([0x90 | n]) if n < 16 else b"\xdc" + struct.pack(">H", n)
    return head + b"".join(pack_value(x) for x in v)


def _map(items: list[tuple[Any, Any]]) -> bytes:
    n = len(items)
    head = bytes([0x80 | n]) if n < 16 else b"\xde" + struct.pack(">H", n)
    return head + b"".join(pack_value(k) + pack_value(x) for k, x in items)


header_keys = st.sampled_from([0, 1, 2, 3, 4, 5, 6, 9, 0x0A, 0x0B, 0x30, 200, -1, "k", 1.0, True])
header_values = st.one_of(st.integers(-5, 2 ** 64 - 1), st.floats(), st.floats(width=32).map(lambda f: ("f32", f)),
                          st.none(), st.text(max_size=3), st.binary(max_size=3),
                          st.lists(st.integers(0, 3), max_size=2), st.just(Decimal("1")))


@st.composite
def packets(draw: Any) -> bytes:
    if draw(st.booleans()):
        header = _map([(0, draw(st.integers(0, 80))), (1, draw(st.integers(0, 2 ** 64 - 1)))])
    else:
        header = _map(draw(st.lists(st.tuples(header_keys, header_values), max_size=5)))
    body = b""
    if draw(st.booleans()):
        body = _map(draw(st.lists(st.tuples(st.integers(0, 0x40), values), max_size=5)))
    elif draw(st.booleans()):
        body = pack_value(draw(values))
    payload = header + body
    how = draw(st.integers(0, 9))
    if how == 0 and payload:  # flip a byte
        i = draw(st.integers(0, len(payload) - 1))
        payload = payload[:i] + bytes([draw(st.integers(0, 255))]) + payload[i + 1:]
    elif how == 1 and payload:  # cut the payload short, keep a valid frame
        payload = payload[:draw(st.integers(0, len(payload) - 1))]
    elif how == 2:  # trailing garbage inside the frame
        payload += draw(st.binary(min_size=1, max_size=3))
    prefix = draw(st.sampled_from(["ce", "cc", "cd", "cf", "fix"]))
    n = len(payload)
    if prefix == "fix" and n < 0x80:
        return bytes([n]) + payload
    if prefix == "cc" and n < 0x100:
        return b"\xcc" + bytes([n]) + payload
    if prefix == "cd" and n < 0x10000:
        return b"\xcd" + struct.pack(">H", n) + payload
    if prefix == "cf":
        return b"\xcf" + struct.pack(">Q", n) + payload
    return frame(payload)


@needs_c
@SETTINGS
@given(st.lists(packets(), max_size=6), st.data())
def test_generated_batches_agree(batch: list[bytes], data: Any) -> None:
    raw = b"".join(batch)
    end = data.draw(st.integers(0, len(raw))) if data.draw(st.booleans()) else len(raw)
    scan_both(raw, 0, end, data.draw(st.integers(1, 8)))


@needs_c
@SETTINGS
@given(st.binary(max_size=200), st.integers(1, 8))
def test_random_bytes_agree(raw: bytes, budget: int) -> None:
    scan_both(raw, 0, len(raw), budget)


# -- fast_dml ---------------------------------------------------------------------

dml_keys = st.sampled_from([0x10, 0x11, 0x12, 0x13, 0x14, 0x20, 0x21, 0x22, 0x5E, 16.0, True, "x"])
dml_values = st.one_of(st.integers(-2, 2 ** 32 + 1), st.sampled_from([2 ** 64 - 1, -(2 ** 63), 0.0, True, None]),
                       st.lists(st.one_of(st.integers(-2, 3), st.sampled_from([2 ** 63, 2 ** 64 - 1, True, 1.0])),
                                max_size=2),
                       st.text(max_size=2), st.just((1, 2)))


def dml_canon(req: DmlRequest | None) -> Any:
    return None if req is None else (type(req), canon(dict(req.__dict__)))


@needs_c
@SETTINGS
@given(st.sampled_from([1, 2, 3, 4, 5, 9]), st.dictionaries(dml_keys, dml_values, max_size=7))
def test_fast_dml_agrees(req_type: int, body: dict[Any, Any]) -> None:
    assert dml_canon(accel.fast_dml(req_type, body)) == dml_canon(_py_fast_dml(req_type, body))


@needs_c
def test_fast_dml_shapes() -> None:
    select = {0x10: 512, 0x11: 0, 0x12: 1, 0x13: 0, 0x14: 0, 0x20: [5]}
    replace = {0x10: 512, 0x21: [1, "a"]}
    for t, body in ((1, select), (1, {0x10: 512, 0x12: 10, 0x20: []}), (3, replace), (2, replace)):
        req = accel.fast_dml(t, body)
        assert req is not None and dml_canon(req) == dml_canon(_py_fast_dml(t, body))
    assert accel.fast_dml(1, {**select, 0x21: []}) is None  # a key SELECT does not take: the general path
    assert accel.fast_dml(1, {0x10: 512, 0x20: []}) is None  # no LIMIT


@pytest.mark.parametrize("fast_dml", [_py_fast_dml, pytest.param(accel and accel.fast_dml, marks=needs_c)],
                         ids=["python", "compiled"])
def test_a_point_read_is_marked(fast_dml: Any) -> None:
    """`point`: the key of a SELECT TX may answer by one look-up (EQ,
    offset 0, a limit, one unsigned int), and no other's."""
    select = {0x10: 512, 0x11: 0, 0x12: 1, 0x13: 0, 0x14: 0, 0x20: [5]}
    assert fast_dml(1, select).point == 5
    assert fast_dml(1, {**select, 0x20: [2 ** 64 - 1]}).point == 2 ** 64 - 1
    assert fast_dml(1, {0x10: 512, 0x12: 1, 0x20: [0]}).point == 0  # EQ and offset 0 by default
    for change in ({0x14: 2}, {0x13: 1}, {0x12: 0}, {0x20: [-1]}, {0x20: [True]}, {0x20: [5.0]},
                   {0x20: [5, 1]}, {0x20: []}):
        assert fast_dml(1, {**select, **change}).point is None, change


# -- the WAL writer's rows ------------------------------------------------------------------

class _Entry:
    def __init__(self, rows: list[tuple[int, bytes, int]]) -> None:
        self.rows = rows
        self.lsn = 0


_ROW = st.tuples(st.sampled_from([2, 3, 4, 5, 9, 13]), st.binary(max_size=300), st.sampled_from([0, 0, 0, 1]))


@needs_c
@SETTINGS
@given(st.lists(st.lists(_ROW, min_size=1, max_size=4), max_size=40), st.integers(0, 2**63),
       st.integers(0, 300), st.floats(0, 4e9, allow_nan=False), st.integers(1, 3000))
def test_encode_wal_batch_is_its_twin(entries: list[list[tuple[int, bytes, int]]], lsn: int, replica_id: int,
                                      now: float, block_max: int) -> None:
    from styx.wal.writer import py_encode_batch
    py, c = [_Entry(list(rows)) for rows in entries], [_Entry(list(rows)) for rows in entries]
    assert accel.encode_wal_batch(c, lsn, replica_id, now, block_max) == py_encode_batch(
        py, lsn, replica_id, now, block_max)
    assert [e.lsn for e in c] == [e.lsn for e in py]


def test_encode_wal_batch_rows_decode_as_logged() -> None:
    """The contract: the blocks decode to the rows, LSNs in order, a
    transaction's TSN and commit flag, a local row's group and no replica."""
    from styx.wal.writer import encode_batch
    from styx.xlog import decode_rows
    entries = [_Entry([(3, b"\x82\x10\xcd\x02\x00\x21\x91\x01", 0)]),
               _Entry([(2, b"\x82\x10\xcd\x02\x00\x21\x91\x02", 0), (5, b"\x82\x10\xcd\x02\x00\x20\x91\x01", 0)]),
               _Entry([(3, b"\x82\x10\xcd\x02\x01\x21\x91\x03", 1)])]
    blocks, lsn = encode_batch(entries, 10, 1, 1700000000.5, 1 << 20)
    rows = decode_rows(b"".join(blocks))
    assert lsn == 14 and [e.lsn for e in entries] == [11, 13, 14]
    assert [(r.type, r.lsn, r.replica_id, r.group_id, r.multi, r.tsn, r.is_commit) for r in rows] == [
        (3, 11, 1, 0, False, 11, True), (2, 12, 1, 0, True, 12, False), (5, 13, 1, 0, True, 12, True),
        (3, 14, 0, 1, False, 14, True)]
    assert [r.body for r in rows][0] == {0x10: 512, 0x21: [1]} and rows[0].timestamp == 1700000000.5


@needs_c
@SETTINGS
@given(st.integers(0, 64), st.integers(0, 2**32 - 1), st.integers(0, 2**64 - 1), st.integers(0, 2**40),
       st.integers(1, 15), st.integers(0, 2**32 - 1), st.binary(max_size=300), st.booleans(), st.integers(0, 6))
def test_data_packet_is_its_twin(off: int, code: int, sync: int, sv: int, map_size: int, count: int,
                                 body: bytes, streamed: bool, skip: int) -> None:
    given_body = b"" if streamed else body
    skip = min(skip, len(given_body))
    total = DATA_HEAD + len(body) - skip
    room = off + DATA_HEAD + len(given_body) - skip + 8
    py, c = bytearray(b"\xaa" * room), bytearray(b"\xaa" * room)
    py_data_packet(py, off, total, code, sync, sv, map_size, count, given_body, skip)
    accel.data_packet(c, off, total, code, sync, sv, map_size, count, memoryview(given_body), skip)
    assert c == py
    if not skip:  # the argument left out is 0
        accel.data_packet(c, off, total, code, sync, sv, map_size, count, given_body)
        assert c == py


@needs_c
@SETTINGS
@given(st.integers(0, 64), st.integers(0, 2**64 - 1), st.integers(0, 2**40))
def test_ok_packet_is_its_twin(off: int, sync: int, sv: int) -> None:
    py, c = bytearray(b"\xaa" * (off + OK_PACKET_LEN + 3)), bytearray(b"\xaa" * (off + OK_PACKET_LEN + 3))
    py_ok_packet(py, off, sync, sv)
    accel.ok_packet(c, off, sync, sv)
    assert c == py


@needs_c
def test_data_packet_refuses_what_does_not_fit() -> None:
    with pytest.raises(IndexError):
        accel.data_packet(bytearray(DATA_HEAD + 2), 0, DATA_HEAD + 3, 0, 1, 1, 1, 1, b"abc")
    with pytest.raises(OverflowError):
        accel.data_packet(bytearray(64), 0, 40, 0, -1, 1, 1, 1, b"")
    with pytest.raises(IndexError):
        accel.data_packet(bytearray(64), 0, 40, 0, 1, 1, 1, 1, b"ab", 3)
    with pytest.raises(IndexError):
        accel.ok_packet(bytearray(OK_PACKET_LEN + 1), 2, 1, 1)


# -- Packer: msgpack's packer for plain values -------------------------------------------

_EDGE_INTS = [0, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63 - 1, 2**63, 2**64 - 1, 2**64,
              -1, -32, -33, -128, -129, -32768, -32769, -2**31, -2**31 - 1, -2**63, -2**63 - 1]
_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**64, 2**65), st.sampled_from(_EDGE_INTS),
                     st.floats(allow_nan=True), st.text(max_size=40), st.binary(max_size=300),
                     st.sampled_from(["\udcff", "a" * 31, "a" * 32, "é" * 128, "x" * 70000, b"y" * 70000,
                                      Decimal("1.5"), uuid.UUID(int=7), (1, 2), bytearray(b"z"),
                                      msgpack.ExtType(5, b"e")]))
_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=18), st.dictionaries(st.one_of(st.text(max_size=3), st.integers(-3, 3)), inner,
                                                   max_size=17)), max_leaves=40)


def _packed(pack: Any, value: Any) -> Any:
    try:
        return pack(value)
    except Exception as e:  # noqa: BLE001 - the error is part of the result compared
        return (type(e).__name__, str(e))


@needs_c
@SETTINGS
@given(_values)
def test_packer_is_msgpacks(value: Any) -> None:
    """The compiled Packer gives msgpack's bytes (or its error) for any
    value: plain ones packed in C, the rest by the packer it stands for."""
    pack = msgpack.Packer(use_bin_type=True, unicode_errors="surrogateescape", default=default).pack
    assert _packed(accel.Packer(pack), value) == _packed(pack, value)


@needs_c
def test_packer_leaves_the_deep_and_the_odd_to_msgpack() -> None:
    calls: list[Any] = []

    def pack(v: Any) -> bytes:
        calls.append(v)
        return b"fallback"

    packer = accel.Packer(pack)
    deep: Any = 1
    for _ in range(40):
        deep = [deep]
    for odd in (deep, [1, (2,)], {"a": Decimal(1)}, [2**64], "\udcff", True.__class__.__mro__[1](5) + 2**70):
        assert packer(odd) == b"fallback"
    assert len(calls) == 6
    assert packer([1, "a", None, 2.5, b"b", {"k": [True]}]) == msgpack.packb([1, "a", None, 2.5, b"b", {"k": [True]}])
    assert len(calls) == 6


# -- put_data: tx/reply.py's _data_packet -----------------------------------------------

_REPLY = st.tuples(st.integers(0, 2**64 - 1), st.sampled_from([0, 0x80, 0x8020, 0xFFFFFFFF]),
                   st.integers(0, 2**32 - 1), st.binary(max_size=3000), st.integers(0, 2**32 - 1),
                   st.integers(1, 3), st.integers(0, 6), st.booleans())


def _tx_conn() -> TxConn:
    slabc = SlabCache(min_size=64)
    return TxConn(None, None, (Obuf(slabc, 64), Obuf(slabc, 64)))


def _obuf_state(tx_conn: TxConn) -> Any:
    return tx_conn.cur_obuf, [(ob.pos, ob.used, list(ob.iov_len), [bytes(b) for b in ob.iov])
                              for ob in tx_conn.obuf]


@needs_c
@SETTINGS
@given(st.lists(st.tuples(_REPLY, st.sampled_from(["write", "rotate", "recycle"])), max_size=12))
def test_put_data_is_its_twin(steps: list[tuple[Any, str]]) -> None:
    """The same replies written into two connections' obufs, by the
    compiled writer and by its twin: the same bytes, slabs, lengths and
    positions, and the same ends of output returned (also when the reply
    does not fit the current slab, or is streamed: the twin's case)."""
    c, py = _tx_conn(), _tx_conn()
    for (sync, code, sv, body, count, map_size, skip, as_view), then in steps:
        skip = min(skip, len(body))
        given = memoryview(body) if as_view else body  # a memoryview is the twin's
        assert accel.put_data(c, sync, code, sv, given, count, map_size, skip) == \
            _py_data_packet(py, sync, code, sv, given, count, map_size, skip)
        for conn in (c, py):
            if then == "rotate":
                conn.cur_obuf = 1 - conn.cur_obuf
            elif then == "recycle":
                conn.obuf[1 - conn.cur_obuf].recycle()
        assert _obuf_state(c) == _obuf_state(py)
    assert accel.put_data(c, 1, 0, 1, b"ab", 1) == _py_data_packet(py, 1, 0, 1, b"ab", 1)  # defaults
    assert _obuf_state(c) == _obuf_state(py)


@needs_c
@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 3000), st.integers(0, 3000), st.integers(0, 1), st.integers(0, 1),
                          st.integers(0, 3100)), max_size=10))
def test_accept_wpos_is_its_twin(steps: list[tuple[int, int, int, int, int]]) -> None:
    """Output in both obufs, then net's written position (in either obuf,
    anywhere): the compiled accept_wpos and its twin return the same and
    leave the same obufs (recycled, switched)."""
    c, py = _tx_conn(), _tx_conn()
    for written0, written1, cur, wo, wu in steps:
        for conn in (c, py):
            conn.cur_obuf = cur
            for ob, n in zip(conn.obuf, (written0, written1), strict=True):
                if n:
                    ob.alloc(n)
        assert accel.accept_wpos(c, (wo, wu)) == py_accept_wpos(py, (wo, wu))
        assert _obuf_state(c) == _obuf_state(py)
    # What it does not take, its twin decides (a list, not a tuple, for wpos).
    assert accel.accept_wpos(c, [0, 0]) == py_accept_wpos(py, [0, 0])
    assert _obuf_state(c) == _obuf_state(py)


@needs_c
def test_put_data_leaves_errors_to_its_twin() -> None:
    """What the compiled writer does not take, its twin decides: the same
    error for a bad argument."""
    c = _tx_conn()
    c.obuf[0].alloc(1)  # a slab to write into
    for args in ((-1, 0, 1, b"", 0), (1, 0, 1, b"", 2**40), (1, 0, 1, 5, 0)):
        with pytest.raises(Exception) as compiled:
            accel.put_data(c, *args)
        with pytest.raises(Exception) as twin:
            _py_data_packet(c, *args)
        assert type(compiled.value) is type(twin.value), args


# -- prepare: net's messages of the plain requests -------------------------------------

class _Pipe:
    def __init__(self) -> None:
        self.sent: list[Any] = []

    def push(self, msg: Any) -> None:
        self.sent.append(msg)

    def push_many(self, msgs: list[Any]) -> None:
        self.sent.extend(msgs)


def _enqueue_messages(records: list[Any], compiled: bool) -> list[Any]:
    """The messages `Connection._enqueue` sends for `records`, with the
    compiled `prepare` or with its own loop only (the twin)."""
    from types import SimpleNamespace

    from styx.net import connection
    from styx.tx.process import handlers

    pipe = _Pipe()
    routes = {t: ("route", t) for t in handlers(None)}  # type: ignore[arg-type]  # the types only
    tx = SimpleNamespace(routes=routes, error=("route", "error"), pipe=pipe)
    th = SimpleNamespace(tx=tx, body_decoders=connection.BODY_DECODERS, latency=None, msg_count=0,
                         requests_total=0, streams_total=0, streams_current=0, stream_queue_total=0,
                         stream_queue_current=0)
    conn = connection.Connection.__new__(connection.Connection)
    conn.thread, conn.tx_conn, conn.wpos = th, "tx_conn", (1, 5)  # type: ignore[assignment]  # stand-ins
    conn.input_msg_count, conn.in_tx, conn.requests, conn.streams = [0, 0], 0, 0, {}
    saved = connection._prepare
    connection._prepare = accel.prepare if compiled else None
    try:
        conn._enqueue(records, 1)
    finally:
        connection._prepare = saved
    return pipe.sent + [m for stream in conn.streams.values() for m in stream.queue]  # sent, then queued


def _canon_msg(msg: Any) -> Any:
    req = msg.req
    if type(req).__name__ == "DmlRequest":
        req = ("DmlRequest", sorted(vars(req).items()))
    return [type(msg).__name__, msg.route, msg.hop, msg.conn is not None, msg.tx_conn, msg.p_ibuf, msg.len, msg.wpos,
            msg.type, msg.sync, msg.schema_version, msg.stream_id, type(msg.req).__name__, canon(req),
            canon(msg.diag), msg.txn_open, msg.bounce, hasattr(msg, "t0")]


def _plain_packet(t: int, sync: int, stream_id: int, body: Any) -> bytes:
    header = {0: t, 1: sync} | ({0x0A: stream_id} if stream_id else {})
    return frame(packb(header) + (b"" if body is None else packb(body)))


plain_bodies = st.one_of(
    st.none(),
    st.fixed_dictionaries({0x10: st.integers(0, 600), 0x11: st.integers(0, 2), 0x12: st.integers(0, 5),
                           0x13: st.integers(0, 1), 0x14: st.integers(0, 3), 0x20: st.lists(st.integers(0, 9))}),
    st.fixed_dictionaries({0x10: st.integers(0, 600), 0x21: st.lists(st.integers(0, 9))}),
    st.fixed_dictionaries({0x22: st.text(max_size=5), 0x21: st.lists(st.integers(0, 9))}),
    st.fixed_dictionaries({0x27: st.text(max_size=5), 0x21: st.lists(st.integers(0, 9))}),
    st.dictionaries(st.sampled_from([0x10, 0x20, 0x21, 0x22, 0x27, 0x11, -1]), values, max_size=4),
    values,
)


@needs_c
@SETTINGS
@given(st.lists(st.one_of(
    st.builds(_plain_packet, st.sampled_from([0x40, 1, 2, 3, 4, 5, 6, 8, 9, 10, 14, 15, 16, 0x49, 73, 999]),
              st.integers(0, 2 ** 64 - 1), st.sampled_from([0, 0, 0, 7]), plain_bodies),
    packets()), max_size=8))
def test_prepare_is_the_general_loop(batch: list[bytes]) -> None:
    # Every message, every field, in the same order: the compiled prepare
    # (with the general loop for what it leaves) and the general loop alone.
    raw = b"".join(batch)
    records = scan_py(raw)[0]
    both = [_enqueue_messages(records, compiled) for compiled in (True, False)]
    assert [_canon_msg(m) for m in both[0]] == [_canon_msg(m) for m in both[1]]
    assert len(both[0]) == len(records)
