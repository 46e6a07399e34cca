"""The modules Tarantool scripts `require` (json, msgpack, log, ...), for
TX's Lua (tx/lua.py).

What it does: `install(lua)` puts a loader for each module in Lua's
`package.preload`. A module Styx's Lua does not have fails with an error
that names it, at `require`, not at first use.

The plan: each module is Lua over a Python implementation (the json and
msgpack libraries Styx already uses), so that values cross the same way as
box's do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .lua import Lua

__all__ = ["install", "MISSING"]

# What Tarantool scripts lean on and Styx's Lua has not yet.
MISSING = ("fiber", "json", "msgpack", "yaml", "log", "clock", "uuid", "decimal", "datetime", "digest", "errno",
           "fio", "net.box", "console")


def install(lua: Lua) -> None:
    missing = lua.rt.eval("""function(name)
        package.preload[name] = function()
            error("Styx's Lua has no module '" .. name .. "' yet", 2)
        end
    end""")
    for name in MISSING:
        missing(name.encode())
