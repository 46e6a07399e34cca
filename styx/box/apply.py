"""Apply a logged row to box: what recovery replays (Tarantool's alter.cc
triggers and `box_process_rw`, for what Styx keeps).

A row is `(request type, body map)` as the WAL has it (styx/xlog). On a
user space it is DML, applied through the space's own operations. On a
system space it is DDL: `_space`, `_index`, `_user`, `_priv`, `_func`,
`_schema` and `_truncate` rows become the schema changes they describe,
with the ids, owners, password hashes and grants they carry. This is the
inverse of what tx/commit.py logs (the difference of what the system
spaces show), and also what Tarantool writes for the same changes.

What Styx does not keep (sequences, triggers, constraints, `_cluster`
members beyond itself, vinyl) raises `BoxError(UNSUPPORTED)` naming it,
except rows that only repeat what Styx already has. Recovery decides what
to do with the error (stop, or skip with --force-recovery).
"""

from __future__ import annotations

from typing import Any

from ..protocol import constants as C
from ..protocol.errors import ER, BoxError
from .privileges import Grant
from .schema import Schema, SystemSpace
from .space import Space
from .users import User

__all__ = ["apply_row"]

INSERT, REPLACE, UPDATE, DELETE, UPSERT = 2, 3, 4, 5, 9
_SCHEMA, _SPACE, _INDEX, _FUNC, _USER, _PRIV, _CLUSTER, _TRUNCATE = 272, 280, 288, 296, 304, 312, 320, 330
_COLLATION = 276


def apply_row(schema: Schema, type_: int, body: dict[int, Any]) -> None:
    space_id = body.get(C.SPACE_ID, 0)
    tup: Any = body.get(C.TUPLE)
    key: Any = body.get(C.KEY)
    space = schema.spaces.get(space_id)
    if space is None:
        raise BoxError(ER.NO_SUCH_SPACE, space_id)
    if isinstance(space, SystemSpace):
        _apply_system(schema, space_id, type_, tup, key)
        return
    index_base = body.get(C.INDEX_BASE, 0)
    if type_ == INSERT:
        space.insert(tup)
    elif type_ == REPLACE:
        space.replace(tup)
    elif type_ == DELETE:
        space.delete(space.index(body.get(C.INDEX_ID, 0)), key)
    elif type_ == UPDATE:
        space.update(space.index(body.get(C.INDEX_ID, 0)), key, tup, index_base)
    elif type_ == UPSERT:
        space.upsert(tup, body.get(C.OPS), index_base)
    else:
        raise BoxError(ER.UNKNOWN_REQUEST_TYPE, type_)


def _apply_system(schema: Schema, space_id: int, type_: int, tup: Any, key: Any) -> None:
    if type_ == UPDATE and space_id == _SCHEMA:
        return  # Tarantool's `max_id` bump: Styx counts ids from its spaces
    if type_ not in (INSERT, REPLACE, DELETE):
        raise BoxError(ER.UNSUPPORTED, "Styx", f"request type {type_} on system space {space_id}")
    if type_ == DELETE:
        _delete(schema, space_id, key)
        return
    if space_id == _SCHEMA:
        if tup and tup[0] == "max_id":
            schema.max_id = max(schema.max_id, tup[1])
        elif tup and tup[0] == "cluster":
            schema.replicaset_uuid = tup[1]
        elif tup and tup[0] != "version":
            schema.kv[tup[0]] = list(tup)
    elif space_id == _SPACE:
        _space_row(schema, tup)
    elif space_id == _INDEX:
        _index_row(schema, tup)
    elif space_id == _USER:
        _user_row(schema, tup)
    elif space_id == _PRIV:
        grantor, grantee, otype, oid, mask = tup[:5]
        schema.privileges._set(Grant(grantor, grantee, otype, oid, mask))
    elif space_id == _FUNC:
        fid, owner, name, setuid = tup[:4]
        if name not in schema.functions:
            schema.create_function(name, owner, setuid=bool(setuid), language=tup[4] if len(tup) > 4 else "LUA")
            schema.functions[name].id = fid
            schema.functions[name].raw = list(tup)
    elif space_id == _TRUNCATE:
        space = schema.spaces.get(tup[0])
        if isinstance(space, Space):
            space.truncate()
            space.truncations = tup[1]
    elif space_id == _CLUSTER:
        return  # this instance's own registration
    elif space_id == _COLLATION and tup in schema.collations:
        return  # one of Tarantool's built-in collations
    else:
        raise BoxError(ER.UNSUPPORTED, "Styx", f"rows of system space {schema.spaces[space_id].name}")


def _delete(schema: Schema, space_id: int, key: list[Any]) -> None:
    if space_id == _SCHEMA:
        schema.kv.pop(key[0], None)
    elif space_id == _SPACE:
        space = schema.spaces.get(key[0])
        if isinstance(space, Space):
            schema.drop_space(space)
    elif space_id == _INDEX:
        space = schema.spaces.get(key[0])
        if isinstance(space, Space):
            idx = next((i for i in space.indexes if i.iid == key[1]), None)
            if idx is not None:
                space.drop_index(idx)
                schema.bump()
    elif space_id == _USER:
        user = schema.users.by_id.get(key[0])
        if user is not None:
            schema.drop_user(user.name, role=user.type == "role")
    elif space_id == _PRIV:
        schema.privileges.grants.pop((key[0], key[1], key[2]), None)
        schema.privileges._rights.clear()
    elif space_id == _FUNC:
        f = next((f for f in schema.functions.values() if f.id == key[0]), None)
        if f is not None:
            schema.drop_function(f.name)
    elif space_id in (_SCHEMA, _TRUNCATE, _CLUSTER):
        return
    else:
        raise BoxError(ER.UNSUPPORTED, "Styx", f"rows of system space {schema.spaces[space_id].name}")


def _space_row(schema: Schema, tup: list[Any]) -> None:
    sid, owner, name, engine, field_count, flags, fmt = tup[:7]
    space = schema.spaces.get(sid)
    if space is None:
        if engine != "memtx":  # vinyl keeps its data in its own files, which Styx does not read
            raise BoxError(ER.UNSUPPORTED, "Styx", f"{engine} space '{name}'")
        schema.create_space(name, owner, id=sid, format=fmt or None, field_count=field_count, engine=engine,
                            temporary=bool(flags.get("temporary")))
        return
    if isinstance(space, SystemSpace):
        return  # a snapshot's row for a system space Styx has built in
    if space.name != name:
        schema.rename_space(space, name)
    if space.format != fmt:
        schema.set_format(space, fmt)


def _index_row(schema: Schema, tup: list[Any]) -> None:
    sid, iid, name, type_, opts, parts = tup[:6]
    space = schema.spaces.get(sid)
    if isinstance(space, SystemSpace):
        return  # a snapshot's row for a system index Styx has built in
    if not isinstance(space, Space):
        raise BoxError(ER.NO_SUCH_SPACE, sid)
    one_based = [_part(p) for p in parts]
    unique = bool(opts.get("unique", True))
    idx = next((i for i in space.indexes if i.iid == iid), None)
    if idx is None:
        schema.create_index(space, name, type=type_, parts=one_based, unique=unique, id=iid)
    else:
        schema.alter_index(space, idx, name=name, type=type_, parts=one_based, unique=unique)


def _part(p: Any) -> dict[str, Any]:
    """An `_index` part (0-based field) as create_index takes it (1-based)."""
    if isinstance(p, dict):
        q = {k: v for k, v in p.items() if k != "field"}
        q["field"] = p["field"] + 1 if isinstance(p["field"], int) else p["field"]
        return q
    return {"field": p[0] + 1, "type": p[1]}


def _user_row(schema: Schema, tup: list[Any]) -> None:
    uid, owner, name, type_, auth = tup[:5]
    users = schema.users
    user = users.by_id.get(uid)
    if user is None:
        user = User(uid, name, type_, owner)
        users._add(user)
        schema.privileges.owner_of[(type_, uid)] = owner
    elif user.name != name:
        del users.by_name[user.name]
        user.name = name
        users.by_name[name] = user
    user.auth = dict(auth or {})
    schema.privileges._rights.clear()
