"""`box.space` and `box.schema.space`, as the app sees them.

Python manners over Tarantool's names: `box.space.test.insert([1, "a"])`,
`box.space["test"].select([1], iterator="GE", limit=10)`,
`box.space.test.index.name.get(["x"])`,
`box.schema.space.create("test", format=[("id", "unsigned")], if_not_exists=True)`.
Tuples come back as Python lists. Options are keyword arguments; iterators
are names ("GE") or numbers.

Every call runs as the fiber's effective user, with Tarantool's access
checks: a procedure called by `guest` cannot read a space guest has no
grant on (in `init()` and module code the user is `admin`).

What the objects hold: the schema (spaces, privileges, DDL), the users
(only for `admin`, the effective user outside a request: inside one it is
the fiber's session's user) and TX's box.stat counters (the API's data
calls count as requests, as Tarantool's do). Not the whole `Tx`: a space
object has no business with pipes, sessions or configuration, and what it
can reach is now what its constructor names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ..box.index import ITERATOR_NAMES
from ..box.privileges import R, W, access_denied
from ..box.schema import SystemSpace
from ..box.space import Space, unpack_tuple
from ..protocol import constants as C
from ..protocol.errors import ER, BoxError, error_from_exception
from . import fiber as fiber_mod

if TYPE_CHECKING:
    from ..box.schema import Schema
    from ..box.users import User, Users

__all__ = ["SpacesApi", "SpaceApi", "IndexApi", "SchemaSpaceApi", "iterator_code", "effective_user"]


def effective_user(users: Users) -> User:
    """The current fiber's session's user; `admin` with no session (init()
    and module code): all it needs of TX is where to find admin."""
    f = fiber_mod.current.get()
    if f is None:
        return users.by_id[1]
    user: User | None = f.user or (f.session.user if f.session is not None else None)  # su's first
    return user if user is not None else users.by_id[1]


ABSENT: Any = object()  # an option not given
LUA_NULL: Any = object()  # box.NULL given over CALL (the Python API's None is "not given")


def iterator_code(it: Any, key_is_nil: bool = False) -> int:
    """Lua's check_iterator_type: no iterator (or false) is ALL for a nil or
    empty key, EQ otherwise; a name is looked up case-insensitively; a number
    is taken as is; anything else (box.NULL over CALL included) is error 72."""
    if it is ABSENT or it is None or it is False:
        return C.ITER_ALL if key_is_nil else C.ITER_EQ
    if isinstance(it, str):
        code = ITERATOR_NAMES.get(it.upper())
        if code is None:
            raise BoxError(ER.ITERATOR_TYPE, it)
        return code
    if isinstance(it, int) and not isinstance(it, bool):
        return it
    if it is LUA_NULL:
        raise BoxError(ER.ITERATOR_TYPE, "cdata<void *>: NULL")
    if it is True:
        raise BoxError(ER.ITERATOR_TYPE, "true")
    raise BoxError(ER.ITERATOR_TYPE, repr(it))


def _in_txn(space: Any) -> Any:
    """The space as the current fiber's transaction sees it, if there is one."""
    f = fiber_mod.current.get()
    if f is not None and f.txn is not None and type(space) is Space:
        return f.txn.view(space)
    return space


def _key(key: Any) -> list[Any]:
    """A key as Lua's tuple_encode() makes it for reads (select, get, count,
    min, max): nil is the empty key, a table its array part (a map with no
    keys 1..n is empty), anything else -- 0, '' and false included -- a
    one-part key."""
    if key is None:
        return []
    if isinstance(key, (list, tuple)):
        return list(key)
    if isinstance(key, dict):
        out: list[Any] = []
        while len(out) + 1 in key:
            out.append(key[len(out) + 1])
        return out
    return [key]


def _key_is_nil(key: Any) -> bool:
    """Lua's `key == nil or (type(key) == 'table' and #key == 0)`."""
    return key is None or (isinstance(key, (list, tuple, dict)) and not _key(key))


def _write_key(key: Any) -> list[Any]:
    """A key as delete and update send it (keify, then MsgPack): a map is
    not an array (22)."""
    if isinstance(key, dict):
        raise BoxError(ER.TUPLE_NOT_ARRAY)
    return _key(key)


def _tuple(t: Any) -> list[Any]:
    if isinstance(t, tuple):
        return list(t)
    if not isinstance(t, list):
        raise BoxError(ER.TUPLE_NOT_ARRAY)
    return t


class Members:
    """What the box API's objects answer for a member they do not have: an
    AttributeError that names it (`box.space.tester.frob`), not Python's
    "'SpaceApi' object has no attribute 'frob'"."""

    API_NAME = "box"

    def _api_name(self) -> str:
        return self.API_NAME

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # Python's own lookups (copy, pickle) and the internals'
            raise AttributeError(name)
        raise AttributeError(f"{self._api_name()}.{name}: Styx's box has no such member (README: 'The box API')")


class Tuple(list[Any]):
    """A tuple as the Python API returns it: a list (it compares, slices and
    packs as one), that also answers to its space's field names, as
    Tarantool's tuples do: `t["name"]`, `t.tomap()`."""

    __slots__ = ("_names",)

    def __init__(self, fields: list[Any], names: dict[str, int]) -> None:
        super().__init__(fields)
        self._names = names

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            i = self._names.get(key)
            if i is None or i >= len(self):
                raise KeyError(key)
            return list.__getitem__(self, i)
        return list.__getitem__(self, key)

    def tomap(self, names_only: bool = False) -> dict[Any, Any]:
        """Tarantool's tuple:tomap(): field numbers (from 1) and names to
        values; with `names_only`, the names only."""
        out: dict[Any, Any] = {} if names_only else {i + 1: v for i, v in enumerate(self)}
        for name, i in self._names.items():
            if i < len(self):
                out[name] = list.__getitem__(self, i)
        return out


def set_trigger(what: str, triggers: list[Any], trigger: Any, old: Any,
                wrap: Callable[[Any], Any] = lambda fn: fn) -> Any:
    """Tarantool's trigger API on a list of triggers (newest first):
    (fn) adds fn, (fn, old) puts fn in old's place, (None, old) removes old,
    () lists them. `wrap` makes what the list holds of a function (its `fn`
    is the function)."""
    def fn_of(t: Any) -> Any:
        return getattr(t, "fn", t)

    if trigger is None and old is None:
        return [fn_of(t) for t in triggers]
    if trigger is not None and not callable(trigger):
        raise BoxError(ER.PROC_LUA, message="trigger reference must be a function or nil")
    if old is not None:
        at = next((i for i, t in enumerate(triggers) if fn_of(t) is old), None)
        if at is None:
            raise BoxError(ER.PROC_LUA, message=f"{what}: trigger is not found")
        del triggers[at]
        if trigger is None:
            return None
        triggers.insert(at, wrap(trigger))
        return trigger
    triggers.insert(0, wrap(trigger))
    return trigger


class _Trigger:
    """An on_replace trigger as the space runs it: tuples as the API gives
    them (with the space's field names)."""

    __slots__ = ("space", "fn")

    def __init__(self, space: Any, fn: Callable[..., Any]) -> None:
        self.space = space
        self.fn = fn

    def __call__(self, old: list[Any] | None, new: list[Any] | None, space_name: str, kind: str) -> None:
        names = {f["name"]: i for i, f in enumerate(self.space.format)}
        try:
            self.fn(None if old is None else Tuple(old, names), None if new is None else Tuple(new, names),
                    space_name, kind)
        except BoxError:
            raise
        except Exception as e:  # what a request answers: error 32 with the trigger's exception
            raise error_from_exception(e) from e


def _tuples(space: Any, datas: Any) -> list[Tuple]:
    names = {f["name"]: i for i, f in enumerate(space.format)}
    return [Tuple(unpack_tuple(d), names) for d in datas]


def _tuple_or_none(space: Any, data: bytes | None) -> Tuple | None:
    return None if data is None else _tuples(space, (data,))[0]


class _Live(Members):
    """Holds a space (and index) by id, found again on every call: an object
    kept past a drop, rename or alter sees what Tarantool's would (35, 36)."""

    def __init__(self, schema: Schema, users: Users, req_counts: list[int],
                 space: Space | SystemSpace, index: Any = None) -> None:
        self._schema = schema
        self._users = users
        self._req_counts = req_counts  # box.stat's, by request type
        self._sid = space.id
        self._name = space.name
        self._iid = None if index is None else index.iid

    @property
    def _space(self) -> Any:
        s = self._schema.spaces.get(self._sid)
        if s is None:
            raise BoxError(ER.NO_SUCH_SPACE, self._sid)  # data calls name it by id
        self._name = s.name
        return s

    @property
    def _index(self) -> Any:
        return self._space.index(iid=self._iid)

    def _index_api(self, space: Space | SystemSpace, index: Any) -> IndexApi:
        return IndexApi(self._schema, self._users, self._req_counts, space, index)

    def _read(self) -> Any:
        """Check read access; the space as this fiber's transaction sees it."""
        s = self._space
        self._schema.privileges.check(effective_user(self._users), "space", s.id, s.name, R)
        return _in_txn(s)


    def _write(self) -> Any:
        """Check write access; the space (or its view in this fiber's transaction)."""
        s = self._space
        self._schema.privileges.check(effective_user(self._users), "space", s.id, s.name, W)
        if isinstance(s, SystemSpace):
            raise BoxError(ER.UNSUPPORTED, "Styx",
                           f"changing the system space '{s.name}' directly: use box.schema")
        return _in_txn(s)


    def _ddl(self) -> Space:
        if self._sid not in self._schema.spaces:
            raise BoxError(ER.NO_SUCH_SPACE, self._name)  # DDL names it by name
        s = self._space
        user = effective_user(self._users)
        if isinstance(s, SystemSpace):
            raise BoxError(ER.UNSUPPORTED, "Styx", "altering system spaces")
        if s.owner != user.uid:
            self._schema.privileges.check(user, "universe", 0, "", ALTER_ANY)
        return s



class IndexApi(_Live):
    def _api_name(self) -> str:
        index = next((i.name for i in getattr(self._schema.spaces.get(self._sid), "indexes", ())
                      if i.iid == self._iid), self._iid)
        return f"box.space.{self._name}.index.{index}"

    """`box.space.NAME.index.IDX`."""

    @property
    def id(self) -> int:
        return self._index.iid

    @property
    def name(self) -> str:
        return self._index.name

    @property
    def type(self) -> str:
        return self._index.type_name

    @property
    def unique(self) -> bool:
        return self._index.unique

    @property
    def parts(self) -> list[dict[str, Any]]:
        # In the order Tarantool 2.6's Lua tables come out in over IPROTO.
        return [{"type": p.type, "is_nullable": p.is_nullable, "fieldno": p.fieldno + 1}
                for p in self._index.parts]

    def select(self, key: Any = None, *, iterator: Any = ABSENT, limit: int = 0xFFFFFFFF,
               offset: int = 0, after: Any = None, fetch_pos: bool = False) -> Any:
        self._req_counts[C.SELECT] += 1  # box.stat counts the API's requests too
        s = self._read()
        it = iterator_code(iterator, _key_is_nil(key))
        if isinstance(s, SystemSpace):
            rows = _tuples(s, s.select(effective_user(self._users), self._index, it, _key(key), offset, limit))
            return (rows, None) if fetch_pos else rows
        after_key = None
        if after is not None:
            after_key = (self._index.after_key(after) if isinstance(after, (bytes, str))
                         else self._index.key_of(_tuple(after)))
        data = s.select(self._index, it, _key(key), offset, limit, after_key)
        rows = _tuples(self._space, data)
        if fetch_pos:
            pos = self._index.position_of(rows[-1]) if rows else None
            return rows, pos
        return rows

    def pairs(self, key: Any = None, *, iterator: Any = ABSENT) -> Iterator[list[Any]]:
        return iter(self.select(key, iterator=iterator))

    def get(self, key: Any) -> list[Any] | None:
        self._req_counts[C.SELECT] += 1
        s = self._read()
        if isinstance(s, SystemSpace):
            rows = self.select(key)
            return rows[0] if rows else None
        return _tuple_or_none(self._space, s.get(self._index, _key(key)))

    def _tree_only(self, what: str) -> None:
        """min() and max() are TREE's (checked before the key, as 2.6 does)."""
        idx = self._index
        if idx.type_name != "TREE":
            s = self._space
            raise BoxError(ER.UNSUPPORTED_INDEX_FEATURE, idx.name, idx.type_name, s.name,
                           s.engine, what)

    def min(self, key: Any = None) -> list[Any] | None:
        """The first tuple whose key starts with `key` (all, with no key)."""
        self._read()
        self._tree_only("min()")
        rows = self.select(_key(key), iterator="EQ", limit=1)
        return rows[0] if rows else None

    def max(self, key: Any = None) -> list[Any] | None:
        self._read()
        self._tree_only("max()")
        rows = self.select(_key(key), iterator="REQ", limit=1)
        return rows[0] if rows else None

    def count(self, key: Any = None, *, iterator: Any = ABSENT) -> int:
        s = self._read()
        if isinstance(s, SystemSpace):
            return len(self.select(key, iterator=iterator))
        it = iterator_code(iterator, _key_is_nil(key))
        return s.count(self._index, it, _key(key))

    def len(self) -> int:
        return self.count()

    __len__ = len

    def update(self, key: Any, ops: Any, *, index_base: int = 1) -> list[Any] | None:
        self._req_counts[C.UPDATE] += 1
        data = self._write().update(self._index, _write_key(key), ops, index_base)
        return _tuple_or_none(self._space, data)

    def delete(self, key: Any) -> list[Any] | None:
        self._req_counts[C.DELETE] += 1
        return _tuple_or_none(self._space, self._write().delete(self._index, _write_key(key)))

    def drop(self) -> None:
        s = self._ddl()
        self._schema.drop_index(s, self._index)

    def alter(self, *, name: str | None = None, type: str | None = None, parts: Any = None,
              unique: bool | None = None) -> None:
        s = self._ddl()
        self._schema.alter_index(s, self._index, name=name, type=type, parts=parts,
                                 unique=unique)

    def rename(self, name: str) -> None:
        self.alter(name=name)

    def info(self) -> dict[str, Any]:
        return {"unique": self.unique, "parts": self.parts, "id": self.id,
                "space_id": self._space.id, "type": self.type, "name": self.name}


ALTER_ANY = 128  # alter


class IndexesApi(_Live):
    """`box.space.NAME.index`: by name (attribute or item) or by number."""

    def __getitem__(self, key: int | str) -> IndexApi:
        try:
            idx = (self._space.index(name=key) if isinstance(key, str)
                   else self._space.index(iid=key))
        except BoxError:
            raise KeyError(key) from None
        return self._index_api(self._space, idx)

    def __getattr__(self, name: str) -> IndexApi:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __iter__(self) -> Iterator[IndexApi]:
        return (self._index_api(self._space, i) for i in self._space.indexes)

    def __len__(self) -> int:
        return len(self._space.indexes)

    def __contains__(self, key: object) -> bool:
        try:
            self[key]  # type: ignore[index]  # any key: __getitem__ raises KeyError for a wrong one
        except KeyError:
            return False
        return True


class SpaceApi(_Live):
    def _api_name(self) -> str:
        return f"box.space.{self._name}"

    """`box.space.NAME`: data requests on the primary index, and DDL."""

    def __init__(self, schema: Schema, users: Users, req_counts: list[int],
                 space: Space | SystemSpace) -> None:
        super().__init__(schema, users, req_counts, space)
        self.index = IndexesApi(schema, users, req_counts, space)

    def __repr__(self) -> str:
        return f"<box.space.{self._space.name}>"

    @property
    def id(self) -> int:
        return self._space.id

    @property
    def name(self) -> str:
        return self._space.name

    @property
    def engine(self) -> str:
        return self._space.engine

    @property
    def field_count(self) -> int:
        return self._space.field_count

    def _pk(self) -> IndexApi:
        if not self._space.indexes:
            raise BoxError(ER.NO_SUCH_INDEX_ID, 0, self._space.name)
        return self._index_api(self._space, self._space.indexes[0])

    def on_replace(self, trigger: Callable[..., Any] | None = None,
                   old: Callable[..., Any] | None = None) -> Any:
        """Tarantool's `space:on_replace(trigger[, old])`: `trigger(old_tuple,
        new_tuple, space_name, request_type)` runs after each statement on
        the space (in a transaction, at its commit); one that raises undoes
        the statement, and the caller gets its error. `old` names a trigger
        to replace (with `trigger` None: to remove). No arguments: the
        triggers set."""
        s = self._space
        if isinstance(s, SystemSpace):
            raise BoxError(ER.UNSUPPORTED, "Styx", "triggers on system spaces")
        return set_trigger("on_replace", s.on_replace, trigger, old, lambda fn: _Trigger(s, fn))

    def insert(self, tuple: Any) -> list[Any]:
        self._req_counts[C.INSERT] += 1
        return _tuples(self._space, (self._write().insert(_tuple(tuple)),))[0]

    def replace(self, tuple: Any) -> list[Any]:
        self._req_counts[C.REPLACE] += 1
        return _tuples(self._space, (self._write().replace(_tuple(tuple)),))[0]

    put = replace

    def upsert(self, tuple: Any, ops: Any, *, index_base: int = 1) -> None:
        self._req_counts[C.UPSERT] += 1
        self._write().upsert(_tuple(tuple), ops, index_base)

    def update(self, key: Any, ops: Any, *, index_base: int = 1) -> list[Any] | None:
        return self._pk().update(key, ops, index_base=index_base)

    def delete(self, key: Any) -> list[Any] | None:
        return self._pk().delete(key)

    def select(self, key: Any = None, **options: Any) -> Any:
        return self._pk().select(key, **options)

    def pairs(self, key: Any = None, **options: Any) -> Iterator[list[Any]]:
        return self._pk().pairs(key, **options)

    def get(self, key: Any) -> list[Any] | None:
        return self._pk().get(key)

    def count(self, key: Any = None, **options: Any) -> int:
        if not self._space.indexes:
            return 0  # Tarantool counts nothing in a space with no index
        return self._pk().count(key, **options)

    def len(self) -> int:
        s = self._read()
        return len(self.select()) if isinstance(s, SystemSpace) else len(s)

    __len__ = len

    def bsize(self) -> int:
        return self._space.bsize() if isinstance(self._space, Space) else 0

    def truncate(self) -> None:
        s = self._write()
        s.truncate()

    def drop(self) -> None:
        s = self._ddl()
        self._schema.drop_space(s)

    def rename(self, name: str) -> None:
        s = self._ddl()
        self._schema.rename_space(s, name)

    def format(self, format: Any = None) -> list[dict[str, Any]] | None:
        if format is None:
            return [dict(f) for f in self._space.format]
        s = self._ddl()
        self._schema.set_format(s, format)
        return None

    def create_index(self, name: str, *, type: str | None = None, parts: Any = None,
                     unique: bool | None = None, id: int | None = None,
                     if_not_exists: bool = False) -> IndexApi:
        s = self._ddl()
        idx = self._schema.create_index(s, name, type=type, parts=parts, unique=unique, id=id,
                                        if_not_exists=if_not_exists)
        return self._index_api(s, idx)

    def info(self) -> dict[str, Any]:
        s = self._space
        return {"id": s.id, "name": s.name, "engine": s.engine, "field_count": s.field_count,
                "temporary": bool(s.flags.get("temporary", False)), "is_local": False,
                "enabled": bool(s.indexes)}


class SpacesApi:
    """`box.space`: spaces by name (attribute or item) or by id."""

    def __init__(self, schema: Schema, users: Users, req_counts: list[int]) -> None:
        self._schema = schema
        self._users = users
        self._req_counts = req_counts

    def __getitem__(self, key: int | str) -> SpaceApi:
        schema = self._schema
        s = schema.by_name.get(key) if isinstance(key, str) else schema.spaces.get(key)
        if s is None:
            raise KeyError(key)
        return SpaceApi(schema, self._users, self._req_counts, s)

    def __getattr__(self, name: str) -> SpaceApi:
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"box.space has no space {name!r}") from None

    def __contains__(self, key: object) -> bool:
        schema = self._schema
        return key in schema.by_name or key in schema.spaces

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._schema.by_name))


class SchemaSpaceApi(Members):
    """`box.schema.space`."""

    API_NAME = "box.schema.space"

    def __init__(self, schema: Schema, users: Users, req_counts: list[int]) -> None:
        self._schema = schema
        self._users = users
        self._req_counts = req_counts

    def create(self, name: str, *, format: Any = None, id: int | None = None,
               if_not_exists: bool = False, engine: str = "memtx", field_count: int = 0,
               temporary: bool = False, is_local: bool = False, user: str | None = None) -> SpaceApi:
        schema = self._schema
        u = effective_user(self._users)
        try:
            schema.privileges.check(u, "universe", 0, "", 32)  # create
        except BoxError as e:
            if (e.fields or {}).get("access_type") != "Create":
                raise
            # 2.6 checks it on the space being created, and names it
            raise access_denied("Create", "space", name, u.name) from None
        created = schema.create_space(name, u.uid, id=id, format=format, field_count=field_count,
                                      if_not_exists=if_not_exists, engine=engine,
                                      temporary=temporary, is_local=is_local, user=user)
        return SpaceApi(schema, self._users, self._req_counts,
                        created if created is not None else schema.by_name[name])
