"""IPROTO_ID features PAGINATION and SPACE_AND_INDEX_NAMES, on the wire."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.iproto import Raw

APP = str(Path(__file__).parent / "apps" / "paging_app.py")
SELECT, INSERT, DELETE, ID = 1, 2, 5, 73
SPACE_ID, INDEX_ID, LIMIT, OFFSET, ITERATOR, KEY, TUPLE = 0x10, 0x11, 0x12, 0x13, 0x14, 0x20, 0x21
FETCH_POSITION, AFTER_POSITION, AFTER_TUPLE, POSITION = 0x1F, 0x2E, 0x2F, 0x35
SPACE_NAME, INDEX_NAME, DATA = 0x5E, 0x5F, 0x30


@pytest.fixture
def port(make_server) -> int:
    return make_server(app=APP, iproto_threads=1).port


def select(c: Raw, sync: int, **body_kw) -> tuple[dict, dict]:
    body = {LIMIT: 0xFFFFFFFF, KEY: []}
    body.update(body_kw.pop("body", {}))
    c.request(SELECT, sync, body)
    return c.reply()


def test_id_advertises_pagination_and_names(port):
    with Raw(port) as c:
        c.request(ID, 1, {0x54: 5, 0x55: [0, 1, 2, 3, 4, 5, 6]})
        h, b = c.reply()
        assert h[0] == 0
        assert b[0x54] == 6 and b[0x55] == [0, 1, 2, 3, 4, 5, 6] and b[0x5B] == "chap-sha1"


def test_space_and_index_by_name(port):
    with Raw(port) as c:
        h, b = select(c, 1, body={SPACE_NAME: "pages", KEY: [3]})
        assert b[DATA] == [[3, "odd"]]
        h, b = select(c, 2, body={SPACE_NAME: "pages", INDEX_NAME: "by_g", KEY: ["even"], LIMIT: 2})
        assert b[DATA] == [[2, "even"], [4, "even"]]
        # SPACE_NAME wins over SPACE_ID; an unknown name is error 36 / 148.
        h, b = select(c, 3, body={SPACE_NAME: "pages", SPACE_ID: 601, KEY: [5]})
        assert b[DATA] == [[5, "odd"]]
        h, b = select(c, 4, body={SPACE_NAME: "nope"})
        assert h[0] == 0x8000 | 36 and b[0x31] == "Space 'nope' does not exist"
        h, b = select(c, 5, body={SPACE_NAME: "pages", INDEX_NAME: "nope"})
        assert h[0] == 0x8000 | 148 and b[0x31] == "No index 'nope' is defined in space 'pages'"
        c.request(INSERT, 6, {SPACE_NAME: "pages", TUPLE: [100, "x"]})
        assert c.reply()[1][DATA] == [[100, "x"]]
        c.request(DELETE, 7, {SPACE_NAME: "pages", INDEX_NAME: "pk", KEY: [100]})
        assert c.reply()[1][DATA] == [[100, "x"]]


def test_fetch_position_and_after_position_page_through(port):
    with Raw(port) as c:
        seen = []
        after = None
        for page in range(10):
            body = {SPACE_ID: 600, INDEX_ID: 1, ITERATOR: 5, KEY: ["even"], LIMIT: 3,
                    FETCH_POSITION: True}
            if after is not None:
                body[AFTER_POSITION] = after
            h, b = select(c, 10 + page, body=body)
            assert h[0] == 0, b
            seen += b[DATA]
            if not b[DATA]:
                assert POSITION not in b
                break
            assert isinstance(b[POSITION], str)
            after = b[POSITION]
        # GE "even" over a non-unique index: all evens, then all odds, by id.
        assert seen == [[i, "even"] for i in range(2, 21, 2)] + [[i, "odd"] for i in range(1, 21, 2)]


def test_after_tuple_and_reverse_iterators(port):
    with Raw(port) as c:
        h, b = select(c, 1, body={SPACE_ID: 600, ITERATOR: 3, KEY: [10], LIMIT: 3,
                                  AFTER_TUPLE: [8, "even"]})
        assert b[DATA] == [[7, "odd"], [6, "even"], [5, "odd"]]  # LT 10, after 8
        h, b = select(c, 2, body={SPACE_ID: 600, ITERATOR: 2, LIMIT: 2, AFTER_TUPLE: [19, "odd"]})
        assert b[DATA] == [[20, "even"]]


def test_bad_positions(port):
    with Raw(port) as c:
        h, b = select(c, 1, body={SPACE_ID: 600, AFTER_POSITION: "not base64!", KEY: []})
        assert h[0] == 0x8000 | 247 and b[0x31] == "Iterator position is invalid"
        h, b = select(c, 2, body={SPACE_ID: 601, ITERATOR: 2, AFTER_TUPLE: [3], KEY: []})
        assert h[0] == 0x8000 | 112
        assert "does not support pagination" in b[0x31]
