"""The schema: system spaces, their rows, and `schema_version`.

Connectors learn a server's schema by reading its system views (`_vspace`,
`_vindex`, `_vcollation`, ...) with ordinary SELECTs, and they watch the
`schema_version` every reply carries. So the schema must answer those
SELECTs with Tarantool's own tuple layouts (read off Tarantool 2.6: ids,
names, formats and index parts below are Tarantool's), and the version must
be non-zero, stable, and grow with every DDL.

The rows of a system space are computed from live state (users, spaces)
when it is read, so they can never disagree with it. A SELECT on a system
space runs over its rows sorted by the chosen index, with Tarantool's
TREE iterator semantics (`select_rows`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from ..protocol import constants as C
from ..protocol.errors import ER, BoxError
from .users import Users

__all__ = ["Schema", "SpaceDef", "IndexDef", "select_rows"]

# Tarantool's schema_version after bootstrap is large (every bootstrap DDL
# bumps it); 2.6 starts at 80. Clients only need it non-zero and stable.
INITIAL_SCHEMA_VERSION = 80


@dataclass
class IndexDef:
    iid: int
    name: str
    type: str
    unique: bool
    parts: list[tuple[int, str]]  # (0-based field number, type)

    def row(self, space_id: int) -> list[Any]:
        return [space_id, self.iid, self.name, self.type, {"unique": self.unique},
                [[f, t] for f, t in self.parts]]


@dataclass
class SpaceDef:
    id: int
    name: str
    engine: str
    format: list[dict[str, Any]]
    indexes: list[IndexDef]
    owner: int = 1
    field_count: int = 0
    flags: dict[str, Any] = field(default_factory=dict)
    rows: Callable[[], Iterable[list[Any]]] = lambda: ()

    def row(self) -> list[Any]:
        return [self.id, self.owner, self.name, self.engine, self.field_count,
                dict(self.flags), [dict(f) for f in self.format]]

    def index(self, iid: int) -> IndexDef | None:
        for idx in self.indexes:
            if idx.iid == iid:
                return idx
        return None


def _fmt(*fields: str) -> list[dict[str, Any]]:
    out = []
    for f in fields:
        name, _, typ = f.partition(":")
        out.append({"name": name, "type": typ})
    return out


def _idx(iid: int, name: str, unique: bool, *parts: tuple[int, str]) -> IndexDef:
    return IndexDef(iid, name, "tree", unique, list(parts))


_SPACE_FMT = _fmt("id:unsigned", "owner:unsigned", "name:string", "engine:string",
                  "field_count:unsigned", "flags:map", "format:array")
_INDEX_FMT = _fmt("id:unsigned", "iid:unsigned", "name:string", "type:string", "opts:map",
                  "parts:array")
_COLL_FMT = _fmt("id:unsigned", "name:string", "owner:unsigned", "type:string", "locale:string",
                 "opts:map")
_USER_FMT = _fmt("id:unsigned", "owner:unsigned", "name:string", "type:string", "auth:map")
_PRIV_FMT = _fmt("grantor:unsigned", "grantee:unsigned", "object_type:string",
                 "object_id:scalar", "privilege:unsigned")
_FUNC_FMT = _fmt("id:unsigned", "owner:unsigned", "name:string", "setuid:unsigned")
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

# The collations every Tarantool has first (ids are dense from 0: net.box
# indexes _vcollation rows by position).
COLLATIONS = [
    [0, "none", 1, "BINARY", "", {}],
    [1, "unicode", 1, "ICU", "", {"strength": "tertiary"}],
    [2, "unicode_ci", 1, "ICU", "", {"strength": "primary"}],
    [3, "binary", 1, "BINARY", "", {}],
]


class Schema:
    """The spaces a server has, and its schema version (owned by TX)."""

    def __init__(self, users: Users) -> None:
        self.users = users
        self.version = INITIAL_SCHEMA_VERSION
        self.spaces: dict[int, SpaceDef] = {}
        self.by_name: dict[str, SpaceDef] = {}
        space_rows = lambda: [s.row() for s in self.spaces.values()]  # noqa: E731
        index_rows = lambda: [i.row(s.id) for s in self.spaces.values() for i in s.indexes]  # noqa: E731
        user_rows = lambda: [u.row()[:5] for u in self.users.by_id.values()]  # noqa: E731
        for sid, name, engine, fmt, idx, rows in (
            (272, "_schema", "memtx", _fmt("key:string", "value:any"),
             [_idx(0, "primary", True, (0, "string"))], lambda: [["version", 2, 6, 0]]),
            (276, "_collation", "memtx", _COLL_FMT, _BY_ID_NAME, lambda: COLLATIONS),
            (277, "_vcollation", "sysview", _COLL_FMT, _BY_ID_NAME, lambda: COLLATIONS),
            (280, "_space", "memtx", _SPACE_FMT, _BY_ID_OWNER_NAME, space_rows),
            (281, "_vspace", "sysview", _SPACE_FMT, _BY_ID_OWNER_NAME, space_rows),
            (288, "_index", "memtx", _INDEX_FMT, _BY_SPACE_IID, index_rows),
            (289, "_vindex", "sysview", _INDEX_FMT, _BY_SPACE_IID, index_rows),
            (296, "_func", "memtx", _FUNC_FMT, _BY_ID_OWNER_NAME, lambda: []),
            (297, "_vfunc", "sysview", _FUNC_FMT, _BY_ID_OWNER_NAME, lambda: []),
            (304, "_user", "memtx", _USER_FMT, _BY_ID_OWNER_NAME, user_rows),
            (305, "_vuser", "sysview", _USER_FMT, _BY_ID_OWNER_NAME, user_rows),
            (312, "_priv", "memtx", _PRIV_FMT, _BY_PRIV, lambda: []),
            (313, "_vpriv", "sysview", _PRIV_FMT, _BY_PRIV, lambda: []),
            (340, "_space_sequence", "memtx", _SPACE_SEQ_FMT, _BY_SEQ, lambda: []),
            (341, "_vspace_sequence", "sysview", _SPACE_SEQ_FMT, _BY_SEQ, lambda: []),
        ):
            self.add(SpaceDef(sid, name, engine, fmt, idx, rows=rows))
        self.spaces[272].format[1]["is_nullable"] = True

    def add(self, space: SpaceDef) -> None:
        self.spaces[space.id] = space
        self.by_name[space.name] = space

    def bump(self) -> None:
        """Every DDL: clients refetch the schema when they see a new version."""
        self.version += 1

    def space(self, space_id: int | None, name: str | None = None) -> SpaceDef:
        if name is not None:
            s = self.by_name.get(name)
            if s is None:
                raise BoxError(ER.NO_SUCH_SPACE, name)
            return s
        s = self.spaces.get(space_id)  # type: ignore[arg-type]
        if s is None:
            raise BoxError(ER.NO_SUCH_SPACE, space_id)
        return s


# -- TREE iteration over a list of rows -------------------------------------------

_TYPE_RANK = {bool: 1, int: 2, float: 2, str: 3, bytes: 4}


def _key_of(row: list[Any], parts: list[tuple[int, str]]) -> tuple[Any, ...]:
    return tuple(_sortable(row[f]) if f < len(row) else (0, None) for f, _ in parts)


def _sortable(v: Any) -> tuple[int, Any]:
    # Scalar order across types, as Tarantool's scalar: bool < number < string < binary.
    return (_TYPE_RANK.get(type(v), 9), v)


def select_rows(rows: Iterable[list[Any]], index: IndexDef, iterator: int, key: list[Any],
                offset: int = 0, limit: int = 0xFFFFFFFF) -> list[list[Any]]:
    """SELECT over rows with a TREE index's iterators (EQ, REQ, ALL, LT, LE, GE, GT)."""
    if len(key) > len(index.parts):
        raise BoxError(ER.KEY_PART_COUNT, len(index.parts), len(key))
    ordered = sorted(rows, key=lambda r: _key_of(r, index.parts))
    k = tuple(_sortable(v) for v in key)
    n = len(k)
    if iterator in (C.ITER_REQ, C.ITER_LT, C.ITER_LE):
        ordered.reverse()
    if not key or iterator == C.ITER_ALL:
        if iterator not in (C.ITER_EQ, C.ITER_REQ, C.ITER_ALL, C.ITER_GE, C.ITER_GT,
                            C.ITER_LE, C.ITER_LT):
            raise BoxError(ER.ITERATOR_TYPE, iterator)
        matched: list[list[Any]] = ordered
    else:
        tests = {
            C.ITER_EQ: lambda rk: rk == k, C.ITER_REQ: lambda rk: rk == k,
            C.ITER_GE: lambda rk: rk >= k, C.ITER_GT: lambda rk: rk > k,
            C.ITER_LE: lambda rk: rk <= k, C.ITER_LT: lambda rk: rk < k,
        }
        test = tests.get(iterator)
        if test is None:
            raise BoxError(ER.ITERATOR_TYPE, iterator)
        matched = [r for r in ordered if test(_key_of(r, index.parts)[:n])]
    return matched[offset:offset + limit]
