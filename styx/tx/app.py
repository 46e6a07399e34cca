"""The app file: Python procedures callable over IPROTO_CALL.

`styx serve app.py` loads the file as a fresh module (its own name per
server, so two servers in one process never share module state) and exports
every public top-level function defined in it, by name, as Tarantool exports
global Lua functions. `def` procedures run inline in TX; `async def` ones run
in a fiber and may await. An optional `init()` runs once in TX before the
server listens (it may be async too).

Return values follow Lua's multiple returns: a tuple is several values,
None is no value, anything else is one value.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["AppError", "Procedure", "app_of_object", "load_app", "lua_values", "call16_tuples"]


class AppError(Exception):
    """The app file cannot be served: one line that says where and why."""

    @classmethod
    def from_exception(cls, what: str, path: Path, e: BaseException) -> AppError:
        """`e` raised by the app's own code: name its innermost line in the
        app file, not Styx's frames around it."""
        if isinstance(e, SyntaxError):
            where = f"{e.filename}:{e.lineno}" + (f":{e.offset}" if e.offset else "")
            return cls(f"{where}: SyntaxError: {e.msg}")
        where = str(path)
        tb = e.__traceback__
        while tb is not None:
            if Path(tb.tb_frame.f_code.co_filename) == path:
                where = f"{path}:{tb.tb_lineno}"
            tb = tb.tb_next
        return cls(f"{where}: {what} failed: {type(e).__name__}: {e}")

class Procedure:
    __slots__ = ("name", "func", "is_async")

    def __init__(self, name: str, func: Callable[..., Any]) -> None:
        self.name = name
        self.func = func
        self.is_async = inspect.iscoroutinefunction(func)

    def __repr__(self) -> str:
        return f"<Procedure {self.name}{' async' if self.is_async else ''}>"


def load_app(path: str | Path) -> tuple[ModuleType, dict[str, Procedure]]:
    """Import `path` as a new module and collect its public functions."""
    path = Path(path).resolve()
    if not path.is_file():
        raise AppError(f"{path}: no such file")
    if path.suffix != ".py":
        raise AppError(f"{path}: not a Python file (the app is a .py file)")
    name = f"styx_app_{path.stem}_{uuid.uuid4().hex[:12]}"  # one module per server
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None  # a .py file always has one
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look modules up here
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        sys.modules.pop(name, None)
        raise AppError.from_exception("loading the app", path, e) from e
    return module, procedures_of(module)


def procedures_of(module: ModuleType) -> dict[str, Procedure]:
    procs = {}
    for attr, value in vars(module).items():
        if attr.startswith("_") or attr == "init":
            continue
        if inspect.isfunction(value) and value.__module__ == module.__name__:
            procs[attr] = Procedure(attr, value)
    return procs


def app_of_object(app: ModuleType | Mapping[str, Callable[..., Any]]
                  ) -> tuple[Callable[..., Any] | None, dict[str, Procedure], Path]:
    """An app given as an object (embedding, tests): a module already
    imported (its public functions, as for a file; shared with whoever
    imported it), or a mapping of names to functions, `init` among them if
    wanted. Returns init, the procedures, and the file errors name."""
    if isinstance(app, ModuleType):
        return getattr(app, "init", None), procedures_of(app), Path(getattr(app, "__file__", None) or app.__name__)
    procs = {}
    for name, func in app.items():
        if not callable(func):
            raise AppError(f"app[{name!r}]: {type(func).__name__} is not a function")
        if name != "init":
            procs[name] = Procedure(name, func)
    init = app.get("init")
    code = getattr(init, "__code__", None)
    return init, procs, Path(code.co_filename if code is not None else "<app>")


def lua_values(result: Any) -> list[Any]:
    """A Python return value as Lua's list of return values."""
    if result is None:
        return []
    if type(result) is tuple:
        return list(result)
    return [result]


def _is_array(v: Any) -> bool:
    return isinstance(v, (list, tuple))


def call16_tuples(values: list[Any]) -> list[list[Any]]:
    """CALL_16's coercion of return values to tuples (`port_lua_dump_16`)."""
    if not values:
        return []
    if len(values) > 1:
        return [list(v) if _is_array(v) else [v] for v in values]
    v = values[0]
    if not _is_array(v):
        return [[v]]
    if not v:
        return [[]]
    if not _is_array(v[0]):
        return [list(v)]
    return [list(x) if _is_array(x) else [x] for x in v]
