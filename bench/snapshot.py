#!/usr/bin/env python3
"""Snapshots and recovery, Styx and Tarantool side by side on the same data.

    .venv/bin/python bench/snapshot.py              # 1M tuples
    .venv/bin/python bench/snapshot.py --tuples 200000

For each server, with wal_mode write, on a fresh process: fill space `mem`
with N tuples [k, 32-byte string] (one CALL of `fill`), then take a snapshot
(box.snapshot over CALL) while a client sends synchronous PINGs on another
connection: the snapshot's time, and the PINGs' longest and 99th-percentile
round trip during it (the longest stall a request saw). Then a restart: the
time from start until the N tuples are served again (Tarantool listens while
it recovers, Styx once it has), and the server's RSS after the fill and
after the recovery.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))

import servers  # noqa: E402 - after the sys.path entry that makes it importable
import tarantool  # noqa: E402 - the connector, after the path set-up like the rest


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def ping_loop(port: int, stop: threading.Event, out: list[float]) -> None:
    c = tarantool.Connection("127.0.0.1", port)
    while not stop.is_set():
        t0 = time.perf_counter()
        c.ping(notime=True)
        out.append(time.perf_counter() - t0)
    c.close()


def run(srv: servers.ServerProc, n: int) -> dict[str, float]:
    srv.start(timeout=120)
    try:
        c = tarantool.Connection("127.0.0.1", srv.port, connection_timeout=600)
        for _ in range(100):  # Tarantool listens before its init script has defined everything
            try:
                c.call("sum", 1, 2)
                break
            except tarantool.error.DatabaseError:
                time.sleep(0.1)
        t0 = time.perf_counter()
        c.call("fill", n)
        fill_s = time.perf_counter() - t0
        rss_filled = rss_mb(srv.pid)
        stop = threading.Event()
        before: list[float] = []
        pinger = threading.Thread(target=ping_loop, args=(srv.port, stop, before))
        pinger.start()
        time.sleep(0.5)
        stop.set()
        pinger.join()
        stop.clear()
        during: list[float] = []
        pinger = threading.Thread(target=ping_loop, args=(srv.port, stop, during))
        pinger.start()
        time.sleep(0.2)
        t0 = time.perf_counter()
        c.call("box.snapshot")
        snap_s = time.perf_counter() - t0
        stop.set()
        pinger.join()
        c.close()
        assert srv.proc is not None
        srv.proc.send_signal(signal.SIGTERM)
        srv.proc.wait(60)
        t0 = time.perf_counter()
        srv.start(timeout=600)  # the same directory: recovery
        c = tarantool.Connection("127.0.0.1", srv.port)
        # Until the data is there: Tarantool already listens while it recovers.
        while len(c.select("mem", [n], limit=1)) == 0 and time.perf_counter() - t0 < 600:
            time.sleep(0.01)
        recover_s = time.perf_counter() - t0
        rss_recovered = rss_mb(srv.pid)
        got = len(c.select("mem", [], limit=n + 1))
        c.close()
        assert got == n, (got, n)
        during.sort()
        return {"fill_s": fill_s, "snapshot_s": snap_s, "ping_max_ms": during[-1] * 1000,
                "ping_p99_ms": during[int(len(during) * 0.99)] * 1000,
                "ping_before_max_ms": max(before) * 1000, "recovery_s": recover_s,
                "rss_filled_mb": rss_filled, "rss_recovered_mb": rss_recovered}
    finally:
        srv.stop()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tuples", type=int, default=1_000_000)
    p.add_argument("--tarantool", default="tarantool")
    args = p.parse_args()
    mem = max(256 << 20, args.tuples * 400)
    plan = [servers.tarantool_server(768, 20000, args.tarantool, memtx_memory=mem, keys=1, wal_mode="write"),
            servers.styx_server(0, 768, 20000, memtx_memory=mem, keys=1, wal_mode="write")]
    plan[1].argv += ["--checkpoint-interval", "0"]
    print(f"snapshot of {args.tuples:,} tuples [k, 32-byte string], wal_mode write; "
          f"PING round trips on another connection during it")
    print(f"{'server':10} {'fill s':>8} {'snapshot s':>11} {'PING max ms':>12} {'PING p99 ms':>12} "
          f"{'(before) ms':>12} {'recovery s':>11} {'RSS filled MB':>14} {'RSS recovered MB':>17}")
    for srv in plan:
        r = run(srv, args.tuples)
        print(f"{srv.label:10} {r['fill_s']:8.1f} {r['snapshot_s']:11.2f} {r['ping_max_ms']:12.1f} "
              f"{r['ping_p99_ms']:12.2f} {r['ping_before_max_ms']:12.2f} {r['recovery_s']:11.1f} "
              f"{r['rss_filled_mb']:14.0f} {r['rss_recovered_mb']:17.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
