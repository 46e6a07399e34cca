"""The lines of each suite's own Lua setup script that Styx does not run,
with why, and the one function that takes them out: the plugins
(asynctnt_styx_lua.py, tarantool_python_styx_lua.py) serve what is left,
and run.py reports what went. No suite is imported here.

A pattern that starts a block (`box.once('v2', function()`, `if ... then`)
takes the block out, to its own `end)` or `end`; a line taken out is left
empty, so line numbers stay.
"""

from __future__ import annotations

import re

__all__ = ["ASYNCTNT", "TARANTOOL_PYTHON", "strip"]

# asynctnt: its init.lua template (asynctnt.instance) and tests/files/app.lua.
ASYNCTNT = [
    (r"^require\('console'\)\.listen\(.*\)$",
     "needs the Lua console module (Styx has no `console`): the suite's commands go as EVAL instead"),
    (r"^box\.once\('v2', function\(\)$",
     "needs SQL (box.execute: CREATE TABLE); Styx has no SQL"),
    (r"^if B:check_version\(\{2, 10, 0\}\) then$",
     "needs the datetime field type (Tarantool 2.10; Styx's field types are 2.6's)"),
]

# tarantool-python: test/suites/box.lua.
TARANTOOL_PYTHON = [
    (r"^require\('console'\)\.listen\(admin_listen\)$",
     "needs the Lua console module (Styx has no `console`): the suite's admin commands go "
     "to Styx's admin socket instead, as Lua run by box.lua.eval"),
]


def strip(text: str, removed_patterns: list[tuple[str, str]]) -> tuple[str, list[tuple[int, str, str]]]:
    """The script less what Styx cannot run; and (line number, line, why)
    for each line removed (a line removed is left empty: numbers stay)."""
    lines = text.split("\n")
    removed: list[tuple[int, str, str]] = []
    i = 0
    while i < len(lines):
        for pattern, why in removed_patterns:
            if re.match(pattern, lines[i].strip()):
                indent = len(lines[i]) - len(lines[i].lstrip())
                end = i
                closing = {"function()": "end)", "then": "end"}
                for opener, closer in closing.items():  # a block: to its own end
                    if lines[i].rstrip().endswith(opener):
                        end = next(j for j in range(i + 1, len(lines))
                                   if lines[j].rstrip() == " " * indent + closer)
                for j in range(i, end + 1):
                    removed.append((j + 1, lines[j], why))
                    lines[j] = ""
                i = end
                break
        i += 1
    return "\n".join(lines), removed
