"""The parts of Tarantool's box API that users reach for first, from a
Python app (tests/apps/box_extras_app.py): box.cfg read and changed,
box.index's iterator constants, box.NULL, box.atomic, and a clear error
for a member box does not have."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import tarantool

APP = str(Path(__file__).parent / "apps" / "box_extras_app.py")


@pytest.fixture
def conn(make_server: Any) -> Any:
    server = make_server(app=APP, net_msg_max=768)
    c = tarantool.Connection("127.0.0.1", server.port)
    yield c
    c.close()


def test_box_cfg_reads_and_changes_options(conn: Any) -> None:
    listen, net_msg_max, wal_mode, first = conn.call("cfg_read").data
    assert listen == "127.0.0.1:0" and net_msg_max == 768 and wal_mode == "none"
    assert first == sorted(first) and len(first) == 3
    assert conn.call("cfg_set", 1000).data == [1000]
    assert conn.call("cfg_read").data[1] == 1000
    assert conn.call("cfg_missing").data == ["box.cfg has no option 'no_such_option'"]


def test_box_index_constants_and_null(conn: Any) -> None:
    assert conn.call("constants").data == [[0, 1, 2, 3, 4, 5, 6], True]  # Tarantool's numbers
    conn.replace("kv", (1, "x"))
    conn.replace("kv", (5, "y"))
    assert conn.call("select_ge", 2).data == [[[5, "y"]]]


def test_box_atomic(conn: Any) -> None:
    assert conn.call("put_both", 10, 11).data == ["done"]
    assert conn.select("kv", 10).data == [[10, "a"]] and conn.select("kv", 11).data == [[11, "b"]]
    assert conn.call("put_then_fail", 12).data == ["rolled back: no"]
    assert conn.select("kv", 12).data == []


def test_a_missing_member_of_box_says_so(conn: Any) -> None:
    assert conn.call("missing").data == [
        "box.no_such_thing: Styx's box has no such member (README: 'The box API')"]


def test_tuples_answer_to_field_names(conn: Any) -> None:
    (name, age, first, last, names, full, equal, as_list, missing,
     space_name) = conn.call("named", 7).data
    assert (name, age, first, last) == ("ann", 30, 7, 30)
    assert names == {"id": 7, "name": "ann", "age": 30}
    assert full == {1: 7, 2: "ann", 3: 30, "id": 7, "name": "ann", "age": 30}
    assert equal is True and as_list == [7, "ann", 30]  # and it went out as an array
    assert missing == "KeyError 'age'"
    assert space_name == "kv"  # system spaces' tuples too


def test_slab_info_and_info_memory(conn: Any) -> None:
    slab, memory, limit = conn.call("memory").data
    assert set(slab) == {"quota_size", "quota_used", "quota_used_ratio", "arena_size", "arena_used",
                         "arena_used_ratio", "items_size", "items_used", "items_used_ratio"}
    assert slab["quota_size"] == limit and 1000 < slab["quota_used"] == memory["data"] < limit
    assert slab["quota_used_ratio"].endswith("%")
    assert set(memory) == {"cache", "data", "index", "lua", "net", "tx"}


def test_every_missing_member_is_named(conn: Any) -> None:
    assert conn.call("missing_members").data == [[
        "box.space.kv.frob", "box.space.kv.index.pk.frob", "box.schema.frob", "box.session.frob",
        "box.info.frob", "box.schema.user.frob"]]
