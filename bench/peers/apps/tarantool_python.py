"""Styx app for tarantool-python's test suite (tarantool 1.3.0, test/suites).

The suite's box.lua only configures the server; each test class then sends
Lua to the admin console, which bench/peers/lua_admin.py turns into CALLs of
Styx builtins. What the Lua defines as functions has its Python twin here:

- `peer_define(name, source)`: a snippet defined the Lua function `name`;
  succeeds if this app has a twin of that source (the twin then answers CALLs
  of `name`), fails otherwise; `peer_define_values(name, values)`: one that
  returns literal values (srv_id, test_mesh's discovery functions);
- the Lua library functions the tests call by name (`json.decode`,
  `json.encode`, `uuid.str`, `fiber.time`, `fiber.time64`, `box.tuple.new`),
  which box.lua's Tarantool has built in.

The console runs as admin (only admin may grant on the universe, in Tarantool
as in Styx): the app gives admin the password `peer_admin`.
"""

import json
import re
import time
import uuid

from styx import box

_defined = {}


def init():
    box.schema.user.passwd("admin", "peer_admin")


# -- Lua functions the snippets define: source pattern -> twin ---------------------------


def _add(arg1, arg2):
    return arg1 + arg2


def _sub(arg1, arg2):
    return arg1 - arg2


def _four():
    return 2 + 2


def _push_three():
    x = [0, 0]
    while x[0] < 3:
        x[0] += 1
        box.session.push(list(x))
    return x


TWINS = [
    ("add", r"return arg1 \+ arg2", lambda m: _add),
    ("sub", r"return arg1 - arg2", lambda m: _sub),
    ("server_function", r"return 2\+2", lambda m: _four),
    ("server_function", r"box\.session\.push\(x\)", lambda m: _push_three),
]


def peer_define(name, source):
    for twin_name, pattern, make in TWINS:
        m = re.search(pattern, source)
        if twin_name == name and m:
            _defined[name] = make(m)
            return True
    raise box.error(33, reason=f"no Python twin of the Lua function {name}: {source[:80]!r}")


def peer_define_values(name, values):
    """A Lua function that returns these literal values."""
    if name not in _DISPATCHED:
        raise box.error(33, reason=f"no Python twin of the Lua function {name}")
    _defined[name] = lambda *args, v=tuple(values): v
    return True


def _dispatch(name):
    def call(*args):
        f = _defined.get(name)
        if f is None:
            raise box.error(33, reason=f"Procedure '{name}' is not defined")
        return f(*args)
    call.__name__ = name
    return call


add = _dispatch("add")
sub = _dispatch("sub")
server_function = _dispatch("server_function")
srv_id = _dispatch("srv_id")
get_all_nodes = _dispatch("get_all_nodes")  # test_mesh's discovery functions
bad_cluster_discovery = _dispatch("bad_cluster_discovery")
bad_and_good_addresses = _dispatch("bad_and_good_addresses")
get_second_node = _dispatch("get_second_node")
_DISPATCHED = {"add", "sub", "server_function", "srv_id", "get_all_nodes",
               "bad_cluster_discovery", "bad_and_good_addresses", "get_second_node"}
on_replace_callback = None  # a trigger: needs Lua


# -- Lua built-in library functions, called by name ----------------------------------------


def _json_decode(s):
    return json.loads(s)


def _json_encode(v):
    return json.dumps(v, separators=(",", ":"))


def _uuid_str():
    return str(uuid.uuid4())


def _fiber_time():
    return time.time()


def _fiber_time64():
    return time.time_ns() // 1000


def _tuple_new(*args):
    return args[0] if len(args) == 1 and isinstance(args[0], list) else list(args)


for _name, _fn in (("json.decode", _json_decode), ("json.encode", _json_encode),
                   ("uuid.str", _uuid_str), ("fiber.time", _fiber_time),
                   ("fiber.time64", _fiber_time64), ("box.tuple.new", _tuple_new)):
    _fn.__name__ = _name
    globals()[_name] = _fn
