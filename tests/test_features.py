"""IPROTO_ID: Styx advertises exactly the features it implements, each one is
exercised on the wire somewhere in the suite (and quickly here), and a
feature the client did not ask for is not honoured."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import pytest

from styx.protocol import constants as C
from styx.tx.process import FEATURES, PROTOCOL_VERSION
from tests.iproto import Raw, packet

ROOT = Path(__file__).parent.parent
APP = str(Path(__file__).parent / "apps" / "watch_app.py")

SELECT, REPLACE, CALL, BEGIN, COMMIT, PING = 1, 3, 10, 14, 15, 0x40
ID, WATCH, EVENT, WATCH_ONCE = 73, 74, 76, 77
DATA, ERROR_24, POSITION = 0x30, 0x31, 0x35
VERSION, FEATURES_KEY, AUTH_TYPE = 0x54, 0x55, 0x5B
LIMIT, ITERATOR, KEY, TUPLE = 0x12, 0x14, 0x20, 0x21
FETCH_POSITION, AFTER_POSITION, SPACE_ID, SPACE_NAME = 0x1F, 0x2E, 0x10, 0x5E
EVENT_KEY, EVENT_DATA = 0x57, 0x58

# Feature id -> (test file, test function) that exercises it on the wire, and
# a piece of that function's source that shows it does.
FEATURE_TESTS: dict[int, tuple[str, str, str]] = {
    C.FEATURE_STREAMS: ("tests/test_streams_wire.py",
                        "test_stream_requests_run_one_after_another", "stream=1"),
    C.FEATURE_TRANSACTIONS: ("tests/test_streams_wire.py", "test_commit_and_rollback", "COMMIT"),
    C.FEATURE_ERROR_EXTENSION: ("tests/test_error_extension.py",
                                "test_returned_error_is_mp_error", "mp_error("),
    C.FEATURE_WATCHERS: ("tests/test_watchers.py", "test_ack_and_coalescing", "watch(c"),
    C.FEATURE_PAGINATION: ("tests/test_pagination_names.py",
                           "test_fetch_position_and_after_position_page_through",
                           "AFTER_POSITION"),
    C.FEATURE_SPACE_AND_INDEX_NAMES: ("tests/test_pagination_names.py",
                                      "test_space_and_index_by_name", "SPACE_NAME"),
    C.FEATURE_WATCH_ONCE: ("tests/test_watchers.py", "test_watch_once", "WATCH_ONCE"),
}
ALL_KNOWN = list(range(13))  # every feature id Tarantool has defined (§7.9), and more below


@pytest.fixture(scope="module")
def server() -> Any:
    from styx import Config, Server

    s = Server(Config(listen="127.0.0.1:0", app=APP, iproto_threads=1)).start()
    yield s
    s.stop()


def id_request(c: Raw, features: list[int], sync: int = 1) -> dict[int, Any]:
    c.request(ID, sync, {VERSION: 6, FEATURES_KEY: features, AUTH_TYPE: "chap-sha1"})
    h, b = c.reply()
    assert (h[0], h[1]) == (0, sync), (h, b)
    return b


# -- what is advertised -------------------------------------------------------------------------


def test_id_advertises_exactly_the_implemented_features(server):
    assert sorted(FEATURES) == [0, 1, 2, 3, 4, 5, 6]
    assert PROTOCOL_VERSION == 6  # the version that brought WATCH_ONCE, the newest of them
    with Raw(server.port) as c:
        for sync, asked in enumerate(([], [2], ALL_KNOWN + [999, 100500]), 1):
            b = id_request(c, asked, sync)
            # The server's own list, whatever the client asked for.
            assert b == {VERSION: 6, FEATURES_KEY: [0, 1, 2, 3, 4, 5, 6], AUTH_TYPE: "chap-sha1"}
        # Feature 12 (INSERT_ARROW) is not advertised, and its request is unknown.
        c.request(17, 9, {SPACE_ID: 512, 0x36: b""})
        h, b = c.reply()
        assert (h[0], b[ERROR_24]) == (0x8000 | 48, "Unknown request type 17")


def test_every_advertised_feature_has_a_wire_test():
    assert sorted(FEATURE_TESTS) == sorted(FEATURES)
    for feature, (path, name, token) in FEATURE_TESTS.items():
        assert (ROOT / path).is_file(), path
        module = importlib.import_module(path[:-3].replace("/", "."))
        fn = getattr(module, name, None)
        assert inspect.isfunction(fn) and name.startswith("test_"), f"{feature}: {path}::{name}"
        assert token in inspect.getsource(fn), f"{path}::{name} does not show {token!r}"


# -- a quick live check of each feature ---------------------------------------------------------


def check_streams(c: Raw) -> None:
    # Stream 1 holds its second request behind its slow first one; stream 2
    # does not wait.
    c.send(packet({0: CALL, 1: 1, 0x0A: 1}, {0x22: "sleep", 0x21: [0.2, "slow"]})
           + packet({0: CALL, 1: 2, 0x0A: 1}, {0x22: "echo", 0x21: ["after slow"]})
           + packet({0: CALL, 1: 3, 0x0A: 2}, {0x22: "echo", 0x21: ["other stream"]}))
    order = [c.reply()[1][DATA][0] for _ in range(3)]
    assert order == ["other stream", "slow", "after slow"]


def check_transactions(c: Raw) -> None:
    def rq(t: int, sync: int, body: Any, stream: int = 0) -> dict:
        h = {0: t, 1: sync}
        if stream:
            h[0x0A] = stream
        c.send(packet(h, body))
        rh, rb = c.reply()
        assert rh[0] == 0, rb
        return rb

    sel = {SPACE_NAME: "items", KEY: [500], LIMIT: 1}
    rq(BEGIN, 1, {}, stream=7)
    rq(REPLACE, 2, {SPACE_NAME: "items", TUPLE: [500, "txn"]}, stream=7)
    assert rq(SELECT, 3, sel)[DATA] == []
    assert rq(SELECT, 4, sel, stream=7)[DATA] == [[500, "txn"]]
    rq(COMMIT, 5, {}, stream=7)
    assert rq(SELECT, 6, sel)[DATA] == [[500, "txn"]]


def check_error_extension(c: Raw) -> None:
    id_request(c, [2])
    (v,) = c.call("return_error", 1000, "ext")[1][DATA]
    assert isinstance(v, msgpack.ExtType) and v.code == 3
    stack = msgpack.unpackb(v.data, strict_map_key=False)[0x00]
    assert (stack[0][0x00], stack[0][0x03], stack[0][0x05]) == ("ClientError", "ext", 1000)


def check_watchers(c: Raw) -> None:
    c.request(WATCH, 3, {EVENT_KEY: "box.status"})
    h, b = c.reply()
    assert h == {0: EVENT, 1: 3} and b[EVENT_DATA]["status"] == "running"


def check_pagination(c: Raw) -> None:
    body = {SPACE_NAME: "items", ITERATOR: 2, KEY: [], LIMIT: 3, FETCH_POSITION: True}
    c.request(SELECT, 1, body)
    h, b = c.reply()
    assert h[0] == 0 and b[DATA] == [[i, f"item{i}"] for i in (1, 2, 3)] and b[POSITION]
    c.request(SELECT, 2, {**body, AFTER_POSITION: b[POSITION]})
    assert c.reply()[1][DATA] == [[i, f"item{i}"] for i in (4, 5, 6)]


def check_names(c: Raw) -> None:
    c.request(SELECT, 1, {SPACE_NAME: "items", 0x5F: "pk", KEY: [2], LIMIT: 1})
    assert c.reply()[1] == {DATA: [[2, "item2"]]}


def check_watch_once(c: Raw) -> None:
    c.request(WATCH_ONCE, 4, {EVENT_KEY: "box.status"})
    h, b = c.reply()
    assert h[0] == 0 and b[DATA][0]["is_ro"] is False
    c.request(WATCH_ONCE, 5, {EVENT_KEY: "no.such.key"})
    assert c.reply()[1] == {DATA: []}


LIVE: dict[int, Callable[[Raw], None]] = {
    C.FEATURE_STREAMS: check_streams,
    C.FEATURE_TRANSACTIONS: check_transactions,
    C.FEATURE_ERROR_EXTENSION: check_error_extension,
    C.FEATURE_WATCHERS: check_watchers,
    C.FEATURE_PAGINATION: check_pagination,
    C.FEATURE_SPACE_AND_INDEX_NAMES: check_names,
    C.FEATURE_WATCH_ONCE: check_watch_once,
}


def test_live_checks_cover_every_feature():
    assert sorted(LIVE) == sorted(FEATURES)


@pytest.mark.parametrize("feature", sorted(LIVE))
def test_live(server, feature):
    with Raw(server.port) as c:
        LIVE[feature](c)
        c.request(PING, 77)  # nothing else is left unread before its reply
        h, b = c.reply()
        assert (h[0], h[1], b) == (0, 77, {})


# -- what the client did not ask for is not honoured --------------------------------------------


def returned_error(c: Raw, sync: int) -> Any:
    h, b = c.call("return_error", 1000, "as asked", sync=sync)
    assert h[0] == 0, b
    return b[DATA][0]


def test_error_extension_only_for_clients_that_asked(server):
    with Raw(server.port) as c:
        # No ID at all: the message string.
        assert returned_error(c, 1) == "as asked"
        # ID without feature 2 (all the others, and unknown ones): a string.
        id_request(c, [0, 1, 3, 4, 5, 6, 7, 8, 9, 999], 2)
        assert returned_error(c, 3) == "as asked"
        # ID with feature 2: MP_ERROR.
        id_request(c, [2], 4)
        v = returned_error(c, 5)
        assert isinstance(v, msgpack.ExtType) and v.code == 3
        # A later ID without it takes it back.
        id_request(c, [], 6)
        assert returned_error(c, 7) == "as asked"
    with Raw(server.port) as other:
        # Another session's choice is its own.
        id_request(other, [2], 1)
        with Raw(server.port) as plain:
            assert returned_error(plain, 1) == "as asked"
        assert isinstance(returned_error(other, 2), msgpack.ExtType)
