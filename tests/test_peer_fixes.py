"""Fixes found by running connectors' own test suites against Styx
(tests/peers/, issue 7), each checked against Debian's Tarantool 2.6 where
2.6 can answer (tests/lua/tarantool_server.lua `ddl`: boss/pw is super).

- space formats with positional entries, as Lua writes them
  (`{'id', type = 'unsigned'}` arrives as {1: 'id', 'type': 'unsigned'}),
  which tarantool-python's test setup uses;
- box.begin/box.commit/box.rollback over CALL (asynctnt's tests).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.test_ddl_over_call import Conn, both, styx_port, tnt_port  # noqa: F401 (fixtures)

FORMATS = {
    # Lua {'id', type = 'unsigned'}, {'name', type = 'string'}
    "name_by_position": [{1: "id", "type": "unsigned"}, {1: "name", "type": "string"}],
    # Lua {'id', 'unsigned'}: a (name, type) array
    "pairs": [["id", "unsigned"], ["name", "string"]],
    # Lua {name = 'id', 'unsigned'}: the type by position
    "type_by_position": [{"name": "id", 1: "unsigned"}, {"name": "v"}],
    # Lua {'id', 'name'}: bare names, type any
    "bare_names": ["id", "name"],
    # Lua {{'id', type = 'unsigned', is_nullable = true}}
    "options_kept": [{1: "id", "type": "unsigned", "is_nullable": True}],
}


def _create_and_read_format(c: Conn, name: str, fmt: list[Any]) -> Any:
    # 2.6 cannot encode the space object create returns (error 32), and
    # creates the space all the same: read the format back from _vspace.
    c.call("box.schema.space.create", name, {"format": fmt})
    got = c.call("box.space._vspace.index.name:get", [name])
    return got[1][0][6] if got[0] == "ok" and got[1] and got[1][0] else ("no space", got)


@pytest.mark.parametrize("case", sorted(FORMATS))
def test_space_format_positional_entries(case: str, styx_port: int, tnt_port: int) -> None:
    name = f"fmt_{case}"
    styx, tnt = both(styx_port, tnt_port, lambda c: _create_and_read_format(c, name, FORMATS[case]))
    assert isinstance(tnt, list), tnt
    assert styx == tnt


@pytest.mark.parametrize("fmt", [[{"type": "unsigned"}], [{1: 5, "type": "unsigned"}], [7]])
def test_space_format_without_a_string_name(fmt: list[Any], styx_port: int, tnt_port: int) -> None:
    styx, tnt = both(styx_port, tnt_port, lambda c: c.call("box.schema.space.create", "nameless", {"format": fmt}))
    assert tnt == ("err", 1, "Illegal parameters, format[1]: name (string) is expected")
    assert styx == tnt
