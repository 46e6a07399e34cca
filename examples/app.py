"""The app `make serve` serves, and the README shows: every public function
here is callable over IPROTO."""

import asyncio

from styx import box


def init():                       # optional: runs once, before listening
    box.schema.user.create("test", password="secret", if_not_exists=True)
    box.schema.user.grant("test", "read,write,execute", "universe", if_not_exists=True)
    s = box.schema.space.create("tester", format=[("id", "unsigned"), ("name", "string")],
                                if_not_exists=True)
    s.create_index("primary", parts=["id"], if_not_exists=True)
    s.create_index("name", parts=["name"], unique=False, if_not_exists=True)

def echo(*args):                  # Lua's `function echo(...) return ... end`
    return args                   # a tuple is several return values

def progress(n):
    for i in range(n):
        box.session.push({"step": i})   # IPROTO_CHUNK, before the reply
    return "done"

async def slow(seconds):          # runs in a fiber; other requests go on
    await asyncio.sleep(seconds)
    return seconds
