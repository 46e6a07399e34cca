"""tarantool-python (PyPI `tarantool`) against Styx, in every iproto thread mode.

The connector is strictly one request at a time (sync 0). Because the greeting
announces 3.0.0 (2.10+) it sends IPROTO_ID first (protocol 6, ERROR_EXTENSION only),
then AUTH when a user is given."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import tarantool
from tarantool.error import DatabaseError, NetworkError

AUTH_FAILED = "User not found or supplied credentials are invalid"


@pytest.fixture
def connect(server) -> Iterator[Callable[..., tarantool.Connection]]:
    conns: list[tarantool.Connection] = []

    def make(**kw: Any) -> tarantool.Connection:
        kw.setdefault("fetch_schema", False)
        kw.setdefault("connection_timeout", 10)
        conn = tarantool.Connection("127.0.0.1", server.port, **kw)
        conns.append(conn)
        return conn

    yield make
    for c in conns:
        c.close()


def test_connect_guest_ping_and_id(connect):
    conn = connect()
    assert conn.ping(notime=True) == "Success"
    assert conn.ping() > 0  # seconds the round trip took
    # IPROTO_ID: protocol 6; of the connector's wishes only ERROR_EXTENSION
    # (2) is on: it asks for no other.
    assert conn._protocol_version == 6
    assert conn._features == {0: False, 1: False, 2: True, 3: False,
                              4: False, 5: False, 6: False}
    assert conn.version_id == (3 << 16)  # the greeting's 3.0.0
    user, sid = conn.call("whoami").data
    assert user == "guest" and isinstance(sid, int)


def test_auth_whoami(connect):
    conn = connect(user="test", password="secret")
    user, sid = conn.call("whoami").data
    assert user == "test"
    guest = connect()
    guser, gsid = guest.call("whoami").data
    assert guser == "guest"
    assert gsid != sid


def test_call_return_shapes(connect):
    conn = connect(user="test", password="secret")
    assert conn.call("echo", 1, "a").data == [1, "a"]
    assert conn.call("echo", [1, 2], {"k": "v"}, None, 2.5, True).data == \
        [[1, 2], {"k": "v"}, None, 2.5, True]
    assert conn.call("echo").data == []
    assert conn.call("one", 5).data == [5]
    # A single list argument is the argument list (tarantool-python's API).
    assert conn.call("one", [[1, 2]]).data == [[1, 2]]
    assert conn.call("echo", [7, 8]).data == [7, 8]
    assert conn.call("nothing").data == []
    assert conn.call("sum", 2, 3).data == [5]
    resp = conn.call("echo", "x", "y", "z")
    assert resp.return_code == 0 and len(resp) == 3 and resp[2] == "z"


def test_pushes_and_async_procedure(connect):
    conn = connect()
    pushes: list[tuple[Any, Any]] = []
    ctx = object()
    resp = conn.call("progress", 3, on_push=lambda data, c: pushes.append((data, c)),
                     on_push_ctx=ctx)
    assert resp.data == ["done"]
    assert [d for d, _ in pushes] == [[{"step": 0}], [{"step": 1}], [{"step": 2}]]
    assert all(c is ctx for _, c in pushes)

    t0 = time.monotonic()
    assert conn.call("sleep", 0.1, "woke").data == ["woke"]
    assert time.monotonic() - t0 >= 0.09
    assert conn.call("sleep", 0.01).data == []  # value=None: no return values

    slow: list[Any] = []
    assert conn.call("push_then_sleep", 3, 0.01,
                     on_push=lambda data, c: slow.append(data)).data == [3]
    assert slow == [[0], [1], [2]]
    # Pushes without on_push are dropped; the reply still arrives.
    assert conn.call("progress", 2).data == ["done"]


def test_procedure_raises(connect):
    conn = connect()
    with pytest.raises(DatabaseError) as ei:
        conn.call("fail", "boom")
    e = ei.value
    assert e.code == 32
    assert e.message == "ValueError: boom"
    # ERROR_EXTENSION is on: the IPROTO_ERROR stack comes decoded.
    assert e.extra_info is not None
    assert e.extra_info.errcode == 32 and e.extra_info.message == "ValueError: boom"
    # A Python exception travels as Tarantool sends box.error.new{type=...}.
    assert e.extra_info.type == "CustomError"
    assert e.extra_info.fields == {"custom_type": "ValueError"}
    assert conn.ping(notime=True) == "Success"


def test_fail_box_code(connect):
    conn = connect()
    with pytest.raises(DatabaseError) as ei:
        conn.call("fail_box", 1000, "msg")
    assert (ei.value.code, ei.value.message) == (1000, "msg")
    assert ei.value.extra_info.type == "ClientError"
    assert ei.value.extra_info.errcode == 1000


def test_unknown_procedure(connect):
    conn = connect()
    with pytest.raises(DatabaseError) as ei:
        conn.call("x")
    assert (ei.value.code, ei.value.message) == (33, "Procedure 'x' is not defined")
    assert conn.call("echo", 1).data == [1]


@pytest.mark.parametrize("user,password", [("test", "bad"), ("nobody", "x")],
                         ids=["wrong_password", "unknown_user"])
def test_auth_failure(connect, user, password):
    # tarantool-python wraps the server's error into a NetworkError at connect.
    with pytest.raises(NetworkError) as ei:
        connect(user=user, password=password)
    cause = ei.value.__cause__
    assert isinstance(cause, DatabaseError) and not isinstance(cause, NetworkError)
    assert cause.code == 47
    assert cause.message == AUTH_FAILED


def test_required_protocol_version_and_features(connect):
    with pytest.raises(NetworkError) as ei:
        connect(required_protocol_version=100500)
    assert str(ei.value.__cause__) == \
        "Server protocol version is 6, protocol version 100500 is required"
    with pytest.raises(NetworkError) as ei:
        connect(required_features=[100500, 500100])
    assert str(ei.value.__cause__) == "Server missing protocol features with id 100500, 500100"


def test_fetch_schema_select_system_space(connect):
    conn = connect(fetch_schema=True)
    row = conn.select("_vspace", [281]).data
    assert row[0][:4] == [281, 1, "_vspace", "sysview"]
    # A lookup by index name needs the schema that was fetched at connect.
    assert conn.select("_vspace", ["_vindex"], index="name").data[0][0] == 289
    assert conn.call("echo", 1, "a").data == [1, "a"]
