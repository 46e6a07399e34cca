"""Watchers: `box.broadcast(key, value)` and IPROTO_WATCH, as Tarantool 2.10+.

A key has a value (or none yet) and a version that grows with every
broadcast. A session watching a key gets an IPROTO_EVENT with the current
value at once, and then is "not idle": it gets nothing more until it
acknowledges by sending WATCH for the key again. Then, if the value changed
meanwhile, it gets one EVENT with the newest value: intermediate values are
coalesced. EVENT carries the sync of the last WATCH, has no schema version,
and has no EVENT_DATA for a key never set. WATCH and UNWATCH get no reply.

Events are written into the session's obuf and announced by the Kharon,
like pushes. Everything here runs in TX.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..protocol import constants as C

__all__ = ["Watchers", "Watcher"]


class Watcher:
    """One session watching one key."""

    __slots__ = ("session", "key", "sync", "acked", "version_sent")

    def __init__(self, session: Any, key: str, sync: int) -> None:
        self.session = session
        self.key = key
        self.sync = sync
        self.acked = False
        self.version_sent = -1


class Watchers:
    """Keys, their values, and who watches them."""

    def __init__(self, packb: Callable[[Any], bytes], send: Callable[[Any, bytes], None]) -> None:
        self._packb = packb
        self._send = send  # (session, packet) -> into the obuf, then the Kharon
        self.values: dict[str, tuple[int, Any]] = {}  # key -> (version, value)
        self.by_key: dict[str, set[Watcher]] = {}

    def get(self, key: str) -> tuple[int, Any] | None:
        return self.values.get(key)

    def broadcast(self, key: str, value: Any) -> None:
        self._packb(value)  # a value that cannot be encoded is refused, nothing changes
        version = self.values[key][0] + 1 if key in self.values else 1
        self.values[key] = (version, value)
        for w in list(self.by_key.get(key, ())):
            if w.acked:
                self._notify(w)

    def watch(self, session: Any, key: str, sync: int) -> None:
        """WATCH: subscribe (an event goes at once), or acknowledge."""
        watchers = session.watchers
        w = watchers.get(key)
        if w is None:
            w = watchers[key] = Watcher(session, key, sync)
            self.by_key.setdefault(key, set()).add(w)
            self._notify(w)
            return
        w.sync = sync
        w.acked = True
        current = self.values.get(key)
        if current is not None and current[0] != w.version_sent:
            self._notify(w)

    def unwatch(self, session: Any, key: str) -> None:
        w = session.watchers.pop(key, None)
        if w is not None:
            self._forget(w)

    def drop_session(self, session: Any) -> None:
        for w in session.watchers.values():
            self._forget(w)
        session.watchers.clear()

    def watching(self, key: str) -> int:
        return len(self.by_key.get(key, ()))

    def _forget(self, w: Watcher) -> None:
        ws = self.by_key.get(w.key)
        if ws is not None:
            ws.discard(w)
            if not ws:
                del self.by_key[w.key]

    def _notify(self, w: Watcher) -> None:
        current = self.values.get(w.key)
        body: dict[int, Any] = {C.EVENT_KEY: w.key}
        if current is not None:
            body[C.EVENT_DATA] = current[1]
            w.version_sent = current[0]
        else:
            w.version_sent = 0
        w.acked = False
        packb = w.session.packb
        payload = packb({C.REQUEST_TYPE: C.EVENT, C.SYNC: w.sync}) + packb(body)
        self._send(w.session, b"\xce" + len(payload).to_bytes(4, "big") + payload)
