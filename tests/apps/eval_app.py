"""The app of tests/test_eval.py: what tests/lua/eval_setup.lua makes in Tarantool."""

from styx import box


def init():
    box.schema.user.grant("guest", "read,write,execute", "universe", if_not_exists=True)
    box.schema.user.create("limited", password="pw", if_not_exists=True)
    s = box.schema.space.create("t", format=[("id", "unsigned"), ("name", "string")], if_not_exists=True)
    s.create_index("pk", parts=[1, "unsigned"], if_not_exists=True)
    # tests/test_lua_modules.py: any fields, for uuid and decimal values.
    x = box.schema.space.create("ext", if_not_exists=True)
    x.create_index("pk", parts=[1, "unsigned"], if_not_exists=True)
