"""The admin console (`--admin-socket PATH`, `styx console PATH`): Python in
TX with `box`, through the socket's JSON lines and through the real client
(multi-line input, errors that do not end the session)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import tarantool

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "tests" / "apps" / "box_extras_app.py")  # space kv, guest is super


class Console:
    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(str(path))
        self.f = self.sock.makefile("rwb")
        self.greeting = json.loads(self.f.readline())["output"]

    def run(self, source: str) -> str:
        self.f.write(json.dumps({"source": source}).encode() + b"\n")
        self.f.flush()
        return str(json.loads(self.f.readline())["output"])

    def close(self) -> None:
        self.f.close()
        self.sock.close()


def test_console_runs_python_in_tx_with_box(make_server: Any, tmp_path: Path) -> None:
    path = tmp_path / "admin.sock"
    server = make_server(app=APP, admin_socket=str(path))
    c = Console(path)
    try:
        assert "Styx admin console" in c.greeting
        assert c.run("box.space.kv.replace([1, 'from the console'])") == "[1, 'from the console']\n"
        assert c.run("x = 20") == ""
        assert c.run("x * 2 + 2") == "42\n"                      # the session keeps its variables
        out = c.run("1 / 0")
        assert out.startswith("Traceback") and "ZeroDivisionError: division by zero" in out
        assert c.run("x") == "20\n"                               # an error does not end it
        assert c.run("def f(n):\n    return n + 1\n") == ""
        assert c.run("f(x)") == "21\n"
        assert c.run("import asyncio\nawait asyncio.sleep(0)") == ""  # top-level await
        assert c.run("box.cfg(net_msg_max=1000)\nbox.cfg.net_msg_max") == "1000\n"
        assert c.run("box.schema.user.create('ops', password='pw')") == ""
        assert c.run("box.schema.user.grant('ops', 'read', 'space', 'kv')") == ""
        assert "SyntaxError" in c.run("def (")
    finally:
        c.close()
    # What the console did is the server's: a client sees it.
    conn = tarantool.Connection("127.0.0.1", server.port, user="ops", password="pw")
    assert conn.select("kv", 1).data == [[1, "from the console"]]
    conn.close()
    server.stop()
    assert not path.exists()


def test_the_console_client(make_server: Any, tmp_path: Path) -> None:
    path = tmp_path / "admin.sock"
    make_server(app=APP, admin_socket=str(path))
    script = "n = 2\nif n:\n    print('multi-line', n)\n\nn * 21\nraise ValueError('shown')\nn\n"
    r = subprocess.run([sys.executable, "-m", "styx", "console", str(path)], input=script, text=True,
                       capture_output=True, timeout=30, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "multi-line 2" in r.stdout and "42" in r.stdout
    assert "ValueError: shown" in r.stdout and "> 2\n" in r.stdout.split("ValueError: shown")[1]
    bad = subprocess.run([sys.executable, "-m", "styx", "console", str(tmp_path / "none.sock")],
                         capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert bad.returncode == 2 and "none.sock" in bad.stderr
