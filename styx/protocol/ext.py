"""MessagePack extensions Tarantool defines: decimal (1) and uuid (2).

Decoded to `decimal.Decimal` and `uuid.UUID` (`ext_hook`) and encoded back
byte for byte as Tarantool does (`default`): requests carry them to the
app's procedures and into tuples as Python objects. Any other extension
stays a `msgpack.ExtType` and round-trips untouched. The limits are 2.6's:
what it cannot read, `decimal_pack` refuses.
"""

from __future__ import annotations

import struct
import uuid
from decimal import Decimal
from typing import Any

import msgpack

__all__ = ["EXT_DECIMAL", "EXT_UUID", "DECIMAL_MAX_DIGITS", "decimal_pack", "decimal_unpack",
           "ext_hook", "default"]

DECIMAL_MAX_DIGITS = 38

EXT_DECIMAL = 1
EXT_UUID = 2
# 2.6's decimal_unpack takes a scale in (-38, 38], i.e. an exponent in
# [-38, 37]; decPacked then takes any number of leading zeros and as many
# significant digits as a decimal_t holds (39).
_SCALE_MIN, _SCALE_MAX = -DECIMAL_MAX_DIGITS + 1, DECIMAL_MAX_DIGITS
_DIGITS_CAPACITY = 39


def decimal_pack(d: Decimal) -> bytes:
    """Tarantool's decimal_pack: the scale (-exponent) as a MessagePack int
    (uint if >= 0), then packed BCD -- the digits and a sign nibble (0xC +,
    0xD -), after a zero nibble if the count is odd.

    ValueError for what 2.6 cannot read or hold: NaN/Infinity, more than 38
    digits, an exponent outside [-38, 37] (Tarantool itself has no
    Decimal('1E+38'); quantize such values first).
    """
    sign, digits, exp = d.as_tuple()
    if not isinstance(exp, int):
        raise ValueError(f"Tarantool has no decimal {d}")
    if len(digits) > DECIMAL_MAX_DIGITS:
        raise ValueError(f"decimal {d} has more than {DECIMAL_MAX_DIGITS} digits")
    if not _SCALE_MIN <= -exp <= _SCALE_MAX:
        raise ValueError(f"decimal {d}: exponent out of Tarantool's range [-38, 37]")
    nibbles = list(digits)
    nibbles.append(0x0D if sign else 0x0C)
    if len(nibbles) & 1:
        nibbles.insert(0, 0)
    bcd = bytes((nibbles[i] << 4) | nibbles[i + 1] for i in range(0, len(nibbles), 2))
    return msgpack.packb(-exp) + bcd


_INT_FORMATS = {0xCC: ">B", 0xCD: ">H", 0xCE: ">I", 0xCF: ">Q",
                0xD0: ">b", 0xD1: ">h", 0xD2: ">i", 0xD3: ">q"}


def decimal_unpack(data: bytes) -> Decimal:
    """Tarantool 2.6's decimal_unpack; ValueError where it fails ("invalid
    MsgPack"): a scale that is no MessagePack integer or is outside
    (-38, 38], no BCD bytes, a digit nibble above 9, a last nibble that is
    no sign (0-9), more than 39 significant digits. Sign nibbles 0xB and 0xD
    are minus, 0xA, 0xC, 0xE, 0xF plus; leading zeros are dropped (so a
    non-canonical encoding is re-packed canonically)."""
    if not data:
        raise ValueError("empty decimal")
    b0 = data[0]
    if b0 < 0x80:
        scale, pos = b0, 1
    elif b0 >= 0xE0:
        scale, pos = b0 - 0x100, 1
    else:
        fmt = _INT_FORMATS.get(b0)
        if fmt is None:
            raise ValueError("decimal scale is not an integer")
        size = struct.calcsize(fmt)
        if len(data) < 1 + size:
            raise ValueError("truncated decimal scale")
        scale = struct.unpack_from(fmt, data, 1)[0]
        pos = 1 + size
    if not _SCALE_MIN <= scale <= _SCALE_MAX:
        raise ValueError("decimal scale out of range")
    bcd = data[pos:]
    if not bcd:
        raise ValueError("decimal without digits")
    sign_nibble = bcd[-1] & 0x0F
    if sign_nibble <= 9:
        raise ValueError("no decimal sign nibble")
    digits: list[int] = []
    for byte in bcd[:-1]:
        hi, lo = byte >> 4, byte & 0x0F
        if hi > 9 or lo > 9:
            raise ValueError("bad decimal digit")
        if digits or byte:
            if digits or hi:
                digits.append(hi)
            digits.append(lo)
    hi = bcd[-1] >> 4
    if hi > 9:
        raise ValueError("bad decimal digit")
    digits.append(hi)
    while len(digits) > 1 and digits[0] == 0:
        del digits[0]
    if len(digits) > _DIGITS_CAPACITY:
        raise ValueError("decimal has too many digits")
    return Decimal((1 if sign_nibble in (0x0B, 0x0D) else 0, tuple(digits), -scale))


def ext_hook(code: int, data: bytes) -> Any:
    """msgpack `ext_hook`: decimal -> Decimal, uuid -> UUID, others as is.

    A decimal or uuid 2.6 could not read stays an ExtType too: 2.6 checks
    only what it decodes (an 'any' field keeps the bytes; a decimal field
    or a Lua argument refuses them)."""
    if code == EXT_DECIMAL:
        try:
            return decimal_unpack(data)
        except (ValueError, struct.error, IndexError):
            return msgpack.ExtType(code, data)
    if code == EXT_UUID and len(data) == 16:
        return uuid.UUID(bytes=bytes(data))
    return msgpack.ExtType(code, data)


def default(obj: Any) -> Any:
    """msgpack `default`: Decimal and UUID as Tarantool packs them."""
    if isinstance(obj, Decimal):
        return msgpack.ExtType(EXT_DECIMAL, decimal_pack(obj))
    if isinstance(obj, uuid.UUID):
        return msgpack.ExtType(EXT_UUID, obj.bytes)
    raise TypeError(f"can not serialize {type(obj).__name__!r} object")
