"""The command line: each mistake is one clear line (the value, what is
expected) and exit code 2, never a traceback; signals as Tarantool handles
them (issue 7, items 6 and 7)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.iproto import Raw
from tests.spawn import free_port

ROOT = Path(__file__).parent.parent
APP = str(Path(__file__).parent / "apps" / "app.py")
ENV = dict(os.environ, PYTHONPATH=str(ROOT))


def styx(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "styx", "serve", "--wal-mode", "none", *args], capture_output=True,
                          text=True, timeout=timeout, env=ENV)



@pytest.fixture
def apps(tmp_path: Path) -> Path:
    (tmp_path / "syntax.py").write_text("x = 1\ndef f(:\n    pass\n")
    (tmp_path / "init_fails.py").write_text("def init():\n    raise RuntimeError('boom')\n")
    (tmp_path / "import_fails.py").write_text("import styx_no_such_module\n")
    (tmp_path / "app.txt").write_text("def f(): pass\n")
    return tmp_path


CASES = [
    (["--listen", "127.0.0.1:99999"], r"listen '127\.0\.0\.1:99999': port 99999 is out of range 0\.\.65535"),
    (["--listen", "localhost"], r"listen 'localhost': expected HOST:PORT, PORT or unix/:PATH"),
    (["--listen", "unix/:{tmp}/missing/dir/sock"],
     r"cannot listen on 'unix/:.*/missing/dir/sock': No such file or directory"),
    (["--log-level", "foo"], r"argument --log-level: invalid choice: 'FOO' \(choose from 'DEBUG'"),
    (["--iproto-threads", "-1"], r"iproto_threads -1: must be between 0 and 1000"),
    (["{tmp}/app.txt"], r".*/app\.txt: not a Python file \(the app is a \.py file or a module name\)"),
    (["{tmp}/missing.py"], r".*/missing\.py: no such file"),
    (["{tmp}/syntax.py"], r".*/syntax\.py:2:7: SyntaxError: invalid syntax"),
    (["{tmp}/init_fails.py"], r".*/init_fails\.py:2: init\(\) failed: RuntimeError: boom"),
    (["{tmp}/import_fails.py"],
     r".*/import_fails\.py:1: loading the app failed: ModuleNotFoundError: No module named 'styx_no_such_module'"),
]


@pytest.mark.parametrize("args,expected", CASES, ids=[" ".join(a) for a, _ in CASES])
def test_mistakes_are_one_line_and_exit_2(apps, args, expected):
    args = [a.replace("{tmp}", str(apps)) for a in args]
    if not any(a.startswith("--listen") for a in args):
        args += ["--listen", f"127.0.0.1:{free_port()}"]
    r = styx(*args)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert re.search(expected, last), last


def test_port_in_use_names_the_address():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = styx("--listen", f"127.0.0.1:{port}")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1] == \
        f"styx: cannot listen on '127.0.0.1:{port}': Address already in use"


def _start(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[str], int, Path]:
    port = free_port()
    log = tmp_path / "styx.log"
    proc = subprocess.Popen([sys.executable, "-m", "styx", "serve", APP, "--listen",
                             f"127.0.0.1:{port}", "--log", str(log), "--wal-mode", "none", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.time() + 20
    while time.time() < deadline:
        if log.exists() and "listening" in log.read_text():
            return proc, port, log
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"styx did not start: {proc.communicate()}")


def _wait_for(path: Path, text: str, seconds: float = 10) -> str:
    deadline = time.time() + seconds
    while time.time() < deadline:
        content = path.read_text() if path.exists() else ""
        if text in content:
            return content
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not in {path}: {content!r}")


def test_sighup_reopens_the_moved_log_file(tmp_path):
    """logrotate moves the file and sends SIGHUP: Styx goes on serving and
    writes to a new file at the old path (it used to die at once)."""
    proc, port, log = _start(tmp_path)
    try:
        log.rename(tmp_path / "styx.log.1")
        proc.send_signal(signal.SIGHUP)
        _wait_for(log, "SIGHUP: log file reopened")
        with Raw(port) as c:
            assert c.call("echo", "after HUP")[1][0x30] == ["after HUP"]
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(20)
    assert proc.returncode == 0
    assert "styx shutting down" in log.read_text()


def test_second_sigterm_skips_the_graceful_wait(tmp_path):
    proc, port, log = _start(tmp_path, "--shutdown-timeout", "60")
    try:
        c = Raw(port)
        c.request(10, 1, {0x22: "sleep", 0x21: [60]})  # in flight: the graceful stop waits
        time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _wait_for(log, "graceful shutdown")
        time.sleep(0.3)
        assert proc.poll() is None, "the first SIGTERM must wait for the request"
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
        assert time.monotonic() - t0 < 5
        assert "shutdown forced" in log.read_text()
        c.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_command_line_persists_by_default_and_config_does_not() -> None:
    from styx import Config
    from styx.cli import build_parser
    args = build_parser().parse_args(["serve", APP])
    assert (args.wal_mode, args.work_dir) == ("write", ".")  # as Tarantool's box.cfg
    assert Config().wal_mode == "none"  # an embedded server writes nothing unless asked
