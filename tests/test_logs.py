"""What the log tells an operator (`styx serve --log FILE --log-format json
--log-level DEBUG`): connections opened and closed, failed logins, a
procedure's exception with its traceback, each line one JSON object."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tarantool

from tests.spawn import connect_when_up, free_port

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "tests" / "apps" / "log_app.py")



def test_json_log_of_connections_logins_and_procedure_errors(tmp_path: Path) -> None:
    port, log_file = free_port(), tmp_path / "styx.log"
    proc = subprocess.Popen([sys.executable, "-m", "styx", "serve", APP, "--listen", f"127.0.0.1:{port}",
                             "--wal-mode", "none", "--log", str(log_file), "--log-format", "json",
                             "--log-level", "DEBUG"], cwd=ROOT)
    try:
        c = connect_when_up(port, proc, user="test", password="secret")
        with pytest.raises(tarantool.error.DatabaseError):
            c.call("fail", "boom")
        c.close()
        with pytest.raises(tarantool.error.DatabaseError):
            tarantool.Connection("127.0.0.1", port, user="test", password="wrong")
        time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert all({"time", "level", "thread", "logger", "message"} <= set(x) for x in lines)
    messages = [(x["level"], x["message"]) for x in lines]
    assert any(level == "DEBUG" and m.startswith("client ('127.0.0.1',") and "connected" in m
               for level, m in messages)
    assert any(level == "DEBUG" and "closed (connection" in m for level, m in messages)
    failed = [(level, m) for level, m in messages if "authentication as 'test' failed" in m]
    assert failed and failed[0][0] == "WARNING" and failed[0][1].startswith("client 127.0.0.1:")
    assert failed[0][1].endswith("User not found or supplied credentials are invalid")
    raised = [x for x in lines if x["message"].startswith("procedure fail raised ValueError: boom")]
    assert raised and raised[0]["level"] == "WARNING"
    assert "log_app.py" in raised[0]["exception"] and "raise ValueError(text)" in raised[0]["exception"]
