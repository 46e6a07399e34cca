"""The river's cost (issue 12): throughput with and without a viewer.

One Styx server with `--river-listen`, one load (bench/run.py's run_load:
raw sockets, every reply checked), alternating rounds without a viewer and
with one, on the same server process so that nothing but the viewer
differs. Prints each round and the medians; exit 1 if a reply was wrong.

The viewer is, by default, an SSE client reading /events as the page does
(the server does the same work for any viewer; the browser's drawing is in
its own process and would take the load generator's CPU on a small
machine, which is not the server's cost). `--viewer browser` uses headless
chromium on the page itself.

    .venv/bin/python bench/river.py                       # PING 16 x 16, t=0, 3 rounds of 3 s
    .venv/bin/python bench/river.py --scenario call --threads 1 --rounds 5
    .venv/bin/python bench/river.py --baseline /tmp/old    # and a tree without the river, no viewer

`--baseline TREE` adds a third mode to each round: the Styx of TREE (a
checkout of the commit before the river) on the same load, to see what the
river's always-on counters cost when nobody watches.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))

import servers  # noqa: E402 - after the sys.path entry that makes it importable
from run import run_load  # noqa: E402


class SseViewer:
    """Reads the page's event stream in a thread, as a browser would."""

    def __init__(self, url: str) -> None:
        self.samples = 0
        self._stop = threading.Event()
        self._resp = urllib.request.urlopen(url + "events", timeout=10)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                line = self._resp.readline()
                if not line:
                    return
                if line.startswith(b"data: "):
                    self.samples += 1
        except (OSError, ValueError, AttributeError):
            pass  # closed under the reader by close(): http.client has no clean way to stop a read

    def close(self) -> None:
        self._stop.set()
        self._resp.close()
        self._thread.join(5)


class BrowserViewer:
    """Headless chromium on the page (Selenium)."""

    def __init__(self, url: str) -> None:
        from selenium import webdriver

        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
            options.add_argument(arg)
        self.driver = webdriver.Chrome(options=options,
                                       service=webdriver.ChromeService(executable_path="/usr/bin/chromedriver"))
        self.driver.get(url)
        self.samples = -1  # not counted

    def close(self) -> None:
        self.driver.quit()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenario", default="ping", choices=("ping", "call", "select"))
    p.add_argument("--threads", type=int, default=0, help="--iproto-threads")
    p.add_argument("--conns", type=int, default=16)
    p.add_argument("--inflight", type=int, default=16)
    p.add_argument("--procs", type=int, default=1, help="load generator processes")
    p.add_argument("--rounds", type=int, default=3, help="pairs of (no viewer, viewer)")
    p.add_argument("--duration", type=float, default=3.0)
    p.add_argument("--warmup", type=float, default=0.5)
    p.add_argument("--viewer", default="sse", choices=("sse", "browser"))
    p.add_argument("--baseline", metavar="TREE", help="also run this source tree's Styx (no river), no viewer")
    args = p.parse_args(argv)

    root = str(Path(__file__).resolve().parent.parent)
    srv = servers.styx_server(args.threads, 768, 4096, tree=root)
    river_port = servers.free_port()
    srv.argv += ["--river-listen", f"127.0.0.1:{river_port}"]
    srv.label = f"styx t={args.threads}"
    url = f"http://127.0.0.1:{river_port}/"
    results: dict[str, list[dict[str, Any]]] = {"none": [], "viewer": []}
    base = None
    if args.baseline:
        base = servers.styx_server(args.threads, 768, 4096, tree=args.baseline)
        base.label = f"base t={args.threads}"
        base.start()
        results["base"] = []
    errors = 0
    with srv.start():
        print(f"{args.scenario}, {args.conns} conn x {args.inflight} in flight, {srv.label}, "
              f"viewer: {args.viewer}, {args.rounds} rounds of {args.duration} s", flush=True)
        modes = list(results)
        for r in range(args.rounds):
            # Each round starts with the next mode: no mode always runs first
            # (the machine's other tenants come and go).
            for mode in modes[r % len(modes):] + modes[:r % len(modes)]:
                viewer: Any = None
                if mode == "viewer":
                    viewer = SseViewer(url) if args.viewer == "sse" else BrowserViewer(url)
                    time.sleep(0.5)
                try:
                    res = run_load(base if mode == "base" else srv, args.scenario, args.conns, args.inflight,
                                   args.procs, args.warmup, args.duration)
                finally:
                    if viewer is not None:
                        viewer.close()
                        time.sleep(0.3)
                errors += res["errors"]
                results[mode].append(res)
                seen = f", {viewer.samples} samples seen" if viewer is not None and viewer.samples >= 0 else ""
                print(f"  round {r + 1} {mode:6}: {res['rps']:9.0f} req/s, "
                      f"server {res['server_us_per_req']:.2f} us/req{seen}", flush=True)
    if base is not None:
        base.stop()
    med = {m: statistics.median(x["rps"] for x in v) for m, v in results.items()}
    cpu = {m: statistics.median(x["server_us_per_req"] for x in v) for m, v in results.items()}
    drop = (1 - med["viewer"] / med["none"]) * 100
    # Under this load TX is at 100% of a core, so its rate is 1 / its CPU per
    # request: the drop that figure implies moves less with the machine's
    # other tenants than the measured rates do.
    print(f"median: {med['none']:.0f} req/s without a viewer, {med['viewer']:.0f} with one: "
          f"{drop:+.1f}% drop; server CPU {cpu['none']:.2f} -> {cpu['viewer']:.2f} us/req "
          f"({(1 - cpu['none'] / cpu['viewer']) * 100:+.1f}% in the rate it allows)")
    if "base" in med:
        print(f"baseline tree, no river: {med['base']:.0f} req/s, server CPU {cpu['base']:.2f} us/req "
              f"(this tree without a viewer: {(med['none'] / med['base'] - 1) * 100:+.1f}%)")
    if errors:
        print(f"{errors} wrong or missing replies", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
