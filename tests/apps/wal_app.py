"""The app of tests/test_wal_server.py: a space, a temporary one, and
procedures that write in every way a procedure can."""

import asyncio

from styx import box


def init():
    box.schema.user.grant("guest", "super", if_not_exists=True)
    kv = box.schema.space.create("kv", id=512, if_not_exists=True)
    kv.create_index("pk", parts=[1, "unsigned"], if_not_exists=True)
    tmp = box.schema.space.create("tmp", id=513, temporary=True, if_not_exists=True)
    tmp.create_index("pk", parts=[1, "unsigned"], if_not_exists=True)


def put(k, v):
    return box.space.kv.replace([k, v])


async def put_later(k, v, seconds=0.01):
    await asyncio.sleep(seconds)
    return box.space.kv.replace([k, v])


def put_then_fail(k):
    box.space.kv.replace([k, "written"])
    raise RuntimeError("after the write")


def put_two(a, b):
    box.begin()
    box.space.kv.replace([a, "txn"])
    box.space.kv.replace([b, "txn"])
    box.commit()
    return True


async def snap():
    return await box.snapshot()


def fill(n, start=0):
    kv = box.space.kv
    for k in range(start, start + n):
        kv.replace([k, "v"])
    return n


def cfg(options):
    box.cfg(**options)
    return True
