"""Debian's Tarantool 2.6 as a test oracle: start tests/lua/tarantool_server.lua
with a named setup (the Lua twin of a Styx test app) on an ephemeral port.
The one way the suite starts a Tarantool server."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

SCRIPT = Path(__file__).parent / "lua" / "tarantool_server.lua"

__all__ = ["tarantool_server"]


@contextlib.contextmanager
def tarantool_server(tarantool_bin: str, setup: str, work_dir: Path,
                     memtx_memory: int | None = None) -> Iterator[int]:
    """Yield the port of a Tarantool serving `setup`; terminate it afterwards.
    Its log is `work_dir`/tarantool.log. A Tarantool that exited before the
    block ended is an error."""
    work_dir.mkdir(parents=True, exist_ok=True)
    args = [tarantool_bin, str(SCRIPT), setup, str(work_dir)]
    if memtx_memory is not None:
        args.append(str(memtx_memory))
    # The log goes to a file: a pipe nobody reads would fill up and stop
    # Tarantool mid-test once it logs enough (failed UPSERTs are logged).
    log = work_dir / "tarantool.log"
    with open(log, "w") as err:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]  # stdout is a pipe
        if not line.startswith("PORT "):
            proc.kill()
            proc.wait()
            raise RuntimeError(f"tarantool did not start: {line!r} {log.read_text(errors='replace')}")
        yield int(line.split()[1])
        if proc.poll() is not None:
            raise RuntimeError(f"tarantool died during the tests (exit {proc.returncode}): "
                               f"{log.read_text(errors='replace')}")
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
