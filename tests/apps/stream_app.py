"""The app of tests/test_streams_txn.py: streams and interactive transactions.

`acc`: {id unsigned, name string, val any}, a TREE primary key and a
non-unique TREE index on name. `log` records when procedures start and end,
so a test can prove a later request of a stream never starts before the
earlier one has finished."""

import asyncio
import time

from styx import box

log = []


def init():
    box.schema.user.create("test", password="secret", if_not_exists=True)
    for user in ("guest", "test"):
        box.schema.user.grant(user, "read,write,execute", "universe", if_not_exists=True)
    s = box.schema.space.create("acc", format=[("id", "unsigned"), ("name", "string"),
                                               ("val", "any")], if_not_exists=True)
    s.create_index("primary", parts=["id"], if_not_exists=True)
    s.create_index("name", parts=["name"], unique=False, if_not_exists=True)


# -- ordering -------------------------------------------------------------------------


async def slow(seconds, tag):
    log.append(("start", tag, time.monotonic()))
    await asyncio.sleep(seconds)
    log.append(("end", tag, time.monotonic()))
    return tag


def fast(tag):
    now = time.monotonic()
    log.append(("start", tag, now))
    log.append(("end", tag, now))
    return tag


def take_log():
    out = [list(e) for e in log]
    log.clear()
    return out


# -- data -----------------------------------------------------------------------------


def reset():
    box.space.acc.truncate()


def all_rows():
    """Everything in acc, as this caller's transaction (if any) sees it."""
    return box.space.acc.select([], iterator="ALL")


def insert(id, name, val=None):
    """Inside a stream's transaction, a transactional insert."""
    return box.space.acc.insert([id, name, val])


def remove(id):
    """A transactional delete (IPROTO DELETE in a stream: see the tests)."""
    return box.space.acc.delete([id])


def rename(id, name):
    return box.space.acc.update([id], [("=", "name", name)])


def in_txn():
    return box.is_in_txn()


def insert_and_push(id, name):
    """Inserts, then pushes what this transaction sees, then returns."""
    box.space.acc.insert([id, name, None])
    box.session.push(len(box.space.acc.select([], iterator="ALL")))
    box.session.push(box.space.acc.get([id]))
    return "pushed"


def begin_no_commit(id, name):
    """box.begin() and a write, and no commit."""
    box.begin()
    box.space.acc.insert([id, name, None])
    return "left open"


async def begin_no_commit_async(id, name):
    box.begin()
    box.space.acc.insert([id, name, None])
    await asyncio.sleep(0.01)
    return "left open"


def begin_commit(id, name):
    """box.begin/box.commit in one procedure: its writes are visible inside
    before commit, and committed when it returns."""
    box.begin()
    box.space.acc.insert([id, name, None])
    seen = box.space.acc.get([id])
    inside = box.is_in_txn()
    box.commit()
    return seen, inside, box.is_in_txn()


def begin_rollback(id, name):
    box.begin()
    box.space.acc.insert([id, name, None])
    box.rollback()
    return box.space.acc.get([id])


def begin_fail(id, name):
    """A procedure that begins, writes, then raises."""
    box.begin()
    box.space.acc.insert([id, name, None])
    raise ValueError("boom")


def commit_only():
    box.commit()
    return "committed"


async def net_stat():
    return await box.stat.net()


async def begin_write_sleep_write_commit(a, b, seconds):
    """One transaction around a yield: both writes commit, or neither."""
    box.begin()
    box.space.acc.insert([a, "before", None])
    await asyncio.sleep(seconds)
    box.space.acc.insert([b, "after", None])
    box.commit()
    return "committed"


async def write_sleep_write(a, b, seconds):
    """Two writes around a yield, in the caller's transaction."""
    box.space.acc.insert([a, "before", None])
    await asyncio.sleep(seconds)
    box.space.acc.insert([b, "after", None])
    return "written"


def begin_with(level):
    """box.begin(txn_isolation=level), then a read in it."""
    box.begin(txn_isolation=level)
    n = box.space.acc.count()
    box.rollback()
    return n
