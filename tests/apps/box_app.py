"""The app of tests/test_box_differential.py: the schema tests/lua/tarantool_server.lua
`box` creates in Tarantool 2.6 (same names, same ids, same formats and indexes;
keep the two in step)."""

from styx import box

SPACES = ("tree", "hash", "nullable", "scalar", "fmt", "fixed", "multi")


def init():
    box.schema.user.grant("guest", "read,write,execute", "universe", if_not_exists=True)
    # A user with only the default grants: what the _v views filter.
    box.schema.user.create("limited", password="secret", if_not_exists=True)
    # DDL in the generated tests (tests/test_box_generated.py) runs as boss.
    box.schema.user.create("boss", password="pw", if_not_exists=True)
    box.schema.user.grant("boss", "super", if_not_exists=True)

    # TREE primary [unsigned], non-unique TREE [string], unique multipart [integer, string].
    s = box.schema.space.create("tree", id=512, if_not_exists=True, format=[
        {"name": "id", "type": "unsigned"},
        {"name": "s", "type": "string"},
        {"name": "n", "type": "integer"},
    ])
    s.create_index("pk", type="TREE", parts=[[1, "unsigned"]])
    s.create_index("by_s", type="TREE", parts=[[2, "string"]], unique=False)
    s.create_index("by_ns", type="TREE", parts=[[3, "integer"], [2, "string"]], unique=True)

    # HASH primary, unique HASH multipart secondary, non-unique TREE secondary.
    s = box.schema.space.create("hash", id=513, if_not_exists=True)
    s.create_index("pk", type="HASH", parts=[[1, "unsigned"]])
    s.create_index("h2", type="HASH", parts=[[2, "string"], [3, "integer"]], unique=True)
    s.create_index("t3", type="TREE", parts=[[3, "integer"]], unique=False)

    # Nullable secondary parts, non-unique and unique.
    s = box.schema.space.create("nullable", id=514, if_not_exists=True)
    s.create_index("pk", type="TREE", parts=[[1, "unsigned"]])
    s.create_index("sec", type="TREE", parts=[{"field": 2, "type": "integer", "is_nullable": True}],
                   unique=False)
    s.create_index("uniq", type="TREE", parts=[{"field": 3, "type": "string", "is_nullable": True}],
                   unique=True)

    # A scalar primary key.
    s = box.schema.space.create("scalar", id=515, if_not_exists=True)
    s.create_index("pk", type="TREE", parts=[[1, "scalar"]])

    # A format with names (UPDATE by field name), nullable fields at the end.
    s = box.schema.space.create("fmt", id=516, if_not_exists=True, format=[
        {"name": "id", "type": "unsigned"},
        {"name": "cnt", "type": "integer"},
        {"name": "price", "type": "number"},
        {"name": "name", "type": "string", "is_nullable": True},
        {"name": "bits", "type": "unsigned", "is_nullable": True},
        {"name": "extra", "type": "any", "is_nullable": True},
    ])
    s.create_index("pk", type="TREE", parts=["id"])
    s.create_index("by_name", type="TREE",
                   parts=[{"field": 4, "type": "string", "is_nullable": True}], unique=False)

    # field_count = 3.
    s = box.schema.space.create("fixed", id=517, if_not_exists=True, field_count=3)
    s.create_index("pk", type="TREE", parts=[[1, "unsigned"]])

    # A multipart TREE primary key [string, unsigned].
    s = box.schema.space.create("multi", id=518, if_not_exists=True)
    s.create_index("pk", type="TREE", parts=[[1, "string"], [2, "unsigned"]])


def reset():
    """Empties every space above; called between generated sequences."""
    for name in SPACES:
        box.space[name].truncate()
