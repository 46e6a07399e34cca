"""styx.protocol.codec: framing, packet decoding, header and body decoders,
the fixed-width reply header, and surrogateescape strings. No sockets."""

from __future__ import annotations

import struct
import sys
from decimal import Decimal
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from styx.protocol import codec
from styx.protocol import constants as C
from styx.protocol.codec import (
    DATA_HEAD,
    HEADER_LEN,
    OK_PACKET_LEN,
    FramingError,
    HeaderError,
    PacketDecoder,
    _py_fast_dml,
    decode_auth,
    decode_call,
    decode_dml,
    decode_header,
    decode_id,
    encode_packet,
    encode_reply,
    frame,
    map_pairs,
    new_packer,
    new_unpacker,
    pack_header_into,
    py_data_packet,
    py_ok_packet,
)
from styx.protocol.codec import NO_BODY as ABSENT
from styx.protocol.errors import ER, BoxError, encode_error_body, error_from_exception
from tests.iproto import packet

U64 = st.integers(0, 2**64 - 1)
U32 = st.integers(0, 2**32 - 1)

# -- strategies ------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=20)
)
map_keys = st.integers(-(2**63), 2**64 - 1) | st.text(max_size=8)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(map_keys, children, max_size=4),
    max_leaves=12,
)


@st.composite
def headers(draw: Any) -> dict[int, Any]:
    """A valid request header, with optional known keys and unknown extra keys."""
    h: dict[int, Any] = {C.REQUEST_TYPE: draw(U64), C.SYNC: draw(U64)}
    if draw(st.booleans()):
        h[C.SCHEMA_VERSION] = draw(U64)
    if draw(st.booleans()):
        h[C.STREAM_ID] = draw(U64)
    if draw(st.booleans()):
        h[C.TIMESTAMP] = draw(st.floats(allow_nan=False))
    extra = draw(st.dictionaries(st.integers(C.STREAM_ID + 1, 2**64 - 1), values, max_size=3))
    h.update(extra)
    keys = list(h)
    order = draw(st.permutations(keys))
    return {k: h[k] for k in order}


bodies = st.none() | st.dictionaries(st.integers(0, 2**64 - 1), values, max_size=4)


def prefix(length: int, width: int) -> bytes:
    """The length as a MessagePack uint of the given width (0 = positive fixint)."""
    if width == 0:
        assert length < 0x80
        return bytes([length])
    marker, n = {1: (0xCC, 1), 2: (0xCD, 2), 4: (0xCE, 4), 8: (0xCF, 8)}[width]
    return bytes([marker]) + length.to_bytes(n, "big")


def widths_for(length: int) -> list[int]:
    out = [8]
    if length < 2**32:
        out.append(4)
    if length < 2**16:
        out.append(2)
    if length < 2**8:
        out.append(1)
    if length < 0x80:
        out.append(0)
    return out


def build_packet(header: dict[int, Any], body: Any, width: int) -> bytes:
    packb = new_packer().pack
    payload = packb(header) + (packb(body) if body is not None else b"")
    return prefix(len(payload), width) + payload


def split_frames(buf: bytes | bytearray, start: int = 0) -> list[tuple[int, int, int]]:
    """(pos, prefix length, end) of every complete packet from `start`."""
    out = []
    pos = start
    while pos < len(buf):
        hl, length = frame(buf, pos, len(buf))
        assert hl, "incomplete prefix in a complete stream"
        out.append((pos, hl, pos + hl + length))
        pos += hl + length
    assert pos == len(buf)
    return out


def decode_run(dec: PacketDecoder, view: memoryview, frames: list[tuple[int, int, int]]) -> list[tuple[Any, Any]]:
    """Decode frames the way the net thread does: feed the run once, then
    unpack packet by packet, checking positions against the frame ends."""
    if not frames:
        return []
    origin = dec.begin(view, frames[0][0], frames[-1][2])
    assert origin == dec.origin
    u = dec.u
    out = []
    for pos, hl, pend in frames:
        assert origin + u.tell() == pos
        u.skip()  # the length prefix
        assert origin + u.tell() == pos + hl
        header = u.unpack()
        assert origin + u.tell() <= pend
        body = None
        if origin + u.tell() != pend:
            body = u.unpack()
            assert origin + u.tell() == pend
        out.append((header, body))
    return out


# -- round trips ----------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    packets=st.lists(st.tuples(headers(), bodies, st.integers(0, 4)), min_size=1, max_size=6),
    split=st.integers(0, 6),
    lead=st.integers(0, 5),
)
def test_round_trip_frame_decoder_header(packets: list[Any], split: int, lead: int) -> None:
    stream = bytearray(b"\xff" * lead)  # garbage before the first packet: offsets must not assume 0
    for header, body, w in packets:
        payload_len = len(build_packet(header, body, 8)) - 9
        widths = widths_for(payload_len)
        stream += build_packet(header, body, widths[w % len(widths)])
    frames = split_frames(stream, lead)
    assert len(frames) == len(packets)
    view = memoryview(stream)
    dec = PacketDecoder()
    split = min(split, len(frames))
    # Two batches fed separately, as two reads would be.
    decoded = decode_run(dec, view, frames[:split]) + decode_run(dec, view, frames[split:])
    for (header, body, _), (h2, b2) in zip(packets, decoded, strict=True):
        assert h2 == header
        assert list(h2) == list(header)  # key order is kept (sync-before-failure relies on it)
        assert b2 == body
        t, sync, sv, sid = decode_header(h2)
        assert (t, sync, sv, sid) == (
            header[C.REQUEST_TYPE], header[C.SYNC], header.get(C.SCHEMA_VERSION, 0), header.get(C.STREAM_ID, 0)
        )


@settings(max_examples=50, deadline=None)
@given(header=headers(), body=bodies)
def test_encode_packet_round_trip(header: dict[int, Any], body: Any) -> None:
    data = encode_packet(header, body)
    assert data[0] == 0xCE
    assert int.from_bytes(data[1:5], "big") == len(data) - 5
    frames = split_frames(data)
    assert frames == [(0, 5, len(data))]
    [(h, b)] = decode_run(PacketDecoder(), memoryview(data), frames)
    assert h == header and b == body


def test_decoder_resync_after_bad_header() -> None:
    """A header that overruns its packet is detected by position; `resync`
    continues with the next packet from a fresh unpacker."""
    good1 = packet({C.REQUEST_TYPE: C.PING, C.SYNC: 1})
    bad = b"\x02\x81\x00"  # length 2: a map whose only value is outside the packet
    good2 = packet({C.REQUEST_TYPE: C.PING, C.SYNC: 3}, {C.TUPLE: [1, 2]})
    lead = b"\x00" * 7
    stream = lead + good1 + bad + good2
    view = memoryview(stream)
    frames = split_frames(stream, len(lead))
    assert [f[2] - f[0] for f in frames] == [len(good1), len(bad), len(good2)]
    dec = PacketDecoder()
    origin = dec.begin(view, len(lead), len(stream))
    u = dec.u
    u.skip()
    assert u.unpack() == {0: C.PING, 1: 1}
    assert origin + u.tell() == frames[0][2]
    u.skip()
    h = u.unpack()  # its value is the next packet's length prefix
    assert h == {0: len(good2) - 5}
    assert origin + u.tell() > frames[1][2]
    origin = dec.resync(view, frames[1][2], len(stream))
    assert origin == frames[2][0] == dec.origin
    u = dec.u
    u.skip()
    assert u.unpack() == {0: C.PING, 1: 3}
    assert u.unpack() == {C.TUPLE: [1, 2]}
    assert origin + u.tell() == len(stream)


def test_decoder_resync_at_end() -> None:
    stream = packet({0: 64, 1: 1})
    dec = PacketDecoder()
    assert dec.resync(memoryview(stream), len(stream), len(stream)) == len(stream)
    # Nothing fed: the next run starts cleanly.
    assert decode_run(dec, memoryview(stream), split_frames(stream)) == [({0: 64, 1: 1}, None)]


def test_decoder_many_runs_keep_origin() -> None:
    """Runs fed one after another from the same unpacker (and past the 1 MiB
    renewal) keep `origin + tell()` equal to buffer positions."""
    dec = PacketDecoder()
    big = packet({0: 10, 1: 1}, {C.FUNCTION_NAME: "f", C.TUPLE: [b"x" * (1 << 20)]})
    small = packet({0: 64, 1: 2})
    for i in range(3):
        stream = b"\x00" * i + big + small
        decoded = decode_run(dec, memoryview(stream), split_frames(stream, i))
        assert decoded[1] == ({0: 64, 1: 2}, None)
        assert decoded[0][1][C.TUPLE][0] == b"x" * (1 << 20)


# -- framing ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, expected",
    [
        (b"\x00", (1, 0)),
        (b"\x05", (1, 5)),
        (b"\x7f", (1, 127)),
        (b"\xcc\x00", (2, 0)),
        (b"\xcc\xff", (2, 255)),
        (b"\xcd\x01\x02", (3, 0x0102)),
        (b"\xce\x00\x01\x00\x00", (5, 0x10000)),
        (b"\xce\x7f\xff\xff\xff", (5, 2**31 - 1)),
        (b"\xcf" + (5).to_bytes(8, "big"), (9, 5)),  # non-minimal widths are fine
        (b"\xcf" + (2**31 - 1).to_bytes(8, "big"), (9, 2**31 - 1)),
    ],
)
def test_frame_every_uint_width(data: bytes, expected: tuple[int, int]) -> None:
    assert frame(data, 0, len(data)) == expected
    # Same prefix in the middle of a buffer, with more data after it.
    buf = bytearray(b"ab" + data + b"xyz")
    assert frame(buf, 2, len(buf)) == expected


@given(length=st.integers(0, 2**31 - 1), width=st.sampled_from([0, 1, 2, 4, 8]), pad=st.binary(max_size=4))
def test_frame_property(length: int, width: int, pad: bytes) -> None:
    if width not in widths_for(length):
        width = 8
    p = prefix(length, width)
    buf = pad + p + b"\x00" * 3
    assert frame(buf, len(pad), len(buf)) == (len(p), length)


@pytest.mark.parametrize("marker, width", [(0xCC, 2), (0xCD, 3), (0xCE, 5), (0xCF, 9)])
def test_frame_incomplete_prefix(marker: int, width: int) -> None:
    full = bytes([marker]) + b"\x00" * (width - 2) + b"\x01"
    assert frame(full, 0, width) == (width, 1)
    for have in range(1, width):
        buf = bytearray(full)  # the bytes exist, but `end` says they have not arrived
        assert frame(buf, 0, have) == (0, 0), have
        assert frame(full[:have], 0, have) == (0, 0), have


def test_frame_non_uint_first_byte_raises() -> None:
    bad = [b for b in range(0x80, 0x100) if b not in (0xCC, 0xCD, 0xCE, 0xCF)]
    assert len(bad) == 124
    for b in bad:
        data = bytes([b]) + b"\x00" * 9
        with pytest.raises(FramingError):
            frame(data, 0, len(data))
        with pytest.raises(FramingError):  # even with nothing after it
            frame(data, 0, 1)


@pytest.mark.parametrize(
    "data",
    [
        b"\xce\x80\x00\x00\x01",  # 2 GiB + 1
        b"\xce\xff\xff\xff\xff",
        b"\xcf" + (2**31 + 1).to_bytes(8, "big"),
        b"\xcf" + (2**40).to_bytes(8, "big"),
        b"\xcf\xff\xff\xff\xff\xff\xff\xff\xff",
    ],
)
def test_frame_over_2gib_raises(data: bytes) -> None:
    with pytest.raises(FramingError, match="too big packet size"):
        frame(data, 0, len(data))


# -- reply header -------------------------------------------------------------------


@given(length=U32, code=U32, sync=U64, sv=U32, off=st.integers(0, 8))
def test_pack_header_into_exact_layout(length: int, code: int, sync: int, sv: int, off: int) -> None:
    buf = bytearray(b"\xaa" * (off + HEADER_LEN + 4))
    pack_header_into(buf, off, length, code, sync, sv)
    expected = (
        b"\xce" + length.to_bytes(4, "big")
        + b"\x83"
        + b"\x00\xce" + code.to_bytes(4, "big")
        + b"\x01\xcf" + sync.to_bytes(8, "big")
        + b"\x05\xce" + sv.to_bytes(4, "big")
    )
    assert HEADER_LEN == 28 == len(expected)
    assert bytes(buf[off:off + 28]) == expected
    assert buf[:off] == b"\xaa" * off and buf[off + 28:] == b"\xaa" * 4  # nothing else touched


def test_pack_header_into_known_bytes() -> None:
    buf = bytearray(28)
    pack_header_into(buf, 0, 0x79, 0x8030, 1, 80)
    # captures.md, "Unknown request type 48": Tarantool 2.6's head, byte for byte.
    assert buf.hex(" ") == (
        "ce 00 00 00 79 83 00 ce 00 00 80 30 01 cf 00 00 00 00 00 00 00 01 05 ce 00 00 00 50"
    )


def test_py_data_packet() -> None:
    # A SELECT's reply of one tuple [1, "a"] with sync 7 and schema version
    # 80: the head is Tarantool's (the header as in the capture above, then
    # 0x81 DATA 0xDD count), the body follows it.
    body = msgpack.packb([1, "a"])
    buf = bytearray(b"\xff" * (2 + DATA_HEAD + len(body)))
    py_data_packet(buf, 1, DATA_HEAD + len(body), 0, 7, 80, 1, 1, body)
    assert buf.hex(" ") == (
        "ff ce 00 00 00 22 83 00 ce 00 00 00 00 01 cf 00 00 00 00 00 00 00 07 05 ce 00 00 00 50 "
        "81 30 dd 00 00 00 01 92 01 a1 61 ff"
    )
    head = bytearray(DATA_HEAD)
    py_data_packet(head, 0, 1000, 0, 7, 80, 2, 0x01020304, b"")  # a streamed body: the head alone
    assert head[28:].hex(" ") == "82 30 dd 01 02 03 04"



def test_py_ok_packet() -> None:
    # captures.md, "PING (0x40), no body": Tarantool 2.6's reply, byte for byte.
    buf = bytearray(30)
    py_ok_packet(buf, 1, 3, 80)
    assert bytes(buf[1:]).hex(" ") == (
        "ce 00 00 00 18 83 00 ce 00 00 00 00 01 cf 00 00 00 00 00 00 00 03 05 ce 00 00 00 50 80"
    )
    assert buf[0] == 0 and OK_PACKET_LEN == 29


@settings(max_examples=80, deadline=None)
@given(code=U32, sync=U64, sv=U32, body=values)
def test_encode_reply_parses_with_msgpack(code: int, sync: int, sv: int, body: Any) -> None:
    packed_body = msgpack.packb(body, use_bin_type=True)
    data = encode_reply(code, sync, sv, packed_body)
    assert len(data) == HEADER_LEN + len(packed_body)
    u = msgpack.Unpacker(raw=False, strict_map_key=False)
    u.feed(data)
    length = u.unpack()
    assert length == len(data) - 5 == u.tell() + length - 5
    header = u.unpack()
    assert header == {C.REQUEST_TYPE: code, C.SYNC: sync, C.SCHEMA_VERSION: sv}
    assert list(header) == [0, 1, 5]
    assert u.unpack() == body
    assert u.tell() == len(data)


# -- decode_header ----------------------------------------------------------------------


def _header_error(h: Any) -> HeaderError:
    with pytest.raises(BoxError) as ei:
        decode_header(h)
    err = ei.value
    assert isinstance(err, HeaderError)
    assert err.code == ER.INVALID_MSGPACK == 20
    assert err.message == "Invalid MsgPack - packet header"
    return err


@pytest.mark.parametrize("h", [None, 5, "x", b"x", [0, 64], [], 1.5, True])
def test_decode_header_not_a_map(h: Any) -> None:
    assert _header_error(h).sync == 0


@pytest.mark.parametrize("key", ["a", -1, 1.5, True, b"\x01", None])
def test_decode_header_key_not_uint(key: Any) -> None:
    assert _header_error({C.REQUEST_TYPE: C.PING, key: 1}).sync == 0


@pytest.mark.parametrize(
    "key, value",
    [
        (C.REQUEST_TYPE, "x"), (C.REQUEST_TYPE, -1), (C.REQUEST_TYPE, 1.0), (C.REQUEST_TYPE, True),
        (C.REQUEST_TYPE, None), (C.SYNC, "1"), (C.SYNC, -5), (C.SYNC, [1]),
        (C.REPLICA_ID, "x"), (C.LSN, -1), (C.SCHEMA_VERSION, 2.0), (C.SERVER_VERSION, "2.11"),
        (C.GROUP_ID, b"x"), (C.TSN, {}), (C.FLAGS, False), (C.STREAM_ID, -1),
        (C.TIMESTAMP, 1), (C.TIMESTAMP, "now"), (C.TIMESTAMP, None),
    ],
)
def test_decode_header_wrong_type_of_known_key(key: int, value: Any) -> None:
    _header_error({key: value})


@pytest.mark.parametrize(
    "h",
    [
        {False: 64, 1: 5},  # msgpack false as a key: not a uint, even if False == 0 in Python
        {0: 64, True: 5},
        {0.0: 64, 1: 5},  # a float key
        {0: 64, 1.0: 5},
    ],
    ids=["false-key", "true-key", "float-key-0", "float-key-1"],
)
def test_decode_header_two_keys_not_uint(h: dict[Any, Any]) -> None:
    """Keys that compare equal to 0 or 1 in Python are still not MP_UINT:
    Tarantool rejects the header ("packet header")."""
    u = new_unpacker()
    u.feed(msgpack.packb(h))
    wire = u.unpack()
    assert len(wire) == 2
    _header_error(wire)


def test_decode_header_values() -> None:
    assert decode_header({}) == (0, 0, 0, 0)
    assert decode_header({0: 10, 1: 7, 5: 80, 10: 3}) == (10, 7, 80, 3)
    assert decode_header({10: 3, 5: 80, 1: 7, 0: 10}) == (10, 7, 80, 3)
    assert decode_header({0: 64, 1: 2**64 - 1}) == (64, 2**64 - 1, 0, 0)
    # Other known keys are checked but not returned.
    assert decode_header({0: 64, 2: 1, 3: 2, 4: 1.5, 6: 3, 7: 4, 8: 5, 9: 6}) == (64, 0, 0, 0)


def test_decode_header_unknown_keys_skipped() -> None:
    h = {0: 64, 0x0B: "x", 1: 9, 0x30: [1, 2], 0x52: {"a": -1}, 1000: None, 2**64 - 1: 1.5}
    assert decode_header(h) == (64, 9, 0, 0)


@pytest.mark.parametrize(
    "h, sync",
    [
        ({1: 42, 0: "bad"}, 42),
        ({0: "bad", 1: 42}, 0),
        ({0: 64, 1: 42, "k": 1}, 42),
        ({1: 42, 4: 7}, 42),
        ({1: 42, 5: 80, 10: -1}, 42),
        # SYNC twice on the wire, the last before the failure wins: a dict
        # literal would merge the two keys, so the map is built as wire pairs.
        (map_pairs(b"\x84\x01\x07\xcd\x03\xe8\xa7skipped\x01\x08\x09\xa3bad"), 8),
    ],
)
def test_decode_header_sync_before_failure(h: dict[Any, Any], sync: int) -> None:
    assert _header_error(h).sync == sync


@given(sync=U64, before=st.booleans())
def test_decode_header_sync_carried_property(sync: int, before: bool) -> None:
    h = {C.SYNC: sync, C.REQUEST_TYPE: "bad"} if before else {C.REQUEST_TYPE: "bad", C.SYNC: sync}
    # The same header through the wire keeps that order.
    u = new_unpacker()
    u.feed(msgpack.packb(h))
    assert _header_error(u.unpack()).sync == (sync if before else 0)


# -- body decoders ------------------------------------------------------------------


def _box_error(f: Any, *args: Any) -> tuple[int, str]:
    with pytest.raises(BoxError) as ei:
        f(*args)
    return ei.value.code, ei.value.message


BAD_BODY = (ER.INVALID_MSGPACK, "Invalid MsgPack - packet body")
NO_BODY = (ER.INVALID_MSGPACK, "Invalid MsgPack - missing request body")


def missing(name: str) -> tuple[int, str]:
    return ER.MISSING_REQUEST_FIELD, f"Missing mandatory field '{name}' in request"


def test_decode_call() -> None:
    assert decode_call({C.FUNCTION_NAME: "f"}) == ("f", [])
    assert decode_call({C.FUNCTION_NAME: "f", C.TUPLE: [1, "a"]}) == ("f", [1, "a"])
    assert decode_call({C.TUPLE: [1], C.FUNCTION_NAME: "f", 0x99: "ignored"}) == ("f", [1])
    assert decode_call({C.EXPR: "return ...", C.TUPLE: [2]}, C.EXPR) == ("return ...", [2])
    assert _box_error(decode_call, ABSENT) == NO_BODY
    assert _box_error(decode_call, None) == (20, "Invalid MsgPack - packet body")  # nil: present
    for body in ([], "f", 5, {"f": 1}, {-1: 1}, {1.5: 1}, {True: 1}):
        assert _box_error(decode_call, body) == BAD_BODY, body
    for body in (
        {C.FUNCTION_NAME: 5}, {C.FUNCTION_NAME: b"f"},
        {C.FUNCTION_NAME: "f", C.TUPLE: "x"}, {C.FUNCTION_NAME: "f", C.TUPLE: {}},
        {C.TUPLE: 1},  # a wrong type is reported before a missing key
    ):
        assert _box_error(decode_call, body) == BAD_BODY, body
    assert _box_error(decode_call, {}) == missing("FUNCTION_NAME")
    assert _box_error(decode_call, {C.TUPLE: []}) == missing("FUNCTION_NAME")
    assert _box_error(decode_call, {C.FUNCTION_NAME: "f"}, C.EXPR) == missing("EXPR")


def test_decode_auth() -> None:
    tup = ["chap-sha1", b"x" * 20]
    assert decode_auth({C.USER_NAME: "u", C.TUPLE: tup}) == ("u", tup)
    assert decode_auth({C.TUPLE: [], C.USER_NAME: "u", 0x99: 1}) == ("u", [])
    assert _box_error(decode_auth, ABSENT) == NO_BODY
    assert _box_error(decode_auth, None) == (20, "Invalid MsgPack - packet body")
    for body in ([], "u", {"u": 1}, {-3: 1}):
        assert _box_error(decode_auth, body) == BAD_BODY, body
    for body in (
        {C.USER_NAME: 1, C.TUPLE: []}, {C.USER_NAME: "u", C.TUPLE: "x"},
        {C.USER_NAME: b"u", C.TUPLE: []}, {C.TUPLE: {}},
    ):
        assert _box_error(decode_auth, body) == BAD_BODY, body
    assert _box_error(decode_auth, {}) == missing("USER_NAME")  # the lowest key first
    assert _box_error(decode_auth, {C.TUPLE: []}) == missing("USER_NAME")
    assert _box_error(decode_auth, {C.USER_NAME: "u"}) == missing("TUPLE")


def test_decode_id() -> None:
    bad = (ER.INVALID_MSGPACK, "Invalid MsgPack - request body")
    assert decode_id({}) == (0, [], None)
    assert decode_id({C.VERSION: 3, C.FEATURES: [0, 1, 2, 3]}) == (3, [0, 1, 2, 3], None)
    assert decode_id({C.AUTH_TYPE: "chap-sha1", 0x99: "x"}) == (0, [], "chap-sha1")
    assert _box_error(decode_id, ABSENT) == bad
    assert _box_error(decode_id, None) == bad
    for body in (
        [], "x", {"v": 1}, {-1: 1}, {C.VERSION: -1}, {C.VERSION: "3"}, {C.VERSION: 1.0},
        {C.VERSION: True}, {C.FEATURES: 1}, {C.FEATURES: ["a"]}, {C.FEATURES: [-1]},
        {C.FEATURES: [True]}, {C.AUTH_TYPE: 1}, {C.AUTH_TYPE: b"chap-sha1"},
        {C.VERSION: None}, {C.FEATURES: None},
    ):
        assert _box_error(decode_id, body) == bad, body


@pytest.mark.parametrize(
    "decoder, body, expected",
    [
        (decode_call, {C.FUNCTION_NAME: None}, BAD_BODY),
        (decode_call, {C.FUNCTION_NAME: "f", C.TUPLE: None}, BAD_BODY),
        (decode_auth, {C.USER_NAME: None, C.TUPLE: []}, BAD_BODY),
        (decode_auth, {C.USER_NAME: "u", C.TUPLE: None}, BAD_BODY),
        (decode_id, {C.AUTH_TYPE: None}, (ER.INVALID_MSGPACK, "Invalid MsgPack - request body")),
    ],
    ids=["call-name-nil", "call-tuple-nil", "auth-user-nil", "auth-tuple-nil", "id-auth-type-nil"],
)
def test_nil_value_is_a_wrong_type(decoder: Any, body: dict[int, Any], expected: tuple[int, str]) -> None:
    """MP_NIL under a known key is a type error in Tarantool's decoders
    (`mp_typeof(*value) != MP_STR` -> "packet body"), not a missing key."""
    assert _box_error(decoder, body) == expected


DML_MANDATORY = {
    C.SELECT: [C.SPACE_ID, C.LIMIT, C.KEY],
    C.INSERT: [C.SPACE_ID, C.TUPLE],
    C.REPLACE: [C.SPACE_ID, C.TUPLE],
    C.UPDATE: [C.SPACE_ID, C.KEY, C.TUPLE],
    C.DELETE: [C.SPACE_ID, C.KEY],
    C.UPSERT: [C.SPACE_ID, C.TUPLE, C.OPS],
}
DML_VALUES = {C.SPACE_ID: 512, C.LIMIT: 10, C.KEY: [1], C.TUPLE: [1, "a"], C.OPS: [["=", 1, 2]]}


@settings(max_examples=120, deadline=None)
@given(
    req_type=st.sampled_from(sorted(DML_MANDATORY)),
    present=st.sets(st.sampled_from(sorted(DML_VALUES))),
    by_name=st.booleans(),
    junk=st.booleans(),
)
def test_decode_dml_mandatory_lowest_key_first(req_type: int, present: set[int], by_name: bool, junk: bool) -> None:
    body: dict[Any, Any] = {k: DML_VALUES[k] for k in sorted(present, reverse=True)}
    if by_name:
        body[C.SPACE_NAME] = "s"
    if junk:
        body["not a uint key"] = object()  # skipped, whatever its value
    missing_keys = [k for k in DML_MANDATORY[req_type]
                    if k not in body and not (k == C.SPACE_ID and by_name)]
    if missing_keys:
        assert _box_error(decode_dml, req_type, body) == missing(C.KEY_NAMES[min(missing_keys)])
    else:
        req = decode_dml(req_type, body)
        assert req.type == req_type
        assert req.space_id == body.get(C.SPACE_ID)
        assert req.space_name == ("s" if by_name else None)


def test_decode_dml_no_body() -> None:
    for t in DML_MANDATORY:
        assert _box_error(decode_dml, t, ABSENT) == missing("SPACE_ID")
        assert _box_error(decode_dml, t, None) == (20, "Invalid MsgPack - packet body")
    # A type with no mandatory keys decodes defaults from nothing.
    req = decode_dml(C.NOP, ABSENT)
    assert req.limit == 0xFFFFFFFF and req.offset == 0 and req.iterator == C.ITER_EQ
    assert req.index_id == 0 and req.key is None and req.index_base == 0 and req.fetch_position is False


def test_decode_dml_values() -> None:
    body = {
        C.SPACE_ID: 512, C.INDEX_ID: 1, C.LIMIT: 5, C.OFFSET: 2, C.ITERATOR: C.ITER_GE, C.KEY: [3],
        C.INDEX_NAME: "pk", C.FETCH_POSITION: True, C.AFTER_POSITION: b"pos", C.AFTER_TUPLE: [1],
    }
    req = decode_dml(C.SELECT, body)
    assert (req.space_id, req.index_id, req.limit, req.offset, req.iterator, req.key) == (512, 1, 5, 2, C.ITER_GE, [3])
    assert (req.index_name, req.fetch_position, req.after_position, req.after_tuple) == ("pk", True, b"pos", [1])
    req = decode_dml(C.UPSERT, {C.SPACE_ID: 1, C.TUPLE: [1], C.OPS: [["+", 2, 1]], C.INDEX_BASE: 1})
    assert (req.tuple, req.ops, req.index_base) == ([1], [["+", 2, 1]], 1)


@pytest.mark.parametrize(
    "key, value",
    [
        (C.SPACE_ID, "s"), (C.SPACE_ID, -1), (C.SPACE_ID, True), (C.SPACE_ID, 1.0),
        (C.INDEX_ID, None), (C.LIMIT, -1), (C.OFFSET, "0"), (C.ITERATOR, "EQ"), (C.INDEX_BASE, [1]),
        (C.KEY, "k"), (C.KEY, 1), (C.TUPLE, {}), (C.OPS, "ops"), (C.AFTER_TUPLE, 1),
        (C.SPACE_NAME, 1), (C.INDEX_NAME, b"pk"), (C.FETCH_POSITION, 1), (C.AFTER_POSITION, 1),
    ],
)
def test_decode_dml_wrong_types(key: int, value: Any) -> None:
    # Even with every mandatory key missing, a wrong type is what is reported.
    assert _box_error(decode_dml, C.SELECT, {key: value}) == BAD_BODY


@pytest.mark.parametrize("req_type, body", [
    (C.SELECT, {C.LIMIT: 10, C.KEY: []}), (C.REPLACE, {C.TUPLE: [1, "a"]}), (C.INSERT, {C.TUPLE: [1]}),
    (C.UPDATE, {C.KEY: [1], C.TUPLE: [["=", 1, "b"]]}), (C.DELETE, {C.KEY: [1]}),
])
@pytest.mark.parametrize("space_key", [16.0, Decimal(16)])
def test_decode_dml_space_id_under_a_key_that_only_equals_16(req_type: int, body: dict[Any, Any],
                                                              space_key: Any) -> None:
    # 16.0 == 0x10 == SPACE_ID in Python, not on the wire: Tarantool 2.6
    # skips a key that is not MP_UINT and answers 69, "Missing mandatory
    # field 'space id'" (seen for SELECT, REPLACE and DELETE). The fast
    # shapes once took the value as the space id and ran the request.
    assert _box_error(decode_dml, req_type, {space_key: 512, **body}) == missing("SPACE_ID")
    assert _py_fast_dml(req_type, {space_key: 512, **body}) is None


@pytest.mark.parametrize("req_type, body, fields", [
    (C.UPDATE, {C.SPACE_ID: 512, C.KEY: [1], C.TUPLE: [["=", 1, "b"]]},
     {"index_id": 0, "key": [1], "tuple": [["=", 1, "b"]], "index_base": 0}),
    (C.UPDATE, {C.SPACE_ID: 512, C.INDEX_ID: 1, C.KEY: [1], C.TUPLE: [], C.INDEX_BASE: 1},
     {"index_id": 1, "key": [1], "tuple": [], "index_base": 1}),
    (C.DELETE, {C.SPACE_ID: 512, C.INDEX_ID: 2, C.KEY: ["k"]}, {"index_id": 2, "key": ["k"]}),
])
def test_fast_update_and_delete_are_the_general_decode(req_type: int, body: dict[Any, Any],
                                                       fields: dict[str, Any]) -> None:
    # The shapes taken without the general checks decode as the general path does.
    fast = _py_fast_dml(req_type, body)
    assert fast is not None
    general = decode_dml(req_type, {**body, 0x99: None})  # an unknown key: the general path
    for name, value in {"type": req_type, "space_id": 512, **fields}.items():
        assert getattr(fast, name) == getattr(general, name) == value


@pytest.mark.parametrize("body", [[], "x", 5, [1, 2]])
def test_decode_dml_not_a_map(body: Any) -> None:
    assert _box_error(decode_dml, C.INSERT, body) == BAD_BODY


# -- strings that are not UTF-8 ---------------------------------------------------------


def mp_str(raw: bytes) -> bytes:
    """`raw` as MP_STR with the header the packer would choose."""
    n = len(raw)
    if n < 32:
        return bytes([0xA0 | n]) + raw
    if n < 256:
        return b"\xd9" + bytes([n]) + raw
    return b"\xda" + struct.pack(">H", n) + raw


@given(raw=st.binary(max_size=300))
def test_str_surrogateescape_round_trip(raw: bytes) -> None:
    data = mp_str(raw)
    u = new_unpacker()
    u.feed(data)
    s = u.unpack()
    assert type(s) is str
    assert new_packer().pack(s) == data  # byte for byte
    assert s.encode("utf-8", "surrogateescape") == raw


def test_scramble_as_str_survives() -> None:
    scramble = bytes(range(0x80, 0x94))  # 20 bytes, none of them valid UTF-8 on its own
    payload = b"\x82\x23\xa4user\x21\x92\xa9chap-sha1" + mp_str(scramble)
    u = new_unpacker()
    u.feed(payload)
    body = u.unpack()
    assert body[C.TUPLE][1].encode("utf-8", "surrogateescape") == scramble
    assert new_packer().pack(body) == payload
    # MP_BIN stays bytes
    u.feed(msgpack.packb(scramble, use_bin_type=True))
    assert u.unpack() == scramble


def test_packer_settings() -> None:
    assert codec.new_packer().pack(b"\x01") == b"\xc4\x01\x01"  # bytes are MP_BIN
    assert codec.new_packer().pack("é") == b"\xa2\xc3\xa9"


# -- errors -------------------------------------------------------------------------------

def _unpack(data: bytes) -> Any:
    u = new_unpacker()
    u.feed(data)
    out = u.unpack()
    assert u.tell() == len(data)
    return out


def test_error_body_layout() -> None:
    err = BoxError(ER.NO_SUCH_PROC, "f")
    line = sys._getframe().f_lineno - 1
    body = _unpack(encode_error_body(err, new_packer().pack))
    assert list(body) == [C.ERROR_24, C.ERROR] == [0x31, 0x52]
    assert body[0x31] == "Procedure 'f' is not defined"
    assert list(body[0x52]) == [0]
    [entry] = body[0x52][0]
    assert list(entry) == [0, 2, 1, 3, 4, 5]  # Tarantool's key order
    assert entry == {0: "ClientError", 2: line, 1: __file__, 3: "Procedure 'f' is not defined", 4: 0, 5: 33}


def test_error_body_byte_exact_like_tarantool() -> None:
    """The body of Tarantool 2.6's reply to a wrong password (captures.md),
    reproduced from the same fields."""
    captured = bytes.fromhex(
        "8231d92c496e636f72726563742070617373776f726420737570706c69656420666f7220"
        "75736572202762656e6368275281009186"
        "00ab436c69656e744572726f72"
        "0260"
        "01bb2e2f7372632f626f782f61757468656e7469636174696f6e2e6363"
        "03d92c496e636f72726563742070617373776f726420737570706c69656420666f7220757365722027"
        "62656e636827"
        "0400"
        "052f"
    )
    err = BoxError(ER.CREDS_MISMATCH, message="Incorrect password supplied for user 'bench'",
                   file="./src/box/authentication.cc", line=96)
    assert encode_error_body(err, new_packer().pack) == captured


def test_error_body_with_fields() -> None:
    err = BoxError(ER.PROC_LUA, message="custom", type_name="CustomError", fields={"custom_type": "X"},
                   file="app.py", line=3, errno=5)
    [entry] = _unpack(encode_error_body(err, new_packer().pack))[0x52][0]
    assert list(entry) == [0, 2, 1, 3, 4, 5, 6]
    assert entry == {0: "CustomError", 2: 3, 1: "app.py", 3: "custom", 4: 5, 5: 32, 6: {"custom_type": "X"}}


def test_error_body_non_tarantool_type() -> None:
    err = BoxError(ER.PROC_LUA, message="m", type_name="MyError", fields={"x": 1}, file="f.py", line=1)
    [entry] = _unpack(encode_error_body(err, new_packer().pack))[0x52][0]
    assert entry[0] == "CustomError"
    assert list(entry[6].items()) == [("custom_type", "MyError"), ("x", 1)]
    for known in ("ClientError", "AccessDeniedError", "CustomError"):
        e = BoxError(ER.UNKNOWN, type_name=known)
        assert e.error_map()[0] == known and 6 not in e.error_map()


def _raise_value_error() -> None:
    raise ValueError("text")


def test_error_causes_follow_the_error() -> None:
    try:
        try:
            try:
                raise KeyError("k")
            except KeyError as e0:
                raise BoxError(ER.NO_SUCH_USER, "u") from e0
        except BoxError as e1:
            raise BoxError(ER.ACCESS_DENIED, "Execute", "function", "f", "guest") from e1
    except BoxError as e2:
        err = e2
    body = _unpack(encode_error_body(err, new_packer().pack))
    assert body[0x31] == "Execute access to function 'f' is denied for user 'guest'"
    stack = body[0x52][0]
    assert [(e[5], e[0], e[3]) for e in stack] == [
        (42, "ClientError", "Execute access to function 'f' is denied for user 'guest'"),
        (45, "ClientError", "User 'u' is not found"),
        (32, "CustomError", "KeyError: 'k'"),
    ]
    assert stack[2][6] == {"custom_type": "KeyError"}
    assert [list(e) for e in stack] == [[0, 2, 1, 3, 4, 5]] * 2 + [[0, 2, 1, 3, 4, 5, 6]]


def test_error_cause_loop_terminates() -> None:
    a = BoxError(ER.UNKNOWN)
    b = BoxError(ER.UNKNOWN)
    a.__cause__ = b
    b.__cause__ = a
    assert len(a.stack()) == 2


def test_error_from_exception() -> None:
    try:
        _raise_value_error()
    except ValueError as e:
        err = error_from_exception(e)
    assert isinstance(err, BoxError)
    assert err.code == 32 == ER.PROC_LUA
    assert err.message == "ValueError: text"
    # The Python class is the error's type; on the wire it is a CustomError
    # (not a Tarantool type) carrying the name in `custom_type`.
    assert err.type_name == "ValueError"
    m = err.error_map()
    assert list(m) == [0, 2, 1, 3, 4, 5, 6]
    assert (m[0], m[5], m[3], m[6]) == ("CustomError", 32, "ValueError: text", {"custom_type": "ValueError"})
    # Located at the innermost frame: where it was raised.
    assert err.file == __file__
    assert err.line == _raise_value_error.__code__.co_firstlineno + 1
    assert error_from_exception(ValueError("text")).message == "ValueError: text"
    assert error_from_exception(ValueError()).message == "ValueError"
    box = BoxError(ER.NO_SUCH_SPACE, "s")
    assert error_from_exception(box) is box


def test_error_from_exception_keeps_cause() -> None:
    try:
        try:
            raise OSError("disk")
        except OSError as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as e:
        err = error_from_exception(e)
    assert [m[3] for m in err.stack()] == ["RuntimeError: wrapped", "OSError: disk"]


@pytest.mark.parametrize(
    "code, args, message",
    [
        (ER.UNKNOWN_REQUEST_TYPE, (73,), "Unknown request type 73"),
        (ER.WRONG_SCHEMA_VERSION, (5, 80), "Wrong schema version, current: 5, in request: 80"),
        (ER.INVALID_MSGPACK, ("packet body",), "Invalid MsgPack - packet body"),
        (ER.MISSING_REQUEST_FIELD, ("KEY",), "Missing mandatory field 'KEY' in request"),
        (ER.CREDS_MISMATCH, (), "User not found or supplied credentials are invalid"),
        (ER.NO_SUCH_INDEX_ID, (3, "s"), "No index #3 is defined in space 's'"),
    ],
)
def test_box_error_messages(code: int, args: tuple[Any, ...], message: str) -> None:
    err = BoxError(code, *args)
    assert err.message == str(err) == message
    assert err.code == code and err.type_name == "ClientError" and err.errno == 0
    assert err.file == __file__ and err.line > 0


def test_packet_decoder_keeps_its_unpacker_across_runs_read_in_place() -> None:
    """A run whose packets were read in place (never unpacked) is consumed by
    finish(): the next run goes on with the same unpacker, at the right place."""
    ping = packet({0: 0x40, 1: 7})
    call = packet({0: 10, 1: 8}, {0x22: "f", 0x21: [1]})
    data = bytearray(ping * 3 + call)
    view = memoryview(data)
    dec = PacketDecoder()
    dec.begin(view, 0, 3 * len(ping))
    u = dec.u
    dec.finish()  # nothing unpacked: the three PINGs were read in place
    origin = dec.begin(view, 3 * len(ping), len(data))
    assert dec.u is u
    assert origin + u.tell() == 3 * len(ping)
    u.skip()  # the length prefix
    assert u.unpack() == {0: 10, 1: 8}
    assert u.unpack() == {0x22: "f", 0x21: [1]}
    dec.finish()
    assert dec.u is u
