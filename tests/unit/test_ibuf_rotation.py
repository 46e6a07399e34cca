"""The two-ibuf rotation of `styx.net.connection.Connection` with requests in
flight, driven without an event loop (a fake net thread, a socketpair for
recv_into), and the two-obuf rotation of `styx.tx.kharon.accept_wpos`."""

from __future__ import annotations

import collections
import select
import socket
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from styx.iproto_msg import IprotoMsg, TxConn
from styx.memory import Obuf, SlabCache
from styx.net.connection import (
    ALIVE,
    CLOSED,
    STOP_MSG_MAX,
    STOP_READAHEAD,
    STOP_STARTING,
    Connection,
)
from styx.protocol import constants as C
from styx.protocol.codec import BODY_DECODERS, new_packer
from styx.protocol.scan import BatchDecoder
from styx.tx.kharon import accept_wpos
from tests.iproto import packet

SLAB_LIMIT = 64 << 20


class GuardedSlabCache(SlabCache):
    """Refuses absurd slabs, so that a bug asking for gigabytes fails the
    test instead of the machine."""

    def get(self, size: int) -> bytearray:
        if size > SLAB_LIMIT:
            raise MemoryError(f"test slab cache: {size} bytes asked")
        return super().get(size)


class FakeLoop:
    def __init__(self) -> None:
        self.readers: dict[int, Callable[[], None]] = {}
        self.writers: dict[int, Callable[[], None]] = {}

    def add_reader(self, fd: int, cb: Callable[[], None]) -> None:
        self.readers[fd] = cb

    def remove_reader(self, fd: int) -> bool:
        return self.readers.pop(fd, None) is not None

    def add_writer(self, fd: int, cb: Callable[[], None]) -> None:
        self.writers[fd] = cb

    def remove_writer(self, fd: int) -> bool:
        return self.writers.pop(fd, None) is not None

    def call_soon(self, cb: Callable[..., None], *args: Any) -> None:
        cb(*args)


class FakeFeed:
    def __init__(self) -> None:
        self.pending: list[Callable[[], None]] = []

    def defer(self, fn: Callable[[], None]) -> None:
        self.pending.append(fn)

    def run(self) -> None:
        while self.pending:
            pending, self.pending = self.pending, []
            for fn in pending:
                fn()


class FakePipe:
    def __init__(self) -> None:
        self.msgs: list[Any] = []
        self.flushes = 0

    def push(self, msg: Any) -> None:
        self.msgs.append(msg)

    def push_many(self, msgs: list[Any]) -> None:
        self.msgs.extend(msgs)

    def flush(self) -> None:
        self.flushes += 1


ROUTE_REQUEST = ("request",)
ROUTE_ERROR = ("error",)


class FakeNet:
    """What a Connection uses of its NetThread, and nothing else."""

    def __init__(self, readahead: int = 512, net_msg_max: int = 1 << 20) -> None:
        self.index = 0
        self.readahead = readahead
        self.net_msg_max = net_msg_max
        self.net_obuf_max = 1 << 30
        self.latency = None  # no --metrics-listen
        self.slabc = GuardedSlabCache(min_size=512)
        self.decoder = BatchDecoder()
        self.packer = new_packer()
        self.body_decoders = BODY_DECODERS
        # What the connection uses of a TxLink, with fakes for pipe and routes.
        self.tx = SimpleNamespace(
            pipe=FakePipe(),
            routes={t: ROUTE_REQUEST for t in (C.PING, C.CALL, C.SELECT, C.ID, C.AUTH)},
            error=ROUTE_ERROR, disconnect=("disconnect",), destroy=("destroy",),
            schema_version=lambda: 0,
        )
        self.loop = FakeLoop()
        self.feed = FakeFeed()
        self.msg_count = 0
        self.requests_total = 0
        self.received = 0
        self.sent = 0
        self.stopped: collections.deque[Connection] = collections.deque()
        self.closed: list[Connection] = []

    def stop_for_msg_max(self, conn: Connection) -> None:
        if not conn.stopped & STOP_MSG_MAX:
            conn.stop_input(STOP_MSG_MAX)
            self.stopped.append(conn)

    def resume_stopped(self) -> None:
        while self.stopped and self.msg_count < self.net_msg_max:
            self.stopped.popleft().start_input(STOP_MSG_MAX)

    def connection_closed(self, conn: Connection) -> None:
        self.closed.append(conn)

    def finish(self, msg: IprotoMsg) -> None:
        """The input half of `NetThread.send_msg`: the request is done."""
        msg.conn.release_input(msg)
        self.msg_count -= 1
        self.resume_stopped()

    @property
    def requests(self) -> list[IprotoMsg]:
        return [m for m in self.tx.pipe.msgs if isinstance(m, IprotoMsg)]


class Harness:
    def __init__(self, readahead: int = 512, net_msg_max: int = 1 << 20) -> None:
        self.th = FakeNet(readahead, net_msg_max)
        self.client, self.server = socket.socketpair()
        self.server.setblocking(False)
        self.conn = Connection(self.th, self.server, "peer", 1)  # type: ignore[arg-type]  # a fake thread
        obufs = (Obuf(SlabCache(), 1024), Obuf(SlabCache(), 1024))
        self.conn.tx_conn = TxConn(self.conn, 0, obufs)
        self.conn.start_input(STOP_STARTING)
        self.fd = self.conn.fd
        self.sent = 0

    def close(self) -> None:
        self.client.close()
        if self.conn.state == ALIVE:
            self.server.close()

    def send(self, data: bytes) -> None:
        self.client.sendall(data)
        self.sent += len(data)

    def readable(self) -> bool:
        if self.conn.state != ALIVE:
            return False
        return bool(select.select([self.server], [], [], 0)[0])

    def step(self) -> bool:
        """One readiness event, if the connection watches its socket and it is readable."""
        cb = self.th.loop.readers.get(self.fd)
        if cb is None or not self.readable():
            return False
        cb()
        return True

    def pump(self, limit: int = 10000) -> None:
        for _ in range(limit):
            if not self.step():
                return
        raise AssertionError("input never settles")

    @property
    def ibuf(self) -> Any:
        return self.conn.ibuf

    def tail(self) -> bytes:
        """The unparsed bytes at the end of the current ibuf."""
        ib = self.conn.ibuf[self.conn.p_ibuf]
        if self.conn.parse_size == 0:
            return b""
        return bytes(ib.buf[ib.wpos - self.conn.parse_size:ib.wpos])


@pytest.fixture
def h() -> Iterator[Harness]:
    hh = Harness()
    yield hh
    hh.close()


def test_call_packet_sizes() -> None:
    for size in range(20, 3000):
        assert len(call_packet(7, size)) == size


def call_packet(sync: int, size: int) -> bytes:
    """A CALL packet of exactly `size` bytes (padding in the argument)."""
    base = packet({C.REQUEST_TYPE: C.CALL, C.SYNC: sync}, {C.FUNCTION_NAME: "f", C.TUPLE: [b""]})
    pad = size - len(base)
    assert pad >= 0
    for extra in range(5):  # the bin header grows with the payload: fill gaps with zeros
        for zeros in range(3):
            if pad - extra - zeros < 0:
                continue
            p = packet({C.REQUEST_TYPE: C.CALL, C.SYNC: sync},
                              {C.FUNCTION_NAME: "f", C.TUPLE: [b"x" * (pad - extra - zeros)] + [0] * zeros})
            if len(p) == size:
                return p
    raise AssertionError(size)


def ping(sync: int) -> bytes:
    return packet({C.REQUEST_TYPE: C.PING, C.SYNC: sync})


def args_of(packet: bytes) -> Any:
    u = msgpack.Unpacker(raw=False, strict_map_key=False)
    u.feed(packet)
    u.skip()
    u.skip()
    return u.unpack()[C.TUPLE]


def syncs(msgs: list[IprotoMsg]) -> list[int]:
    return [m.sync for m in msgs]


# -- input: framing across chunks -------------------------------------------------------------


def test_one_message_per_complete_packet_and_partial_tail(h: Harness) -> None:
    packets = [call_packet(i, 60) for i in range(1, 5)]
    stream = b"".join(packets)
    h.send(stream[:150])  # two packets and 30 bytes of the third
    h.pump()
    reqs = h.th.requests
    assert syncs(reqs) == [1, 2]
    assert all(m.route is ROUTE_REQUEST and m.type == C.CALL for m in reqs)
    assert [m.req for m in reqs] == [("f", args_of(packets[0])), ("f", args_of(packets[1]))]
    assert [m.len for m in reqs] == [60, 60]
    assert [m.p_ibuf for m in reqs] == [0, 0]
    assert h.conn.parse_size == 30
    assert h.tail() == stream[120:150]
    assert 30 <= h.conn.to_read <= 60  # room for at least the rest of the packet
    assert h.th.msg_count == 2 and h.conn.input_msg_count == [2, 0]
    h.send(stream[150:])
    h.pump()
    assert syncs(h.th.requests) == [1, 2, 3, 4]
    assert h.conn.parse_size == 0
    assert h.th.received == len(stream) and h.th.requests_total == 4
    assert h.conn.to_read == 3


def test_split_inside_the_length_prefix(h: Harness) -> None:
    p = ping(7)
    h.send(p[:2])  # 0xCE and one byte of the length
    h.pump()
    assert h.th.requests == [] and h.conn.parse_size == 2
    assert h.conn.to_read == 9  # an incomplete prefix: wait for the longest one
    h.send(p[2:4])
    h.pump()
    assert h.th.requests == [] and h.conn.parse_size == 4
    h.send(p[4:])
    h.pump()
    assert syncs(h.th.requests) == [7] and h.th.requests[0].type == C.PING
    assert h.conn.parse_size == 0


def test_byte_by_byte(h: Harness) -> None:
    stream = ping(1) + call_packet(2, 100) + ping(3)
    for i in range(len(stream)):
        h.send(stream[i:i + 1])
        h.pump()
    assert syncs(h.th.requests) == [1, 2, 3]
    assert h.th.requests[1].req == ("f", args_of(call_packet(2, 100)))
    assert [m.len for m in h.th.requests] == [len(ping(1)), 100, len(ping(3))]
    assert h.conn.parse_size == 0 and h.th.received == len(stream)


def test_every_prefix_width_in_the_stream(h: Harness) -> None:
    packb = msgpack.packb
    payload = packb({0: C.PING, 1: 5})
    n = len(payload)
    stream = (bytes([n]) + payload
              + b"\xcc" + bytes([n]) + payload
              + b"\xcd" + n.to_bytes(2, "big") + payload
              + b"\xce" + n.to_bytes(4, "big") + payload
              + b"\xcf" + n.to_bytes(8, "big") + payload)
    h.send(stream)
    h.pump()
    assert len(h.th.requests) == 5
    assert all(m.sync == 5 and m.type == C.PING for m in h.th.requests)
    assert [m.len for m in h.th.requests] == [n + 1, n + 2, n + 3, n + 5, n + 9]


# -- input: the rotation --------------------------------------------------------------------


def test_rotation_copies_tail_and_flips(h: Harness) -> None:
    """Buffer 0 is full of requests in flight and a partial packet: the next
    read goes to buffer 1, which gets only the tail."""
    packets = [call_packet(i, 100) for i in range(1, 8)]
    stream = b"".join(packets)
    h.send(stream[:530])  # 5 packets + 30 bytes of the sixth: more than the 512-byte slab
    assert h.step()  # one read: it fills the 512-byte buffer
    assert h.ibuf[0].capacity == 512 and h.ibuf[0].wpos == 512
    assert syncs(h.th.requests) == [1, 2, 3, 4, 5]
    assert h.conn.p_ibuf == 0 and h.conn.parse_size == 12
    assert h.conn.input_msg_count == [5, 0]
    assert h.th.slabc.used == 512
    # The next read needs room and buffer 0 holds requests in flight.
    ib = h.conn._input_buffer()
    assert ib is h.ibuf[1]
    assert h.conn.p_ibuf == 1
    assert bytes(h.ibuf[1].buf[0:12]) == stream[500:512]
    assert (h.ibuf[1].rpos, h.ibuf[1].wpos) == (0, 12)
    assert h.ibuf[0].wpos == 500  # the tail left buffer 0; its requests did not move
    assert bytes(h.ibuf[0].buf[0:500]) == stream[:500]
    assert h.th.slabc.used == 1024
    h.pump()
    assert h.conn.parse_size == 30 and h.tail() == stream[500:530]
    h.send(stream[530:])
    h.pump()
    assert syncs(h.th.requests) == [1, 2, 3, 4, 5, 6, 7]
    assert [m.p_ibuf for m in h.th.requests] == [0, 0, 0, 0, 0, 1, 1]
    assert h.conn.input_msg_count == [5, 2]
    assert h.conn.parse_size == 0


def _fill_both(h: Harness) -> tuple[bytes, list[IprotoMsg], list[IprotoMsg]]:
    """Buffer 0 and buffer 1 both hold requests in flight, with a partial tail."""
    stream = b"".join(call_packet(i, 100) for i in range(1, 13))
    h.send(stream[:1030])
    h.pump()
    reqs = h.th.requests
    first = [m for m in reqs if m.p_ibuf == 0]
    second = [m for m in reqs if m.p_ibuf == 1]
    assert len(first) == 5 and len(second) == 5
    return stream, first, second


def test_both_buffers_in_flight_stops_input(h: Harness) -> None:
    stream, first, second = _fill_both(h)
    assert h.conn.input_msg_count == [5, 5]
    assert h.conn.p_ibuf == 1
    assert h.ibuf[1].unused() < h.conn.to_read
    # The read attempt that found no buffer stopped input: the reader is
    # removed, the rest of the bytes stay in the socket.
    assert h.conn.stopped & STOP_READAHEAD
    assert not h.conn.reading and h.fd not in h.th.loop.readers
    assert h.readable() and not h.step()
    assert h.th.received == 512 + 500  # buffer 1 got a 12-byte tail copied, then 500 read
    assert h.ibuf[1].wpos == 512 and h.conn.parse_size == 12
    assert h.conn._input_buffer() is None
    assert h.conn.p_ibuf == 1 and h.conn.input_msg_count == [5, 5]  # nothing moved


def test_releasing_a_buffer_returns_its_slab_and_resumes(h: Harness) -> None:
    stream, first, second = _fill_both(h)
    assert h.conn.stopped & STOP_READAHEAD
    used = h.th.slabc.used
    assert used == 1024
    for m in first[:-1]:
        h.th.finish(m)
        assert h.ibuf[0].buf is not None  # still referenced by the others
        assert h.th.slabc.used == used
    h.th.finish(first[-1])
    assert h.ibuf[0].buf is None
    assert h.th.slabc.used == used - 512
    # Input resumed: reader back, and the next read rotates into buffer 0.
    assert not h.conn.stopped & STOP_READAHEAD
    assert h.fd in h.th.loop.readers
    h.pump()
    assert h.conn.p_ibuf == 0
    h.send(stream[1030:])
    h.pump()
    assert syncs(h.th.requests) == list(range(1, 13))
    assert [m.p_ibuf for m in h.th.requests] == [0] * 5 + [1] * 5 + [0] * 2
    # Release everything: both slabs go back.
    for m in h.th.requests[5:]:
        h.th.finish(m)
    assert h.conn.input_msg_count == [0, 0] and h.th.msg_count == 0
    assert h.ibuf[0].buf is None and h.ibuf[1].buf is None
    assert h.th.slabc.used == 0


def test_release_current_buffer_keeps_partial_tail(h: Harness) -> None:
    stream = b"".join(call_packet(i, 100) for i in range(1, 4))
    h.send(stream[:250])
    h.pump()
    assert syncs(h.th.requests) == [1, 2]
    for m in h.th.requests:
        h.th.finish(m)
    # Requests gone, the partial third packet stays, consumed data is skipped.
    ib = h.ibuf[0]
    assert ib.buf is not None
    assert ib.rpos == ib.wpos - 50 and h.conn.parse_size == 50
    assert bytes(ib.buf[ib.rpos:ib.wpos]) == stream[200:250]
    h.send(stream[250:])
    h.pump()
    assert syncs(h.th.requests) == [1, 2, 3]
    h.th.finish(h.th.requests[2])
    assert h.th.slabc.used == 0


def test_growth_for_a_packet_bigger_than_readahead(h: Harness) -> None:
    big = call_packet(1, 5000)
    h.send(big + ping(2))
    h.pump()
    assert syncs(h.th.requests) == [1, 2]
    msg = h.th.requests[0]
    assert msg.len == 5000 and msg.p_ibuf == 0
    assert msg.req == ("f", args_of(big))
    assert h.ibuf[0].capacity >= 5000 + 3
    for m in h.th.requests:
        h.th.finish(m)
    assert h.th.slabc.used == 0


def test_growth_into_other_buffer_while_in_flight(h: Harness) -> None:
    """A big packet starts in a buffer with requests in flight: the other
    buffer is reserved large enough for all of it."""
    small = call_packet(1, 400)
    big = call_packet(2, 3000)
    h.send(small + big[:100])
    h.pump()
    assert syncs(h.th.requests) == [1]
    assert h.conn.parse_size == 100 and h.conn.to_read == 3000
    h.send(big[100:])
    h.pump()
    assert syncs(h.th.requests) == [1, 2]
    assert h.th.requests[1].p_ibuf == 1
    assert h.ibuf[1].capacity >= 3000
    assert h.ibuf[0].wpos == 400  # untouched: its request is still in flight
    for m in h.th.requests:
        h.th.finish(m)
    assert h.th.slabc.used == 0


# -- input: fatal framing errors ---------------------------------------------------------------


def _read_reply(sock: socket.socket) -> tuple[dict[int, Any], dict[int, Any]]:
    sock.settimeout(2)
    u = msgpack.Unpacker(raw=False, strict_map_key=False)
    while True:
        data = sock.recv(65536)
        assert data, "connection closed without a reply"
        u.feed(data)
        try:
            u.unpack()  # length
            return u.unpack(), u.unpack()
        except msgpack.OutOfData:
            continue


def test_non_uint_prefix_is_fatal(h: Harness) -> None:
    h.send(ping(1) + b"\x91\x00")
    h.pump()
    assert syncs(h.th.requests) == [1]
    assert h.conn.state == CLOSED and h.th.closed == [h.conn]
    header, body = _read_reply(h.client)
    assert header[C.REQUEST_TYPE] == C.TYPE_ERROR | 20 and header[C.SYNC] == 0
    assert body[C.ERROR_24] == "Invalid MsgPack - packet length"


@pytest.mark.parametrize("prefix", [b"\xce\x80\x00\x00\x01", b"\xce\xff\xff\xff\xff",
                                    b"\xcf\x00\x00\x00\x00\x80\x00\x00\x01"])
def test_length_over_2gib_is_fatal(h: Harness, prefix: bytes) -> None:
    """Tarantool: "too big packet size in the header", then close. Never a
    reservation of gigabytes."""
    length = int.from_bytes(prefix[1:], "big")
    h.send(ping(1) + prefix + b"\x82\x00\x40\x01\x01")
    h.pump()
    assert syncs(h.th.requests) == [1]
    assert h.conn.state == CLOSED, f"to_read={h.conn.to_read}: the connection waits for {length} bytes"
    header, body = _read_reply(h.client)
    assert header[C.REQUEST_TYPE] == C.TYPE_ERROR | 20
    assert body[C.ERROR_24] == f"Invalid MsgPack - too big packet size in the header: {length}"


# -- input: property ------------------------------------------------------------------------


@st.composite
def scenario(draw: Any) -> tuple[list[bytes], list[int], list[int], int, int]:
    sizes = draw(st.lists(st.integers(20, 1400), min_size=1, max_size=16))
    packets = [call_packet(i + 1, s) for i, s in enumerate(sizes)]
    total = sum(sizes)
    cuts = sorted(draw(st.lists(st.integers(1, total - 1), max_size=10, unique=True))) if total > 1 else []
    # After each chunk: how many of the oldest requests in flight to finish.
    finishes = draw(st.lists(st.sampled_from([0, 0, 0, 1, 2, 4]), min_size=len(cuts) + 1,
                             max_size=len(cuts) + 1))
    readahead = draw(st.sampled_from([512, 512, 1024, 2048]))
    msg_max = draw(st.sampled_from([2, 3, 1 << 20, 1 << 20]))
    return packets, cuts, finishes, readahead, msg_max


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sc=scenario(), order=st.randoms(use_true_random=False))
def test_rotation_property(sc: tuple[list[bytes], list[int], list[int], int, int], order: Any) -> None:
    """Whatever the chunking, the readahead, net_msg_max and the order in which
    requests finish: every packet becomes exactly one message, in order, with
    its own bytes; a buffer's slab goes back once its requests are done;
    all memory is back at the end."""
    packets, cuts, finishes, readahead, msg_max = sc
    h = Harness(readahead=readahead, net_msg_max=msg_max)
    try:
        stream = b"".join(packets)
        bounds = [0, *cuts, len(stream)]
        in_flight: list[IprotoMsg] = []
        seen = 0

        def collect() -> None:
            nonlocal seen
            new = h.th.requests[seen:]
            seen += len(new)
            in_flight.extend(new)

        def check_buffers() -> None:
            for p in (0, 1):
                if h.conn.input_msg_count[p] == 0 and p != h.conn.p_ibuf:
                    assert h.ibuf[p].buf is None  # released
            for m in in_flight:
                ib = h.ibuf[m.p_ibuf]
                assert ib.buf is not None  # memory of a request in flight is kept
            assert h.th.slabc.used == sum(ib.capacity for ib in h.ibuf)
            assert h.th.msg_count == len(in_flight) <= msg_max

        for k in range(len(bounds) - 1):
            h.send(stream[bounds[k]:bounds[k + 1]])
            h.pump()
            collect()
            check_buffers()
            for _ in range(min(finishes[k], len(in_flight))):
                m = in_flight.pop(order.randrange(len(in_flight)))
                h.th.finish(m)
                h.pump()
                collect()
                check_buffers()
        # Drain: finish what is in flight until everything arrived.
        for _ in range(10 * len(packets) + 10):
            h.pump()
            collect()
            if not in_flight:
                if seen == len(packets):
                    break
                continue
            h.th.finish(in_flight.pop(order.randrange(len(in_flight))))
            collect()
            check_buffers()
        h.pump()
        collect()
        while in_flight:
            h.th.finish(in_flight.pop())
        msgs = h.th.requests
        assert syncs(msgs) == list(range(1, len(packets) + 1))
        assert [m.len for m in msgs] == [len(p) for p in packets]
        for m, p in zip(msgs, packets, strict=True):
            assert m.req == ("f", args_of(p))
        assert h.conn.parse_size == 0
        assert h.conn.input_msg_count == [0, 0] and h.th.msg_count == 0
        assert h.th.slabc.used == 0
        assert h.th.received == len(stream)
    finally:
        h.close()


# -- output: the obuf rotation ------------------------------------------------------------------


def make_srv() -> tuple[TxConn, SlabCache]:
    c = SlabCache(min_size=512)
    return TxConn(None, 0, (Obuf(c, 512), Obuf(c, 512))), c


def test_accept_wpos_inside_current_releases_other_and_switches() -> None:
    tx_conn, c = make_srv()
    tx_conn.obuf[0].dup(b"a" * 100)
    assert tx_conn.end() == (0, 100)
    accept_wpos(tx_conn, (0, 50))  # net is inside obuf 0, the one TX fills
    assert tx_conn.cur_obuf == 1  # new output goes to the other, empty one
    assert tx_conn.obuf[0].used == 100  # still being written: kept
    tx_conn.obuf[1].dup(b"b" * 400)
    tx_conn.obuf[1].dup(b"b" * 300)  # does not fit the 512-byte slab: a second one, of 1024
    assert [len(b) for b in tx_conn.obuf[1].iov] == [512, 1024]
    assert tx_conn.end() == (1, 700)
    used_before = c.used
    accept_wpos(tx_conn, (1, 0))  # net finished obuf 0 and is in obuf 1
    # Recycled: emptied, its one small slab kept for the next replies.
    assert tx_conn.obuf[0].used == 0 and len(tx_conn.obuf[0].iov) == 1
    assert c.used == used_before
    assert tx_conn.cur_obuf == 0
    # Next time round, obuf 1 keeps only its first slab.
    tx_conn.obuf[0].dup(b"c" * 10)
    accept_wpos(tx_conn, (0, 0))
    assert tx_conn.cur_obuf == 1 and len(tx_conn.obuf[1].iov) == 1 and tx_conn.obuf[1].used == 0
    assert c.used == used_before - 1024


def test_recycle_gives_back_a_big_first_slab() -> None:
    c = SlabCache(min_size=512)
    ob = Obuf(c, 512)
    ob.alloc(100_000)  # a big reply: its slab is far over the start size
    ob.recycle()
    assert ob.iov == [] and ob.used == 0 and c.used == 0


def test_accept_wpos_in_other_obuf_changes_nothing() -> None:
    tx_conn, c = make_srv()
    tx_conn.obuf[0].dup(b"a" * 100)
    accept_wpos(tx_conn, (0, 0))
    assert tx_conn.cur_obuf == 1
    tx_conn.obuf[1].dup(b"b" * 10)
    ob = tx_conn.obuf
    state = (tx_conn.cur_obuf, ob[0].used, ob[1].used, len(ob[0].iov), len(ob[1].iov), c.used)
    for off in (0, 50, 100):
        accept_wpos(tx_conn, (0, off))  # net still drains obuf 0
        assert (tx_conn.cur_obuf, tx_conn.obuf[0].used, tx_conn.obuf[1].used, len(tx_conn.obuf[0].iov),
                len(tx_conn.obuf[1].iov), c.used) == state


def test_accept_wpos_current_empty_does_not_switch() -> None:
    tx_conn, c = make_srv()
    accept_wpos(tx_conn, (0, 0))
    assert tx_conn.cur_obuf == 0  # nothing written: stay
    tx_conn.obuf[0].dup(b"x")
    accept_wpos(tx_conn, (0, 1))
    assert tx_conn.cur_obuf == 1
    accept_wpos(tx_conn, (1, 0))  # obuf 1 current and empty; obuf 0 fully written
    assert tx_conn.obuf[0].used == 0 and len(tx_conn.obuf[0].iov) == 1  # recycled, slab kept
    assert tx_conn.cur_obuf == 1
    assert c.used == 512


def reply(i: int, size: int) -> bytes:
    return (b"%06d:" % i) + bytes([65 + i % 26]) * (size - 7) + b"\n"


@pytest.mark.parametrize("pipeline", [1, 3])
def test_obuf_full_cycle_with_net_flush(pipeline: int) -> None:
    """Requests carry net's written position to TX, TX recycles obufs and
    writes replies, net flushes them: the client gets every reply in order,
    the obufs rotate, and memory stays bounded."""
    h = Harness()
    try:
        tx_conn = h.conn.tx_conn
        assert tx_conn is not None
        slabc = tx_conn.obuf[0].slabc
        expected = b""
        received = b""
        switches = 0
        peak = 0
        sizes = [40, 300, 700, 5000, 90, 2000, 20, 1200] * 4
        for start in range(0, len(sizes), pipeline):
            batch = list(range(start, min(start + pipeline, len(sizes))))
            snapshot = h.conn.wpos  # what net puts in each request it reads
            ends = []
            for i in batch:
                before = tx_conn.cur_obuf
                accept_wpos(tx_conn, snapshot)
                switches += tx_conn.cur_obuf != before
                data = reply(i, sizes[i])
                tx_conn.obuf[tx_conn.cur_obuf].dup(data)
                expected += data
                ends.append(tx_conn.end())
            for end in ends:  # replies come back to net in order
                h.conn.set_wend(end)
            h.th.feed.run()
            while h.conn.writing:  # a partial write: drain the client, writable again
                received += h.client.recv(1 << 20)
                h.th.loop.writers[h.fd]()
            assert h.conn.wpos == ends[-1]
            assert h.conn.unsent() == 0
            peak = max(peak, slabc.used)
            h.client.settimeout(2)
            while len(received) < len(expected):
                received += h.client.recv(1 << 20)
            assert received == expected
        assert switches >= len(sizes) // (2 * pipeline)  # the obufs kept rotating
        assert peak <= 4 * 8192  # old output was given back as it was written
        assert h.th.sent == len(expected)
    finally:
        h.close()


def test_obuf_partial_write_resumes_at_the_right_byte() -> None:
    h = Harness()
    try:
        h.server.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        tx_conn = h.conn.tx_conn
        assert tx_conn is not None
        data = bytes(i % 251 for i in range(1 << 20))
        tx_conn.obuf[0].dup(data)
        h.conn.set_wend(tx_conn.end())
        h.th.feed.run()
        assert h.conn.writing and h.fd in h.th.loop.writers
        assert 0 < h.conn.wpos[1] < len(data) and h.conn.wpos[0] == 0
        got = b""
        h.client.settimeout(2)
        while len(got) < len(data):
            got += h.client.recv(1 << 16)
            if h.conn.writing:
                h.th.loop.writers[h.fd]()
        assert got == data
        assert h.conn.wpos == (0, len(data)) and not h.conn.writing
    finally:
        h.close()
