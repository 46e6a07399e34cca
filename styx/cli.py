"""`styx serve [APP] --listen 127.0.0.1:3301 ...`: options named after box.cfg.

A mistake in the command line, the listen address or the app ends in one
line on stderr that names the value, and exit code 2 (argparse's own
convention); never in a traceback through Styx.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import logging.handlers
import sys

from . import __version__, console
from .server import Config, ConfigError, Server
from .tx.app import AppError
from .wal import WAL_MODES

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    defaults = Config()
    p = argparse.ArgumentParser(prog="styx", description="Tarantool's IPROTO server, in Python.")
    p.add_argument("--version", action="version", version=f"styx {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="serve IPROTO, calling the functions of APP",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    s.add_argument("app", nargs="?",
                   help="a Python file, or a module (package.module), whose public functions are callable; "
                        "or a Tarantool init script (.lua), whose box.cfg{} options apply unless given here")
    s.add_argument("--listen", default=defaults.listen, help="host:port, port or unix/:/path")
    s.add_argument("--iproto-threads", type=int, default=defaults.iproto_threads,
                   help="iproto threads; 0 runs the net role in TX's own loop")
    s.add_argument("--net-msg-max", type=int, default=defaults.net_msg_max,
                   help="requests in flight per iproto thread before input stops")
    s.add_argument("--readahead", type=int, default=defaults.readahead,
                   help="input buffer size and read chunk, bytes")
    s.add_argument("--net-obuf-max", type=int, default=defaults.net_obuf_max,
                   help="stop reading a connection with this many unsent output bytes")
    s.add_argument("--net-reply-max", type=int, default=defaults.net_reply_max,
                   help="the largest CALL reply, bytes; a bigger one is an error")
    s.add_argument("--memtx-memory", type=int, default=defaults.memtx_memory,
                   help="bytes all tuples may take (box.cfg.memtx_memory)")
    s.add_argument("--shutdown-timeout", type=float, default=defaults.shutdown_timeout,
                   help="seconds in-flight requests get on SIGTERM")
    s.add_argument("--wal-mode", default="write", choices=WAL_MODES,
                   help="write (the default, as Tarantool's): every change is in the WAL before its reply, "
                        "and comes back at start; fsync: and synced; none: nothing is written")
    s.add_argument("--work-dir", default=defaults.work_dir, help="where the WAL goes unless --wal-dir says")
    s.add_argument("--wal-dir", default=None, help="the WAL's directory (default: --work-dir)")
    s.add_argument("--wal-max-size", type=int, default=defaults.wal_max_size,
                   help="bytes after which the WAL goes on in a new xlog")
    s.add_argument("--memtx-dir", default=None, help="snapshots' directory (default: --work-dir)")
    s.add_argument("--checkpoint-interval", type=float, default=defaults.checkpoint_interval,
                   help="seconds between checkpoints (snapshots); 0: only box.snapshot()")
    s.add_argument("--checkpoint-count", type=int, default=defaults.checkpoint_count,
                   help="snapshots kept (with the xlogs they need)")
    s.add_argument("--force-recovery", action="store_true",
                   help="start even if the WAL is damaged: skip what cannot be read, and say so")
    s.add_argument("--instance-uuid", default=None)
    s.add_argument("--no-uvloop", action="store_true", help="use asyncio's own event loop")
    s.add_argument("--admin-socket", default=None, metavar="PATH",
                   help="a unix socket for `styx console PATH`: a Python REPL inside TX with box "
                        "(whoever may open the socket file is admin)")
    s.add_argument("--metrics-listen", default=None, metavar="HOST:PORT",
                   help="serve Prometheus metrics on http://HOST:PORT/metrics")
    s.add_argument("--river-listen", default=None, metavar="HOST:PORT",
                   help="serve a live page of the threads, pipes and buffers on http://HOST:PORT/ "
                        "(needs aiohttp: styx-iproto[river])")
    s.add_argument("--log", default=None, metavar="FILE",
                   help="log to FILE instead of stderr; SIGHUP reopens it (logrotate)")
    s.add_argument("--log-level", default="INFO", type=str.upper, choices=LOG_LEVELS,
                   help="DEBUG adds connections opened and closed; INFO start, stop, checkpoints and "
                        "recovery; WARNING failed logins, procedures' exceptions, slow procedures")
    s.add_argument("--log-format", default="plain", choices=("plain", "json"),
                   help="json: one object per line (time, level, thread, logger, message, exception)")
    r = sub.add_parser("river", help="the river's pictures (see also serve --river-listen)")
    rsub = r.add_subparsers(dest="river_command", required=True)
    rec = rsub.add_parser("record", help="drive a scripted run against a real server and write an animated SVG",
                          formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    rec.add_argument("out", metavar="OUT.svg", help="the SVG to write")
    rec.add_argument("--iproto-threads", type=int, default=1, choices=(0, 1),
                     help="the server's iproto threads (the picture shows one)")
    rec.add_argument("--parts", action="store_true",
                     help="also write OUT-kharon.svg, OUT-ibuf.svg and OUT-obuf.svg, the seed's three pictures")
    c = sub.add_parser("console", help="a Python REPL inside a running server (its --admin-socket)")
    c.add_argument("path", metavar="PATH", help="the server's --admin-socket")
    return p


class JsonFormatter(logging.Formatter):
    """--log-format json: one JSON object per line, for log collectors."""

    def format(self, record: logging.LogRecord) -> str:
        out = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
               "level": record.levelname, "thread": record.threadName, "logger": record.name,
               "message": record.getMessage()}
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def _given(parser: argparse.ArgumentParser, args: argparse.Namespace) -> frozenset[str]:
    """The options the command line set to other than their defaults: an
    init script's box.cfg{} does not override those."""
    defaults = vars(parser.parse_args(["serve"]))
    return frozenset(k for k, v in vars(args).items() if k in defaults and defaults[k] != v)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "console":
        return console.main(args.path)
    if args.command == "river":
        return _river(args)
    try:
        handler: logging.Handler = (logging.handlers.WatchedFileHandler(args.log) if args.log
                                    else logging.StreamHandler())
    except OSError as e:
        parser.error(f"--log {args.log}: {e.strerror}")
    if args.log_format == "json":
        handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=args.log_level, handlers=[handler],
                        format="%(asctime)s %(threadName)s %(levelname)s %(name)s: %(message)s")
    try:
        config = Config(
            listen=args.listen,
            app=args.app,
            iproto_threads=args.iproto_threads,
            net_msg_max=args.net_msg_max,
            readahead=args.readahead,
            net_obuf_max=args.net_obuf_max,
            net_reply_max=args.net_reply_max,
            memtx_memory=args.memtx_memory,
            shutdown_timeout=args.shutdown_timeout,
            instance_uuid=args.instance_uuid,
            use_uvloop=not args.no_uvloop,
            wal_mode=args.wal_mode,
            work_dir=args.work_dir,
            wal_dir=args.wal_dir,
            wal_max_size=args.wal_max_size,
            force_recovery=args.force_recovery,
            memtx_dir=args.memtx_dir,
            checkpoint_interval=args.checkpoint_interval,
            checkpoint_count=args.checkpoint_count,
            admin_socket=args.admin_socket,
            metrics_listen=args.metrics_listen,
            river_listen=args.river_listen,
            given=_given(parser, args),
        )
        # The process is the server's, so it may tune the collector: a write's
        # objects live until its reply, past the WAL's write, and with
        # Python's default (a young collection every 700 allocations) each
        # collection walks a few hundred live requests. 20,000 measured
        # 15.9 -> 13.2 us of server CPU per REPLACE with the WAL on, 8.3 ->
        # 7.2 without; reads unchanged.
        gc.set_threshold(20_000, 10, 10)
        Server(config).run()
    except (ConfigError, AppError) as e:
        print(f"styx: {e}", file=sys.stderr)
        return 2
    return 0


def _river(args: argparse.Namespace) -> int:
    """`styx river record OUT.svg`: the scenario of styx/river/record.py."""
    from pathlib import Path

    try:
        from .river.record import record
    except ImportError as e:
        print(f"styx: river needs aiohttp ({e}): pip install 'styx-iproto[river]'", file=sys.stderr)
        return 2
    logging.basicConfig(level="WARNING", format="%(asctime)s %(threadName)s %(levelname)s %(name)s: %(message)s")
    for path in record(Path(args.out), iproto_threads=args.iproto_threads, parts=args.parts):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
