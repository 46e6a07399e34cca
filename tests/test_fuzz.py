"""Hypothesis against the raw socket: random bytes on fresh connections, and
random well-framed packets with random MessagePack headers and bodies.

After every example a long-lived witness client must get exact answers (the
server neither crashed nor hung), and the fuzzed connection must have got only
well-formed replies (each a 28-byte header and one body map). A reference
framer predicts what the server must do with the bytes: a length prefix that
is not a uint, or over 2 GiB, ends the connection with error 20 (sync 0);
otherwise the connection stays open and every complete, non-empty packet gets
exactly one final reply. Meanwhile a bystander client calls `echo` nonstop and
must lose nothing. One thread mode per test keeps the file fast."""

from __future__ import annotations

import os
import socket
import struct
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from styx import Server
from tests.iproto import Raw, frame
from tests.rawkit import (
    CHUNK,
    Bystander,
    ErrorLogWatcher,
    assert_not_internal,
    assert_ok,
    pk,
    read_reply,
    split_replies,
)

PACKET_SIZE_MAX = 2 ** 31
# Declared lengths above this are cut short by the strategies (a partial
# packet of up to 2 GiB makes the server reserve that much; the raw-protocol
# tests cover it once, the fuzzer should not do it hundreds of times).
BIG_PARTIAL = 1 << 20

FUZZ_SETTINGS = settings(
    max_examples=int(os.environ.get("STYX_FUZZ_EXAMPLES", 150)),  # `make fuzz` sends many more
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)


@pytest.fixture(params=[0, 2], ids=lambda n: f"threads{n}")
def fuzz_server(request: pytest.FixtureRequest, make_server: Any) -> Server:
    """A fresh server per test (shared by all its examples): one test's
    damage does not leak into the next."""
    return make_server(iproto_threads=request.param)


class Witness:
    """A long-lived client: after every example, an exact PING and CALL."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.conn = Raw(server.port, timeout=10)
        self.n = 0
        self.dirty = False

    def check(self) -> None:
        assert self.server._thread is not None and self.server._thread.is_alive(), "server thread died"
        if self.dirty:  # a failed check left replies behind: start clean
            self.conn.close()
            self.conn = Raw(self.server.port, timeout=10)
        self.dirty = True
        self.n += 1
        base = self.n * 2
        self.conn.request(0x40, base)
        self.conn.request(10, base + 1, {0x22: "echo", 0x21: [self.n, "witness"]})
        got = {}
        for _ in range(2):
            r = read_reply(self.conn)
            assert r.sync in (base, base + 1) and r.sync not in got, \
                f"witness: unexpected reply {r.code:#x} sync {r.sync} {r.body!r}"
            got[r.sync] = r
        assert_ok(got[base], base, {})
        assert_ok(got[base + 1], base + 1, {0x30: [self.n, "witness"]})
        self.dirty = False


@pytest.fixture
def harness(fuzz_server: Server) -> Iterator[Witness]:
    fds = _fds()
    witness = Witness(fuzz_server)
    bystander = Bystander(fuzz_server.port)
    bystander.start()
    with ErrorLogWatcher() as logs:
        yield witness
    witness.conn.close()
    bystander.finish(min_answered=20)
    assert logs.messages() == [], "the server logged internal errors"
    # Every connection of the test is closed: no descriptor is left behind
    # (client and server ends both live in this process).
    deadline = time.monotonic() + 5
    while _fds() > fds and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _fds() <= fds, "descriptors left behind"


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


# -- a reference framer ------------------------------------------------------------


def reference_frame(data: bytes) -> tuple[int, bool, int]:
    """(complete non-empty packets, fatal framing error?, declared length of a trailing partial packet)."""
    pos, n = 0, 0
    while pos < len(data):
        b = data[pos]
        if b < 0x80:
            hl, length = 1, b
        elif b in (0xCC, 0xCD, 0xCE, 0xCF):
            hl = {0xCC: 2, 0xCD: 3, 0xCE: 5, 0xCF: 9}[b]
            if len(data) - pos < hl:
                return n, False, 0
            length = int.from_bytes(data[pos + 1:pos + hl], "big")
            if length > PACKET_SIZE_MAX:
                return n, True, 0
        else:
            return n, True, 0
        if pos + hl + length > len(data):
            return n, False, length
        n += 1 if length else 0
        pos += hl + length
    return n, False, 0


def drain(sock: socket.socket, want_final: int | None, quiet: float, limit: float = 10.0) -> tuple[bytes, bool]:
    """Read until `want_final` non-CHUNK replies have arrived and then `quiet`
    seconds pass with nothing more, or until EOF (`want_final=None`: only EOF
    ends it, within `limit`). (data, closed)."""
    timeout = sock.gettimeout()
    try:
        return _drain(sock, want_final, quiet, limit)
    finally:
        sock.settimeout(timeout)  # later reads on this socket get their usual patience


def _drain(sock: socket.socket, want_final: int | None, quiet: float, limit: float) -> tuple[bytes, bool]:
    data = b""
    deadline = time.monotonic() + limit
    while True:
        replies, _ = split_replies(data)
        finals = sum(1 for r in replies if r.code != CHUNK)
        done = want_final is not None and finals >= want_final
        wait = quiet if done else max(0.0, deadline - time.monotonic())
        sock.settimeout(wait if wait > 0 else 0.001)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            if done or time.monotonic() >= deadline:
                return data, False
            continue
        except ConnectionResetError:
            return data, True
        if not chunk:
            return data, True
        data += chunk


def check_connection(c: Raw, data: bytes, extra_final: int = 0, allowed_syncs: set[int] | None = None) -> None:
    """Send `data` on a fresh connection; check what comes back against the reference framer."""
    complete, fatal, partial_len = reference_frame(data)
    try:
        c.send(data)
    except (BrokenPipeError, ConnectionResetError):
        assert fatal, "the server dropped a connection that sent no fatal framing error"
    want = complete + extra_final
    received, closed = drain(c.sock, None if fatal else want, quiet=0.03)
    replies, rest = split_replies(received)
    assert rest == b"", f"a truncated reply: {rest.hex()}"
    for r in replies:
        assert_not_internal(r)
    if fatal:
        assert closed, "a bad length prefix must close the connection"
        assert replies, "the fatal error must be sent before closing"
        last = replies[-1]
        assert last.code == 0x8014 and last.sync == 0, last
        msg = last.body[0x31]
        assert msg == "Invalid MsgPack - packet length" or msg.startswith(
            "Invalid MsgPack - too big packet size in the header: "), msg
        finals = [r for r in replies[:-1] if r.code != CHUNK]
        assert len(finals) <= complete, "more replies than requests"
    else:
        assert not closed, f"closed without a framing error ({len(replies)} replies)"
        finals = [r for r in replies if r.code != CHUNK]
        assert len(finals) == want, f"{len(finals)} replies for {want} complete packets"
    if allowed_syncs is not None:
        bad = [r.sync for r in replies if r.sync not in allowed_syncs and not (r.code == 0x8014 and r.sync == 0)]
        assert not bad, f"replies with syncs that were never sent: {bad}"


# -- strategies ---------------------------------------------------------------------------


def uint_prefix(n: int, width: str) -> bytes:
    if width == "fix" and n < 0x80:
        return bytes([n])
    if width == "u8" and n < 0x100:
        return b"\xcc" + bytes([n])
    if width == "u16" and n < 0x10000:
        return b"\xcd" + struct.pack(">H", n)
    if width == "u64":
        return b"\xcf" + struct.pack(">Q", n)
    return b"\xce" + struct.pack(">I", n)


WIDTHS = st.sampled_from(["fix", "u8", "u16", "u32", "u64"])

scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(2 ** 63), max_value=2 ** 64 - 1),
    st.floats(allow_nan=True), st.text(max_size=12), st.binary(max_size=12),
)
keys = st.one_of(
    st.integers(min_value=0, max_value=0x10), st.integers(min_value=0, max_value=2 ** 64 - 1),
    st.integers(min_value=-(2 ** 63), max_value=-1), st.text(max_size=4), st.booleans(),
    st.floats(allow_nan=False),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(keys, inner, max_size=4)),
    max_leaves=12,
)

SAFE_FUNCTIONS = ["echo", "one", "nothing", "sum", "whoami", "fail", "fail_box", "reset_counted",
                  "net_stat", "no_such_function", ""]
# (Not WATCH 0x4A, UNWATCH 0x4B: those have no reply in Tarantool.)
REQUEST_TYPES = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 15, 16, 0x40, 0x41, 0x44, 0x49, 0x80, 0x777,
                 2 ** 32 + 10]
SYNCS = st.integers(min_value=0, max_value=2 ** 64 - 1)


@st.composite
def headers(draw: Any) -> dict[Any, Any]:
    """Mostly plausible headers, often with junk around them."""
    h: dict[Any, Any] = {}
    if draw(st.booleans()):
        h[0] = draw(st.one_of(st.sampled_from(REQUEST_TYPES), values))
    if draw(st.integers(0, 4)):
        h[1] = draw(st.one_of(SYNCS, SYNCS, SYNCS, values))
    if draw(st.integers(0, 5)) == 0:
        h[5] = draw(st.one_of(st.integers(0, 100), values))
    if draw(st.integers(0, 3)) == 0:
        h[0x0A] = draw(st.one_of(st.integers(0, 3), values))  # STREAM_ID
    extra = draw(st.dictionaries(keys, values, max_size=3))
    for k, v in extra.items():
        if draw(st.booleans()):
            h[k] = v
    if draw(st.booleans()):  # shuffle key order
        items = list(h.items())
        order = draw(st.permutations(range(len(items))))
        h = {items[i][0]: items[i][1] for i in order}
    return h


@st.composite
def bodies(draw: Any, rtype: Any) -> bytes:
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return b""
    if kind == 1:
        return pk(draw(values))
    if kind == 2:
        return draw(st.binary(max_size=16))
    if rtype in (10, 6):
        body: dict[Any, Any] = {0x22: draw(st.one_of(st.sampled_from(SAFE_FUNCTIONS), values)),
                                0x21: draw(st.one_of(st.lists(scalars, max_size=3), values))}
    elif rtype == 7:
        body = {0x23: draw(st.one_of(st.sampled_from(["guest", "test", "admin", "nobody"]), values)),
                0x21: draw(st.one_of(
                    st.tuples(st.sampled_from(["chap-sha1", "pap-sha256", ""]),
                              st.one_of(st.binary(min_size=20, max_size=20), st.text(max_size=22), values))
                    .map(list), values))}
    elif rtype == 0x49:
        body = {0x54: draw(st.one_of(st.integers(0, 10), values)),
                0x55: draw(st.one_of(st.lists(st.integers(0, 20), max_size=5), values)),
                0x5B: draw(st.one_of(st.just("chap-sha1"), values))}
    elif rtype == 14:  # BEGIN: TIMEOUT (NaN and infinities too), TXN_ISOLATION, IS_SYNC
        body = {0x56: draw(st.one_of(st.floats(), st.integers(-5, 5), values)),
                0x59: draw(st.one_of(st.integers(0, 5), values)),
                0x61: draw(st.one_of(st.booleans(), values))}
    elif rtype in (1, 2, 3, 4, 5, 9):
        body = {0x10: draw(st.one_of(st.sampled_from([280, 281, 289, 9999]), values)),
                0x12: draw(st.one_of(st.integers(0, 5), values)),
                0x14: draw(st.one_of(st.integers(0, 12), values)),
                0x20: draw(st.one_of(st.lists(scalars, max_size=2), values))}
    else:
        body = draw(st.dictionaries(keys, values, max_size=4))
    drop = draw(st.sets(st.sampled_from(sorted(k for k in body if type(k) is int) or [0]), max_size=2))
    body = {k: v for k, v in body.items() if k not in drop}
    body.update(draw(st.dictionaries(keys, values, max_size=2)))
    out = pk(body)
    if draw(st.integers(0, 7)) == 0:
        out += draw(st.binary(min_size=1, max_size=4))  # trailing bytes after the body
    return out


@st.composite
def framed_packets(draw: Any) -> tuple[bytes, dict[Any, Any]]:
    h = draw(headers())
    if draw(st.integers(0, 9)) == 0:
        payload = draw(st.binary(min_size=1, max_size=24))  # framed garbage
    else:
        payload = pk(h) + draw(bodies(h.get(0)))
    return uint_prefix(len(payload), draw(WIDTHS)) + payload, h


def _safe_partial(data: bytes) -> bytes:
    """Cut data whose trailing partial packet declares a huge length."""
    complete, fatal, partial_len = reference_frame(data)
    while not fatal and partial_len > BIG_PARTIAL and data:
        data = data[:-1]
        complete, fatal, partial_len = reference_frame(data)
    return data


random_streams = st.lists(
    st.one_of(
        st.binary(max_size=48),
        framed_packets().map(lambda p: p[0]),
        st.sampled_from([b"\xce\x00\x00\x00", b"\xcf", b"\x00", b"\x05", b"\xff", b"\xc1", b"\x82\x00\x40"]),
    ),
    max_size=6,
).map(b"".join).map(_safe_partial)


# -- tests ------------------------------------------------------------------------------


def test_random_bytes_on_fresh_connections(fuzz_server, harness):
    ping = b"\xce\x00\x00\x00\x05\x82\x00\x40\x01\x07"

    @FUZZ_SETTINGS
    @given(data=random_streams)
    @example(data=ping + b"\x00")  # an empty packet after a request
    @example(data=b"\x00" + ping)  # an empty packet before one
    @example(data=ping + b"\xff" + ping)  # a bad length prefix
    @example(data=ping + b"\xce\x80\x00\x00\x01")  # over 2 GiB
    @example(data=b"\x01\x40" + ping[:7])  # a header that is no map, a partial packet
    def run(data: bytes) -> None:
        with Raw(fuzz_server.port, timeout=10) as c:
            check_connection(c, data)
        harness.check()

    run()


def test_random_framed_packets(fuzz_server, harness):
    @FUZZ_SETTINGS
    @given(packets=st.lists(framed_packets(), min_size=1, max_size=8))
    def run(packets: list[tuple[bytes, dict[Any, Any]]]) -> None:
        sentinel = 2 ** 64 - 2
        ping = pk({0: 0x40, 1: sentinel})
        data = b"".join(p for p, _ in packets) + frame(ping)
        allowed = {0, sentinel}
        for _, h in packets:
            for k, v in h.items():
                if k == 1 and type(v) is int:  # 1, True and 1.0 are the same key to Python
                    allowed.add(v)
        complete, fatal, _ = reference_frame(data)
        assert not fatal and complete == len(packets) + 1
        with Raw(fuzz_server.port, timeout=10) as c:
            check_connection(c, data, allowed_syncs=allowed)
            # The connection is still in step: a last PING gets its reply.
            c.request(0x40, 12345)
            r = read_reply(c)
            assert_ok(r, 12345, {})
        harness.check()

    run()


def test_random_packets_on_one_long_connection(fuzz_server, harness):
    """The same connection across all examples: no state left by one bad
    packet may spoil the next ones."""
    conn = Raw(fuzz_server.port, timeout=10)
    counter = iter(range(1, 10 ** 9))

    @FUZZ_SETTINGS
    @given(packets=st.lists(framed_packets(), min_size=1, max_size=5), split=st.integers(0, 200))
    def run(packets: list[tuple[bytes, dict[Any, Any]]], split: int) -> None:
        data = b"".join(p for p, _ in packets)
        probe = next(counter) + 2 ** 40
        probe_pkt = pk({0: 10, 1: probe})
        probe_body = pk({0x22: "echo", 0x21: [probe]})
        data += frame(probe_pkt + probe_body)
        split = min(split, len(data))
        conn.send(data[:split])
        conn.send(data[split:])
        want = len(packets) + 1
        finals = 0
        probes = 0
        while finals < want:
            r = read_reply(conn)
            assert_not_internal(r)
            if r.code == CHUNK:
                continue
            finals += 1
            if r.sync == probe:
                probes += 1
                assert_ok(r, probe, {0x30: [probe]})
        assert probes == 1
        harness.check()

    try:
        run()
    finally:
        conn.close()
