"""Lua in TX, through LuaJIT (lupa): EVAL, with `box` backed by the same
spaces, schema, users and transactions that Python procedures use.

What it does: one LuaJIT state per server, owned by TX (like box). EVAL
loads the expression as a chunk named "eval" and calls it with the
request's arguments as `...`; every value it returns is one reply value.
`box` in Lua is a thin Lua layer (box.lua) over the Python box API: a
method call `box.space.s:select(key, {iterator = 'GE'})` becomes
`box.space.s.select(key, iterator='GE')` in Python, with Lua tables turned
into lists (a sequence) or dicts (anything else) on the way in, and lists,
tuples and dicts into tables on the way out. So the data stays in one
place, and Lua is only another way in.

Errors: a Lua error is ER_PROC_LUA (32) with its message ("eval:1: ...",
as Tarantool's); a box error raised by box (or `box.error(code, ...)`)
keeps its code and type.

The plan: this is EVAL's first step (issue 11). Not yet: Lua procedures
and init scripts, fibers (a Lua `fiber.sleep` cannot yield here yet), and
the modules Tarantool scripts use (json, msgpack, log, ...). What is not
there is an error that names it.

Risks: Lua code runs inline in TX, as a plain-def procedure does: a long
loop holds every other request.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.resources import files
from typing import Any

from lupa import luajit21  # type: ignore[import-untyped]  # lupa ships no type hints

from ..protocol.errors import ER, BoxError
from . import lua_modules

__all__ = ["Lua"]


class Lua:
    def __init__(self, box: Any, push: Callable[[Any], Any]) -> None:
        # A Python tuple returned to Lua is several values: () is none.
        # No attribute of a Python object that starts with '_' is Lua's: the
        # functions lua_modules.py hands Lua do not lead to __globals__.
        self.rt = luajit21.LuaRuntime(encoding=None, unpack_returned_tuples=True, attribute_filter=_public,
                                      register_eval=False, register_builtins=False)
        self._is_table = self.rt.eval("function(v) return type(v) == 'table' end")
        self._load = self.rt.eval("function(code) return loadstring(code, '=eval') end")
        # pcall, and every result: a Lua table keeps nils at their places; `#` does not.
        self._call = self.rt.eval("""function(f, ...)
            local function pack(...) return select('#', ...), {...} end
            local n, r = pack(pcall(f, ...))
            return r[1], n - 1, r
        end""")
        bridge = _Bridge(self, box, push)
        source = files(__package__).joinpath("box.lua").read_bytes()
        self.rt.execute(source, bridge)
        self._values = lua_modules.install(self)  # uuid, decimal, datetime, NULL across

    # -- values across ---------------------------------------------------------------

    def to_lua(self, v: Any) -> Any:
        if isinstance(v, lua_modules.VALUE_TYPES):
            return self._values.to_lua(v)
        if isinstance(v, str):
            return v.encode("utf-8", "surrogateescape")
        if isinstance(v, (list, tuple)):
            return self.rt.table_from([self.to_lua(x) for x in v])
        if isinstance(v, dict):
            return self.rt.table_from({self.to_lua(k): self.to_lua(x) for k, x in v.items()})
        return v

    def from_lua(self, v: Any) -> Any:
        if isinstance(v, bytes):
            return v.decode("utf-8", "surrogateescape")
        if type(v) is self._values.cdata:  # cdata: NULL, uuid, decimal, datetime, int64
            return self._values.from_lua(v)
        if self._is_table(v):
            keys = list(v.keys())
            n = len(keys)
            if all(type(k) is int for k in keys) and sorted(keys) == list(range(1, n + 1)):
                if n or self._values.array_length(v) is not None:  # {} or json's {}: __serialize says
                    return [self.from_lua(v[i]) for i in range(1, n + 1)]
            elif all(type(k) is int for k in keys):  # holes: Tarantool's rule (lua_modules) says
                length = self._values.array_length(v)
                if length is not None:
                    return [self.from_lua(v[i]) for i in range(1, length + 1)]
            return {self.from_lua(k): self.from_lua(x) for k, x in v.items()}
        if isinstance(v, float) and v.is_integer() and abs(v) < 2**63:
            return int(v)  # Lua numbers are doubles: 1 comes back as 1.0
        return v

    # -- EVAL ---------------------------------------------------------------------------

    def eval(self, expr: str, args: list[Any]) -> list[Any]:
        """Run an EVAL expression; its return values."""
        loaded = self._load(expr.encode("utf-8", "surrogateescape"))
        if isinstance(loaded, tuple):  # (nil, message): it does not compile
            raise BoxError(ER.PROC_LUA, message=_text(loaded[1]))
        ok, n, results = self._call(loaded, *[self.to_lua(a) for a in args])
        if not ok:
            raise _error(results[2])
        return [self.from_lua(results[i]) for i in range(2, 2 + n)]


class _Bridge:
    """What box.lua calls into (attribute names are the Lua side's)."""

    def __init__(self, lua: Lua, box: Any, push: Callable[[Any], Any]) -> None:
        self._lua = lua
        self._box = box
        self._push = push

    def call(self, path: bytes, *args: Any) -> Any:
        """`box.<path>(args...)`: the last argument, a table with string keys,
        is the options (keyword arguments)."""
        lua = self._lua
        obj: Any = self._box
        for part in path.decode().split("."):
            obj = obj[part] if part.isdigit() else getattr(obj, part)
        values = [lua.from_lua(a) for a in args]
        kwargs = values.pop() if values and isinstance(values[-1], dict) and values[-1] and all(
            isinstance(k, str) for k in values[-1]) else {}
        return lua.to_lua(obj(*values, **kwargs))

    def space_call(self, space: Any, index: Any, method: bytes, *args: Any) -> Any:
        """`box.space.S[.index.I]:method(args...)`."""
        lua = self._lua
        target = self._box.space[lua.from_lua(space)]
        if index is not None:
            target = target.index[lua.from_lua(index)]
        fn = getattr(target, method.decode())
        values = [lua.from_lua(a) for a in args]
        kwargs = values.pop() if len(values) >= 2 and isinstance(values[-1], dict) else {}
        result = fn(*values, **kwargs)
        if result is None:
            return ()  # no value, as box's methods return when nothing is found
        return lua.to_lua(result)

    def space_exists(self, name: Any) -> bool:
        try:
            self._box.space[self._lua.from_lua(name)]
        except KeyError:
            return False
        return True

    def push(self, value: Any) -> bool:
        self._push(self._lua.from_lua(value))
        return True

    def error(self, code: Any, *args: Any) -> None:
        values = [self._lua.from_lua(a) for a in args]
        if isinstance(code, dict):  # box.error{code = ..., reason = ...}
            raise BoxError(int(code.get("code", 0)), message=str(code.get("reason", "")))
        raise BoxError(int(code), *values)


def _public(obj: Any, name: Any, is_setting: bool) -> Any:
    """lupa's attribute filter: Lua gets no attribute whose name starts with '_'."""
    if isinstance(name, str) and not name.startswith("_"):
        return name
    if isinstance(name, bytes) and not name.startswith(b"_"):
        return name
    raise AttributeError(name)


def _text(v: Any) -> str:
    return v.decode("utf-8", "surrogateescape") if isinstance(v, bytes) else str(v)


def _error(err: Any) -> BoxError:
    """What a failed EVAL answers: a box error as it is, anything else as
    ER_PROC_LUA with the Lua error's message."""
    if isinstance(err, BoxError):
        return err
    if isinstance(err, BaseException):
        return BoxError(ER.PROC_LUA, message=f"{type(err).__name__}: {err}")
    return BoxError(ER.PROC_LUA, message=_text(err))
