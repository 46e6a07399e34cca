"""An example app: every public function here is callable over IPROTO."""

import asyncio

from styx import box


def init():
    box.schema.user.create("test", password="secret", if_not_exists=True)
    # As in Tarantool, calling global functions needs execute on the universe.
    box.schema.user.grant("guest", "execute", "universe", if_not_exists=True)
    box.schema.user.grant("test", "execute", "universe", if_not_exists=True)


def echo(*args):
    return args


def sum(a, b):
    return a + b


def whoami():
    return box.session.user(), box.session.id()


def progress(n):
    for i in range(n):
        box.session.push({"step": i})
    return "done"


async def sleep(seconds, value=None):
    await asyncio.sleep(seconds)
    return value


def fail(message):
    raise ValueError(message)
