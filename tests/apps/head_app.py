"""The app of tests/test_reply_head.py, twin of tarantool_server.lua `head`:
guest may do anything; space `bench` [id unsigned, value string] holds
[1, 'value1']; echo(*args) and progress(n), which pushes {step: i} n times."""

from styx import box


def init():
    box.schema.user.grant("guest", "read,write,execute", "universe", if_not_exists=True)
    bench = box.schema.space.create(
        "bench", if_not_exists=True,
        format=[{"name": "id", "type": "unsigned"}, {"name": "value", "type": "string"}])
    bench.create_index("pk", parts=["id"], if_not_exists=True)
    bench.replace([1, "value1"])


def echo(*args):
    return args


def progress(n):
    for i in range(n):
        box.session.push({"step": i})
    return "done"
