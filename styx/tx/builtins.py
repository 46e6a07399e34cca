"""Tarantool's Lua API over IPROTO_CALL: `box.space.test:select`, `box.info`, ...

Tarantool users drive a server with CALLs of Lua names: `conn.call(
"box.schema.space.create", "test", {"if_not_exists": true})`, `conn.call(
"box.space.test:insert", [1, "a"])`, `conn.call("box.info")`. There is no Lua
here, so this module maps those names onto the Python box API: method
names after `:` (Lua's colon call), Lua option tables as dicts, iterator
names as strings.

A builtin is a "global function" as Tarantool sees it: calling one needs
execute on the universe (admin has it; grant it to others), and then the
checks of whatever it touches. Results are Lua's return values: one value
each (a list of tuples for `select`, a tuple or nil for `get`), none for
calls that return nothing.

`Builtins` takes the server's `Box` and nothing else of TX: every builtin
is a call of the Python box API (box.info, box.stat, box.schema.*,
box.space.*, box.begin...), so a CALL of "box.stat" can do no more than
`box.stat()` in a procedure, and both show the same thing.
"""

from __future__ import annotations

import re
import struct
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgpack

from ..protocol.errors import ER, BoxError
from .space_api import LUA_NULL, IndexApi, SpaceApi

if TYPE_CHECKING:
    from .api import Box

__all__ = ["Builtins"]

_SPACE_METHOD = re.compile(r"^box\.space\.(?P<space>.+?)(?:\.index\.(?P<index>.+))?:(?P<method>\w+)$")

def _opts(args: list[Any], n: int) -> dict[str, Any]:
    """The Lua options table at position n, as keyword arguments."""
    if len(args) > n and args[n] is not None:
        o = args[n]
        if not isinstance(o, dict):
            raise BoxError(ER.ILLEGAL_PARAMS, "options should be a table")
        return {str(k): v for k, v in o.items()}
    return {}


def _arg(args: list[Any], n: int, default: Any = None) -> Any:
    return args[n] if len(args) > n else default


def _returns_nothing(fn: Callable[[list[Any]], Any]) -> Callable[[list[Any]], list[Any]]:
    def call(args: list[Any]) -> list[Any]:
        fn(args)
        return []
    return call


def _begin_timeout(args: list[Any]) -> Any:
    """box.begin's options table; box.begin checks the value."""
    o = args[0] if args and isinstance(args[0], dict) else {}
    return o.get("timeout")


def _grant_call(fn: Callable[..., Any], a: list[Any]) -> None:
    """grant(user, privileges[, object_type[, object_name]][, opts]): Lua's
    trailing options table may follow any number of positional arguments."""
    opts = _opts(a, len(a) - 1) if a and isinstance(a[-1], dict) else {}
    positional = a[:-1] if opts or (a and isinstance(a[-1], dict)) else a
    fn(*positional[:4], **opts)


class Builtins:
    """Resolves a CALL's function name to a Python callable, or None."""

    @property
    def _snapshot(self) -> Callable[[list[Any]], Any]:
        box = self.box

        async def snapshot(args: list[Any]) -> list[Any]:
            return [await box.snapshot()]
        return snapshot

    def __init__(self, box: Box) -> None:
        self.box = box
        user, role, func = box.schema.user, box.schema.role, box.schema.func
        self.table: dict[str, Callable[[list[Any]], list[Any]]] = {
            "box.info": lambda a: [box.info()],
            "box.stat": lambda a: [box.stat()],
            "box.snapshot": self._snapshot,
            "box.schema.space.create": self._space_create,
            "box.schema.user.create": _returns_nothing(lambda a: user.create(a[0], **_opts(a, 1))),
            "box.schema.user.drop": _returns_nothing(lambda a: user.drop(a[0], **_opts(a, 1))),
            "box.schema.user.passwd": _returns_nothing(lambda a: user.passwd(*a[:2])),
            "box.schema.user.exists": lambda a: [user.exists(a[0])],
            "box.schema.user.grant": _returns_nothing(lambda a: _grant_call(user.grant, a)),
            "box.schema.user.revoke": _returns_nothing(lambda a: _grant_call(user.revoke, a)),
            "box.schema.user.info": lambda a: [user.info(*a[:1])],
            "box.schema.role.create": _returns_nothing(lambda a: role.create(a[0], **_opts(a, 1))),
            "box.schema.role.drop": _returns_nothing(lambda a: role.drop(a[0], **_opts(a, 1))),
            "box.schema.role.exists": lambda a: [role.exists(a[0])],
            "box.schema.role.info": lambda a: [role.info(*a[:1])],
            "box.schema.role.grant": _returns_nothing(lambda a: _grant_call(role.grant, a)),
            "box.schema.role.revoke": _returns_nothing(lambda a: _grant_call(role.revoke, a)),
            "box.schema.func.create": _returns_nothing(lambda a: func.create(a[0], **_opts(a, 1))),
            "box.schema.func.drop": _returns_nothing(lambda a: func.drop(a[0], **_opts(a, 1))),
            "box.schema.func.exists": lambda a: [func.exists(a[0])],
            "box.session.user": lambda a: [box.session.user()],
            "box.session.id": lambda a: [box.session.id()],
            # Transactions (asynctnt's stream tests): in a stream the one
            # box.begin opens lives on until COMMIT/ROLLBACK or box.commit/
            # box.rollback; outside a stream it is rolled back when the call
            # returns, and the call fails with error 30, as in Tarantool.
            # Each returns nothing (DATA []); an argument that is not an
            # options table is ignored, as 2.6 does.
            "box.begin": _returns_nothing(lambda a: box.begin(timeout=_begin_timeout(a))),
            "box.commit": _returns_nothing(lambda a: box.commit()),
            "box.rollback": _returns_nothing(lambda a: box.rollback()),
        }

    def resolve(self, name: str) -> Callable[[list[Any]], Any] | None:
        f = self.table.get(name)
        if f is not None:
            return f
        if name == "box.stat.net":
            return self._stat_net
        if name == "box.stat.net.thread":
            return self._stat_net_thread
        m = _SPACE_METHOD.match(name)
        if m is None:
            return None
        return lambda args: self._space_method(m["space"], m["index"], m["method"], args)

    async def _stat_net(self, args: list[Any]) -> list[Any]:
        return [await self.box.stat.net()]

    async def _stat_net_thread(self, args: list[Any]) -> list[Any]:
        return [await self.box.stat.net_thread()]

    # -- implementations ------------------------------------------------------------

    def _space_create(self, args: list[Any]) -> list[Any]:
        if not args or not isinstance(args[0], str):
            raise BoxError(ER.ILLEGAL_PARAMS, "Usage: box.schema.space.create(name, opts)")
        return [self.box.schema.space.create(args[0], **_opts(args, 1)).info()]

    def _space_method(self, space_name: str, index_name: str | None, method: str,
                      args: list[Any]) -> list[Any]:
        spaces = self.box.space
        name = f"box.space.{space_name}{'.index.' + index_name if index_name else ''}:{method}"
        try:
            # A missing space or index is a missing global, as in Lua. The
            # path is Lua's string keys: box.space.512 and index.0 are nil.
            space = spaces[space_name]
            target: SpaceApi | IndexApi = space
            if index_name is not None:
                target = space.index[index_name]
        except KeyError:
            raise BoxError(ER.NO_SUCH_PROC, name) from None
        methods = _INDEX_METHODS if isinstance(target, IndexApi) else _SPACE_METHODS
        if method not in methods:
            raise BoxError(ER.NO_SUCH_PROC, name)
        a = [lua_value(x) for x in args]  # what Lua makes of the arguments
        if method == "pairs" and isinstance(target, SpaceApi) and not space._space.indexes:
            raise _lua_error("unsupported Lua type 'function'")  # fun.iter({})
        if method in ("select", "count", "pairs"):
            opts = a[1] if len(a) > 1 and isinstance(a[1], str) else None
            kwargs = {"iterator": opts} if opts is not None else _rename(_opts(a, 1))
            rows = getattr(target, "select" if method == "pairs" else method)(_arg(a, 0), **kwargs)
            if method == "pairs":  # Lua's iterator triplet cannot be sent
                raise _lua_error("unsupported Lua type 'cdata'")
            return [rows]
        # What finds nothing returns nothing (DATA: []), as Tarantool's Lua.
        if method in ("get", "min", "max"):
            return _value(getattr(target, method)(_arg(a, 0)))
        if method in ("insert", "replace", "put"):
            return [getattr(target, method)(_arg(a, 0))]
        if method in ("delete",):
            return _value(target.delete(_arg(a, 0)))
        if method == "update":
            if isinstance(target, SpaceApi):
                target = target._pk()  # check_primary_index() comes first (35)
            if len(a) < 2 or not isinstance(a[1], (list, dict)):
                raise _lua_error("Usage index:update(key, ops)")
            if isinstance(a[1], dict):
                raise BoxError(ER.TUPLE_NOT_ARRAY)
            return _value(target.update(_arg(a, 0), a[1]))
        if method == "upsert" and isinstance(target, SpaceApi):
            if len(a) < 2 or not all(isinstance(x, (list, dict)) for x in a[:2]):
                raise _lua_error("Usage space:upsert(tuple_key, ops)")
            if isinstance(a[0], dict) or isinstance(a[1], dict):
                raise BoxError(ER.TUPLE_NOT_ARRAY)
            target.upsert(a[0], a[1])
            return []
        if method in ("len", "bsize") and isinstance(target, SpaceApi):
            return [getattr(target, method)()]
        if method == "len":
            return [target.len()]
        if method in ("truncate", "drop"):
            getattr(target, method)()
            return []
        if method == "create_index" and isinstance(target, SpaceApi):
            if not isinstance(_arg(a, 0), str):
                raise BoxError(ER.ILLEGAL_PARAMS, "name should be a string")
            index_opts = _opts(a, 1)
            _check_param_table(index_opts, _CREATE_INDEX_OPTIONS)
            index_opts.pop("name", None)  # create_index takes the name argument
            existed = index_opts.get("if_not_exists") and _arg(a, 0) in target.index
            info = target.create_index(_arg(a, 0), **index_opts).info()
            return [info, "not created"] if existed else [info]
        if method == "format" and isinstance(target, SpaceApi):
            res = target.format(_arg(a, 0))
            return [] if res is None else [res]
        if method == "rename":
            target.rename(_arg(a, 0))
            return []
        if method == "alter" and isinstance(target, IndexApi):
            target.alter(**_opts(a, 0))
            return []
        raise BoxError(ER.NO_SUCH_PROC, name)


_SPACE_METHODS = frozenset({
    "select", "count", "pairs", "get", "insert", "replace", "put", "delete", "update", "upsert",
    "len", "bsize", "truncate", "drop", "create_index", "format", "rename"})
_INDEX_METHODS = frozenset({
    "select", "count", "pairs", "get", "min", "max", "delete", "update", "len", "drop",
    "rename", "alter"})

_LUA_EXT_ERRORS = {1: "msgpack.decode: invalid MsgPack", 2: "msgpack.decode: invalid MsgPack",
                   3: "Can not parse an error from MsgPack"}
_2_64 = 2.0 ** 64
_LUA_NAN = struct.unpack(">d", bytes.fromhex("fff8000000000000"))[0]
_2_63 = 2.0 ** 63


def lua_value(v: Any) -> Any:
    """A CALL argument as Tarantool's Lua hands it on: every number is a Lua
    number (a double), and one with an integral value that fits is encoded
    back as an integer (luaL_tofield): 1.0 is 1, -0.0 is 0, 2.0**63 is
    2**63; the infinities, 1e300 and -2.0**63 stay doubles, and every NaN
    becomes LuaJIT's canonical one (0xfff8000000000000). Lua has no binary
    type: a varbinary (MP_BIN) is a Lua string, sent back as a string."""
    if type(v) is float:
        if v != v:
            return _LUA_NAN  # LuaJIT keeps one NaN
        if v == v and v not in (float("inf"), float("-inf")) and v == int(v):
            if 0 <= v < _2_64 or -_2_63 < v < _2_63:
                return int(v)
        return v
    if type(v) is msgpack.ExtType:  # what Lua's msgpack cannot decode
        raise _lua_error(_LUA_EXT_ERRORS.get(v.code, f"Unsuported MsgPack extension type: {v.code}"))
    if type(v) is uuid.UUID and v.bytes[8] >= 0xE0:  # 2.6's tt_uuid_validate: the variant
        raise _lua_error(_LUA_EXT_ERRORS[2])
    if type(v) is bytes:  # a Lua string: it goes back as MP_STR
        return v.decode("utf-8", "surrogateescape")
    if type(v) is list:
        return [lua_value(x) for x in v]
    if type(v) is dict:
        return {lua_value(k): lua_value(x) for k, x in v.items()}
    return v


# box.schema.index.create's check_param_table template (2.6).
_CREATE_INDEX_OPTIONS = {
    "id": "number", "name": "string", "type": "string", "parts": "table",
    "sequence": "boolean, number, string, table", "unique": "boolean", "dimension": "number",
    "distance": "string", "bloom_fpr": "number", "page_size": "number", "range_size": "number",
    "run_count_per_level": "number", "run_size_ratio": "number", "func": "number, string",
    "if_not_exists": "boolean"}
_STYX_INDEX_OPTIONS = {"id", "name", "type", "parts", "unique", "if_not_exists"}


def _lua_type(v: Any) -> str:
    """Lua's type() of a decoded MessagePack value, as box.schema's
    param_type() sees it (cdata -- box.NULL, an extension -- counts as number)."""
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, (str, bytes)):
        return "string"
    if isinstance(v, (list, dict)):
        return "table"
    return "number"


def _check_param_table(opts: dict[str, Any], template: dict[str, str]) -> None:
    for k, v in opts.items():
        want = template.get(k)
        if want is None:
            raise BoxError(ER.ILLEGAL_PARAMS, f"unexpected option '{k}'")
        if "," not in want and _lua_type(v) != want:
            raise BoxError(ER.ILLEGAL_PARAMS, f"options parameter '{k}' should be of type {want}")
        if "," in want and _lua_type(v) not in want.replace(" ", "").split(","):
            raise BoxError(ER.ILLEGAL_PARAMS,
                           f"options parameter '{k}' should be one of types: {want}")
    for k in opts:
        if k not in _STYX_INDEX_OPTIONS:
            raise BoxError(ER.UNSUPPORTED, "Styx", f"the index option '{k}'")


def _lua_error(message: str) -> BoxError:
    """A Lua error() of Tarantool's box API: 32, type LuajitError."""
    return BoxError(ER.PROC_LUA, message, type_name="LuajitError")


def _value(v: Any) -> list[Any]:
    return [] if v is None else [v]


def _rename(opts: dict[str, Any]) -> dict[str, Any]:
    """Lua select options -> keyword arguments of the Python API."""
    out = {}
    for k, v in opts.items():
        if k == "iterator":
            out[k] = LUA_NULL if v is None else v  # box.NULL is true to `if opts.iterator`
        elif k in ("limit", "offset", "after", "fetch_pos") and v is not None:
            out[k] = v  # ... and nil to `opts.limit ~= nil`
    return out
