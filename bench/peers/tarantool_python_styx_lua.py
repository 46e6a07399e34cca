"""pytest plugin: tarantool-python's own test suite (test/suites) against Styx
running the suite's own Lua (run.py --lua).

The suite's test/suites/lib/tarantool_server.py starts `tarantool box.lua`
(box.lua reads LISTEN, ADMIN, AUTH_TYPE from the environment the class sets)
and sets each test class up by typing Lua into Tarantool's admin console
(`require('console').listen(ADMIN)` in box.lua). Loaded with
`-p tarantool_python_styx_lua`, this plugin keeps that class and changes
three of its methods:

- `prepare_args`: `python -m styx serve box.lua --admin-socket PATH`, box.lua
  as the suite ships it less the lines in lua_scripts.TARANTOOL_PYTHON (each with why), in the
  same var_* directory, with the same environment;
- the admin console: Styx has no Lua console, but it has an admin socket
  (a Python REPL in TX, as admin). What the suite types goes there as
  `box.lua.eval(CONSOLE, text)`, which runs the text as Tarantool's console
  does (`return TEXT` if that compiles, else TEXT; an error comes back as
  {error = message}, no value as None), as admin;
- `wait_until_ready`: the same wait (`ready` is true), on that socket.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
import time

from lua_scripts import TARANTOOL_PYTHON, strip
from styx_proc import PYTHON, ROOT

sys.path.insert(0, os.getcwd())  # the sdist's root: test.suites is a package there
from test.suites.lib import tarantool_server as ts  # noqa: E402 - after the path entry
from test.suites.lib.version import parse_version  # noqa: E402

# Tarantool's console: `return TEXT` first, then TEXT; values that have no
# MessagePack (functions, ...) as the console shows them, tostring.
CONSOLE = """
local cmd = ...
local f, err = loadstring('return ' .. cmd, '=console')
if f == nil then f, err = loadstring(cmd, '=console') end
if f == nil then return {error = err} end
local r = {pcall(f)}
if not r[1] then return {error = tostring(r[2])} end
for i = 2, table.maxn(r) do
    local t = type(r[i])
    if t == 'function' or t == 'userdata' or t == 'thread' then r[i] = tostring(r[i]) end
end
return unpack(r, 2, table.maxn(r))
"""


class StyxLuaAdmin:
    """TarantoolAdmin's interface, over Styx's admin socket."""

    def __init__(self, server) -> None:
        self.server = server
        self.socket: socket.socket | None = None
        self.is_connected = False
        self._tnt_version = None
        self._buf = b""

    @property
    def path(self) -> str:
        return os.path.join(self.server.vardir, "styx-admin.sock")

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(self.path)
        except OSError:
            s.close()
            raise
        self.socket, self.is_connected, self._buf = s, True, b""
        self._line()  # the greeting

    def _line(self) -> dict:
        assert self.socket is not None
        while b"\n" not in self._buf:
            chunk = self.socket.recv(65536)
            if not chunk:
                raise ConnectionError("styx admin socket closed")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line)

    def disconnect(self) -> None:
        if self.is_connected and self.socket is not None:
            self.socket.close()
        self.socket, self.is_connected = None, False

    def reconnect(self) -> None:
        self.disconnect()
        self.connect()

    def __enter__(self):
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.disconnect()

    def __call__(self, command):
        return self.execute(command)

    def execute(self, command):
        if not command:
            return None
        if not self.is_connected:
            self.connect()
        text = command.replace("\n", " ")  # as TarantoolAdmin sends it: one line
        source = ("import json as _json\n"
                  f"_r = box.lua.eval({CONSOLE!r}, {text!r})\n"
                  "if hasattr(_r, '__await__'):\n"
                  "    _r = await _r\n"
                  "print(_json.dumps(list(_r), default=str))\n")
        assert self.socket is not None
        self.socket.sendall(json.dumps({"source": source}).encode() + b"\n")
        out = self._line()["output"]
        try:
            values = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            values = [{"error": out.strip()}]  # a Python error: shown as the console shows one
        return values if values else None

    @property
    def tnt_version(self):
        if self._tnt_version is None:
            raw = re.match(r"[\d.]+", self.execute("box.info.version")[0]).group()
            self._tnt_version = parse_version(raw)
        return self._tnt_version


def _admin_get(self):
    if not isinstance(getattr(self, "_styx_admin", None), StyxLuaAdmin):
        self._styx_admin = StyxLuaAdmin(self)
    return self._styx_admin


def _admin_set(self, port):
    self._styx_admin = StyxLuaAdmin(self)


def prepare_args(self):
    text, _ = strip(open(self.script_dst).read(), TARANTOOL_PYTHON)
    path = os.path.join(self.vardir, "styx-" + os.path.basename(self.script_dst))
    with open(path, "w") as f:
        f.write(text)
    return [PYTHON, "-m", "styx", "serve", path, "--admin-socket", os.path.join(self.vardir, "styx-admin.sock")]


def wait_until_ready(self):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if self.process.poll() is not None:
            raise RuntimeError(f"styx exited with {self.process.returncode} (see {self.logfile_path})")
        try:
            temp = StyxLuaAdmin(self)
            ans = temp("ready")[0]
            temp.disconnect()
            if isinstance(ans, bool) and ans:
                return True
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("styx: not ready in 30 s")


os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
ts.TarantoolServer._admin = property(_admin_get, _admin_set)
ts.TarantoolServer.admin = property(_admin_get, _admin_set)
ts.TarantoolServer.prepare_args = prepare_args
ts.TarantoolServer.wait_until_ready = wait_until_ready
