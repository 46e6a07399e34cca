"""Lua in TX, through LuaJIT (lupa): EVAL, Lua procedures, init scripts and
fibers, with `box` backed by the same spaces, schema, users and
transactions that Python procedures use.

What it does: one LuaJIT state per server, owned by TX (like box).
- EVAL loads the expression as a chunk named "eval" and runs it with the
  request's arguments as `...`; every value it returns is one reply value.
- A CALL whose name is a global Lua function (`f`, `a.b.f`, `a.b:f`) runs it,
  after the Python app's procedures and box's own functions: a Python
  procedure wins over a Lua function of the same name (the Python app is
  explicit about what it exports; a Lua global may come from any EVAL).
- An init script (`styx serve init.lua`) runs as Tarantool runs one: up to
  its first `box.cfg{}` before the server starts (`start_script`; those
  options become the server's), the rest after recovery, before listening.
- `box` in Lua is a thin Lua layer (box.lua) over the Python box API: a
  method call `box.space.s:select(key, {iterator = 'GE'})` becomes
  `box.space.s.select(key, iterator='GE')` in Python, with Lua tables turned
  into lists (a sequence) or dicts (anything else) on the way in, and lists
  and dicts into tables on the way out (box's tuples into tuple objects).

Fibers (fiber.lua): every Lua request, script or `fiber.create` runs as a
coroutine. One that never waits ends in one resume, inline, as a plain-def
procedure does. One that waits (`fiber.sleep`, a channel, `box.snapshot()`)
yields to `_drive`, an asyncio task on TX's loop, which resumes it when what
it waited for is there: other requests go on meanwhile.

Errors: a Lua error is ER_PROC_LUA (32) with its message ("eval:1: ...",
as Tarantool's); a box error raised by box (or `box.error(code, ...)`)
keeps its code and type.

Safety: Lua reaches Python only through the bridges given to box.lua and
fiber.lua: `python.eval` and Python's builtins are not registered, the
`python` module is removed, and no attribute whose name starts with an
underscore can be read from a Python object. A fiber that runs for more
than its time slice without waiting (Tarantool's max_slice: 0.5 s warns,
1 s fails) ends with "fiber slice is exceeded": the slice is checked by an
instruction-count hook, which LuaJIT calls only for interpreted code, so
the JIT compiler is off (Lua here mostly calls into box; what that costs
loops of pure Lua was not measured).

Risks: Lua values cross by conversion (a table in a tuple is copied both
ways). A Lua object lupa hands Python from inside a coroutine must not
outlive it (lupa issue 84: a crash): the bridges keep none, and
`lua_modules.boundary` strips the frames from the exceptions they raise.
Lua can allocate without bound (LuaJIT has no memory limit): EVAL needs
execute on the universe, as in Tarantool.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

from lupa import luajit21  # type: ignore[import-untyped]  # lupa ships no type hints

from ..box.space import map_key
from ..protocol.errors import ER, MESSAGES, BoxError
from . import lua_modules
from .app import Procedure
from .fiber import Fiber, current

log = logging.getLogger("styx.lua")

__all__ = ["Lua", "LuaScriptError", "CFG_OPTIONS"]

# box.cfg options an init script may give, and what Styx does with them:
# the Config field each sets, or None for Tarantool options Styx accepts and
# has no use for (logged once, not an error: Tarantool's own scripts set them).
CFG_OPTIONS: dict[str, str | None] = {
    "listen": "listen", "memtx_memory": "memtx_memory", "net_msg_max": "net_msg_max",
    "readahead": "readahead", "iproto_threads": "iproto_threads", "wal_mode": "wal_mode",
    "work_dir": "work_dir", "wal_dir": "wal_dir", "memtx_dir": "memtx_dir", "wal_max_size": "wal_max_size",
    "checkpoint_interval": "checkpoint_interval", "checkpoint_count": "checkpoint_count",
    "force_recovery": "force_recovery", "instance_uuid": "instance_uuid",
    "pid_file": None, "log": None, "log_level": None, "log_format": None, "background": None,
    "custom_proc_title": None, "slab_alloc_factor": None, "memtx_min_tuple_size": None,
    "memtx_max_tuple_size": None, "too_long_threshold": None, "worker_pool_threads": None,
    "auth_type": None, "feedback_enabled": None, "strip_core": None, "read_only": "read_only",
    "vinyl_dir": None, "vinyl_memory": None, "replicaset_uuid": None, "replication": None,
    "wal_dir_rescan_delay": None, "net_msg_max_": None,
}

EXACT = 2**53 - 1  # past it, Tarantool makes a Lua integer 64-bit cdata (a double is exact to 2^53)
MAX_DEPTH = 128  # tables inside tables a value may have (Tarantool's encode_max_depth)
PROCS_CACHED = 1000  # Lua procedures remembered by name (any name a client calls is not kept)
SLICE_WARN_EVERY = 10.0  # seconds between two "has not yielded" warnings


_AS_IS = frozenset((int, bool))  # the same value on both sides (a float may be an integer, see from_lua)


class LuaScriptError(Exception):
    """An init script failed: its error, as Lua says it (file:line: ...)."""


class Lua:
    def __init__(self, box: Any = None, push: Callable[[Any], Any] | None = None,
                 make_fiber: Callable[[], Fiber] | None = None) -> None:
        # A Python tuple returned to Lua is several values: () is none.
        self.rt = luajit21.LuaRuntime(encoding=None, unpack_returned_tuples=True, register_eval=False,
                                      register_builtins=False, attribute_filter=_public_only)
        self.rt.execute("jit.off()")  # the slice hook (fiber.lua) sees only interpreted code
        self._is_table = self.rt.eval("function(v) return type(v) == 'table' end")
        self._load = self.rt.eval("function(code, name) return loadstring(code, name) end")
        self._loadfile = self.rt.eval("function(path) return loadfile(path) end")
        self._find = self.rt.eval("""function(name)
            -- Tarantool's box_lua_find: a.b.c is a function, a.b:c a method of a.b
            local obj, method = name:match('^(.+):([^:.]+)$')
            local path = obj or name
            local t = _G
            for part in path:gmatch('[^.]+') do
                if type(t) ~= 'table' then return nil end
                t = t[part]
            end
            if obj then
                local f = type(t) == 'table' and t[method] or nil
                if type(f) ~= 'function' then return nil end
                return function(...) return f(t, ...) end
            end
            if type(t) == 'function' then return t end
            local mt = type(t) == 'table' and getmetatable(t)
            if mt and mt.__call then return function(...) return t(...) end end
            return nil
        end""")
        self._box = box
        self._push = push
        self._make_fiber = make_fiber
        self._tuple_mts: dict[tuple[tuple[str, int], ...], Any] = {}
        self._procs: dict[str, Procedure] = {}  # CALL names found, see procedure()
        self._parked: dict[int, asyncio.Future[bool]] = {}
        self._woken: set[int] = set()  # woken before their task parked them
        self._tasks: set[asyncio.Task[Any]] = set()
        self._slow_warned_at = float("-inf")
        self.cfg_request: dict[str, Any] | None = None  # an init script's first box.cfg{} options
        self.cfg_given = asyncio.Event()  # set by that box.cfg{}
        self._box_up = asyncio.Event()  # set by attach: that box.cfg{} returns
        core = self.rt.execute(files(__package__).joinpath("fiber.lua").read_bytes(), _FiberBridge(self))
        self._run, self._step = core.run, core.step
        self._run_global = self.rt.eval("""function(run, find)
            return function(name, ...)
                local fn = rawget(_G, name)
                if type(fn) ~= 'function' then fn = find(name) end
                if fn == nil then return 'nofunc' end
                return run(fn, ...)
            end
        end""")(self._run, self._find)
        bridge = _Bridge(self)
        self._make_tuple, self._fire = self.rt.execute(files(__package__).joinpath("box.lua").read_bytes(),
                                                       bridge, core[b"await"])
        self._triggers: dict[str, Callable[..., None]] = {}  # 'space NAME' or 'session.on_X' -> its Python trigger
        self._values = lua_modules.install(self)  # uuid, decimal, datetime, NULL across
        self.rt.execute("box.NULL = require('json').NULL; python = nil")
        from ..server import VERSION  # here: server imports this module

        self.rt.globals()[b"_TARANTOOL"] = "{}.{}.{}-styx".format(*VERSION).encode()  # = box.info.version
        self._int64 = self.rt.eval("""function(hi, lo, signed)
            local ffi = require('ffi')
            local u = ffi.new('uint64_t', hi) * 4294967296ULL + lo
            if signed then return ffi.cast('int64_t', u) end
            return u
        end""")
        self._null = self.rt.eval("box.NULL")  # MessagePack's nil in Lua, as Tarantool decodes it
        self._tostring = self.rt.eval("tostring")
        # An empty map keeps its kind, as Tarantool's decoder marks it (__serialize = 'map').
        self._empty_map = self.rt.execute(
            "local mt = {__serialize = 'map'} return function() return setmetatable({}, mt) end")

    def attach(self, box: Any, push: Callable[[Any], Any], make_fiber: Callable[[], Fiber]) -> None:
        """Box is up (an init script's state is made before it)."""
        self._box, self._push, self._make_fiber = box, push, make_fiber
        self._box_up.set()

    @property
    def box(self) -> Any:
        if self._box is None:
            raise BoxError(ER.PROC_LUA, message="Please call box.cfg{} first")
        return self._box

    # -- values across ---------------------------------------------------------------

    def to_lua(self, v: Any) -> Any:
        if type(v) in _AS_IS:
            if type(v) is int and not -EXACT <= v <= EXACT:
                # Past 2^53 a Lua number is not exact: int64_t or uint64_t
                # cdata, as Tarantool's decoder makes them.
                u = v & 0xFFFFFFFFFFFFFFFF
                return self._int64(u >> 32, u & 0xFFFFFFFF, v < 0)
            return v
        if v is None:
            return self._null
        if isinstance(v, lua_modules.VALUE_TYPES):
            return self._values.to_lua(v)
        if isinstance(v, str):
            return v.encode("utf-8", "surrogateescape")
        if isinstance(v, (list, tuple)):
            table = self.rt.table_from([self.to_lua(x) for x in v])
            names = getattr(v, "_names", None)
            return table if names is None else self._make_tuple(table, self._tuple_mt(names))
        if isinstance(v, dict):
            if not v:
                return self._empty_map()
            return self.rt.table_from({self.to_lua(k): self.to_lua(x) for k, x in v.items()})
        return v

    def _tuple_mt(self, names: dict[str, int]) -> Any:
        """The names of a space's format, as Lua's tuple objects look them up
        (one table per format, shared by its tuples)."""
        key = tuple(names.items())
        table = self._tuple_mts.get(key)
        if table is None:
            table = self._tuple_mts[key] = self.rt.table_from({k.encode(): i + 1 for k, i in key})
        return table

    def from_lua(self, v: Any, depth: int = 1) -> Any:
        if type(v) in _AS_IS:
            return v
        if isinstance(v, bytes):
            return v.decode("utf-8", "surrogateescape")
        if type(v) is self._values.cdata:  # cdata: NULL, uuid, decimal, datetime, int64
            return self._values.from_lua(v)
        if self._is_table(v):
            if depth > MAX_DEPTH:
                raise BoxError(ER.PROC_LUA, message=f"Too high nest level - {depth}", type_name="LuajitError")
            depth += 1
            keys = list(v.keys())
            n = len(keys)
            if all(type(k) is int for k in keys) and sorted(keys) == list(range(1, n + 1)):
                if n or self._values.array_length(v) is not None:  # {} or json's {}: __serialize says
                    return [self.from_lua(v[i], depth) for i in range(1, n + 1)]
            elif all(type(k) is int for k in keys):  # holes: Tarantool's rule (lua_modules) says
                length = self._values.array_length(v)
                if length is not None:
                    return [self.from_lua(v[i], depth) for i in range(1, length + 1)]
            return {map_key(self.from_lua(k, depth)): self.from_lua(x, depth) for k, x in v.items()}
        if isinstance(v, float) and v.is_integer() and abs(v) < 2**63:
            return int(v)  # Lua numbers are doubles: 1 comes back as 1.0
        kind = luajit21.lua_type(v)
        if kind is not None:  # a function, a coroutine, a userdata: no MessagePack for it
            raise BoxError(ER.PROC_LUA, message=f"unsupported Lua type '{kind}'")
        return v

    # -- running Lua --------------------------------------------------------------------

    def eval(self, expr: str, args: list[Any]) -> Any:
        """An EVAL expression: its values (a tuple), or an awaitable of them
        if it waits."""
        loaded = self._load(expr.encode("utf-8", "surrogateescape"), b"=eval")
        if isinstance(loaded, tuple):  # (nil, message): it does not compile
            raise BoxError(ER.PROC_LUA, message=_text(loaded[1]), type_name="LuajitError")
        return self.run(loaded, args)

    def procedure(self, name: str) -> Procedure | None:
        """The global Lua function CALL names, as a procedure of the CALL's
        arguments (see `run`); None if there is none. The procedure looks
        the name up again at each call (a later EVAL may redefine it), in
        the same call into Lua that runs it."""
        proc = self._procs.get(name)
        if proc is not None:
            return proc
        key = name.encode("utf-8", "surrogateescape")
        if self._find(key) is None:
            return None
        if len(self._procs) >= PROCS_CACHED:
            self._procs.clear()
        run_global, to_lua = self._run_global, self.to_lua

        def call(*args: Any) -> Any:
            res = run_global(key, *map(to_lua, args))
            if type(res) is tuple and res[0] == b"wait":
                return self._drive(res[1], res[2], res[3])
            if res == b"nofunc":
                raise BoxError(ER.NO_SUCH_PROC, name)
            return self._outcome(0, res)

        proc = self._procs[name] = Procedure(name, call)
        return proc

    def run(self, fn: Any, args: list[Any]) -> Any:
        """fn(*args) in a new fiber: its values as a tuple if it ends without
        waiting, else a coroutine that drives it and returns them."""
        res = self._run(fn, *[self.to_lua(a) for a in args])
        if type(res) is tuple and res[0] == b"wait":
            return self._drive(res[1], res[2], res[3])
        return self._outcome(0, res)

    def _outcome(self, fid: int, res: Any) -> Any:
        """What fiber.lua's run or step said: the values (a tuple), the
        error raised, or the coroutine that waits and goes on."""
        if type(res) is not tuple:
            res = (res,)  # 'done' with no values
        kind = res[0]
        if kind == b"done":
            return tuple(map(self.from_lua, res[1:]))
        if kind == b"error":
            raise self.error(res[1])
        return self._drive(fid, res[1], res[2])

    async def _drive(self, fid: int, what: bytes, arg: Any) -> Any:
        """A fiber that waits: wait, resume, until it ends."""
        while True:
            wake = await self._wait(fid, what, arg)
            if current.get() is None and self._make_fiber is not None:
                current.set(self._make_fiber())  # an init script's fiber, once box is up
            res = self._step(fid, *wake)
            if res[0] != b"wait":
                return self._outcome(fid, res)
            what, arg = res[1], res[2]

    async def _wait(self, fid: int, what: bytes, arg: Any) -> tuple[bool, Any]:
        """What a waiting fiber is resumed with: (True, value) or (False, error)."""
        if what == b"await":
            try:
                return True, self.to_lua(await arg)
            except Exception as e:  # noqa: BLE001 - raised in the fiber, where it waited
                return False, e
        if what == b"sleep" and not arg:
            await asyncio.sleep(0)
            self._woken.discard(fid)  # a wakeup of a fiber that only yielded is no news
            return True, True
        if fid in self._woken:
            self._woken.discard(fid)
            return True, True
        future = asyncio.get_running_loop().create_future()
        self._parked[fid] = future
        try:
            if arg is None:
                return True, await future
            try:
                return True, await asyncio.wait_for(future, max(0.0, float(arg)))
            except TimeoutError:
                return True, False
        finally:
            self._parked.pop(fid, None)

    def _wakeup(self, fid: int) -> None:
        future = self._parked.get(fid)
        if future is None:
            self._woken.add(fid)  # it waits, and its task has not run yet
        elif not future.done():
            future.set_result(True)

    def _start(self, fid: int, now: bool) -> None:
        """fiber.create (now: it runs until it ends or waits, then the
        creator goes on) or fiber.new (at the loop's next turn): a background
        fiber, with its own fiber record (the creator's session, no
        transaction)."""
        record = self._make_fiber() if self._make_fiber is not None else None
        if now:
            token = current.set(record)
            try:
                res = self._step(fid)  # its arguments are in Lua (fiber.lua)
            finally:
                current.reset(token)
            if type(res) is not tuple or res[0] != b"wait":
                self._background_ended(res)
                return
            waiting = self._drive(fid, res[1], res[2])
        else:
            waiting = self._first_step_later(fid)
        task = asyncio.get_running_loop().create_task(self._background(record, waiting))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _first_step_later(self, fid: int) -> Any:
        await asyncio.sleep(0)
        result = self._outcome(fid, self._step(fid))
        return await result if asyncio.iscoroutine(result) else result

    async def _background(self, record: Fiber | None, waiting: Any) -> None:
        current.set(record)
        try:
            await waiting
        except BoxError as e:
            _log_fiber_error(e)
        except Exception:  # noqa: BLE001 - a fiber's error is logged, as Tarantool logs it
            log.exception("fiber failed")

    def _background_ended(self, res: Any) -> None:
        if type(res) is tuple and res[0] == b"error":
            _log_fiber_error(self.error(res[1]))

    def error(self, err: Any) -> BoxError:
        """What a failed Lua call answers: a box error as it is, anything else
        as ER_PROC_LUA with the Lua error's message (tostring of a table)."""
        if isinstance(err, BoxError):
            return err
        if isinstance(err, BaseException):
            return BoxError(ER.PROC_LUA, message=f"{type(err).__name__}: {err}")
        try:
            text = _text(err if isinstance(err, bytes) else self._tostring(err))
        except Exception:  # noqa: BLE001 - its __tostring failed (Tarantool 2.6 panics here)
            text = "error object is not a string"
        return BoxError(ER.PROC_LUA, message=text, type_name="LuajitError")  # Tarantool's type for a Lua error

    def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    # -- scripts ------------------------------------------------------------------------

    def dofile(self, path: str | Path) -> Any:
        """Run a Lua file (its global functions become procedures): its
        values, or an awaitable of them if it waits."""
        loaded = self._loadfile(str(path).encode())
        if isinstance(loaded, tuple):
            raise LuaScriptError(_text(loaded[1]))
        return self.run(loaded, [])

    def start_script(self, path: str | Path) -> Any:
        """An init script, in a fiber: None if it ended at once, else the
        coroutine that goes on with it. Its first box.cfg{} sets
        `cfg_given`, leaves its options in `cfg_request` and waits until
        box is up (`attach`)."""
        loaded = self._loadfile(str(path).encode())
        if isinstance(loaded, tuple):
            raise LuaScriptError(_text(loaded[1]))
        res = self._run(loaded)
        if type(res) is not tuple or res[0] == b"done":
            return None
        if res[0] == b"error":
            raise LuaScriptError(self.error(res[1]).message)
        return self._drive(res[1], res[2], res[3])

    # -- the bridge's services ----------------------------------------------------------

    def _slow(self, spent: float) -> None:
        now = time.monotonic()
        if now - self._slow_warned_at >= SLICE_WARN_EVERY:
            self._slow_warned_at = now
            log.warning("fiber has not yielded for more than %.3f seconds: every other request waits", spent)


def _public_only(obj: Any, name: Any, is_setting: bool) -> Any:
    """lupa's attribute filter: Lua never reads `_private` or dunder names,
    so it cannot walk from a Python object to Python's internals."""
    if isinstance(name, bytes):
        name = name.decode("utf-8", "surrogateescape")
    if not isinstance(name, str) or name.startswith("_") or is_setting:
        raise AttributeError(name)
    return name


def _bridged(cls: type) -> type:
    """Every public method of a bridge class, behind `lua_modules.boundary`."""
    for name, value in list(vars(cls).items()):
        if callable(value) and not name.startswith("_"):
            setattr(cls, name, lua_modules.boundary(value))
    return cls


@_bridged
class _FiberBridge:
    """What fiber.lua calls into."""

    def __init__(self, lua: Lua) -> None:
        self._lua = lua

    def start(self, fid: int) -> None:
        self._lua._start(fid, True)

    def start_later(self, fid: int) -> None:
        self._lua._start(fid, False)

    def wakeup(self, fid: int) -> None:
        self._lua._wakeup(fid)

    def slow(self, spent: float) -> None:
        self._lua._slow(spent)

    def slice_exceeded(self) -> None:
        raise BoxError(ER.UNKNOWN, message="fiber slice is exceeded", type_name="FiberSliceIsExceeded")

    def cancelled(self) -> None:
        raise BoxError(ER.UNKNOWN, message="fiber is cancelled", type_name="FiberIsCancelled")


@_bridged
class _Bridge:
    """What box.lua calls into (attribute names are the Lua side's)."""

    def __init__(self, lua: Lua) -> None:
        self._lua = lua

    def call(self, path: bytes, *args: Any) -> Any:
        """`box.<path>(args...)`: the last argument, a table with string keys,
        is the options (keyword arguments). A Python awaitable goes back as
        (AWAIT, it): the Lua side waits for it (fiber.lua, await)."""
        lua = self._lua
        obj: Any = lua.box
        for part in path.decode().split("."):
            if part.startswith("_"):
                raise AttributeError(part)
            obj = obj[part] if part.isdigit() else getattr(obj, part)
        values = [lua.from_lua(a) for a in args]
        kwargs = values.pop() if values and isinstance(values[-1], dict) and values[-1] and all(
            isinstance(k, str) for k in values[-1]) else {}
        result = obj(*values, **kwargs)
        if hasattr(result, "__await__"):
            return AWAIT, result
        return () if result is None else lua.to_lua(result)

    def space_call(self, space: Any, index: Any, method: bytes, *args: Any) -> Any:
        """`box.space.S[.index.I]:method(args...)`."""
        lua = self._lua
        name = method.decode()
        if name.startswith("_"):
            raise AttributeError(name)
        target = lua.box.space[lua.from_lua(space)]
        if index is not None:
            target = target.index[lua.from_lua(index)]
        fn = getattr(target, name)
        values = [lua.from_lua(a) for a in args]
        # The options table: after a key or a name (select(key, opts),
        # create_index(name, opts)), or alone (index:alter(opts)).
        least = 1 if name == "alter" else 2
        kwargs = values.pop() if len(values) >= least and isinstance(values[-1], dict) else {}
        result = fn(*values, **kwargs)
        if result is None:
            return ()  # no value, as box's methods return when nothing is found
        return lua.to_lua(result)

    def space_field(self, space: Any, index: Any, name: bytes) -> Any:
        """`box.space.S[.index.I].id` and the other fields of FIELDS (box.lua)."""
        lua = self._lua
        target = lua.box.space[lua.from_lua(space)]
        if index is not None:
            target = target.index[lua.from_lua(index)]
        value = getattr(target, name.decode(), None)
        return () if value is None or callable(value) else lua.to_lua(value)

    def space_exists(self, name: Any) -> bool:
        try:
            self._lua.box.space[self._lua.from_lua(name)]
        except KeyError:
            return False
        return True

    def push(self, value: Any) -> bool:
        lua = self._lua
        if lua._push is None:
            raise BoxError(ER.PROC_LUA, message="Please call box.cfg{} first")
        lua._push(lua.from_lua(value))
        return True

    def error_new(self, code: Any, *args: Any) -> BoxError:
        """box.error.new(code, ...) or box.error.new{code = ..., reason = ...}."""
        if isinstance(code, BoxError):
            return code
        values = [self._lua.from_lua(a) for a in args]
        if self._lua._is_table(code):
            spec = self._lua.from_lua(code)
            custom = spec.get("type")
            if custom is not None:  # box.error.new{type = 'B'}: a CustomError, as Tarantool's
                return BoxError(int(spec.get("code", 0)), message=str(spec.get("reason", "")),
                                type_name="CustomError", fields={"custom_type": str(custom)})
            return BoxError(int(spec.get("code", 0)), message=str(spec.get("reason", "")))
        return BoxError(int(code), *values)

    def error_at(self, file: Any, line: Any, code: Any, *args: Any) -> BoxError:
        """box.error.new(...) made at Lua's `file`:`line` (a new error only:
        an error object passed again keeps where it was made)."""
        e = self.error_new(code, *args)
        if e is not code and file is not None:
            e.file, e.line = _text(file), int(line or 0)
        return e

    def error_code(self, name: bytes) -> int | None:
        return ERROR_CODES.get(name.decode("utf-8", "surrogateescape"))

    def cfg(self, options: Any) -> Any:
        """box.cfg{...}: before box is up (an init script), the options the
        server starts with; after, a runtime change."""
        lua = self._lua
        opts = lua.from_lua(options) if options is not None else {}
        if not isinstance(opts, dict):
            raise BoxError(ER.CFG, "cfg", "expected a table")
        if "slab_alloc_arena" in opts:  # Tarantool's deprecated name of memtx_memory, in GiB
            arena = opts.pop("slab_alloc_arena")
            log.warning("Deprecated option slab_alloc_arena, please use memtx_memory instead")
            if isinstance(arena, (int, float)):
                opts.setdefault("memtx_memory", int(arena * 1024**3))
        for key in opts:
            if key not in CFG_OPTIONS:
                raise BoxError(ER.CFG, key, "unexpected option")
        if lua._box is None:
            lua.cfg_request = opts
            lua.cfg_given.set()
            return AWAIT, lua._box_up.wait()
        # Again, box up: what changed (an unchanged static option is no change).
        current = lua.box.cfg
        changed = {k: v for k, v in opts.items()
                   if CFG_OPTIONS[k] is not None and (current[k] != v or type(current[k]) is not type(v))}
        if changed:
            lua.box.cfg(**changed)
        return ()

    def cfg_get(self, key: bytes) -> Any:
        lua = self._lua
        if lua._box is None:
            return ()
        try:
            return lua.to_lua(lua.box.cfg[key.decode()])
        except (KeyError, AttributeError):
            return ()

    def on_replace(self, space: Any, on: bool) -> None:
        """A space's Lua triggers (box.lua keeps them): one Python trigger
        runs them all, while there are any."""
        lua = self._lua
        name = lua.from_lua(space)
        api = lua.box.space[name]
        trigger = lua._triggers.pop("space " + name, None)
        if trigger is not None:
            api.on_replace(None, trigger)
        if on:
            def trigger(old: Any, new: Any, space_name: str, kind: str) -> None:
                err = lua._fire(space, None if old is None else lua.to_lua(old),  # nil, not box.NULL
                                None if new is None else lua.to_lua(new), space, kind.encode())
                if err is not None:
                    raise lua.error(err)

            api.on_replace(trigger)
            lua._triggers["space " + name] = trigger

    def session_trigger(self, kind: bytes, on: bool) -> None:
        """box.session.on_connect/on_disconnect/on_auth's Lua triggers: one
        Python trigger runs them all, while there are any."""
        lua = self._lua
        name = kind.decode()
        setter = getattr(lua.box.session, name)
        trigger = lua._triggers.pop("session." + name, None)
        if trigger is not None:
            setter(None, trigger)
        if on:
            key = b"session." + kind

            def trigger(*args: Any) -> None:
                err = lua._fire(key, *map(lua.to_lua, args))
                if err is not None:
                    raise lua.error(err)

            setter(trigger)
            lua._triggers["session." + name] = trigger

    def su_call(self, user: Any, fn: Any) -> None:
        """box.session.su(user, fn): Lua's fn, called with user's rights."""
        self._lua.box.session.su(self._lua.from_lua(user), fn)

    def tuple_update(self, fields: Any, ops: Any) -> Any:
        from ..box.update import apply_update

        lua = self._lua
        return lua.to_lua(apply_update(lua.from_lua(fields) or [], lua.from_lua(ops) or []))

    def tuple_bsize(self, fields: Any) -> int:
        import msgpack

        return len(msgpack.packb(self._lua.from_lua(fields) or [], use_bin_type=True))

    def once(self, key: Any) -> bool:
        """box.once's mark (Box.once): True the first time for `key`."""
        return self._lua.box.once(self._lua.from_lua(key), lambda: True) is True


ERROR_CODES = {name[3:]: code for code, (name, _) in MESSAGES.items()}  # box.error.NAME
AWAIT = b"\0styx-await"  # what fiber.lua's await recognizes


def _text(v: Any) -> str:
    return v.decode("utf-8", "surrogateescape") if isinstance(v, bytes) else str(v)


def _log_fiber_error(e: BoxError) -> None:
    """A background fiber's error is logged, as Tarantool logs it; a
    cancelled fiber's end is not an error."""
    if e.type_name != "FiberIsCancelled":
        log.error("fiber: %s", e.message)
