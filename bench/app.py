"""The Styx side of the benchmark: the procedures the load generator CALLs,
and the spaces its data scenarios use.

bench/tarantool_init.lua defines the same functions, with the same names and
semantics, as global Lua functions for Tarantool, and the same spaces with the
same contents.

Spaces (both servers):
- `bench` (id 512), format [id unsigned, value string], TREE primary on id,
  pre-filled with keys 1..BENCH_KEYS (10,000 by default) and the 32-byte
  value `value-%026d`;
- `mem` (id 513), the same format and index, empty: the tuple memory test
  fills it;
- `txn` (id 514), the same format and index, empty: what the transaction
  scenario (`txn-replace`, Styx only) writes to.
"""

import asyncio
import os

from styx import box

_BENCH_SPACE, _MEM_SPACE, _TXN_SPACE = 512, 513, 514


def _value(k):  # the same 32-byte string as loadgen.value() and tarantool_init.lua
    return f"value-{k:026d}"


def init():
    # The same grant the Tarantool side makes (tarantool_init.lua).
    box.schema.user.grant("guest", "super", if_not_exists=True)
    fmt = [("id", "unsigned"), ("value", "string")]
    for name, sid in (("bench", _BENCH_SPACE), ("mem", _MEM_SPACE), ("txn", _TXN_SPACE)):
        s = box.schema.space.create(name, id=sid, format=fmt, if_not_exists=True)
        s.create_index("primary", parts=["id"], if_not_exists=True)
    box.lua.eval("function lua_sum(a, b) return a + b end")  # the call-lua scenario
    bench = box.space.bench
    for k in range(1, int(os.environ.get("BENCH_KEYS", "10000")) + 1):
        bench.replace([k, _value(k)])


def sum(a, b):  # noqa: A001 - Lua's `function sum(a, b) return a + b end`
    return a + b


def echo(*args):  # Lua's `function echo(...) return ... end`
    return args


async def sum_yield(a, b):  # Lua's `function sum_yield(a, b) fiber.yield() return a + b end`
    await asyncio.sleep(0)
    return a + b


def fill(n):
    """The snapshot benchmark: tuples [k, value(k)] for k in 1..n in space mem."""
    mem = box.space.mem
    for k in range(1, n + 1):
        mem.replace([k, _value(k)])
    return n
