"""The 128-byte greeting a server sends first on every connection.

Line 1 (64 bytes): "Tarantool X.Y.Z (Binary) <instance uuid, 36 chars>",
space-padded to byte 62, "\\n" at 63. Line 2 (64 bytes): the base64 (with
padding) of a per-connection 32-byte random salt, space-padded, "\\n" at 127.
Clients parse the version as exactly three numbers, so no suffix here.
"""

from __future__ import annotations

import base64
import re
import uuid as uuidlib
from typing import NamedTuple

from .constants import GREETING_SIZE, SALT_SIZE

__all__ = ["Greeting", "encode_greeting", "decode_greeting"]

_LINE = 64


class Greeting(NamedTuple):
    version: tuple[int, int, int]
    protocol: str
    uuid: str
    salt: bytes


def encode_greeting(version: tuple[int, int, int], instance_uuid: str, salt: bytes) -> bytes:
    if len(salt) != SALT_SIZE:
        raise ValueError("salt must be 32 bytes")
    if len(str(uuidlib.UUID(instance_uuid))) != 36:
        raise ValueError("instance uuid must be 36 characters")
    line1 = "Tarantool {}.{}.{} (Binary) {}".format(*version, instance_uuid)
    line2 = base64.b64encode(salt).decode()
    out = line1.ljust(_LINE - 1).encode() + b"\n" + line2.ljust(_LINE - 1).encode() + b"\n"
    assert len(out) == GREETING_SIZE
    return out


_LINE1 = re.compile(r"Tarantool (\d+)\.(\d+)\.(\d+)(?:-\S*)? \((\w[\w ]*)\) ?(\S*)")


def decode_greeting(data: bytes) -> Greeting:
    """Parse a greeting (for tests and tools), as net.box does."""
    if len(data) != GREETING_SIZE or data[63:64] != b"\n" or data[127:128] != b"\n":
        raise ValueError("greeting must be 128 bytes, two lines of 64")
    m = _LINE1.match(data[:63].decode())
    if m is None:
        raise ValueError(f"not a Tarantool greeting: {data[:63]!r}")
    salt = base64.b64decode(data[64:127].strip())
    version = (int(m.group(1)), int(m.group(2)), int(m.group(3)))
    return Greeting(version, m.group(4), m.group(5), salt)
