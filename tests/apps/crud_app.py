"""The app the CRUD connector tests serve: spaces made in init(), and grants.

- `tester`: format [id unsigned, name string, value any], a TREE primary
  `primary` on id and a non-unique TREE `name` on name;
- `hashy`: format [key string, value any], a HASH primary `pk` on key;
- guest may read, write and execute on the universe (connectors read the
  schema and call builtins as guest);
- `crud`/`pw`: read,write on `tester` and `hashy`, execute on the universe;
- `nogrants`/`pw`: only what box.schema.user.create gives (session, usage,
  the role public);
- `boss`/`pw`: the role `super`, for DDL at runtime.
"""

from styx import box


def init():
    box.schema.user.grant("guest", "read,write,execute", "universe", if_not_exists=True)
    tester = box.schema.space.create(
        "tester", if_not_exists=True,
        format=[{"name": "id", "type": "unsigned"}, {"name": "name", "type": "string"},
                {"name": "value", "type": "any"}])
    tester.create_index("primary", type="TREE", parts=["id"], if_not_exists=True)
    tester.create_index("name", type="TREE", parts=["name"], unique=False, if_not_exists=True)
    hashy = box.schema.space.create(
        "hashy", if_not_exists=True,
        format=[{"name": "key", "type": "string"}, {"name": "value", "type": "any"}])
    hashy.create_index("pk", type="HASH", parts=["key"], if_not_exists=True)

    box.schema.user.create("crud", password="pw", if_not_exists=True)
    box.schema.user.grant("crud", "read,write", "space", "tester", if_not_exists=True)
    box.schema.user.grant("crud", "read,write", "space", "hashy", if_not_exists=True)
    box.schema.user.grant("crud", "execute", "universe", if_not_exists=True)
    box.schema.user.create("nogrants", password="pw", if_not_exists=True)
    box.schema.user.create("boss", password="pw", if_not_exists=True)
    box.schema.user.grant("boss", "super", if_not_exists=True)


def add(a, b):
    return a + b


def tester_names():
    """Every name in `tester`, by the secondary index."""
    return [t[1] for t in box.space.tester.index.name.select()]


def whoami():
    return box.session.user()
