"""The app file: Python procedures callable over IPROTO_CALL.

`styx serve app.py` loads the file as a fresh module (its own name per
server, so two servers in one process never share module state; its folder
importable) and exports every public top-level function defined in it, or
what its `__all__` names, as Tarantool exports global Lua functions.
`styx serve package.module` imports a module as Python does. `def` procedures run inline in TX; `async def` ones run
in a fiber and may await. An optional `init()` runs once in TX before the
server listens (it may be async too).

Return values follow Lua's multiple returns: a tuple is several values,
None is no value, anything else is one value.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
import sys
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["AppError", "Procedure", "app_of_object", "load_app", "call16_tuples"]


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
    __slots__ = ("name", "func", "is_async", "warned_at")

    def __init__(self, name: str, func: Callable[..., Any]) -> None:
        self.name = name
        self.func = func
        self.is_async = inspect.iscoroutinefunction(func)
        self.warned_at = float("-inf")  # when it was last said to block the loop

    def __repr__(self) -> str:
        return f"<Procedure {self.name}{' async' if self.is_async else ''}>"


def load_app(spec: str | Path) -> tuple[ModuleType, dict[str, Procedure]]:
    """The app: a .py file, imported as a new module with its folder
    importable (so `from helpers import x` works), or a dotted module name
    (`package.module`), imported as Python imports it. Its procedures too."""
    text = str(spec)
    path = Path(spec)
    if path.suffix != ".py" and not path.exists() and _MODULE_NAME.fullmatch(text):
        try:
            module = importlib.import_module(text)
        except ModuleNotFoundError as e:
            if e.name is not None and (text == e.name or text.startswith(e.name + ".")):
                raise AppError(f"{text}: no such file, nor an importable module") from e
            raise AppError(f"{text}: importing the app failed: {type(e).__name__}: {e}") from e
        except Exception as e:
            raise AppError(f"{text}: importing the app failed: {type(e).__name__}: {e}") from e
        return module, procedures_of(module)
    path = path.resolve()
    if not path.is_file():
        raise AppError(f"{path}: no such file")
    if path.suffix != ".py":
        raise AppError(f"{path}: not a Python file (the app is a .py file or a module name)")
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)  # the app's own modules, as `python app.py` would find them
    name = f"styx_app_{path.stem}_{uuid.uuid4().hex[:12]}"  # one module per server
    spec_ = importlib.util.spec_from_file_location(name, path)
    assert spec_ is not None and spec_.loader is not None  # a .py file always has one
    module = importlib.util.module_from_spec(spec_)
    sys.modules[name] = module  # dataclasses and pickling look modules up here
    try:
        spec_.loader.exec_module(module)
    except Exception as e:
        sys.modules.pop(name, None)
        raise AppError.from_exception("loading the app", path, e) from e
    return module, procedures_of(module)


_MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def procedures_of(module: ModuleType) -> dict[str, Procedure]:
    """What the app exports: the names in its `__all__` that are callable, if
    it has one (imported functions included, on purpose); else every public
    function defined in it. `init` is never a procedure."""
    procs = {}
    exported = getattr(module, "__all__", None)
    if exported is not None:
        for attr in exported:
            value = getattr(module, attr, None)
            if attr != "init" and callable(value) and not inspect.isclass(value):
                procs[attr] = Procedure(attr, value)
        return procs
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
