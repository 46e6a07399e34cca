"""The app the tests serve: one procedure per behaviour under test."""

import asyncio

from styx import box

calls_in_flight = 0
max_in_flight = 0


def init():
    box.schema.user.create("test", password="secret", if_not_exists=True)
    # As in Tarantool, calling global functions needs execute on the universe.
    box.schema.user.grant("guest", "execute", "universe", if_not_exists=True)
    box.schema.user.grant("test", "execute", "universe", if_not_exists=True)


def echo(*args):
    return args


def one(value):
    return value


def nothing():
    return None


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


async def slow_counted(seconds):
    """Sleeps, and records how many of these are running at once."""
    global calls_in_flight, max_in_flight
    calls_in_flight += 1
    max_in_flight = max(max_in_flight, calls_in_flight)
    try:
        await asyncio.sleep(seconds)
    finally:
        calls_in_flight -= 1
    return max_in_flight


def reset_counted():
    global max_in_flight
    max_in_flight = 0


async def push_then_sleep(n, seconds):
    for i in range(n):
        box.session.push(i)
        await asyncio.sleep(seconds)
    return n


def fail(message):
    raise ValueError(message)


def fail_box(code, message):
    raise box.error(code, reason=message)


def big(n):
    return "x" * n


def set_net_msg_max(n):
    box.cfg(net_msg_max=n)


async def net_stat():
    return await box.stat.net()


async def net_stat_threads():
    return await box.stat.net_thread()
