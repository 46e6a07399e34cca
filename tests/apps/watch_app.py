"""The app of the watcher, graceful-shutdown, feature and statistics tests."""

import asyncio

from styx import box


def init():
    box.schema.user.create("test", password="secret", if_not_exists=True)
    box.schema.user.grant("guest", "read,write,execute", "universe", if_not_exists=True)
    box.schema.user.grant("test", "read,write,execute", "universe", if_not_exists=True)
    s = box.schema.space.create("items", format=[("id", "unsigned"), ("name", "string")],
                                if_not_exists=True)
    s.create_index("pk", parts=["id"], if_not_exists=True)
    for i in range(1, 11):
        s.replace([i, f"item{i}"])


def broadcast(key, *value):
    """box.broadcast(key[, value]); one call, one new version."""
    box.broadcast(key, *value)


def broadcast_many(key, values):
    """Several versions of `key` in one TX step, in this order."""
    for v in values:
        box.broadcast(key, v)


def echo(*args):
    return args


async def sleep(seconds, value=None):
    await asyncio.sleep(seconds)
    return value


def return_error(code, reason, type="ClientError"):
    """Returns (does not raise) a box.error: an MP_ERROR value for clients
    that asked for ERROR_EXTENSION, a string for the others."""
    return box.error(code, reason=reason, type=type)


def push_error(code, reason):
    box.session.push(box.error(code, reason=reason))
    return "pushed"


def broadcast_error(key, code, reason):
    box.broadcast(key, {"err": box.error(code, reason=reason)})


def return_error_and_value(code, reason):
    return [box.error(code, reason=reason), 7]


async def net_stat():
    return await box.stat.net()


async def net_stat_threads():
    return await box.stat.net_thread()


async def net_stat_both():
    """box.stat.net() and box.stat.net.thread(), one after the other in one
    request, so nothing of this request moves between them."""
    return await box.stat.net(), await box.stat.net_thread()


def broadcast_unencodable(key):
    """A value MessagePack cannot carry: box.broadcast must refuse it and
    leave the key as it was (Tarantool encodes the value first)."""
    box.broadcast(key, object())
