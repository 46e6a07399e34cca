"""Prometheus metrics: `--metrics-listen HOST:PORT` serves `/metrics`.

What it serves: box.stat (requests by type), box.stat.net per iproto
thread, the memtx_memory quota, fibers, transactions' conflicts and read
views, the WAL's counters, and request latency histograms per request type
and iproto thread (from the read of a request to its reply leaving TX).

Why it looks like this: every figure is owned by one thread (TX's counters,
each iproto thread's, the WAL writer's), so a scrape is served in TX's loop:
it asks each thread for its figures by cbus call, as box.stat.net does, and
then has prometheus-client write the exposition from that snapshot (a
custom collector: the values are Styx's own counters, not client-library
metrics updated on the request path). The latency histograms cost a clock
read per batch of requests and one per reply, only while metrics are on.

Risks: a scrape waits for every iproto thread to answer (a thread that
hangs holds it); the HTTP side is the minimum a scraper needs (GET, one
request per connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CollectorRegistry, CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from .net.thread import LATENCY_BUCKETS
from .protocol import constants as C

if TYPE_CHECKING:
    from .tx.thread import Tx

__all__ = ["MetricsServer"]

log = logging.getLogger("styx.metrics")

NET_COUNTERS = {"SENT": "sent_bytes", "RECEIVED": "received_bytes", "CONNECTIONS": "connections",
                "REQUESTS": "requests", "STREAMS": "streams", "REQUESTS_IN_PROGRESS": "requests_in_progress",
                "REQUESTS_IN_STREAM_QUEUE": "requests_in_stream_queue"}


class _Snapshot(Collector):
    """The figures of one scrape, as metric families."""

    def __init__(self, tx: Tx, net: list[dict[str, dict[str, int]]], latency: list[dict[int, list[float]]],
                 wal: dict[str, int] | None) -> None:
        self.tx, self.net, self.latency, self.wal = tx, net, latency, wal

    def collect(self) -> Iterator[Any]:
        tx = self.tx
        requests = CounterMetricFamily("styx_requests", "Requests by type (box.stat)", labels=["type"])
        for name, fields in tx.request_stats().items():
            requests.add_metric([name], fields["total"])
        yield requests
        for key, name in NET_COUNTERS.items():
            total = CounterMetricFamily(f"styx_net_{name}", f"box.stat.net {key}, total", labels=["thread"])
            current = GaugeMetricFamily(f"styx_net_{name}_current", f"box.stat.net {key}, now",
                                        labels=["thread"])
            for i, stats in enumerate(self.net):
                counts = stats.get(key)
                if counts is None:
                    continue
                total.add_metric([str(i)], counts["total"])
                if "current" in counts:
                    current.add_metric([str(i)], counts["current"])
            yield total
            if current.samples:
                yield current
        quota = tx.schema.quota
        yield GaugeMetricFamily("styx_memtx_used_bytes", "Bytes tuples take (memtx_memory's charge)",
                                value=quota.used)
        yield GaugeMetricFamily("styx_memtx_limit_bytes", "memtx_memory", value=quota.limit)
        pool = tx.pool
        yield GaugeMetricFamily("styx_fibers", "Requests running in fibers", value=pool.running if pool else 0)
        txns = tx.schema.txns
        yield CounterMetricFamily("styx_txn_conflicts", "Transactions aborted by a conflict (97)",
                                  value=txns.conflicts)
        yield CounterMetricFamily("styx_txn_read_views", "Transactions sent to a read view",
                                  value=txns.read_views)
        if self.wal is not None:
            for name, value in self.wal.items():
                yield CounterMetricFamily(f"styx_wal_{name}", f"The WAL's {name} written", value=value)
        hist = HistogramMetricFamily("styx_request_duration_seconds",
                                     "From a request's read to its reply leaving TX", labels=["type", "thread"])
        for i, by_type in enumerate(self.latency):
            for rtype, h in sorted(by_type.items()):
                buckets, running = [], 0.0
                for bound, count in zip((*LATENCY_BUCKETS, float("inf")), h[:-1], strict=True):
                    running += count
                    buckets.append(("+Inf" if bound == float("inf") else repr(bound), running))
                hist.add_metric([C.TYPE_NAMES.get(rtype, str(rtype)), str(i)], buckets, h[-1])
        yield hist


class MetricsServer:
    """The HTTP endpoint, in TX's loop."""

    def __init__(self, tx: Tx, host: str, port: int) -> None:
        self.tx, self.host, self.port = tx, host, port
        self.server: asyncio.AbstractServer | None = None
        self.address: Any = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, self.host, self.port)
        self.address = self.server.sockets[0].getsockname()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None

    async def render(self) -> bytes:
        tx = self.tx
        net = await tx.net_stats_threads()
        latency = await tx.net_latency_threads()
        wal = await tx.wal_stats()
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Snapshot(tx, net, latency, wal))
        return generate_latest(registry)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            method, path = (request.split(b" ", 2) + [b"", b""])[:2]
            if method not in (b"GET", b"HEAD"):
                status, body, ctype = b"405 Method Not Allowed", b"GET /metrics\n", b"text/plain"
            elif path.split(b"?")[0] not in (b"/metrics", b"/"):
                status, body, ctype = b"404 Not Found", b"GET /metrics\n", b"text/plain"
            else:
                status, body, ctype = b"200 OK", await self.render(), CONTENT_TYPE_LATEST.encode()
            writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Type: " + ctype + b"\r\nContent-Length: "
                         + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n"
                         + (body if method != b"HEAD" else b""))
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
