"""The Styx side of the benchmark: the procedures the load generator CALLs.

bench/tarantool_init.lua defines the same functions, with the same names and
semantics, as global Lua functions for Tarantool.
"""

import asyncio

from styx import box


def init():
    # The same grant the Tarantool side makes (tarantool_init.lua).
    box.schema.user.grant("guest", "super", if_not_exists=True)


def sum(a, b):  # noqa: A001 - Lua's `function sum(a, b) return a + b end`
    return a + b


def echo(*args):  # Lua's `function echo(...) return ... end`
    return args


async def sum_yield(a, b):  # Lua's `function sum_yield(a, b) fiber.yield() return a + b end`
    await asyncio.sleep(0)
    return a + b
