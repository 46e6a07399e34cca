"""Reply heads byte for byte against Tarantool 2.6 (the oracle).

Tarantool writes every reply head (OK, error, CHUNK) in one fixed shape,
`ce <len:4> 83 00 ce <code:4> 01 cf <sync:8> 05 ce <schema:4>` (28 bytes,
captures.md); data bodies start `81 30 dd <count:4>`. Connectors rely on it:
Node's tarantool-driver reads the body at that fixed offset. Each request
below goes to Tarantool 2.6 and to Styx serving the same setup
(tests/lua/tarantool_server.lua `head`, tests/apps/head_app.py); the packets
must be equal byte for byte, apart from the values that legitimately differ:
the schema version's value (its type byte must match), and, in errors, the
packet length (the error stack names Tarantool's C file and line).
IPROTO_EVENT, which 2.6 lacks, is checked against the shape Tarantool's
iproto_send_event writes (a minimal header without schema version)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest

from styx import Server
from tests.iproto import Raw
from tests.oracle import tarantool_server
from tests.rawkit import pk

HEAD_APP = str(Path(__file__).parent / "apps" / "head_app.py")
SCHEMA = slice(24, 28)  # the schema version's value
LENGTH = slice(1, 5)

SELECT, CALL, PING = 1, 10, 0x40


def select(space: int, key: list[Any]) -> dict[int, Any]:
    return {0x10: space, 0x11: 0, 0x12: 1, 0x13: 0, 0x14: 0, 0x20: key}


# (name, request type, body, number of packets in the answer)
REQUESTS = [
    ("ping", PING, None, 1),
    ("select_one", SELECT, select(512, [1]), 1),
    ("select_none", SELECT, select(512, [999999999]), 1),
    ("call_echo", CALL, {0x22: "echo", 0x21: [1, "a"]}, 1),
    ("call_push", CALL, {0x22: "progress", 0x21: [2]}, 3),  # CHUNK, CHUNK, OK
    ("error_no_space", SELECT, select(9999, [1]), 1),
    ("error_no_function", CALL, {0x22: "no_such_function", 0x21: []}, 1),
]


def exchange(port: int) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = {}
    with Raw(port) as c:
        for sync, (name, rtype, body, n) in enumerate(REQUESTS, start=3):
            c.request(rtype, sync, body)
            out[name] = []
            for _ in range(n):
                c.reply()
                out[name].append(c.raw_replies[-1])
    return out


@pytest.fixture(scope="module")
def tarantool_packets(tarantool_bin: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[bytes]]:
    with tarantool_server(tarantool_bin, "head", tmp_path_factory.mktemp("tarantool")) as port:
        return exchange(port)


@pytest.fixture
def styx_packets(make_server: Callable[..., Server]) -> Iterator[dict[str, list[bytes]]]:
    yield exchange(make_server(app=HEAD_APP, iproto_threads=1).port)


def unpack_two(payload: bytes) -> tuple[Any, Any]:
    u = msgpack.Unpacker(raw=False, strict_map_key=False)
    u.feed(payload)
    return u.unpack(), u.unpack()


def masked(packet: bytes, is_error: bool) -> bytes:
    b = bytearray(packet)
    b[SCHEMA] = b"\0" * 4
    if is_error:
        b[LENGTH] = b"\0" * 4
    return bytes(b)


def test_head_shape_is_tarantools(tarantool_packets):
    """The oracle itself writes the shape this file assumes."""
    for packets in tarantool_packets.values():
        for p in packets:
            assert p[0] == 0xCE and p[5:8] == b"\x83\x00\xce" and p[12:14] == b"\x01\xcf"
            assert p[22:24] == b"\x05\xce", p[:28].hex()


@pytest.mark.parametrize("name", [r[0] for r in REQUESTS])
def test_reply_head_matches_tarantool(name, tarantool_packets, styx_packets):
    ours, theirs = styx_packets[name], tarantool_packets[name]
    assert len(ours) == len(theirs)
    for o, t in zip(ours, theirs, strict=True):
        is_error = bool(t[10] & 0x80)  # the code's 0x8000 bit
        if is_error:
            # Same head apart from the length; the body starts with the same
            # map size, IPROTO_ERROR_24 and message, then IPROTO_ERROR.
            assert masked(o[:28], True).hex() == masked(t[:28], True).hex()
            _, body = unpack_two(t[5:])
            end = 30 + len(pk(body[0x31]))
            assert t[28:30] == b"\x82\x31" and t[end] == 0x52
            assert o[28:end + 1].hex() == t[28:end + 1].hex()
        else:
            assert masked(o, False).hex() == masked(t, False).hex()


# -- IPROTO_EVENT: Tarantool 2.6 has no watchers; the shape is iproto_send_event's ----------

WATCH_APP = str(Path(__file__).parent / "apps" / "watch_app.py")


def test_event_packet_shape(make_server: Callable[..., Server]) -> None:
    """EVENT is the one packet without the fixed head: Tarantool (xrow.c
    iproto_send_event) writes `ce <len:4>`, a two-key header {REQUEST_TYPE:
    EVENT, SYNC: sync} with minimal MessagePack integers and no schema
    version, then {EVENT_KEY: key[, EVENT_DATA: data]}."""
    port = make_server(app=WATCH_APP, iproto_threads=1).port
    with Raw(port) as c:
        c.request(0x4A, 300, {0x57: "peer_key"})  # WATCH a key never set: no EVENT_DATA
        c.reply()
        assert c.raw_replies[-1] == (b"\xce\x00\x00\x00\x12" + b"\x82\x00\x4c\x01\xcd\x01\x2c"
                                     + b"\x81\x57\xa8peer_key")
        c.request(0x4A, 300, {0x57: "peer_key"})  # the ack: the next change is sent
        c.request(10, 5, {0x22: "broadcast", 0x21: ["peer_key", 7]})  # a reply and an EVENT, any order
        packets = []
        for _ in range(2):
            c.reply()
            packets.append(c.raw_replies[-1])
        ev = next(p for p in packets if p[6:8] == b"\x00\x4c")
        assert ev[5:] == b"\x82\x00\x4c\x01\xcd\x01\x2c" + b"\x82\x57\xa8peer_key\x58\x07"
        assert ev[1:5] == (len(ev) - 5).to_bytes(4, "big")
