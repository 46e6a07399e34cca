"""`styx river record`: the seed's pictures, from a real run (issue 12).

The command runs its scenario against a real server over a real socket;
here its SVGs are checked for what that run must have shown: every phase,
and in each the state the seed's picture is about (read from the frames'
data attributes, which carry the sampled figures the frame draws)."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytest.importorskip("aiohttp")

SVG = "{http://www.w3.org/2000/svg}"


def frames(path: Path) -> list[dict[str, str]]:
    root = ET.parse(path).getroot()
    assert root.tag == SVG + "svg"
    out = []
    for g in root.iter(SVG + "g"):
        if g.get("class") == "frame":
            assert g.find(SVG + "animate") is not None, "every frame takes its turn"
            out.append(dict(g.attrib))
    return out


def pair(value: str) -> tuple[int, int]:
    a, b = value.split(",")
    return int(a), int(b)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("river") / "river.svg"
    proc = subprocess.run([sys.executable, "-m", "styx", "river", "record", str(out), "--parts"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "ERROR" not in proc.stderr, proc.stderr
    parts = [str(out.with_name(f"river-{p}.svg")) for p in ("kharon", "ibuf", "obuf")]
    assert proc.stdout.split() == [str(out), *parts]
    return out


def test_every_phase_in_order(recorded: Path) -> None:
    phases = [f["data-phase"] for f in frames(recorded)]
    seen = list(dict.fromkeys(phases))
    assert seen == ["one request", "a pipelined burst", "ibuf rotation", "a slow reader", "the Kharon"]
    requests = [int(f["data-requests"]) for f in frames(recorded)]
    assert requests == sorted(requests) and requests[-1] == 1 + 200 + 30 + 24 + 1


def test_one_request_and_the_burst(recorded: Path) -> None:
    fs = frames(recorded)
    one = [f for f in fs if f["data-phase"] == "one request"]
    assert any(f["data-in-flight"] == "1" for f in one), "the sleeping request is seen in flight"
    burst = [f for f in fs if f["data-phase"] == "a pipelined burst"]
    assert max(int(f["data-up"]) for f in burst) > 6, "a burst sails as one boat with its number"
    assert "×" in recorded.read_text(encoding="utf-8")


def test_ibuf_rotation(recorded: Path) -> None:
    fs = frames(recorded.with_name("river-ibuf.svg"))
    assert {f["data-phase"] for f in fs} == {"ibuf rotation"}
    both = [f for f in fs if min(pair(f["data-ibuf-inflight"])) > 0]
    assert both, "both ibufs hold requests in flight at once"
    assert any(int(f["data-queued"]) > 0 for f in fs), "the stream's requests wait in net"
    assert any(max(pair(f["data-ibuf-inflight"])) == 0 for f in fs[len(fs) // 2:]), "and are freed"


def test_obuf_positions(recorded: Path) -> None:
    fs = frames(recorded.with_name("river-obuf.svg"))
    assert {f["data-phase"] for f in fs} == {"a slow reader"}
    behind = [f for f in fs if f["data-wpos"] != f["data-wend"]]
    assert behind, "written (wpos) trails announced (wend) while the client does not read"
    assert any(int(f["data-stopped"]) for f in behind), "and input stops"
    assert fs[-1]["data-wpos"] == fs[-1]["data-wend"], "until the client has read it all"


def test_kharon(recorded: Path) -> None:
    fs = frames(recorded.with_name("river-kharon.svg"))
    assert {f["data-phase"] for f in fs} == {"the Kharon"}
    # Six pushes 50 ms apart: a trip each, unless a push finds him still on
    # the river (then it rides his next trip).
    assert 2 <= sum(int(f["data-kharon"]) for f in fs) <= 6
    assert any(f["data-wpos"] != f["data-wend"] for f in fs), "news of data not yet written"
