"""ibuf: a contiguous input buffer, as in Tarantool's `small/ibuf.h`.

Requests must be contiguous to be parsed, so the input buffer is one slab:
`[0, rpos)` consumed, `[rpos, wpos)` data, `[wpos, capacity)` free for the
next read. When the free tail is too small, `reserve` first tries to move the
data to the start of the slab; if it still does not fit, it takes a bigger
slab from the cache and copies the data over. Either way the data *moves*,
so nobody may hold offsets into a buffer being reserved: that is the rule
behind the two-ibuf rotation in `net/connection.py` (a buffer that in-flight
requests came from is never reserved into; new input goes to the other one).

The slab is taken lazily (first reserve) and can be given back whole
(`release`) when the buffer is empty, so an idle connection holds no input
memory at all. `mv` is a memoryview of the slab kept for `recv_into`; the slab
is never resized, so the view never blocks anything.
"""

from __future__ import annotations

from .slab import SlabCache

__all__ = ["Ibuf"]


class Ibuf:
    __slots__ = ("slabc", "start_capacity", "buf", "mv", "rpos", "wpos")

    def __init__(self, slabc: SlabCache, start_capacity: int) -> None:
        self.slabc = slabc
        self.start_capacity = start_capacity
        self.buf: bytearray | None = None
        self.mv: memoryview | None = None
        self.rpos = 0
        self.wpos = 0

    @property
    def capacity(self) -> int:
        return 0 if self.buf is None else len(self.buf)

    def used(self) -> int:
        return self.wpos - self.rpos

    def unused(self) -> int:
        return self.capacity - self.wpos

    def reserve(self, size: int) -> None:
        """Make at least `size` bytes free after `wpos`. Data may move."""
        buf = self.buf
        if buf is not None and len(buf) - self.wpos >= size:
            return
        used = self.wpos - self.rpos
        if buf is not None and len(buf) >= used + size:
            # Defragment in place: same-length slice assignment never resizes.
            buf[0:used] = buf[self.rpos:self.wpos]
        else:
            capacity = max(self.start_capacity, self.capacity)
            while capacity < used + size:
                capacity *= 2
            new = self.slabc.get(capacity)
            if used:
                new[0:used] = buf[self.rpos:self.wpos]  # type: ignore[index]  # data: buf is set
            self._drop_slab()
            self.buf = new
            self.mv = memoryview(new)
        self.rpos = 0
        self.wpos = used

    def consume(self, size: int) -> None:
        self.rpos += size

    def reset(self) -> None:
        self.rpos = self.wpos = 0

    def release(self) -> None:
        """Give the slab back (the buffer must hold no data anyone needs)."""
        self._drop_slab()
        self.rpos = self.wpos = 0

    def _drop_slab(self) -> None:
        if self.buf is not None:
            self.mv.release()  # type: ignore[union-attr]  # set with buf
            self.slabc.put(self.buf)
            self.buf = self.mv = None
