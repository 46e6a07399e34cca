"""EVAL (styx/tx/lua.py): the same expressions against Tarantool 2.6 and
Styx, through tarantool-python, give the same values and the same errors:
arguments as `...`, several return values (nil among them), tables, a Lua
error (32, "eval:1: ..."), a syntax error, box's data methods on a space
and an index, the caller's rights (EVAL needs execute on the universe),
and box.session.push."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tarantool

from tests.oracle import differences, tarantool_script

ROOT = Path(__file__).resolve().parent
CASES: list[tuple[str, list[Any]]] = [
    ("return 1", []),
    ("return ...", [1, "a", [1, 2], {"k": 1}]),
    ("return 1, nil, 3", []),
    ("return {}", []),
    ("return {1, {2, 3}, {a = 'b'}}", []),
    ("local a, b = ... return a + b, a .. b", [2, 3]),
    ("error('boom')", []),
    ("syntax error here", []),
    ("return box.space.t:replace{1, 'one'}", []),
    ("return box.space.t:insert{2, 'two'}", []),
    ("return box.space.t:insert{2, 'again'}", []),
    ("return box.space.t:select{}", []),
    ("return box.space.t:get(1)", []),
    ("return box.space.t:get(5)", []),
    ("return box.space.t:count()", []),
    ("return box.space.t.index.pk:select({1}, {iterator = 'GT'})", []),
    ("return box.space.t:update(1, {{'=', 2, 'uno'}})", []),
    ("return box.space.t:delete{2}", []),
    ("return box.space.t:len()", []),
    ("return box.space.nope", []),
    # Odd input: the same answers as 2.6, no Python leaking through.
    ("return box.space[{}]", []),
    ("return box.space.t.index[{}]", []),
    ("box.error('text')", []),
    ("box.error()", []),
    ("return require('fiber').channel(-1)", []),
    ("local t = {} t[1] = t return t", []),
    ("error(nil)", []),
    # Integers past 2^53 stay exact: 64-bit cdata, as Tarantool decodes them.
    ("local a, b, c, d = ... return a, b, c, d, type(a), tostring(b), tostring(c), tostring(d + 1)",
     [2**53, 2**60, -2**62, 2**64 - 2]),
    # fiber.sleep in a coroutine of the caller's own: the whole fiber sleeps.
    ("local co = coroutine.create(function() require('fiber').sleep(0.01) return 5 end) "
     "return coroutine.resume(co)", []),
    ("return coroutine.wrap(function() require('fiber').sleep(0.01) return 6 end)()", []),
]



@pytest.fixture(scope="module")
def tarantool_port(tarantool_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with tarantool_script(tarantool_bin, ROOT / "lua" / "eval_setup.lua", tmp_path_factory.mktemp("eval")) as port:
        yield port


def answer(c: tarantool.Connection, expr: str, args: list[Any]) -> Any:
    try:
        return ("ok", c.eval(expr, args).data)
    except tarantool.error.DatabaseError as e:
        return ("error", e.args[0], e.args[1])


def test_eval_as_tarantool(tarantool_port: int, make_server: Any) -> None:
    styx = make_server(app=str(ROOT / "apps" / "eval_app.py"))
    t = tarantool.Connection("127.0.0.1", tarantool_port)
    s = tarantool.Connection("127.0.0.1", styx.port)
    try:
        diffs = differences(CASES, lambda case: answer(t, *case), lambda case: answer(s, *case))
        assert not diffs, diffs
    finally:
        t.close()
        s.close()


def test_eval_needs_execute_on_the_universe_and_pushes(tarantool_port: int, make_server: Any) -> None:
    styx = make_server(app=str(ROOT / "apps" / "eval_app.py"))
    for port in (tarantool_port, styx.port):
        c = tarantool.Connection("127.0.0.1", port, user="limited", password="pw")
        with pytest.raises(tarantool.error.DatabaseError) as e:
            c.eval("return 1")
        assert e.value.args[:2] == (42, "Execute access to universe '' is denied for user 'limited'")
        c.close()
    c = tarantool.Connection("127.0.0.1", styx.port)
    pushed: list[Any] = []
    r = c.eval("box.session.push({step = 1}) return 'done'", on_push=lambda data, ctx: pushed.append(data))
    assert r.data == ["done"] and pushed == [[{"step": 1}]]
    c.close()


def test_an_error_whose_tostring_fails(make_server: Any) -> None:
    """Tarantool 2.6 panics on this one; Styx answers and goes on."""
    styx = make_server(app=str(ROOT / "apps" / "eval_app.py"))
    c = tarantool.Connection("127.0.0.1", styx.port)
    with pytest.raises(tarantool.error.DatabaseError) as e:
        c.eval("error(setmetatable({}, {__tostring = function() error('x') end}))")
    assert e.value.args[:2] == (32, "error object is not a string")
    assert c.eval("return 1").data == [1]
    c.close()


def test_lua_objects_do_not_outlive_their_coroutine(make_server: Any) -> None:
    """Box errors raised into coroutines Lua then collects: their Python
    side must not keep the coroutines' objects (this crashed the process:
    lupa issue 84, see lua_modules.boundary)."""
    import gc

    styx = make_server(app=str(ROOT / "apps" / "eval_app.py"))
    c = tarantool.Connection("127.0.0.1", styx.port)
    c.eval("box.space.t:replace{1, 'one'}")
    for i in range(40):
        c.eval("for i = 1, 20 do "
               "local co = coroutine.create(function() box.space.t:insert{1, {i, 'x'}} end) "
               "coroutine.resume(co) end collectgarbage() collectgarbage()")
        if i % 10 == 0:
            gc.collect()
    gc.collect()
    assert c.eval("return box.space.t:get(1)").data == [[1, "one"]]
    c.close()


def test_binary_stays_binary(make_server: Any) -> None:
    """MP_BIN reaches Lua as a varbinary object (a length, its bytes by
    tostring) and goes back as MP_BIN, as in Tarantool 3.0, whose greeting
    Styx sends (2.6 makes it a string: tests/deliberate.py)."""
    styx = make_server(app=str(ROOT / "apps" / "eval_app.py"))
    c = tarantool.Connection("127.0.0.1", styx.port)
    assert c.eval("local v = ... return v, type(v), #v, tostring(v), v == 'a\\0b'", [b"a\0b"]).data == [
        b"a\0b", "cdata", 3, "a\0b", True]
    assert c.eval("return ...", [{"k": [b"\xff", "text"]}]).data == [{"k": [b"\xff", "text"]}]
    c.close()
