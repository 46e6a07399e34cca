"""pytest plugin: asynctnt's own test suite against Styx running the suite's
own Lua (run.py --lua).

asynctnt's suite starts `tarantool` with an init.lua it renders itself
(asynctnt.instance's template: box.cfg, a grant to guest, then
tests/files/app.lua). Loaded with `-p asynctnt_styx_lua`, this plugin makes
TarantoolSyncInstance start `python -m styx serve init.lua` on that same
rendered script instead, less the lines in `removed_lines` (each with why),
and sends what the suite types into Tarantool's Lua console
(`tnt.command(...)`) as an IPROTO EVAL, as the console runs it: `return
CMD` if that compiles, else CMD; an error comes back as {error = message}
(the console's `- error: ...`), no value as None.

The suite's own app.lua must be in tests/files/ (run.py puts it there: the
sdist does not ship it)."""

from __future__ import annotations

import os
import re
import subprocess

import asynctnt.instance
import tarantool
from lua_scripts import ASYNCTNT, strip
from styx_proc import LOG_DIR, PYTHON, ROOT, wait_greeting

# Tarantool's console, over EVAL: `return CMD` first, then CMD.
CONSOLE = """
local cmd = ...
local f, err = loadstring('return ' .. cmd, '=console')
if f == nil then f, err = loadstring(cmd, '=console') end
if f == nil then return {error = err} end
local r = {pcall(f)}
if not r[1] then return {error = tostring(r[2])} end
return unpack(r, 2, table.maxn(r))
"""




class StyxLuaInstance(asynctnt.instance.TarantoolSyncInstance):
    """TarantoolSyncInstance, with Styx serving the rendered init.lua."""

    def _save_initlua(self, initlua):
        text, _ = strip(initlua.replace(" " * 4, ""), ASYNCTNT)
        path = os.path.join(self._root, "init.lua")
        with open(path, "w") as f:
            f.write(text)
        return path

    def start(self, *, wait=True, recreate=True):
        path = self.prepare(recreate)
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        log = open(LOG_DIR / f"styx-lua-asynctnt-{os.getpid()}-{self._port if self._host != 'unix/' else 'unix'}"
                             f"-{os.urandom(3).hex()}.log", "w")
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self._process = subprocess.Popen([PYTHON, "-m", "styx", "serve", path], env=env,
                                         stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self._logger_thread = None
        self._is_running = True
        if wait and not wait_greeting(self._host, self._port, self._timeout * 4):
            raise TimeoutError("Timeout while waiting for Styx to listen")

    def command(self, cmd, print_greeting=True):
        host = None if self._host == "unix/" else self._host
        try:
            c = tarantool.Connection(host, self._port, fetch_schema=False, connection_timeout=5)
        except tarantool.error.NetworkError as e:
            raise OSError(str(e)) from None
        try:
            data = c.eval(CONSOLE, [cmd]).data
        finally:
            c.close()
        return data if data else None

    def version(self):
        res = self.command("box.info.version")
        return self._parse_version(res[0]) if res else None

    @property
    def bin_version(self):
        # Asked before start too: the version this Styx tree's greeting names.
        m = re.search(r"^VERSION = \((\d+), (\d+), (\d+)\)", (ROOT / "styx" / "server.py").read_text(), re.M)
        return tuple(int(x) for x in m.groups())


asynctnt.instance.TarantoolSyncInstance = StyxLuaInstance
