"""obuf: an output buffer made of a chain of slabs, as in `small/obuf.h`.

Output does not need to be contiguous (it goes to the socket with one
vectored write), so the obuf never copies what it already holds: when the
current slab is full it moves on to the next one, each twice the size of the
one before (or bigger, if a reservation asks for more). Slab `k` and its
filled length are `iov[k]` and `iov_len[k]`, like the iovec array of the C
version.

A reply starts with its own length, unknown until the body is written, so
the writer allocates the fixed-width header (`alloc`), writes the body
(`dup`), then goes back and patches the header. The two threads talk about
output in positions, `(obuf index, used)` (iproto_msg.py): TX reports "new
data up to here" and net reports "written up to here".

Threads: TX is the only writer. A net thread reads slabs `[wpos, wend)`
that TX finished before it sent `wend`; TX may append beyond `wend`
meanwhile, into the same slab or new ones (list append), never touching
bytes already announced. TX resets or releases an obuf only after net has
reported it fully written. Memory: `release` gives every slab back, so an
idle connection keeps none.
"""

from __future__ import annotations

from .slab import SlabCache

__all__ = ["Obuf"]


class Obuf:
    __slots__ = ("slabc", "start_capacity", "iov", "iov_len", "pos", "used")

    def __init__(self, slabc: SlabCache, start_capacity: int) -> None:
        self.slabc = slabc
        self.start_capacity = start_capacity
        self.iov: list[bytearray] = []
        self.iov_len: list[int] = []
        self.pos = 0  # index of the slab being filled
        self.used = 0

    def capacity(self) -> int:
        return sum(len(b) for b in self.iov)

    def reserve(self, size: int) -> tuple[bytearray, int]:
        """`size` contiguous bytes at the end, not yet committed: (slab, offset)."""
        pos = self.pos
        iov = self.iov
        if pos < len(iov):
            off = self.iov_len[pos]
            if len(iov[pos]) - off >= size:
                return iov[pos], off
            if off:  # current slab too full: move on to the next one
                pos += 1
        while pos < len(iov) and len(iov[pos]) < size:
            # A kept slab that is too small for this reservation: skip it
            # (it stays empty; `iov_range` passes over empty slabs).
            pos += 1
        if pos == len(iov):
            capacity = self.start_capacity << min(pos, 20)
            while capacity < size:
                capacity *= 2
            iov.append(self.slabc.get(capacity))
            self.iov_len.append(0)
        self.pos = pos
        return iov[pos], self.iov_len[pos]

    def alloc(self, size: int) -> tuple[bytearray, int]:
        """Reserve and commit `size` contiguous bytes: (slab, offset)."""
        pos = self.pos
        if pos < len(self.iov):  # the common case, inline: it fits in the current slab
            buf = self.iov[pos]
            off = self.iov_len[pos]
            if len(buf) - off >= size:
                self.iov_len[pos] = off + size
                self.used += size
                return buf, off
        buf, off = self.reserve(size)
        self.iov_len[self.pos] = off + size
        self.used += size
        return buf, off

    def dup(self, data: bytes | bytearray | memoryview) -> None:
        """Append a copy of `data`, splitting it across slabs if needed."""
        n = len(data)
        pos = self.pos
        if pos < len(self.iov):
            buf = self.iov[pos]
            off = self.iov_len[pos]
            room = len(buf) - off
            if room >= n:
                buf[off:off + n] = data
                self.iov_len[pos] = off + n
                self.used += n
                return
            if room:
                mv = memoryview(data)
                buf[off:] = mv[:room]
                self.iov_len[pos] = len(buf)
                self.used += room
                data = mv[room:]
                n -= room
        buf, off = self.alloc(n)
        buf[off:off + n] = data

    def reset(self) -> None:
        """Forget the contents, keep the slabs."""
        for k in range(len(self.iov_len)):
            self.iov_len[k] = 0
        self.pos = 0
        self.used = 0

    def recycle(self) -> None:
        """Empty it for reuse: keep a small first slab, give the rest back.

        What TX does to an obuf once it is written out: a connection going
        back and forth between its two obufs does not go to the slab cache
        for every reply, and an idle one keeps at most one small slab each.
        """
        iov = self.iov
        if not iov or len(iov[0]) > 4 * self.start_capacity:
            self.release()
            return
        if len(iov) > 1:
            put = self.slabc.put
            for buf in iov[1:]:
                put(buf)
            del iov[1:]
            del self.iov_len[1:]
        self.iov_len[0] = 0
        self.pos = 0
        self.used = 0

    def release(self) -> None:
        """Forget the contents and give every slab back to the cache."""
        for buf in self.iov:
            self.slabc.put(buf)
        self.iov.clear()
        self.iov_len.clear()
        self.pos = 0
        self.used = 0

    def iov_range(self, begin: int, end: int) -> list[memoryview]:
        """Memoryviews covering bytes `[begin, end)` (offsets in `used` terms),
        for one vectored write.

        Safe while the writer appends: slabs before the last one are final,
        and the last one is only read up to `end`, which the writer announced
        after writing it.
        """
        out = []
        iov = self.iov
        iov_len = self.iov_len
        n = len(iov_len)  # the writer appends to iov before iov_len
        k = base = 0
        while k < n and base + iov_len[k] <= begin:
            base += iov_len[k]
            k += 1
        off = begin - base
        while begin < end and k < n:
            take = min(iov_len[k] - off, end - begin)
            if take > 0:
                out.append(memoryview(iov[k])[off:off + take])
                begin += take
            k += 1
            off = 0
        return out
