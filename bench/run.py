#!/usr/bin/env python3
"""Styx vs Tarantool: throughput, CPU per request, memory per idle connection
and per stored tuple.

    .venv/bin/python bench/run.py                 # everything, a few minutes
    .venv/bin/python bench/run.py --duration 2 --threads 0 --skip-memory --skip-tuples
    .venv/bin/python bench/run.py --scenarios select,replace,update --threads 0,1
    .venv/bin/python bench/run.py --json results.json
    .venv/bin/python bench/run.py --skip-tarantool --threads 0,1 --skip-memory --skip-tuples
        --scenarios ping,select,stream-ping,stream-select,txn-replace     # streams only

For each server (Tarantool first, then Styx with each --iproto-threads mode),
one at a time on a fresh process: the load scenarios, then the idle-connections
memory test, then (Tarantool and Styx t=0 by default) the tuple memory test on
a fresh process. The Styx-only scenarios (streams, transactions: Tarantool 2.6
has neither) run on the Styx modes in --streams-threads and are compared with
Styx without streams. See bench/README.md for what is measured and how.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import queue
import signal
import sys
import time
from pathlib import Path
from typing import Any

sys.dont_write_bytecode = True  # keep bench/ free of __pycache__
sys.path.insert(0, str(Path(__file__).resolve().parent))

import loadgen  # noqa: E402 - after the sys.path entry that makes it importable
import servers  # noqa: E402 - after the sys.path entry that makes it importable

# name -> (request kind, pipelined?)
SCENARIOS = {
    "ping": ("ping", True),
    "call": ("call", True),
    "call-yield": ("call-yield", True),
    "eval": ("eval", True),
    "call-lua": ("call-lua", True),
    "ping-sync": ("ping", False),
    "call-sync": ("call", False),
    # Data requests on space `bench` (512), keys spread over 1..--keys.
    "select": ("select", True),
    "replace": ("replace", True),
    "update": ("update", True),
}
# Targets: Styx's share of Tarantool's rate (pipelined), or the floor of the
# round-trip rate ratio (synchronous: "within 2x" = at least 1/2).
# None: reported, no target.
TARGETS: dict[str, float | None] = {
    "ping": 0.15, "call": 0.20, "call-yield": 0.20, "ping-sync": 0.5, "call-sync": 0.5,
    "select": 0.20, "replace": 0.20, "update": None, "eval": None, "call-lua": None,
}
REQUEST_DESC = {
    "ping": "PING",
    "call": "CALL sum(1, 2)",
    "call-yield": "CALL sum_yield(1, 2), a procedure that yields once",
    "eval": "EVAL 'return 1'",
    "call-lua": "CALL lua_sum(1, 2), a global Lua function on both servers",
    "select": "SELECT space bench by primary key, LIMIT 1",
    "replace": "REPLACE [k, 32-byte string] into space bench",
    "update": "UPDATE space bench key k: {'=', 1, 32-byte string}",
}
MEMORY_TARGET = 16 * 1024  # bytes per idle connection

# Styx only, "Styx vs its own stream-less path" (Tarantool 2.6 has no streams):
# name -> the load kind; stream-ping/stream-select are `ping`/`select` with a
# STREAM_ID (S streams per connection, for each S in --streams), compared with
# the stream-less scenario of the same name; txn-replace is BEGIN, REPLACE,
# COMMIT in streams, compared with the same REPLACEs without streams.
STREAM_SCENARIOS = {
    "stream-ping": "ping",
    "stream-select": "select",
    "txn-replace": "txn",
    "txn-select-replace": "txn-sr",
}
# The transaction scenarios: (variant, load kind, requests per transaction, what it sends).
TXN_VARIANTS = {
    "txn": [("txn", "txn", 3, "BEGIN/REPLACE/COMMIT"), ("plain", "txn-plain", 1, "the same REPLACEs without streams")],
    "txn-sr": [("txn", "txn-sr", 4, "BEGIN/SELECT/REPLACE/COMMIT"),
               ("plain", "txn-sr-plain", 2, "the same SELECT and REPLACE without streams")],
}
ALL_SCENARIOS = list(SCENARIOS) + list(STREAM_SCENARIOS)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=5.0, help="timed seconds per scenario (default 5)")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds of load before the timed window (default 1)")
    p.add_argument("--connections", type=int, default=16, help="connections, pipelined scenarios (default 16)")
    p.add_argument("--inflight", type=int, default=16, help="requests in flight per connection, pipelined (default 16)")
    p.add_argument("--client-procs", type=int, default=2,
                   help="load processes for the pipelined scenarios (default 2: the machine's cores)")
    p.add_argument("--threads", default="0,1,2", help="Styx --iproto-threads modes, comma-separated (default 0,1,2)")
    p.add_argument("--scenarios", default=",".join(ALL_SCENARIOS),
                   help=f"comma-separated subset of {','.join(ALL_SCENARIOS)} (default: all; "
                        f"{', '.join(STREAM_SCENARIOS)} are Styx only)")
    p.add_argument("--skip-streams", action="store_true",
                   help=f"skip the Styx-only stream and transaction scenarios ({', '.join(STREAM_SCENARIOS)})")
    p.add_argument("--streams-threads", default="0,1",
                   help="Styx modes (among --threads) that run the stream and transaction scenarios "
                        "(default 0,1)")
    p.add_argument("--streams", default="16,1",
                   help="streams per connection for stream-ping and stream-select, comma-separated: "
                        "request i of a connection goes to stream i mod S + 1 (default 16,1: with "
                        "16 in flight, each in its own stream; all in one stream)")
    p.add_argument("--txn-streams", type=int, default=0,
                   help="streams per connection for txn-replace, transaction t in stream t mod T + 1 "
                        "(default 0: enough for every transaction in flight to have its own, "
                        "1 + ceil((inflight - 1) / 3))")
    p.add_argument("--net-msg-max", type=int, default=768, help="net_msg_max of both servers (default 768)")
    p.add_argument("--memory-connections", type=int, default=10000, help="idle connections (default 10000)")
    p.add_argument("--memory-window", type=int, default=512,
                   help="connections being opened (not yet greeted) at a time, memory test (default 512)")
    p.add_argument("--skip-memory", action="store_true", help="skip the idle-connections memory test")
    p.add_argument("--keys", type=int, default=loadgen.DEFAULT_KEYS,
                   help="tuples pre-filled in space bench, keys 1..N, for select/replace/update (default 10000)")
    p.add_argument("--tuples", type=int, default=1_000_000,
                   help="tuples the tuple memory test inserts (default 1000000)")
    p.add_argument("--tuples-threads", default="0",
                   help="Styx modes (among --threads) that run the tuple memory test (default 0); "
                        "Tarantool always runs it")
    p.add_argument("--tuples-connections", type=int, default=4,
                   help="connections filling the space, tuple memory test (default 4)")
    p.add_argument("--tuples-inflight", type=int, default=64,
                   help="REPLACEs in flight per connection, tuple memory test (default 64)")
    p.add_argument("--skip-tuples", action="store_true", help="skip the tuple memory test")
    p.add_argument("--memtx-memory", type=int, default=None,
                   help="memtx_memory of both servers, bytes (default: 256 MiB, or more if "
                        "--tuples needs it)")
    p.add_argument("--wal-mode", default="none", choices=("none", "write", "fsync"),
                   help="both servers' wal_mode (default none); the WAL goes to each one's temporary directory")
    p.add_argument("--skip-tarantool", action="store_true", help="run Styx only (no ratios)")
    p.add_argument("--styx-baseline", metavar="TREE",
                   help="also run the Styx of this source tree (e.g. a git worktree of an older commit) after "
                        "each Styx mode, labelled 'base t=N': a before/after in one run")
    p.add_argument("--tarantool", default="tarantool", help="tarantool binary (default: tarantool on PATH)")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH ('-' for stdout)")
    args = p.parse_args(argv)
    args.threads = [int(t) for t in args.threads.split(",") if t.strip() != ""]
    args.tuples_threads = [int(t) for t in args.tuples_threads.split(",") if t.strip() != ""]
    args.streams_threads = [int(t) for t in args.streams_threads.split(",") if t.strip() != ""]
    args.streams = list(dict.fromkeys(int(v) for v in args.streams.split(",") if v.strip() != ""))
    if any(not 1 <= v <= loadgen.SYNC_RING for v in args.streams):
        p.error(f"--streams values must be within 1..{loadgen.SYNC_RING}")
    if args.txn_streams == 0:
        args.txn_streams = 1 + -(-(args.inflight - 1) // 3)
    if not 1 <= args.txn_streams <= loadgen.TXN_RING_MAX:
        p.error(f"--txn-streams must be within 1..{loadgen.TXN_RING_MAX}")
    if args.keys < 1:
        p.error("--keys must be at least 1")
    if args.tuples < 1:
        p.error("--tuples must be at least 1")
    if args.memtx_memory is None:
        # Both servers' default, or room for the tuples and `bench` at 256 bytes
        # each (Styx charges a stored tuple its bytes + 64; Tarantool's tuple
        # plus its index entry take about as much), in whole MiB.
        need = (args.tuples + args.keys) * 256
        args.memtx_memory = max(servers.DEFAULT_MEMTX_MEMORY, -(-need // (1 << 20)) << 20)
    args.scenarios = list(dict.fromkeys(s.strip() for s in args.scenarios.split(",") if s.strip()))
    for s in args.scenarios:
        if s not in SCENARIOS and s not in STREAM_SCENARIOS:
            p.error(f"unknown scenario {s!r}")
    if args.skip_streams:
        args.scenarios = [s for s in args.scenarios if s not in STREAM_SCENARIOS]
    if args.inflight >= loadgen.SYNC_RING:
        p.error(f"--inflight must be below {loadgen.SYNC_RING}")
    for name in args.scenarios:
        kind = STREAM_SCENARIOS.get(name)
        if kind in TXN_VARIANTS and args.inflight >= loadgen.ring_of(kind, args.txn_streams):
            p.error(f"{name}: --inflight must be below {loadgen.ring_of(kind, args.txn_streams)} "
                    "(the transactions in a connection's ring)")
    return args


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# One load scenario against one running server.

def run_load(srv: servers.ServerProc, kind: str, nconn: int, inflight: int, procs: int,
             warmup: float, duration: float, keys: int = loadgen.DEFAULT_KEYS,
             streams: int = 0) -> dict[str, Any]:
    """`streams`: S streams per connection (0: requests without STREAM_ID);
    for the txn kinds, T (the streams of txn; the key ring of txn-plain)."""
    ctx = mp.get_context("fork")
    procs = max(1, min(procs, nconn))
    phase = ctx.RawValue("i", loadgen.PHASE_WAIT)
    counts = ctx.RawArray("q", procs)
    errors = ctx.RawArray("q", procs)
    results = ctx.Queue()
    share = [nconn // procs + (1 if i < nconn % procs else 0) for i in range(procs)]
    workers = [ctx.Process(target=loadgen.worker_main, daemon=True,
                           args=(i, srv.port, share[i], inflight, kind, phase, counts, errors, results,
                                 keys, streams, sum(share[:i])))
               for i in range(procs)]
    # What the machine does without our load (other tenants, the idle server).
    b0, _ = servers.machine_cpu_seconds()
    time.sleep(0.3)
    b1, _ = servers.machine_cpu_seconds()
    background = (b1 - b0) / 0.3 * 100
    for w in workers:
        w.start()
    try:
        pids = {}
        while len(pids) < procs:
            msg = results.get(timeout=30)
            if msg[0] == "failed":
                raise RuntimeError(f"load process {msg[1]} failed:\n{msg[2]}")
            pids[msg[1]] = msg[2]
        phase.value = loadgen.PHASE_RUN
        time.sleep(warmup)

        def snap() -> tuple[float, int, float, float, float]:
            t = time.perf_counter()
            n = sum(counts[:])
            return (t, n, servers.cpu_seconds(srv.pid), sum(servers.cpu_seconds(p) for p in pids.values()),
                    servers.machine_cpu_seconds()[0])

        t0, n0, s0, c0, m0 = snap()
        time.sleep(duration)
        t1, n1, s1, c1, m1 = snap()
        phase.value = loadgen.PHASE_STOP
        reports: dict[int, dict[str, Any]] = {}
        failures = []
        while len(reports) + len(failures) < procs:
            try:
                msg = results.get(timeout=30)
            except queue.Empty:
                failures += [f"load process {i}: no report 30 s after the load stopped "
                             "(replies never came: a server hang?)"
                             for i in range(procs) if i not in reports]
                break
            if msg[0] == "done":
                reports[msg[1]] = msg[2]
            elif msg[0] == "failed":
                failures.append(f"load process {msg[1]}: {msg[2].strip().splitlines()[-1]}")
    finally:
        phase.value = loadgen.PHASE_STOP
        for w in workers:
            w.join(5)
            if w.is_alive():
                w.terminate()
                w.join(5)
    wall = t1 - t0
    reqs = n1 - n0
    nerr = sum(r["errors"] for r in reports.values())
    samples = [s for r in reports.values() for s in r["error_samples"]] + failures
    if not srv.alive():
        samples.append(srv.death())
    return {
        "requests": reqs,
        "seconds": wall,
        "rps": reqs / wall if wall > 0 else 0.0,
        "server_cpu_s": s1 - s0,
        "server_us_per_req": (s1 - s0) / reqs * 1e6 if reqs else None,
        "server_cpu_pct": (s1 - s0) / wall * 100,
        "client_cpu_s": c1 - c0,
        "client_us_per_req": (c1 - c0) / reqs * 1e6 if reqs else None,
        "client_cpu_pct": (c1 - c0) / wall * 100,
        "client_procs": procs,
        "machine_busy_pct": (m1 - m0) / wall * 100,
        "background_busy_pct": background,
        "errors": nerr + len(failures) + (0 if srv.alive() else 1),
        "error_samples": samples[:8],
        # requests each connection sent, in connection order (None: a load process failed)
        "sent_per_conn": ([n for i in range(procs) for n in reports[i]["sent"]]
                          if len(reports) == procs else None),
    }


# ---------------------------------------------------------------------------
# Memory per idle connection.

def run_memory(srv: servers.ServerProc, n: int, window: int) -> dict[str, Any]:
    res: dict[str, Any] = {"connections": n, "server_nofile": servers.nofile_limit(srv.pid)}
    # Warm the server's connection paths (first-use allocations) with a few
    # connections that also PING, and close them before the baseline.
    socks, _ = loadgen.open_many(srv.port, 50)
    loadgen.ping_all(socks)
    for s in socks:
        s.close()
    time.sleep(0.5)
    rss0 = servers.rss_bytes(srv.pid)
    cpu0 = servers.cpu_seconds(srv.pid)
    socks, st = loadgen.open_many(srv.port, n, window=window)
    res.update(st)
    res["open_server_cpu_s"] = servers.cpu_seconds(srv.pid) - cpu0
    try:
        time.sleep(1.0)  # let the server finish whatever it does per accepted connection
        rss1 = servers.rss_bytes(srv.pid)
        ping = loadgen.ping_all(socks)
        time.sleep(0.5)
        rss2 = servers.rss_bytes(srv.pid)
    finally:
        for s in socks:
            s.close()
    time.sleep(1.0)
    rss3 = servers.rss_bytes(srv.pid) if srv.alive() else None
    # Is the server still well after 10k disconnects?
    after = {"answered_ok": 0}
    if srv.alive():
        try:
            socks, _ = loadgen.open_many(srv.port, 1, timeout=10)
            after = loadgen.ping_all(socks, timeout=10)
            socks[0].close()
        except Exception as e:  # noqa: BLE001 - whatever failed, the run goes on and says so
            ping.setdefault("errors", []).append(f"after closing all: {e}")
    res.update({
        "rss_before": rss0, "rss_idle": rss1, "rss_after_ping": rss2, "rss_after_close": rss3,
        "bytes_per_idle_conn": (rss1 - rss0) / n,
        "bytes_per_conn_after_ping": (rss2 - rss0) / n,
        "pinged": ping["pinged"], "answered_ok": ping["answered_ok"],
        "wrong": ping["wrong"], "unanswered": ping["unanswered"],
        "ping_seconds": ping["ping_seconds"],
        "alive_after_close": after["answered_ok"] == 1,
        "errors": ping["wrong"] + ping["unanswered"] + (0 if after["answered_ok"] == 1 else 1),
        "error_samples": ping["errors"][:8],
    })
    return res


# ---------------------------------------------------------------------------
# Memory per stored tuple.

def settled_rss(pid: int, min_wait: float = 1.0, max_wait: float = 10.0) -> int:
    """RSS once it stops moving: after min_wait, read every 0.5 s until two
    reads are within 0.5% (or max_wait)."""
    time.sleep(min_wait)
    t_end = time.monotonic() + max_wait - min_wait
    prev = servers.rss_bytes(pid)
    while time.monotonic() < t_end:
        time.sleep(0.5)
        cur = servers.rss_bytes(pid)
        if abs(cur - prev) <= prev * 0.005:
            return cur
        prev = cur
    return prev


def run_tuples(srv: servers.ServerProc, n: int, nconn: int, inflight: int) -> dict[str, Any]:
    """On a fresh server: RSS, REPLACE n tuples [k, 32-byte string] into the
    empty space `mem`, RSS again once settled; bytes per tuple = delta / n."""
    rss0 = settled_rss(srv.pid, min_wait=0.5)
    cpu0 = servers.cpu_seconds(srv.pid)
    fill = loadgen.fill_space(srv.port, n, loadgen.MEM_SPACE, nconn=nconn, inflight=inflight)
    cpu1 = servers.cpu_seconds(srv.pid)
    rss1 = settled_rss(srv.pid)
    res: dict[str, Any] = dict(fill)
    res.update(connections=nconn, inflight=inflight, rss_before=rss0, rss_after=rss1,
               bytes_per_tuple=(rss1 - rss0) / n,
               tuples_per_s=fill["acknowledged"] / fill["fill_seconds"] if fill["fill_seconds"] else 0.0,
               server_us_per_tuple=(cpu1 - cpu0) / n * 1e6)
    # The space must now hold exactly n tuples.
    try:
        count = loadgen.call(srv.port, "box.space.mem:len", [])
        res["count"] = count[0] if isinstance(count, list) and count else count
    except Exception as e:  # noqa: BLE001 - whatever failed, the run goes on and says so
        res["count"] = None
        res["error_samples"].append(f"box.space.mem:len(): {e}")
        res["errors"] += 1
    else:
        if res["count"] != n:
            res["error_samples"].append(f"box.space.mem:len() = {res['count']!r}, expected {n}")
            res["errors"] += 1
    if res["acknowledged"] != n:
        res["error_samples"].append(f"{n - res['acknowledged']} REPLACEs not acknowledged with the right tuple")
    if not srv.alive():
        res["errors"] += 1
        res["error_samples"].append(srv.death())
    return res


# ---------------------------------------------------------------------------
# Styx only: streams and transactions, vs Styx without streams.

def wants_streams(srv: servers.ServerProc, args: argparse.Namespace) -> bool:
    return srv.kind == "styx" and srv.threads in args.streams_threads


def _styx_only_load(srv: servers.ServerProc, args: argparse.Namespace, out: dict[str, Any], label: str,
                    kind: str, streams: int) -> dict[str, Any] | None:
    """One pipelined load (--connections x --inflight) on srv; None if it failed."""
    if not srv.alive():
        log(f"   restarting {srv.label}")
        srv.start()
    log(f"   {label}: {args.connections} conn x {args.inflight} in flight, {args.client_procs} load "
        f"process(es), {args.warmup:g}s warm-up + {args.duration:g}s")
    try:
        r = run_load(srv, kind, args.connections, args.inflight, args.client_procs, args.warmup,
                     args.duration, args.keys, streams)
    except Exception as e:  # noqa: BLE001 - reported, and the bench goes on
        out["failures"].append(f"{label}: {e}")
        log(f"      FAILED: {e}")
        return None
    r.update(connections=args.connections, inflight=args.inflight, streams=streams)
    log(f"      {r['rps']:,.0f} req/s, server {fmt_us(r['server_us_per_req'])} us/req"
        + (f", {r['errors']} ERRORS: {r['error_samples']}" if r["errors"] else ""))
    if not srv.alive():
        log(f"   {srv.death()}:\n{srv.log_tail()}")
    return r


def _add_error(r: dict[str, Any], msg: str) -> None:
    r["errors"] += 1
    r["error_samples"].append(msg)
    log(f"      ERROR: {msg}")


def check_txn_space(srv: servers.ServerProc, r: dict[str, Any], per_txn: int, ring: int, nconn: int) -> None:
    """After a txn/txn-plain load on a space where every key k held value2(k):
    connection g's first min(done, R) keys must hold value(k) (done = its
    whole transactions, or REPLACEs), the rest still value2(k), nothing else
    in the space. Mismatches are added to r's errors."""
    sent = r.get("sent_per_conn")
    if sent is None or not srv.alive():
        return
    for g, n in enumerate(sent):
        if n % per_txn:
            _add_error(r, f"connection {g} sent {n} requests: not whole transactions of {per_txn}")
    try:
        tuples = loadgen.select_all(srv.port, loadgen.TXN_SPACE)
    except Exception as e:  # noqa: BLE001 - whatever failed, the run goes on and says so
        _add_error(r, f"SELECT all of space txn: {e}")
        return
    want = []
    for g, n in enumerate(sent):
        done = min(n // per_txn, ring)
        want += [[loadgen.txn_key(g, t, ring), (loadgen.value if t < done else loadgen.value2)(
            loadgen.txn_key(g, t, ring))] for t in range(ring)]
    r["space_checked"] = len(want)
    if tuples == want:
        return
    if len(tuples) != len(want):
        _add_error(r, f"space txn holds {len(tuples)} tuples, expected {len(want)}")
    bad = [(w, t) for w, t in zip(want, tuples, strict=False) if w != t]
    if bad:
        _add_error(r, f"space txn: {len(bad)} tuples differ from what was committed, e.g. "
                      f"{bad[0][1]!r} instead of {bad[0][0]!r}")


def run_styx_only(srv: servers.ServerProc, name: str, args: argparse.Namespace, out: dict[str, Any]) -> None:
    kind = STREAM_SCENARIOS[name]
    if kind not in TXN_VARIANTS:
        # stream-ping / stream-select: the stream-less baseline is the `ping` /
        # `select` scenario of this server in this run, or measured now.
        entry: dict[str, Any] = {"kind": kind, "baseline": None, "baseline_measured_here": False,
                                 "variants": {}}
        out["streams"][name] = entry
        base = out["scenarios"].get(kind)
        if base is None:
            base = _styx_only_load(srv, args, out, f"{name}: {kind} without streams (baseline)", kind, 0)
            entry["baseline_measured_here"] = True
        entry["baseline"] = base
        for n in args.streams:
            entry["variants"][f"S={n}"] = _styx_only_load(srv, args, out, f"{name}: S={n} streams per connection",
                                                         kind, n)
        return
    # txn-replace, txn-select-replace: transactions in streams, then the same
    # requests without streams; before each, the space is emptied and every
    # key the load may write is set to value2(k) (so the space shows which
    # transactions were committed).
    t_streams = args.txn_streams
    ring = loadgen.ring_of(kind, t_streams)
    nkeys = args.connections * ring
    entry = {"streams": t_streams, "ring": ring, "keys": nkeys, "txn": None, "plain": None}
    out["streams"][name] = entry
    for variant, lkind, per_txn, what in TXN_VARIANTS[kind]:
        label = f"{name}: {what}" + (f", T={t_streams} streams per connection" if variant == "txn" else "")
        if not srv.alive():
            log(f"   restarting {srv.label}")
            srv.start()
        try:
            # Emptied first: an earlier scenario of this run may have used more keys.
            loadgen.call(srv.port, "box.space.txn:truncate", [])
            fill = loadgen.fill_space(srv.port, nkeys, loadgen.TXN_SPACE, val=loadgen.value2, timeout=60)
        except Exception as e:  # noqa: BLE001 - whatever failed, the run goes on and says so
            out["failures"].append(f"{label}: resetting space txn: {e!r}")
            log(f"      FAILED resetting space txn: {e!r}")
            continue
        if fill["errors"] or fill["acknowledged"] != nkeys:
            out["failures"].append(f"{label}: resetting space txn: {fill['error_samples']}")
            continue
        time.sleep(0.5)  # let the server finish with the fill's connections before bg CPU is read
        r = _styx_only_load(srv, args, out, label, lkind, t_streams)
        if r is None:
            continue
        check_txn_space(srv, r, per_txn, ring, args.connections)
        r["requests_per_txn"] = per_txn
        r["txn_per_s"] = r["rps"] / per_txn
        r["server_us_per_txn"] = None if r["server_us_per_req"] is None else r["server_us_per_req"] * per_txn
        entry[variant] = r


def styx_only_loads(out: dict[str, Any]) -> list[dict[str, Any]]:
    """The load results the Styx-only scenarios measured (not the reused baselines)."""
    loads = []
    for entry in out.get("streams", {}).values():
        if "variants" in entry:
            if entry["baseline_measured_here"] and entry["baseline"]:
                loads.append(entry["baseline"])
            loads += [v for v in entry["variants"].values() if v]
        else:
            loads += [entry[k] for k in ("txn", "plain") if entry[k]]
    return loads


# ---------------------------------------------------------------------------

def wants_tuples(srv: servers.ServerProc, args: argparse.Namespace) -> bool:
    return not args.skip_tuples and (srv.threads is None or srv.threads in args.tuples_threads)


def bench_server(srv: servers.ServerProc, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"server": srv.label, "scenarios": {}, "streams": {}, "memory": None,
                           "tuples": None, "failures": []}
    log(f"-- {srv.label}: starting")
    srv.start()
    try:
        for name in args.scenarios:
            if name in STREAM_SCENARIOS:
                if wants_streams(srv, args):
                    run_styx_only(srv, name, args, out)
                continue
            if not srv.alive():  # it died in the previous scenario: go on with a fresh one
                log(f"   restarting {srv.label}")
                srv.start()
            kind, pipelined = SCENARIOS[name]
            nconn, inflight, procs = (args.connections, args.inflight, args.client_procs) if pipelined else (1, 1, 1)
            log(f"   {name}: {nconn} conn x {inflight} in flight, {procs} load process(es), "
                f"{args.warmup:g}s warm-up + {args.duration:g}s")
            try:
                r = run_load(srv, kind, nconn, inflight, procs, args.warmup, args.duration, args.keys)
            except Exception as e:  # noqa: BLE001 - reported, and the bench goes on
                out["failures"].append(f"{name}: {e}")
                log(f"      FAILED: {e}")
                continue
            r.update(connections=nconn, inflight=inflight)
            out["scenarios"][name] = r
            log(f"      {r['rps']:,.0f} req/s, server {fmt_us(r['server_us_per_req'])} us/req"
                + (f", {r['errors']} ERRORS: {r['error_samples']}" if r["errors"] else ""))
            if not srv.alive():
                log(f"   {srv.death()}:\n{srv.log_tail()}")
        if not args.skip_memory:
            if not srv.alive():
                log(f"   restarting {srv.label}")
                srv.start()
            log(f"   memory: {args.memory_connections} idle connections")
            try:
                m = run_memory(srv, args.memory_connections, args.memory_window)
            except Exception as e:  # noqa: BLE001 - whatever failed, the run goes on and says so
                out["failures"].append(f"memory: {e!r}" + (f"; {srv.death()}" if not srv.alive() else ""))
                log(f"      FAILED: {e!r}")
            else:
                out["memory"] = m
                log(f"      {m['bytes_per_idle_conn']:,.0f} B/conn idle, opened in {m['open_seconds']:.1f}s, "
                    f"{m['answered_ok']}/{m['pinged']} PINGs ok")
        if wants_tuples(srv, args):
            # the tuple test wants a fresh server
            if any(n in SCENARIOS or wants_streams(srv, args) for n in args.scenarios) or not args.skip_memory:
                srv.stop()
                log(f"   restarting {srv.label} (a fresh server for the tuple test)")
                srv.start()
            log(f"   tuples: {args.tuples:,} REPLACEs into the empty space mem, "
                f"{args.tuples_connections} conn x {args.tuples_inflight} in flight")
            try:
                t = run_tuples(srv, args.tuples, args.tuples_connections, args.tuples_inflight)
            except Exception as e:  # noqa: BLE001 - whatever failed, the run goes on and says so
                out["failures"].append(f"tuples: {e!r}" + (f"; {srv.death()}" if not srv.alive() else ""))
                log(f"      FAILED: {e!r}")
            else:
                out["tuples"] = t
                log(f"      {t['bytes_per_tuple']:,.1f} B/tuple, {t['tuples_per_s']:,.0f} tuples/s"
                    + (f", {t['errors']} ERRORS: {t['error_samples']}" if t["errors"] else ""))
    finally:
        srv.stop()
    return out


def fmt_us(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def print_tables(results: list[dict[str, Any]], args: argparse.Namespace, tversion: str) -> None:
    ref = next((r for r in results if r["server"] == "tarantool"), None)
    print()
    print(f"Styx vs {tversion}: {os.cpu_count()} CPUs shared by the servers and the load; "
          f"{args.warmup:g}s warm-up, {args.duration:g}s timed per scenario")
    print("CPU% is of one core; us/req = CPU time (utime+stime) over the timed window / replies;")
    print(f"all CPU = the whole machine's busy time (max {(os.cpu_count() or 1) * 100}%), "
          "including kernel work charged to no process;")
    print("bg CPU = the machine's busy time in the 0.3 s before the load started (other processes: noise)")
    for name in args.scenarios:
        if name not in SCENARIOS:
            continue
        kind, pipelined = SCENARIOS[name]
        shape = (f"{args.connections} conn x {args.inflight} in flight (pipelined)" if pipelined
                 else "1 conn x 1 in flight (synchronous round trips)")
        req = REQUEST_DESC[kind]
        if kind in loadgen.DATA_KINDS:
            req += f", keys spread over 1..{args.keys}"
        target = TARGETS[name]
        tdesc = ("none (report only)" if target is None
                 else f"Styx >= {target:.0%} of Tarantool" if pipelined else "Styx within 2x of Tarantool")
        print()
        print(f"{req}, {shape}; target: {tdesc}")
        hdr = (f"  {'server':<11} {'req/s':>10} {'srv us/req':>10} {'srv CPU':>8} "
               f"{'cli CPU':>8} {'cli us/req':>10} {'all CPU':>8} {'bg CPU':>7} {'errors':>6}  "
               f"{'Styx/Tarantool':>14}  {'target':<6}")
        print(hdr)
        print("  " + "-" * (len(hdr) - 2))
        for r in results:
            s = r["scenarios"].get(name)
            if s is None:
                continue
            ratio = ""
            verdict = ""
            base = ref["scenarios"].get(name) if ref else None
            if r is not ref and base and base["rps"]:
                q = s["rps"] / base["rps"]
                ratio = f"{q:.2f}"
                verdict = "" if target is None else "PASS" if q >= target else "FAIL"
            print(f"  {r['server']:<11} {s['rps']:>10,.0f} {fmt_us(s['server_us_per_req']):>10} "
                  f"{s['server_cpu_pct']:>7.0f}% {s['client_cpu_pct']:>7.0f}% "
                  f"{fmt_us(s['client_us_per_req']):>10} {s['machine_busy_pct']:>7.0f}% "
                  f"{s['background_busy_pct']:>6.0f}% {s['errors']:>6}  {ratio:>14}  {verdict:<6}")
            for e in s["error_samples"]:
                print(f"      ! {e}")
    mem = [r for r in results if r["memory"]]
    if mem:
        n = mem[0]["memory"]["connections"]
        print()
        print(f"{n} idle connections (greeting read on each); RSS of the server; "
              f"target: Styx <= {MEMORY_TARGET // 1024} KiB per idle connection")
        hdr = (f"  {'server':<11} {'RSS before':>10} {'RSS idle':>9} {'B/conn':>7} {'target':<6} "
               f"{'open s':>6} {'slow':>5} {'PINGs ok':>12} {'ping s':>6} "
               f"{'RSS+ping':>9} {'B/conn':>7} {'RSS closed':>10}")
        print(hdr)
        print("  " + "-" * (len(hdr) - 2))
        mb = 1024 * 1024
        for r in mem:
            m = r["memory"]
            verdict = "" if r["server"] == "tarantool" else \
                ("PASS" if m["bytes_per_idle_conn"] <= MEMORY_TARGET else "FAIL")
            closed = f"{m['rss_after_close'] / mb:.1f}M" if m["rss_after_close"] else "-"
            print(f"  {r['server']:<11} {m['rss_before'] / mb:>9.1f}M {m['rss_idle'] / mb:>8.1f}M "
                  f"{m['bytes_per_idle_conn']:>7,.0f} {verdict:<6} {m['open_seconds']:>6.1f} "
                  f"{m['slow_greetings']:>5} {m['answered_ok']:>5}/{m['pinged']:<6} {m['ping_seconds']:>6.2f} "
                  f"{m['rss_after_ping'] / mb:>8.1f}M {m['bytes_per_conn_after_ping']:>7,.0f} {closed:>10}")
            for e in m["error_samples"]:
                print(f"      ! {e}")
            if m["failed_connects"]:
                print(f"      ! {m['failed_connects']} connects failed and were retried")
            if not m["alive_after_close"]:
                print("      ! the server did not answer a PING after the 10k connections closed")
        print("  slow = connections whose greeting took over 1 s (a SYN retransmit: the accept queue overflowed)")
    tup = [r for r in results if r["tuples"]]
    if tup:
        t0 = tup[0]["tuples"]
        tref = ref["tuples"] if ref and ref["tuples"] else None
        print()
        print(f"{t0['tuples']:,} tuples [unsigned, 32-byte string] REPLACEd into an empty space on a fresh "
              f"server, {t0['connections']} conn x {t0['inflight']} in flight; "
              f"memtx_memory {args.memtx_memory / (1 << 20):,.0f} MiB on both")
        print("B/tuple = (RSS once settled after the last reply - RSS before) / tuples; report only")
        hdr = (f"  {'server':<11} {'RSS before':>10} {'RSS after':>10} {'B/tuple':>8} {'vs Tarantool':>12} "
               f"{'fill s':>7} {'tuples/s':>9} {'srv us/tuple':>12} {'count':>9} {'errors':>6}")
        print(hdr)
        print("  " + "-" * (len(hdr) - 2))
        mb = 1024 * 1024
        for r in tup:
            t = r["tuples"]
            vs = (f"{t['bytes_per_tuple'] / tref['bytes_per_tuple']:.2f}x"
                  if tref and t is not tref and tref["bytes_per_tuple"] > 0 else "")
            count = "-" if t["count"] is None else f"{t['count']:,}" if isinstance(t["count"], int) else "?"
            print(f"  {r['server']:<11} {t['rss_before'] / mb:>9.1f}M {t['rss_after'] / mb:>9.1f}M "
                  f"{t['bytes_per_tuple']:>8.1f} {vs:>12} {t['fill_seconds']:>7.1f} {t['tuples_per_s']:>9,.0f} "
                  f"{t['server_us_per_tuple']:>12.1f} {count:>9} {t['errors']:>6}")
            for e in t["error_samples"]:
                print(f"      ! {e}")
    print_stream_tables(results, args)
    failed = [(r["server"], f) for r in results for f in r["failures"]]
    if failed:
        print()
        print("Failures:")
        for label, f in failed:
            print(f"  {label}: {f}")


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a is not None and b else ""


def print_stream_tables(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    rows = [r for r in results if r.get("streams")]
    if not rows:
        return
    print()
    print("Styx streams and transactions, vs Styx without streams (Styx only: Tarantool 2.6 has no streams)")
    print(f"{args.connections} conn x {args.inflight} in flight (pipelined), the same load process(es) and "
          "windows as above; ratios are to the stream-less row of the same server in this run")
    for name in args.scenarios:
        if name not in STREAM_SCENARIOS or STREAM_SCENARIOS[name] in TXN_VARIANTS:
            continue
        kind = STREAM_SCENARIOS[name]
        req = REQUEST_DESC[kind] + (f", keys spread over 1..{args.keys}" if kind in loadgen.DATA_KINDS else "")
        print()
        print(f"{name}: {req}, with STREAM_ID = i mod S + 1 for a connection's i-th request "
              "(S streams per connection; S >= in flight: one request per stream, S=1: one at a time)")
        hdr = (f"  {'server':<11} {'streams':<9} {'req/s':>10} {'srv us/req':>10} {'srv CPU':>8} {'cli CPU':>8} "
               f"{'all CPU':>8} {'bg CPU':>7} {'errors':>6}  {'req/s vs none':>13} {'us/req vs none':>14}")
        print(hdr)
        print("  " + "-" * (len(hdr) - 2))
        for r in rows:
            e = r["streams"].get(name)
            if e is None:
                continue
            base = e["baseline"]
            lines = [("none" + ("" if e["baseline_measured_here"] else "*"), base)]
            lines += list(e["variants"].items())
            for label, s in lines:
                if s is None:
                    print(f"  {r['server']:<11} {label:<9} {'failed':>10}")
                    continue
                q_rps = q_us = ""
                if s is not base and base:
                    q_rps = _ratio(s["rps"], base["rps"])
                    q_us = _ratio(s["server_us_per_req"], base["server_us_per_req"])
                print(f"  {r['server']:<11} {label:<9} {s['rps']:>10,.0f} {fmt_us(s['server_us_per_req']):>10} "
                      f"{s['server_cpu_pct']:>7.0f}% {s['client_cpu_pct']:>7.0f}% {s['machine_busy_pct']:>7.0f}% "
                      f"{s['background_busy_pct']:>6.0f}% {s['errors']:>6}  {q_rps:>13} {q_us:>14}")
                for err in s["error_samples"] if s is not base or e["baseline_measured_here"] else []:
                    print(f"      ! {err}")
        if any(not r["streams"][name]["baseline_measured_here"] for r in rows if name in r["streams"]):
            print(f"  none* = the {kind} scenario's row above (same server process, earlier in this run)")
    for name in [n for n in args.scenarios if STREAM_SCENARIOS.get(n) in TXN_VARIANTS]:
        (_, _, per_txn, what), (_, _, per_plain, plain_what) = TXN_VARIANTS[STREAM_SCENARIOS[name]]
        e0 = next((r["streams"][name] for r in rows if name in r["streams"]), None)
        if e0 is not None:
            print()
            print(f"{name}: {what}, SELECT by primary key of space txn, REPLACE [k, 32-byte string] into it: each "
                  f"transaction in one stream, T={e0['streams']} streams per connection (transaction t in "
                  f"stream t mod T + 1), its {per_txn} requests pipelined;")
            print(f"  vs plain: {plain_what}, no transaction. Keys: {e0['keys']:,} "
                  f"({e0['ring']:,} per connection, none shared by concurrent transactions), reset before "
                  "each load; after it every key is checked to hold what was committed")
            hdr = (f"  {'server':<11} {'load':<7} {'txn/s':>9} {'req/s':>9} {'srv us/txn':>10} {'srv CPU':>8} "
                   f"{'cli CPU':>8} {'all CPU':>8} {'bg CPU':>7} {'errors':>6}  {'txn/s vs plain':>14} "
                   f"{'us/txn vs plain':>15}")
            print(hdr)
            print("  " + "-" * (len(hdr) - 2))
            for r in rows:
                e = r["streams"].get(name)
                if e is None:
                    continue
                base = e["plain"]
                for label, s in (("plain", base), (f"txn T={e['streams']}", e["txn"])):
                    if s is None:
                        print(f"  {r['server']:<11} {label:<7} {'failed':>9}")
                        continue
                    q_rps = q_us = ""
                    if s is not base and base:
                        q_rps = _ratio(s["txn_per_s"], base["txn_per_s"])
                        q_us = _ratio(s["server_us_per_txn"], base["server_us_per_txn"])
                    print(f"  {r['server']:<11} {label:<7} {s['txn_per_s']:>9,.0f} {s['rps']:>9,.0f} "
                          f"{fmt_us(s['server_us_per_txn']):>10} {s['server_cpu_pct']:>7.0f}% "
                          f"{s['client_cpu_pct']:>7.0f}% {s['machine_busy_pct']:>7.0f}% "
                          f"{s['background_busy_pct']:>6.0f}% {s['errors']:>6}  {q_rps:>14} {q_us:>15}")
                    for err in s["error_samples"]:
                        print(f"      ! {err}")
            print(f"  plain: {per_plain} request(s) = one 'transaction'; txn: {per_txn} requests per transaction")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    need = args.memory_connections + 1024 if not args.skip_memory else 4096
    have = servers.raise_nofile(need)
    if not args.skip_memory and have < args.memory_connections + 64:
        log(f"RLIMIT_NOFILE is {have}: lowering --memory-connections to {have - 64}")
        args.memory_connections = have - 64
    server_nofile = max(need, 4096)

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    tversion = servers.tarantool_version(args.tarantool)
    plan: list[servers.ServerProc] = []
    if not args.skip_tarantool:
        plan.append(servers.tarantool_server(args.net_msg_max, server_nofile, args.tarantool,
                                             memtx_memory=args.memtx_memory, keys=args.keys,
                                             wal_mode=args.wal_mode))
    for t in args.threads:
        for tree in [None] + ([args.styx_baseline] if args.styx_baseline else []):
            plan.append(servers.styx_server(t, args.net_msg_max, server_nofile, memtx_memory=args.memtx_memory,
                                            keys=args.keys, wal_mode=args.wal_mode, tree=tree))
    results = []
    t0 = time.monotonic()
    try:
        for srv in plan:
            results.append(bench_server(srv, args))
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        servers.stop_all()
    log(f"total {time.monotonic() - t0:.0f}s")
    print_tables(results, args, tversion)
    if args.json:
        doc = {
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                        "python": platform.python_version(), "tarantool": tversion},
            "config": {k: v for k, v in vars(args).items() if k != "json"},
            "targets": {"ratio": TARGETS, "bytes_per_idle_conn": MEMORY_TARGET, "bytes_per_tuple": None},
            "results": results,
        }
        text = json.dumps(doc, indent=2)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
    errors = sum(s["errors"] for r in results for s in r["scenarios"].values()) + \
        sum(r["memory"]["errors"] for r in results if r["memory"]) + \
        sum(r["tuples"]["errors"] for r in results if r["tuples"]) + \
        sum(len(r["failures"]) for r in results) + \
        sum(s["errors"] for r in results for s in styx_only_loads(r))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
