"""Buffers: the slab cache, ibuf (input) and obuf (output). Pure data, no I/O."""

from .ibuf import Ibuf
from .obuf import SVP_ZERO, Obuf, Svp
from .slab import SlabCache

__all__ = ["Ibuf", "Obuf", "SVP_ZERO", "SlabCache", "Svp"]
