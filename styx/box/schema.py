"""The schema: spaces, functions, system spaces, DDL, and `schema_version`.

Connectors learn a server's schema by reading its system views (`_vspace`,
`_vindex`, `_vcollation`, ...) with ordinary SELECTs, and they watch the
`schema_version` every reply carries. So:

- System spaces answer SELECTs with Tarantool's own tuple layouts (ids,
  names, formats and index parts read off Tarantool 2.6). Their rows are
  computed from live state (spaces, users, grants, functions) when read, so
  they can never disagree with it; a `_v` view shows only the rows the
  session's user may see, as Tarantool's sysview engine does. They are
  read-only here: DDL goes through the `box.schema` calls.
- `version` starts non-zero, is stable between changes, and every DDL (a
  space, an index, a user, a grant, a function) bumps it.

User spaces (ids from 512) are `Space` objects; everything here runs in TX.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, cast

from ..protocol import constants as C
from ..protocol.errors import ER, BoxError
from . import field_types as ft
from .bootstrap import DD_VERSION, bootstrap_rows
from .index import Part, parts_row
from .privileges import (
    ALL,
    ALTER,
    SESSION,
    USAGE,
    VSPACE_SEQUENCE,
    Privileges,
    R,
    X,
    access_denied,
    is_privilege_list,
    parse_privileges,
)
from .space import ChangeLog, Quota, Space, pack_tuple
from .txn import TxnManager
from .users import ADMIN, GUEST, PUBLIC, REPLICATION, SUPER, User, Users

__all__ = ["Schema", "SystemSpace", "SysIndex", "select_rows", "parse_parts", "system_rows", "LOGGED_SYSTEM_SPACES",
           "snapshot_rows"]

RowsOf = Callable[[User], Iterable[list[Any]]]  # a system space's rows, as `user` may see them

# Tarantool's schema_version after bootstrap is large (every bootstrap DDL
# bumps it); 2.6 starts at 80. Clients only need it non-zero and stable.
INITIAL_SCHEMA_VERSION = 80
SYSTEM_ID_MAX = 511  # user spaces start above (BOX_SYSTEM_ID_MAX)
INDEX_MAX = 128
NAME_MAX = 65000


@dataclass
class SysIndex:
    iid: int
    name: str
    unique: bool
    parts: list[Part]
    type_name: str = "TREE"

    def row(self, space_id: int) -> list[Any]:
        return [space_id, self.iid, self.name, self.type_name.lower(), {"unique": self.unique},
                parts_row(self.parts)]


@dataclass
class SystemSpace:
    """A system space: fixed definition, rows computed on read."""

    id: int
    name: str
    engine: str
    format: list[dict[str, Any]]
    indexes: list[SysIndex]
    rows: RowsOf
    owner: int = ADMIN
    field_count: int = 0
    flags: dict[str, Any] = field(default_factory=dict)
    points: ClassVar[dict[int, dict[Any, bytes]]] = {}  # rows are computed: no point reads (Space.points)

    def row(self) -> list[Any]:
        return [self.id, self.owner, self.name, self.engine, self.field_count,
                dict(self.flags), [dict(f) for f in self.format]]

    def index(self, iid: int | None = None, name: str | None = None) -> SysIndex:
        for idx in self.indexes:
            if (name is not None and idx.name == name) or (name is None and idx.iid == iid):
                return idx
        if name is not None:
            raise BoxError(ER.NO_SUCH_INDEX_NAME, name, self.name)
        raise BoxError(ER.NO_SUCH_INDEX_ID, iid, self.name)

    def select(self, user: User, index: SysIndex, iterator: int, key: Sequence[Any],
               offset: int = 0, limit: int = 0xFFFFFFFF) -> list[bytes]:
        ft.check_key(key, [p.spec() for p in index.parts], exact=False)
        rows = select_rows(self.rows(user), index, iterator, key, offset, limit)
        return [pack_tuple(r) for r in rows]


def _fmt(*fields: str) -> list[dict[str, Any]]:
    out = []
    for f in fields:
        name, _, typ = f.partition(":")
        out.append({"name": name, "type": typ})
    return out


def _idx(iid: int, name: str, unique: bool, *parts: tuple[int, str]) -> SysIndex:
    return SysIndex(iid, name, unique, [Part(f, t) for f, t in parts])


_SPACE_FMT = _fmt("id:unsigned", "owner:unsigned", "name:string", "engine:string",
                  "field_count:unsigned", "flags:map", "format:array")
_INDEX_FMT = _fmt("id:unsigned", "iid:unsigned", "name:string", "type:string", "opts:map",
                  "parts:array")
_COLL_FMT = _fmt("id:unsigned", "name:string", "owner:unsigned", "type:string", "locale:string",
                 "opts:map")
_USER_FMT = _fmt("id:unsigned", "owner:unsigned", "name:string", "type:string", "auth:map")
_PRIV_FMT = _fmt("grantor:unsigned", "grantee:unsigned", "object_type:string",
                 "object_id:scalar", "privilege:unsigned")
_FUNC_FMT = _fmt("id:unsigned", "owner:unsigned", "name:string", "setuid:unsigned",
                 "language:string", "body:string", "routine_type:string", "param_list:array",
                 "returns:string", "aggregate:string", "sql_data_access:string",
                 "is_deterministic:boolean", "is_sandboxed:boolean", "is_null_call:boolean",
                 "exports:array", "opts:map", "comment:string", "created:string",
                 "last_altered:string")
_VFUNC_FMT = _FUNC_FMT[:4]
_SEQ_FMT = _fmt("id:unsigned", "owner:unsigned", "name:string", "step:integer", "min:integer",
                "max:integer", "start:integer", "cache:integer", "cycle:boolean")
_SPACE_SEQ_FMT = _fmt("id:unsigned", "sequence_id:unsigned", "is_generated:boolean",
                      "field:unsigned", "path:string")

_BY_ID_OWNER_NAME = [_idx(0, "primary", True, (0, "unsigned")),
                     _idx(1, "owner", False, (1, "unsigned")),
                     _idx(2, "name", True, (2, "string"))]
_BY_SPACE_IID = [_idx(0, "primary", True, (0, "unsigned"), (1, "unsigned")),
                 _idx(2, "name", True, (0, "unsigned"), (2, "string"))]
_BY_ID_NAME = [_idx(0, "primary", True, (0, "unsigned")), _idx(1, "name", True, (1, "string"))]
_BY_PRIV = [_idx(0, "primary", True, (1, "unsigned"), (2, "string"), (3, "scalar")),
            _idx(1, "owner", False, (0, "unsigned")),
            _idx(2, "object", False, (2, "string"), (3, "scalar"))]
_BY_SEQ = [_idx(0, "primary", True, (0, "unsigned")), _idx(1, "sequence", False, (1, "unsigned"))]

@dataclass
class Function:
    id: int
    name: str
    owner: int = ADMIN
    setuid: bool = False
    language: str = "LUA"
    raw: list[Any] | None = None  # the row as recovered (Tarantool's built-ins: SQL's)

    def row(self) -> list[Any]:
        if self.raw is not None:
            return self.raw
        return [self.id, self.owner, self.name, int(self.setuid), self.language, "", "function",
                [], "any", "none", "none", False, False, True, [self.language], {}, "",
                "1970-01-01 00:00:00", "1970-01-01 00:00:00"]


class Schema:
    """Spaces, functions, users and grants of one server (owned by TX)."""

    def __init__(self, users: Users, instance_uuid: str = "", memtx_memory: int = 256 << 20,
                 replicaset_uuid: str = "") -> None:
        self.users = users
        self.privileges = Privileges(users)
        self.quota = Quota(memtx_memory)
        self.changes = ChangeLog()  # the WAL listens here (tx/commit.py)
        self.txns = TxnManager(self.changes)  # and the transactions that may conflict
        self.version = INITIAL_SCHEMA_VERSION
        self.max_id = SYSTEM_ID_MAX
        self.instance_uuid = instance_uuid
        self.spaces: dict[int, Space | SystemSpace] = {}
        self.by_name: dict[str, Space | SystemSpace] = {}
        self.replicaset_uuid = replicaset_uuid or str(uuid.uuid4())  # _schema's 'cluster'
        # Tarantool 2.6's built-in functions (box.schema.user.info and SQL's)
        # and collations, as its bootstrap has them.
        self.functions: dict[str, Function] = {
            row[2]: Function(row[0], row[2], row[1], bool(row[3]), row[4], raw=row) for row in bootstrap_rows(296)}
        self.collations = bootstrap_rows(276)
        self._bootstrap()
        # Told after every change to what the system spaces show (DDL, users,
        # grants, functions): the WAL logs them as system-space rows.
        self.on_ddl: Callable[[], None] | None = None
        # _schema's other rows, by key: box.once's marks ("once<key>"), and
        # whatever Tarantool's files bring.
        self.kv: dict[str, list[Any]] = {}
        users.on_change = self.changed

    # -- system spaces -----------------------------------------------------------

    def _bootstrap(self) -> None:
        P = self.privileges
        space_rows = lambda u: [s.row() for s in self.spaces.values()]  # noqa: E731 - a table of row functions
        vspace_rows = lambda u: [s.row() for s in self.spaces.values()  # noqa: E731 - a table of row functions
                                 if P.can_see(u, "space", s.id) or s.owner == u.uid]
        index_rows = lambda u: [i.row(s.id) for s in self.spaces.values()  # noqa: E731 - a table of row functions
                                for i in s.indexes]
        vindex_rows = lambda u: [i.row(s.id) for s in self.spaces.values()  # noqa: E731 - a table of row functions
                                 if P.can_see(u, "space", s.id) or s.owner == u.uid
                                 for i in s.indexes]
        user_rows = lambda u: [x.row()[:5] for x in self.users.by_id.values()]  # noqa: E731 - a table of row functions
        vuser_rows = lambda u: [x.row()[:5] for x in self.users.by_id.values()  # noqa: E731 - a table of row functions
                                if x.uid == u.uid or x.owner == u.uid
                                or P.can_see(u, "user" if x.type == "user" else "role", x.uid)
                                or x.uid in P.roles_of(u.uid)]
        priv_rows = lambda u: P.rows()  # noqa: E731 - a table of row functions
        vpriv_rows = lambda u: [r for r in P.rows()  # noqa: E731 - a table of row functions
                                if r[0] == u.uid or r[1] == u.uid or P.can_see(u, "universe", 0)]
        func_rows = lambda u: [f.row() for f in self.functions.values()]  # noqa: E731 - a table of row functions
        vfunc_rows = lambda u: [f.row() for f in self.functions.values()  # noqa: E731 - a table of row functions
                                if P.can_see(u, "function", f.id, R | X) or f.owner == u.uid]
        for sid, name, engine, fmt, idx, rows in (
            (272, "_schema", "memtx", _fmt("key:string", "value:any"),
             [_idx(0, "primary", True, (0, "string"))],
             lambda u: self._schema_rows()),
            (276, "_collation", "memtx", _COLL_FMT, _BY_ID_NAME, lambda u: self.collations),
            (277, "_vcollation", "sysview", _COLL_FMT, _BY_ID_NAME, lambda u: self.collations),
            (280, "_space", "memtx", _SPACE_FMT, _BY_ID_OWNER_NAME, space_rows),
            (281, "_vspace", "sysview", _SPACE_FMT, _BY_ID_OWNER_NAME, vspace_rows),
            (288, "_index", "memtx", _INDEX_FMT, _BY_SPACE_IID, index_rows),
            (289, "_vindex", "sysview", _INDEX_FMT, _BY_SPACE_IID, vindex_rows),
            (296, "_func", "memtx", _FUNC_FMT, _BY_ID_OWNER_NAME, func_rows),
            (297, "_vfunc", "sysview", _VFUNC_FMT, _BY_ID_OWNER_NAME, vfunc_rows),
            (304, "_user", "memtx", _USER_FMT, _BY_ID_OWNER_NAME, user_rows),
            (305, "_vuser", "sysview", _USER_FMT, _BY_ID_OWNER_NAME, vuser_rows),
            (312, "_priv", "memtx", _PRIV_FMT, _BY_PRIV, priv_rows),
            (313, "_vpriv", "sysview", _PRIV_FMT, _BY_PRIV, vpriv_rows),
            (320, "_cluster", "memtx", _fmt("id:unsigned", "uuid:string"),
             [_idx(0, "primary", True, (0, "unsigned")), _idx(1, "uuid", True, (1, "string"))],
             lambda u: [[1, self.instance_uuid]]),
            (340, "_space_sequence", "memtx", _SPACE_SEQ_FMT, _BY_SEQ, lambda u: []),
            (VSPACE_SEQUENCE, "_vspace_sequence", "sysview", _SPACE_SEQ_FMT, _BY_SEQ, lambda u: []),
            # Spaces Styx has no use for, there because Tarantool has them (empty).
            (257, "_vinyl_deferred_delete", "blackhole",
             _fmt("space_id:unsigned", "lsn:unsigned", "tuple:array"), [], lambda u: []),
            (284, "_sequence", "memtx", _SEQ_FMT, list(_BY_ID_OWNER_NAME), lambda u: []),
            (285, "_sequence_data", "memtx", _fmt("id:unsigned", "value:integer"),
             [SysIndex(0, "primary", True, [Part(0, "unsigned")], "HASH")], lambda u: []),
            (286, "_vsequence", "sysview", _SEQ_FMT, list(_BY_ID_OWNER_NAME), lambda u: []),
            (328, "_trigger", "memtx", _fmt("name:string", "space_id:unsigned", "opts:map"),
             [_idx(0, "primary", True, (0, "string")), _idx(1, "space_id", False, (1, "unsigned"))],
             lambda u: []),
            (330, "_truncate", "memtx", _fmt("id:unsigned", "count:unsigned"),
             [_idx(0, "primary", True, (0, "unsigned"))],
             lambda u: [[s.id, s.truncations] for s in self.spaces.values()
                        if isinstance(s, Space) and s.truncations]),
            (356, "_fk_constraint", "memtx",
             _fmt("name:string", "child_id:unsigned", "parent_id:unsigned", "is_deferred:boolean",
                  "match:string", "on_delete:string", "on_update:string", "child_cols:array",
                  "parent_cols:array"),
             [_idx(0, "primary", True, (0, "string"), (1, "unsigned")),
              _idx(1, "child_id", False, (1, "unsigned"))], lambda u: []),
            (364, "_ck_constraint", "memtx",
             _fmt("space_id:unsigned", "name:string", "is_deferred:boolean", "language:str",
                  "code:str", "is_enabled:boolean"),
             [_idx(0, "primary", True, (0, "unsigned"), (1, "string"))], lambda u: []),
            (372, "_func_index", "memtx",
             _fmt("space_id:unsigned", "index_id:unsigned", "func_id:unsigned"),
             [_idx(0, "primary", True, (0, "unsigned"), (1, "unsigned")),
              _idx(1, "fid", False, (2, "unsigned"))], lambda u: []),
            (380, "_session_settings", "service", _fmt("name:string", "value:any"),
             [_idx(0, "primary", True, (0, "string"))], lambda u: []),
        ):
            # (each row function's own type is narrower than the field's)
            self._add(SystemSpace(sid, name, engine, fmt, idx, cast(RowsOf, rows)))
        self.spaces[272].format[1]["is_nullable"] = True
        self.spaces[257].flags["group_id"] = 1
        self.spaces[380].flags["temporary"] = True
        self.spaces[380].field_count = 2
        self.spaces = dict(sorted(self.spaces.items()))

    def _add(self, space: Space | SystemSpace) -> None:
        self.spaces[space.id] = space
        self.by_name[space.name] = space

    def check_writable(self) -> None:
        """box.cfg{read_only = true}: no DDL, users or grants either (2.6's text)."""
        if self.changes.read_only:
            raise BoxError(ER.READONLY, message="Can't modify data because this instance is in read-only mode.")

    def bump(self) -> None:
        """Every DDL: clients refetch the schema when they see a new version."""
        self.version += 1
        self.changed()

    def changed(self) -> None:
        """What the system spaces show has changed."""
        if self.on_ddl is not None:
            self.on_ddl()

    def _schema_rows(self) -> list[list[Any]]:
        rows: list[list[Any]] = [["cluster", self.replicaset_uuid], ["max_id", self.max_id],
                                 ["version", *DD_VERSION], *self.kv.values()]
        return sorted(rows, key=lambda r: str(r[0]))

    def once(self, key: str) -> bool:
        """box.once's mark: True the first time for `key` in this database
        (the mark is a _schema row, logged and snapshotted as Tarantool's)."""
        name = "once" + key
        if name in self.kv:
            return False
        self.check_writable()
        self.kv[name] = [name]
        self.changed()
        return True

    # -- lookup -------------------------------------------------------------------------

    def space(self, space_id: int | None, name: str | None = None) -> Space | SystemSpace:
        if name is not None:
            s = self.by_name.get(name)
            if s is None:
                raise BoxError(ER.NO_SUCH_SPACE, name)
            return s
        s = self.spaces.get(space_id)  # type: ignore[arg-type]  # None finds nothing
        if s is None:
            raise BoxError(ER.NO_SUCH_SPACE, space_id)
        return s

    def user_space(self, space_id: int | None, name: str | None = None) -> Space:
        s = self.space(space_id, name)
        if isinstance(s, SystemSpace):
            raise BoxError(ER.UNSUPPORTED, "Styx",
                           f"changing the system space '{s.name}' directly: use box.schema")
        return s

    # -- spaces and indexes -----------------------------------------------------------------

    def create_space(self, name: str, owner: int, *, id: int | None = None,
                     format: Any = None, field_count: int = 0, if_not_exists: bool = False,
                     engine: str = "memtx", temporary: bool = False, is_local: bool = False,
                     user: str | None = None) -> Space | None:
        self.check_writable()
        _check_name(name, ER.CREATE_SPACE)
        existing = self.by_name.get(name)
        if existing is not None:
            if if_not_exists:
                return None
            raise BoxError(ER.SPACE_EXISTS, name)
        if engine not in ("memtx", "vinyl"):
            raise BoxError(ER.NO_SUCH_ENGINE, engine)
        if id is None:
            id = self.max_id + 1  # _schema's max_id: only auto-assigned ids move it
            while id in self.spaces:
                id += 1
            self.max_id = id
        elif not isinstance(id, int) or id < 0:
            raise BoxError(ER.ILLEGAL_PARAMS, "options parameter 'id' should be of type number")
        if id in self.spaces:
            raise BoxError(ER.TUPLE_FOUND, "primary", "_space")  # as Tarantool: a _space key
        if user is not None:
            u = self.users.get(user)
            if u is None:
                raise BoxError(ER.NO_SUCH_USER, user)
            owner = u.uid
        flags = {"temporary": True} if temporary else {}
        try:
            fmt = normalize_format(format)
        except BoxError as e:
            if e.code == ER.WRONG_SPACE_FORMAT and "unknown field type" in e.message:
                raise BoxError(ER.CREATE_SPACE, name, e.message.split(": ", 1)[1]) from None
            raise
        space = Space(id, name, owner, self.quota, changes=self.changes, format=fmt, field_count=field_count,
                      flags=flags)
        self._add(space)
        self.privileges.owner_of[("space", id)] = owner
        self.privileges._rights.clear()
        self.bump()
        return space

    def drop_space(self, space: Space) -> None:
        self.check_writable()
        space.truncate(dropped=True)  # its memory back; the WAL logs the drop, not a truncate
        del self.spaces[space.id]
        del self.by_name[space.name]
        self.privileges.drop_object("space", space.id)
        for _ in range(len(space.indexes) + 1):
            self.bump()  # as Tarantool: each index's row goes, then the space's

    def rename_space(self, space: Space, name: str) -> None:
        self.check_writable()
        _check_name(name, ER.ALTER_SPACE)
        if name in self.by_name:
            raise BoxError(ER.TUPLE_FOUND, "name", "_space")
        del self.by_name[space.name]
        space.name = name
        self.by_name[name] = space
        self.bump()

    def set_format(self, space: Space, fmt: Any) -> None:
        self.check_writable()
        new = normalize_format(fmt)
        merge_part_types(new, [idx.parts for idx in space.indexes])
        old = space.format
        space.format = new
        try:
            space._refresh()
            for data in space.tuples():
                ft.check_tuple(ft_unpack(data), space.defs)
        except BoxError:
            space.format = old
            space._refresh()
            raise
        self.bump()

    def create_index(self, space: Space, name: str, *, type: str | None = None, parts: Any = None,
                     unique: bool | None = None, id: int | None = None,
                     if_not_exists: bool = False, source: Any = None) -> Any:
        """`source`: the index whose tuples the new one starts with (alter)."""
        self.check_writable()
        _check_name(name, ER.MODIFY_INDEX)
        for idx in space.indexes:
            if idx.name == name:
                if if_not_exists:
                    return idx
                raise BoxError(ER.INDEX_EXISTS, name)
        shown = "tree" if type is None else str(type)  # _index keeps the spelling given
        kind = shown.upper()
        if kind not in ("TREE", "HASH"):
            if kind in ("BITSET", "RTREE"):
                raise BoxError(ER.UNSUPPORTED, "Styx", f"{kind} indexes")
            raise BoxError(ER.INDEX_TYPE, name, space.name)
        if unique is None:
            unique = True
        if id is None:
            id = 0 if not space.indexes else max(i.iid for i in space.indexes) + 1
        if id >= INDEX_MAX:
            raise BoxError(ER.MODIFY_INDEX, name, space.name, "index id too big")
        if any(i.iid == id for i in space.indexes):
            raise BoxError(ER.TUPLE_FOUND, "primary", "_index")  # _index's primary key
        if parts is None:  # the first field, typed by the format unless it says 'any'
            t = space.format[0].get("type", "any") if space.format else "any"
            parts = [[1, t if t != "any" else "unsigned"]]
        part_list = parse_parts(space, parts, name)
        if id == 0 and not unique:
            raise BoxError(ER.MODIFY_INDEX, name, space.name, "primary key must be unique")
        check_parts(space, name, part_list)
        if id != 0 and not space.indexes:
            raise BoxError(ER.ALTER_SPACE, space.name, "can not add a secondary key before primary")
        if any(p.is_nullable for p in part_list):
            if id == 0:
                raise BoxError(ER.NULLABLE_PRIMARY, space.name)
            if kind != "TREE":
                raise BoxError(ER.UNSUPPORTED, kind, "nullable parts")
        if kind == "HASH" and not unique:
            raise BoxError(ER.MODIFY_INDEX, name, space.name, "HASH index must be unique")
        check_part_types(space, name, part_list)
        merge_part_types(space.format, _definition_order(space, id, part_list, unique, source))
        idx = space.make_index(id, name, kind, part_list, unique)
        idx.type_shown = shown
        space.add_index(idx, source)
        self.bump()
        return idx

    def drop_index(self, space: Space, index: Any) -> None:
        self.check_writable()
        if index.iid == 0 and len(space.indexes) > 1:
            raise BoxError(ER.DROP_PRIMARY_KEY, space.name)
        space.drop_index(index)
        self.bump()

    def alter_index(self, space: Space, index: Any, *, name: str | None = None,
                    type: str | None = None, parts: Any = None, unique: bool | None = None) -> Any:
        """Rebuild the index with new options; on any error, keep the old one."""
        self.check_writable()
        old_iid = index.iid
        position = space.indexes.index(index)
        space.indexes.remove(index)
        space._refresh()  # the field types without the old definition
        try:
            new = self.create_index(
                space, name if name is not None else index.name,
                type=type if type is not None else index.type_shown,
                parts=parts if parts is not None else [p.given() for p in index.parts],
                unique=index.unique if unique is None else unique, id=old_iid, source=index)
        except BoxError:
            space.indexes.insert(position, index)
            space._refresh()
            raise
        if old_iid == 0:  # the primary key changed: secondaries order by it
            for sec in [i for i in space.indexes if i.iid != 0]:
                rebuilt = space.make_index(sec.iid, sec.name, sec.type_name, sec.parts, sec.unique)
                rebuilt.type_shown = sec.type_shown
                space.indexes.remove(sec)
                space.add_index(rebuilt)
        return new

    # -- functions -----------------------------------------------------------------------

    def create_function(self, name: str, owner: int, *, setuid: bool = False,
                        language: str = "LUA", if_not_exists: bool = False) -> None:
        self.check_writable()
        _check_name(name, ER.CREATE_FUNCTION)
        if name in self.functions:
            if if_not_exists:
                return
            raise BoxError(ER.FUNCTION_EXISTS, name)
        fid = max(f.id for f in self.functions.values()) + 1
        self.functions[name] = Function(fid, name, owner, setuid, language.upper())
        self.privileges.owner_of[("function", fid)] = owner
        self.privileges._rights.clear()
        self.changed()

    def drop_function(self, name: str, *, if_exists: bool = False) -> None:
        self.check_writable()
        f = self.functions.get(name)
        if f is None:
            if if_exists:
                return
            raise BoxError(ER.NO_SUCH_FUNCTION, name)
        del self.functions[name]
        self.privileges.drop_object("function", f.id)
        self.changed()

    # -- users, roles and grants ---------------------------------------------------------

    def create_user(self, name: str, password: str | None, owner: int, *,
                    if_not_exists: bool = False, role: bool = False) -> None:
        self.check_writable()
        existing = self.users.get(name)
        if existing is not None:
            if if_not_exists:
                return
            raise BoxError(ER.ROLE_EXISTS if role else ER.USER_EXISTS, name)
        user = self.users.create(name, password, role=role, owner=owner)
        P = self.privileges
        P.owner_of[("role" if role else "user", user.uid)] = owner
        if not role:
            P.grant(ADMIN, user, "role", PUBLIC, X, "public")
            P.grant(ADMIN, user, "universe", 0, SESSION | USAGE, "")
            P.grant(ADMIN, user, "user", user.uid, ALTER, name)
        P._rights.clear()
        self.changed()  # with its grants

    def drop_user(self, name: str, *, if_exists: bool = False, role: bool = False) -> None:
        self.check_writable()
        user = self.users.get(name)
        if user is None or (user.type == "role") != role:
            if if_exists:
                return
            raise BoxError(ER.NO_SUCH_ROLE if role else ER.NO_SUCH_USER, name)
        if user.uid in (GUEST, ADMIN, PUBLIC, REPLICATION, SUPER):
            raise BoxError(ER.DROP_USER, name, "the user or the role is a system")
        # Its grants go first, then the user (the order the WAL logs them in).
        self.privileges.drop_grantee(user.uid)
        self.privileges.drop_object("role" if role else "user", user.uid)
        self.users.drop(name, role=role)

    def resolve_object(self, object_type: str, object_name: Any) -> tuple[Any, str]:
        """(object id, display name) of a grant's object."""
        if object_type == "universe":
            return 0, ""
        if object_name in (None, ""):
            return "", ""
        if object_type == "space":
            s = self.by_name.get(object_name) if isinstance(object_name, str) else self.spaces.get(object_name)
            if s is None:
                raise BoxError(ER.NO_SUCH_SPACE, object_name)
            return s.id, s.name
        if object_type == "function":
            f = self.functions.get(object_name)
            if f is None:
                raise BoxError(ER.NO_SUCH_FUNCTION, object_name)
            return f.id, f.name
        if object_type in ("user", "role"):
            u = self.users.get(object_name)
            if u is None or (u.type == "role") != (object_type == "role"):
                raise BoxError(ER.NO_SUCH_ROLE if object_type == "role" else ER.NO_SUCH_USER,
                               object_name)
            return u.uid, u.name
        if object_type == "sequence":
            raise BoxError(ER.NO_SUCH_SEQUENCE, object_name)
        raise BoxError(ER.UNKNOWN_SCHEMA_OBJECT, object_type)

    def grant(self, grantor: int, grantee: str, privileges: str | int, object_type: str | None,
              object_name: Any, *, if_not_exists: bool = False, revoke: bool = False,
              if_exists: bool = False) -> None:
        """Grant (or revoke) privileges on an object, or a role.

        `grant(user, role_name)` (no object) grants a role, as Lua's two-argument
        form does. Only admin and the object's owner may grant on it. Grants do
        not change `schema_version` (Tarantool bumps it for spaces and indexes).
        """
        self.check_writable()
        user = self.users.get(grantee)
        if user is None:
            raise BoxError(ER.NO_SUCH_USER, grantee)
        if object_type is None:  # grant(user, privileges) or grant(user, role)
            object_type = "universe"
            if isinstance(privileges, str) and not is_privilege_list(privileges):
                object_type = "role"
        if object_type == "role":
            if object_name is None:
                object_name = privileges
            mask = X
        else:
            mask = parse_privileges(privileges, object_type)
        oid, shown = self.resolve_object(object_type, object_name)
        if grantor != ADMIN and self.privileges.owner_of.get((object_type, oid)) != grantor:
            raise access_denied("Grant", object_type, shown, self.users.by_id[grantor].name)
        if revoke:
            self.privileges.revoke(user, object_type, oid, mask, shown, if_exists)
        else:
            self.privileges.grant(grantor, user, object_type, oid, mask, shown, if_not_exists)
        self.changed()

    def _is_role(self, name: str) -> bool:
        u = self.users.get(name)
        return u is not None and u.type == "role"


def _check_name(name: Any, code: int) -> None:
    if not isinstance(name, str) or not name or len(name) > NAME_MAX or not name.isprintable():
        raise BoxError(ER.IDENTIFIER, name if isinstance(name, str) else str(name))


def ft_unpack(data: bytes) -> list[Any]:
    from .space import unpack_tuple
    return unpack_tuple(data)


def _format_field(given: Any) -> dict[str, Any]:
    """One format entry as Tarantool's Lua `update_format` reads it: a map with
    `name`/`type` keys and positional ones (key 1 is the name, or the type when
    `name` is given without `type`; key 2 the type when neither key is given),
    a (name, type) array, or a bare name."""
    if isinstance(given, (list, tuple)):  # a Lua array {'name', 'type', ...}
        given = {i + 1: v for i, v in enumerate(given)}
    if not isinstance(given, dict):
        return {"name": given}
    field: dict[Any, Any] = {}
    for k, v in given.items():
        if k == 1:
            if given.get("name") is not None:
                if given.get("type") is None:
                    field["type"] = v
                else:
                    field[1] = v
            else:
                field["name"] = v
        elif k == 2 and given.get("type") is None and given.get("name") is None:
            field["type"] = v
        else:
            field[k] = v
    return field


def normalize_format(fmt: Any) -> list[dict[str, Any]]:
    """A format given as maps, (name, type) pairs or names -> Tarantool's list
    of maps (`{'id', type = 'unsigned'}` arrives as {1: 'id', 'type': 'unsigned'})."""
    if fmt is None:
        return []
    if not isinstance(fmt, (list, tuple)):
        raise BoxError(ER.ILLEGAL_PARAMS, "format must be a list of fields")
    out = []
    seen = set()
    for i, f in enumerate(fmt):
        d = _format_field(f)
        name = d.get("name")
        if not isinstance(name, str):
            raise BoxError(ER.ILLEGAL_PARAMS, f"format[{i + 1}]: name (string) is expected")
        if not name:
            raise BoxError(ER.WRONG_SPACE_FORMAT, i + 1, "field name must be a string")
        if name in seen:
            raise BoxError(ER.SPACE_FIELD_IS_DUPLICATE, name)
        seen.add(name)
        if d.get("type") is None:
            d["type"] = "any"
        t = d["type"]
        if not isinstance(t, str):
            raise BoxError(ER.ILLEGAL_PARAMS, f"format[{i + 1}]: type must be a string")
        if ft.field_type_by_name(t) is None:
            raise BoxError(ER.WRONG_SPACE_FORMAT, i + 1, f"field {i + 1} has unknown field type",
                           message=f"Wrong space format field {i + 1}: field {i + 1} has unknown field type")
        out.append(d)
    return out


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _illegal(message: str) -> BoxError:
    return BoxError(ER.ILLEGAL_PARAMS, message)


_WRONG_PARTS = "; expected field1 id (number), field1 type (string), ..."
_PART_OPTIONS = ("collation", "is_nullable", "nullable_action", "action", "path", "sort_order")
FIELD_NO_MAX = 2**31 - 2  # 2.6: a 0-based field number past this is "too big"


# The system spaces whose rows describe what DDL made (logged by the WAL,
# written into snapshots), in the order their rows are applied.
LOGGED_SYSTEM_SPACES = (272, 280, 288, 296, 304, 312, 330)  # _schema _space _index _func _user _priv _truncate


def system_rows(schema: Schema) -> dict[int, dict[tuple[Any, ...], list[Any]]]:
    """The rows of the logged system spaces, by primary key, as admin sees them."""
    admin = schema.users.by_id[ADMIN]
    out = {}
    for sid in LOGGED_SYSTEM_SPACES:
        space = schema.spaces[sid]
        assert isinstance(space, SystemSpace)
        fieldnos = [p.fieldno for p in space.indexes[0].parts]
        out[sid] = {tuple(row[f] for f in fieldnos): row for row in space.rows(admin)}
    return out


# What a snapshot holds of the system spaces, in the order it writes them:
# Tarantool 2.6's bootstrap rows and what DDL made. _vspace_sequence's rows
# stay out: 2.6 has no such view, and refuses a snapshot that makes one.
SNAPSHOT_SYSTEM_SPACES = (272, 276, 280, 288, 296, 304, 312, 320, 330)


def snapshot_rows(schema: Schema) -> list[tuple[int, list[Any]]]:
    """The system rows of a snapshot, (space id, row), as admin sees them."""
    admin = schema.users.by_id[ADMIN]
    out = []
    for sid in SNAPSHOT_SYSTEM_SPACES:
        space = schema.spaces[sid]
        assert isinstance(space, SystemSpace)
        for row in space.rows(admin):
            if VSPACE_SEQUENCE in (row[0] if sid in (280, 288) else row[3] if sid == 312 else None,):
                continue
            out.append((sid, row))
    return out


def parse_parts(space: Space, parts: Any, index_name: str) -> list[Part]:
    """Index parts as box.schema's create_index takes them (2.6's
    update_index_parts, then the C decoder and index_def checks): flat
    {1, 'unsigned', 2, 'string'}; {{1, 'unsigned'}, ...}; maps {field=,
    type=, is_nullable=}; field names or bare numbers (the type from the
    format, else scalar)."""
    if not isinstance(parts, (list, tuple, dict)):
        raise _illegal("options.parts parameter should be a table")
    if isinstance(parts, dict):
        parts = [parts[i] for i in range(1, len(parts) + 1) if i in parts]
    if not parts:
        raise _illegal("options.parts must have at least one part")
    if _is_number(parts[0]) and len(parts) > 1 and isinstance(parts[1], str):
        if len(parts) % 2:
            raise _illegal("options.parts: expected field_no (number), type (string) pairs")
        items: list[dict[Any, Any]] = []
        for i in range(0, len(parts), 2):
            if not _is_number(parts[i]) or not isinstance(parts[i + 1], str):
                raise _illegal("options.parts: expected field_no (number), type (string) pairs")
            if parts[i] == 0:
                raise _illegal("invalid index parts: field_no must be one-based")
            items.append({"field": parts[i], "type": parts[i + 1]})
    else:
        items = []
        for item in parts:
            if isinstance(item, (list, tuple)):  # a Python app may write tuples
                part: dict[Any, Any] = {k + 1: v for k, v in enumerate(item)}
            elif isinstance(item, dict):
                part = dict(item)
            else:
                part = {"field": item}
            for k, name in ((1, "field"), (2, "type")):
                if k in part:
                    part[name] = part.pop(k)
            items.append(part)
    out: list[Part] = []
    pending: list[tuple[int, int, str, dict[Any, Any]]] = []
    for n, part in enumerate(items, 1):
        what = f"options.parts[{n}]"
        fld = part.get("field")
        if isinstance(fld, str):
            if fld not in space.field_names:
                raise _illegal(f"{what}: field was not found by name '{fld}'")
            fieldno = space.field_names[fld]
        elif fld is not None and _is_number(fld):
            if fld <= 0:
                raise _illegal(f"{what}: field (number) must be one-based")
            if fld != int(fld):
                raise BoxError(ER.WRONG_INDEX_PARTS, "field id must be an integer" + _WRONG_PARTS)
            fieldno = int(fld) - 1
        else:
            raise _illegal(f"{what}: field (name or number) is expected")
        f = space.format[fieldno] if fieldno < len(space.format) else None
        typ = part.get("type")
        if typ is None:
            typ = f.get("type", "any") if f is not None and f.get("type") else "scalar"
        elif not isinstance(typ, str):
            raise _illegal(f"{what}: type (string) is expected")
        extras = {k: v for k, v in part.items() if k not in ("field", "type")}
        if extras.get("is_nullable") is None:
            extras.pop("is_nullable", None)
            if f is not None and f.get("is_nullable"):
                extras["is_nullable"] = True
        elif not isinstance(extras["is_nullable"], bool):
            raise _illegal(f"{what}: type (boolean) is expected")
        pending.append((n, fieldno, typ, extras))
    map_form = any(extras for _, _, _, extras in pending)  # else _index gets [field, type]
    for n, fieldno, typ, extras in pending:
        for k in extras:  # the C decoder of the part's map
            if not isinstance(k, str):
                raise BoxError(ER.WRONG_INDEX_OPTIONS, n, "key must be a string")
            if k not in _PART_OPTIONS:
                raise BoxError(ER.WRONG_INDEX_OPTIONS, n, f"unexpected option '{k}'")
            if k != "is_nullable":
                raise BoxError(ER.UNSUPPORTED, "Styx", f"index part option '{k}'")
        t = ft.index_part_type_by_name(typ)
        if t is None:
            if map_form:
                raise BoxError(ER.WRONG_INDEX_OPTIONS, n, "index part: unknown field type")
            raise BoxError(ER.WRONG_INDEX_PARTS, "unknown field type" + _WRONG_PARTS)
        out.append(Part(fieldno, t, bool(extras.get("is_nullable", False)), extras))
    return out


def _min_field_count(fmt: list[dict[str, Any]], part_lists: list[list[Part]]) -> int:
    """2.6's tuple_format_min_field_count: past the last required field."""
    n = 0
    for i, f in enumerate(fmt):
        if not f.get("is_nullable"):
            n = i + 1
    for parts in part_lists:
        for p in parts:
            if not p.is_nullable:
                n = max(n, p.fieldno + 1)
    return n


def _definition_order(space: Space, iid: int, parts: list[Part], unique: bool,
                      old: Any) -> list[list[Part]]:
    """The order 2.6's alter lists index definitions in when it builds the new
    tuple format (which decides which of two clashing parts an error names):
    a new definition goes last, a primary key first. Altering an index
    (`old`), the others stay in place -- but one that is re-created goes last
    too: every one when the space's min_field_count changes, those depending
    on the primary key (non-unique or nullable) when the primary key changes."""
    others = sorted(space.indexes, key=lambda i: i.iid)  # without `old`
    if old is None:
        lists = [i.parts for i in others]
        return [parts] + lists if iid == 0 else lists + [parts]
    changed = (_min_field_count(space.format, [i.parts for i in others] + [old.parts])
               != _min_field_count(space.format, [i.parts for i in others] + [parts]))
    order: list[tuple[int, list[Part]]] = sorted(
        [(i.iid, i.parts) for i in others] + [(iid, old.parts)], key=lambda e: e[0])
    for i in sorted([i.iid for i in others] + [iid]):
        entry = next(e for e in order if e[0] == i)
        if i == iid:
            order.remove(entry)
            order.insert(0, (iid, parts)) if iid == 0 else order.append((iid, parts))
            continue
        idx = next(x for x in others if x.iid == i)
        if changed or iid == 0 and (not idx.unique or idx.nullable):
            order.remove(entry)
            order.append(entry)
    return [p for _, p in order]


def merge_part_types(fmt: list[dict[str, Any]], part_lists: list[list[Part]]) -> None:
    """2.6's tuple_format_create: a field's type is the format's, narrowed by
    every index part on it, index by index; a part must contain the field's
    type so far or be contained by it -- else 27 while only the format typed
    the field, 24 once another part did."""
    types = {i: ft.field_type_by_name(str(f.get("type", "any"))) or ft.ANY
             for i, f in enumerate(fmt)}
    keyed: set[int] = set()
    for parts in part_lists:
        for p in parts:
            cur = types.get(p.fieldno, ft.ANY)
            if ft.field_type_contains(cur, p.type):
                types[p.fieldno] = p.type
            elif not ft.field_type_contains(p.type, cur):
                code = (ER.INDEX_PART_TYPE_MISMATCH if p.fieldno in keyed
                        else ER.FORMAT_MISMATCH_INDEX_PART)
                raise BoxError(code, p.fieldno + 1, cur, p.type)
            keyed.add(p.fieldno)


def check_parts(space: Space, name: str, parts: list[Part]) -> None:
    """index_def_check's part checks (after 'primary key must be unique')."""
    seen = set()
    for p in parts:
        if p.fieldno > FIELD_NO_MAX:
            raise BoxError(ER.MODIFY_INDEX, name, space.name, "field no is too big")
    for p in parts:
        if p.fieldno in seen:
            raise BoxError(ER.MODIFY_INDEX, name, space.name, "same key part is indexed twice")
        seen.add(p.fieldno)


def check_part_types(space: Space, name: str, parts: list[Part]) -> None:
    """memtx's last check of a TREE or HASH definition."""
    for p in parts:
        if p.type in (ft.ANY, ft.ARRAY, ft.MAP):
            raise BoxError(ER.MODIFY_INDEX, name, space.name,
                           f"field type '{p.type}' is not supported")


# -- TREE iteration over computed rows (system spaces) ------------------------------------


def select_rows(rows: Iterable[list[Any]], index: SysIndex, iterator: int, key: Sequence[Any],
                offset: int = 0, limit: int = 0xFFFFFFFF) -> list[list[Any]]:
    """SELECT over rows with a TREE index's iterators (EQ, REQ, ALL, LT, LE, GE, GT)."""
    specs = [p.spec() for p in index.parts]
    make = ft.key_maker(specs)
    ordered = sorted(rows, key=make)
    if iterator in (C.ITER_REQ, C.ITER_LT, C.ITER_LE):
        ordered.reverse()
    if iterator not in (C.ITER_EQ, C.ITER_REQ, C.ITER_ALL, C.ITER_GE, C.ITER_GT,
                        C.ITER_LE, C.ITER_LT):
        raise BoxError(ER.ITERATOR_TYPE, iterator)
    if not key or iterator == C.ITER_ALL:
        matched = ordered
    else:
        lo, hi = ft.key_bounds(key, specs)
        tests = {
            C.ITER_EQ: lambda k: lo <= k <= hi, C.ITER_REQ: lambda k: lo <= k <= hi,
            C.ITER_GE: lambda k: k >= lo, C.ITER_GT: lambda k: k > hi,
            C.ITER_LE: lambda k: k <= hi, C.ITER_LT: lambda k: k < lo,
        }
        test = tests[iterator]
        matched = [r for r in ordered if test(make(r))]
    return matched[offset:offset + limit]


__all__ += ["Function", "normalize_format", "ALL"]
