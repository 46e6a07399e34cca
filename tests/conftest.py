"""Fixtures: real Styx servers on 127.0.0.1 (ephemeral ports), embedded in the
test process, in every iproto thread mode."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asynctnt
import pytest

from styx import Config, Server

APP = str(Path(__file__).parent / "apps" / "app.py")
THREAD_MODES = [0, 1, 2, 3]


@pytest.fixture
def make_server() -> Iterator[Callable[..., Server]]:
    """Start servers with any Config options; all are stopped at teardown."""
    servers: list[Server] = []

    def make(**options: Any) -> Server:
        options.setdefault("listen", "127.0.0.1:0")
        options.setdefault("app", APP)
        server = Server(Config(**options)).start()
        servers.append(server)
        return server

    yield make
    for s in servers:
        s.stop()


@pytest.fixture(params=THREAD_MODES, ids=lambda n: f"threads{n}")
def server(request: pytest.FixtureRequest, make_server: Callable[..., Server]) -> Server:
    """The test app served with 0, 1, 2 and 3 iproto threads."""
    return make_server(iproto_threads=request.param)


@pytest.fixture(scope="session")
def tarantool_bin() -> str:
    path = shutil.which("tarantool")
    if path is None:
        pytest.fail("Debian's tarantool is required (make test installs it)")
    return path


# asynctnt patches its Connection class when it meets a server without
# streams (Tarantool 2.6 in the oracle tests): `Connection.stream` then raises
# for every later connection in the process. Put the real methods back
# before each test.
_ASYNCTNT_ORIGINALS = {name: getattr(asynctnt.Connection, name) for name in ("stream", "call")}


@pytest.fixture(autouse=True)
def _asynctnt_unpatched() -> Iterator[None]:
    for name, fn in _ASYNCTNT_ORIGINALS.items():
        setattr(asynctnt.Connection, name, fn)
    yield
