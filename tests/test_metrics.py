"""`--metrics-listen`: an HTTP scrape of /metrics that prometheus-client's
own parser reads back, with box.stat, box.stat.net per thread, memory,
fibers, transactions, the WAL and request latency histograms."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import tarantool
from prometheus_client.parser import text_string_to_metric_families

from tests.walkit import WAL_APP


def scrape(server: Any) -> dict[str, Any]:
    host, port = server.metrics.address[:2]
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=10) as r:
        assert r.headers["Content-Type"].startswith("text/plain; version=")
        text = r.read().decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def value(families: dict[str, Any], name: str, **labels: str) -> float:
    fam = families[name]
    for s in fam.samples:
        if s.name == name + ("_total" if fam.type == "counter" else "") and all(
                s.labels.get(k) == v for k, v in labels.items()):
            return float(s.value)
    raise KeyError((name, labels))


@pytest.mark.parametrize("threads", [0, 2])
def test_a_scrape_reads_back(make_server: Any, tmp_path: Path, threads: int) -> None:
    server = make_server(app=WAL_APP, metrics_listen="127.0.0.1:0", iproto_threads=threads,
                         wal_mode="write", work_dir=str(tmp_path))
    c = tarantool.Connection("127.0.0.1", server.port)
    for k in range(10):
        c.replace("kv", (k, "v"))
    c.select("kv", 1)
    c.ping()
    before = scrape(server)
    for k in range(5):
        c.replace("kv", (k, "w"))
    after = scrape(server)
    c.close()
    assert value(after, "styx_requests", type="REPLACE") - value(before, "styx_requests", type="REPLACE") == 5
    nthreads = max(threads, 1)
    assert sum(value(after, "styx_net_connections_current", thread=str(i)) for i in range(nthreads)) >= 1
    assert sum(value(after, "styx_net_requests", thread=str(i)) for i in range(nthreads)) >= 17
    assert value(after, "styx_memtx_used_bytes") > 0 and value(after, "styx_memtx_limit_bytes") == 256 << 20
    assert value(after, "styx_fibers") == 0 and value(after, "styx_txn_conflicts") == 0
    assert value(after, "styx_wal_rows") >= 15 and value(after, "styx_wal_failures") == 0
    hist = after["styx_request_duration_seconds"]
    assert hist.type == "histogram"
    counts = {(s.labels["type"], s.labels["thread"]): s.value for s in hist.samples
              if s.name.endswith("_count")}
    assert sum(v for (t, _), v in counts.items() if t == "REPLACE") == 15
    assert sum(v for (t, _), v in counts.items() if t == "SELECT") >= 1
    infs = [s.value for s in hist.samples if s.name.endswith("_bucket") and s.labels["le"] == "+Inf"
            and s.labels["type"] == "REPLACE"]
    assert sum(infs) == 15  # every request is in some bucket


def test_only_get_metrics(make_server: Any) -> None:
    server = make_server(metrics_listen="127.0.0.1:0")
    host, port = server.metrics.address[:2]
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"http://{host}:{port}/other", timeout=10)
    assert e.value.code == 404
    assert "styx_requests" in scrape(server)
