"""The river, visible: `--river-listen HOST:PORT` serves a live page of the
server's own architecture (issue 12).

What: a web page that shows TX ("the world of the living"), each iproto
thread ("the world of the dead"), the cpipes between them with boats
(cbus messages) crossing, the Kharon's trips, and for the busiest
connections (or one the viewer picks) their two ibufs and two obufs with
`wpos` and `wend`; beside it, the counts as text. `styx river record`
(record.py) drives a scripted run and writes the same picture as an
animated SVG, which the docs show where the seed wanted its pictures.

Why so: the figures are owned by their threads (cbus.py, net/thread.py,
tx/thread.py), so the river asks each thread for them by cbus call, as
box.stat.net and /metrics do, on pipes of its own (routes.wire_river): its
questions never ride the pipes it draws. It samples; it never traces a
message. What the request path pays, watched or not, is the counters that
were already there plus one addition per pipe flush (`Pipe.messages`) and
one per batch read (`Connection.requests`). The page's HTTP server
(aiohttp, server.py) runs in a thread of its own with its own event loop,
off TX's loop; it samples only while a viewer is connected, `period`
seconds apart, and each sample is one small cbus call to each thread.

Plan: `River` (server.py) owns the thread, the HTTP server and the sampler;
`Sampler` (here) asks the threads; page.html draws, computing rates from
consecutive samples; record.py draws the same layout in SVG.

Risks: each sample costs every thread one message and the GIL for the
time of its answer (measured in bench/river.py: at most 5% with a viewer);
a thread that hangs delays samples, not requests (calls time out).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import cbus

__all__ = ["RiverLink", "Sampler", "Tap"]


@dataclass(eq=False)
class Tap:
    """The river's line to one thread: the pipe there, the pipe back, and
    the function that answers there."""

    to: cbus.Pipe
    back: cbus.Pipe
    sample: Callable[..., dict[str, Any]]


@dataclass(eq=False)
class RiverLink:
    """Made by routes.wire_river: a tap on TX and one on each iproto thread."""

    endpoint: cbus.Endpoint  # the river's own, in its loop
    tx: Tap
    nets: list[Tap]
    iproto_threads: int  # as configured: 0 means net0 runs in TX's loop


class Sampler:
    """One sample: every thread's figures, asked in the river's loop."""

    def __init__(self, link: RiverLink, top: int = 4, timeout: float = 2.0) -> None:
        self.link = link
        self.top = top
        self.timeout = timeout
        self.picked: frozenset[tuple[int, int]] = frozenset()  # (thread, connection id) viewers chose

    async def sample(self) -> dict[str, Any]:
        link = self.link
        tx = await cbus.call(link.tx.to, link.tx.back, link.tx.sample, timeout=self.timeout)
        nets = []
        for i, tap in enumerate(link.nets):
            picked = frozenset(cid for t, cid in self.picked if t == i)
            nets.append(await cbus.call(tap.to, tap.back, tap.sample, self.top, picked, timeout=self.timeout))
        return {"t": time.monotonic(), "iproto_threads": link.iproto_threads, "tx": tx, "nets": nets}
