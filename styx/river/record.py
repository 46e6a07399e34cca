"""`styx river record OUT.svg`: the seed's pictures, drawn from a real run.

What: start a real server (one iproto thread, so the pipes cross threads),
drive a short scripted scenario against it over raw sockets, sample the
river all along, and write an animated SVG: one frame per sample that
differs from the one before, each showing the real counts, the boats that
crossed since the frame before, and the buffers of the connection at work
(its two ibufs, its two obufs with `wpos` and `wend`). The phases:

1. one request: a CALL that sleeps a little, so it is seen in flight;
2. a pipelined burst: 200 CALLs in one write (the boats aggregate);
3. ibuf rotation: 40 sleeping CALLs pipelined with a small readahead: the
   first ibuf fills with requests in flight, input goes to the other, then
   stops while both are busy, and resumes as the first is freed;
4. a slow reader: big replies to a client that does not read, then reads a
   little at a time: `wend` runs ahead of `wpos`, the obufs fill and
   rotate, input stops over `net_obuf_max`;
5. the Kharon: a procedure pushes chunks (IPROTO_CHUNK) to a slow reader;
   each push sends the Kharon with "new data up to here", and he comes back
   with "written up to here".

With `parts`, it also writes one file per seed picture (`-kharon`, `-ibuf`,
`-obuf`): the phases that show it.

Why SVG with SMIL: no image library, a text file git diffs, and browsers
(and GitHub's README) play it. Frames are shown 0.35 s each whatever their
real spacing; each says its real time.

Risks: sampling every 30 ms on a loaded machine can miss a short state (the
frames show what was sampled, never an interpolation); the scenario's
timings (sleeps of 0.2-0.4 s) leave room for that.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import msgpack

__all__ = ["Frame", "record", "render", "run_scenario"]

PERIOD = 0.03  # seconds between samples
FRAME = 0.35  # seconds each frame is shown
READAHEAD = 256  # small, so that a burst of 40 requests rotates the ibufs
OBUF_MAX = 128 << 10  # net_obuf_max: the slow reader hits it
CAPTIONS = {
    "connecting": "the server is up, nothing is asked yet",
    "one request": "one CALL that sleeps 0.25 s: read, carried to TX, run in a fiber, its reply carried back",
    "a pipelined burst": "200 CALLs in one write: the boats sail together, the counts tell the story",
    "ibuf rotation": "30 CALLs of one stream, readahead 256: the requests waiting hold their input, "
                     "so input goes to the other ibuf, then stops",
    "a slow reader": "24 replies of 24 KiB to a client that waits, then reads 32 KiB at a time: "
                     "wpos trails wend, the obufs fill and take turns",
    "the Kharon": "6 pushes of 60 KB to a slow reader: each sends the Kharon with the new end of output; "
                  "he comes back with what was written",
    "done": "",
}
PARTS = {"kharon": ("the Kharon",), "ibuf": ("ibuf rotation",), "obuf": ("a slow reader",)}


@dataclass
class Frame:
    t: float
    phase: str
    sample: dict[str, Any]
    prev: dict[str, Any] | None = field(default=None, repr=False)


# -- the scenario --------------------------------------------------------------


async def _slow(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "done"


def _echo(x: Any) -> Any:
    return x


def _big(n: int) -> str:
    return "x" * n


async def _pushes(n: int, size: int, seconds: float) -> int:
    from .. import box  # the proxy app code uses; only inside a request

    for i in range(n):
        box.session.push(f"{i}:" + "k" * size)
        await asyncio.sleep(seconds)
    return n


def _init() -> None:
    from .. import box

    box.schema.user.grant("guest", "execute", "universe", if_not_exists=True)  # the client does not log in


APP: dict[str, Callable[..., Any]] = {"init": _init, "slow": _slow, "echo": _echo, "big": _big, "pushes": _pushes}


class _Client:
    """A raw IPROTO client: CALLs written by hand, replies read or not."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(path)
        self.sock.settimeout(30)
        self.buf = b""
        self._read(128)  # the greeting
        self.buf = self.buf[128:]
        self.sync = 0

    def call_packet(self, name: str, *args: Any, stream: int = 0) -> bytes:
        self.sync += 1
        header = {0x00: 0x0A, 0x01: self.sync} | ({0x0A: stream} if stream else {})
        body = msgpack.packb(header) + msgpack.packb({0x22: name, 0x21: list(args)})
        return b"\xce" + struct.pack(">I", len(body)) + body

    def send(self, *packets: bytes) -> None:
        self.sock.sendall(b"".join(packets))

    def _read(self, n: int) -> None:
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            self.buf += chunk

    def replies(self, n: int) -> list[dict[int, Any]]:
        """Read `n` replies (pushes included), return their headers."""
        out = []
        for _ in range(n):
            self._read(5)
            (size,) = struct.unpack(">I", self.buf[1:5])
            self._read(5 + size)
            unpacker = msgpack.Unpacker(strict_map_key=False)
            unpacker.feed(self.buf[5:5 + size])
            header = next(unpacker)
            if header[0x00] & 0x8000:  # an error: the scenario is broken, say so
                raise RuntimeError(f"the server answered an error: {next(unpacker)}")
            out.append(header)
            self.buf = self.buf[5 + size:]
        return out

    def read_slowly(self, total: int, chunk: int, pause: float) -> None:
        """Take `total` bytes off the socket, `chunk` at a time."""
        got = 0
        while got < total:
            data = self.sock.recv(min(chunk, total - got))
            if not data:
                raise ConnectionError("the server closed the connection")
            got += len(data)
            time.sleep(pause)

    def close(self) -> None:
        self.sock.close()


def _reply_size(n: int, sync: int) -> int:
    body = msgpack.packb({0x30: [_big(n)]})
    return 5 + len(msgpack.packb({0x00: 0, 0x01: sync, 0x05: 0})) + len(body)


@contextmanager
def _sampling(river: Any, frames: list[Frame], phase: list[str]) -> Iterator[None]:
    """Sample every PERIOD seconds in a thread of its own until the block ends."""
    stop = threading.Event()
    t0 = time.monotonic()

    def run() -> None:
        while not stop.is_set():
            frames.append(Frame(time.monotonic() - t0, phase[0], river.sample_now()))
            stop.wait(PERIOD)

    thread = threading.Thread(target=run, name="river-record", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)
        frames.append(Frame(time.monotonic() - t0, phase[0], river.sample_now()))


def run_scenario(iproto_threads: int = 1) -> list[Frame]:
    """Run the scenario against a real server; every sample taken.

    The clients come over a unix socket: its kernel buffer is fixed (about
    200 KB), where loopback TCP's grows to megabytes and would swallow the
    slow reader's backlog before the obufs show it."""
    from ..server import Config, Server

    with tempfile.TemporaryDirectory(prefix="styx-river-") as tmp:
        path = os.path.join(tmp, "styx.sock")
        server = Server(Config(listen="unix/:" + path, app=APP, iproto_threads=iproto_threads,
                               river_listen="127.0.0.1:0", readahead=READAHEAD, net_obuf_max=OBUF_MAX)).start()
        try:
            return _scenario(server.river, path)
        finally:
            server.stop()


def _scenario(river: Any, path: str) -> list[Frame]:
    frames: list[Frame] = []
    phase = ["connecting"]
    with _sampling(river, frames, phase):
        time.sleep(0.1)
        phase[0] = "one request"
        c = _Client(path)
        c.send(c.call_packet("slow", 0.25))
        c.replies(1)
        time.sleep(0.15)
        c.close()

        phase[0] = "a pipelined burst"
        c = _Client(path)
        c.send(*(c.call_packet("echo", i) for i in range(200)))
        c.replies(200)
        time.sleep(0.15)
        c.close()

        # One stream: its requests run one after another, the others wait
        # in net holding their input, so the ibufs fill, rotate and stop.
        phase[0] = "ibuf rotation"
        c = _Client(path)
        c.send(*(c.call_packet("slow", 0.04, stream=1) for _ in range(30)))
        c.replies(30)
        time.sleep(0.15)
        c.close()

        phase[0] = "a slow reader"
        c = _Client(path)
        n, size = 24, 24 << 10
        c.send(*(c.call_packet("big", size) for _ in range(n)))
        time.sleep(0.4)  # nobody reads: output piles up
        c.read_slowly(sum(_reply_size(size, s) for s in range(1, n + 1)), 16 << 10, 0.03)
        time.sleep(0.15)
        c.close()

        phase[0] = "the Kharon"
        c = _Client(path)
        c.send(c.call_packet("pushes", 6, 60000, 0.05))
        time.sleep(0.4)  # the pushes wait in the obufs for the reader
        c.read_slowly(6 * 60000, 32 << 10, 0.04)
        time.sleep(0.15)
        c.close()
        phase[0] = "done"
        time.sleep(0.1)
    return frames


_CHURN = ("wakeups", "delivered")  # the sampler's own calls move these every time


def _key(s: dict[str, Any]) -> Any:
    """What a frame shows, less the time and the sampler's own traces:
    equal keys make one frame."""
    return (repr({k: v for k, v in s["tx"].items() if k not in _CHURN}),
            repr([{k: v for k, v in n.items() if k not in _CHURN} for n in s["nets"]]))


def distinct(frames: list[Frame]) -> list[Frame]:
    """Drop samples that show nothing new; link each frame to the one before."""
    out: list[Frame] = []
    for f in frames:
        if out and (_key(out[-1].sample) == _key(f.sample) and out[-1].phase == f.phase):
            continue
        f.prev = out[-1].sample if out else None
        out.append(f)
    return out


# -- the picture ------------------------------------------------------------------

W, H = 900, 430
X_TX, W_BOX, X_NET = 20, 200, 680
LANE_DOWN, LANE_UP = 110, 190


def _t(x: float, y: float, s: str, size: int = 12, **attrs: Any) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{v}"' for k, v in attrs.items())
    return f'<text x="{x:.0f}" y="{y:.0f}" font-size="{size}"{extra}>{escape(s)}</text>'


def _kib(n: int) -> str:
    return f"{n / 1024:.1f} KiB" if n >= 1024 else f"{n} B"


def _background(threads: int) -> str:
    net_title = "net0, in TX's own loop" if threads == 0 else "net0"
    return "".join([
        f'<rect width="{W}" height="{H}" fill="#fbfaf6"/>',
        f'<rect x="{X_TX + W_BOX}" y="54" width="{X_NET - X_TX - W_BOX}" height="186" fill="#cfe3f2"/>',
        _t(W / 2, 68, "the river: cbus pipes", 13, text_anchor="middle", fill="#246"),
        f'<rect x="{X_TX}" y="54" width="{W_BOX}" height="186" rx="8" fill="#fff7e0" stroke="#a80"/>',
        _t(X_TX + 10, 74, "TX", 14, font_weight="bold"),
        _t(X_TX + 10, 88, "the world of the living", 11, fill="#555"),
        f'<rect x="{X_NET}" y="54" width="{W_BOX}" height="186" rx="8" fill="#e8e4f4" stroke="#546"/>',
        _t(X_NET + 10, 74, net_title, 14, font_weight="bold"),
        _t(X_NET + 10, 88, "the world of the dead", 11, fill="#555"),
        *(f'<line x1="{X_TX + W_BOX}" y1="{y}" x2="{X_NET}" y2="{y}" stroke="#7aa" stroke-dasharray="4 4"/>'
          for y in (LANE_DOWN, LANE_UP)),
        _t(W / 2, LANE_DOWN - 14, "tx → net0: replies, Kharon with \u201cnew data up to here\u201d", 10,
           text_anchor="middle", fill="#357"),
        _t(W / 2, LANE_UP - 14, "net0 → tx: requests, Kharon with \u201cwritten up to here\u201d", 10,
           text_anchor="middle", fill="#357"),
        _t(20, 272, "the connection at work", 12, font_weight="bold"),
    ])


def _boats(y: int, to_right: bool, count: int, kharon: int) -> str:
    """The messages that crossed this lane since the frame before: up to six
    one by one, more as one boat with their number; the Kharon in gold."""
    out = []
    x0, x1 = X_TX + W_BOX + 30, X_NET - 30
    items: list[tuple[str, str]] = [("#d9a400", "K")] * min(kharon, 3)
    if count > 6:
        items.append(("#5a3d1e", f"×{count}"))
    else:
        items += [("#5a3d1e", "")] * max(0, count)
    n = len(items)
    for i, (color, label) in enumerate(items):
        f = (i + 1) / (n + 1)
        x = x0 + (x1 - x0) * (f if to_right else 1 - f)
        w = 40 if label.startswith("×") else 18
        out.append(f'<g transform="translate({x:.0f},{y})"><path d="M{-w / 2} -7 L{w / 2} -7 L{w / 2 - 5} 7 '
                   f'L{-w / 2 + 5} 7 Z" fill="{color}"/>'
                   + (_t(0, 4, label, 9, text_anchor="middle", fill="#fff") if label else "") + "</g>")
        arrow = "→" if to_right else "←"
        out.append(_t(x, y + 20, arrow, 10, text_anchor="middle", fill="#357"))
    return "".join(out)


def _conn(c: dict[str, Any] | None) -> str:
    if c is None:
        return _t(20, 296, "no connection now", 12, fill="#777")
    out = []
    stops = [why for bit, why in ((1, "net_msg_max"), (2, "both ibufs busy"), (4, "output over net_obuf_max"),
                                  (16, "requests sent back"), (32, "end of input")) if c["stopped"] & bit]
    out.append(_t(20, 292, f"#{c['id']}: {c['requests']} requests read, {c['kharon']} Kharon trips"
                  + (f"; input stopped: {', '.join(stops)}" if stops else ""), 12,
                  fill="#b00" if stops else "#222"))
    cap_max = max(1, c["ibuf"][0][0], c["ibuf"][1][0])
    for k in range(2):
        cap, rpos, wpos, inflight = c["ibuf"][k]
        y, w = 304 + k * 24, 300
        cur = c["p_ibuf"] == k
        out.append(_t(20, y + 12, ("▶ " if cur else "") + f"ibuf{k}", 11, font_weight="bold" if cur else "normal"))
        out.append(f'<rect x="80" y="{y}" width="{w * cap / cap_max:.0f}" height="16" fill="#eee" stroke="#999"/>'
                   f'<rect x="80" y="{y}" width="{w * rpos / cap_max:.0f}" height="16" fill="#ccc"/>'
                   f'<rect x="{80 + w * rpos / cap_max:.0f}" y="{y}" width="{w * (wpos - rpos) / cap_max:.0f}" '
                   f'height="16" fill="{"#4a7fc0" if inflight else "#9bc"}"/>')
        out.append(_t(390, y + 12, f"{_kib(wpos - rpos)} of {_kib(cap)}, {inflight} requests in flight"
                      if cap else "no memory (given back)", 10))
    used_max = max(1, *c["obuf"])
    for k in range(2):
        used, y, w = c["obuf"][k], 360 + k * 32, 300
        cur = c["cur_obuf"] == k
        out.append(_t(20, y + 12, ("▶ " if cur else "") + f"obuf{k}", 11, font_weight="bold" if cur else "normal"))
        out.append(f'<rect x="80" y="{y}" width="{w}" height="16" fill="#f4f4f4" stroke="#999"/>'
                   f'<rect x="80" y="{y}" width="{w * used / used_max:.0f}" height="16" fill="#c0904a"/>')
        for pos, color, name, dy in ((c["wend"], "#d60", "wend", -3), (c["wpos"], "#080", "wpos", 27)):
            if pos[0] != k:
                continue
            x = 80 + w * min(pos[1], used_max) / used_max
            out.append(f'<line x1="{x:.0f}" y1="{y - 3}" x2="{x:.0f}" y2="{y + 19}" stroke="{color}" '
                       f'stroke-width="2"/>' + _t(x + 2, y + dy, name, 9, fill=color))
        out.append(_t(390, y + 12, f"{_kib(used)}" + (", TX writes here" if cur else ""), 10))
    wo, wu = c["wpos"]
    eo, eu = c["wend"]
    out.append(_t(600, 372, f"wend ({eo}, {eu}): TX announced", 11, fill="#d60"))
    out.append(_t(600, 388, f"wpos ({wo}, {wu}): written", 11, fill="#080"))
    return "".join(out)


def _frame(f: Frame) -> str:
    s, p = f.sample, f.prev
    net, tx = s["nets"][0], s["tx"]
    pn = p["nets"][0] if p else net
    ptx = p["tx"] if p else tx
    kh = net["kharon"] - pn["kharon"]
    down = tx["to_net"][0]["messages"] - ptx["to_net"][0]["messages"] - kh
    up = net["to_tx"]["messages"] - pn["to_tx"]["messages"] - kh
    conns = net["conns"]
    c = max(conns, key=lambda x: x["id"]) if conns else None
    attrs = {"data-phase": f.phase, "data-t": f"{f.t:.3f}", "data-requests": net["requests"],
             "data-in-flight": net["msg_count"], "data-queued": net["stream_queue"],
             "data-down": down, "data-up": up, "data-kharon": kh}
    if c is not None:
        attrs.update({"data-conn": c["id"], "data-wpos": "{},{}".format(*c["wpos"]),
                      "data-wend": "{},{}".format(*c["wend"]), "data-stopped": c["stopped"],
                      "data-ibuf-inflight": "{},{}".format(c["ibuf"][0][3], c["ibuf"][1][3]),
                      "data-p-ibuf": c["p_ibuf"], "data-obuf": "{},{}".format(*c["obuf"])})
    head = "".join(f' {k}="{escape(str(v))}"' for k, v in attrs.items())
    return "".join([
        f"<g class=\"frame\"{head}>",
        _t(20, 30, f.phase, 18, font_weight="bold"),
        _t(20, 46, CAPTIONS.get(f.phase, ""), 11, fill="#444"),
        _t(W - 20, 30, f"t = {f.t:.2f} s", 12, text_anchor="end", fill="#555"),
        _t(X_TX + 10, 112, f"requests in fibers: {tx['fibers']}", 12),
        _t(X_TX + 10, 130, f"sessions: {tx['sessions']}", 12),
        _t(X_NET + 10, 112, f"{net['requests']} requests read", 12),
        _t(X_NET + 10, 130, f"net_msg_max: {net['msg_count']} / {net['net_msg_max']} in use", 12),
        _t(X_NET + 10, 148, f"in {_kib(net['received'])}, out {_kib(net['sent'])}", 12),
        _t(X_NET + 10, 166, f"Kharon trips: {net['kharon']}", 12),
        _t(X_NET + 10, 202, f"streams: {net['streams']}, {net['stream_queue']} queued", 12),
        _t(X_NET + 10, 184, f"backpressure: {net['stopped']} stopped" if net["stopped"] else "no backpressure",
           12, fill="#b00" if net["stopped"] else "#222"),
        _t(W / 2, 228, f"messages: tx → net0 {tx['to_net'][0]['messages']}, net0 → tx {net['to_tx']['messages']}",
           11, text_anchor="middle", fill="#357"),
        _boats(LANE_DOWN, True, down, kh),
        _boats(LANE_UP, False, up, kh),
        _conn(c),
        "</g>",
    ])


def render(frames: list[Frame], threads: int = 1, frame_seconds: float = FRAME) -> str:
    """An animated SVG of `frames` (each linked to the one before), looping."""
    n = max(1, len(frames))
    total = n * frame_seconds
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
             f'font-family="DejaVu Sans, Verdana, sans-serif">',
             "<title>Styx: the river, recorded from a real run (styx river record)</title>",
             _background(threads)]
    for i, f in enumerate(frames):
        a, b = i / n, (i + 1) / n
        if i == 0:
            values, times = "inline;none", f"0;{b:.6f}"
        elif i == n - 1:
            values, times = "none;inline", f"0;{a:.6f}"
        else:
            values, times = "none;inline;none", f"0;{a:.6f};{b:.6f}"
        g = _frame(f)
        anim = (f'<animate attributeName="display" values="{values}" keyTimes="{times}" dur="{total:.2f}s" '
                f'calcMode="discrete" repeatCount="indefinite"/>')
        display = "inline" if i == 0 else "none"
        parts.append(g.replace('<g class="frame"', f'<g class="frame" display="{display}"', 1)
                     .removesuffix("</g>") + anim + "</g>")
    parts.append("</svg>\n")
    return "\n".join(parts)  # a frame a line: diffs of the pictures stay readable


def record(out: Path, iproto_threads: int = 1, parts: bool = False) -> list[Path]:
    """Run the scenario, write `out` (and with `parts` the seed's three
    pictures beside it); return the files written."""
    frames = distinct(run_scenario(iproto_threads))
    frames = [f for f in frames if f.phase not in ("connecting", "done")] or frames
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(frames, iproto_threads), encoding="utf-8")
    written = [out]
    if parts:
        for name, phases in PARTS.items():
            chosen = [f for f in frames if f.phase in phases]
            path = out.with_name(f"{out.stem}-{name}{out.suffix}")
            path.write_text(render(chosen, iproto_threads), encoding="utf-8")
            written.append(path)
    return written
