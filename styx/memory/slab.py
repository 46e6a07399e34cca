"""Slab cache: reusable bytearrays by power-of-two size class.

Tarantool's ibufs and obufs take their memory from a slab cache
(`small/slab_cache.h`) so that a busy connection does not go through the
general allocator for every buffer it fills and drains. This is the same
idea in Python: a bytearray is the slab; buffers ask for "at least n bytes"
and get a bytearray whose length is the size class (the next power of two,
never below `min_size`); giving it back puts it on a free list for reuse.

Rules of use:
- One cache belongs to one thread (a net thread for ibufs, TX for obufs).
  It has no lock; nothing here is shared between threads.
- A slab is never resized. Python refuses to resize a bytearray with live
  memoryviews (BufferError); we never need to, because growing a buffer means
  taking a bigger slab and copying, exactly as `ibuf_reserve` does.
- Free lists are bounded (`quota` bytes of cached free slabs in all). Beyond
  that, returned slabs are dropped and the garbage collector frees them, so an
  idle server gives memory back instead of keeping its peak.
"""

from __future__ import annotations

__all__ = ["SlabCache"]


class SlabCache:
    __slots__ = ("min_size", "quota", "_free", "cached", "used")

    def __init__(self, min_size: int = 512, quota: int = 16 << 20) -> None:
        if min_size <= 0 or min_size & (min_size - 1):
            raise ValueError("min_size must be a power of two")
        self.min_size = min_size
        self.quota = quota
        self._free: dict[int, list[bytearray]] = {}
        self.cached = 0  # bytes sitting in free lists
        self.used = 0  # bytes handed out and not yet returned

    def size_class(self, size: int) -> int:
        if size <= self.min_size:
            return self.min_size
        return 1 << (size - 1).bit_length()

    def get(self, size: int) -> bytearray:
        """A slab of at least `size` bytes (its contents are garbage)."""
        cls = self.size_class(size)
        free = self._free.get(cls)
        if free:
            slab = free.pop()
            self.cached -= cls
        else:
            slab = bytearray(cls)
        self.used += cls
        return slab

    def put(self, slab: bytearray) -> None:
        cls = len(slab)
        self.used -= cls
        if self.cached + cls > self.quota:
            return  # over quota: let the garbage collector have it
        free = self._free.get(cls)
        if free is None:
            free = self._free[cls] = []
        free.append(slab)
        self.cached += cls
