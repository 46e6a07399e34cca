"""Raw-socket IPROTO load generator: no connector between the bench and the bytes.

Requests are encoded once, up front. Every connection sends syncs 1..SYNC_RING
in turn (then wraps around), so the next k requests of a connection are always
one contiguous slice of one pre-encoded byte string: sending costs one slice and
one send() call, whatever k is.

Pipelining: each connection keeps P requests in flight. Whenever a read brings
k complete replies, the connection sends k new requests in one write, so the
window is refilled as replies arrive (a sliding window), not in lock-step
batches of P. Batches ("send P, wait for all P") would let the server's queue
run dry at the end of every batch and time the client's turnaround as much as
the server; the sliding window keeps the server's input non-empty at all times,
while still writing many requests per syscall when the server answers many at
once. It measures the server's throughput at a fixed concurrency of N x P.

Checking: every reply is checked: whole packet (0xce + u32 length), header
code 0 (OK), the sync echoed being one that is in flight on that connection
(in order, or early within the window), and the body equal to the expected one
(PING: {}, CALL sum(1, 2): {IPROTO_DATA: [3]}, SELECT/REPLACE/UPDATE of key k:
{IPROTO_DATA: [[k, value]]}). Since a server's reply for a given sync is always
the same bytes, a packet is fully decoded and checked the first time its exact
bytes are seen and remembered (bytes -> sync); later identical packets are
checked by one dict lookup. So the client stays cheap without checking less.

Data scenarios: the request body may differ per ring slot (the key of slot i is
slot_key(i, keys)), and so may the expected reply; both are fixed per slot, so
the ring and the reply cache work as for PING and CALL.

Streams (Styx only): with `streams` = S > 0 every request also carries a
STREAM_ID, slot i's being i mod S + 1, so a connection uses S streams. The
reply bytes are those of the same request without a stream (a reply has no
stream id), so the ring and the cache work unchanged. One more check: a
stream's requests run one at a time, in order, so its replies must come in
order: a reply that arrives while the previous request of its stream is
still unanswered is an error (`prev`: per slot, the slot of the request sent
before it in the same stream, cyclically).

Transactions (`txn`, Styx only): BEGIN (no body), REPLACE [k, value(k)] into
space `txn`, COMMIT, each triple in one stream, T streams per connection
(transaction t in stream t mod T + 1), and `txn-plain`: the same REPLACEs
without streams or transactions. The key is a function of the connection and
the transaction number (txn_key()), so no two concurrent transactions touch
the same key; each connection has its own ring (R transactions, R = T x
floor(1365 / T), 3R < SYNC_RING requests) and checker. When the load stops a
connection first sends what its last transaction lacks, so every
transaction it began is committed.

fill_space() is the tuple memory test's loader: N distinct REPLACEs (keys
1..N) over a few pipelined connections, every reply decoded and checked.
"""

from __future__ import annotations

import errno
import os
import select
import signal
import socket
import struct
import time
import traceback
from typing import Any

import msgpack

# IPROTO constants (see ../shared/reference/tarantool-iproto.md).
IPROTO_REQUEST_TYPE = 0x00
IPROTO_SYNC = 0x01
IPROTO_OK = 0x00
IPROTO_PING = 0x40
IPROTO_CALL = 0x0A
IPROTO_EVAL = 0x08
IPROTO_SELECT = 0x01
IPROTO_REPLACE = 0x03
IPROTO_UPDATE = 0x04
IPROTO_BEGIN = 0x0E
IPROTO_COMMIT = 0x0F
IPROTO_ROLLBACK = 0x10
IPROTO_STREAM_ID = 0x0A
IPROTO_SPACE_ID = 0x10
IPROTO_INDEX_ID = 0x11
IPROTO_LIMIT = 0x12
IPROTO_ITERATOR = 0x14
IPROTO_KEY = 0x20
IPROTO_TUPLE = 0x21
IPROTO_FUNCTION_NAME = 0x22
IPROTO_EXPR = 0x27
IPROTO_DATA = 0x30
IPROTO_ERROR_24 = 0x31
IPROTO_ERROR = 0x52

GREETING_SIZE = 128
SYNC_RING = 4096  # syncs 1..SYNC_RING per connection; must exceed the window P

_U32 = struct.Struct(">I")

# The spaces of bench/app.py and bench/tarantool_init.lua.
BENCH_SPACE = 512  # [id unsigned, value string], keys 1..keys pre-filled with value(k)
MEM_SPACE = 513    # the same, empty: the tuple memory test fills it
TXN_SPACE = 514    # the same, empty at start (Styx only): the transaction scenario's
DEFAULT_KEYS = 10000
TXN_RING_MAX = 1365  # transactions in a connection's txn ring, at most (3 x 1365 < SYNC_RING)


def value(k: int) -> str:
    """The 32-byte string stored with key k (app.py and tarantool_init.lua too)."""
    return f"value-{k:026d}"


def value2(k: int) -> str:
    """What the `update` scenario sets field 1 (0-based) of key k to: 32 bytes."""
    return f"updated-{k:024d}"


def slot_key(i: int, keys: int) -> int:
    """The key the request in ring slot i (sync i + 1) is about: spread evenly
    over 1..keys (every key once, in order, if keys <= SYNC_RING)."""
    if keys > SYNC_RING:
        return i * keys // SYNC_RING + 1
    return i % keys + 1


# What the load sends and what each reply body must be.
KINDS: dict[str, tuple[int, Any, Any]] = {
    # kind: (request type, request body or None, expected reply body)
    "ping": (IPROTO_PING, None, {}),
    "call": (IPROTO_CALL, {IPROTO_FUNCTION_NAME: "sum", IPROTO_TUPLE: [1, 2]}, {IPROTO_DATA: [3]}),
    # A procedure that yields once: what a fiber costs (Styx: an asyncio task).
    "call-yield": (IPROTO_CALL, {IPROTO_FUNCTION_NAME: "sum_yield", IPROTO_TUPLE: [1, 2]},
                   {IPROTO_DATA: [3]}),
    # Lua on both servers: Styx's embedded LuaJIT (styx/tx/lua.py).
    "eval": (IPROTO_EVAL, {IPROTO_EXPR: "return 1", IPROTO_TUPLE: []}, {IPROTO_DATA: [1]}),
    "call-lua": (IPROTO_CALL, {IPROTO_FUNCTION_NAME: "lua_sum", IPROTO_TUPLE: [1, 2]}, {IPROTO_DATA: [3]}),
}


def _select(k: int) -> tuple[Any, tuple[Any, ...]]:
    body = {IPROTO_SPACE_ID: BENCH_SPACE, IPROTO_INDEX_ID: 0, IPROTO_ITERATOR: 0, IPROTO_LIMIT: 1,
            IPROTO_KEY: [k]}
    # Either value is right: the tuple holds value2(k) once `update` has run
    # on this server (until `replace` puts value(k) back).
    return body, ({IPROTO_DATA: [[k, value(k)]]}, {IPROTO_DATA: [[k, value2(k)]]})


def _replace(k: int) -> tuple[Any, tuple[Any, ...]]:
    return ({IPROTO_SPACE_ID: BENCH_SPACE, IPROTO_TUPLE: [k, value(k)]},
            ({IPROTO_DATA: [[k, value(k)]]},))


def _update(k: int) -> tuple[Any, tuple[Any, ...]]:
    # No IPROTO_INDEX_BASE: field numbers are 0-based, 1 is the second field.
    return ({IPROTO_SPACE_ID: BENCH_SPACE, IPROTO_INDEX_ID: 0, IPROTO_KEY: [k],
             IPROTO_TUPLE: [["=", 1, value2(k)]]},
            ({IPROTO_DATA: [[k, value2(k)]]},))


# Data kinds: (request type, key -> (request body, acceptable reply bodies)).
DATA_KINDS: dict[str, tuple[int, Any]] = {
    "select": (IPROTO_SELECT, _select),
    "replace": (IPROTO_REPLACE, _replace),
    "update": (IPROTO_UPDATE, _update),
}


# The transaction kinds: kind -> (requests per transaction, with streams?).
TXN_KINDS = {"txn": (3, True), "txn-plain": (1, False), "txn-sr": (4, True), "txn-sr-plain": (2, False)}
# Kinds where every connection has its own ring (its own keys).
PER_CONN_KINDS = tuple(TXN_KINDS)
# Kinds that only Styx answers (streams, transactions); `streams` must be > 0 for txn.
STYX_KINDS = PER_CONN_KINDS


def txn_ring(streams: int, per_txn: int = 3) -> int:
    """R: transactions in a connection's ring with T streams, a multiple of T
    (so stream t mod T + 1 repeats regularly across the wrap-around), with
    `per_txn` requests each within the sync ring."""
    return streams * (min(TXN_RING_MAX, (SYNC_RING - 1) // per_txn) // streams)



def ring_of(kind: str, streams: int) -> int:
    """The ring of a transaction kind: a kind and its plain twin share it
    (and so their keys)."""
    per = 3 if kind in ("txn", "txn-plain") else 4
    return txn_ring(max(streams, 1), per)


def txn_key(conn: int, t: int, ring: int) -> int:
    """The key transaction t (0..R-1) of connection `conn` (0-based, over all
    load processes) writes: connections own disjoint ranges, so concurrent
    transactions never share a key. Keys 1..connections x R."""
    return conn * ring + t + 1


class Plan:
    """One connection's load: per ring slot (sync = slot + 1) the request,
    the acceptable reply bodies and the slot of the previous request of the
    same stream (None: no streams); `group`: requests that go together (3
    for a transaction: the load never stops inside one)."""

    def __init__(self, kind: str, keys: int = DEFAULT_KEYS, streams: int = 0, conn: int = 0) -> None:
        reqs: list[tuple[int, Any, int]] = []  # (type, body or None, stream id or 0)
        expected: list[tuple[Any, ...]] = []
        self.group = 1
        if kind in TXN_KINDS:
            per_txn, in_streams = TXN_KINDS[kind]
            if in_streams and streams < 1:
                raise ValueError(f"{kind} needs streams >= 1")
            r = ring_of(kind, streams)
            reads = kind.startswith("txn-sr")
            for t in range(r):
                k = txn_key(conn, t, r)
                sid = t % streams + 1 if in_streams else 0
                if in_streams:
                    reqs.append((IPROTO_BEGIN, None, sid))
                    expected.append(({},))
                if reads:  # before the first REPLACE of this key: value2(k) (the reset), then value(k)
                    reqs.append((IPROTO_SELECT, {IPROTO_SPACE_ID: TXN_SPACE, IPROTO_INDEX_ID: 0, IPROTO_ITERATOR: 0,
                                                 IPROTO_LIMIT: 1, IPROTO_KEY: [k]}, sid))
                    expected.append(({IPROTO_DATA: [[k, value2(k)]]}, {IPROTO_DATA: [[k, value(k)]]}))
                reqs.append((IPROTO_REPLACE, {IPROTO_SPACE_ID: TXN_SPACE, IPROTO_TUPLE: [k, value(k)]}, sid))
                expected.append(({IPROTO_DATA: [[k, value(k)]]},))
                if in_streams:
                    reqs.append((IPROTO_COMMIT, None, sid))
                    expected.append(({},))
            self.group = per_txn
        elif kind in DATA_KINDS:
            rtype, make = DATA_KINDS[kind]
            for i in range(SYNC_RING):
                body, exp = make(slot_key(i, keys))
                reqs.append((rtype, body, i % streams + 1 if streams else 0))
                expected.append(exp)
        else:
            rtype, body, exp = KINDS[kind]
            reqs = [(rtype, body, i % streams + 1 if streams else 0) for i in range(SYNC_RING)]
            expected = [(exp,)] * SYNC_RING
        self.size = len(reqs)
        self.ring = Ring([encode_request(t, i + 1, b, sid) for i, (t, b, sid) in enumerate(reqs)])
        self.expected = expected
        self.prev: list[int] | None = None
        sids = [sid for _, _, sid in reqs]
        if any(sids):
            last = {sid: i for i, sid in enumerate(sids)}  # each stream's last slot: before slot 0, cyclically
            prev = []
            for i, sid in enumerate(sids):
                prev.append(last[sid] if sid else -1)
                last[sid] = i
            self.prev = prev


def encode_request(rtype: int, sync: int, body: Any, stream_id: int = 0) -> bytes:
    header = {IPROTO_REQUEST_TYPE: rtype, IPROTO_SYNC: sync}
    if stream_id:
        header[IPROTO_STREAM_ID] = stream_id
    payload = msgpack.packb(header)
    if body is not None:
        payload += msgpack.packb(body)
    return b"\xce" + _U32.pack(len(payload)) + payload


class Ring:
    """Requests for syncs 1..size, concatenated; slice(i, k) is the bytes of
    the k requests starting at ring index i (sync i + 1), wrapping around."""

    def __init__(self, reqs: list[bytes]) -> None:
        self.size = len(reqs)
        self.data = b"".join(reqs)
        self.offsets = [0]
        for r in reqs:
            self.offsets.append(self.offsets[-1] + len(r))

    def slice(self, i: int, k: int) -> bytes:
        off = self.offsets
        j = i + k
        if j <= self.size:
            return self.data[off[i]:off[j]]
        return self.data[off[i]:] + self.data[:off[j - self.size]]


class ReplyError(Exception):
    pass


class Checker:
    """Full check of a reply packet the first time its bytes are seen."""

    def __init__(self, expected: list[tuple[Any, ...]]) -> None:
        self.expected = expected  # per ring index: the acceptable bodies
        self.cache: dict[bytes, int] = {}  # packet bytes -> sync (ring index)
        self.errors = 0
        self.samples: list[str] = []

    def error(self, msg: str) -> None:
        self.errors += 1
        if len(self.samples) < 5:
            self.samples.append(msg)

    def check(self, packet: bytes) -> int:
        """Return the ring index (sync - 1) the packet answers; -2 - index if
        the reply is an error or has a wrong body (counted in self.errors; it
        still answers that request). Raises ReplyError when the packet cannot
        be decoded at all (the stream is lost)."""
        if packet[0] != 0xCE or len(packet) != 5 + _U32.unpack_from(packet, 1)[0]:
            raise ReplyError(f"bad length prefix: {packet[:5].hex()}")
        u = msgpack.Unpacker(raw=False, strict_map_key=False)
        u.feed(packet[5:])
        try:
            header = u.unpack()
            body = u.unpack() if u.tell() < len(packet) - 5 else None
            if u.tell() != len(packet) - 5:
                raise ReplyError(f"trailing bytes in packet {packet.hex()}")
        except (ValueError, msgpack.UnpackException, msgpack.OutOfData) as e:
            raise ReplyError(f"undecodable packet {packet.hex()}: {e}") from None
        if not isinstance(header, dict) or not isinstance(header.get(IPROTO_SYNC), int):
            raise ReplyError(f"bad header {header!r}")
        sync = header[IPROTO_SYNC]
        if not 1 <= sync <= len(self.expected):
            raise ReplyError(f"sync {sync} was never sent (header {header!r})")
        idx = sync - 1
        code = header.get(IPROTO_REQUEST_TYPE)
        if code != IPROTO_OK:
            code = code if isinstance(code, int) else -1
            msg = body.get(IPROTO_ERROR_24) if isinstance(body, dict) else None
            self.error(f"sync {sync}: error reply code {code:#x}: {msg!r}")
            return -2 - idx
        expected = self.expected[idx]
        if body not in expected:
            want = " or ".join(repr(e) for e in expected)
            self.error(f"sync {sync}: body {body!r}, expected {want}")
            return -2 - idx
        self.cache[packet] = idx
        return idx


def connect(port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    greeting = b""
    while len(greeting) < GREETING_SIZE:
        chunk = sock.recv(GREETING_SIZE - len(greeting))
        if not chunk:
            raise ConnectionError("closed before the greeting")
        greeting += chunk
    check_greeting(greeting)
    return sock


def check_greeting(greeting: bytes) -> None:
    if len(greeting) != GREETING_SIZE or not greeting.startswith(b"Tarantool ") \
            or greeting[63:64] != b"\n" or greeting[127:128] != b"\n":
        raise ConnectionError(f"bad greeting {greeting[:64]!r}")


class Conn:
    __slots__ = ("sock", "sent", "recvd", "exp", "early", "leftover", "out",
                 "ring", "checker", "size", "prev", "group")

    def __init__(self, sock: socket.socket, plan: Plan | None = None, checker: Checker | None = None) -> None:
        self.sock = sock
        if plan is not None:
            self.ring = plan.ring
            self.size = plan.size
            self.prev = plan.prev
            self.group = plan.group
            self.checker = checker if checker is not None else Checker(plan.expected)
        self.sent = 0      # requests sent
        self.recvd = 0     # replies received
        self.exp = 0       # ring index of the oldest request in flight
        self.early: set[int] = set()  # ring indexes answered out of order
        self.leftover = b""  # incomplete packet at the end of the last read
        self.out = b""     # unsent request bytes (partial write)


# ---------------------------------------------------------------------------
# Worker process: N connections, P in flight each, until told to stop.

PHASE_WAIT, PHASE_RUN, PHASE_STOP = 0, 1, 2


def worker_main(idx: int, port: int, nconn: int, inflight: int, kind: str,
                phase: Any, counts: Any, errors: Any, results: Any, keys: int = DEFAULT_KEYS,
                streams: int = 0, conn_base: int = 0) -> None:
    """Entry of one load process. `phase`, `counts`, `errors` are shared
    (multiprocessing RawValue/RawArray); `results` a Queue for the report.
    `streams`: S streams per connection (0: none; T for txn); `conn_base`: the
    index of this process's first connection among all (txn keys)."""
    # The parent stops us (phase, then terminate()); Ctrl-C is its business.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        if kind in PER_CONN_KINDS:
            conns = [Conn(connect(port), Plan(kind, keys, streams, conn_base + j)) for j in range(nconn)]
        else:
            plan = Plan(kind, keys, streams)
            shared = Checker(plan.expected)
            conns = [Conn(connect(port), plan, shared) for _ in range(nconn)]
        checkers = list({id(c.checker): c.checker for c in conns}.values())
        results.put(("ready", idx, os.getpid()))
        while phase.value == PHASE_WAIT:
            time.sleep(0.001)
        if nconn == 1:
            report = _run_blocking(idx, conns[0], inflight, phase, counts, errors)
        else:
            report = _run_epoll(idx, conns, inflight, phase, counts, errors)
        report["errors"] = sum(ch.errors for ch in checkers)
        report["error_samples"] = [m for ch in checkers for m in ch.samples][:5]
        report["sent"] = [c.sent for c in conns]  # requests each connection sent (all answered or counted)
        results.put(("done", idx, report))
        for c in conns:
            c.sock.close()
    except BaseException:  # noqa: BLE001 - whatever failed, the run goes on and says so
        results.put(("failed", idx, traceback.format_exc()))


def _consume(c: Conn, data: bytes) -> int:
    """Parse and check the complete replies in c.leftover + data; return how many."""
    if c.leftover:
        data = c.leftover + data
    n = len(data)
    pos = 0
    k = 0
    checker = c.checker
    cache = checker.cache
    exp = c.exp
    size = c.size
    while n - pos >= 5:
        end = pos + 5 + _U32.unpack_from(data, pos + 1)[0]
        if end > n:
            break
        packet = data[pos:end]
        s = cache.get(packet)
        if s is None:
            s = checker.check(packet)
            if s < -1:
                s = -2 - s  # an error reply still answers its request
        if s == exp:
            exp += 1
            if exp == size:
                exp = 0
            early = c.early
            while early and exp in early:
                early.remove(exp)
                exp += 1
                if exp == size:
                    exp = 0
        else:
            in_flight = c.sent - c.recvd - k
            d = (s - exp) % size
            # Requests exp .. exp + span - 1 were sent and not all answered:
            # those in flight now plus those already answered out of order.
            span = in_flight + len(c.early)
            if not 0 < d < span or s in c.early:
                raise ReplyError(f"reply for sync {s + 1}, which is not in flight "
                                 f"(oldest in flight {exp + 1}, {in_flight} in flight)")
            if c.prev is not None:
                # Streams: the request before it in its stream must be answered
                # already (it is unanswered if it lies in exp .. s - 1 and did
                # not come early).
                p = c.prev[s]
                if p >= 0 and (p - exp) % size < d and p not in c.early:
                    checker.error(f"sync {s + 1} answered before sync {p + 1}, the request before it "
                                  "in the same stream")
            c.early.add(s)
        pos = end
        k += 1
    c.exp = exp
    c.leftover = data[pos:] if pos < n else b""
    c.recvd += k
    return k


def _finish_group(c: Conn) -> bytes:
    """What the connection must still send so that its last group (a
    transaction) is whole; counted as sent."""
    r = -c.sent % c.group
    if not r:
        return b""
    data = c.ring.slice(c.sent % c.size, r)
    c.sent += r
    return data


def _run_blocking(idx: int, c: Conn, inflight: int,
                  phase: Any, counts: Any, errors: Any) -> dict[str, Any]:
    """One connection: a blocking socket, no poller between the client and
    the round trip (with inflight=1 this is the synchronous client)."""
    sock = c.sock
    ring = c.ring
    sock.setblocking(True)
    sock.sendall(ring.slice(0, inflight))
    c.sent = inflight
    total = 0
    recv = sock.recv
    while True:
        data = recv(262144)
        if not data:
            raise ConnectionError("server closed the connection")
        k = _consume(c, data)
        if k:
            total += k
            counts[idx] = total
            if phase.value == PHASE_RUN:
                sock.sendall(ring.slice(c.sent % c.size, k))
                c.sent += k
            else:
                rest = _finish_group(c)
                if rest:
                    sock.sendall(rest)
                if c.sent == c.recvd:
                    break
    errors[idx] = c.checker.errors
    return {"replies": total, "missing": 0}


def _run_epoll(idx: int, conns: list[Conn], inflight: int,
               phase: Any, counts: Any, errors: Any) -> dict[str, Any]:
    ep = select.epoll()
    by_fd: dict[int, Conn] = {}
    for c in conns:
        c.sock.setblocking(False)
        by_fd[c.sock.fileno()] = c
        ep.register(c.sock.fileno(), select.EPOLLIN)
        _send(c, c.ring.slice(0, inflight), ep)
        c.sent = inflight
    total = 0
    running = True
    drain_deadline = None
    IN, OUT = select.EPOLLIN, select.EPOLLOUT
    while True:
        for fd, ev in ep.poll(0.2):
            c = by_fd[fd]
            if ev & OUT:
                _send(c, b"", ep)
            if not ev & IN and ev & (select.EPOLLHUP | select.EPOLLERR):
                raise ConnectionError("server closed the connection")
            if ev & IN:
                try:
                    data = c.sock.recv(262144)
                except BlockingIOError:
                    continue
                if not data:
                    raise ConnectionError("server closed the connection")
                k = _consume(c, data)
                if k:
                    total += k
                    if running:
                        _send(c, c.ring.slice(c.sent % c.size, k), ep)
                        c.sent += k
        counts[idx] = total
        if running and phase.value != PHASE_RUN:
            running = False
            drain_deadline = time.monotonic() + 10.0
            for c in conns:  # no transaction left half-sent
                _send(c, _finish_group(c), ep)
        if not running:
            missing = sum(c.sent - c.recvd for c in conns)
            if missing == 0 or time.monotonic() > drain_deadline:
                break
    ep.close()
    if missing:
        conns[0].checker.error(f"{missing} requests got no reply within 10 s after the load stopped")
    errors[idx] = sum({id(c.checker): c.checker.errors for c in conns}.values())
    return {"replies": total, "missing": missing}


def _send(c: Conn, data: bytes, ep: Any) -> None:
    if c.out:
        data = c.out + data
    if not data:
        return
    try:
        n = c.sock.send(data)
    except BlockingIOError:
        n = 0
    fd = c.sock.fileno()
    if n < len(data):
        if not c.out:
            ep.modify(fd, select.EPOLLIN | select.EPOLLOUT)
        c.out = data[n:]
    elif c.out:
        c.out = b""
        ep.modify(fd, select.EPOLLIN)


# ---------------------------------------------------------------------------
# Many idle connections (memory test), from the calling process.

def open_many(port: int, n: int, window: int = 512, timeout: float = 120.0,
              host: str = "127.0.0.1") -> tuple[list[socket.socket], dict[str, Any]]:
    """Open n connections and read each one's greeting, with at most `window`
    connections not yet greeted at a time. Returns the sockets (non-blocking)
    and stats."""
    ep = select.epoll()
    pending: dict[int, tuple[socket.socket, bytearray]] = {}
    done: list[socket.socket] = []
    started = 0
    retries = 0
    slow = 0  # greetings that took more than 1 s (a SYN retransmit, typically)
    born: dict[int, float] = {}
    t0 = time.monotonic()
    deadline = t0 + timeout

    def start_one() -> None:
        nonlocal started
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        err = s.connect_ex((host, port))
        if err not in (0, errno.EINPROGRESS):
            s.close()
            raise OSError(err, os.strerror(err))
        pending[s.fileno()] = (s, bytearray())
        born[s.fileno()] = time.monotonic()
        ep.register(s.fileno(), select.EPOLLIN)
        started += 1

    try:
        while len(done) < n:
            while started < n + retries and len(pending) < window:
                start_one()
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {len(done)} of {n} connections greeted in {timeout:.0f} s")
            for fd, _ev in ep.poll(1.0):
                s, buf = pending[fd]
                try:
                    chunk = s.recv(GREETING_SIZE - len(buf))
                except BlockingIOError:
                    continue
                except OSError:
                    chunk = b""
                if not chunk:  # refused / reset / closed: try again with a new one
                    ep.unregister(fd)
                    del pending[fd]
                    s.close()
                    retries += 1
                    if retries > n:
                        raise ConnectionError("more failed connects than connections")
                    continue
                buf += chunk
                if len(buf) == GREETING_SIZE:
                    check_greeting(bytes(buf))
                    ep.unregister(fd)
                    del pending[fd]
                    if time.monotonic() - born.pop(fd) > 1.0:
                        slow += 1
                    done.append(s)
    except BaseException:
        for s, _ in pending.values():
            s.close()
        for s in done:
            s.close()
        raise
    finally:
        ep.close()
    elapsed = time.monotonic() - t0
    return done, {"open_seconds": elapsed, "failed_connects": retries, "slow_greetings": slow}


def ping_all(socks: list[socket.socket], timeout: float = 60.0) -> dict[str, Any]:
    """Send one PING on every connection (sync = its index + 1) and check that
    every one gets its reply. Returns stats."""
    checker = Checker(Plan("ping").expected)
    ep = select.epoll()
    by_fd = {}
    t0 = time.monotonic()
    for i, s in enumerate(socks):
        req = encode_request(IPROTO_PING, (i % SYNC_RING) + 1, None)
        try:
            s.send(req)  # a few bytes on an idle socket: never partial
        except OSError as e:
            checker.error(f"connection {i}: send failed: {e}")
            continue
        by_fd[s.fileno()] = (i, s, bytearray())
        ep.register(s.fileno(), select.EPOLLIN)
    answered = 0
    wrong = checker.errors
    deadline = t0 + timeout
    try:
        while by_fd and time.monotonic() < deadline:
            for fd, _ev in ep.poll(1.0):
                i, s, buf = by_fd[fd]
                try:
                    chunk = s.recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    chunk = b""
                if not chunk:
                    checker.error(f"connection {i} closed before its PING reply")
                    wrong += 1
                    ep.unregister(fd)
                    del by_fd[fd]
                    continue
                buf += chunk
                if len(buf) >= 5 and len(buf) >= 5 + _U32.unpack_from(buf, 1)[0]:
                    ep.unregister(fd)
                    del by_fd[fd]
                    if len(buf) != 5 + _U32.unpack_from(buf, 1)[0]:
                        checker.error(f"connection {i}: extra bytes after the PING reply")
                        wrong += 1
                        continue
                    try:
                        r = checker.check(bytes(buf))
                    except ReplyError as e:
                        checker.error(f"connection {i}: {e}")
                        wrong += 1
                        continue
                    if r != i % SYNC_RING:
                        if r >= 0:
                            checker.error(f"connection {i}: reply for sync {r + 1}, sent {i % SYNC_RING + 1}")
                        wrong += 1
                    else:
                        answered += 1
    finally:
        ep.close()
    return {
        "pinged": len(socks), "answered_ok": answered, "wrong": wrong,
        "unanswered": len(by_fd), "ping_seconds": time.monotonic() - t0,
        "errors": checker.samples,
    }


# ---------------------------------------------------------------------------
# Filling a space (tuple memory test), from the calling process.

def fill_space(port: int, n: int, space_id: int = MEM_SPACE, nconn: int = 4, inflight: int = 64,
               timeout: float = 600.0, val: Any = value) -> dict[str, Any]:
    """REPLACE [k, val(k)] for k = 1..n into space_id over nconn connections,
    each keeping `inflight` requests in flight (sliding window; sync = k), and
    wait for every reply. Every reply is decoded and checked: code 0, a sync in
    flight on that connection, body {IPROTO_DATA: [[k, val(k)]]}. Returns stats."""
    socks = [connect(port) for _ in range(nconn)]
    ep = select.epoll()
    # Connection j sends keys j+1, j+1+nconn, ...: its next key and its window.
    st: dict[int, dict[str, Any]] = {}
    errors = 0
    samples: list[str] = []
    unpack = msgpack.Unpacker

    def err(msg: str) -> None:
        nonlocal errors
        errors += 1
        if len(samples) < 5:
            samples.append(msg)

    def requests(c: dict[str, Any], k: int) -> bytes:
        out = []
        key = c["next"]
        while k > 0 and key <= n:
            out.append(encode_request(IPROTO_REPLACE, key,
                                      {IPROTO_SPACE_ID: space_id, IPROTO_TUPLE: [key, val(key)]}))
            c["flight"].add(key)
            key += nconn
            k -= 1
        c["next"] = key
        return b"".join(out)

    def send(c: dict[str, Any], data: bytes) -> None:
        data = c["out"] + data
        if not data:
            return
        try:
            m = c["sock"].send(data)
        except BlockingIOError:
            m = 0
        had = bool(c["out"])
        c["out"] = data[m:]
        if had != bool(c["out"]):
            ep.modify(c["sock"].fileno(), select.EPOLLIN | (select.EPOLLOUT if c["out"] else 0))

    t0 = time.monotonic()
    acked = 0
    try:
        for j, sock in enumerate(socks):
            sock.setblocking(False)
            c = {"sock": sock, "next": j + 1, "flight": set(), "buf": b"", "out": b""}
            st[sock.fileno()] = c
            ep.register(sock.fileno(), select.EPOLLIN)
            send(c, requests(c, inflight))
        deadline = t0 + timeout
        while any(c["flight"] for c in st.values()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{acked} of {n} REPLACEs acknowledged in {timeout:.0f} s")
            for fd, ev in ep.poll(1.0):
                c = st[fd]
                if ev & select.EPOLLOUT:
                    send(c, b"")
                if not ev & select.EPOLLIN:
                    if ev & (select.EPOLLHUP | select.EPOLLERR):
                        raise ConnectionError("server closed the connection")
                    continue
                try:
                    data = c["sock"].recv(262144)
                except BlockingIOError:
                    continue
                if not data:
                    raise ConnectionError("server closed the connection")
                data = c["buf"] + data
                pos, end_all, k = 0, len(data), 0
                while end_all - pos >= 5:
                    if data[pos] != 0xCE:
                        raise ReplyError(f"bad length prefix: {data[pos:pos + 5].hex()}")
                    end = pos + 5 + _U32.unpack_from(data, pos + 1)[0]
                    if end > end_all:
                        break
                    u = unpack(raw=False, strict_map_key=False)
                    u.feed(data[pos + 5:end])
                    header = u.unpack()
                    body = u.unpack() if u.tell() < end - pos - 5 else None
                    sync = header.get(IPROTO_SYNC) if isinstance(header, dict) else None
                    if sync not in c["flight"]:
                        raise ReplyError(f"reply for sync {sync!r}, which is not in flight")
                    c["flight"].discard(sync)
                    k += 1
                    if header.get(IPROTO_REQUEST_TYPE) != IPROTO_OK:
                        msg = body.get(IPROTO_ERROR_24) if isinstance(body, dict) else None
                        err(f"REPLACE key {sync}: error {header.get(IPROTO_REQUEST_TYPE)!r}: {msg!r}")
                    elif body != {IPROTO_DATA: [[sync, val(sync)]]}:
                        err(f"REPLACE key {sync}: body {body!r}")
                    else:
                        acked += 1
                    pos = end
                c["buf"] = data[pos:]
                if k:
                    send(c, requests(c, k))
    finally:
        ep.close()
        for sock in socks:
            sock.close()
    return {"tuples": n, "acknowledged": acked, "fill_seconds": time.monotonic() - t0,
            "errors": errors, "error_samples": samples}


def select_all(port: int, space_id: int, timeout: float = 30.0) -> list[Any]:
    """Every tuple of a space (SELECT, iterator ALL, primary index), on a fresh
    connection; raises ReplyError on an error reply."""
    sock = connect(port, timeout=timeout)
    try:
        sock.sendall(encode_request(IPROTO_SELECT, 1, {IPROTO_SPACE_ID: space_id, IPROTO_INDEX_ID: 0,
                                                       IPROTO_ITERATOR: 2, IPROTO_LIMIT: 0xFFFFFFFF,
                                                       IPROTO_KEY: []}))
        buf = b""
        while len(buf) < 5 or len(buf) < 5 + _U32.unpack_from(buf, 1)[0]:
            chunk = sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("closed before the reply")
            buf += chunk
    finally:
        sock.close()
    u = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=len(buf))
    u.feed(buf[5:])
    header, body = u.unpack(), u.unpack()
    if header.get(IPROTO_REQUEST_TYPE) != IPROTO_OK:
        raise ReplyError(f"SELECT all of space {space_id}: {body.get(IPROTO_ERROR_24)!r}")
    return body.get(IPROTO_DATA)


def call(port: int, name: str, args: list[Any], timeout: float = 30.0) -> Any:
    """One CALL on a fresh connection; returns the IPROTO_DATA of the reply,
    raises ReplyError on an error reply."""
    sock = connect(port, timeout=timeout)
    try:
        sock.sendall(encode_request(IPROTO_CALL, 1, {IPROTO_FUNCTION_NAME: name, IPROTO_TUPLE: args}))
        buf = b""
        while len(buf) < 5 or len(buf) < 5 + _U32.unpack_from(buf, 1)[0]:
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed before the reply")
            buf += chunk
    finally:
        sock.close()
    u = msgpack.Unpacker(raw=False, strict_map_key=False)
    u.feed(buf[5:])
    header, body = u.unpack(), u.unpack()
    if header.get(IPROTO_REQUEST_TYPE) != IPROTO_OK:
        raise ReplyError(f"CALL {name}: {body.get(IPROTO_ERROR_24)!r}")
    return body.get(IPROTO_DATA)
