"""Watchers on the wire (IPROTO_WATCH/UNWATCH/EVENT/WATCH_ONCE), raw sockets.

The rules (reference §7.13, styx/tx/watchers.py): no reply to WATCH or
UNWATCH; the first EVENT comes at once (no EVENT_DATA for a key never set);
the EVENT header is exactly {REQUEST_TYPE: 76, SYNC: <sync of the latest
WATCH>}; after an EVENT the watcher gets nothing more until it sends WATCH
again, which then brings one EVENT with the newest value if it changed;
WATCH_ONCE is a plain request with no subscription.
"""

from __future__ import annotations

import logging
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import msgpack
import pytest

from tests.iproto import Raw, packet

APP = str(Path(__file__).parent / "apps" / "watch_app.py")

PING, ID, WATCH, UNWATCH, EVENT, WATCH_ONCE = 0x40, 73, 74, 75, 76, 77
EVENT_KEY, EVENT_DATA, DATA, ERROR_24, STREAM_ID = 0x57, 0x58, 0x30, 0x31, 0x0A
QUIET = 0.3  # seconds of silence that mean "nothing was sent"


# -- helpers ------------------------------------------------------------------------------------


def watch(c: Raw, key: str, sync: int) -> None:
    c.request(WATCH, sync, {EVENT_KEY: key})


def unwatch(c: Raw, key: str, sync: int) -> None:
    c.request(UNWATCH, sync, {EVENT_KEY: key})


def event(c: Raw) -> tuple[int, dict[int, Any]]:
    """The next packet, which must be an EVENT with a minimal two-key header;
    returns (sync, body)."""
    h, b = c.reply()
    assert h[0] == EVENT, (h, b)
    assert set(h) == {0, 1}, f"EVENT header must be type and sync only (no schema version): {h}"
    # Minimally encoded, in Tarantool's key order: fixmap(2) {0: 76, 1: sync}.
    assert c.raw_replies[-1][5:].startswith(msgpack.packb({0: EVENT, 1: h[1]})), c.raw_replies[-1]
    return h[1], b


def quiet(c: Raw, seconds: float = QUIET) -> None:
    """Nothing arrives on `c` for `seconds`."""
    c.sock.settimeout(seconds)
    try:
        data = c.sock.recv(65536, socket.MSG_PEEK)
    except TimeoutError:
        return
    finally:
        c.sock.settimeout(10)
    raise AssertionError(f"expected silence, got {data!r}")


def ping(c: Raw, sync: int) -> None:
    """A PING whose reply must be the very next packet."""
    c.request(PING, sync)
    h, b = c.reply()
    assert (h[0], h[1], b) == (0, sync, {}), (h, b)


def bcast(ctl: Raw, key: str, *value: Any) -> None:
    h, b = ctl.call("broadcast", key, *value, sync=900)
    assert (h[0], b) == (0, {DATA: []}), (h, b)


def watchers_of(server: Any, key: str) -> int:
    return server.tx.watchers.watching(key)


def wait_for(cond: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


@pytest.fixture(params=[0, 2], ids=lambda n: f"threads{n}")
def server(request: pytest.FixtureRequest, make_server: Any) -> Any:
    return make_server(app=APP, iproto_threads=request.param)


@pytest.fixture
def ctl(server: Any) -> Any:
    """A second connection that sets values with box.broadcast."""
    with Raw(server.port) as c:
        yield c


# -- WATCH, EVENT -----------------------------------------------------------------------------


def test_watch_gets_no_reply_and_an_event_at_once(server, ctl):
    with Raw(server.port) as c:
        t0 = time.monotonic()
        watch(c, "never.set", 11)
        sync, body = event(c)
        assert time.monotonic() - t0 < 3.0
        # A key never set: EVENT_DATA is absent, not nil.
        assert (sync, body) == (11, {EVENT_KEY: "never.set"})
        quiet(c)  # and no reply to the WATCH itself

        bcast(ctl, "is.set", {"a": [1, 2]})
        watch(c, "is.set", 12)
        assert event(c) == (12, {EVENT_KEY: "is.set", EVENT_DATA: {"a": [1, 2]}})
        quiet(c)

        # UNWATCH, and a WATCH that acknowledges with nothing new, get no
        # reply: the PING after them is answered first and alone.
        unwatch(c, "never.set", 13)
        watch(c, "is.set", 14)
        ping(c, 15)
        quiet(c)
        # UNWATCH of a key never watched: no reply, no error either.
        unwatch(c, "no.such.watch", 16)
        ping(c, 17)
        quiet(c)
    assert server.tx.errors == 0


def test_pipelined_watches_each_get_one_event(server, ctl):
    bcast(ctl, "p2", 2)
    bcast(ctl, "p3", "three")
    with Raw(server.port) as c:
        c.send(b"".join(packet({0: WATCH, 1: 40 + i}, {EVENT_KEY: f"p{i}"}) for i in range(1, 4))
               + packet({0: PING, 1: 50}))
        got = [event(c) for _ in range(3)]
        assert got == [(41, {EVENT_KEY: "p1"}),
                       (42, {EVENT_KEY: "p2", EVENT_DATA: 2}),
                       (43, {EVENT_KEY: "p3", EVENT_DATA: "three"})]
        h, b = c.reply()
        assert (h[0], h[1], b) == (0, 50, {})
        quiet(c)


def test_sync_zero_as_netbox_sends_it(server, ctl):
    with Raw(server.port) as c:
        watch(c, "z", 0)
        assert event(c) == (0, {EVENT_KEY: "z"})
        watch(c, "z", 0)  # the ack
        bcast(ctl, "z", 5)
        assert event(c) == (0, {EVENT_KEY: "z", EVENT_DATA: 5})


def test_ack_and_coalescing(server, ctl):
    with Raw(server.port) as c:
        bcast(ctl, "k", "v0")
        watch(c, "k", 1)
        assert event(c) == (1, {EVENT_KEY: "k", EVENT_DATA: "v0"})
        # Not acknowledged: three new values, nothing delivered.
        for v in ("v1", "v2", "v3"):
            bcast(ctl, "k", v)
        quiet(c, 0.5)
        # The ack brings exactly one EVENT: the newest value, the new sync.
        watch(c, "k", 2)
        assert event(c) == (2, {EVENT_KEY: "k", EVENT_DATA: "v3"})
        quiet(c)
        # Not acknowledged again: one more value waits for the next ack.
        bcast(ctl, "k", "v4")
        quiet(c)
        watch(c, "k", 3)
        assert event(c) == (3, {EVENT_KEY: "k", EVENT_DATA: "v4"})
        # An ack when nothing changed sends nothing...
        watch(c, "k", 4)
        quiet(c)
        # ...but leaves the watcher idle: the next value goes at once, with
        # the sync of that latest WATCH.
        bcast(ctl, "k", "v5")
        assert event(c) == (4, {EVENT_KEY: "k", EVENT_DATA: "v5"})
        quiet(c)
        # Several versions in one TX step, to an idle watcher: the first goes
        # at once, the rest wait for the ack and coalesce to the newest.
        watch(c, "k", 5)
        quiet(c)
        h, b = ctl.call("broadcast_many", "k", ["v6", "v7", "v8"], sync=901)
        assert (h[0], b) == (0, {DATA: []})
        assert event(c) == (5, {EVENT_KEY: "k", EVENT_DATA: "v6"})
        quiet(c)
        watch(c, "k", 6)
        assert event(c) == (6, {EVENT_KEY: "k", EVENT_DATA: "v8"})
        quiet(c)


def test_values_of_every_msgpack_kind(server, ctl):
    values = [None, True, 0, -5, 2 ** 63, 1.5, "", "txt", b"\x00\xff", [], [1, [2]],
              {"m": {"n": None}}, {1: "int key"}]
    with Raw(server.port) as c:
        for i, v in enumerate(values):
            bcast(ctl, f"kind{i}", v)
            watch(c, f"kind{i}", 100 + i)
            assert event(c) == (100 + i, {EVENT_KEY: f"kind{i}", EVENT_DATA: v})
        quiet(c)


def test_unwatch_stops_events(server, ctl):
    with Raw(server.port) as c:
        watch(c, "u", 1)
        assert event(c) == (1, {EVENT_KEY: "u"})
        watch(c, "u", 2)  # acknowledged: the next value would go at once
        unwatch(c, "u", 3)
        ping(c, 4)
        assert wait_for(lambda: watchers_of(server, "u") == 0)
        bcast(ctl, "u", 1)
        bcast(ctl, "u", 2)
        quiet(c, 0.5)
        # Watching again is a new subscription: an event at once, the value now.
        watch(c, "u", 5)
        assert event(c) == (5, {EVENT_KEY: "u", EVENT_DATA: 2})
        quiet(c)


def test_unencodable_value_is_refused_and_changes_nothing(server, ctl):
    with Raw(server.port) as w, Raw(server.port) as other:
        bcast(ctl, "enc", 1)
        bcast(ctl, "enc.other", "o")
        watch(w, "enc", 1)
        assert event(w) == (1, {EVENT_KEY: "enc", EVENT_DATA: 1})
        watch(w, "enc", 2)  # acknowledged: the next value would go at once
        watch(other, "enc", 3)
        assert event(other) == (3, {EVENT_KEY: "enc", EVENT_DATA: 1})
        watch(other, "enc", 4)
        ping(w, 5)
        ping(other, 6)
        h, b = ctl.call("broadcast_unencodable", "enc", sync=7)
        assert h[0] == 0x8000 | 32, (h, b)
        # The key keeps its value: no event, WATCH_ONCE and new watchers see 1.
        quiet(w)
        quiet(other)
        ctl.request(WATCH_ONCE, 8, {EVENT_KEY: "enc"})
        assert ctl.reply()[1] == {DATA: [1]}
        with Raw(server.port) as late:
            watch(late, "enc", 9)
            assert event(late) == (9, {EVENT_KEY: "enc", EVENT_DATA: 1})
        # And the watchers still get the next good value.
        bcast(ctl, "enc", 2)
        assert event(w) == (2, {EVENT_KEY: "enc", EVENT_DATA: 2})
        assert event(other) == (4, {EVENT_KEY: "enc", EVENT_DATA: 2})


# -- WATCH_ONCE ---------------------------------------------------------------------------------


def test_watch_once(server, ctl):
    bcast(ctl, "once", {"x": 1})
    with Raw(server.port) as c:
        c.request(WATCH_ONCE, 7, {EVENT_KEY: "once"})
        h, b = c.reply()
        assert (h[0], h[1], b) == (0, 7, {DATA: [{"x": 1}]})
        assert h[5] == server.tx.schema.version  # an ordinary reply: with the schema version
        c.request(WATCH_ONCE, 8, {EVENT_KEY: "never"})
        h, b = c.reply()
        assert (h[0], h[1], b) == (0, 8, {DATA: []})
        # Subscribes nothing: new values bring no events.
        assert watchers_of(server, "once") == 0 and watchers_of(server, "never") == 0
        bcast(ctl, "once", {"x": 2})
        bcast(ctl, "never", 1)
        quiet(c, 0.5)
        c.request(WATCH_ONCE, 9, {EVENT_KEY: "once"})
        assert c.reply()[1] == {DATA: [{"x": 2}]}
        # And it does not disturb a real watcher of the same key.
        watch(c, "once", 10)
        assert event(c) == (10, {EVENT_KEY: "once", EVENT_DATA: {"x": 2}})
        c.request(WATCH_ONCE, 11, {EVENT_KEY: "once"})
        h, b = c.reply()
        assert (h[0], h[1], b) == (0, 11, {DATA: [{"x": 2}]})
        quiet(c)


@pytest.mark.parametrize("rtype", [WATCH, UNWATCH, WATCH_ONCE])
def test_missing_event_key_is_error_69(server, rtype):
    # A body the request cannot be decoded from gets an error reply, even for
    # WATCH and UNWATCH (Tarantool's decode failure takes the error route).
    with Raw(server.port) as c:
        c.request(rtype, 3, {})
        h, b = c.reply()
        assert (h[0], h[1]) == (0x8000 | 69, 3)
        assert b[ERROR_24] == "Missing mandatory field 'EVENT_KEY' in request"
        ping(c, 4)
        quiet(c)


# -- system keys --------------------------------------------------------------------------------


INSTANCE_UUID = "8a1c3d5e-2b4f-4a6c-9e8d-7f1a2b3c4d5e"


@pytest.mark.parametrize("with_id", [False, True], ids=["no_id", "id_error_ext"])
def test_box_id_and_box_status(make_server, with_id):
    server = make_server(app=APP, iproto_threads=1, instance_uuid=INSTANCE_UUID)
    with Raw(server.port) as c:
        assert c.greeting.uuid == INSTANCE_UUID
        if with_id:
            c.request(ID, 1, {0x54: 6, 0x55: [0, 1, 2, 3, 4, 5, 6]})
            assert c.reply()[0][0] == 0
        watch(c, "box.id", 2)
        sync, body = event(c)
        assert sync == 2 and set(body) == {EVENT_KEY, EVENT_DATA}
        value = body[EVENT_DATA]
        u = msgpack.ExtType(2, uuid.UUID(INSTANCE_UUID).bytes)  # MP_UUID
        assert value == {"id": 1, "instance_uuid": u, "replicaset_uuid": u}
        watch(c, "box.status", 3)
        sync, body = event(c)
        assert sync == 3
        assert body == {EVENT_KEY: "box.status",
                        EVENT_DATA: {"is_ro": False, "is_ro_cfg": False, "status": "running"}}
        c.request(WATCH_ONCE, 4, {EVENT_KEY: "box.status"})
        assert c.reply()[1][DATA][0]["status"] == "running"
        quiet(c)


# -- several sessions ---------------------------------------------------------------------------


def test_two_sessions_watching_one_key(server, ctl):
    with Raw(server.port) as a, Raw(server.port) as b:
        watch(a, "shared", 1)
        watch(b, "shared", 2)
        assert event(a) == (1, {EVENT_KEY: "shared"})
        assert event(b) == (2, {EVENT_KEY: "shared"})
        assert watchers_of(server, "shared") == 2
        watch(a, "shared", 3)
        watch(b, "shared", 4)
        ping(a, 90)
        ping(b, 91)  # both acks are in
        bcast(ctl, "shared", "one")
        assert event(a) == (3, {EVENT_KEY: "shared", EVENT_DATA: "one"})
        assert event(b) == (4, {EVENT_KEY: "shared", EVENT_DATA: "one"})
        # Each has its own ack state: only a acknowledges.
        watch(a, "shared", 5)
        ping(a, 92)
        bcast(ctl, "shared", "two")
        assert event(a) == (5, {EVENT_KEY: "shared", EVENT_DATA: "two"})
        quiet(b)
        bcast(ctl, "shared", "three")
        watch(b, "shared", 6)
        assert event(b) == (6, {EVENT_KEY: "shared", EVENT_DATA: "three"})
        quiet(a)
        quiet(b)


def test_watchers_vanish_with_the_session(server, ctl, caplog):
    caplog.set_level(logging.WARNING)
    with Raw(server.port) as stay:
        watch(stay, "gone", 1)
        assert event(stay) == (1, {EVENT_KEY: "gone"})
        watch(stay, "gone", 2)
        ping(stay, 3)
        # Clients that subscribe and leave: idle, not idle (an event unacked),
        # and one that leaves with events still on their way to it.
        leavers = [Raw(server.port) for _ in range(10)]
        for i, c in enumerate(leavers):
            watch(c, "gone", 10 + i)
            watch(c, "box.id", 10 + i)
            assert event(c)[0] == 10 + i
            assert event(c)[0] == 10 + i
            if i % 2:
                watch(c, "gone", 20 + i)  # acknowledged: the next value goes at once
                ping(c, 30)
        assert watchers_of(server, "gone") == 11
        bcast(ctl, "gone", "x" * 100_000)
        for c in leavers:
            c.close()  # some with 100 KB of event unread
        assert wait_for(lambda: watchers_of(server, "gone") == 1 and watchers_of(server, "box.id") == 0)
        assert event(stay) == (2, {EVENT_KEY: "gone", EVENT_DATA: "x" * 100_000})
        for i in range(5):
            bcast(ctl, "gone", i)
        watch(stay, "gone", 4)
        assert event(stay) == (4, {EVENT_KEY: "gone", EVENT_DATA: 4})
        ping(stay, 5)
        ping(ctl, 6)
    assert wait_for(lambda: len(server.tx.sessions) == 1)  # ctl's
    assert server.tx.errors == 0
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert problems == []


# -- streams ------------------------------------------------------------------------------------


@pytest.mark.parametrize("rtype,name", [(WATCH, "WATCH"), (UNWATCH, "UNWATCH"),
                                        (WATCH_ONCE, "WATCH_ONCE")])
def test_watch_requests_inside_a_stream_are_229(server, ctl, rtype, name):
    bcast(ctl, "in.stream", 1)
    with Raw(server.port) as c:
        c.request(rtype, 5, {EVENT_KEY: "in.stream"}, k10=3)
        h, b = c.reply()
        assert (h[0], h[1]) == (0x8000 | 229, 5)
        assert b[ERROR_24] == f"Unable to process {name} request in stream"
        assert watchers_of(server, "in.stream") == 0
        bcast(ctl, "in.stream", 2)
        quiet(c)
        ping(c, 6)  # the connection goes on
