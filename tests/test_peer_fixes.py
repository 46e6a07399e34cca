"""Fixes found by running connectors' own test suites against Styx
(tests/peers/, issue 7), each checked against Debian's Tarantool 2.6 where
2.6 can answer (tests/lua/tarantool_server.lua `ddl`: boss/pw is super).

- space formats with positional entries, as Lua writes them
  (`{'id', type = 'unsigned'}` arrives as {1: 'id', 'type': 'unsigned'}),
  which tarantool-python's test setup uses;
- box.begin/box.commit/box.rollback over CALL (asynctnt's tests).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asynctnt
import pytest
import tarantool

from styx import Config, Server
from tests.oracle import tarantool_server

DDL_APP = str(Path(__file__).parent / "apps" / "ddl_app.py")  # boss/pw: super, as the oracle's `ddl`


@pytest.fixture(scope="module")
def styx_port() -> Any:
    server = Server(Config(listen="127.0.0.1:0", app=DDL_APP)).start()
    try:
        yield server.port
    finally:
        server.stop()


@pytest.fixture(scope="module")
def tnt_port(tarantool_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Any:
    with tarantool_server(tarantool_bin, "ddl", tmp_path_factory.mktemp("tnt_peer_fixes")) as port:
        yield port


class Conn:
    """tarantool-python as boss; `call` gives ('ok', data) or ('err', code, message)."""

    def __init__(self, port: int) -> None:
        self.c = tarantool.Connection("127.0.0.1", port, user="boss", password="pw",
                                      fetch_schema=False, connection_timeout=10)

    def call(self, name: str, *args: Any) -> tuple[Any, ...]:
        try:
            return ("ok", self.c.call(name, list(args)).data)
        except tarantool.error.DatabaseError as e:
            return ("err", e.args[0], e.args[1])


def both(styx_port: int, tnt_port: int, fn: Any) -> tuple[Any, Any]:
    """fn(Conn) on Styx, then on Tarantool 2.6."""
    out = []
    for port in (styx_port, tnt_port):
        c = Conn(port)
        try:
            out.append(fn(c))
        finally:
            c.c.close()
    return out[0], out[1]

FORMATS = {
    # Lua {'id', type = 'unsigned'}, {'name', type = 'string'}
    "name_by_position": [{1: "id", "type": "unsigned"}, {1: "name", "type": "string"}],
    # Lua {'id', 'unsigned'}: a (name, type) array
    "pairs": [["id", "unsigned"], ["name", "string"]],
    # Lua {name = 'id', 'unsigned'}: the type by position
    "type_by_position": [{"name": "id", 1: "unsigned"}, {"name": "v"}],
    # Lua {'id', 'name'}: bare names, type any
    "bare_names": ["id", "name"],
    # Lua {{'id', type = 'unsigned', is_nullable = true}}
    "options_kept": [{1: "id", "type": "unsigned", "is_nullable": True}],
}


def _create_and_read_format(c: Conn, name: str, fmt: list[Any]) -> Any:
    # 2.6 cannot encode the space object create returns (error 32), and
    # creates the space all the same: read the format back from _vspace.
    c.call("box.schema.space.create", name, {"format": fmt})
    got = c.call("box.space._vspace.index.name:get", [name])
    return got[1][0][6] if got[0] == "ok" and got[1] and got[1][0] else ("no space", got)


@pytest.mark.parametrize("case", sorted(FORMATS))
def test_space_format_positional_entries(case: str, styx_port: int, tnt_port: int) -> None:
    name = f"fmt_{case}"
    styx, tnt = both(styx_port, tnt_port, lambda c: _create_and_read_format(c, name, FORMATS[case]))
    assert isinstance(tnt, list), tnt
    assert styx == tnt


@pytest.mark.parametrize("fmt", [[{"type": "unsigned"}], [{1: 5, "type": "unsigned"}], [7]])
def test_space_format_without_a_string_name(fmt: list[Any], styx_port: int, tnt_port: int) -> None:
    styx, tnt = both(styx_port, tnt_port, lambda c: c.call("box.schema.space.create", "nameless", {"format": fmt}))
    assert tnt == ("err", 1, "Illegal parameters, format[1]: name (string) is expected")
    assert styx == tnt


# -- box.begin / box.commit / box.rollback over CALL ------------------------------------


@pytest.mark.parametrize("name, args, expected", [
    ("box.begin", [], ("err", 30, "Transaction is active at return from function")),
    ("box.begin", [{"timeout": 1}], ("err", 30, "Transaction is active at return from function")),
    ("box.begin", [5], ("err", 30, "Transaction is active at return from function")),
    ("box.commit", [], ("ok", [])),
    ("box.rollback", [], ("ok", [])),
    ("box.commit", [1], ("ok", [])),
])
def test_txn_builtins_outside_a_stream(name: str, args: list[Any], expected: tuple[Any, ...],
                                       styx_port: int, tnt_port: int) -> None:
    """Without a stream, a transaction box.begin opens cannot outlive the call:
    Tarantool rolls it back and answers 30; commit/rollback with nothing open
    answer nothing."""
    styx, tnt = both(styx_port, tnt_port, lambda c: c.call(name, *args))
    assert tnt == expected
    assert styx == expected


STREAM_APP = str(Path(__file__).parent / "apps" / "stream_app.py")


@pytest.fixture
def stream_port(make_server: Callable[..., Server]) -> int:
    return make_server(app=STREAM_APP, iproto_threads=1).port


@pytest.mark.parametrize("begin, end, visible", [
    ("call", "commit", True),      # asynctnt test__transaction_begin_through_call
    ("begin", "call_commit", True),  # test__transaction_commit_through_call
    ("begin", "call_rollback", False),  # test__transaction_rolled_back_through_call
    ("call", "call_rollback", False),
])
def test_txn_builtins_in_a_stream(begin: str, end: str, visible: bool, stream_port: int) -> None:
    """In a stream (2.10+), the transaction box.begin opens is the stream's:
    later requests of the stream run in it, others do not see it until
    box.commit (or COMMIT); box.rollback drops it. Each call answers DATA []."""
    async def scenario() -> None:
        conn = asynctnt.Connection(host="127.0.0.1", port=stream_port)
        await conn.connect()
        try:
            s = conn.stream()
            if begin == "call":
                assert (await s.call("box.begin")).body == []
            else:
                await s.begin()
            await s.insert("acc", [1, "a", None])
            assert list(map(list, (await s.select("acc")).body)) == [[1, "a", None]]
            assert (await conn.select("acc")).body == []
            if end == "commit":
                await s.commit()
            else:
                assert (await s.call("box." + end.split("_")[1])).body == []
            got = [list(t) for t in (await conn.select("acc")).body]
            assert got == ([[1, "a", None]] if visible else [])
            # The stream has no transaction left: a second box.begin works.
            assert (await s.call("box.begin")).body == []
            assert (await s.call("box.rollback")).body == []
        finally:
            await conn.disconnect()
    asyncio.run(scenario())


# -- one story: the greeting's version and IPROTO_ID --------------------------------------

# The first Tarantool release whose IPROTO_ID answer has each feature.
FEATURE_RELEASE = {0: (2, 10, 0), 1: (2, 10, 0), 2: (2, 10, 0), 3: (2, 10, 0),  # protocol 1-3
                   4: (2, 11, 0),                                               # 4: pagination
                   5: (3, 0, 0), 6: (3, 0, 0)}        # 5, 6: space_and_index_names, watch_once
PROTOCOL_RELEASE = {3: (2, 10, 0), 4: (2, 11, 0), 5: (3, 0, 0), 6: (3, 0, 0)}


def test_greeting_version_matches_advertised_features() -> None:
    """A connector that trusts the greeting (tarantool-python's and asynctnt's
    version gates and tests) must not expect less than ID says, nor more:
    the greeting names the first release with every advertised feature, and
    stays below 3.5 (tarantool-python then packs 76-digit decimals)."""
    from styx.server import VERSION
    from styx.tx.process import FEATURES, PROTOCOL_VERSION
    assert VERSION == max(FEATURE_RELEASE[f] for f in FEATURES) == PROTOCOL_RELEASE[PROTOCOL_VERSION]
    assert VERSION < (3, 5, 0)


def test_connectors_read_the_same_story(make_server: Callable[..., Server]) -> None:
    """tarantool-python and asynctnt: the greeting's version, and ID's answer."""
    from styx.server import VERSION
    port = make_server(iproto_threads=1).port
    c = tarantool.Connection("127.0.0.1", port, fetch_schema=False)
    try:
        assert c.version_id == (VERSION[0] << 16) | (VERSION[1] << 8) | VERSION[2]
        assert c._protocol_version == 6
    finally:
        c.close()

    async def a() -> None:
        conn = asynctnt.Connection(host="127.0.0.1", port=port, fetch_schema=False,
                                   auto_refetch_schema=False)
        await conn.connect()
        try:
            assert conn.version == VERSION
            f = conn.features
            assert (f.streams, f.transactions, f.error_extension, f.watchers) == (True,) * 4
        finally:
            await conn.disconnect()
    asyncio.run(a())


# -- strings and binary: a decision, not a fix -----------------------------------------------


def test_bytes_stay_binary_and_str_stays_string(make_server: Callable[..., Server]) -> None:
    """MP_BIN through a procedure comes back MP_BIN, MP_STR comes back MP_STR,
    even when not UTF-8: what a Python procedure returns keeps its type. 2.x's
    Lua turned MP_BIN into a string; Tarantool 3.0 (our greeting) keeps MP_BIN,
    which asynctnt's test__call_complex_param checks. A procedure that wants to
    send raw bytes as MP_STR returns them decoded with surrogateescape."""
    from tests.iproto import Raw, frame
    port = make_server(iproto_threads=1).port
    with Raw(port) as c:
        payload = (b"\x82\x00\x0a\x01\x07"  # CALL, sync 7
                   + b"\x82\x22\xa4echo\x21\x92\xc4\x02\xff\x00\xa2\xff\x00")  # echo(bin ff00, str ff00)
        c.send(frame(payload))
        c.reply()
        raw = c.raw_replies[-1]
    assert raw.endswith(b"\x81\x30\xdd\x00\x00\x00\x02" + b"\xc4\x02\xff\x00" + b"\xa2\xff\x00")
