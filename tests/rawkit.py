"""Helpers for the raw-socket protocol and fuzz tests: strict reply parsing
(the exact 28-byte header, DATA and error layouts), error assertions, a
"bystander" client that keeps calling `echo` in the background and checks
every reply, and a log watcher for internal errors."""

from __future__ import annotations

import logging
import select
import socket
import struct
import threading
import time
from typing import Any, NamedTuple

import msgpack

from tests.iproto import Raw, frame

# 0xce <u32 len> 0x83 0x00 0xce <u32 code> 0x01 0xcf <u64 sync> 0x05 0xce <u32 schema>
# (Tarantool's reply head, captures.md)
REPLY_HEADER = struct.Struct(">BIBBBIBBQBBI")
HEADER_LEN = REPLY_HEADER.size
assert HEADER_LEN == 28

OK = 0
CHUNK = 0x80
PING, CALL, AUTH, ID = 0x40, 10, 7, 0x49

CLIENT_ERROR_KEY_ORDER = [0, 2, 1, 3, 4, 5]


class Reply(NamedTuple):
    code: int
    sync: int
    schema: int
    body: Any
    raw: bytes


def pk(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def unpack_all(data: bytes, **kw: Any) -> list[Any]:
    u = msgpack.Unpacker(raw=False, strict_map_key=False, **kw)
    u.feed(data)
    return list(u)


def parse_reply(raw: bytes) -> Reply:
    """Check one whole reply packet byte for byte; return its parts."""
    assert len(raw) >= HEADER_LEN + 1, f"reply too short: {raw!r}"
    f = REPLY_HEADER.unpack_from(raw, 0)
    (c_len, length, c_map, k_type, c_code, code, k_sync, c_sync, sync, k_sv, c_sv, sv) = f
    assert c_len == 0xCE and length == len(raw) - 5, f"bad length prefix {raw[:5].hex()}"
    assert (c_map, k_type, c_code, k_sync, c_sync, k_sv, c_sv) == (0x83, 0, 0xCE, 1, 0xCF, 5, 0xCE), \
        f"reply header is not the fixed 28-byte layout: {raw[:HEADER_LEN].hex()}"
    body_raw = raw[HEADER_LEN:]
    objs = unpack_all(body_raw)
    assert len(objs) == 1, f"the body must be exactly one msgpack object, got {objs!r}"
    body = objs[0]
    assert type(body) is dict, f"body is not a map: {body!r}"
    if code & 0x8000:
        check_error_layout(body_raw, code & 0x7FFF)
    elif 0x30 in body:
        assert body_raw[:3] == b"\x81\x30\xdd", f"DATA must be 81 30 dd <u32>: {body_raw[:8].hex()}"
        (count,) = struct.unpack_from(">I", body_raw, 3)
        assert type(body[0x30]) is list and count == len(body[0x30])
    return Reply(code, sync, sv, body, raw)


def check_error_layout(body_raw: bytes, errcode: int) -> None:
    (pairs,) = unpack_all(body_raw, object_pairs_hook=list)
    assert [k for k, _ in pairs] == [0x31, 0x52], f"error body keys: {pairs!r}"
    msg = pairs[0][1]
    assert type(msg) is str
    (stack_pairs,) = [v for k, v in pairs if k == 0x52]
    assert [k for k, _ in stack_pairs] == [0]
    stack = stack_pairs[0][1]
    assert type(stack) is list and len(stack) >= 1
    top = stack[0]
    assert [k for k, _ in top][:6] == CLIENT_ERROR_KEY_ORDER, f"MP_ERROR key order: {top!r}"
    e = dict(top)
    assert type(e[0]) is str and type(e[1]) is str and type(e[2]) is int
    assert e[3] == msg and type(e[4]) is int and e[5] == errcode


INTERNAL_ERROR = 0x8000 | 115  # ER_SYSTEM, what Styx answers when a handler raised


def assert_not_internal(r: Reply) -> None:
    """An "Internal error" reply is a bug, whatever the request."""
    message = r.body.get(0x31, "") if isinstance(r.body, dict) else ""
    assert r.code != INTERNAL_ERROR and "Internal error" not in str(message), \
        f"an internal error reached the client: {r.code:#x} {r.body!r}"


def read_reply(c: Raw) -> Reply:
    c.reply()
    return parse_reply(c.raw_replies[-1])


def final_reply(c: Raw) -> tuple[Reply, list[Reply]]:
    """The next non-CHUNK reply, and the CHUNKs read before it."""
    chunks = []
    while True:
        r = read_reply(c)
        if r.code != CHUNK:
            return r, chunks
        chunks.append(r)


def assert_error(r: Reply, errcode: int, message: str, sync: int, schema: int | None = None,
                 etype: str = "ClientError") -> None:
    assert r.code == 0x8000 | errcode, f"expected error {errcode} {message!r}, got {r.code:#x} {r.body!r}"
    assert r.body[0x31] == message, r.body
    top = r.body[0x52][0][0]
    assert top[0] == etype and top[3] == message and top[5] == errcode and top[4] == 0, top
    assert r.sync == sync, f"sync {r.sync}, expected {sync}"
    if schema is not None:
        assert r.schema == schema


def assert_ok(r: Reply, sync: int, body: Any = None) -> None:
    assert r.code == OK, f"expected OK at sync {sync}, got {r.code:#x} {r.body!r}"
    assert r.sync == sync
    if body is not None:
        assert r.body == body, r.body


def ping_ok(c: Raw, sync: int = 0xC0FFEE) -> None:
    """The connection is alive and in sync: a PING gets its exact reply."""
    c.request(PING, sync)
    r = read_reply(c)
    assert_ok(r, sync, {})
    assert len(r.raw) == 29  # as captures.md: ce <u32> + 24 bytes


def nothing_readable(sock: socket.socket, wait: float) -> bool:
    r, _, _ = select.select([sock], [], [], wait)
    return not r


def split_replies(data: bytes) -> tuple[list[Reply], bytes]:
    """Whole reply packets at the start of `data` (each checked), and the rest."""
    out = []
    pos = 0
    while len(data) - pos >= 5:
        assert data[pos] == 0xCE, f"reply length prefix must be 0xce, got {data[pos:pos + 5].hex()}"
        (n,) = struct.unpack_from(">I", data, pos + 1)
        if len(data) - pos - 5 < n:
            break
        out.append(parse_reply(data[pos:pos + 5 + n]))
        pos += 5 + n
    return out, data[pos:]


class Bystander(threading.Thread):
    """A client of its own, calling `echo` with distinct arguments (a few
    pipelined at a time) for as long as it runs; every reply must come back
    exactly once with the arguments of its sync."""

    def __init__(self, port: int, window: int = 4, pause: float = 0.002) -> None:
        super().__init__(daemon=True, name="bystander")
        self.conn = Raw(port, timeout=10)
        self.window = window
        self.pause = pause
        self.sent = 0
        self.answered = 0
        self.errors: list[str] = []
        self._stop_ev = threading.Event()

    def run(self) -> None:
        n = 0
        try:
            while not self._stop_ev.is_set():
                pending: dict[int, list[Any]] = {}
                out = b""
                for _ in range(self.window):
                    n += 1
                    args = [n, f"bystander-{n}", {"n": n, "l": [n] * (n % 5)}]
                    pending[n] = args
                    out += frame(pk({0: CALL, 1: n}) + pk({0x22: "echo", 0x21: args}))
                self.conn.send(out)
                self.sent += len(pending)
                while pending:
                    r = read_reply(self.conn)
                    if r.code != OK:
                        raise AssertionError(f"error reply {r.code:#x} {r.body!r}")
                    if r.sync not in pending:
                        raise AssertionError(f"unexpected or duplicate sync {r.sync}")
                    expected = pending.pop(r.sync)
                    if r.body != {0x30: expected}:
                        raise AssertionError(f"sync {r.sync}: {r.body!r} != {expected!r}")
                    self.answered += 1
                time.sleep(self.pause)
        except BaseException as e:  # noqa: BLE001 - reported by finish()
            self.errors.append(repr(e))

    def finish(self, min_answered: int = 1) -> None:
        self._stop_ev.set()
        self.join(20)
        alive = self.is_alive()
        self.conn.close()
        assert not alive, "bystander is stuck waiting for a reply"
        assert self.errors == [], f"bystander saw: {self.errors}"
        assert self.answered == self.sent, f"lost replies: sent {self.sent}, answered {self.answered}"
        assert self.answered >= min_answered, f"bystander only got {self.answered} replies"


class ErrorLogWatcher(logging.Handler):
    """Collects ERROR-and-above records (asyncio's "Exception in callback",
    a failing fiber, ...): a client's garbage must never reach those."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def __enter__(self) -> ErrorLogWatcher:
        logging.getLogger().addHandler(self)
        return self

    def __exit__(self, *exc: Any) -> None:
        logging.getLogger().removeHandler(self)

    def messages(self) -> list[str]:
        fmt = logging.Formatter("%(name)s %(levelname)s: %(message)s")
        return [fmt.format(r) for r in self.records]
