"""pytest plugin: asynctnt's own test suite against Styx.

Loaded with `-p asynctnt_styx` before the suite is collected, it replaces
asynctnt.instance.TarantoolSyncInstance (which the suite uses to launch a
`tarantool` binary with tests/files/app.lua) by StyxInstance: a Styx server
serving bench/peers/apps/asynctnt.py, the Python twin of app.lua, on the port
the suite chose. start()/stop() start and stop that server.

The suite also drives Tarantool's Lua console (`tnt.command(...)`). There is
no console: `command` runs what it can as an IPROTO CALL (`name(args)` with
literal arguments, and `box.info.version`/`box.info.status`), and raises
LuaConsoleUnsupported for anything else."""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import asynctnt.instance
import tarantool
from styx_proc import StyxProcess, greeting_version

APP = os.environ.get("STYX_PEERS_APP") or str(Path(__file__).parent / "apps" / "asynctnt.py")


class LuaConsoleUnsupported(RuntimeError):
    pass


_CALL = re.compile(r"^\s*(?:return\s+)?([A-Za-z_][\w.]*(?:\.index\.\w+)?(?::\w+)?)\((.*)\)\s*$", re.S)


def console(host: str, port: int, cmd: str) -> list:
    """A Lua console command as an IPROTO CALL, where it is one."""
    if cmd.strip() == "box.info.version":
        return [".".join(map(str, greeting_version(host, port)))]
    if cmd.strip() == "box.info.status":
        return ["running"]
    m = _CALL.match(cmd)
    if m is None:
        raise LuaConsoleUnsupported(f"Styx has no Lua console: {cmd!r}")
    try:
        args = list(ast.literal_eval("[" + m.group(2) + "]"))
    except (ValueError, SyntaxError):
        raise LuaConsoleUnsupported(f"Styx has no Lua console: {cmd!r}") from None
    c = tarantool.Connection(host, port, fetch_schema=False)
    try:
        return c.call(m.group(1), args).data
    finally:
        c.close()


class StyxInstance:
    """What asynctnt's suite uses of TarantoolSyncInstance."""

    def __init__(self, *, host="127.0.0.1", port=3301, replication_source=None, **_):
        self.host = "127.0.0.1" if host in (None, "localhost") else host
        self.port = port if self.host == "unix/" else int(port)
        self.replication_source = replication_source
        self._styx = StyxProcess(APP, self.port, self.host)

    get_random_port = staticmethod(asynctnt.instance.TarantoolSyncInstance.get_random_port)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    @property
    def pid(self):
        return self._styx.pid

    def start(self, *, wait=True, recreate=True):
        # replication_source is ignored: Styx has no replication.
        self._styx.start(wait=wait)

    def stop(self):
        self._styx.stop()

    def version(self):
        return greeting_version(self.host, self.port)

    @property
    def bin_version(self):
        # Asked before start too (ensure_bin_version): the version this Styx
        # tree's greeting names, read from its source.
        from styx_proc import ROOT
        m = re.search(r"^VERSION = \((\d+), (\d+), (\d+)\)", (ROOT / "styx" / "server.py").read_text(), re.M)
        return tuple(int(x) for x in m.groups())

    def command(self, cmd, print_greeting=True):
        if self.host == "unix/":
            raise LuaConsoleUnsupported(f"Styx has no Lua console: {cmd!r}")
        return console(self.host, self.port, cmd)


asynctnt.instance.TarantoolSyncInstance = StyxInstance


def pytest_configure(config):
    # tests/files/app.lua is not in the sdist, and the suite reads it only to
    # hand it to the instance (some classes at import time, through
    # ensure_bin_version): Styx serves apps/asynctnt.py instead.
    from tests._testbase import TarantoolTestCase
    TarantoolTestCase.read_applua = classmethod(lambda cls: None)
