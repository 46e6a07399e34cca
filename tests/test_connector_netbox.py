"""net.box from Debian's Tarantool 2.6 against Styx, in every iproto thread mode.

Each test runs one scenario of tests/lua/netbox_client.lua in a `tarantool`
subprocess; the script prints one JSON line of observations, asserted here.
net.box 2.6 sends no IPROTO_ID (it predates it), AUTHs with a chap-sha1
scramble as a msgpack str, and loads the schema (_vspace, _vindex,
_vcollation) before the connection becomes active."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).parent / "lua" / "netbox_client.lua"
AUTH_FAILED = "User not found or supplied credentials are invalid"
ER_NO_CONNECTION = 77


def netbox(tarantool_bin: str, scenario: str, port: int) -> dict[str, Any]:
    proc = subprocess.run(
        [tarantool_bin, str(SCRIPT), scenario, str(port)],
        capture_output=True, text=True, timeout=30,
    )
    assert proc.returncode == 0, f"net.box script failed:\n{proc.stdout}\n{proc.stderr}"
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert len(lines) == 1, proc.stdout
    return json.loads(lines[0])


def test_connect_guest_schema_ping_call(server, tarantool_bin):
    r = netbox(tarantool_bin, "basic", server.port)
    assert r["state"] == "active", r.get("error")
    assert "error" not in r
    assert r["peer_version_id"] == (3 << 16)  # the greeting's 3.0.0
    assert r["schema_version"] == server.tx.schema.version
    assert r["ping"] is True
    # The schema net.box loaded at connect: system views by name, with indexes.
    assert r["has_vspace"] is True
    assert (r["vspace_id"], r["vindex_id"], r["vcollation_id"]) == (281, 289, 277)
    assert r["vspace_index_name_id"] == 2
    # Return shapes: several values, one, none.
    assert r["echo"] == [1, "a"] and r["echo_n"] == 2
    assert r["echo_mixed"] == [[1, 2], {"k": "v"}, 2.5, True]
    assert r["one"] == [5]
    assert r["nothing_n"] == 0
    assert r["sum"] == 5
    user, sid = r["whoami"]
    assert user == "guest" and isinstance(sid, int) and sid > 0


def test_auth_and_whoami(server, tarantool_bin):
    r = netbox(tarantool_bin, "auth", server.port)
    assert r["state"] == "active", r.get("error")
    assert r["ping"] is True
    assert r["whoami"][0] == "test"
    assert r["guest_whoami"][0] == "guest"
    assert r["whoami"][1] != r["guest_whoami"][1]  # two sessions
    assert r["echo"] == ["x", 7]


def test_wrong_password_and_unknown_user(server, tarantool_bin):
    r = netbox(tarantool_bin, "bad_auth", server.port)
    for case in ("wrong_password", "unknown_user"):
        c = r[case]
        assert c["state"] == "error", (case, c)
        assert c["error"] == AUTH_FAILED, (case, c)
        assert c["is_connected"] is False
        call = c["call"]
        assert call["ok"] is False
        assert call["message"] == AUTH_FAILED
        assert call["code"] == ER_NO_CONNECTION


def test_errors(server, tarantool_bin):
    r = netbox(tarantool_bin, "errors", server.port)
    # A Python exception keeps its code (32) and its class name as the type.
    assert r["fail"] == {"ok": False, "message": "ValueError: boom", "code": 32,
                         "type": "ValueError"}
    assert r["fail_box"] == {"ok": False, "message": "msg", "code": 1000, "type": "ClientError"}
    assert r["unknown"] == {"ok": False, "message": "Procedure 'x' is not defined",
                            "code": 33, "type": "ClientError"}
    # The connection survives the errors.
    assert r["ping_after"] is True
    assert r["echo_after"] == [42]


def test_pushes(server, tarantool_bin):
    r = netbox(tarantool_bin, "push", server.port)
    assert r["result"] == "done"
    assert r["pushes"] == [{"step": 0}, {"step": 1}, {"step": 2}]
    assert r["ctxs"] == ["ctx", "ctx", "ctx"]  # on_push_ctx handed to each callback
    # An async procedure pushing between sleeps.
    assert r["slow_result"] == 3
    assert r["slow_pushes"] == [0, 1, 2]
    # future:pairs() yields the pushes, then the final result.
    assert r["future_seen"] == [{"step": 0}, {"step": 1}, ["done"]]
    assert r["future_result"] == ["done"]


def test_system_space_access(server, tarantool_bin):
    r = netbox(tarantool_bin, "space", server.port)
    names = r["vspace_names"]
    assert r["vspace_count"] == len(names) > 0
    for name in ("_vspace", "_vindex", "_vcollation"):
        assert name in names
    row = r["vspace_row"]
    assert row[:4] == [281, 1, "_vspace", "sysview"]
    assert [f["name"] for f in row[6]] == ["id", "owner", "name", "engine",
                                           "field_count", "flags", "format"]
    assert r["get_289"][:3] == [289, 1, "_vindex"]
    assert r["by_name_id"] == 277
    assert r["vindex_of_vspace"] == ["primary", "owner", "name"]
    assert r["vcollation_names"][:4] == ["none", "unicode", "unicode_ci", "binary"]
    assert r["limit_2"] == 2


def test_many_fibers_concurrent_calls(server, tarantool_bin):
    r = netbox(tarantool_bin, "concurrent", server.port)
    assert r["count"] == 100
    assert r["answered"] == 100
    assert r["mismatched"] == []
    assert r["slept"] == list(range(1, 11))
    # Ten 0.2 s sleeps in parallel: about 0.2 s, far from the 2 s sum.
    assert 0.19 <= r["sleep_elapsed"] < 1.5
