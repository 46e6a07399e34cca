"""The Python `box` API (styx/tx/api.py, styx/tx/space_api.py), from app
procedures: tests/apps/api_app.py drives it and returns what it saw; the
tests CALL those procedures (tarantool-python, or tests/iproto.Raw where the
bytes matter) and assert values.

One Styx serves the app for the whole module; every test uses its own
space/user names. Callers: `boss` (the role super) for DDL and data,
`admin` (password set in init) for what only admin may grant, `noread` and
`fexec` for access checks.

Expected values are Tarantool 2.6's where Tarantool has the same operation
(read off Debian's tarantool running the Lua equivalent); DDL_ERRORS lists
each error case with 2.6's code and message.

Failing when written (Styx bugs; the tests assert 2.6's behaviour):
- test_min_max_with_a_key: index.min(key)/max(key) act as GE/LE bounds, not
  EQ/REQ: min(2) over keys [1,1],[1,5],[3,2] gives [3,2] instead of None.
- test_space_object_after_drop: a SpaceApi kept across drop() still takes
  inserts and selects (a ghost space; its bytes stay charged to the quota).
- test_index_object_after_alter_and_drop: an IndexApi kept across alter()
  reads the old, frozen index (misses later rows); after drop() it reads [].
- test_box_stat_counts_box_api_requests: box.stat() counts only wire requests;
  2.6 counts selects/inserts made by Lua code too.
- test_ddl_error_as_tarantool: bad_iterator (1, not 72), format_vs_index
  (accepted, not 27), grant_bad_universe_priv (taken as a role: 82, not 98),
  index_secondary_first (14, not 12), index_type_mismatch (field name, not
  number, in the message), space_drop_twice (Python KeyError -> 32, not 36),
  space_dup_id / space_rename_taken (10, not 3), space_unknown_field_type
  (141, not 9), count_without_index (35, not 0).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import asynctnt
import msgpack
import pytest
import tarantool

from styx import Config, Server
from tests.iproto import Raw, packet

HERE = Path(__file__).parent
APP = str(HERE / "apps" / "api_app.py")
NETBOX = HERE / "lua" / "netbox_ddl.lua"
AUTH_FAILED = "User not found or supplied credentials are invalid"
SCHEMA_VERSION = 0x05
DATA, ERROR_24, ERROR = 0x30, 0x31, 0x52


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    s = Server(Config(listen="127.0.0.1:0", app=APP)).start()
    try:
        yield s
    finally:
        s.stop()


class Caller:
    """tarantool-python connections by user; `call` returns the DATA list,
    `error` the (code, message) of the error a call must raise."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conns: dict[str, tarantool.Connection] = {}

    def conn(self, user: str) -> tarantool.Connection:
        if user not in self.conns:
            self.conns[user] = tarantool.Connection("127.0.0.1", self.port, user=user,
                                                    password="pw", fetch_schema=False,
                                                    connection_timeout=10)
        return self.conns[user]

    def call(self, name: str, *args: Any, user: str = "boss") -> list[Any]:
        return self.conn(user).call(name, list(args)).data

    def one(self, name: str, *args: Any, user: str = "boss") -> Any:
        data = self.call(name, *args, user=user)
        assert len(data) == 1, data
        return data[0]

    def error(self, name: str, *args: Any, user: str = "boss") -> tuple[int, str]:
        with pytest.raises(tarantool.error.DatabaseError) as e:
            self.conn(user).call(name, list(args))
        return e.value.args[0], e.value.args[1]

    def close(self) -> None:
        for c in self.conns.values():
            c.close()


@pytest.fixture(scope="module")
def box(server: Server) -> Iterator[Caller]:
    c = Caller(server.port)
    try:
        yield c
    finally:
        c.close()


def raw(port: int, user: str = "boss", password: str = "pw") -> Raw:
    r = Raw(port)
    h, b = r.auth(user, password)
    assert h[0] == 0, b
    return r


# -- spaces ---------------------------------------------------------------------------------


def test_space_create(box: Caller) -> None:
    r = box.one("space_create", "sc_dicts", "sc_pairs", "sc_plain")
    assert r["names"] == ["sc_dicts", "sc_pairs", "sc_plain"]
    first, explicit, third = r["ids"]
    assert first >= 512 and explicit == 600
    assert third >= 512 and third not in (first, explicit)
    assert r["engine"] == "memtx"
    assert r["format_dicts"] == [{"name": "id", "type": "unsigned"},
                                 {"name": "name", "type": "string"},
                                 {"name": "score", "type": "integer", "is_nullable": True}]
    assert r["format_pairs"] == [{"name": "id", "type": "unsigned"},
                                 {"name": "tag", "type": "string"}]
    assert r["format_none"] == []
    assert r["field_count"] == [0, 2]
    assert r["info_c"] == {"id": third, "name": "sc_plain", "engine": "memtx", "field_count": 2,
                           "temporary": True, "is_local": False, "enabled": False}
    # if_not_exists: the existing space, untouched.
    assert r["again_id"] == first
    assert r["again_format"] == r["format_dicts"]
    # box.space by id, by item, by attribute; `in`.
    assert (r["by_id"], r["by_item"], r["by_attr"]) == ("sc_pairs", 600, first)
    assert r["in"] == [True, True, False]
    assert r["dup_name"] == [10, "Space 'sc_dicts' already exists"]
    assert r["dup_field"] == [149, "Space field 'x' is duplicate"]
    assert r["bad_engine"] == [57, "Space engine 'nope' does not exist"]


# -- indexes ---------------------------------------------------------------------------------


def _part(fieldno: int, type_: str, nullable: bool = False) -> dict[str, Any]:
    return {"fieldno": fieldno, "type": type_, "is_nullable": nullable}


def test_index_create(box: Caller) -> None:
    r = box.one("index_create", "ic")
    assert r["nullable_pk"] == [152, "Primary index of space 'ic' can not contain nullable parts"]
    assert r["pk_not_unique"] == [
        14, "Can't create or modify index 'pk' in space 'ic': primary key must be unique"]
    assert r["indexes"] == [
        # parts=["id"]: by field name, the type from the format
        {"id": 0, "name": "pk", "type": "TREE", "unique": True, "parts": [_part(1, "unsigned")]},
        # parts=[2]: by 1-based number
        {"id": 1, "name": "by_name", "type": "HASH", "unique": True,
         "parts": [_part(2, "string")]},
        # parts=[("cat", "string")]: a (field, type) pair
        {"id": 2, "name": "by_cat", "type": "TREE", "unique": False,
         "parts": [_part(3, "string")]},
        {"id": 3, "name": "by_cat_id", "type": "TREE", "unique": True,
         "parts": [_part(3, "string"), _part(1, "unsigned")]},
        # nullable: by the part's option, or by the format
        {"id": 4, "name": "by_n", "type": "TREE", "unique": False,
         "parts": [_part(4, "integer", True)]},
        {"id": 5, "name": "by_n_fmt", "type": "TREE", "unique": True,
         "parts": [_part(4, "integer", True)]},
    ]
    assert r["listed"] == ["pk", "by_name", "by_cat", "by_cat_id", "by_n", "by_n_fmt"]
    assert r["count"] == 6
    assert r["by_number"] == "by_cat_id"
    assert r["in"] == [True, True, False]
    assert r["again"] == r["indexes"][2]  # if_not_exists: the existing index
    assert r["dup"] == [85, "Index 'by_cat' already exists"]
    assert r["hash_not_unique"] == [
        14, "Can't create or modify index 'h2' in space 'ic': HASH index must be unique"]
    assert r["bad_field"] == [
        1, "Illegal parameters, options.parts[1]: field was not found by name 'nosuchfield'"]
    assert r["bad_type"] == [13, "Unsupported index type supplied for index 'bad' in space 'ic'"]
    # Data through every index.
    assert r["dup_hash"] == [3, "Duplicate key exists in unique index 'by_name' in space 'ic'"]
    assert r["dup_multi"] == [3, "Duplicate key exists in unique index 'pk' in space 'ic'"]
    assert r["dup_nullable_unique"] == [
        3, "Duplicate key exists in unique index 'by_n_fmt' in space 'ic'"]
    assert r["hash_get"] == [3, "three", "x", None]
    assert r["hash_get_missing"] is None
    assert r["cat_x"] == [[1, "one", "x", 10], [3, "three", "x", None]]
    assert r["cat_y_desc"] == [[4, "four", "y", -5, {"k": "v"}], [2, "two", "y"]]
    assert r["cat_id"] == [[4, "four", "y", -5, {"k": "v"}], [7, "seven", "z", None]]
    assert r["cat_id_get"] == [3, "three", "x", None]
    # A nullable part: nil (absent or null) sorts first; unique allows many nils.
    nulls = [[2, "two", "y"], [3, "three", "x", None], [7, "seven", "z", None]]
    assert r["n_null"] == nulls
    assert r["n_fmt_null"] == nulls
    assert r["n_all"] == nulls + [[4, "four", "y", -5, {"k": "v"}], [1, "one", "x", 10]]
    assert r["n_gt_null"] == [[4, "four", "y", -5, {"k": "v"}], [1, "one", "x", 10]]
    assert r["non_unique_get"] == [41, "Get() doesn't support partial keys and non-unique indexes"]


# -- data -------------------------------------------------------------------------------------


def test_dml_and_reads(box: Caller) -> None:
    r = box.one("dml", "dm")
    assert r["insert"] == [[i, f"n{i % 3}", i * 10] for i in range(1, 7)]
    assert r["insert_tuple"] == [7, "n1", 70]
    assert r["dup"] == [3, "Duplicate key exists in unique index 'pk' in space 'dm'"]
    assert r["bad_type"] == [
        23, "Tuple field 1 type does not match one required by operation: expected unsigned"]
    assert r["missing_field"] == [39, "Tuple field 3 required by space format is missing"]
    assert r["not_array"] == [22, "Tuple/Key must be MsgPack array"]
    assert r["replace_new"] == [8, "n2", 80]
    assert r["replace_old"] == [8, "n2", 81]
    assert r["put"] == [9, "n0", 90]
    # select: keys, iterator names (any case) and numbers, limit, offset.
    assert r["all"] == list(range(1, 10))
    assert r["eq_scalar_key"] == r["eq_list_key"] == [[3, "n0", 30]]
    assert r["ge_name"] == r["ge_lower"] == r["ge_number"] == [5, 6, 7, 8, 9]
    assert r["gt"] == [6, 7, 8, 9]
    assert r["lt"] == r["lt_number"] == [4, 3, 2, 1]
    assert r["le_number"] == [5, 4, 3, 2, 1]
    assert r["req"] == list(range(9, 0, -1))
    assert r["all_it"] == list(range(1, 10))
    assert r["limit"] == [1, 2, 3]
    assert r["offset"] == [8, 9]
    assert r["limit_offset"] == [4, 5]
    assert r["by_name_eq"] == [1, 4, 7]
    assert r["by_name_lt"] == [9, 6, 3]
    assert r["by_name_limit"] == [2]
    # get, min, max, count, len.
    assert r["get"] == r["get_list"] == [4, "n1", 40]
    assert r["get_missing"] is None
    assert (r["min"], r["max"]) == ([1, "n1", 10], [9, "n0", 90])
    assert (r["min_key"], r["max_key"]) == ([5, "n2", 50], [5, "n2", 50])
    assert (r["min_name"], r["max_name"]) == ([3, "n0", 30], [8, "n2", 81])
    assert r["count"] == 9
    assert r["count_key"] == 5
    assert r["count_idx"] == 3
    assert r["count_idx_lt"] == 3
    assert r["len"] == [9, 9, 9]
    # update by field name and by number; index_base=0; misses and errors.
    assert r["update_name"] == [1, "renamed", 15]
    assert r["update_number"] == [2, "numbered", 19]
    assert r["update_index_base0"] == [3, "base0", 30]
    assert r["update_missing"] is None
    assert r["update_pk"] == [
        94, "Attempt to modify a tuple field which is part of index 'pk' in space 'dm'"]
    assert r["update_bad_field"] == [201, "Field 'nosuch' was not found in the tuple"]
    assert r["update_via_index"] == [
        41, "Get() doesn't support partial keys and non-unique indexes"]
    # upsert: inserts, then applies the operations.
    assert r["upsert_insert"] is None and r["upsert_update"] is None
    assert r["after_upsert_insert"] == [20, "ups", 1]
    assert r["after_upsert_update"] == [20, "ups", 11]
    assert r["delete"] == [4, "n1", 40]
    assert r["delete_missing"] is None
    assert r["delete_via_unique_missing"] is None
    assert r["after"] == [[1, "renamed", 15], [2, "numbered", 19], [3, "base0", 30],
                          [5, "n2", 50], [6, "n0", 60], [7, "n1", 70], [8, "n2", 81],
                          [9, "n0", 90], [20, "ups", 11]]
    assert r["truncate"] is None
    assert r["after_truncate"] == [0, [], []]
    assert r["insert_after_truncate"] == [1, "again", 1]


def test_min_max_with_a_key(box: Caller) -> None:
    """2.6 (measured): min(2) and max(2) over [1, 1], [1, 5], [3, 2] are nil: a
    key selects the tuples equal to it, it is not a bound."""
    assert box.one("min_max", "mm") == {
        "min": [1, 1], "max": [3, 2], "min_1": [1, 1], "max_1": [1, 5], "min_3": [3, 2],
        "min_2": None, "max_2": None, "max_0": None, "min_9": None,
        "count_2": 0, "count_1": 2}


def test_index_alter_and_drop(box: Caller) -> None:
    r = box.one("alter_drop", "ad")
    assert r["dup_while_unique"] == [3, "Duplicate key exists in unique index 'sec' in space 'ad'"]
    assert r["renamed"] == [False, 1, "sec2"]
    assert r["non_unique"] is False
    assert r["dup_now_ok"] == [3, "x", 3]
    assert r["by_a"] == [[1, "x", 2], [3, "x", 3]]
    assert r["new_parts"] == [_part(3, "unsigned")]
    assert r["by_b"] == [[2, "y", 1], [1, "x", 2], [3, "x", 3]]
    # A failed alter leaves the index as it was.
    assert r["make_unique_fails"] == [
        3, "Duplicate key exists in unique index 'sec2' in space 'ad'"]
    assert r["after_failed_alter"] == {"id": 1, "name": "sec2", "type": "TREE", "unique": False,
                                       "parts": [_part(3, "unsigned")]}
    assert r["drop_pk"] == [17, "Can't drop primary key in space 'ad' while secondary keys exist"]
    assert r["pk_still"] == [1, "x", 2]
    assert r["sec_gone"] == [1, False]
    assert r["no_pk"] == [0, [35, "No index #0 is defined in space 'ad'"],
                          [35, "No index #0 is defined in space 'ad'"]]
    assert r["pk2"] == "pk2"


def test_space_rename_format_drop(box: Caller) -> None:
    r = box.one("rename_format_drop", "rn_old", "rn_new")
    assert r["renamed"] == [False, True, True, [1, "str"]]
    # The data does not fit: refused, and the format stays.
    assert r["narrow"] == [
        23, "Tuple field 2 type does not match one required by operation: expected unsigned"]
    assert r["required"] == [39, "Tuple field 3 required by space format is missing"]
    assert r["kept"] == [{"name": "id", "type": "unsigned"}, {"name": "v", "type": "any"}]
    assert r["insert_after_failed"] == [3, "anything"]
    assert r["widened"] == [{"name": "id", "type": "unsigned"}, {"name": "v", "type": "scalar"},
                            {"name": "w", "type": "string", "is_nullable": True}]
    assert r["enforced"] == [
        23, "Tuple field 3 type does not match one required by operation: expected string"]
    assert r["update_by_new_name"] == [1, "str", "ok"]
    # Dropped: gone by name and by id, from `in`, items and attributes.
    assert r["dropped"] == [False, False]
    assert r["item"] == "KeyError"
    assert r["attr"] == "AttributeError"
    assert isinstance(r["reuse"], int)


def test_space_object_after_drop(box: Caller) -> None:
    """2.6 (measured): after s:drop(), s:insert fails with 36, s:select with 35.
    A dropped space must take no writes."""
    r = box.one("space_after_drop", "sad")
    assert r["insert"] == [36, f"Space '{r['id']}' does not exist"]
    assert r["select"][0] in (35, 36)
    # A new space under the same name and id starts empty.
    assert r["recreated"] == [r["id"], []]


def test_index_object_after_alter_and_drop(box: Caller) -> None:
    """2.6 (measured): an index object follows its index through alter (it
    sees rows inserted afterwards), and fails with 35 once it is dropped."""
    r = box.one("index_after_alter", "iaa")
    assert r["fresh"] == [[1, "a"]]
    assert r["after_alter"] == ["ok", [[1, "a"]]]
    assert r["count"] == ["ok", 1]
    assert r["after_drop"] == [35, "No index #1 is defined in space 'iaa'"]


# Each case of api_app.DDL_CASES, run as admin with the prefix "c_<case>", and
# what Tarantool 2.6 answers to the same Lua calls (measured).
DDL_ERRORS = {
    "bad_iterator": [72, "Unknown iterator type 'SIDEWAYS'"],
    "count_without_index": ["ok"],  # 0 in 2.6
    "delete_non_unique": [41, "Get() doesn't support partial keys and non-unique indexes"],
    "drop_pk_with_secondary": [17, "Can't drop primary key in space 'c_drop_pk_with_secondary' "
                                   "while secondary keys exist"],
    "format_vs_data": [23, "Tuple field 3 type does not match one required by operation: "
                           "expected unsigned"],
    "format_vs_index": [27, "Field 1 has type 'string' in space format, but type 'unsigned' "
                            "in index definition"],
    "get_non_unique": [41, "Get() doesn't support partial keys and non-unique indexes"],
    "grant_bad_space_priv": [98, "Unsupported space privilege 'frob'"],
    "grant_bad_universe_priv": [98, "Unsupported universe privilege 'frob'"],
    "grant_unknown_object_type": [49, "Unknown object type 'planet'"],
    "index_dup_name": [85, "Index 'pk' already exists"],
    "index_empty_name": [70, "Invalid identifier '' (expected printable symbols only or it is "
                             "too long)"],
    "index_hash_not_unique": [14, "Can't create or modify index 'h' in space "
                                  "'c_index_hash_not_unique': HASH index must be unique"],
    "index_nullable_pk": [152, "Primary index of space 'c_index_nullable_pk' can not contain "
                               "nullable parts"],
    "index_pk_not_unique": [14, "Can't create or modify index 'pk' in space "
                                "'c_index_pk_not_unique': primary key must be unique"],
    "index_secondary_first": [12, "Can't modify space 'c_index_secondary_first': can not add a "
                                  "secondary key before primary"],
    "index_type_mismatch": [27, "Field 2 has type 'string' in space format, but type 'unsigned' "
                                "in index definition"],
    "index_unknown_field": [1, "Illegal parameters, options.parts[1]: field was not found by "
                               "name 'nosuchfield'"],
    "index_unknown_type": [13, "Unsupported index type supplied for index 'bad' in space "
                               "'c_index_unknown_type'"],
    "insert_not_array": [22, "Tuple/Key must be MsgPack array"],
    "role_drop_user": [82, "Role 'guest' is not found"],
    "role_dup_user_name": [83, "Role 'admin' already exists"],
    "space_drop_twice": [36, "Space 'c_space_drop_twice' does not exist"],
    "space_dup_field": [149, "Space field 'x' is duplicate"],
    "space_dup_id": [3, "Duplicate key exists in unique index 'primary' in space '_space'"],
    "space_dup_name": [10, "Space 'c_space_dup_name' already exists"],
    "space_empty_name": [70, "Invalid identifier '' (expected printable symbols only or it is "
                             "too long)"],
    "space_rename_taken": [3, "Duplicate key exists in unique index 'name' in space '_space'"],
    "space_unknown_engine": [57, "Space engine 'nope' does not exist"],
    "space_unknown_field_type": [9, "Failed to create space 'c_space_unknown_field_type': "
                                    "field 1 has unknown field type"],
    "update_non_unique": [41, "Get() doesn't support partial keys and non-unique indexes"],
    "update_unknown_op": [28, "Unknown UPDATE operation #1: \"?\""],
    "user_drop_role": [45, "User 'public' is not found"],
    "user_dup": [46, "User 'admin' already exists"],
}


@pytest.mark.parametrize("case", sorted(DDL_ERRORS))
def test_ddl_error_as_tarantool(box: Caller, case: str) -> None:
    assert box.one("ddl_error", case, "c_" + case, user="admin") == DDL_ERRORS[case]


# -- decimal and uuid ----------------------------------------------------------------------------


def test_decimal_and_uuid(box: Caller, server: Server) -> None:
    u1 = uuid.UUID("6f2dc6a1-8c3b-4b1a-9b0e-2f5c2a1e0d01")
    u2 = uuid.UUID("00000000-0000-0000-0000-000000000001")
    umax = uuid.UUID(int=2**128 - 1)
    from_client = uuid.UUID(int=5)
    r = box.one("ext_values", "ev", Decimal("0.50"), from_client)
    assert r["get"] == [Decimal("1.10"), u1, Decimal("-0.000001")]
    assert r["get_by_uuid"] == [Decimal("-3.5"), u2]
    assert r["ordered"] == [[Decimal("-3.5"), u2], [Decimal("0.50"), from_client],
                            [Decimal("1.10"), u1, Decimal("-0.000001")],
                            [Decimal("12345678901234567890.123456789"), umax]]
    assert r["ge_zero"] == [Decimal("0.50"), Decimal("1.10"),
                            Decimal("12345678901234567890.123456789")]
    assert r["uuid_order"] == [u2, from_client, u1, umax]
    assert r["dup"] == [3, "Duplicate key exists in unique index 'pk' in space 'ev'"]
    assert r["bad_decimal"] == [
        23, "Tuple field 1 type does not match one required by operation: expected decimal"]
    assert r["bad_uuid"] == [
        23, "Tuple field 2 type does not match one required by operation: expected uuid"]
    assert r["types"] == ["Decimal", "UUID", "Decimal"]
    assert r["str"] == "1.10"  # the scale is kept
    assert r["update_decimal"] == [Decimal("1.10"), u1, Decimal("0.249999")]
    # Exactly: decimals keep their digits and scale; types are the extensions.
    for got in (r["ordered"][1][0], r["get"][0], r["ordered"][3][0]):
        assert isinstance(got, Decimal)
    assert str(r["ordered"][1][0]) == "0.50"
    assert str(r["ordered"][3][0]) == "12345678901234567890.123456789"
    # On the wire: MP_EXT 1 (decimal) and 2 (uuid, its 16 bytes).
    with raw(server.port) as c:
        c.send(packet({0: 10, 1: 5}, {0x22: "get_from",
                                      0x21: ["ev", [msgpack.ExtType(1, b"\x02\x11\x0c")]]}))
        h, b = c.reply()  # the key: MP_EXT 1, scale 2, BCD digits 1 1 0 and sign 0x0c (1.10)
        assert h[0] == 0
        (row,) = b[DATA]
        assert isinstance(row[0], msgpack.ExtType) and row[0].code == 1
        assert row[1] == msgpack.ExtType(2, u1.bytes)
        assert isinstance(row[2], msgpack.ExtType) and row[2].code == 1


# -- users, roles, functions -------------------------------------------------------------------


def _auth(port: int, user: str, password: str) -> tuple[int, Any]:
    with Raw(port) as r:
        h, b = r.auth(user, password)
        return h[0], b.get(ERROR_24)


def test_users_and_roles(box: Caller, server: Server) -> None:
    r = box.one("users", "carol", "carol_role", user="admin")
    assert r["exists"] == [True, False, False]
    assert r["dup"] == [46, "User 'carol' already exists"]
    assert r["dup_ok"] is None
    assert sorted(r["info_new"]) == sorted([["execute", "role", "public"],
                                            ["session,usage", "universe", ""],
                                            ["alter", "user", "carol"]])
    assert r["role_exists"] == [True, False]
    assert r["role_dup"] == [83, "Role 'carol_role' already exists"]
    assert sorted(r["info_granted"]) == sorted([
        ["execute", "role", "public"], ["execute", "role", "carol_role"],
        ["execute", "function", "carol_func"], ["read,write", "space", "carol_space"],
        ["execute,session,usage", "universe", ""], ["alter", "user", "carol"]])
    assert r["role_info"] == [["read", "space", "carol_space"]]
    assert r["regrant"] == [89, "User 'carol' already has read access on space 'carol_space'"]
    assert r["regrant_ok"] is None
    assert r["role_regrant"] == [90, "User 'carol' already has role 'carol_role'"]
    assert r["grant_nobody"] == [45, "User 'nobody' is not found"]
    assert r["grant_no_space"] == [36, "Space 'no_such_space' does not exist"]
    assert r["grant_no_function"] == [51, "Function 'no_such_function' does not exist"]
    assert r["grant_no_role"] == [82, "Role 'no_such_role' is not found"]
    assert sorted(r["info_revoked"]) == sorted([["execute", "role", "public"],
                                                ["read", "space", "carol_space"],
                                                ["session,usage", "universe", ""],
                                                ["alter", "user", "carol"]])
    assert r["revoke_again"] == [
        91, "User 'carol' does not have write access on space 'carol_space'"]
    assert r["revoke_again_ok"] is None
    assert r["info_missing"] == [45, "User 'nobody' is not found"]

    # passwd: the new password works over the wire, the old one no longer.
    assert _auth(server.port, "carol", "first") == (0x8000 | 47, AUTH_FAILED)
    assert _auth(server.port, "carol", "second") == (0, None)
    # passwd(password): the session's own user.
    carol = tarantool.Connection("127.0.0.1", server.port, user="carol", password="second",
                                 fetch_schema=False)
    try:
        assert carol.call("whoami").data == ["carol"]
        assert carol.call("passwd_self", "third").data == []
        # carol reads her space (read kept), may not write it (revoked).
        assert carol.call("read_space", "carol_space").data == [[]]
        with pytest.raises(tarantool.error.DatabaseError) as e:
            carol.call("write_space", "carol_space", [1])
        assert e.value.args[:2] == (
            42, "Write access to space 'carol_space' is denied for user 'carol'")
    finally:
        carol.close()
    assert _auth(server.port, "carol", "second")[0] == 0x8000 | 47
    assert _auth(server.port, "carol", "third") == (0, None)

    assert box.one("drop_role", "carol_role", user="admin") == [
        False, [82, "Role 'carol_role' is not found"]]
    assert box.call("drop_user", "carol", user="admin") == [
        [False, [45, "User 'carol' is not found"], None]]
    assert _auth(server.port, "carol", "third") == (0x8000 | 47, AUTH_FAILED)


def test_only_admin_or_the_owner_grants(box: Caller) -> None:
    """As in 2.6: the role super does not let boss grant on the universe or on
    admin's space and function."""
    assert box.one("boss_grants", "noread") == {
        "universe": [42, "Grant access to universe '' is denied for user 'boss'"],
        "admin_space": [42, "Grant access to space 'secret' is denied for user 'boss'"],
        "admin_func": [42, "Grant access to function 'only_this' is denied for user 'boss'"],
    }


def test_function_object_grants_execute_on_exactly_that_function(box: Caller) -> None:
    # fexec: no execute on the universe; execute on the function object only_this.
    assert box.call("only_this", 1, user="fexec") == ["only_this", "fexec", 1]
    denied = (42, "Execute access to function 'not_this' is denied for user 'fexec'")
    assert box.error("not_this", user="fexec") == denied
    assert box.error("box.info", user="fexec") == (
        42, "Execute access to function 'box.info' is denied for user 'fexec'")
    # boss makes a function object for not_this (boss owns it, so may grant).
    assert box.one("funcs", "not_this") == {"before": False, "after": True,
                                            "dup": [52, "Function 'not_this' already exists"],
                                            "dup_ok": None}
    assert box.error("not_this", user="fexec") == denied
    info = box.one("grant_execute", "fexec", "not_this")
    assert ["execute", "function", "not_this"] in info
    assert ["execute", "function", "only_this"] in info
    assert box.call("not_this", 2, user="fexec") == ["not_this", 2]
    assert box.call("revoke_execute", "fexec", "not_this") == []
    assert box.error("not_this", user="fexec") == denied
    assert box.one("drop_func", "not_this") == [
        False, [51, "Function 'not_this' does not exist"], None]
    assert box.error("not_this", user="fexec") == denied
    assert box.call("only_this", user="fexec") == ["only_this", "fexec"]


def test_procedures_run_with_the_callers_rights(box: Caller) -> None:
    """noread may execute procedures, not read or write `secret`: the box calls
    a procedure makes are checked against its caller (Tarantool runs Lua with
    the session's rights)."""
    read_denied = (42, "Read access to space 'secret' is denied for user 'noread'")
    assert box.error("read_space", "secret", user="noread") == read_denied
    assert box.error("get_from", "secret", 1, user="noread") == read_denied
    assert box.error("write_space", "secret", [3], user="noread") == (
        42, "Write access to space 'secret' is denied for user 'noread'")
    code, _ = box.error("create_space_as_caller", "noread_space", user="noread")
    assert code == 42
    assert box.call("whoami", user="noread") == ["noread"]
    # The same procedures as boss (super) work.
    assert box.one("read_space", "secret") == [[1, "a"], [2, "b"]]
    # Granted read (only admin may: admin owns `secret`), noread reads; revoked, denied.
    assert box.call("grant", "noread", "read", "space", "secret", user="admin") == []
    assert box.one("read_space", "secret", user="noread") == [[1, "a"], [2, "b"]]
    assert box.one("get_from", "secret", 2, user="noread") == [2, "b"]
    assert box.error("write_space", "secret", [3], user="noread")[0] == 42
    assert box.call("revoke", "noread", "read", "space", "secret", user="admin") == []
    assert box.error("read_space", "secret", user="noread") == read_denied


# -- box.error ---------------------------------------------------------------------------------


def test_box_error(box: Caller, server: Server) -> None:
    assert box.error("raise_error", 45, "bob") == (45, "User 'bob' is not found")
    assert box.error("raise_named", "NO_SUCH_SPACE", "zzz") == (36, "Space 'zzz' does not exist")
    assert box.error("raise_named", "ACCESS_DENIED", "Read", "space", "s", "u") == (
        42, "Read access to space 's' is denied for user 'u'")
    assert box.error("raise_custom", 1000, "my reason") == (1000, "my reason")
    assert box.one("error_codes") == [45, 42, 36, 3, 32]
    with raw(server.port) as c:
        h, b = c.call("raise_custom", 1001, "typed", "MyError")
        assert h[0] == 0x8000 | 1001
        assert b[ERROR_24] == "typed"
        (entry,) = b[ERROR][0x00]
        assert entry[0x00] == "CustomError"  # a type Tarantool does not define
        assert entry[0x06] == {"custom_type": "MyError"}
        assert (entry[0x03], entry[0x05]) == ("typed", 1001)
        h, b = c.call("raise_error", 45, "bob")
        (entry,) = b[ERROR][0x00]
        assert entry[0x00] == "ClientError" and entry[0x05] == 45
        assert entry[0x01].endswith("api_app.py")  # raised where the app raised it


# -- box.info, box.stat ----------------------------------------------------------------------


def test_box_info(box: Caller, server: Server) -> None:
    r = box.one("info")
    info = r["info"]
    with Raw(server.port) as c:
        greeting_uuid = c.greeting.uuid
    assert info["ro"] is False and r["ro"] is False
    assert info["status"] == "running" and r["status"] == "running"
    assert info["id"] == 1
    assert info["uuid"] == r["uuid"] == greeting_uuid == server.tx.instance_uuid
    assert info["version"] == "3.0.0-styx"  # the version the greeting announces
    assert isinstance(info["uptime"], int) and 0 <= info["uptime"] < 600
    assert info["replication"] == {1: {"id": 1, "uuid": greeting_uuid, "lsn": 0}}
    assert info["schema_version"] == server.tx.schema.version


def _totals(stat: dict[str, Any]) -> dict[str, int]:
    return {k: v["total"] for k, v in stat.items()}


def test_box_stat_counts_requests(box: Caller, server: Server) -> None:
    sid, _ = box.call("make_space", "stat_space")
    with raw(server.port) as c:
        before = _totals(c.call("stat")[1][DATA][0])
        for i in range(3):  # SELECT from secret (512)
            c.request(1, 10 + i, {0x10: 512, 0x11: 0, 0x12: 10, 0x13: 0, 0x14: 0, 0x20: [1]})
            assert c.reply()[1][DATA] == [[1, "a"]]
        for i in range(2):
            c.request(2, 20 + i, {0x10: sid, 0x21: [i, "v"]})
            assert c.reply()[1][DATA] == [[i, "v"]]
        c.request(2, 30, {0x10: sid, 0x21: [0, "dup"]})
        assert c.reply()[0][0] == 0x8000 | 3
        for i in range(2):
            assert c.call("whoami", sync=40 + i)[1][DATA] == ["boss"]
        after = _totals(c.call("stat")[1][DATA][0])
    delta = {k: after[k] - before[k] for k in after}
    assert delta == {**{k: 0 for k in after}, "SELECT": 3, "INSERT": 3, "CALL": 3, "ERROR": 1}


def test_box_stat_net(box: Caller, server: Server) -> None:
    """Tarantool 2.10's shape: each metric with total and rps, and current
    where it has one."""
    stats = box.one("net_stat")
    with_current = {"CONNECTIONS", "REQUESTS", "REQUESTS_IN_PROGRESS", "STREAMS",
                    "REQUESTS_IN_STREAM_QUEUE"}
    assert set(stats) == {"SENT", "RECEIVED"} | with_current
    for metric, fields in stats.items():
        want = {"total", "rps", "current"} if metric in with_current else {"total", "rps"}
        assert set(fields) == want, metric
    assert stats["CONNECTIONS"]["current"] >= 1
    assert stats["REQUESTS"]["current"] == 1  # this call
    assert stats["REQUESTS_IN_PROGRESS"]["current"] == 1  # it runs in a fiber (async def)
    again = box.one("net_stat")
    assert again["REQUESTS"]["total"] > stats["REQUESTS"]["total"]
    assert again["RECEIVED"]["total"] > stats["RECEIVED"]["total"]
    assert again["SENT"]["total"] > stats["SENT"]["total"]


def test_box_stat_counts_box_api_requests(box: Caller) -> None:
    """Tarantool counts box.space.x:select/insert made from Lua in box.stat()
    (box_select, box_process1 collect into the same rmean): a procedure's
    selects and inserts are SELECTs and INSERTs."""
    box.call("make_space", "stat_api")
    before = _totals(box.one("stat"))
    after_select = box.one("api_select", "stat_api", 4)
    after_insert = box.one("api_insert", "stat_api", 1, 3)
    assert after_select == before["SELECT"] + 4
    assert after_insert == before["INSERT"] + 3


# -- schema_version, and connectors following DDL ---------------------------------------------


def test_schema_version_in_reply_headers(box: Caller, server: Server) -> None:
    with raw(server.port) as c:
        h, b = c.call("schema_version")
        v0 = b[DATA][0]
        assert h[SCHEMA_VERSION] == v0 == server.tx.schema.version
        h, b = c.call("make_space", "sv_space")  # a space and its primary key: two DDLs
        sid, v1 = b[DATA]
        assert v1 == v0 + 2 and h[SCHEMA_VERSION] == v1
        h, b = c.call("make_index", "sv_space", "by_v", "v")
        assert b[DATA] == [v1 + 1] and h[SCHEMA_VERSION] == v1 + 1
        c.request(0x40, 7)  # PING carries it too
        h, _ = c.reply()
        assert h[SCHEMA_VERSION] == v1 + 1
        # Data, functions and grants: no schema change (as 2.6).
        c.request(2, 8, {0x10: sid, 0x21: [1, "x"]})
        assert c.reply()[0][SCHEMA_VERSION] == v1 + 1
        for name, *args in (("funcs", "sv_func"), ("grant_execute", "noread", "sv_func"),
                            ("drop_func", "sv_func")):
            h, b = c.call(name, *args)
            assert h[0] == 0 and h[SCHEMA_VERSION] == v1 + 1, b
        # A request made against the old version is refused (109) and changes nothing.
        c.request(2, 9, {0x10: sid, 0x21: [2, "y"]}, k5=v1)
        h, b = c.reply()
        assert h[0] == 0x8000 | 109 and h[SCHEMA_VERSION] == v1 + 1
        # (2.6 fills the message's two numbers in this swapped order)
        assert b[ERROR_24] == f"Wrong schema version, current: {v1}, in request: {v1 + 1}"
        c.request(1, 10, {0x10: sid, 0x11: 0, 0x12: 10, 0x13: 0, 0x14: 2, 0x20: []})
        assert c.reply()[1][DATA] == [[1, "x"]]
        h, b = c.call("drop_space", "sv_space")
        assert b[DATA][0] > v1 + 1 and h[SCHEMA_VERSION] == b[DATA][0]
        assert b[DATA][0] == server.tx.schema.version


def test_schema_version_moves_with_space_and_index_ddl_only(box: Caller) -> None:
    r = box.one("ddl_versions", "dv")
    dropped = r.pop("space_drop")
    # Measured on 2.6 with the same Lua calls.
    assert r == {"space_create": 1, "index_create": 1, "index2_create": 1, "insert": 0,
                 "index_alter": 1, "rename": 1, "format": 1, "index_drop": 1, "truncate": 0,
                 "user_create": 0, "grant": 0, "func_create": 0}
    assert dropped >= 1  # 2.6: one per index dropped with the space, and one for the space


def test_asynctnt_follows_ddl(box: Caller, server: Server) -> None:
    async def main() -> dict[str, Any]:
        conn = asynctnt.Connection(host="127.0.0.1", port=server.port, username="boss",
                                   password="pw", connect_timeout=10)
        await conn.connect()
        out: dict[str, Any] = {}
        try:
            out["before"] = "at_space" in conn.schema.spaces
            made = (await conn.call("make_space", ["at_space"])).body
            out["made_version"] = made[1]
            # asynctnt sees the new schema_version and refetches the schema.
            for _ in range(100):
                if "at_space" in conn.schema.spaces:
                    break
                await conn.ping()
                await asyncio.sleep(0.01)
            out["seen"] = "at_space" in conn.schema.spaces
            out["schema_id"] = conn.schema_id
            out["insert"] = (await conn.insert("at_space", [1, "one"])).body[0]["v"]
            await conn.insert("at_space", {"id": 2, "v": "two"})
            out["select"] = [list(t) for t in (await conn.select("at_space", [])).body]
            await conn.call("make_index", ["at_space", "by_v", "v"])
            for _ in range(100):
                sp = conn.schema.spaces.get("at_space") if hasattr(conn.schema.spaces, "get") \
                    else None
                if sp is not None and "by_v" in sp.indexes:
                    break
                await conn.ping()
                await asyncio.sleep(0.01)
            out["by_v"] = [list(t) for t in
                           (await conn.select("at_space", ["two"], index="by_v")).body]
            out["dropped_version"] = (await conn.call("drop_space", ["at_space"])).body[0]
            for _ in range(100):
                if "at_space" not in conn.schema.spaces:
                    break
                await conn.ping()
                await asyncio.sleep(0.01)
            out["gone"] = "at_space" not in conn.schema.spaces
            out["schema_id_after_drop"] = conn.schema_id
        finally:
            await conn.disconnect()
        return out

    r = asyncio.run(asyncio.wait_for(main(), 30))
    assert r["before"] is False
    assert r["seen"] is True and r["schema_id"] == r["made_version"]
    assert r["insert"] == "one"
    assert r["select"] == [[1, "one"], [2, "two"]]
    assert r["by_v"] == [[2, "two"]]
    assert r["gone"] is True
    assert r["schema_id_after_drop"] == r["dropped_version"] == server.tx.schema.version


def test_tarantool_python_resolves_names_after_ddl(box: Caller, server: Server) -> None:
    """tarantool-python with its schema (fetch_schema=True) looks a name it has
    not cached up in _vspace/_vindex: spaces and indexes made by another
    connection after it connected resolve."""
    conn = tarantool.Connection("127.0.0.1", server.port, user="boss", password="pw",
                                connection_timeout=10)
    try:
        assert conn.select("secret", [1]).data == [[1, "a"]]
        box.call("make_space", "tp_space")  # another connection
        assert conn.insert("tp_space", [1, "x"]).data == [[1, "x"]]
        assert conn.select("tp_space", []).data == [[1, "x"]]
        box.call("make_index", "tp_space", "by_v", "v")
        assert conn.select("tp_space", ["x"], index="by_v").data == [[1, "x"]]
        assert conn.space("tp_space").select([1]).data == [[1, "x"]]
    finally:
        conn.close()


def test_netbox_follows_ddl(box: Caller, server: Server, tarantool_bin: str) -> None:
    proc = subprocess.run([tarantool_bin, str(NETBOX), "api_ddl", str(server.port), "nb_space"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, f"net.box script failed:\n{proc.stdout}\n{proc.stderr}"
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    assert r["state"] == "active"
    assert r["before"] is False
    assert r["seen"] is True and r["space_id"] == r["made_id"]
    assert r["schema_version_after_create"] == r["made_version"]
    assert r["index_pk"] is True
    assert r["insert"] == [1, "one"] and r["insert2"] == [2, "two"]
    assert r["select"] == [[1, "one"], [2, "two"]]
    assert r["get"] == [2, "two"]
    assert r["index_version"] == r["made_version"] + 1
    assert r["schema_version_after_index"] == r["index_version"]
    assert r["byv_id"] == 1 and r["byv_select"] == [[2, "two"]]
    assert r["gone"] is True
    assert r["schema_version_after_drop"] == r["drop_version"] > r["index_version"]
