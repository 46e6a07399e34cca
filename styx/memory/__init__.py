"""Buffers: the slab cache, ibuf (input) and obuf (output). Pure data, no I/O."""

from .ibuf import Ibuf
from .obuf import Obuf
from .slab import SlabCache

__all__ = ["Ibuf", "Obuf", "SlabCache"]
