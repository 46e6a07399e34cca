"""The admin console: a Python REPL that runs inside TX, with `box` in scope.

`styx serve --admin-socket PATH` listens on a unix socket; `styx console
PATH` connects to it. What is typed runs in TX's loop, between requests,
as a procedure would: look at live data, grant, `await box.snapshot()`,
change `box.cfg`. Access is the socket file's permissions, as with
Tarantool's admin socket: whoever may connect to it is admin.

The plan, as Python's own REPL (`code.InteractiveConsole`) splits it: the
client reads lines with readline (history, editing) and decides, with
`codeop`, when a block is complete (multi-line input); the server compiles
each block in "single" mode (expressions print their value) with top-level
await allowed, runs it in one namespace kept for the session, and sends
back what it printed, or the traceback: an error never ends the session.

The wire is one JSON object per line each way: {"source": ...} in,
{"output": ...} out; the first line out is a greeting.

Risks: a block that blocks, blocks TX (as a plain-def procedure would);
what a block prints goes to the console through a redirected sys.stdout,
which is process-wide while the block runs (only TX prints there).
"""

from __future__ import annotations

import ast
import asyncio
import codeop
import contextlib
import io
import json
import os
import socket
import sys
import traceback
from pathlib import Path
from typing import Any

__all__ = ["ConsoleServer", "main"]

FLAGS = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
GREETING = "Styx admin console: Python, in TX, with `box` (await works). Ctrl-D leaves."


class ConsoleServer:
    """The listening side, in TX's loop. `enter()` makes the context a block
    runs in (the fiber that lets `box` work) and gives back what leave() takes."""

    def __init__(self, path: str, namespace: dict[str, Any], enter: Any, leave: Any) -> None:
        self.path = path
        self.namespace = namespace
        self.enter = enter
        self.leave = leave
        self.server: asyncio.AbstractServer | None = None
        self.sessions = 0

    async def start(self) -> None:
        if os.path.exists(self.path):
            os.unlink(self.path)
        self.server = await asyncio.start_unix_server(self._session, self.path)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
            with contextlib.suppress(OSError):
                os.unlink(self.path)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.sessions += 1
        namespace = dict(self.namespace)  # each session its own variables
        try:
            await _send(writer, {"output": GREETING})
            while line := await reader.readline():
                try:
                    source = json.loads(line)["source"]
                except (ValueError, KeyError, TypeError):
                    await _send(writer, {"output": "console: not a request\n"})
                    continue
                await _send(writer, {"output": await self.run(source, namespace)})
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def run(self, source: str, namespace: dict[str, Any]) -> str:
        """Run one block; what it printed (values of expressions included),
        or its traceback."""
        out = io.StringIO()
        token = self.enter()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                try:
                    tree = compile(source, "<console>", "exec", flags=FLAGS | ast.PyCF_ONLY_AST)
                    for stmt in tree.body:  # as the REPL: an expression statement prints its value
                        code = (compile(ast.Interactive([stmt]), "<console>", "single", flags=FLAGS)
                                if isinstance(stmt, ast.Expr) else
                                compile(ast.Module([stmt], []), "<console>", "exec", flags=FLAGS))
                        result = eval(code, namespace)  # noqa: S307 - the admin's own input, by design
                        if asyncio.iscoroutine(result):
                            await result
                except SystemExit:
                    print("console: exit() would stop the server; Ctrl-D leaves the console")
                except BaseException:  # noqa: BLE001 - shown to the admin; the session goes on
                    etype, value, tb = sys.exc_info()
                    # The block's own frames only (the first is this function's).
                    print("".join(traceback.format_exception(etype, value, tb.tb_next if tb else None)),
                          end="")
        finally:
            self.leave(token)
        return out.getvalue()


async def _send(writer: asyncio.StreamWriter, obj: dict[str, Any]) -> None:
    writer.write(json.dumps(obj).encode() + b"\n")
    await writer.drain()


# -- the client: styx console PATH ----------------------------------------------------------


def main(path: str) -> int:
    """Connect to an admin socket and run a REPL on it until EOF."""
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
    except OSError as e:
        print(f"styx console: {path}: {e.strerror or e}", file=sys.stderr)
        return 2
    history = Path.home() / ".styx_console_history"
    try:
        import readline  # noqa: F401 - line editing for input()

        with contextlib.suppress(OSError):
            readline.read_history_file(history)
    except ImportError:  # no readline here: plain input()
        readline = None  # type: ignore[assignment]
    f = sock.makefile("rwb")
    print(json.loads(f.readline())["output"])
    compiler = codeop.CommandCompiler()
    try:
        while True:
            lines: list[str] = []
            while True:
                try:
                    lines.append(input("... " if lines else f"{os.path.basename(path)}> "))
                except EOFError:
                    print()
                    return 0
                source = "\n".join(lines)
                try:
                    if compiler(source, "<console>", "single") is not None:
                        break  # complete
                except SyntaxError:
                    break  # the server says what is wrong
                except (OverflowError, ValueError):
                    break
            if not source.strip():
                continue
            f.write(json.dumps({"source": source}).encode() + b"\n")
            f.flush()
            reply = f.readline()
            if not reply:
                print("styx console: the server closed the connection", file=sys.stderr)
                return 1
            print(json.loads(reply)["output"], end="")
    except KeyboardInterrupt:
        print()
        return 0
    finally:
        if readline is not None:
            with contextlib.suppress(OSError):
                readline.write_history_file(history)
        sock.close()
