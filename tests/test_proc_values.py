"""Values a procedure returns or receives at the edge of what Styx encodes:
ints outside MessagePack's range (a clear error 32, no traceback) and
datetimes (Tarantool's MP_EXT 4, both ways, with tarantool-python).

Datetime mapping (styx/protocol/ext.py): a naive datetime is UTC and goes
out with tzoffset 0; an aware one carries its UTC offset as tzoffset. Coming
in, tzoffset 0 without a tzindex decodes to a naive datetime in UTC, any
other to an aware one with a fixed offset.
"""

from __future__ import annotations

import datetime as dt
import logging
import struct
from collections.abc import Callable
from typing import Any

import msgpack
import pytest
import tarantool
from tarantool.error import DatabaseError

from styx.protocol.ext import Datetime, datetime_pack, datetime_unpack, default, ext_hook
from tests.iproto import Raw

CALL = 10


@pytest.fixture(params=[0, 2], ids=lambda n: f"threads{n}")
def port(request: pytest.FixtureRequest, make_server: Callable[..., Any]) -> int:
    return make_server(iproto_threads=request.param).port


@pytest.fixture
def conn(port: int) -> Any:
    c = tarantool.Connection("127.0.0.1", port, connection_timeout=10)
    yield c
    c.close()


# -- ints out of MessagePack's range ------------------------------------------------


@pytest.mark.parametrize("which, value", [("big", 2**70), ("neg", -2**64), ("nested", 2**64)])
def test_int_out_of_range_is_a_clear_error(port: int, which: str, value: int,
                                           caplog: pytest.LogCaptureFixture) -> None:
    message = f"Failed to encode the result: integer {value} is out of MessagePack's range"
    with caplog.at_level(logging.DEBUG), Raw(port) as c:
        h, b = c.call("out_of_range", which, sync=7)
        assert (h[0], h[1], b[0x31]) == (0x8000 | 32, 7, message)
        assert "OverflowError" in repr(b[0x52])  # the custom type in MP_ERROR
        h, b = c.call("out_of_range", "max", sync=8)  # the edges still encode
        assert (h[0], b[0x30]) == (0, [2**64 - 1])
        h, b = c.call("out_of_range", "min", sync=9)
        assert (h[0], b[0x30]) == (0, [-2**63])
    assert not [r for r in caplog.records if r.exc_info or "Internal error" in r.getMessage()]


def test_int_out_of_range_connector(conn: Any) -> None:
    with pytest.raises(DatabaseError) as ei:
        conn.call("out_of_range", "big")
    assert ei.value.code == 32
    assert "integer 1180591620717411303424 is out of MessagePack's range" in ei.value.message
    # Into a tuple: the same words (the procedure's error), nothing stored.
    with pytest.raises(DatabaseError) as ei:
        conn.call("store_out_of_range")
    assert (ei.value.code, ei.value.message) \
        == (32, "OverflowError: integer 1180591620717411303424 is out of MessagePack's range")
    assert conn.select("dts", [1]).data == []
    assert conn.ping(notime=True) == "Success"


def test_default_names_the_int() -> None:
    with pytest.raises(OverflowError, match=r"^integer -18446744073709551617 is out of"):
        default(-2**64 - 1)
    with pytest.raises(TypeError, match="can not serialize 'object' object"):
        default(object())


# -- datetime: the codec ------------------------------------------------------------


def le(seconds: int, nsec: int | None = None, tzoffset: int = 0, tzindex: int = 0) -> bytes:
    head = struct.pack("<q", seconds)
    return head if nsec is None else head + struct.pack("<ihh", nsec, tzoffset, tzindex)


UTC3 = dt.timezone(dt.timedelta(hours=3))


@pytest.mark.parametrize("value, data", [
    (dt.datetime(1970, 1, 1), le(0)),
    (dt.datetime(1970, 1, 1, 0, 0, 1, 500000), le(1, 500_000_000)),
    (dt.datetime(1969, 12, 31, 23, 59, 59), le(-1)),
    (dt.datetime(2024, 2, 29, 12, tzinfo=UTC3), le(1709197200, 0, 180)),
    (dt.datetime(1, 1, 1), le(-62135596800)),
    (dt.datetime(9999, 12, 31, 23, 59, 59, 999999), le(253402300799, 999_999_000)),
])
def test_datetime_layout(value: dt.datetime, data: bytes) -> None:
    assert datetime_pack(value) == data
    back = datetime_unpack(data)
    assert back == value and type(back) is dt.datetime
    assert (back.tzinfo is None) == (value.tzinfo is None)
    assert msgpack.packb(value, default=default) == msgpack.packb(msgpack.ExtType(4, data))


def test_datetime_decoding_keeps_what_datetime_cannot() -> None:
    # Nanoseconds below the microsecond and a tzindex survive a round trip.
    data = le(5, 1_000_001, 60, 7)
    v = ext_hook(4, data)
    assert isinstance(v, Datetime) and (v.nsec_rest, v.tzindex) == (1, 7)
    assert v == dt.datetime(1970, 1, 1, 1, 0, 5, 1000, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert datetime_pack(v) == data
    # utc aware encodes as naive: tzoffset 0 is UTC
    assert datetime_pack(dt.datetime(2000, 1, 1, tzinfo=dt.UTC)) == le(946684800)


@pytest.mark.parametrize("data", [b"", le(0)[:7], le(0) + b"\0", le(0, -1), le(0, 10**9),
                                  le(2**62), le(0, 0, 24 * 60)])
def test_datetime_undecodable_stays_ext(data: bytes) -> None:
    assert ext_hook(4, data) == msgpack.ExtType(4, data)


def test_datetime_offset_tarantool_cannot_read() -> None:
    for off in (dt.timedelta(seconds=30), dt.timedelta(hours=15)):
        with pytest.raises(ValueError, match="tzoffset"):
            datetime_pack(dt.datetime(2024, 1, 1, tzinfo=dt.timezone(off)))


# -- datetime over the wire ------------------------------------------------------------


def test_datetime_returned_raw(port: int) -> None:
    with Raw(port) as c:
        h, b = c.call("a_datetime", "naive")
        assert b[0x30] == [msgpack.ExtType(4, le(1709251198, 123_456_000))]
        h, b = c.call("a_datetime", "utc")  # tzoffset 0: the short form
        assert b[0x30] == [msgpack.ExtType(4, le(1709251198))]
        h, b = c.call("a_datetime", "plus3")
        assert b[0x30] == [msgpack.ExtType(4, le(1709251198, 500_000_000, 180))]
        h, b = c.call("a_datetime", "seconds_tz")
        assert h[0] == 0x8000 | 32 and "tzoffset" in b[0x31]
        # One coming in: a CALL argument decoded to datetime.
        h, b = c.call("describe", msgpack.ExtType(4, le(0, 0, -330)))
        assert b[0x30] == [["datetime", "1969-12-31T18:30:00-05:30", -330.0]]
        h, b = c.call("describe", msgpack.ExtType(4, le(86400)))
        assert b[0x30] == [["datetime", "1970-01-02T00:00:00", None]]


def test_datetime_with_tarantool_python(conn: Any) -> None:
    got = conn.call("a_datetime", "naive").data[0]
    assert isinstance(got, tarantool.Datetime)
    assert (got.year, got.month, got.day, got.hour, got.minute, got.sec, got.nsec, got.tzoffset) \
        == (2024, 2, 29, 23, 59, 58, 123_456_000, 0)
    got = conn.call("a_datetime", "minus0530").data[0]
    assert (got.year, got.month, got.day, got.hour, got.minute, got.tzoffset) \
        == (1969, 12, 31, 18, 30, -330)
    assert got.timestamp == 0
    # The connector's datetimes come in as Python's, and go back unchanged.
    sent = [tarantool.Datetime(year=2022, month=8, day=31, hour=18, minute=7, sec=54,
                               nsec=308543321, tzoffset=180),
            tarantool.Datetime(timestamp=1661969274),
            tarantool.Datetime(year=2022, month=8, day=31, tz="Europe/Moscow")]
    for v in sent:
        assert conn.call("one", v).data == [v]
    kind, iso, off = conn.call("describe", sent[0]).data[0]
    assert (kind, iso, off) == ("Datetime", "2022-08-31T18:07:54.308543+03:00", 180)
    assert conn.call("describe", sent[1]).data[0] == ["datetime", "2022-08-31T18:07:54", None]
    # Stored in a tuple and selected back, byte for byte.
    for i, v in enumerate(sent):
        conn.insert("dts", [i, v])
    assert [t[1] for t in conn.select("dts")] == sent
