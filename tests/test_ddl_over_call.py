"""Tarantool's Lua API over IPROTO_CALL (styx/tx/builtins.py), as Tarantool
users drive a server: `conn.call("box.schema.space.create", ...)`,
`conn.call("box.space.x:insert", ...)`, `conn.call("box.info")`.

Every test runs the same CALLs against Styx (tests/apps/ddl_app.py) and
against Debian's Tarantool 2.6 (tests/lua/tarantool_server.lua `ddl`): no
spaces, `boss`/`pw` with the role `super` (admin has no password), guest with
its default grants only. Expected values are Tarantool's: each test asserts
that Tarantool gives them (so the expectations are checked, not guessed) and
that Styx gives them too. Where Styx differs on purpose, the step says so
(`styx=`), with why.

- STEPS: one scripted session of DDL, DML, users and roles through
  tarantool-python, run once per server (a module fixture); each step is its
  own test, so one difference does not hide the next.
- box.info, box.stat (counts growing with requests), box.stat.net.
- guest, without execute on the universe, gets 42 for every builtin.
- net.box (tests/lua/netbox_ddl.lua `builtins`): the same calls through
  Tarantool's own connector, including how many values a call returns.

Failing when written (Styx differs from 2.6; the tests assert 2.6's answers):
- get/update/delete/min/max finding nothing return one nil (DATA [null]);
  Lua returns no values (DATA []): steps get_missing, update_missing,
  delete_missing, min_key_missing; test_netbox_missing_keys_return_no_values.
- min/max with a key are bounds (GE/LE), not EQ/REQ: min_key_between,
  max_key_between.
- a missing space or index in the name is 36/148, not 33 "Procedure ... is
  not defined": old_name, unknown_index, dropped; test_netbox_after_drop.
- box.schema.role.info is missing (33): role_info.
- box.schema.user.info: grants in creation order, not _priv's (grantee,
  object type, object id) order; 'all' instead of the privilege names:
  user_info, user_info_role, super_info; test_netbox_users.
- grant(user, 'frob', 'universe') is taken as a role grant (82), not 98.
- select with a bare iterator string as options ("GT") is refused (1);
  an unknown iterator is 1, not 72.
- create_index(if_not_exists) of an existing index: one value, not two
  (the index and 'not created').
- format() contradicting an index part type is accepted, not 27.
- a space created without an id gets max(id)+1, past explicit ids; 2.6 takes
  _schema.max_id + 1 (test_auto_space_id_after_explicit_ids).
- box.stat() does not count the selects/inserts builtins make.
- guest calling an undefined function gets 33, not 42 (2.6 checks execute
  on the universe first): test_guest_without_execute_is_denied[no_such_function].
- box.stat.net() has Styx's own flat shape, not 2.6's SENT/RECEIVED/
  CONNECTIONS/REQUESTS.
Deliberate differences (tests/deliberate.py), asserted as such:
box.schema.space.create returns the space's description (2.6 fails to encode
the space object, error 32); auth failures are 47 with 2.11's message.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import tarantool

from styx import Config, Server
from tests.iproto import Raw
from tests.oracle import tarantool_server

HERE = Path(__file__).parent
APP = str(HERE / "apps" / "ddl_app.py")
NETBOX = HERE / "lua" / "netbox_ddl.lua"


# -- servers and connections ---------------------------------------------------------


@pytest.fixture(scope="module")
def styx_port() -> Iterator[int]:
    server = Server(Config(listen="127.0.0.1:0", app=APP)).start()
    try:
        yield server.port
    finally:
        server.stop()


@pytest.fixture(scope="module")
def tnt_port(tarantool_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with tarantool_server(tarantool_bin, "ddl", tmp_path_factory.mktemp("tnt_ddl")) as port:
        yield port


class Conn:
    """tarantool-python; `call` returns ('ok', data) or ('err', code, message)."""

    def __init__(self, port: int, user: str | None = "boss", password: str = "pw") -> None:
        kw: dict[str, Any] = {"user": user, "password": password} if user else {}
        self.c = tarantool.Connection("127.0.0.1", port, fetch_schema=False,
                                      connection_timeout=10, **kw)

    def call(self, name: str, *args: Any) -> tuple[Any, ...]:
        try:
            return ("ok", self.c.call(name, list(args)).data)
        except tarantool.error.DatabaseError as e:
            return ("err", e.args[0], e.args[1])

    def close(self) -> None:
        self.c.close()


def both(styx_port: int, tnt_port: int, fn: Any) -> tuple[Any, Any]:
    """fn(Conn) on Styx and on Tarantool, each with its own boss connection."""
    out = []
    for port in (styx_port, tnt_port):
        c = Conn(port)
        try:
            out.append(fn(c))
        finally:
            c.close()
    return out[0], out[1]


# -- one scripted session -----------------------------------------------------------------


class Step(NamedTuple):
    id: str
    fn: str
    args: list[Any]
    expected: tuple[Any, ...]  # Tarantool 2.6's outcome
    styx: tuple[Any, ...] | None = None  # Styx's, where it differs on purpose


def ok(*values: Any) -> tuple[Any, ...]:
    return ("ok", list(values))


def err(code: int, message: str) -> tuple[Any, ...]:
    return ("err", code, message)


FMT = [{"name": "id", "type": "unsigned"}, {"name": "v", "type": "string"}]
PK = {"unique": True, "parts": [{"type": "unsigned", "is_nullable": False, "fieldno": 1}],
      "id": 0, "space_id": 1000, "type": "TREE", "name": "pk"}
SEC = {"unique": False, "parts": [{"type": "string", "is_nullable": False, "fieldno": 2}],
       "id": 1, "space_id": 1000, "type": "TREE", "name": "sec"}
HID = {"unique": True, "parts": [{"type": "unsigned", "is_nullable": False, "fieldno": 1}],
       "id": 2, "space_id": 1000, "type": "HASH", "name": "hid"}
SPACE_INFO = {"id": 1000, "name": "dx", "engine": "memtx", "field_count": 0,
              "temporary": False, "is_local": False, "enabled": False}
UNSUPPORTED_FUNCTION = err(32, "unsupported Lua type 'function'")

STEPS = [
    # box.schema.space.create returns a space object: Tarantool creates the
    # space, then fails to encode the object (its methods are functions). Styx
    # returns the space's description instead (documented in builtins.py).
    Step("space_create", "box.schema.space.create", ["dx", {"format": FMT, "id": 1000}],
         UNSUPPORTED_FUNCTION, styx=ok(SPACE_INFO)),
    Step("space_create_if_not_exists", "box.schema.space.create",
         ["dx", {"if_not_exists": True}], UNSUPPORTED_FUNCTION, styx=ok(SPACE_INFO)),
    Step("space_create_dup", "box.schema.space.create", ["dx"],
         err(10, "Space 'dx' already exists")),
    Step("space_create_pairs", "box.schema.space.create",
         ["dy", {"format": [["id", "unsigned"], ["n", "integer"]], "id": 1001,
                 "field_count": 2, "temporary": True}],
         UNSUPPORTED_FUNCTION,
         styx=ok({"id": 1001, "name": "dy", "engine": "memtx", "field_count": 2,
                  "temporary": True, "is_local": False, "enabled": False})),
    Step("space_format_pairs", "box.space.dy:format", [],
         ok([{"name": "id", "type": "unsigned"}, {"name": "n", "type": "integer"}])),
    Step("pk", "box.space.dx:create_index", ["pk", {"parts": ["id"]}], ok(PK)),
    Step("sec", "box.space.dx:create_index",
         ["sec", {"parts": [[2, "string"]], "unique": False}], ok(SEC)),
    Step("hash", "box.space.dx:create_index",
         ["hid", {"type": "HASH", "parts": [1, "unsigned"]}], ok(HID)),
    Step("index_dup", "box.space.dx:create_index", ["sec"], err(85, "Index 'sec' already exists")),
    # Lua's create_index returns two values when the index exists.
    Step("index_if_not_exists", "box.space.dx:create_index", ["sec", {"if_not_exists": True}],
         ok(SEC, "not created")),
    Step("hash_not_unique", "box.space.dx:create_index",
         ["h2", {"type": "HASH", "parts": [2, "string"], "unique": False}],
         err(14, "Can't create or modify index 'h2' in space 'dx': HASH index must be unique")),
    Step("insert1", "box.space.dx:insert", [[1, "a"]], ok([1, "a"])),
    Step("insert2", "box.space.dx:insert", [[2, "b"]], ok([2, "b"])),
    Step("insert3", "box.space.dx:insert", [[3, "b"]], ok([3, "b"])),
    Step("insert_dup", "box.space.dx:insert", [[1, "z"]],
         err(3, "Duplicate key exists in unique index 'pk' in space 'dx'")),
    Step("insert_bad_type", "box.space.dx:insert", [["1", "z"]],
         err(23, "Tuple field 1 type does not match one required by operation: expected unsigned")),
    Step("replace", "box.space.dx:replace", [[4, "c"]], ok([4, "c"])),
    Step("put", "box.space.dx:put", [[5, "c"]], ok([5, "c"])),
    Step("get", "box.space.dx:get", [[1]], ok([1, "a"])),
    Step("get_scalar_key", "box.space.dx:get", [2], ok([2, "b"])),
    # Lua's get returns nothing for a missing key: no values at all.
    Step("get_missing", "box.space.dx:get", [[99]], ok()),
    Step("get_hash", "box.space.dx.index.hid:get", [[3]], ok([3, "b"])),
    Step("get_non_unique", "box.space.dx.index.sec:get", [["b"]],
         err(41, "Get() doesn't support partial keys and non-unique indexes")),
    Step("select_all", "box.space.dx:select", [],
         ok([[1, "a"], [2, "b"], [3, "b"], [4, "c"], [5, "c"]])),
    Step("select_eq", "box.space.dx:select", [[3]], ok([[3, "b"]])),
    Step("select_ge_limit_offset", "box.space.dx:select",
         [[2], {"iterator": "GE", "limit": 2, "offset": 1}], ok([[3, "b"], [4, "c"]])),
    Step("select_iterator_number", "box.space.dx:select", [[3], {"iterator": 4}],
         ok([[3, "b"], [2, "b"], [1, "a"]])),
    Step("select_iterator_lower", "box.space.dx:select", [[3], {"iterator": "lt"}],
         ok([[2, "b"], [1, "a"]])),
    Step("select_nil_key", "box.space.dx:select", [None, {"iterator": "REQ", "limit": 2}],
         ok([[5, "c"], [4, "c"]])),
    # Lua's select takes a bare iterator name as its options.
    Step("select_iterator_string", "box.space.dx:select", [[4], "GT"], ok([[5, "c"]])),
    Step("select_unknown_iterator", "box.space.dx:select", [[1], {"iterator": "SIDEWAYS"}],
         err(72, "Unknown iterator type 'SIDEWAYS'")),
    Step("index_select", "box.space.dx.index.sec:select", [["b"]], ok([[2, "b"], [3, "b"]])),
    Step("index_select_opts", "box.space.dx.index.sec:select", [["b"], {"iterator": "GT"}],
         ok([[4, "c"], [5, "c"]])),
    Step("hash_select_all", "box.space.dx.index.hid:select", [[], {"iterator": "ALL"}],
         ok([[1, "a"], [2, "b"], [3, "b"], [4, "c"], [5, "c"]])),
    Step("count", "box.space.dx:count", [], ok(5)),
    Step("count_key_iterator", "box.space.dx:count", [[2], {"iterator": "GT"}], ok(3)),
    Step("index_count", "box.space.dx.index.sec:count", [["c"]], ok(2)),
    Step("len", "box.space.dx:len", [], ok(5)),
    Step("index_len", "box.space.dx.index.sec:len", [], ok(5)),
    Step("min", "box.space.dx.index.pk:min", [], ok([1, "a"])),
    Step("max", "box.space.dx.index.pk:max", [], ok([5, "c"])),
    Step("index_max", "box.space.dx.index.sec:max", [], ok([5, "c"])),
    Step("min_key_missing", "box.space.dx.index.pk:min", [[6]], ok()),
    # A key selects the tuples equal to it (EQ for min, REQ for max), not a bound.
    Step("min_key_between", "box.space.dx.index.sec:min", [["bb"]], ok()),
    Step("max_key_between", "box.space.dx.index.sec:max", [["bb"]], ok()),
    Step("max_key_partial", "box.space.dx.index.sec:max", [["b"]], ok([3, "b"])),
    Step("update_number", "box.space.dx:update", [[1], [["=", 2, "A"]]], ok([1, "A"])),
    Step("update_name", "box.space.dx:update", [[2], [["=", "v", "B"]]], ok([2, "B"])),
    Step("update_missing", "box.space.dx:update", [[99], [["=", 2, "x"]]], ok()),
    Step("update_pk", "box.space.dx:update", [[1], [["=", 1, 7]]],
         err(94, "Attempt to modify a tuple field which is part of index 'pk' in space 'dx'")),
    Step("index_update", "box.space.dx.index.hid:update", [[3], [["=", 2, "C"]]], ok([3, "C"])),
    Step("upsert_insert", "box.space.dx:upsert", [[6, "u"], [["=", 2, "w"]]], ok()),
    Step("upsert_update", "box.space.dx:upsert", [[6, "u"], [["=", 2, "w"]]], ok()),
    Step("after_upsert", "box.space.dx:get", [[6]], ok([6, "w"])),
    Step("delete", "box.space.dx:delete", [[5]], ok([5, "c"])),
    Step("delete_missing", "box.space.dx:delete", [[5]], ok()),
    Step("index_delete", "box.space.dx.index.hid:delete", [[4]], ok([4, "c"])),
    Step("after_dml", "box.space.dx:select", [], ok([[1, "A"], [2, "B"], [3, "C"], [6, "w"]])),
    Step("index_alter", "box.space.dx.index.sec:alter", [{"name": "by_v"}], ok()),
    Step("index_renamed", "box.space.dx.index.by_v:select", [["C"]], ok([[3, "C"]])),
    Step("index_drop", "box.space.dx.index.hid:drop", [], ok()),
    Step("index_dropped_count", "box.space.dx.index.pk:count", [], ok(4)),
    Step("pk_drop_with_secondary", "box.space.dx.index.pk:drop", [],
         err(17, "Can't drop primary key in space 'dx' while secondary keys exist")),
    Step("format", "box.space.dx:format", [], ok(FMT)),
    Step("format_set", "box.space.dx:format",
         [[*FMT, {"name": "extra", "type": "unsigned", "is_nullable": True}]], ok()),
    Step("format_bad", "box.space.dx:format", [[{"name": "id", "type": "string"}]],
         err(27, "Field 1 has type 'string' in space format, but type 'unsigned' in index "
                 "definition")),
    Step("rename", "box.space.dx:rename", ["dz"], ok()),
    Step("renamed_len", "box.space.dz:len", [], ok(4)),
    Step("unknown_method", "box.space.dz:frob", [],
         err(33, "Procedure 'box.space.dz:frob' is not defined")),
    # box.space.dx is nil once renamed: there is no such function to call.
    Step("old_name", "box.space.dx:select", [],
         err(33, "Procedure 'box.space.dx:select' is not defined")),
    Step("unknown_index", "box.space.dz.index.nope:select", [],
         err(33, "Procedure 'box.space.dz.index.nope:select' is not defined")),
    Step("truncate", "box.space.dz:truncate", [], ok()),
    Step("len_truncated", "box.space.dz:len", [], ok(0)),
    Step("drop", "box.space.dz:drop", [], ok()),
    Step("dropped", "box.space.dz:select", [],
         err(33, "Procedure 'box.space.dz:select' is not defined")),
    Step("drop_dy", "box.space.dy:drop", [], ok()),
    # Users and roles.
    Step("user_create", "box.schema.user.create", ["ux", {"password": "p1"}], ok()),
    Step("user_create_dup", "box.schema.user.create", ["ux"], err(46, "User 'ux' already exists")),
    Step("user_create_if_not_exists", "box.schema.user.create",
         ["ux", {"password": "p1", "if_not_exists": True}], ok()),
    Step("user_exists", "box.schema.user.exists", ["ux"], ok(True)),
    Step("user_exists_not", "box.schema.user.exists", ["nobody"], ok(False)),
    Step("space_for_grants", "box.schema.space.create", ["gx", {"id": 1002}],
         UNSUPPORTED_FUNCTION,
         styx=ok({"id": 1002, "name": "gx", "engine": "memtx", "field_count": 0,
                  "temporary": False, "is_local": False, "enabled": False})),
    Step("grant_space", "box.schema.user.grant", ["ux", "read,write", "space", "gx"], ok()),
    Step("grant_dup", "box.schema.user.grant", ["ux", "read", "space", "gx"],
         err(89, "User 'ux' already has read access on space 'gx'")),
    Step("grant_if_not_exists", "box.schema.user.grant",
         ["ux", "read", "space", "gx", {"if_not_exists": True}], ok()),
    Step("grant_universe_not_admin", "box.schema.user.grant", ["ux", "read", "universe"],
         err(42, "Grant access to universe '' is denied for user 'boss'")),
    Step("grant_unknown_privilege", "box.schema.user.grant", ["ux", "frob", "universe"],
         err(98, "Unsupported universe privilege 'frob'")),
    Step("grant_no_space", "box.schema.user.grant", ["ux", "read", "space", "nosuch"],
         err(36, "Space 'nosuch' does not exist")),
    Step("grant_no_user", "box.schema.user.grant", ["nobody", "read", "space", "gx"],
         err(45, "User 'nobody' is not found")),
    # _priv order: by grantee, then object type, then object id.
    Step("user_info", "box.schema.user.info", ["ux"],
         ok([["execute", "role", "public"], ["read,write", "space", "gx"],
             ["session,usage", "universe", ""], ["alter", "user", "ux"]])),
    Step("revoke", "box.schema.user.revoke", ["ux", "write", "space", "gx"], ok()),
    Step("revoke_again", "box.schema.user.revoke", ["ux", "write", "space", "gx"],
         err(91, "User 'ux' does not have write access on space 'gx'")),
    Step("revoke_if_exists", "box.schema.user.revoke",
         ["ux", "write", "space", "gx", {"if_exists": True}], ok()),
    Step("role_create", "box.schema.role.create", ["rx"], ok()),
    Step("role_create_dup", "box.schema.role.create", ["rx"], err(83, "Role 'rx' already exists")),
    Step("role_exists", "box.schema.role.exists", ["rx"], ok(True)),
    Step("role_is_not_user", "box.schema.user.exists", ["rx"], ok(False)),
    Step("role_grant", "box.schema.role.grant", ["rx", "write", "space", "gx"], ok()),
    Step("grant_role", "box.schema.user.grant", ["ux", "rx"], ok()),
    Step("grant_role_dup", "box.schema.user.grant", ["ux", "execute", "role", "rx"],
         err(90, "User 'ux' already has role 'rx'")),
    Step("role_info", "box.schema.role.info", ["rx"], ok([["write", "space", "gx"]])),
    Step("user_info_role", "box.schema.user.info", ["ux"],
         ok([["execute", "role", "public"], ["execute", "role", "rx"], ["read", "space", "gx"],
             ["session,usage", "universe", ""], ["alter", "user", "ux"]])),
    Step("user_info_missing", "box.schema.user.info", ["nobody"],
         err(45, "User 'nobody' is not found")),
    Step("guest_info", "box.schema.user.info", ["guest"],
         ok([["execute", "role", "public"], ["session,usage", "universe", ""]])),
    Step("super_info", "box.schema.user.info", ["admin"],
         ok([["read,write,execute,session,usage,create,drop,alter,reference,trigger,insert,"
              "update,delete", "universe", ""]])),
    Step("revoke_role", "box.schema.user.revoke", ["ux", "rx"], ok()),
    Step("role_drop", "box.schema.role.drop", ["rx"], ok()),
    Step("role_drop_missing", "box.schema.role.drop", ["rx"], err(82, "Role 'rx' is not found")),
    Step("func_create", "box.schema.func.create", ["fx"], ok()),
    Step("func_create_dup", "box.schema.func.create", ["fx"],
         err(52, "Function 'fx' already exists")),
    Step("func_exists", "box.schema.func.exists", ["fx"], ok(True)),
    Step("func_drop", "box.schema.func.drop", ["fx"], ok()),
    Step("func_drop_missing", "box.schema.func.drop", ["fx"],
         err(51, "Function 'fx' does not exist")),
    Step("session_user", "box.session.user", [], ok("boss")),
]


@pytest.fixture(scope="module")
def step_results(styx_port: int, tnt_port: int) -> tuple[dict[str, Any], dict[str, Any]]:
    def run(c: Conn) -> dict[str, Any]:
        return {s.id: c.call(s.fn, *s.args) for s in STEPS}

    return both(styx_port, tnt_port, run)


@pytest.mark.parametrize("step", STEPS, ids=[s.id for s in STEPS])
def test_step(step: Step, step_results: tuple[dict[str, Any], dict[str, Any]]) -> None:
    styx, tnt = step_results
    assert tnt[step.id] == step.expected, "Tarantool 2.6 (the expectation is wrong)"
    assert styx[step.id] == (step.styx or step.expected)


def test_passwd_then_auth_with_the_new_password(styx_port: int, tnt_port: int) -> None:
    def auth(port: int, user: str, password: str) -> int:
        with Raw(port) as r:
            return r.auth(user, password)[0][0] & 0x7FFF

    for port in (tnt_port, styx_port):
        boss = Conn(port)
        try:
            assert boss.call("box.schema.user.create", "pw_user", {"password": "old"}) == ok()
            assert auth(port, "pw_user", "old") == 0
            assert boss.call("box.schema.user.passwd", "pw_user", "new") == ok()
            assert auth(port, "pw_user", "new") == 0
            # 2.6: ER_PASSWORD_MISMATCH (47); Styx 47 too, with 2.11's message.
            assert auth(port, "pw_user", "old") == 47
            assert boss.call("box.schema.user.drop", "pw_user") == ok()
            # 2.6: 45 (no such user); Styx 47, as 2.11 (README).
            assert auth(port, "pw_user", "new") == (45 if port == tnt_port else 47)
        finally:
            boss.close()


def test_auto_space_id_after_explicit_ids(styx_port: int, tnt_port: int) -> None:
    """Tarantool numbers a space created without an id from _schema.max_id,
    which explicit ids (1000.., 2000) do not move: it does not jump past them."""
    out = []
    for port in (styx_port, tnt_port):
        with Raw(port) as r:
            assert r.auth("boss", "pw")[0][0] == 0
            r.call("box.schema.space.create", "explicit_id", {"id": 2000})
            r.call("box.schema.space.create", "auto_id")
            r.request(1, 5, {0x10: 281, 0x11: 2, 0x12: 1, 0x13: 0, 0x14: 0, 0x20: ["auto_id"]})
            out.append(r.reply()[1][0x30][0][0])
            r.call("box.space.auto_id:drop")
            r.call("box.space.explicit_id:drop")
    styx, tnt = out
    assert 512 <= tnt < 1000
    assert styx == tnt


# -- box.info, box.stat, box.stat.net ------------------------------------------------------


def test_box_info(styx_port: int, tnt_port: int) -> None:
    for port in (styx_port, tnt_port):
        c = Conn(port)
        try:
            (info,) = c.call("box.info")[1]
        finally:
            c.close()
        with Raw(port) as r:
            greeting_uuid, greeting_version = r.greeting.uuid, r.greeting.version
        assert info["ro"] is False
        assert info["status"] == "running"
        assert info["id"] == 1
        assert isinstance(info["uptime"], int) and 0 <= info["uptime"] < 600
        # the version the greeting names (Tarantool 2.6.x; Styx 3.0.0-styx)
        assert isinstance(info["version"], str)
        assert info["version"].startswith("{}.{}.{}".format(*greeting_version[:3]))
        assert len(info["uuid"]) == 36 and info["uuid"] == greeting_uuid
        assert info["replication"][1]["uuid"] == info["uuid"]
        assert isinstance(info["cluster"]["uuid"], str)


def _stat_totals(c: Conn) -> dict[str, int]:
    (stat,) = c.call("box.stat")[1]
    return {k: stat[k]["total"] for k in ("SELECT", "INSERT", "CALL", "AUTH", "ERROR")}


def _raw_stat(r: Raw) -> dict[str, int]:
    h, b = r.call("box.stat", sync=9)
    stat = b[0x30][0]
    return {k: stat[k]["total"] for k in ("SELECT", "INSERT", "CALL", "AUTH", "ERROR")}


def test_box_stat_counts_wire_requests(styx_port: int, tnt_port: int) -> None:
    """Raw SELECT and INSERT requests, CALLs, AUTH, an error: each counted once."""
    out = []
    for port in (styx_port, tnt_port):
        with Raw(port) as r:
            assert r.auth("boss", "pw")[0][0] == 0
            r.call("box.schema.space.create", "st1", {"id": 1010})
            r.call("box.space.st1:create_index", "pk")
            before = _raw_stat(r)
            for i in range(5):
                r.request(2, 100 + i, {0x10: 1010, 0x21: [i]})  # INSERT
                assert r.reply()[0][0] == 0
            for i in range(7):
                r.request(1, 200 + i, {0x10: 1010, 0x11: 0, 0x12: 10, 0x13: 0, 0x14: 0,
                                       0x20: [i]})  # SELECT
                assert r.reply()[1][0x30] == ([[i]] if i < 5 else [])
            assert r.auth("boss", "pw")[0][0] == 0
            assert r.call("no_such_function")[0][0] == 0x8000 | 33
            after = _raw_stat(r)
            r.call("box.space.st1:drop")
        out.append({k: after[k] - before[k] for k in after})
    styx, tnt = out
    # The second box.stat CALL counts itself; one error.
    assert tnt == {"SELECT": 7, "INSERT": 5, "CALL": 2, "AUTH": 1, "ERROR": 1}
    assert styx == tnt


def test_box_stat_counts_requests_made_by_builtins(styx_port: int, tnt_port: int) -> None:
    """Tarantool counts box.space.x:select/insert wherever they run (box_select,
    box_process1): a CALL of `box.space.st2:select` is a CALL and a SELECT."""
    def run(c: Conn) -> dict[str, int]:
        c.call("box.schema.space.create", "st2", {"id": 1011})
        c.call("box.space.st2:create_index", "pk")
        before = _stat_totals(c)
        for i in range(4):
            c.call("box.space.st2:insert", [i])
        for i in range(3):
            c.call("box.space.st2:select", [i])
        after = _stat_totals(c)
        c.call("box.space.st2:drop")
        return {k: after[k] - before[k] for k in after}

    styx, tnt = both(styx_port, tnt_port, run)
    assert tnt == {"SELECT": 3, "INSERT": 4, "CALL": 8, "AUTH": 0, "ERROR": 0}
    assert styx == tnt


def test_box_stat_shape(styx_port: int, tnt_port: int) -> None:
    styx, tnt = both(styx_port, tnt_port, lambda c: c.call("box.stat")[1][0])
    names = {"SELECT", "INSERT", "REPLACE", "UPDATE", "DELETE", "UPSERT", "CALL", "EVAL",
             "AUTH", "ERROR", "EXECUTE", "PREPARE"}
    assert names == set(tnt)
    assert names <= set(styx)  # Styx adds BEGIN, COMMIT, ROLLBACK (as later Tarantools)
    for stat in (styx, tnt):
        for v in stat.values():
            assert set(v) == {"total", "rps"}
            assert v["total"] >= 0 and v["rps"] >= 0


def test_box_stat_net_shape(styx_port: int, tnt_port: int) -> None:
    """box.stat.net() in 2.6: SENT, RECEIVED {total, rps}; CONNECTIONS,
    REQUESTS {current, rps, total}."""
    styx, tnt = both(styx_port, tnt_port, lambda c: c.call("box.stat.net"))
    for got in (tnt, styx):
        assert got[0] == "ok"
        (stat,) = got[1]
        # 2.6's four metrics; Styx (as 2.10+) also has REQUESTS_IN_PROGRESS,
        # STREAMS and REQUESTS_IN_STREAM_QUEUE.
        extra = {"REQUESTS_IN_PROGRESS", "STREAMS", "REQUESTS_IN_STREAM_QUEUE"}
        assert set(stat) - extra == {"SENT", "RECEIVED", "CONNECTIONS", "REQUESTS"}, stat
        assert set(stat) & extra in (set(), extra)
        assert set(stat["SENT"]) == set(stat["RECEIVED"]) == {"total", "rps"}
        assert set(stat["CONNECTIONS"]) == set(stat["REQUESTS"]) == {"current", "rps", "total"}
        assert stat["CONNECTIONS"]["current"] >= 1
        assert stat["REQUESTS"]["current"] >= 1  # this very CALL
        assert stat["SENT"]["total"] > 0 and stat["RECEIVED"]["total"] > 0


# -- guest -----------------------------------------------------------------------------------

GUEST_CALLS = [
    ("box.schema.space.create", ["g"]),
    ("box.space._space:select", [[280]]),
    ("box.space.nosuch:select", []),
    ("box.info", []),
    ("box.stat", []),
    ("box.stat.net", []),
    ("box.schema.user.create", ["g"]),
    ("box.schema.user.grant", ["guest", "read", "universe"]),
    ("box.schema.role.create", ["g"]),
    ("box.schema.func.create", ["g"]),
    ("box.session.user", []),
    # 2.6 checks execute before looking the function up: guest cannot learn
    # which names exist.
    ("no_such_function", []),
]


@pytest.mark.parametrize("name,args", GUEST_CALLS, ids=[n for n, _ in GUEST_CALLS])
def test_guest_without_execute_is_denied(styx_port: int, tnt_port: int, name: str,
                                         args: list[Any]) -> None:
    expected = ("err", 42, f"Execute access to function '{name}' is denied for user 'guest'")
    for port in (tnt_port, styx_port):
        c = Conn(port, user=None)
        try:
            assert c.call(name, *args) == expected, port
        finally:
            c.close()


def test_guest_may_call_user_info(styx_port: int, tnt_port: int) -> None:
    """public has execute on box.schema.user.info (a _func object), so guest may."""
    for port in (tnt_port, styx_port):
        c = Conn(port, user=None)
        try:
            assert c.call("box.schema.user.info", "guest") == \
                ok([["execute", "role", "public"], ["session,usage", "universe", ""]])
        finally:
            c.close()


# -- net.box -------------------------------------------------------------------------------


def netbox(tarantool_bin: str, scenario: str, port: int) -> dict[str, Any]:
    proc = subprocess.run([tarantool_bin, str(NETBOX), scenario, str(port)],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, f"net.box script failed:\n{proc.stdout}\n{proc.stderr}"
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert len(lines) == 1, proc.stdout
    return json.loads(lines[0])


@pytest.fixture(scope="module")
def netbox_runs(tarantool_bin: str, styx_port: int, tnt_port: int) -> tuple[dict, dict]:
    return netbox(tarantool_bin, "builtins", styx_port), netbox(tarantool_bin, "builtins", tnt_port)


def _values(*v: Any) -> dict[str, Any]:
    return {"ok": True, "n": len(v), "values": list(v)}


def test_netbox_ddl_and_dml(netbox_runs: tuple[dict, dict]) -> None:
    styx, tnt = netbox_runs
    nb_pk = {"unique": True, "parts": [{"fieldno": 1, "is_nullable": False, "type": "unsigned"}],
             "id": 0, "type": "TREE", "name": "pk", "space_id": 1500}
    expected = {
        "state": "active",
        "create_again": {"ok": False, "code": 10, "message": "Space 'nb' already exists"},
        "pk": _values(nb_pk),
        "insert1": _values([1, "a"]),
        "insert3": _values([3, "b"]),
        "insert_dup": {"ok": False, "code": 3,
                       "message": "Duplicate key exists in unique index 'pk' in space 'nb'"},
        "get": _values([1, "a"]),
        "select_all": _values([[1, "a"], [2, "b"], [3, "b"]]),
        "select_opts": _values([[2, "b"]]),
        "select_sec": _values([[2, "b"], [3, "b"]]),
        "count": _values(3),
        "count_sec": _values(2),
        "len": _values(3),
        "update": _values([1, "A"]),
        "upsert": _values(),
        "delete": _values([2, "b"]),
        "min": _values([1, "A"]),
        "max": _values([4, "d"]),
        "after": _values([[1, "A"], [3, "b"], [4, "d"]]),
        "truncate": _values(),
        "len_after_truncate": _values(0),
        "drop": _values(),
        "session_user": _values("boss"),
    }
    for key, value in expected.items():
        assert tnt[key] == value, ("tarantool", key)
        assert styx[key] == value, ("styx", key)
    # The documented difference: Styx describes the new space, Tarantool fails
    # to encode the space object (after creating it).
    assert tnt["create"] == {"ok": False, "message": "unsupported Lua type 'function'"}
    assert styx["create"] == _values({"id": 1500, "name": "nb", "engine": "memtx",
                                      "field_count": 0, "temporary": False,
                                      "is_local": False, "enabled": False})


def test_netbox_missing_keys_return_no_values(netbox_runs: tuple[dict, dict]) -> None:
    """get/update/delete of a missing key return nothing in Lua: net.box sees
    zero values (select('#', ...) == 0), not one nil."""
    styx, tnt = netbox_runs
    for key in ("get_missing", "update_missing", "delete_missing"):
        assert tnt[key] == _values(), key
        assert styx[key] == _values(), key


def test_netbox_schema_follows_ddl_made_by_calls(netbox_runs: tuple[dict, dict]) -> None:
    styx, tnt = netbox_runs
    for r in (styx, tnt):
        assert r["netbox_select"] == [[1, "A"], [3, "b"], [4, "d"]]
        assert r["netbox_sec"] == [[3, "b"]]


def test_netbox_users(netbox_runs: tuple[dict, dict]) -> None:
    styx, tnt = netbox_runs
    for r in (tnt, styx):
        assert r["user_create"] == _values()
        assert r["user_grant"] == _values()
        assert r["user_revoke"] == _values()
        assert r["user_passwd"] == _values()
        assert r["new_password"] == {"state": "active", "ping": True}
        assert r["role_create"] == _values()
        assert r["role_exists"] == _values(True)
        assert r["user_drop"] == _values()
    assert tnt["user_info"] == _values([["execute", "role", "public"],
                                        ["read,write", "space", "nb"],
                                        ["session,usage", "universe", ""],
                                        ["alter", "user", "nbuser"]])
    assert styx["user_info"] == tnt["user_info"]


def test_netbox_after_drop(netbox_runs: tuple[dict, dict]) -> None:
    styx, tnt = netbox_runs
    expected = {"ok": False, "code": 33,
                "message": "Procedure 'box.space.nb:select' is not defined"}
    assert tnt["select_dropped"] == expected
    assert styx["select_dropped"] == expected


def test_netbox_info_and_stat(netbox_runs: tuple[dict, dict]) -> None:
    styx, tnt = netbox_runs
    for r in (tnt, styx):
        assert r["info_keys"] == {"id": "number", "ro": "boolean", "status": "string",
                                  "uuid": "string", "version": "string", "uptime": "number"}
        assert r["info_status"] == "running" and r["info_ro"] is False
        assert r["stat_select_type"] == "number"
    assert tnt["stat_net_keys"] == ["CONNECTIONS", "RECEIVED", "REQUESTS", "SENT"]
    # Styx has 2.10's three more (in progress, streams, stream queue).
    assert styx["stat_net_keys"] == sorted(tnt["stat_net_keys"] + [
        "REQUESTS_IN_PROGRESS", "REQUESTS_IN_STREAM_QUEUE", "STREAMS"])


def test_netbox_guest_denied(netbox_runs: tuple[dict, dict]) -> None:
    styx, tnt = netbox_runs
    for r in (tnt, styx):
        for key, fname in (("create", "box.schema.space.create"),
                           ("select", "box.space.nb:select"), ("info", "box.info")):
            assert r["guest"][key] == {
                "ok": False, "code": 42,
                "message": f"Execute access to function '{fname}' is denied for user 'guest'"}
