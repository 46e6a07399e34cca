"""IPROTO_ID feature ERROR_EXTENSION (2), raw IPROTO: a box.error a procedure
returns, pushes or broadcasts travels as MP_ERROR (MessagePack ext 3) to a
client whose ID listed feature 2, and as its message string to the others."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgpack
import pytest

from tests.iproto import Raw

APP_PATH = Path(__file__).parent / "apps" / "watch_app.py"
APP = str(APP_PATH)
CALL_16, CALL, ID, WATCH, EVENT, CHUNK = 6, 10, 73, 74, 76, 0x80
DATA, EVENT_KEY, EVENT_DATA = 0x30, 0x57, 0x58


def line_of(text: str) -> int:
    (n,) = [i for i, line in enumerate(APP_PATH.read_text().splitlines(), 1) if text in line]
    return n


RETURN_LINE = line_of("return box.error(code, reason=reason, type=type)")
PUSH_LINE = line_of("box.session.push(box.error(code, reason=reason))")


def mp_error(v: Any) -> dict[int, Any]:
    """The decoded MP_ERROR payload of an ext 3 value."""
    assert isinstance(v, msgpack.ExtType) and v.code == 3, v
    return msgpack.unpackb(v.data, raw=False, strict_map_key=False)


def frame(code: int, message: str, line: int, type_name: str = "ClientError",
          fields: dict | None = None) -> dict[int, Any]:
    f = {0x00: type_name, 0x01: APP, 0x02: line, 0x03: message, 0x04: 0, 0x05: code}
    if fields is not None:
        f[0x06] = fields
    return f


def negotiate(c: Raw, features: list[int]) -> None:
    c.request(ID, 99, {0x54: 6, 0x55: features})
    h, b = c.reply()
    assert h[0] == 0 and b[0x55] == [0, 1, 2, 3, 4, 5, 6]


@pytest.fixture(params=[0, 2], ids=lambda n: f"threads{n}")
def port(request: pytest.FixtureRequest, make_server: Any) -> int:
    return make_server(app=APP, iproto_threads=request.param).port


def test_returned_error_is_mp_error(port):
    with Raw(port) as c:
        negotiate(c, [2])
        h, b = c.call("return_error", 1000, "my reason")
        assert h[0] == 0
        (v,) = b[DATA]
        assert mp_error(v) == {0x00: [frame(1000, "my reason", RETURN_LINE)]}
        # A type Tarantool does not define: CustomError with custom_type.
        h, b = c.call("return_error", 1001, "typed", "MyError", sync=2)
        assert mp_error(b[DATA][0]) == {0x00: [frame(1001, "typed", RETURN_LINE, "CustomError",
                                                     {"custom_type": "MyError"})]}
        # Inside other values, and through CALL_16 (each value a tuple).
        h, b = c.call("return_error_and_value", 45, "nested", sync=3)
        (pair,) = b[DATA]
        assert pair[1] == 7 and mp_error(pair[0])[0x00][0][0x03] == "nested"
        c.request(CALL_16, 4, {0x22: "return_error", 0x21: [1, "old call"]})
        h, b = c.reply()
        assert mp_error(b[DATA][0][0])[0x00][0][0x03] == "old call"


def test_pushed_and_broadcast_errors_follow_each_session(port):
    with Raw(port) as ext, Raw(port) as plain:
        negotiate(ext, [0, 1, 2, 3])
        negotiate(plain, [0, 1, 3])
        for c, want in ((ext, "ext"), (plain, "str")):
            c.request(CALL, 5, {0x22: "push_error", 0x21: [42, "pushed one"]})
            h, b = c.reply()
            assert (h[0], h[1]) == (CHUNK, 5)
            (v,) = b[DATA]
            if want == "ext":
                assert mp_error(v) == {0x00: [frame(42, "pushed one", PUSH_LINE)]}
            else:
                assert v == "pushed one"
            h, b = c.reply()
            assert (h[0], b) == (0, {DATA: ["pushed"]})
            c.request(WATCH, 6, {EVENT_KEY: "err"})
            assert c.reply() == ({0: EVENT, 1: 6}, {EVENT_KEY: "err"})
            c.request(WATCH, 7, {EVENT_KEY: "err"})  # the ack
        with Raw(port) as ctl:
            h, b = ctl.call("broadcast_error", "err", 1002, "in an event", sync=8)
            assert (h[0], b) == (0, {DATA: []})
        h, b = ext.reply()
        assert (h[0], h[1]) == (EVENT, 7)
        assert mp_error(b[EVENT_DATA]["err"])[0x00][0][0x03] == "in an event"
        assert mp_error(b[EVENT_DATA]["err"])[0x00][0][0x05] == 1002
        h, b = plain.reply()
        assert (h[0], h[1]) == (EVENT, 7)
        assert b[EVENT_DATA] == {"err": "in an event"}
