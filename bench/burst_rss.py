"""A client that pipelines big replies and never reads: the server's RSS.

    .venv/bin/python bench/burst_rss.py                 # 400 CALLs of 1 MB replies
    .venv/bin/python bench/burst_rss.py --requests 1000 --reply 262144 --net-obuf-max 1048576

Starts `styx serve tests/apps/app.py` (its `big(n)` returns n bytes), sends
the requests in one write, reads nothing for a few seconds, and prints the
server's RSS before and after. Then it reads every reply and checks it. With
the output bound (net/connection.py, "Output bound") the growth stays near
--net-obuf-max plus one reply (the obuf slabs double, so up to twice that);
without it, it was the whole burst (28 -> 553 MB for 400 x 1 MB).
"""

from __future__ import annotations

import argparse
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import msgpack

ROOT = Path(__file__).resolve().parent.parent


def rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def packet(header: dict[int, object], body: object) -> bytes:
    payload = msgpack.packb(header) + msgpack.packb(body)
    return b"\xce" + struct.pack(">I", len(payload)) + payload


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=400)
    p.add_argument("--reply", type=int, default=1 << 20, help="bytes per reply")
    p.add_argument("--net-obuf-max", type=int, default=4 << 20)
    p.add_argument("--wait", type=float, default=3.0, help="seconds of not reading")
    p.add_argument("--port", type=int, default=3399)
    args = p.parse_args()

    server = subprocess.Popen([sys.executable, "-m", "styx", "serve", str(ROOT / "tests/apps/app.py"),
                               "--listen", f"127.0.0.1:{args.port}", "--net-obuf-max", str(args.net_obuf_max),
                               "--wal-mode", "none"],
                              cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", args.port))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.recv(128)
        time.sleep(0.3)
        before = rss_mb(server.pid)
        sock.sendall(b"".join(packet({0: 10, 1: i}, {0x22: "big", 0x21: [args.reply]})
                              for i in range(args.requests)))
        time.sleep(args.wait)
        after = rss_mb(server.pid)
        print(f"RSS {before:.0f} MB before, {after:.0f} MB after {args.requests} requests of "
              f"{args.reply} B replies, unread for {args.wait:g} s (net_obuf_max {args.net_obuf_max} B)")
        sock.settimeout(30)
        unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
        got = 0
        while got < args.requests:
            data = sock.recv(1 << 20)
            if not data:
                raise RuntimeError(f"closed after {got} replies")
            unpacker.feed(data)
            for obj in unpacker:
                if isinstance(obj, dict) and 0x30 in obj:
                    assert len(obj[0x30][0]) == args.reply
                    got += 1
        print(f"then read all {got} replies, each intact")
        sock.close()
    finally:
        server.terminate()
        server.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
