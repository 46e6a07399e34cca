"""The compiled accelerator, if there is one.

`_accel` (styx/protocol/_accel.c) is built by setup.py when a C compiler is
there, and is optional: without it, or with the environment variable
STYX_PURE=1, `accel` is None and every caller uses its pure-Python twin,
which gives the same results (the tests compare the two). What it holds:
`scan` (scan.py's batch decoder), `fast_dml` (codec.py's), `prepare` (the
plain requests' messages: net/connection.py's `_enqueue` loop is its twin),
`data_packet` and `ok_packet` (codec.py's reply writers), `put_data`
(tx/reply.py's `_data_packet`: a reply written into the obuf),
`accept_wpos` (tx/kharon.py's), `Packer` (msgpack's packer for plain
values: codec.py's `plain_first`), and `encode_wal_batch` (wal/writer.py's).
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["accel"]


def _load() -> Any:
    if os.environ.get("STYX_PURE"):
        return None
    try:
        from . import _accel  # type: ignore[attr-defined]  # built by setup.py, when it can be
    except ImportError:
        return None
    return _accel


accel = _load()
