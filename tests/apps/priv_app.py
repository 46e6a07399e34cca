"""The app the privilege tests serve (tests/lua/tarantool_server.lua `priv`
builds the same on Tarantool 2.6):

- `admin` has the password `pw`, so a test can grant and revoke over IPROTO;
- `secret` [id unsigned, v any] holds [1, 'a'], [2, 'b']; `other` holds [10, 'x'];
- `nopriv`/`pw`: only what box.schema.user.create gives;
- `reader`/`pw`: read on `secret`, execute on the function `f`;
- `boss`/`pw`: the role `super`;
- `f` is a function object (box.schema.func.create); `g` is not.
"""

from styx import box


def init():
    box.schema.user.passwd("admin", "pw")
    fmt = [{"name": "id", "type": "unsigned"}, {"name": "v", "type": "any"}]
    secret = box.schema.space.create("secret", format=fmt)
    secret.create_index("pk")
    secret.insert([1, "a"])
    secret.insert([2, "b"])
    other = box.schema.space.create("other", format=fmt)
    other.create_index("pk")
    other.insert([10, "x"])
    box.schema.user.create("nopriv", password="pw")
    box.schema.user.create("reader", password="pw")
    box.schema.user.grant("reader", "read", "space", "secret")
    box.schema.user.create("boss", password="pw")
    box.schema.user.grant("boss", "super")
    box.schema.func.create("f")
    box.schema.user.grant("reader", "execute", "function", "f")


def f(*args):
    return ("f", *args)


def g(*args):
    return ("g", *args)
