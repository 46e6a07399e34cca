"""An app as people write them (tests/test_app_loading.py): it imports from
its own folder, exports what `__all__` names (an imported function too),
has a plain def that blocks, and one that gives box to another thread."""

import asyncio
import time

from helpers import double

from styx import box

__all__ = ["twice", "double", "block", "box_in_thread", "init"]


def init():
    box.schema.user.grant("guest", "super", if_not_exists=True)


def twice(x):
    return double(x)


def not_exported():
    return "hidden"


def block(seconds):
    time.sleep(seconds)
    return "done"


async def box_in_thread():
    def work():
        return box.space._space.count()
    try:
        await asyncio.to_thread(work)
    except RuntimeError as e:
        return str(e)
    return "no error"
