"""Frame and decode a batch of IPROTO packets: what net does with each read.

`scan(buf, mv, start, end, budget)` finds the complete packets in
`buf[start:end]` (at most `budget`), and decodes each one's header and body.
It returns `(records, pos, to_read, fatal)`:

- `records`: one tuple per non-empty packet, `(pos, pend, type, sync,
  schema_version, stream_id, body)`. `body` is the decoded body, `NO_BODY`
  if there is none, or `BAD_BODY` if it is not valid MessagePack or does not
  end with the packet (a map whose keys Python would merge comes as `Pairs`).
  A header Tarantool would not decode gives `type` None, the sync to reply
  with, and in `body` the error to reply.
- `pos`: where parsing stopped (the unparsed tail starts there);
- `to_read`: the bytes needed to make progress, or -1 if unchanged (the
  budget ran out first);
- `fatal`: None, or the message of a framing error (the connection closes).

Why one function: it is the whole per-packet protocol work of the request
path, with no socket, no messages and no TX (h11's model), so it is tested
alone, and it has a compiled twin. Two implementations, one contract:

- `PyBatchDecoder`, pure Python: a framing loop, the common header
  `{0: type, 1: sync}` read in place, and one msgpack Unpacker fed the
  whole run of packets, which then only skips what was read in place.
- `CBatchDecoder`, over the compiled accelerator (`_accel.c`, see
  accel.py): the same results in one call. A packet it does not decode
  itself (an unusual header, an ext -1 Timestamp, deep nesting) comes back
  `SLOW`, and the pure-Python decoder decodes that one packet.

`BatchDecoder` is the compiled one if it was built, else the pure one
(accel.py; STYX_PURE=1 forces it). The tests compare both on generated and
random input.

Risks: the two must agree byte for byte; the comparison tests are what
holds them together, so a change to one is a change to both.
"""

from __future__ import annotations

from typing import Any

from .accel import accel
from .codec import (
    NO_BODY,
    FramingError,
    HeaderError,
    PacketDecoder,
    decode_header,
    frame,
    map_pairs,
    map_size,
)
from .constants import PACKET_SIZE_MAX
from .errors import ER, BoxError
from .ext import ext_hook

__all__ = ["BatchDecoder", "PyBatchDecoder", "CBatchDecoder", "BAD_BODY", "SLOW", "Record", "ACCELERATED"]

BAD_BODY: Any = type("BadBody", (), {"__repr__": lambda self: "BAD_BODY"})()
"""The body is not valid MessagePack, or does not end with the packet."""

SLOW: Any = type("Slow", (), {"__repr__": lambda self: "SLOW"})()
"""(compiled decoder) This packet is decoded in Python."""

Record = tuple[int, int, Any, int, int, int, Any]
Scan = tuple[list[Record], int, int, str | None]


class PyBatchDecoder:
    """The pure-Python decoder; it keeps one Unpacker across batches."""

    __slots__ = ("_dec",)

    def __init__(self) -> None:
        self._dec = PacketDecoder()

    def scan(self, buf: bytearray, mv: memoryview, start: int, end: int, budget: int) -> Scan:
        frames, pos, to_read, fatal = _frames(buf, start, end, budget)
        records: list[Record] = []
        if frames:
            self._decode(buf, mv, start, frames[-1][2], frames, records)
        return records, pos, to_read, fatal

    def _decode(self, buf: bytearray, mv: memoryview, start: int, stop: int,
                frames: list[tuple[int, int, int]], records: list[Record]) -> None:
        dec = self._dec
        dec.begin(mv, start, stop)
        u = dec.u
        origin = dec.origin
        from_bytes = int.from_bytes
        append = records.append
        for pos, hstart, pend in frames:
            # The common header, {0: fixint type, 1: uint sync}, is read in
            # place. The unpacker then only catches up (skips) when a body
            # follows; packets it has not seen yet are valid up to here.
            hend = 0
            if pend - hstart >= 5 and buf[hstart] == 0x82 and buf[hstart + 1] == 0 \
                    and buf[hstart + 2] < 0x80 and buf[hstart + 3] == 1:
                # A sync that would overrun the packet is left to the slow path.
                c = buf[hstart + 4]
                if c < 0x80:
                    sync, hend = c, hstart + 5
                elif c == 0xCE and hstart + 9 <= pend:
                    sync, hend = from_bytes(buf[hstart + 5:hstart + 9], "big"), hstart + 9
                elif c == 0xCC and hstart + 6 <= pend:
                    sync, hend = buf[hstart + 5], hstart + 6
                elif c == 0xCD and hstart + 7 <= pend:
                    sync, hend = from_bytes(buf[hstart + 5:hstart + 7], "big"), hstart + 7
                elif c == 0xCF and hstart + 13 <= pend:
                    sync, hend = from_bytes(buf[hstart + 5:hstart + 13], "big"), hstart + 13
            if hend:
                t, sv, stream_id = buf[hstart + 2], 0, 0
            else:
                try:
                    while origin + u.tell() < hstart:
                        u.skip()  # what came before: prefixes, packets read in place
                    h = u.unpack()
                    hend = origin + u.tell()
                    if hend > pend:
                        raise ValueError("the header overruns the packet")
                    if type(h) is dict and len(h) != map_size(buf, hstart):
                        h = map_pairs(bytes(buf[hstart:hend]))
                    t, sync, sv, stream_id = decode_header(h)
                except Exception as e:  # noqa: BLE001 - garbage in a header is a reply, not a crash
                    # Error 20, with the sync read before the failure.
                    err = e if isinstance(e, BoxError) else BoxError(ER.INVALID_MSGPACK, "packet header")
                    append((pos, pend, None, e.sync if isinstance(e, HeaderError) else 0, 0, 0, err))
                    origin = dec.resync(mv, pend, stop)
                    u = dec.u
                    continue
            body = NO_BODY
            if hend != pend:
                try:
                    while origin + u.tell() < hend:
                        u.skip()
                    body = u.unpack()
                    if origin + u.tell() != pend:
                        raise ValueError("the body does not end with the packet")
                    if type(body) is dict and len(body) != map_size(buf, hend):
                        body = map_pairs(bytes(buf[hend:pend]))
                except Exception:  # noqa: BLE001 - garbage in a body is a reply, not a crash
                    origin = dec.resync(mv, pend, stop)
                    u = dec.u
                    body = BAD_BODY
            append((pos, pend, t, sync, sv, stream_id, body))
        dec.finish()


def _frames(buf: bytearray, pos: int, end: int, budget: int
            ) -> tuple[list[tuple[int, int, int]], int, int, str | None]:
    """The framing pass: (packet, header, end) of each complete non-empty
    packet, where it stopped, to_read (-1: unchanged), a fatal error."""
    frames: list[tuple[int, int, int]] = []
    from_bytes = int.from_bytes
    while pos < end:
        if len(frames) >= budget:
            return frames, pos, -1, None
        if buf[pos] == 0xCE and end - pos >= 5:  # the common prefix, inline
            hl, length = 5, from_bytes(buf[pos + 1:pos + 5], "big")
            if length > PACKET_SIZE_MAX:
                return frames, pos, -1, f"too big packet size in the header: {length}"
        else:
            try:
                hl, length = frame(buf, pos, end)
            except FramingError as e:
                return frames, pos, -1, str(e)
            if hl == 0:
                return frames, pos, 9, None
        pend = pos + hl + length
        if pend > end:
            return frames, pos, hl + length, None
        if length:  # an empty packet gets no reply (as Tarantool)
            frames.append((pos, pos + hl, pend))
        pos = pend
    return frames, pos, 3, None


class CBatchDecoder:
    """The compiled decoder; the packets it leaves go to a pure one."""

    __slots__ = ("_py", "_scan")

    def __init__(self) -> None:
        if accel is None:
            raise RuntimeError("the compiled accelerator is not built (or STYX_PURE is set)")
        self._py = PyBatchDecoder()
        self._scan = accel.scan

    def scan(self, buf: bytearray, mv: memoryview, start: int, end: int, budget: int) -> Scan:
        records, pos, to_read, fatal, slow = self._scan(buf, start, end, budget)
        if slow:
            py = self._py
            for i, r in enumerate(records):
                if r[6] is SLOW:
                    records[i] = py.scan(buf, mv, r[0], r[1], 1)[0][0]
        return records, pos, to_read, fatal


if accel is not None:
    accel.configure(NO_BODY, SLOW, BAD_BODY, ext_hook, map_pairs)

ACCELERATED = accel is not None
BatchDecoder: type[PyBatchDecoder] | type[CBatchDecoder] = CBatchDecoder if ACCELERATED else PyBatchDecoder
