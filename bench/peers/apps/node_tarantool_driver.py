"""Styx twin of tarantool-driver 3.0.6's test/box.lua (Node, npm package).

Spaces, in box.lua's order so their ids match (the tests use 512, 514):
test 512, msgpack 513, batched 514, toaddmore 515, upstest 516, tags 517.
Users test/test, test_empty/'' and test_big/<60 digits>; the Lua functions
are Python procedures below, with box.schema.func objects where box.lua
makes them (test gets execute on those and on the universe)."""

import sys

from styx import box

PASSWORDS = {"test": "test", "test_empty": "", "test_big": "1234567890" * 6}


def init():
    for user, password in PASSWORDS.items():
        if not box.schema.user.exists(user):
            box.schema.user.create(user, password=password)
            if user == "test":
                box.schema.user.grant("test", "read", "space", "_space")
                box.schema.user.grant("test", "read", "space", "_index")
                box.schema.user.grant("test", "execute", "universe")

    test = box.schema.space.create("test", if_not_exists=True)
    test.create_index("primary", type="TREE", unique=True, parts=[1, "NUM"], if_not_exists=True)
    test.create_index("secondary", type="TREE", unique=False, parts=[2, "NUM", 3, "STR"],
                      if_not_exists=True)
    box.schema.user.grant("test", "read,write,execute", "space", "test", if_not_exists=True)

    mp = box.schema.space.create("msgpack", if_not_exists=True)
    mp.create_index("primary", parts=[1, "NUM"], if_not_exists=True)
    box.schema.user.grant("test", "read,write", "space", "msgpack", if_not_exists=True)
    mp.replace([1, "float as key", {2.7: [1, 2, 3]}])
    # Rows 2 and 3 have arrays as map keys: Styx can store them (a client may
    # insert them) but its Python API returns a written tuple as Python
    # values, and a dict cannot have a list key. No test reads this space.
    mp.replace([6, "array with string key as key", {"megusta": [1, 2, 3]}])

    batched = box.schema.space.create("batched", if_not_exists=True)
    batched.create_index("primary", type="TREE", unique=True, parts=[1, "NUM"], if_not_exists=True)
    box.schema.user.grant("test", "read,write,execute", "space", "batched", if_not_exists=True)

    toaddmore = box.schema.space.create("toaddmore", if_not_exists=True)
    toaddmore.create_index("primary", type="TREE", unique=True, parts=[1, "STR"], if_not_exists=True)
    box.schema.user.grant("test", "read,write,execute", "space", "toaddmore", if_not_exists=True)
    box.schema.user.grant("test", "read,write,execute", "space", "_index", if_not_exists=True)

    ups = box.schema.space.create("upstest", if_not_exists=True)
    ups.create_index("primary", type="TREE", unique=True, parts=[1, "NUM"], if_not_exists=True)
    box.schema.user.grant("test", "read,write,execute", "space", "upstest", if_not_exists=True)

    tags = box.schema.space.create("tags", if_not_exists=True)
    tags.create_index("primary", type="TREE", unique=True, parts=[1, "string"], if_not_exists=True)
    try:
        tags.format([{1: "tag", 2: "string"}, {1: "value", 2: "number"}])  # {{'tag', 'string'}, ...}
    except Exception as e:  # noqa: BLE001 - a Styx that refuses Lua's positional format entries
        print(f"node app: tags format refused: {e}", file=sys.stderr)
    box.schema.user.grant("test", "read,write,execute", "space", "tags", if_not_exists=True)

    for name in ("clearaddmore", "myget", "batch", "myprint", "test_delete"):
        if not box.schema.func.exists(name):
            box.schema.func.create(name)
            box.schema.user.grant("test", "execute", "function", name)


def test_delete(num):
    box.space.test.delete([num])


def myprint(some):
    print(some)
    return some


def batch(data):
    print(data)
    for value in data:
        box.space.batched.insert(value)


def myget(id):
    val = box.space.batched.select([id])
    return val[0] if val else None


def clearaddmore():
    for t in box.space.toaddmore.select([]):
        if t[0] is not None:
            box.space.toaddmore.delete([t[0]])


def func_foo():
    return {"foo": "foo", "bar": 42}


def func_sum(x, y):
    return x + y


def func_arg(arg):
    return arg
