"""pytest plugin: real Styx servers for your tests, in the test process.

Installed with the package (entry point `pytest11`, name `styx`), so its
fixtures are there without any import; without the entry point, load it with
`pytest -p styx.pytest_plugin` or `pytest_plugins = ["styx.pytest_plugin"]`
(not both: pytest refuses a plugin registered twice).

Each server listens on 127.0.0.1 on a free port, keeps everything in memory
(`wal_mode none`), runs its network in TX's thread (`iproto_threads 0`) and
is stopped at teardown.

- `styx_server`: one server per test, serving the app the test names.
- `styx_server_module`: one server for all the tests of a module.
- `styx_server_factory`: `make(app=None, **config_options)` starts as many
  as a test wants; all stopped at teardown.

Which app: the closest `@pytest.mark.styx_app(app, **config_options)`
(on the test, its class or the module's `pytestmark`), else the `styx_app`
fixture, which a conftest.py or a test module may override (returning a
path, a module or a mapping of names to functions), and which by default
reads the `styx_app` ini option (a path relative to the ini file), else
serves no app. An app string ending in `.py` or holding a `/` is a file
(relative: to the test file's directory for a marker); else a module name,
imported.

A server is a `styx.Server`: `.host`, `.port`, `.address`; `.tx.box` is its
box, for a test to look at.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .server import Config, Server

__all__ = ["DEFAULTS"]

# What a test server starts with unless told otherwise: fast, in memory, and
# quick to stop (a test that leaves a connection open waits at most this).
DEFAULTS: dict[str, Any] = {
    "listen": "127.0.0.1:0",
    "wal_mode": "none",
    "iproto_threads": 0,
    "shutdown_timeout": 1.0,
}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("styx_app", "the app Styx test servers serve: a .py file (relative to the ini file) "
                              "or a module name", default="")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "styx_app(app, **options): the app (a .py file, module name, module or mapping of "
                   "functions) and Config options of the styx_server / styx_server_module fixtures")


def resolve_app(app: Any, base: Path) -> Any:
    """A path string relative to `base`, or a module name imported; objects as they are."""
    if isinstance(app, Path):
        return str(app if app.is_absolute() else base / app)
    if not isinstance(app, str) or not app:
        return app or None
    if app.endswith(".py") or "/" in app:
        path = Path(app)
        return str(path if path.is_absolute() else base / path)
    return importlib.import_module(app)


def _from_marker(node: pytest.Item | pytest.Collector) -> tuple[Any, dict[str, Any]] | None:
    marker = node.get_closest_marker("styx_app")
    if marker is None:
        return None
    app = marker.args[0] if marker.args else marker.kwargs.get("app")
    options = {k: v for k, v in marker.kwargs.items() if k != "app"}
    return resolve_app(app, node.path.parent), options


@pytest.fixture(scope="module")
def styx_app(request: pytest.FixtureRequest) -> Any:
    """The app when no styx_app marker names one: the `styx_app` ini option,
    else none. Override it to serve another."""
    value = request.config.getini("styx_app")
    if not value:
        return None
    inipath = request.config.inipath
    return resolve_app(value, inipath.parent if inipath is not None else request.config.rootpath)


@pytest.fixture
def styx_server_factory() -> Iterator[Callable[..., Server]]:
    """`make(app=None, **config_options)`: a started server; all are stopped at teardown."""
    servers: list[Server] = []

    def make(app: Any = None, **options: Any) -> Server:
        server = Server(Config(app=app, **{**DEFAULTS, **options})).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


def _serve(request: pytest.FixtureRequest, default_app: Any) -> Iterator[Server]:
    app, options = _from_marker(request.node) or (default_app, {})
    server = Server(Config(app=app, **{**DEFAULTS, **options})).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def styx_server(request: pytest.FixtureRequest, styx_app: Any) -> Iterator[Server]:
    """A server for this test."""
    yield from _serve(request, styx_app)


@pytest.fixture(scope="module")
def styx_server_module(request: pytest.FixtureRequest, styx_app: Any) -> Iterator[Server]:
    """One server for the whole module (the module's marker names its app);
    what a test writes the next one sees."""
    yield from _serve(request, styx_app)
