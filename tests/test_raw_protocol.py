"""The IPROTO wire protocol byte by byte, over raw sockets, in every iproto
thread mode: greeting, framing, pipelining, split input, header and body
decoding errors, AUTH, schema version, pushes, and hostile lengths. Tests that
abuse the server run with a `bystander` client calling `echo` in the
background, which must see every reply, right, exactly once."""

from __future__ import annotations

import base64
import os
import re
import socket
import struct
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from styx.protocol.auth import scramble
from tests.iproto import Raw, frame
from tests.rawkit import (
    AUTH,
    CALL,
    CHUNK,
    HEADER_LEN,
    ID,
    PING,
    Bystander,
    ErrorLogWatcher,
    assert_error,
    assert_ok,
    final_reply,
    nothing_readable,
    ping_ok,
    pk,
    read_reply,
)


@pytest.fixture(autouse=True)
def no_internal_errors() -> Iterator[ErrorLogWatcher]:
    with ErrorLogWatcher() as w:
        yield w
    assert w.messages() == [], "the server logged internal errors"


@pytest.fixture
def bystander(server: Any) -> Iterator[Bystander]:
    b = Bystander(server.port)
    b.start()
    yield b
    b.finish(min_answered=4)


def sv(server: Any) -> int:
    return server.tx.schema.version


def call_packet(sync: int, name: str, *args: Any) -> bytes:
    return frame(pk({0: CALL, 1: sync}) + pk({0x22: name, 0x21: list(args)}))


def ping_packet(sync: int) -> bytes:
    return frame(pk({0: PING, 1: sync}))


# -- greeting ---------------------------------------------------------------------


def test_greeting_layout(server):
    greetings = []
    for _ in range(3):
        with Raw(server.port) as c:
            g = c.greeting_bytes
            greetings.append(g)
            assert len(g) == 128
            assert [i for i, b in enumerate(g) if b == 0x0A] == [63, 127]
            line1, line2 = g[:63].decode("ascii"), g[64:127].decode("ascii")
            m = re.fullmatch(r"Tarantool 3\.0\.0 \(Binary\) ([0-9a-f-]{36}) *", line1)
            assert m, line1
            assert line1.startswith("Tarantool 3.0.0 (Binary) ")
            u = m.group(1)
            assert str(uuid.UUID(u)) == u
            assert line1.rstrip(" ") == f"Tarantool 3.0.0 (Binary) {u}"
            b64 = line2.rstrip(" ")
            assert len(b64) == 44 and line2 == b64.ljust(63)
            salt = base64.b64decode(b64, validate=True)
            assert len(salt) == 32
            assert c.greeting.salt == salt and c.greeting.version == (3, 0, 0)
            # Nothing follows the greeting until the client asks.
            assert nothing_readable(c.sock, 0.05)
            ping_ok(c)
    uuids = {g[26:62] for g in greetings}
    salts = {g[64:108] for g in greetings}
    assert len(uuids) == 1, "the instance UUID is the same on every connection"
    assert len(salts) == 3, "every connection gets its own salt"


def test_greeting_names_configured_instance_uuid(make_server):
    u = "11111111-2222-4333-8444-555555555555"
    s = make_server(iproto_threads=1, instance_uuid=u)
    with Raw(s.port) as c:
        assert c.greeting_bytes[:63] == f"Tarantool 3.0.0 (Binary) {u}".ljust(63).encode()


# -- framing, pipelining, split input -------------------------------------------------------


def test_length_prefix_any_uint_width(server):
    """The packet length is any MessagePack uint: fixint, uint8/16/32/64."""
    payload = pk({0: PING, 1: 1})
    with Raw(server.port) as c:
        n = len(payload)
        prefixes = [bytes([n]), b"\xcc" + bytes([n]), b"\xcd" + struct.pack(">H", n),
                    b"\xce" + struct.pack(">I", n), b"\xcf" + struct.pack(">Q", n)]
        for i, p in enumerate(prefixes):
            c.send(p + pk({0: PING, 1: 100 + i}))
            assert_ok(read_reply(c), 100 + i, {})


def test_pipelined_in_one_write(server, bystander):
    expected: dict[int, Any] = {}
    out = b""
    for i in range(100):
        sync = 1000 + i * 7
        kind = i % 4
        if kind == 0:
            out += ping_packet(sync)
            expected[sync] = {}
        elif kind == 1:
            out += call_packet(sync, "echo", i, "x" * i)
            expected[sync] = {0x30: [i, "x" * i]}
        elif kind == 2:
            out += call_packet(sync, "sum", i, 1000)
            expected[sync] = {0x30: [i + 1000]}
        else:
            out += call_packet(sync, "one", {"i": i})
            expected[sync] = {0x30: [{"i": i}]}
    with Raw(server.port) as c:
        c.send(out)
        seen: dict[int, Any] = {}
        for _ in range(100):
            r = read_reply(c)
            assert r.code == 0 and r.schema == sv(server)
            assert r.sync not in seen, f"sync {r.sync} answered twice"
            seen[r.sync] = r.body
        assert seen == expected
        assert nothing_readable(c.sock, 0.1), "more replies than requests"
        ping_ok(c)


def test_pipelined_beyond_readahead_and_net_msg_max(server, bystander):
    """3000 requests (~150 KB) in one write: more than readahead (16320) and
    net_msg_max (768); every one answered once, in a single connection."""
    n = 3000
    out = b"".join(call_packet(i + 1, "echo", i, "y" * (i % 50)) for i in range(n))
    assert len(out) > 100_000
    with Raw(server.port, timeout=30) as c:
        c.send(out)
        seen = set()
        for _ in range(n):
            r = read_reply(c)
            assert r.code == 0 and r.sync not in seen
            i = r.sync - 1
            assert r.body == {0x30: [i, "y" * (i % 50)]}
            seen.add(r.sync)
        assert seen == set(range(1, n + 1))
        ping_ok(c)


def test_request_split_byte_by_byte(server, bystander):
    pkt = call_packet(42, "echo", "split", 7, [1, 2])
    with Raw(server.port) as c:
        for b in pkt[:-1]:
            c.send(bytes([b]))
            time.sleep(0.001)
        assert nothing_readable(c.sock, 0.1), "answered before the request was complete"
        c.send(pkt[-1:])
        assert_ok(read_reply(c), 42, {0x30: ["split", 7, [1, 2]]})
        ping_ok(c)


def test_requests_split_across_writes_at_every_offset(server):
    """Two pipelined requests cut at every byte offset: both answered."""
    pkts = ping_packet(1) + call_packet(2, "echo", "ab")
    with Raw(server.port) as c:
        for cut in range(1, len(pkts)):
            c.send(pkts[:cut])
            time.sleep(0.002)
            c.send(pkts[cut:])
            got = {read_reply(c).sync: None for _ in range(2)}
            assert set(got) == {1, 2}
        ping_ok(c)


def test_zero_length_packets_get_no_reply_and_desync_nothing(server, bystander):
    """A packet of length 0 is skipped (no reply, as Tarantool); the packets
    around it, and every other connection (some share its iproto thread),
    are answered exactly."""
    others = [Raw(server.port) for _ in range(4)]
    try:
        with Raw(server.port) as a:
            a.send(ping_packet(1) + b"\x00" + ping_packet(2) + b"\x00")
            assert_ok(read_reply(a), 1, {})
            assert_ok(read_reply(a), 2, {})
            for i, o in enumerate(others):
                ping_ok(o, 100 + i)
            a.send(b"\x00" + call_packet(3, "echo", "after-empty"))
            assert_ok(read_reply(a), 3, {0x30: ["after-empty"]})
            a.send(b"\x00\x00\x00")
            for i, o in enumerate(others):
                ping_ok(o, 200 + i)
            ping_ok(a)
            assert nothing_readable(a.sock, 0.1)
    finally:
        for o in others:
            o.close()


def test_large_request_and_reply(server, bystander):
    """A 1 MB argument arrives in many TCP segments and comes back whole."""
    blob = os.urandom(1 << 20)
    with Raw(server.port, timeout=30) as c:
        c.send(call_packet(5, "one", blob))
        r = read_reply(c)
        assert_ok(r, 5, {0x30: [blob]})
        ping_ok(c)


def test_replies_in_completion_order_matched_by_sync(server):
    with Raw(server.port) as c:
        c.send(call_packet(10, "sleep", 0.4, "slow") + call_packet(11, "sleep", 0.1, "fast")
               + call_packet(12, "echo", "now") + ping_packet(13))
        order = []
        bodies = {}
        for _ in range(4):
            r = read_reply(c)
            assert r.code == 0
            order.append(r.sync)
            bodies[r.sync] = r.body
        assert bodies == {10: {0x30: ["slow"]}, 11: {0x30: ["fast"]}, 12: {0x30: ["now"]}, 13: {}}
        assert set(order[:2]) == {12, 13} and order[2:] == [11, 10], order


def test_pushes_are_chunks_before_the_final_reply(server):
    with Raw(server.port) as c:
        c.send(call_packet(77, "progress", 3))
        final, chunks = final_reply(c)
        assert [ch.code for ch in chunks] == [CHUNK] * 3
        assert [ch.sync for ch in chunks] == [77] * 3
        for i, ch in enumerate(chunks):
            assert ch.body == {0x30: [{"step": i}]}
            assert ch.raw[HEADER_LEN:HEADER_LEN + 7] == b"\x81\x30\xdd\x00\x00\x00\x01"
            assert ch.schema == sv(server)
        assert_ok(final, 77, {0x30: ["done"]})


def test_pushes_of_pipelined_calls_carry_their_own_sync(server):
    with Raw(server.port) as c:
        c.send(call_packet(1, "push_then_sleep", 3, 0.02) + call_packet(2, "push_then_sleep", 2, 0.03))
        chunks: dict[int, list[Any]] = {1: [], 2: []}
        finals: dict[int, Any] = {}
        while len(finals) < 2:
            r = read_reply(c)
            if r.code == CHUNK:
                assert r.sync not in finals, "a push after its request's final reply"
                chunks[r.sync].append(r.body[0x30])
            else:
                assert r.code == 0
                finals[r.sync] = r.body
        assert chunks == {1: [[0], [1], [2]], 2: [[0], [1]]}
        assert finals == {1: {0x30: [3]}, 2: {0x30: [2]}}


# -- header decoding ------------------------------------------------------------------


BAD_HEADERS = [
    # (header payload bytes, sync in the error reply)
    pytest.param(pk({1: 5, "a": 1}), 5, id="str-key-after-sync"),
    pytest.param(pk({"a": 1, 1: 5}), 0, id="str-key-before-sync"),
    pytest.param(pk({0: PING, 1: 6, -1: 1}), 6, id="negative-key"),
    pytest.param(pk({0: PING, 1: 6, 1.5: 1}), 6, id="float-key"),
    pytest.param(b"\x83\x00\x40\x01\x06\xc3\x01", 6, id="bool-key"),  # true == 1 in Python
    pytest.param(b"\x83\x00\x40\x01\x06\xc2\x0a", 6, id="false-key"),  # false == 0
    pytest.param(b"\x83\x00\x40\x01\x06\xcb" + struct.pack(">d", 0.0) + b"\x0a", 6,
                 id="float-key-equal-to-type"),
    pytest.param(b"\x83\x00\x40\x01\x06\xca" + struct.pack(">f", 1.0) + b"\x07", 6,
                 id="float32-key-equal-to-sync"),
    pytest.param(pk({0: "x", 1: 7}), 0, id="type-str"),
    pytest.param(pk({1: 7, 0: -64}), 7, id="type-negative"),
    pytest.param(pk({0: PING, 1: "x"}), 0, id="sync-str"),
    pytest.param(pk({0: PING, 1: -1}), 0, id="sync-negative"),
    pytest.param(pk({0: PING, 1: 8, 5: "x"}), 8, id="schema-str"),
    pytest.param(pk({0: PING, 1: 9, 0x0A: [1]}), 9, id="stream-id-array"),
    pytest.param(pk({0: PING, 1: 10, 0x04: "t"}), 10, id="timestamp-str"),
    pytest.param(pk([0x40, 1]), 0, id="array"),
    pytest.param(pk("header"), 0, id="string"),
    pytest.param(pk(64), 0, id="uint"),
    pytest.param(b"\x82\x00\x40", 0, id="truncated-map"),
    pytest.param(b"\x82\x01\x0b\x00", 0, id="truncated-after-sync"),
    pytest.param(b"\xc1", 0, id="never-used-byte"),
]


@pytest.mark.parametrize("payload,sync", BAD_HEADERS)
def test_bad_header_is_error_20_and_connection_stays(server, bystander, payload, sync):
    with Raw(server.port) as c:
        c.send(frame(payload))
        assert_error(read_reply(c), 20, "Invalid MsgPack - packet header", sync, sv(server))
        ping_ok(c)
        # And again in a pipeline: the requests around it are unaffected.
        c.send(ping_packet(1) + frame(payload) + call_packet(2, "echo", "after"))
        r1, r2, r3 = read_reply(c), read_reply(c), read_reply(c)
        assert_ok(r1, 1, {})
        assert_error(r2, 20, "Invalid MsgPack - packet header", sync)
        assert_ok(r3, 2, {0x30: ["after"]})


def test_unknown_header_keys_are_skipped(server):
    with Raw(server.port) as c:
        header = {0x100: "x", 0: PING, 0x7777: [1, {"a": None}], 1: 21, 0xFFFFFFFF: {}, 0x54: 1.5}
        c.send(frame(pk(header)))
        assert_ok(read_reply(c), 21, {})
        header = {0: CALL, 0x1234: b"bin", 1: 22, 0x4000: None}
        c.send(frame(pk(header) + pk({0x22: "echo", 0x21: [1]})))
        assert_ok(read_reply(c), 22, {0x30: [1]})


def test_header_sync_and_schema_version_widths(server):
    """Any uint encoding for type, sync and schema version; u64 syncs come back as they are."""
    with Raw(server.port) as c:
        for sync in (0, 1, 0xFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF):
            c.request(PING, sync)
            assert_ok(read_reply(c), sync, {})
        c.send(frame(b"\x82\x00\xcf" + struct.pack(">Q", PING) + b"\x01\xcd\x01\x00"))
        assert_ok(read_reply(c), 256, {})
        c.request(PING, 3, k5=0)
        assert_ok(read_reply(c), 3, {})
        c.request(PING, 4, k5=sv(server))
        assert_ok(read_reply(c), 4, {})


def test_wrong_schema_version(server, bystander):
    cur = sv(server)
    with Raw(server.port) as c:
        for rtype, body, sync in ((PING, None, 31), (CALL, {0x22: "echo", 0x21: [1]}, 32),
                                  (ID, {}, 33)):
            c.request(rtype, sync, body, k5=cur + 1)
            assert_error(read_reply(c), 109,
                         f"Wrong schema version, current: {cur + 1}, in request: {cur}", sync, cur)
        c.request(PING, 34, k5=0xFFFFFFFFFFFF)
        assert_error(read_reply(c), 109,
                     f"Wrong schema version, current: {0xFFFFFFFFFFFF}, in request: {cur}", 34)
        ping_ok(c)


@pytest.mark.parametrize("rtype", [0, 12, 0x11, 0x3F, 0x77, 0x81, 0x140, 0x777, 0xFFFF, 2 ** 32 + 64])
def test_unknown_request_type(server, bystander, rtype):
    with Raw(server.port) as c:
        c.request(rtype, 55)
        assert_error(read_reply(c), 48, f"Unknown request type {rtype}", 55, sv(server))
        c.request(rtype, 56, {0x22: "echo"})
        assert_error(read_reply(c), 48, f"Unknown request type {rtype}", 56)
        ping_ok(c)


def test_empty_header_is_type_0(server):
    with Raw(server.port) as c:
        c.send(frame(b"\x80"))
        assert_error(read_reply(c), 48, "Unknown request type 0", 0)
        ping_ok(c)


# -- bodies ----------------------------------------------------------------------------


def test_ping_body_is_never_looked_at(server):
    with Raw(server.port) as c:
        for i, tail in enumerate([pk({}), pk([1, 2]), pk("x"), b"\xc1", b"\x92\x01", pk({}) + b"\x01"]):
            c.send(frame(pk({0: PING, 1: 200 + i}) + tail))
            assert_ok(read_reply(c), 200 + i, {})


CALL_BODY_ERRORS = [
    pytest.param(None, 20, "Invalid MsgPack - missing request body", id="no-body"),
    pytest.param(pk([1]), 20, "Invalid MsgPack - packet body", id="array"),
    pytest.param(pk("echo"), 20, "Invalid MsgPack - packet body", id="string"),
    pytest.param(pk(None), 20, "Invalid MsgPack - packet body", id="nil"),
    pytest.param(pk({"x": 1, 0x22: "echo"}), 20, "Invalid MsgPack - packet body", id="str-key"),
    pytest.param(pk({0x22: "echo", -1: 1}), 20, "Invalid MsgPack - packet body", id="negative-key"),
    pytest.param(b"\x82\x22\xa4echo\xcb" + struct.pack(">d", 34.0) + b"\xa3one", 20,
                 "Invalid MsgPack - packet body", id="float-key-equal-to-name"),
    pytest.param(b"\x82\x22\xa4echo\xc3\x90", 20, "Invalid MsgPack - packet body", id="bool-key"),
    pytest.param(pk({0x22: 5}), 20, "Invalid MsgPack - packet body", id="name-int"),
    pytest.param(pk({0x22: b"echo"}), 20, "Invalid MsgPack - packet body", id="name-bin"),
    pytest.param(pk({0x22: "echo", 0x21: "x"}), 20, "Invalid MsgPack - packet body", id="args-str"),
    pytest.param(pk({0x22: "echo", 0x21: {1: 2}}), 20, "Invalid MsgPack - packet body", id="args-map"),
    pytest.param(pk({0x21: []}), 69, "Missing mandatory field 'FUNCTION_NAME' in request", id="no-name"),
    pytest.param(pk({}), 69, "Missing mandatory field 'FUNCTION_NAME' in request", id="empty-map"),
    pytest.param(pk({0x22: "echo", 0x21: [1]}) + b"\x01", 20, "Invalid MsgPack - packet body",
                 id="trailing-byte"),
    pytest.param(pk({0x22: "echo", 0x21: [1]}) + pk({}), 20, "Invalid MsgPack - packet body",
                 id="trailing-map"),
    pytest.param(b"\x82\xa2\x22", 20, "Invalid MsgPack - packet body", id="truncated"),
    pytest.param(b"\xc1", 20, "Invalid MsgPack - packet body", id="never-used-byte"),
]


@pytest.mark.parametrize("rtype", [CALL, 6], ids=["CALL", "CALL_16"])
@pytest.mark.parametrize("body,errcode,message", CALL_BODY_ERRORS)
def test_call_body_errors(server, bystander, rtype, body, errcode, message):
    with Raw(server.port) as c:
        c.send(frame(pk({0: rtype, 1: 61}) + (body or b"")))
        assert_error(read_reply(c), errcode, message, 61, sv(server))
        ping_ok(c)


def test_call_body_skips_unknown_uint_keys(server):
    with Raw(server.port) as c:
        c.request(CALL, 62, {0x99: "whatever", 0x22: "echo", 0x21: [1, 2], 0xFFFF: [None]})
        assert_ok(read_reply(c), 62, {0x30: [1, 2]})
        c.request(CALL, 63, {0x22: "echo"})  # no TUPLE: no arguments
        assert_ok(read_reply(c), 63, {0x30: []})


AUTH_BODY_ERRORS = [
    pytest.param(None, 20, "Invalid MsgPack - missing request body", id="no-body"),
    pytest.param(pk([1]), 20, "Invalid MsgPack - packet body", id="array"),
    pytest.param(pk(None), 20, "Invalid MsgPack - packet body", id="nil"),
    pytest.param(pk({"x": 1, 0x23: "test", 0x21: []}), 20, "Invalid MsgPack - packet body", id="str-key"),
    pytest.param(pk({0x23: 1, 0x21: []}), 20, "Invalid MsgPack - packet body", id="user-int"),
    pytest.param(pk({0x23: "test", 0x21: "x"}), 20, "Invalid MsgPack - packet body", id="tuple-str"),
    pytest.param(pk({0x21: []}), 69, "Missing mandatory field 'USER_NAME' in request", id="no-user"),
    pytest.param(pk({0x23: "guest"}), 69, "Missing mandatory field 'TUPLE' in request", id="no-tuple"),
    pytest.param(pk({0x23: "guest", 0x21: []}) + b"\x00", 20, "Invalid MsgPack - packet body",
                 id="trailing-byte"),
]


@pytest.mark.parametrize("body,errcode,message", AUTH_BODY_ERRORS)
def test_auth_body_errors(server, bystander, body, errcode, message):
    with Raw(server.port) as c:
        c.send(frame(pk({0: AUTH, 1: 71}) + (body or b"")))
        assert_error(read_reply(c), errcode, message, 71, sv(server))
        ping_ok(c)


def test_id(server):
    with Raw(server.port) as c:
        c.request(ID, 81)
        assert_error(read_reply(c), 20, "Invalid MsgPack - request body", 81)
        for i, body in enumerate([pk([]), pk({"v": 1}), pk({0x54: "3"}), pk({0x55: 1}),
                                  pk({0x55: ["x"]}), pk({0x5B: 1})]):
            c.send(frame(pk({0: ID, 1: 90 + i}) + body))
            assert_error(read_reply(c), 20, "Invalid MsgPack - request body", 90 + i)
        c.request(ID, 82, {})
        r = read_reply(c)
        assert_ok(r, 82)
        assert set(r.body) == {0x54, 0x55, 0x5B}
        assert type(r.body[0x54]) is int and r.body[0x54] >= 3
        assert r.body[0x55] == sorted(r.body[0x55]) and all(type(f) is int for f in r.body[0x55])
        assert r.body[0x5B] == "chap-sha1"
        c.request(ID, 83, {0x54: 4, 0x55: [0, 1, 2, 3, 4, 999], 0x5B: "chap-sha1", 0x9999: "skip"})
        assert_ok(read_reply(c), 83)
        ping_ok(c)


# -- AUTH ---------------------------------------------------------------------------------


def auth_req(c: Raw, sync: int, user: str, tup: list[Any]) -> Any:
    c.request(AUTH, sync, {0x23: user, 0x21: tup})
    return read_reply(c)


def whoami(c: Raw, sync: int = 900) -> str:
    c.request(CALL, sync, {0x22: "whoami", 0x21: []})
    r = read_reply(c)
    assert_ok(r, sync)
    return r.body[0x30][0]


def test_auth(server, bystander):
    creds = "User not found or supplied credentials are invalid"
    with Raw(server.port) as c:
        salt = c.greeting.salt
        assert_error(auth_req(c, 1, "nobody", ["chap-sha1", scramble(salt, "secret")]), 47, creds, 1)
        assert_error(auth_req(c, 2, "test", ["chap-sha1", scramble(salt, "wrong")]), 47, creds, 2)
        assert_error(auth_req(c, 3, "test", ["chap-sha1", scramble(os.urandom(32), "secret")]), 47, creds, 3)
        assert_error(auth_req(c, 4, "test", ["pap-sha256", "secret"]), 249,
                     "Unknown authentication method 'pap-sha256'", 4)
        assert_error(auth_req(c, 5, "test", ["chap-sha1", "short"]), 251,
                     "Invalid 'chap-sha1' request: invalid scramble size", 5)
        assert_error(auth_req(c, 6, "test", ["chap-sha1", b"x" * 21]), 251,
                     "Invalid 'chap-sha1' request: invalid scramble size", 6)
        assert_error(auth_req(c, 7, "test", ["chap-sha1", 12345]), 251,
                     "Invalid 'chap-sha1' request: scramble must be string", 7)
        assert_error(auth_req(c, 8, "test", []), 20, "Invalid MsgPack - authentication request body", 8)
        assert_error(auth_req(c, 9, "test", ["chap-sha1"]), 20,
                     "Invalid MsgPack - authentication request body", 9)
        assert_error(auth_req(c, 10, "test", [1, "x" * 20]), 20,
                     "Invalid MsgPack - authentication request body", 10)
        assert whoami(c) == "guest"
        assert_ok(auth_req(c, 11, "guest", []), 11, {})
        assert whoami(c) == "guest"
        assert_ok(auth_req(c, 12, "test", ["chap-sha1", scramble(salt, "secret")]), 12, {})
        assert whoami(c) == "test"
        # The scramble as MP_BIN works too, and extra tuple elements are ignored.
        assert_ok(auth_req(c, 13, "test", ["chap-sha1", scramble(salt, "secret"), "extra"]), 13, {})
        # A failed re-auth keeps the session's user.
        assert_error(auth_req(c, 14, "test", ["chap-sha1", scramble(salt, "wrong")]), 47, creds, 14)
        assert whoami(c) == "test"
        ping_ok(c)


def test_auth_scramble_uses_this_connections_salt(server):
    with Raw(server.port) as a, Raw(server.port) as b:
        r = auth_req(b, 1, "test", ["chap-sha1", scramble(a.greeting.salt, "secret")])
        assert_error(r, 47, "User not found or supplied credentials are invalid", 1)
        assert_ok(auth_req(a, 2, "test", ["chap-sha1", scramble(a.greeting.salt, "secret")]), 2, {})


# -- fatal framing errors ------------------------------------------------------------------


@pytest.mark.parametrize("prefix", [b"\xff", b"\xe0", b"\xa3abc", b"\xc0", b"\xc2", b"\xc3", b"\xc1",
                                    b"\xd0\x05", b"\xd2\x00\x00\x00\x05", b"\x90", b"\x80",
                                    b"\xca\x00\x00\x00\x00"],
                         ids=lambda p: p[:1].hex())
def test_length_not_uint_is_fatal(server, bystander, prefix):
    with Raw(server.port) as c:
        ping_ok(c)
        c.send(prefix + pk({0: PING, 1: 5}))
        assert_error(read_reply(c), 20, "Invalid MsgPack - packet length", 0, sv(server))
        assert c.closed_by_peer(5), "the server must close after a bad length"
    with Raw(server.port) as c2:
        ping_ok(c2)


@pytest.mark.parametrize("length", [2 ** 31 + 1, 3 * 2 ** 30, 2 ** 32 - 1, 2 ** 63, 2 ** 64 - 1])
def test_length_over_2gib_is_fatal(server, bystander, length):
    prefix = b"\xce" + struct.pack(">I", length) if length < 2 ** 32 else b"\xcf" + struct.pack(">Q", length)
    with Raw(server.port) as c:
        ping_ok(c)
        c.send(prefix + pk({0: PING, 1: 5}))
        assert_error(read_reply(c), 20, f"Invalid MsgPack - too big packet size in the header: {length}",
                     0, sv(server))
        assert c.closed_by_peer(5), "the server must close after a too big length"
    with Raw(server.port) as c2:
        ping_ok(c2)


def _rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_huge_declared_length_then_client_leaves(server, bystander):
    """1 GiB declared (under the 2 GiB limit), a few bytes sent, then the
    client goes away: no reply, nothing else disturbed, memory given back."""
    before = _rss()
    with Raw(server.port) as witness:
        with Raw(server.port) as c:
            c.send(b"\xce" + struct.pack(">I", 1 << 30) + pk({0: PING, 1: 1}) + b"abc")
            time.sleep(0.2)
            for _ in range(16):  # more of the body trickles in
                c.send(b"z" * 4096)
                time.sleep(0.01)
            assert nothing_readable(c.sock, 0.2), "a partial packet is not answered"
            # Room is made as bytes arrive, not for what the prefix claims.
            assert _rss() - before < 64 << 20, f"RSS grew by {(_rss() - before) >> 20} MiB"
            ping_ok(witness, 1)
            with Raw(server.port) as fresh:
                ping_ok(fresh, 2)
                fresh.request(CALL, 3, {0x22: "echo", 0x21: [3]})
                assert_ok(read_reply(fresh), 3, {0x30: [3]})
        time.sleep(0.5)
        ping_ok(witness, 4)
    deadline = time.monotonic() + 5
    while _rss() - before > 256 << 20 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _rss() - before < 256 << 20, f"RSS grew by {(_rss() - before) >> 20} MiB after the client left"


def test_partial_packet_then_close_many_times(server, bystander):
    """Clients vanishing mid-prefix, mid-header and mid-body leave no trace."""
    pkt = call_packet(1, "echo", "x" * 100)
    for cut in (1, 3, 5, 6, 20, len(pkt) - 1):
        with Raw(server.port) as c:
            c.send(pkt[:cut])
    with Raw(server.port) as c:
        ping_ok(c)


def test_client_closes_with_requests_in_flight(server, bystander):
    """Replies to a vanished client are dropped; the server carries on."""
    for _ in range(5):
        c = Raw(server.port)
        c.send(b"".join(call_packet(i, "sleep", 0.05, i) for i in range(20))
               + b"".join(call_packet(100 + i, "big", 100_000) for i in range(20))
               + b"".join(call_packet(200 + i, "push_then_sleep", 5, 0.01) for i in range(5)))
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()  # RST
    time.sleep(0.2)
    with Raw(server.port) as c:
        ping_ok(c)
        c.send(call_packet(5, "sleep", 0.01, "ok"))
        assert_ok(read_reply(c), 5, {0x30: ["ok"]})


def test_msgpack_value_types_round_trip(server):
    with Raw(server.port) as c:
        c.send(call_packet(1, "one", b"\x00\xff"))
        assert_ok(read_reply(c), 1, {0x30: [b"\x00\xff"]})
        c.request(CALL, 2, {0x22: "echo", 0x21: [1.5, -7, None, True, {"k": [1]}]})
        assert_ok(read_reply(c), 2, {0x30: [1.5, -7, None, True, {"k": [1]}]})
        ping_ok(c)


def test_client_that_never_reads(server, bystander):
    """A client pipelines ~24 MB of replies and reads nothing for a while:
    the bystander goes on; then the client reads every reply, in full."""
    n = 240
    with Raw(server.port, timeout=30) as c:
        c.send(b"".join(call_packet(i, "big", 100_000) for i in range(n)))
        time.sleep(0.5)
        with Raw(server.port) as other:
            ping_ok(other, 1)
        seen = set()
        for _ in range(n):
            r = read_reply(c)
            assert r.code == 0 and r.sync not in seen and r.body == {0x30: ["x" * 100_000]}
            seen.add(r.sync)
        assert seen == set(range(n))
        ping_ok(c)


def test_net_msg_max_exhausted_by_one_client(server, bystander):
    """1000 slow calls from one client (more than net_msg_max, 768) in one
    write: all answered; meanwhile the others are only delayed."""
    n = 1000
    with Raw(server.port, timeout=30) as c:
        c.send(b"".join(call_packet(i, "sleep", 0.3, i) for i in range(n)))
        with Raw(server.port) as other:
            ping_ok(other, 1)
        got = set()
        for _ in range(n):
            r = read_reply(c)
            assert r.code == 0 and r.body == {0x30: [r.sync]} and r.sync not in got
            got.add(r.sync)
        assert got == set(range(n))


@pytest.mark.parametrize("payload", [b"\x82\x00\x40\x01", b"\x82\x00\x40", b"\x82\x00", b"\x82"])
def test_short_header_in_the_last_bytes_of_a_read(server, payload):
    """A packet too short for the in-place header read, alone in a read: an
    error 20 reply, and the connection goes on."""
    with Raw(server.port) as c:
        c.send(frame(payload))
        h, b = c.reply()
        assert h[0] == 0x8000 | 20, b
        c.request(0x40, 5)
        assert c.reply()[0][1] == 5
