"""MessagePack extensions Tarantool defines: decimal (1), uuid (2) and
datetime (4).

Decoded to `decimal.Decimal`, `uuid.UUID` and `datetime.datetime`
(`ext_hook`) and encoded back byte for byte as Tarantool does (`default`):
requests carry them to the app's procedures and into tuples as Python
objects. Any other extension stays a `msgpack.ExtType` and round-trips
untouched. The limits are 2.6's: what it cannot read, `decimal_pack`
refuses. 2.6 has no datetime (2.10 added it); its layout is 2.10's
(`datetime_pack`, see `datetime_unpack`).
"""

from __future__ import annotations

import struct
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import msgpack

__all__ = ["EXT_DECIMAL", "EXT_UUID", "EXT_DATETIME", "DECIMAL_MAX_DIGITS", "Datetime",
           "decimal_pack", "decimal_unpack", "datetime_pack", "datetime_unpack", "ext_hook",
           "default"]

DECIMAL_MAX_DIGITS = 38

EXT_DECIMAL = 1
EXT_UUID = 2
EXT_DATETIME = 4
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


# -- datetime ------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1)
# Tarantool's MIN_TZOFFSET, MAX_TZOFFSET (minutes east of UTC).
_TZOFFSET_MIN, _TZOFFSET_MAX = -12 * 60, 14 * 60
_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1


class Datetime(datetime):
    """A decoded datetime that also keeps what `datetime` cannot: the
    nanoseconds below its microsecond (`nsec_rest`, 0-999) and Tarantool's
    Olson zone index (`tzindex`), so a tuple stored and selected again is
    re-encoded byte for byte. `ext_hook` makes one only when either is
    non-zero; arithmetic on it gives a value without them (0)."""

    __slots__ = ("nsec_rest", "tzindex")
    nsec_rest: int
    tzindex: int


def datetime_pack(dt: datetime) -> bytes:
    """Tarantool's datetime_pack: seconds since the epoch, UTC (int64 LE),
    then, if any is non-zero, nsec (int32), tzoffset in minutes (int16) and
    tzindex (int16), little-endian.

    A naive datetime is UTC (tzoffset 0); an aware one keeps its UTC offset
    as tzoffset. ValueError for what Tarantool would not read: an offset that
    is not whole minutes or outside [-12h, +14h]."""
    off = dt.utcoffset()
    if off is None:
        tzoffset, naive = 0, dt
    else:
        minutes, rest = divmod(off, timedelta(minutes=1))
        if rest or not _TZOFFSET_MIN <= minutes <= _TZOFFSET_MAX:
            raise ValueError(f"datetime {dt.isoformat()}: Tarantool's tzoffset is whole "
                             "minutes in [-12h, +14h]")
        tzoffset, naive = minutes, dt.replace(tzinfo=None) - off
    delta = naive - _EPOCH
    seconds = delta.days * 86400 + delta.seconds
    nsec = delta.microseconds * 1000 + getattr(dt, "nsec_rest", 0)
    tzindex = getattr(dt, "tzindex", 0)
    head = struct.pack("<q", seconds)
    if nsec or tzoffset or tzindex:
        return head + struct.pack("<ihh", nsec, tzoffset, tzindex)
    return head


def datetime_unpack(data: bytes) -> datetime:
    """The inverse of `datetime_pack`; ValueError (or OverflowError) for
    what it cannot be: not 8 or 16 bytes, nsec outside [0, 1e9), an offset
    of a day or more, a date outside years 1-9999 (Python's range).

    tzoffset 0 and no tzindex: a naive datetime in UTC (Tarantool's
    datetime.new() without a zone). Otherwise an aware one with a fixed
    offset of tzoffset minutes (a tzindex is kept, not resolved: Python has
    no table of Tarantool's zone ids)."""
    if len(data) == 8:
        (seconds,), nsec, tzoffset, tzindex = struct.unpack("<q", data), 0, 0, 0
    elif len(data) == 16:
        seconds, nsec, tzoffset, tzindex = struct.unpack("<qihh", data)
    else:
        raise ValueError("datetime is neither 8 nor 16 bytes")
    if not 0 <= nsec < 1_000_000_000:
        raise ValueError("datetime nsec out of range")
    utc = _EPOCH + timedelta(seconds=seconds, microseconds=nsec // 1000)
    if tzoffset or tzindex:
        off = timedelta(minutes=tzoffset)
        local = (utc + off).replace(tzinfo=timezone(off))
    else:
        local = utc
    if not nsec % 1000 and not tzindex:
        return local
    exact = Datetime(local.year, local.month, local.day, local.hour, local.minute, local.second,
                     local.microsecond, local.tzinfo)
    exact.nsec_rest, exact.tzindex = nsec % 1000, tzindex
    return exact


# -- MessagePack hooks -----------------------------------------------------------


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
    if code == EXT_DATETIME:
        try:
            return datetime_unpack(data)
        except (ValueError, OverflowError):
            return msgpack.ExtType(code, data)
    return msgpack.ExtType(code, data)


def default(obj: Any) -> Any:
    """msgpack `default`: Decimal, UUID and datetime as Tarantool packs
    them. msgpack also calls it for an int out of MessagePack's range
    ([-2**63, 2**64)): OverflowError naming the value."""
    if isinstance(obj, Decimal):
        return msgpack.ExtType(EXT_DECIMAL, decimal_pack(obj))
    if isinstance(obj, uuid.UUID):
        return msgpack.ExtType(EXT_UUID, obj.bytes)
    if isinstance(obj, datetime):
        return msgpack.ExtType(EXT_DATETIME, datetime_pack(obj))
    if isinstance(obj, int):
        raise OverflowError(f"integer {obj} is out of MessagePack's range")
    raise TypeError(f"can not serialize {type(obj).__name__!r} object")
