"""Accept connections and hand each to the least loaded iproto thread.

Tarantool lets every iproto thread accept on the same listening socket, and
the kernel decides who wins: in practice very unevenly (issue 12258: 400
connections over 8 threads as 1/0/2/3/0/20/47/327). Here one loop accepts
(net thread 0's, or TX's when `iproto_threads = 0`) and sends each socket,
over cbus, to the thread with the fewest connections, round robin on ties.
A connection then stays on its thread for its whole life, as in Tarantool.

When accept fails for lack of a resource (descriptors, memory), retrying at
once only spins: the pending connection stays in the backlog and the loop
wakes again at once. The listener pauses instead, doubling the pause up to a
second, and logs once per `LOG_INTERVAL` with the count of failures since;
connections already open go on being served.
"""

from __future__ import annotations

import errno
import logging
import socket
import time
from collections.abc import Sequence
from typing import Any

from .. import cbus
from ..iproto_msg import ServiceMsg
from .thread import NetThread, setup_socket

log = logging.getLogger("styx.net")

__all__ = ["Listener"]

ACCEPT_BATCH = 64  # accepts per wake-up, so one loop iteration stays short
# accept errors that mean "not now": pause and retry
RESOURCE_ERRORS = frozenset((errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM))
PAUSE_MIN, PAUSE_MAX = 0.01, 1.0
LOG_INTERVAL = 10.0


class Listener:
    def __init__(self, sock: socket.socket, loop: Any, threads: Sequence[NetThread],
                 pipes: Sequence[cbus.Pipe]) -> None:
        self.sock = sock
        self.loop = loop
        self.threads = threads
        self.pipes = pipes  # this loop -> each thread's endpoint
        self._rr = 0
        self.accepted = 0
        self.active = False
        self._pause = PAUSE_MIN
        self._paused: Any = None  # the timer that resumes accepting
        self._failures = 0  # accept failures not yet logged
        self._logged_at = -LOG_INTERVAL

    def start(self) -> None:
        """Runs in the listener's loop."""
        self.sock.setblocking(False)
        self.loop.add_reader(self.sock.fileno(), self._on_accept)
        self.active = True

    def stop(self) -> None:
        """Runs in the listener's loop: stop accepting, close the socket."""
        if self.active:
            self.active = False
            if self._paused is not None:
                self._paused.cancel()
            else:
                self.loop.remove_reader(self.sock.fileno())
            self.sock.close()

    def _pick(self) -> int:
        n = len(self.threads)
        loads = [t.assigned for t in self.threads]
        least = min(loads)
        for k in range(n):
            i = (self._rr + k) % n
            if loads[i] == least:
                self._rr = i + 1
                return i
        return 0

    def _on_accept(self) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                sock, peer = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                break
            except OSError as e:
                self._accept_failed(e)
                return
            setup_socket(sock)
            i = self._pick()
            thread = self.threads[i]
            thread.assign()
            self.accepted += 1
            msg = ServiceMsg(thread.tx.connect)
            msg.sock, msg.peer, msg.net = sock, peer, i
            self.pipes[i].push(msg)
        self._pause = PAUSE_MIN

    def _accept_failed(self, e: OSError) -> None:
        self._failures += 1
        now = time.monotonic()
        pause = e.errno in RESOURCE_ERRORS
        if now - self._logged_at >= LOG_INTERVAL:
            more = f" ({self._failures - 1} more since the last report)" if self._failures > 1 else ""
            log.warning("accept failed: %s%s%s", e, more,
                        f"; pausing accepts for {self._pause:g} s" if pause else "")
            self._logged_at = now
            self._failures = 0
        if pause:
            self.loop.remove_reader(self.sock.fileno())
            self._paused = self.loop.call_later(self._pause, self._resume)
            self._pause = min(self._pause * 2, PAUSE_MAX)

    def _resume(self) -> None:
        self._paused = None
        if self.active:
            self.loop.add_reader(self.sock.fileno(), self._on_accept)
