"""pytest plugin: tarantool-python's own test suite (test/suites) against Styx.

Loaded with `-p tarantool_python_styx` before the suite is imported, it puts a
stand-in for test/suites/lib/tarantool_server.py in sys.modules: its
TarantoolServer starts a Styx server serving bench/peers/apps/tarantool_python.py
(the suite's box.lua has only box.cfg) instead of a `tarantool` binary, on the
port (or unix socket) the suite chose, and its `admin` reads the Lua the
suite sends to Tarantool's admin console with lua_admin.py (a small Lua subset
turned into IPROTO CALLs of the same Lua names). SSL and auth_type options
are taken and ignored (Styx serves plain TCP with chap-sha1)."""

from __future__ import annotations

import os
import socket
import sys
import tempfile
import types
from pathlib import Path

import tarantool
from lua_admin import LuaConsoleUnsupported, LuaError, run_snippet
from packaging.version import parse as parse_version
from styx_proc import StyxProcess, greeting_version

APP = os.environ.get("STYX_PEERS_APP") or str(Path(__file__).parent / "apps" / "tarantool_python.py")
ADMIN_USER, ADMIN_PASSWORD = "admin", "peer_admin"  # the app sets admin's password


def check_port(port, rais=True):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            if rais:
                raise RuntimeError(f"The server is already running on port {port}") from None
            return False
    return True


def find_port(port=None):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StyxAdmin:
    """TarantoolAdmin's interface, over lua_admin."""

    def __init__(self, server: TarantoolServer) -> None:
        self.server = server
        self.env: dict = {}  # the console's Lua globals

    @property
    def tnt_version(self):
        return parse_version(self.version())

    def version(self) -> str:
        """box.info.version: what the server's greeting says."""
        host = "unix/" if self.server.host is None else self.server.host
        return ".".join(map(str, greeting_version(host, self.server.args["primary"])))

    def _call(self, name, args):
        host, port = self.server.host, self.server.args["primary"]
        c = tarantool.Connection(host, port, user=ADMIN_USER, password=ADMIN_PASSWORD,
                                 fetch_schema=False, connection_timeout=10)
        try:
            return c.call(name, args).data
        except tarantool.error.DatabaseError as e:
            if name in ("peer_define", "peer_define_values"):
                raise LuaConsoleUnsupported(f"Styx has no Lua console: {e.args[1]}") from None
            raise LuaError(e.args[1]) from None
        finally:
            c.close()

    def __call__(self, command):
        if command.strip() == "box.info.version":
            return [self.version()]
        return run_snippet(command, self._call, self.env)

    execute = __call__

    def connect(self):
        pass

    def disconnect(self):
        pass

    reconnect = connect


class TarantoolServer:
    def __init__(self, transport=None, ssl_key_file=None, ssl_cert_file=None, ssl_ca_file=None,
                 ssl_ciphers=None, ssl_password=None, ssl_password_file=None,
                 create_unix_socket=False, auth_type=None, sql_seq_scan_default=None):
        self.transport = transport
        self.auth_type = auth_type
        self.script = None
        self.args = {}
        if create_unix_socket:
            self.host = None
            fd, path = tempfile.mkstemp(suffix=".sock")
            os.close(fd)
            os.unlink(path)
            self.args["primary"] = path
        else:
            self.host = "127.0.0.1"
            self.args["primary"] = find_port()
        self.args["admin"] = find_port()
        self.admin = StyxAdmin(self)
        self._styx = None

    def start(self):
        if self.host is None:
            self._styx = StyxProcess(APP, self.args["primary"], "unix/")
        else:
            self._styx = StyxProcess(APP, self.args["primary"], self.host)
        self._styx.start()

    def stop(self):
        if self._styx is not None:
            self._styx.stop()
            self._styx = None

    def restart(self):
        self.stop()
        self.start()

    def clean(self):
        if self.host is None and os.path.exists(self.args["primary"]):
            os.remove(self.args["primary"])

    def __del__(self):
        try:
            self.stop()
        except Exception:  # noqa: BLE001 - whatever failed, the run goes on and says so
            pass

    def touch_lock(self):
        pass

    def is_started(self):
        return self._styx is not None


shim = types.ModuleType("test.suites.lib.tarantool_server")
shim.TarantoolServer = TarantoolServer
shim.find_port = find_port
shim.check_port = check_port
sys.modules["test.suites.lib.tarantool_server"] = shim
