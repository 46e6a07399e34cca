"""Debian's Tarantool 2.6 as a test oracle: start tests/lua/tarantool_server.lua
with a named setup (the Lua twin of a Styx test app) on an ephemeral port,
or an init script Styx runs too (`tarantool_script`), and compare what the
two answer (`differences`). The one way the suite starts a Tarantool server."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from tests.spawn import free_port

SCRIPT = Path(__file__).parent / "lua" / "tarantool_server.lua"

__all__ = ["differences", "tarantool_script", "tarantool_server"]


@contextlib.contextmanager
def tarantool_script(tarantool_bin: str, script: Path, work_dir: Path) -> Iterator[int]:
    """Yield the port of a Tarantool running `script`, an init script that
    listens on $LISTEN, works in $WORK and prints READY when set up (Styx
    can run the same script: `styx serve SCRIPT`)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = dict(os.environ, LISTEN=f"127.0.0.1:{port}", WORK=str(work_dir))
    log = work_dir / "tarantool.log"
    with open(log, "w") as err:
        proc = subprocess.Popen([tarantool_bin, str(script)], stdout=subprocess.PIPE, stderr=err, text=True,
                                env=env)
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]  # stdout is a pipe
        if line.strip() != "READY":
            raise RuntimeError(f"tarantool did not start {script}: {line!r} {log.read_text(errors='replace')}")
        yield port
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def differences(cases: Iterable[Any], tarantool_answer: Callable[[Any], Any],
                styx_answer: Callable[[Any], Any]) -> str:
    """Each case asked of both servers; the cases they answer differently,
    one per line, or "" if none."""
    out = []
    for case in cases:
        t, s = tarantool_answer(case), styx_answer(case)
        if t != s:
            out.append(f"{case!r}:\n  tarantool {t}\n  styx      {s}")
    return "\n".join(out)


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
