"""The river (issue 12): `--river-listen` serves a live page of the server's
threads, pipes and buffers. Real servers on real sockets, and the page in a
real browser: Debian's headless chromium driven by Selenium (one browser for
the whole module: starting it costs a second or two)."""

from __future__ import annotations

import json
import shutil
import socket
import struct
import subprocess
import sys
import time
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import msgpack
import pytest
import tarantool

from styx import Server
from styx.server import ConfigError

from .spawn import free_port

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402 - after the skip
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        pytest.fail("Debian's chromium and chromium-driver are required (make test installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,1000"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    b = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver))
    try:
        yield b
    finally:
        b.quit()


def river_url(server: Server, path: str = "/") -> str:
    host, port = server.river.address[:2]
    return f"http://{host}:{port}{path}"


def snapshot(server: Server) -> dict[str, Any]:
    with urllib.request.urlopen(river_url(server, "/snapshot"), timeout=10) as r:
        return json.loads(r.read())


def text(browser: Any, element_id: str) -> str:
    return str(browser.find_element(By.ID, element_id).text)


def console_errors(browser: Any) -> list[dict[str, Any]]:
    return [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]


@pytest.mark.parametrize("threads", [0, 1, 2])
def test_page_shows_the_threads_the_server_has(browser: Any, make_server: Callable[..., Server],
                                               threads: int) -> None:
    server = make_server(iproto_threads=threads, river_listen="127.0.0.1:0")
    browser.get(river_url(server))
    WebDriverWait(browser, 10).until(lambda b: text(b, "status") == "live")
    shown = sorted(e.get_attribute("data-thread") for e in browser.find_elements(By.CSS_SELECTOR, ".thread"))
    assert shown == sorted(["tx"] + [f"net{i}" for i in range(max(1, threads))])
    assert text(browser, "threads-label").startswith(f"iproto_threads = {threads}:")
    if threads == 0:
        assert "in TX's own loop" in browser.find_element(By.CSS_SELECTOR, "[data-thread=net0]").text
    assert console_errors(browser) == []


def test_counts_grow_with_requests(browser: Any, make_server: Callable[..., Server]) -> None:
    """1,000 PINGs: the page's count of requests grows by exactly 1,000, and
    the pipe from net to TX carried at least as many messages."""
    server = make_server(iproto_threads=1, river_listen="127.0.0.1:0")
    conn = tarantool.Connection("127.0.0.1", server.port)
    try:
        browser.get(river_url(server))
        # What the connector sent on connecting is counted before we start.
        settled = snapshot(server)["nets"][0]["requests"]
        WebDriverWait(browser, 10).until(lambda b: text(b, "count-requests") == str(settled))
        before_pipe = int(text(browser, "pipe-up-0"))
        for _ in range(1000):
            conn.ping()
        WebDriverWait(browser, 10).until(lambda b: text(b, "count-requests") == str(settled + 1000))
        assert int(text(browser, "pipe-up-0")) >= before_pipe + 1000
        assert int(text(browser, "pipe-down-0")) >= before_pipe + 1000
        # The connection's own panel counts them too.
        panel = browser.find_element(By.CSS_SELECTOR, "#conn-list .conn h3").text
        assert f"{settled + 1000} requests" in panel
        assert console_errors(browser) == []
    finally:
        conn.close()


# Counts the boats as they are launched, by lane (a boat marked ×N counts N).
COUNT_BOATS = """
window.boats = {down: [], up: []};
new MutationObserver(records => {
  for (const r of records)
    for (const n of r.addedNodes)
      if (n.classList && n.classList.contains("boat")) window.boats[n.dataset.lane].push(+n.dataset.count);
}).observe(document.getElementById("river"), {childList: true, subtree: true});
"""


def test_one_boat_per_message_and_aggregated_when_many(browser: Any, make_server: Callable[..., Server]) -> None:
    """One PING: one boat each way. 200 PINGs in one write: the boats that
    sail carry 200 each way, most of them in boats that carry many."""
    server = make_server(iproto_threads=1, river_listen="127.0.0.1:0")
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.settimeout(10)
        assert len(recv_exactly(sock, 128)) == 128  # the greeting: the connection is made
        browser.get(river_url(server))
        WebDriverWait(browser, 10).until(lambda b: text(b, "status") == "live")
        time.sleep(0.6)  # two samples: the connection's own messages have sailed
        browser.execute_script(COUNT_BOATS)
        sock.sendall(ping(1))
        read_reply(sock)
        WebDriverWait(browser, 10).until(lambda b: b.execute_script("return window.boats.up.length"))
        time.sleep(0.6)
        assert browser.execute_script("return window.boats") == {"down": [1], "up": [1]}

        browser.execute_script("window.boats = {down: [], up: []};")
        sock.sendall(b"".join(ping(sync) for sync in range(2, 202)))
        for _ in range(200):
            read_reply(sock)
        WebDriverWait(browser, 10).until(lambda b: sum(b.execute_script("return window.boats.up")) >= 200)
        time.sleep(0.6)
        boats = browser.execute_script("return window.boats")
        assert sum(boats["down"]) == sum(boats["up"]) == 200
        assert max(boats["up"]) > 6 and max(boats["down"]) > 6
    assert console_errors(browser) == []


def ping(sync: int) -> bytes:
    body = msgpack.packb({0x00: 0x40, 0x01: sync})  # {TYPE: PING, SYNC: sync}
    return b"\xce" + struct.pack(">I", len(body)) + body


def read_reply(sock: socket.socket) -> bytes:
    head = recv_exactly(sock, 5)
    return recv_exactly(sock, struct.unpack(">I", head[1:])[0])


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, "the server closed the connection"
        data += chunk
    return data


def test_pick_a_connection(browser: Any, make_server: Callable[..., Server]) -> None:
    """Six connections: the page shows the busiest four; the viewer picks
    the quiet one from the list and sees that one alone."""
    server = make_server(iproto_threads=1, river_listen="127.0.0.1:0")
    conns = [tarantool.Connection("127.0.0.1", server.port) for _ in range(6)]
    try:
        for c in conns[1:]:
            for _ in range(30):
                c.ping()
        quiet = min(cid for cid, _ in snapshot(server)["nets"][0]["ids"])  # the first to connect
        browser.get(river_url(server))
        WebDriverWait(browser, 10).until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#conn-list .conn")) == 4)
        shown = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#conn-list .conn h3")]
        assert not any(h.startswith(f"net0 #{quiet} ") for h in shown)
        Select(browser.find_element(By.ID, "pick")).select_by_value(f"0:{quiet}")
        WebDriverWait(browser, 10).until(
            lambda b: [e.text.split(" ")[:2] for e in b.find_elements(By.CSS_SELECTOR, "#conn-list .conn h3")]
            == [["net0", f"#{quiet}"]])
        assert console_errors(browser) == []
    finally:
        for c in conns:
            c.close()


def test_screenshot_is_not_blank(browser: Any, make_server: Callable[..., Server]) -> None:
    server = make_server(iproto_threads=2, river_listen="127.0.0.1:0")
    conn = tarantool.Connection("127.0.0.1", server.port)
    try:
        browser.get(river_url(server))
        WebDriverWait(browser, 10).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#conn-list .conn"))
        # The picture (the river and the counts): decoding the whole window in
        # Python would take seconds.
        width, height, pixels = decode_png(browser.find_element(By.TAG_NAME, "main").screenshot_as_png)
        assert browser.get_screenshot_as_png()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        conn.close()
    assert width >= 700 and height >= 300
    colors: dict[bytes, int] = {}
    for i in range(0, len(pixels), 4 * 7):  # every 7th pixel is plenty
        px = pixels[i:i + 3]
        colors[px] = colors.get(px, 0) + 1
    background = max(colors.values())
    assert len(colors) > 20, "a blank page has a handful of colors"
    assert background < 0.9 * sum(colors.values()), "one color covers nearly everything"


def test_no_viewer_no_sampling(make_server: Callable[..., Server]) -> None:
    """Free when not watched: without a viewer the sampler never runs; a
    viewer starts it, and when the viewer leaves it stops."""
    server = make_server(iproto_threads=1, river_listen="127.0.0.1:0")
    conn = tarantool.Connection("127.0.0.1", server.port)
    try:
        for _ in range(200):
            conn.ping()
        time.sleep(0.3)
        assert server.river.samples == 0
        with urllib.request.urlopen(river_url(server, "/events"), timeout=10) as r:
            first = json.loads(r.readline().removeprefix(b"data: "))
            assert r.readline() == b"\n"
            second = json.loads(r.readline().removeprefix(b"data: "))
        assert first["nets"][0]["requests"] >= 200 and second["t"] > first["t"]
        deadline = time.monotonic() + 5
        while server.river.viewers and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not server.river.viewers
        time.sleep(0.3)
        taken = server.river.samples
        time.sleep(0.5)
        assert server.river.samples == taken > 0
    finally:
        conn.close()


def test_river_listen_errors(make_server: Callable[..., Server]) -> None:
    with pytest.raises(ConfigError, match="river_listen 'unix/:/tmp/x': expected HOST:PORT"):
        make_server(river_listen="unix/:/tmp/x")
    first = make_server(river_listen="127.0.0.1:0")
    with pytest.raises(ConfigError, match="cannot serve the river on"):
        make_server(river_listen=f"127.0.0.1:{first.river.address[1]}")


def test_cli_river_listen(tmp_path: Any) -> None:
    """`styx serve --river-listen`: the page answers, and SIGTERM stops the
    server cleanly with a viewer still connected."""
    port, river = free_port(), free_port()
    proc = subprocess.Popen([sys.executable, "-m", "styx", "serve", "--listen", f"127.0.0.1:{port}",
                             "--wal-mode", "none", "--river-listen", f"127.0.0.1:{river}"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                events = urllib.request.urlopen(f"http://127.0.0.1:{river}/events", timeout=10)
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        assert json.loads(events.readline().removeprefix(b"data: "))["iproto_threads"] == 0
        proc.terminate()
        out, _ = proc.communicate(timeout=15)
        events.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out
    assert "the river on http://127.0.0.1:" in out and "Traceback" not in out


def decode_png(data: bytes) -> tuple[int, int, bytes]:
    """Chromium's screenshot (8-bit RGBA or RGB, not interlaced) as RGBA rows."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", chunk)
            assert depth == 8 and color in (2, 6) and interlace == 0
            bpp = 4 if color == 6 else 3
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    out = bytearray()
    prev = bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        prev = line
        if bpp == 4:
            out += line
        else:
            out += b"".join(bytes(line[i:i + 3]) + b"\xff" for i in range(0, stride, 3))
    return width, height, bytes(out)
