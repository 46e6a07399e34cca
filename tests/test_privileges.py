"""Access control over raw IPROTO: denied requests, grants and revokes at
runtime, the privilege-filtered system views, grant errors, and
schema_version.

Every test runs against Styx serving tests/apps/priv_app.py and against
Debian's Tarantool 2.6 serving the same spaces, users and grants
(tests/lua/tarantool_server.lua `priv`). Expected values are Tarantool's;
`test_views_match_tarantool` also compares the two servers side by side.

The setup: `secret` (id 512) holds [1, 'a'], [2, 'b']; `other` (513) holds
[10, 'x']; `nopriv` has only what box.schema.user.create gives; `reader`
may read `secret` and execute the function object `f`; `boss` has the role
`super`; `admin`'s password is `pw`; `g` is a procedure with no function
object.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from tests.iproto import Raw
from tests.oracle import tarantool_server

PRIV_APP = str(Path(__file__).parent / "apps" / "priv_app.py")
SECRET, OTHER = 512, 513
SECRET_ROWS = [[1, "a"], [2, "b"]]
OTHER_ROWS = [[10, "x"]]

SELECT, INSERT, REPLACE, UPDATE, DELETE, CALL, UPSERT, PING = 1, 2, 3, 4, 5, 10, 9, 0x40
ACCESS_DENIED = 42

# Objects both servers have: Tarantool 2.6 has more system spaces (_vsequence,
# _truncate, ...) and SQL functions, Styx has _vspace_sequence; the views are
# compared on the common ones.
COMMON_SPACES = {"_schema", "_collation", "_vcollation", "_space", "_vspace", "_index",
                 "_vindex", "_func", "_vfunc", "_user", "_vuser", "_priv", "_vpriv",
                 "_cluster", "_space_sequence", "secret", "other"}
COMMON_FUNCS = {"box.schema.user.info", "f"}
PUBLIC_SPACES = ["_collation", "_vcollation", "_vfunc", "_vindex", "_vpriv", "_vspace", "_vuser"]


class Res(NamedTuple):
    code: int  # 0, or the error code
    data: Any  # DATA, or the message
    error: dict[int, Any] | None  # the first MP_ERROR stack entry
    schema_version: int
    body: dict[int, Any]


class Client:
    """One raw IPROTO connection, authenticated as `user` (guest if None)."""

    def __init__(self, port: int, user: str | None = None, password: str = "pw") -> None:
        self.raw = Raw(port)
        self.sync = 100
        if user is not None:
            h, b = self.raw.auth(user, password)
            assert h[0] == 0, b

    def close(self) -> None:
        self.raw.close()

    def req(self, rtype: int, body: Any = None, **header: int) -> Res:
        self.sync += 1
        self.raw.request(rtype, self.sync, body, **header)
        h, b = self.raw.reply()
        assert h[1] == self.sync
        b = b or {}
        if h[0] == 0:
            return Res(0, b.get(0x30), None, h[5], b)
        assert h[0] & 0x8000, h
        stack = b[0x52]
        assert list(stack) == [0] and len(stack[0]) >= 1, stack  # MP_ERROR: {STACK: [...]}
        return Res(h[0] & 0x7FFF, b[0x31], stack[0][0], h[5], b)

    def select(self, space: int, key: list[Any] | None = None, *, index: int = 0,
               iterator: int = 0, limit: int = 1 << 31, **header: int) -> Res:
        return self.req(SELECT, {0x10: space, 0x11: index, 0x12: limit, 0x13: 0,
                                 0x14: iterator, 0x20: key or []}, **header)

    def insert(self, space: int, tup: list[Any], **header: int) -> Res:
        return self.req(INSERT, {0x10: space, 0x21: tup}, **header)

    def replace(self, space: int, tup: list[Any]) -> Res:
        return self.req(REPLACE, {0x10: space, 0x21: tup})

    def update(self, space: int, key: list[Any], ops: list[Any]) -> Res:
        return self.req(UPDATE, {0x10: space, 0x11: 0, 0x20: key, 0x21: ops})

    def upsert(self, space: int, tup: list[Any], ops: list[Any]) -> Res:
        return self.req(UPSERT, {0x10: space, 0x21: tup, 0x28: ops})

    def delete(self, space: int, key: list[Any]) -> Res:
        return self.req(DELETE, {0x10: space, 0x11: 0, 0x20: key})

    def call(self, name: str, *args: Any, **header: int) -> Res:
        return self.req(CALL, {0x22: name, 0x21: list(args)}, **header)

    def ping(self, **header: int) -> Res:
        return self.req(PING, **header)

    def ok(self, res: Res) -> Any:
        assert res.code == 0, res
        return res.data


class Target(NamedTuple):
    kind: str
    port: int
    server: Any


@pytest.fixture(params=["styx", "tarantool"])
def target(request: pytest.FixtureRequest, make_server: Callable[..., Any],
           tmp_path: Path) -> Iterator[Target]:
    if request.param == "tarantool":
        tarantool_bin = request.getfixturevalue("tarantool_bin")
        with tarantool_server(tarantool_bin, "priv", tmp_path / "tarantool") as port:
            yield Target("tarantool", port, None)
    else:
        server = make_server(app=PRIV_APP)
        yield Target("styx", server.port, server)


@pytest.fixture
def connect(target: Target) -> Iterator[Callable[..., Client]]:
    clients: list[Client] = []

    def make(user: str | None = None) -> Client:
        c = Client(target.port, user)
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()


def denied(verb: str, object_type: str, name: str, user: str = "nopriv") -> tuple[Any, ...]:
    """What an AccessDeniedError looks like: (code, message, MP_ERROR entry)."""
    message = f"{verb} access to {object_type} '{name}' is denied for user '{user}'"
    return (ACCESS_DENIED, message,
            {"type": "AccessDeniedError", "code": ACCESS_DENIED, "message": message,
             "fields": {"object_type": object_type, "object_name": name, "access_type": verb}})


def seen(res: Res) -> tuple[Any, ...]:
    e = res.error or {}
    return (res.code, res.data,
            {"type": e.get(0), "code": e.get(5), "message": e.get(3), "fields": e.get(6)})


def writes(c: Client, space: int, n: int) -> list[Res]:
    """One of each write request; `n` makes the tuples new."""
    return [c.insert(space, [n, "new"]), c.replace(space, [1, f"r{n}"]),
            c.update(space, [1], [["=", 1, f"u{n}"]]),
            c.upsert(space, [1, "x"], [["=", 1, f"s{n}"]]), c.delete(space, [2])]


# -- denied, granted, revoked ----------------------------------------------------------


def test_denied_without_privileges(connect):
    u = connect("nopriv")
    assert seen(u.select(SECRET)) == denied("Read", "space", "secret")
    assert seen(u.select(SECRET, [1])) == denied("Read", "space", "secret")
    for res in writes(u, SECRET, 3):
        assert seen(res) == denied("Write", "space", "secret")
    assert seen(u.call("g", 1)) == denied("Execute", "function", "g")
    assert seen(u.call("f", 1)) == denied("Execute", "function", "f")
    for name, args in (("box.space.secret:select", []), ("box.space.secret:insert", [[3, "c"]]),
                       ("box.space.secret:delete", [1]), ("box.info", [])):
        assert seen(u.call(name, *args)) == denied("Execute", "function", name)
    # The session survives every refusal; nothing changed.
    assert u.ping().code == 0
    admin = connect("admin")
    assert admin.ok(admin.select(SECRET)) == SECRET_ROWS
    assert admin.ok(admin.select(OTHER)) == OTHER_ROWS


def test_guest_is_denied_too(connect):
    g = connect()
    assert seen(g.select(SECRET)) == denied("Read", "space", "secret", "guest")
    assert seen(g.insert(SECRET, [3, "c"])) == denied("Write", "space", "secret", "guest")
    assert seen(g.call("g")) == denied("Execute", "function", "g", "guest")
    assert seen(g.call("box.space.secret:count")) == denied(
        "Execute", "function", "box.space.secret:count", "guest")


def test_grant_read_on_one_space(connect):
    admin, u = connect("admin"), connect("nopriv")
    assert admin.ok(admin.call("box.schema.user.grant", "nopriv", "read", "space", "secret")) == []
    # The grant reaches the session that is already open.
    assert u.ok(u.select(SECRET)) == SECRET_ROWS
    assert u.ok(u.select(SECRET, [2])) == [[2, "b"]]
    for res in writes(u, SECRET, 3):
        assert seen(res) == denied("Write", "space", "secret")
    assert seen(u.select(OTHER)) == denied("Read", "space", "other")
    # Lua-named builtins are global functions: execute on the universe first.
    assert seen(u.call("box.space.secret:select")) == denied(
        "Execute", "function", "box.space.secret:select")
    # A second session of the user has the grant too.
    u2 = connect("nopriv")
    assert u2.ok(u2.select(SECRET)) == SECRET_ROWS
    assert admin.ok(admin.select(SECRET)) == SECRET_ROWS  # unchanged


def test_grant_execute_on_function_object(connect):
    admin, u = connect("admin"), connect("nopriv")
    admin.ok(admin.call("box.schema.user.grant", "nopriv", "execute", "function", "f"))
    assert u.ok(u.call("f", 1, "x")) == ["f", 1, "x"]
    assert seen(u.call("g")) == denied("Execute", "function", "g")
    # A function object made at runtime for `g`, then a grant on it.
    assert admin.ok(admin.call("box.schema.func.create", "g")) == []
    assert seen(u.call("g")) == denied("Execute", "function", "g")
    admin.ok(admin.call("box.schema.user.grant", "nopriv", "execute", "function", "g"))
    assert u.ok(u.call("g", 2)) == ["g", 2]
    # Execute on a function is not read on a space.
    assert seen(u.select(SECRET)) == denied("Read", "space", "secret")
    admin.ok(admin.call("box.schema.user.revoke", "nopriv", "execute", "function", "f"))
    assert seen(u.call("f")) == denied("Execute", "function", "f")
    assert u.ok(u.call("g", 3)) == ["g", 3]


def test_grant_universe_then_revoke(connect):
    admin, u = connect("admin"), connect("nopriv")
    admin.ok(admin.call("box.schema.user.grant", "nopriv", "read,write,execute", "universe"))
    assert u.ok(u.insert(SECRET, [3, "c"])) == [[3, "c"]]
    assert u.ok(u.replace(SECRET, [1, "A"])) == [[1, "A"]]
    assert u.ok(u.update(SECRET, [1], [["=", 1, "AA"]])) == [[1, "AA"]]
    assert u.ok(u.upsert(SECRET, [1, "x"], [["=", 1, "S"]])) == []
    assert u.ok(u.delete(SECRET, [2])) == [[2, "b"]]
    assert u.ok(u.select(OTHER)) == OTHER_ROWS
    assert u.ok(u.call("g", 1)) == ["g", 1]
    assert u.ok(u.call("f", 1)) == ["f", 1]
    assert u.ok(u.call("box.space.secret:count")) == [2]
    assert u.ok(u.call("box.space.other:insert", [11, "y"])) == [[11, "y"]]
    assert admin.ok(admin.select(SECRET)) == [[1, "S"], [3, "c"]]

    admin.ok(admin.call("box.schema.user.revoke", "nopriv", "read,write,execute", "universe"))
    assert seen(u.select(SECRET)) == denied("Read", "space", "secret")
    for res in writes(u, SECRET, 4):
        assert seen(res) == denied("Write", "space", "secret")
    assert seen(u.call("g")) == denied("Execute", "function", "g")
    assert seen(u.call("box.space.secret:count")) == denied(
        "Execute", "function", "box.space.secret:count")
    assert admin.ok(admin.select(SECRET)) == [[1, "S"], [3, "c"]]
    assert admin.ok(admin.select(OTHER)) == [[10, "x"], [11, "y"]]


def test_revoke_space_grant(connect):
    admin, r = connect("admin"), connect("reader")
    assert r.ok(r.select(SECRET)) == SECRET_ROWS
    assert r.ok(r.call("f")) == ["f"]
    admin.ok(admin.call("box.schema.user.revoke", "reader", "read", "space", "secret"))
    assert seen(r.select(SECRET)) == denied("Read", "space", "secret", "reader")
    assert r.ok(r.call("f")) == ["f"]


# -- grant errors ------------------------------------------------------------------------


GRANT_ERRORS = [
    (("box.schema.user.grant", "reader", "read", "space", "secret"),
     89, "User 'reader' already has read access on space 'secret'"),
    (("box.schema.user.grant", "reader", "execute", "function", "f"),
     89, "User 'reader' already has execute access on function 'f'"),
    (("box.schema.user.grant", "nobody", "read", "space", "secret"),
     45, "User 'nobody' is not found"),
    (("box.schema.user.grant", "reader", "read", "space", "nosuch"),
     36, "Space 'nosuch' does not exist"),
    (("box.schema.user.grant", "reader", "execute", "function", "nosuch"),
     51, "Function 'nosuch' does not exist"),
    (("box.schema.user.grant", "reader", "read", "bogus", "secret"),
     49, "Unknown object type 'bogus'"),
    (("box.schema.user.grant", "nopriv", "public"),
     90, "User 'nopriv' already has role 'public'"),
    (("box.schema.user.revoke", "nopriv", "read", "space", "other"),
     91, "User 'nopriv' does not have read access on space 'other'"),
    (("box.schema.user.revoke", "nopriv", "super"),
     92, "User 'nopriv' does not have role 'super'"),
    (("box.schema.user.revoke", "nobody", "read", "universe"),
     45, "User 'nobody' is not found"),
]


@pytest.mark.parametrize("args,code,message", GRANT_ERRORS,
                         ids=[f"{a[0].rsplit('.', 1)[1]}-{code}-{i}"
                              for i, (a, code, _) in enumerate(GRANT_ERRORS)])
def test_grant_errors(connect, args, code, message):
    admin = connect("admin")
    res = admin.call(*args)
    assert (res.code, res.data, res.error[0]) == (code, message, "ClientError")


def test_grant_unknown_privilege(connect):
    admin = connect("admin")
    res = admin.call("box.schema.user.grant", "nopriv", "bogus", "space", "secret")
    assert (res.code, res.data, res.error[0]) == (
        98, "Unsupported space privilege 'bogus'", "ClientError")


def test_grant_unknown_role(connect):
    """grant(user, name) with no object type grants the role `name`."""
    admin = connect("admin")
    res = admin.call("box.schema.user.grant", "nopriv", "nosuchrole")
    assert (res.code, res.data, res.error[0]) == (82, "Role 'nosuchrole' is not found",
                                                  "ClientError")


def test_grant_if_not_exists_and_revoke_if_exists(connect):
    admin, u = connect("admin"), connect("nopriv")
    for _ in range(2):
        assert admin.ok(admin.call("box.schema.user.grant", "nopriv", "read", "space", "other",
                                   {"if_not_exists": True})) == []
    assert u.ok(u.select(OTHER)) == OTHER_ROWS
    for _ in range(2):
        assert admin.ok(admin.call("box.schema.user.revoke", "nopriv", "read", "space", "other",
                                   {"if_exists": True})) == []
    assert seen(u.select(OTHER)) == denied("Read", "space", "other")


def test_only_admin_or_owner_grants(connect):
    """The role `super` does not make a grantor: only admin or the object's
    owner may grant on it (Tarantool's priv_def_check)."""
    boss, u = connect("boss"), connect("nopriv")
    res = boss.call("box.schema.user.grant", "nopriv", "read", "space", "other")
    assert seen(res) == denied("Grant", "space", "other", "boss")
    res = boss.call("box.schema.user.grant", "nopriv", "read", "universe")
    assert seen(res) == denied("Grant", "universe", "", "boss")
    assert seen(u.select(OTHER)) == denied("Read", "space", "other")
    assert seen(u.select(SECRET)) == denied("Read", "space", "secret")


def test_new_user_may_alter_itself(connect):
    """box.schema.user.create grants the new user 'alter' on itself."""
    admin = connect("admin")
    assert admin.ok(admin.call("box.schema.user.create", "late", {"password": "pw"})) == []
    info = admin.ok(admin.call("box.schema.user.info", "late"))[0]
    assert sorted(info) == sorted([["execute", "role", "public"],
                                   ["session,usage", "universe", ""],
                                   ["alter", "user", "late"]])
    late = connect("late")
    uid = late.ok(late.select(305, ["late"], index=2))[0][0]
    own = [row for row in late.ok(late.select(313)) if row[1] == uid]
    assert sorted(own, key=repr) == sorted(
        [[1, uid, "role", 2, 4], [1, uid, "universe", 0, 24], [1, uid, "user", uid, 128]],
        key=repr)


# -- the system views ---------------------------------------------------------------------


def names_of(c: Client) -> tuple[dict[int, str], dict[int, str], dict[int, str]]:
    """id -> name of spaces, users and functions (read as admin from _space,
    _user and _func)."""
    return ({t[0]: t[2] for t in c.ok(c.select(280))},
            {t[0]: t[2] for t in c.ok(c.select(304))},
            {t[0]: t[2] for t in c.ok(c.select(296))})


def views(c: Client, names: tuple[dict[int, str], ...]) -> dict[str, list[Any]]:
    """What `c`'s user sees in each _v view, by names, on the common objects.
    _vpriv rows are (grantor, grantee, object type, object name, privileges);
    the 'alter' each user has on itself is left out (test_new_user_may_alter_itself)."""
    spaces, users, funcs = names

    def obj(otype: str, oid: Any) -> Any:
        return {"space": spaces, "function": funcs, "user": users, "role": users}.get(
            otype, {}).get(oid, oid)

    privs = []
    for grantor, grantee, otype, oid, mask in c.ok(c.select(313)):
        row = (users[grantor], users[grantee], otype, obj(otype, oid), mask)
        if otype == "space" and row[3] not in COMMON_SPACES:
            continue
        if otype == "function" and row[3] not in COMMON_FUNCS:
            continue
        if otype == "user" and oid == grantee and mask == 128:
            continue
        privs.append(row)
    return {
        "_vspace": sorted(n for t in c.ok(c.select(281)) if (n := t[2]) in COMMON_SPACES),
        "_vindex": sorted((spaces[t[0]], t[2]) for t in c.ok(c.select(289))
                          if spaces[t[0]] in COMMON_SPACES),
        "_vuser": sorted(t[2] for t in c.ok(c.select(305))),
        "_vfunc": sorted(n for t in c.ok(c.select(297)) if (n := t[2]) in COMMON_FUNCS),
        "_vpriv": sorted(privs, key=repr),
    }


def indexes_of(spaces: list[str], all_indexes: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return sorted(i for i in all_indexes if i[0] in spaces)


def own_privs(user: str, *extra: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    return sorted([("admin", user, "role", "public", 4), ("admin", user, "universe", 0, 24),
                   *extra], key=repr)


@pytest.fixture
def all_views(connect) -> tuple[tuple[dict[int, str], ...], dict[str, list[Any]]]:
    admin = connect("admin")
    names = names_of(admin)
    return names, views(admin, names)


def test_views_admin_sees_everything(connect, all_views):
    names, everything = all_views
    assert everything["_vspace"] == sorted(COMMON_SPACES)
    assert everything["_vuser"] == ["admin", "boss", "guest", "nopriv", "public", "reader",
                                    "replication", "super"]
    assert everything["_vfunc"] == ["box.schema.user.info", "f"]
    assert ("admin", "reader", "space", "secret", 1) in everything["_vpriv"]
    assert ("admin", "boss", "role", "super", 4) in everything["_vpriv"]
    assert ("secret", "pk") in everything["_vindex"] and ("other", "pk") in everything["_vindex"]
    # `boss` (super: all on the universe) sees what admin sees.
    assert views(connect("boss"), names) == everything


@pytest.mark.parametrize("user", ["guest", "nopriv"])
def test_views_user_without_grants(connect, all_views, user):
    names, everything = all_views
    v = views(connect(None if user == "guest" else user), names)
    assert v["_vspace"] == PUBLIC_SPACES
    assert v["_vindex"] == indexes_of(PUBLIC_SPACES, everything["_vindex"])
    assert v["_vuser"] == sorted([user, "public"])
    assert v["_vfunc"] == ["box.schema.user.info"]
    assert v["_vpriv"] == own_privs(user)


def test_views_granted_user(connect, all_views):
    names, everything = all_views
    v = views(connect("reader"), names)
    assert v["_vspace"] == sorted(PUBLIC_SPACES + ["secret"])
    assert v["_vindex"] == indexes_of(v["_vspace"], everything["_vindex"])
    assert ("secret", "pk") in v["_vindex"]
    assert v["_vuser"] == ["public", "reader"]
    assert v["_vfunc"] == ["box.schema.user.info", "f"]
    assert v["_vpriv"] == own_privs("reader", ("admin", "reader", "function", "f", 4),
                                    ("admin", "reader", "space", "secret", 1))


def test_views_follow_grants(connect, all_views):
    names, everything = all_views
    admin, u = connect("admin"), connect("nopriv")
    admin.ok(admin.call("box.schema.user.grant", "nopriv", "write", "space", "other"))
    admin.ok(admin.call("box.schema.user.grant", "nopriv", "execute", "function", "f"))
    v = views(u, names)
    assert v["_vspace"] == sorted(PUBLIC_SPACES + ["other"])
    assert ("other", "pk") in v["_vindex"] and ("secret", "pk") not in v["_vindex"]
    assert v["_vfunc"] == ["box.schema.user.info", "f"]
    assert v["_vpriv"] == own_privs("nopriv", ("admin", "nopriv", "space", "other", 2),
                                    ("admin", "nopriv", "function", "f", 4))
    admin.ok(admin.call("box.schema.user.revoke", "nopriv", "write", "space", "other"))
    admin.ok(admin.call("box.schema.user.revoke", "nopriv", "execute", "function", "f"))
    v = views(u, names)
    assert v["_vspace"] == PUBLIC_SPACES
    assert v["_vfunc"] == ["box.schema.user.info"]
    assert v["_vpriv"] == own_privs("nopriv")
    # Read on the universe shows everything.
    admin.ok(admin.call("box.schema.user.grant", "nopriv", "read", "universe"))
    v = views(u, names)
    assert (v["_vspace"], v["_vindex"], v["_vuser"], v["_vfunc"]) == (
        everything["_vspace"], everything["_vindex"], everything["_vuser"], everything["_vfunc"])


def test_views_match_tarantool(make_server, tarantool_bin, tmp_path):
    """Styx and Tarantool 2.6, same setup, same grants at runtime: each user
    sees the same rows of every view (on the objects both servers have)."""
    server = make_server(app=PRIV_APP)

    def observe(port: int) -> dict[str, Any]:
        with contextlib.ExitStack() as stack:
            def c(user: str | None) -> Client:
                client = Client(port, user)
                stack.callback(client.close)
                return client

            admin = c("admin")
            names = names_of(admin)
            out = {u: views(c(u if u != "guest" else None), names)
                   for u in ("guest", "nopriv", "reader", "boss", "admin")}
            admin.ok(admin.call("box.schema.user.grant", "nopriv", "read", "space", "other"))
            admin.ok(admin.call("box.schema.user.grant", "reader", "write", "universe"))
            out["nopriv+other"] = views(c("nopriv"), names)
            out["reader+universe"] = views(c("reader"), names)
            return out

    styx = observe(server.port)
    with tarantool_server(tarantool_bin, "priv", tmp_path / "tarantool") as port:
        expected = observe(port)
    for who in expected:
        for view in expected[who]:
            assert styx[who][view] == expected[who][view], (who, view)


# -- schema_version ------------------------------------------------------------------------


def test_schema_version_grows_with_ddl(target, connect):
    admin = connect("admin")
    v0 = admin.ping().schema_version
    assert v0 > 0
    assert admin.ping().schema_version == v0  # stable between changes
    if target.server is not None:
        assert v0 == target.server.tx.schema.version
    # Tarantool's box.schema.space.create returns a space object, which CALL
    # cannot encode (error 32): look only at the effect and the header.
    v1 = admin.call("box.schema.space.create", "late").schema_version
    assert v1 > v0
    assert [t[2] for t in admin.ok(admin.select(281, ["late"], index=2))] == ["late"]
    res = admin.call("box.space.late:create_index", "pk")
    assert res.code == 0 and res.schema_version > v1
    v2 = res.schema_version
    # Data changes do not touch the version.
    assert admin.call("box.space.late:insert", [1]).schema_version == v2
    assert admin.insert(SECRET, [3, "c"]).schema_version == v2
    # Grants may bump it or not (Tarantool 2.6 does not, Styx does); clients
    # only need it not to go back.
    v3 = admin.call("box.schema.user.grant", "nopriv", "read", "space", "late").schema_version
    assert v3 >= v2
    v4 = admin.call("box.space.late:drop").schema_version
    assert v4 > v3
    assert admin.ok(admin.select(281, ["late"], index=2)) == []
    if target.server is not None:
        assert v4 == target.server.tx.schema.version


def test_stale_schema_version_is_refused(connect):
    admin = connect("admin")
    old = admin.ping().schema_version
    new = admin.call("box.schema.space.create", "late").schema_version
    assert new > old
    wrong = f"Wrong schema version, current: {old}, in request: {new}"  # sic: swapped

    def refused(res: Res) -> None:
        assert (res.code, res.data, res.error[0], res.error[5]) == (109, wrong, "ClientError", 109)
        assert res.schema_version == new

    refused(admin.ping(k5=old))
    refused(admin.select(SECRET, k5=old))
    refused(admin.insert(SECRET, [7, "stale"], k5=old))
    refused(admin.call("box.space.secret:insert", [8, "stale"], k5=old))
    # Nothing was inserted; the current version and 0 (none) are accepted.
    assert admin.ok(admin.select(SECRET, k5=new)) == SECRET_ROWS
    assert admin.ok(admin.select(SECRET, k5=0)) == SECRET_ROWS
    assert admin.ok(admin.insert(SECRET, [3, "c"], k5=new)) == [[3, "c"]]
    assert admin.ping(k5=new).code == 0
