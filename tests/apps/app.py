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
    # Tuples with datetimes (tests/test_proc_values.py).
    box.schema.space.create("dts", if_not_exists=True).create_index("pk", if_not_exists=True)
    box.schema.user.grant("guest", "read,write", "space", "dts", if_not_exists=True)


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


def many(n, size):
    return ["x" * size] * n


def set_net_msg_max(n):
    box.cfg(net_msg_max=n)


async def net_stat():
    return await box.stat.net()


async def net_stat_threads():
    return await box.stat.net_thread()


# -- values at the edge of MessagePack (tests/test_proc_values.py) --------------


def out_of_range(which):
    # Python ints have no bound; MessagePack's stop at [-2**63, 2**64).
    return {"big": 2**70, "neg": -2**64, "nested": [1, {"a": 2**64}], "max": 2**64 - 1,
            "min": -2**63}[which]


def store_out_of_range():
    return box.space.dts.insert([1, 2**70])


def a_datetime(which):
    import datetime as dt
    return {"naive": dt.datetime(2024, 2, 29, 23, 59, 58, 123456),
            "utc": dt.datetime(2024, 2, 29, 23, 59, 58, tzinfo=dt.UTC),
            "plus3": dt.datetime(2024, 3, 1, 2, 59, 58, 500000,
                                 tzinfo=dt.timezone(dt.timedelta(hours=3))),
            "minus0530": dt.datetime(1969, 12, 31, 18, 30, tzinfo=dt.timezone(-dt.timedelta(hours=5, minutes=30))),
            "seconds_tz": dt.datetime(2024, 1, 1, tzinfo=dt.timezone(dt.timedelta(seconds=30)))}[which]


def describe(value):
    """What a procedure got: its type's name, ISO form, UTC offset in minutes."""
    off = value.utcoffset()
    return [type(value).__name__, value.isoformat(),
            None if off is None else off.total_seconds() / 60]
