"""The app the memtx_memory tests serve (tests/lua/tarantool_server.lua
`memtx` is its Tarantool twin): one space `t` [id unsigned, tag string,
data any] with a TREE primary `pk` and a non-unique TREE `tag`, open to guest."""

from styx import box


def init():
    box.schema.user.grant("guest", "read,write,execute", "universe", if_not_exists=True)
    t = box.schema.space.create("t", if_not_exists=True,
                                format=[{"name": "id", "type": "unsigned"},
                                        {"name": "tag", "type": "string"},
                                        {"name": "data", "type": "any"}])
    t.create_index("pk", if_not_exists=True)
    t.create_index("tag", parts=["tag"], unique=False, if_not_exists=True)
