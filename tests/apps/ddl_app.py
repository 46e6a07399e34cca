"""The app of tests/test_ddl_over_call.py (tests/lua/tarantool_server.lua `ddl`
builds the same on Tarantool 2.6): no spaces and no procedures; `boss`/`pw`
has the role `super`; guest has only its default grants (no execute on the
universe), so every builtin is denied to it."""

from styx import box


def init():
    box.schema.user.create("boss", password="pw")
    box.schema.user.grant("boss", "super")
