"""Styx twin of asynctnt's tests/files/app.lua (asynctnt 2.4.0).

- users: t1/t1; t1 and guest get read,write,execute,create,drop,alter on
  the universe (app.lua on 2.0+);
- tester (512): f1 unsigned, f2 string, f3 unsigned, f4 unsigned, f5 any;
  TREE `primary` on f1, non-unique `txt` on f2;
- no_schema_space: `primary` TREE and `primary_hash` HASH on field 1;
- tester_ext_dec (decimal f2), tester_ext_uuid (uuid f2) and
  tester_ext_datetime (datetime dt), each with a primary on field 1; a type
  Styx lacks (datetime) leaves its space out;
- app.lua's SQL tables (CREATE TABLE sql_space ...) need SQL: not made;
- the Lua functions, as Python procedures taking arguments as Lua does
  (a missing one is nil, extra ones are dropped); `change_format` is also a
  box.schema.func object, as app.lua makes it.
"""

import asyncio
import sys
import uuid

from styx import box


def _space(name, fmt, indexes):
    s = box.schema.space.create(name, if_not_exists=True, format=fmt)
    for iname, opts in indexes:
        s.create_index(iname, if_not_exists=True, **opts)
    return s


def init():
    box.schema.user.create("t1", password="t1", if_not_exists=True)
    for user in ("t1", "guest"):
        box.schema.user.grant(user, "read,write,execute,create,drop,alter", "universe",
                              if_not_exists=True)
    _space("tester", [{"type": "unsigned", "name": "f1"}, {"type": "string", "name": "f2"},
                      {"type": "unsigned", "name": "f3"}, {"type": "unsigned", "name": "f4"},
                      {"type": "*", "name": "f5"}],
           [("primary", {}), ("txt", {"unique": False, "parts": [2, "string"]})])
    _space("no_schema_space", None,
           [("primary", {}), ("primary_hash", {"type": "hash", "parts": [1, "unsigned"]})])
    for name, fmt in (("tester_ext_dec", [{"type": "unsigned", "name": "f1"},
                                          {"type": "decimal", "name": "f2"}]),
                      ("tester_ext_uuid", [{"type": "unsigned", "name": "f1"},
                                           {"type": "uuid", "name": "f2"}]),
                      ("tester_ext_datetime", [{"type": "unsigned", "name": "id"},
                                               {"type": "datetime", "name": "dt"}])):
        try:
            _space(name, fmt, [("primary", {})])
        except Exception as e:  # noqa: BLE001 - a type Styx lacks
            print(f"asynctnt app: {name} not created: {e}", file=sys.stderr)
    if not box.schema.func.exists("change_format"):
        box.schema.func.create("change_format", setuid=True)


def change_format(*_):
    box.space.tester.format([
        {"type": "unsigned", "name": "f1"}, {"type": "string", "name": "f2"},
        {"type": "unsigned", "name": "f3"}, {"type": "unsigned", "name": "f4"},
        {"type": "*", "name": "f5"}, {"type": "*", "name": "f6"},
    ])


def make_third_index(name, *_):
    i = box.space.tester.create_index(name, unique=True, parts=[3, "unsigned"])
    return [i.id]


def truncate(*_):
    for name in ("tester", "no_schema_space", "tester_ext_dec", "tester_ext_uuid",
                 "tester_ext_datetime"):
        try:
            sp = box.space[name]
        except Exception:  # noqa: BLE001 - a space the app could not make
            continue
        for t in sp.select([]):
            sp.delete([t[0]])


async def func_long(t=None, *_):
    await asyncio.sleep(t)
    return "ok"


def func_param(p=None, *_):
    return [p]


def func_param_bare(p=None, *_):
    return p


def func_hello_bare(*_):
    return "hello"


def func_hello(*_):
    return ["hello"]


def func_load_bin_str(*_):
    # Lua's uuid.bin() is a Lua string: 16 raw bytes sent as MP_STR. A Python
    # bytes is binary (MP_BIN, which a 'string' field refuses); the same
    # bytes as a str (surrogateescape) go out as that MP_STR.
    bin_data = uuid.uuid4().bytes.decode("utf-8", "surrogateescape")
    return box.space.tester.insert([100, bin_data, 12, 15, "hello"])


def raise_(*_):
    raise box.error(reason="my reason")


globals()["raise"] = raise_  # `raise` is a Python keyword


async def async_action(*_):
    for i in range(1, 6):
        box.session.push("hello_" + str(i))
        await asyncio.sleep(0.01)
    return "ret"
