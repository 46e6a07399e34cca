"""Lua procedures, init scripts and fibers (styx/tx/lua.py, fiber.lua): one
init script (tests/lua/procs.lua) runs on Tarantool 2.6 and on Styx, and
the functions it defines answer the same over IPROTO: values, several
return values, tuples as objects, box.error, Lua errors (with the script's
file and line), transactions, box.once, and fibers that sleep, wait on a
channel or a condition, are joined or cancelled. Then what only Styx must
show: a waiting Lua procedure does not hold other requests, a loop that
never yields ends with "fiber slice is exceeded" and the server goes on,
a Python procedure wins a shared name, box.once's mark survives a restart,
and the command line's options win over the script's box.cfg{}."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
import tarantool

from tests.oracle import differences, tarantool_script
from tests.spawn import connect_when_up, free_port

ROOT = Path(__file__).resolve().parent
SCRIPT = ROOT / "lua" / "procs.lua"

CALLS: list[tuple[str, list[Any]]] = [
    ("sum", [1, 2]),
    ("sum", [1.5, 2]),
    ("several", []),
    ("nothing", []),
    ("echo", [1, "a", [1, 2], {"k": "v"}, None, True]),
    ("boom", []),
    ("boom_table", []),
    ("box_err", []),
    ("box_err_table", []),
    ("caught", []),
    ("func_returns_function", []),
    ("get_once_runs", []),
    ("put", [1, "one"]),
    ("put", [2, "two"]),
    ("tuple_parts", [1]),
    ("tuple_parts", [99]),
    ("tuple_update", [2]),
    ("tuple_unpack", [2]),
    ("select_all", []),
    ("count_loop", []),
    ("sleepy", [0.01]),
    ("via_channel", []),
    ("via_cond", []),
    ("cond_timeout", []),
    ("joined", []),
    ("fiber_status", []),
    ("channel_timeout", []),
    ("atomic_rollback", [10]),
    ("txn_commit", [11]),
    ("txn_left_open", [12]),
    ("tuple_parts", [12]),
    ("json_round", [{"a": [1, 2, {"b": None}]}]),
    ("su_check", []),
    ("ddl_round", []),
    ("triggers_seen", [20]),
    ("trigger_refuses", [30]),
    ("nested.deeper.fn", ["call"]),
    ("obj:method", ["call"]),
    ("map_keys", []),
    ("echo", [{}, [], {"g": {}, "f": [], "h": [{}]}]),
    ("tarantool_version", []),
    ("custom_error", []),
    ("fun_squares", [4]),
    ("users_named", ["guest"]),
    ("users_named", ["nobody"]),
    ("set_global", ["ready", True]),
    ("space_fields", []),
    ("create_func", ["peers_f"]),
    ("read_only_round", []),
    ("create_twice", []),
    ("no_such_function", []),
    ("nested.nope", []),
]


def answer(c: tarantool.Connection, name: str, args: list[Any]) -> Any:
    try:
        return ("ok", c.call(name, args).data)
    except tarantool.error.DatabaseError as e:
        return ("error", e.args[0], re.sub(r"0x[0-9a-f]+", "0x...", e.args[1]))  # tostring of a table


@pytest.fixture(scope="module")
def tarantool_port(tarantool_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with tarantool_script(tarantool_bin, SCRIPT, tmp_path_factory.mktemp("procs")) as port:
        yield port


def test_lua_procedures_as_tarantool(tarantool_port: int, make_server: Any) -> None:
    styx = make_server(app=str(SCRIPT))
    t = tarantool.Connection("127.0.0.1", tarantool_port)
    s = tarantool.Connection("127.0.0.1", styx.port)
    try:
        diffs = differences(CALLS, lambda case: answer(t, *case), lambda case: answer(s, *case))
        assert not diffs, diffs
    finally:
        t.close()
        s.close()


def session_story(port: int) -> list[Any]:
    """AUTH ok, AUTH with a wrong password, a connection on_connect refuses."""
    out: list[Any] = []
    c = tarantool.Connection("127.0.0.1", port, user="auth_user", password="secret")
    out.append(c.call("session_seen").data)
    with pytest.raises(tarantool.error.DatabaseError):  # the message differs on purpose (deliberate.py)
        tarantool.Connection("127.0.0.1", port, user="auth_user", password="wrong")
    out.append(c.call("session_seen").data)
    c.call("refuse_next")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        data = b""
        while chunk := sock.recv(65536):  # until the server closes
            data += chunk
    greeting, rest = data[:128], data[128:]
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
    unpacker.feed(rest)
    _, header, body = next(unpacker), next(unpacker), next(unpacker)  # the size: the error's file and line differ
    error = body[0x52][0][0]  # ERROR: {STACK: [{TYPE, CODE, MESSAGE, ...}]}
    out.append((greeting[:9], header[0], body[0x31], error[0], error[5], error[3], list(unpacker)))
    c.close()
    return out


def test_session_triggers_as_tarantool(tarantool_port: int, make_server: Any) -> None:
    styx = make_server(app=str(SCRIPT))
    assert session_story(styx.port) == session_story(tarantool_port)


def test_error_types_as_tarantool(tarantool_port: int, make_server: Any) -> None:
    """box.error.new{type = 'B'} is a CustomError whose custom_type is B, a
    Lua error a LuajitError (the error's MP_ERROR extra, as asynctnt's and
    tarantool-python's suites read it)."""
    styx = make_server(app=str(SCRIPT))
    seen = []
    for port in (tarantool_port, styx.port):
        c = tarantool.Connection("127.0.0.1", port)
        with pytest.raises(tarantool.error.DatabaseError) as e:
            c.call("custom_error")
        info = e.value.extra_info
        seen.append((e.value.args[:2], info.type, info.message, info.errcode, info.fields))
        with pytest.raises(tarantool.error.DatabaseError) as e:
            c.call("boom")
        seen.append(e.value.extra_info.type)
        with pytest.raises(tarantool.error.DatabaseError) as e:
            c.eval("not a Lua chunk")
        seen.append((e.value.extra_info.type, e.value.extra_info.message))
        with pytest.raises(tarantool.error.DatabaseError) as e:  # tarantool-python's test_15
            c.eval("local e1 = box.error.new(box.error.UNKNOWN)\n"
                   "local e2 = box.error.new(box.error.TIMEOUT)\n"
                   "e2:set_prev(e1)\n"
                   "error(e2)\n")
        info = e.value.extra_info
        seen.append([(i.type, i.file, i.line, i.message, i.errcode) for i in (info, info.prev)])
        with pytest.raises(tarantool.error.DatabaseError) as e:
            c.eval("\nbox.error(box.error.NO_SUCH_SPACE, 'x')")
        seen.append((e.value.extra_info.file, e.value.extra_info.line, e.value.extra_info.message))
        c.close()
    assert seen[:5] == seen[5:]
    assert seen[:3] == [((5, "A"), "CustomError", "A", 5, {"custom_type": "B"}), "LuajitError",
                                    ("LuajitError", "eval:1: unexpected symbol near 'not'")]


def test_a_waiting_lua_procedure_holds_no_one(make_server: Any) -> None:
    styx = make_server(app=str(SCRIPT))
    slow = tarantool.Connection("127.0.0.1", styx.port)
    fast = tarantool.Connection("127.0.0.1", styx.port)
    done: list[float] = []
    started = time.monotonic()
    waiter = threading.Thread(target=lambda: done.append(slow.call("sleepy", [0.5]).data and time.monotonic()))
    waiter.start()
    time.sleep(0.05)
    assert fast.call("sum", [2, 3]).data == [5]
    answered = time.monotonic() - started
    waiter.join(5)
    assert answered < 0.4, "a PING-like call waited for the sleeping procedure"
    assert done and done[0] - started >= 0.5
    slow.close()
    fast.close()


def test_a_loop_that_never_yields_ends_and_the_server_goes_on(make_server: Any) -> None:
    styx = make_server(app=str(SCRIPT))
    c = tarantool.Connection("127.0.0.1", styx.port)
    started = time.monotonic()
    with pytest.raises(tarantool.error.DatabaseError) as e:
        c.eval("while true do end")
    assert e.value.args[1] == "fiber slice is exceeded"
    assert 0.9 < time.monotonic() - started < 5
    assert c.eval("local fiber = require('fiber') fiber.set_max_slice(0.2) return 1").data == [1]
    started = time.monotonic()
    with pytest.raises(tarantool.error.DatabaseError):
        c.eval("local x = 0 while true do x = x + 1 end")
    assert time.monotonic() - started < 0.9
    assert c.call("sum", [1, 1]).data == [2]
    c.close()


def test_python_wins_a_shared_name(make_server: Any, tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text("from styx import box\n\n"
                   "def init():\n"
                   "    box.schema.user.grant('guest', 'execute', 'universe')\n"
                   "    box.lua.eval(\"function shared() return 'lua' end function only_lua() return 'lua' end\")\n\n"
                   "def shared():\n    return 'python'\n")
    styx = make_server(app=str(app))
    c = tarantool.Connection("127.0.0.1", styx.port)
    assert c.call("shared").data == ["python"]
    assert c.call("only_lua").data == ["lua"]
    c.close()


def test_a_python_app_loads_lua_files(make_server: Any, tmp_path: Path) -> None:
    (tmp_path / "procs.lua").write_text("function from_file(x) return x * 2 end\n")
    app = tmp_path / "app.py"
    app.write_text("from pathlib import Path\nfrom styx import box\n\n"
                   "def init():\n    box.schema.user.grant('guest', 'execute', 'universe')\n"
                   "    box.lua.dofile(Path(__file__).with_name('procs.lua'))\n")
    styx = make_server(app=str(app))
    c = tarantool.Connection("127.0.0.1", styx.port)
    assert c.call("from_file", [21]).data == [42]
    c.close()


def styx_serve(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "styx", "serve", *args], env=env, cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_init_script_over_the_command_line(tmp_path: Path) -> None:
    """box.cfg{} in the script sets the listen address unless the command
    line gives one; box.once's mark is a logged _schema row: after a
    restart the once-function does not run again."""
    port = free_port()
    env = dict(os.environ, LISTEN=f"127.0.0.1:{port}", WORK=str(tmp_path))
    for run in range(2):
        proc = styx_serve([str(SCRIPT), "--wal-mode", "write", "--work-dir", str(tmp_path)], env, tmp_path)
        try:
            c = connect_when_up(port, proc)
            assert c.call("get_once_runs").data == [1 if run == 0 else 0]
            assert c.call("put" if run == 0 else "tuple_parts", [5, "kept"] if run == 0 else [5]).data[:2] == (
                [[5, "kept"]] if run == 0 else [5, "kept"])
            c.close()
        finally:
            proc.terminate()
            out, _ = proc.communicate(timeout=10)
        assert "Traceback" not in out
    other = free_port()
    proc = styx_serve([str(SCRIPT), "--listen", f"127.0.0.1:{other}", "--wal-mode", "none"], env, tmp_path)
    try:
        c = connect_when_up(other, proc)
        assert c.call("sum", [2, 2]).data == [4]
        c.close()
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def test_a_failing_script_stops_the_start(tmp_path: Path) -> None:
    script = tmp_path / "bad.lua"
    script.write_text("box.cfg{listen = 0}\nerror('setup went wrong')\n")
    proc = styx_serve(["bad.lua", "--wal-mode", "none"], dict(os.environ), tmp_path)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode != 0
    assert "bad.lua:2: setup went wrong" in out
    assert "Traceback" not in out
    script.write_text("box.cfg{listen = 0, no_such_option = 1}\n")
    proc = styx_serve([str(script), "--wal-mode", "none"], dict(os.environ), tmp_path)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode != 0
    assert "Incorrect value for option 'no_such_option': unexpected option" in out


def test_a_connector_style_box_cfg(tmp_path: Path) -> None:
    """What the connectors' own setup scripts give box.cfg (tarantool-python's
    box.lua, asynctnt's init.lua): a bare path as listen is a unix socket (as
    Tarantool reads a URI), slab_alloc_arena is 2.6's deprecated memtx_memory
    in GiB, and read_only set there holds once the script has run. (Set in
    the first box.cfg{}, it would fail the grant after it, as in Tarantool.)"""
    sock = tmp_path / "s.sock"
    script = tmp_path / "init.lua"
    script.write_text(f"box.cfg{{listen = '{sock}', slab_alloc_arena = 0.1, pid_file = 'box.pid'}}\n"
                      "function cfg() return box.cfg.memtx_memory, box.cfg.read_only, box.info.ro end\n"
                      "box.schema.user.grant('guest', 'execute', 'universe')\n"
                      "box.cfg{read_only = true}\n")
    proc = styx_serve([str(script), "--wal-mode", "none"], dict(os.environ), tmp_path)
    try:
        deadline = time.monotonic() + 20
        while not sock.exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[0]
            time.sleep(0.05)
        c = tarantool.Connection(None, str(sock))
        assert c.call("cfg").data == [107374182, True, True]
        c.close()
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert "Deprecated option slab_alloc_arena" in out


def test_a_redefined_or_removed_function_is_seen_at_once(make_server: Any) -> None:
    styx = make_server(app=str(SCRIPT))
    c = tarantool.Connection("127.0.0.1", styx.port)
    c.eval("function changing() return 1 end")
    assert c.call("changing").data == [1]
    c.eval("function changing() return 2 end")
    assert c.call("changing").data == [2]
    c.eval("changing = nil")
    with pytest.raises(tarantool.error.DatabaseError) as e:
        c.call("changing")
    assert e.value.args[:2] == (33, "Procedure 'changing' is not defined")
    c.close()
