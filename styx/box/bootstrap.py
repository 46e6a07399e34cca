"""The system rows every Tarantool 2.6 starts from: its bootstrap snapshot.

Tarantool builds its schema by recovering `src/box/bootstrap.snap`, a
snapshot compiled into the binary: the `_schema` version, the system
spaces and indexes, 277 collations, the SQL built-in functions, the five
built-in users and roles and their grants. `bootstrap.snap` here is that
file from Tarantool 2.6.0, verbatim (BSD-2-Clause, Copyright (C)
2010-2020 Tarantool AUTHORS).

Why the file and not rows written out in Python: a snapshot Styx writes
must be one that 2.6 loads, and 2.6 checks every system row against what
it has compiled in. The file is what 2.6 itself recovers, so Styx's
built-in rows are Tarantool's byte for byte, and the data dictionary
version Styx claims is the one they carry (2.3.1, 2.6's).

The schema (schema.py) starts from these rows; snapshots write them back.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files as resource_files
from io import BytesIO
from typing import Any

from ..xlog import XlogReader

__all__ = ["bootstrap_rows", "DD_VERSION"]

DD_VERSION = (2, 3, 1)  # the `_schema` version row of Tarantool 2.6's bootstrap


@cache
def _rows() -> tuple[tuple[int, tuple[Any, ...]], ...]:
    data = resource_files(__package__).joinpath("bootstrap.snap").read_bytes()
    with XlogReader(BytesIO(data), "bootstrap.snap") as r:
        return tuple((row.body[0x10], tuple(row.body[0x21])) for row in r.rows())


def bootstrap_rows(space_id: int) -> list[list[Any]]:
    """The bootstrap rows of one system space, in the snapshot's order
    (its primary key's). The lists are fresh; what they hold is shared."""
    return [list(t) for sid, t in _rows() if sid == space_id]
