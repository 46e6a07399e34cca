"""`pip install .` into a fresh venv gives a working `styx`: `--version`,
and `styx serve` of the example app from another directory, which a
connector then calls (the package's data, bootstrap.snap, is there: a WAL
starts from it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.spawn import connect_when_up, free_port

ROOT = Path(__file__).resolve().parent.parent


def test_pip_install_into_a_fresh_venv(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(ROOT)], capture_output=True,
                         text=True, timeout=600)
    assert pip.returncode == 0, pip.stderr[-2000:]
    # The distribution's name on PyPI is not `styx` (another project's); its licence travels with it.
    show = subprocess.run([str(venv / "bin" / "pip"), "show", "-f", "styx-iproto"], capture_output=True,
                          text=True, timeout=60)
    assert "Name: styx-iproto" in show.stdout and "LICENSE" in show.stdout, show.stdout
    styx = str(venv / "bin" / "styx")
    version = subprocess.run([styx, "--version"], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert version.stdout.strip() == "styx 0.1.0"
    port = free_port()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    app = elsewhere / "app.py"
    app.write_text((ROOT / "examples" / "app.py").read_text())
    proc = subprocess.Popen([styx, "serve", "app.py", "--listen", f"127.0.0.1:{port}", "--work-dir", "data"],
                            cwd=elsewhere, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        c = connect_when_up(port, proc, user="test", password="secret")
        assert c.call("echo", 1, "a").data == [1, "a"]
        c.close()
    finally:
        proc.terminate()
        proc.wait(30)
    assert list((elsewhere / "data").glob("*.snap"))  # its first snapshot: bootstrap.snap came with it
