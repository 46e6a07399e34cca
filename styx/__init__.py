"""Styx: Tarantool's IPROTO server architecture, in Python.

    from styx import box          # inside an app file: the current server's box
    from styx import Server       # embed a server (tests, tools)
    async with styx.serve(app):   # or run one in an asyncio program's loop
"""

from .protocol.errors import BoxError
from .server import Config, Server, serve
from .tx.api import BoxProxy

box = BoxProxy()

__all__ = ["box", "BoxError", "Config", "Server", "serve"]
__version__ = "0.1.0"
