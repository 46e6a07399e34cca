"""on_replace triggers from Python (SpaceApi.on_replace; Lua's are compared
with Tarantool 2.6 in tests/test_lua_procs.py): what a trigger sees, that
one that raises undoes the statement and the client gets its error, that
in a transaction they run at commit, and removal."""

from __future__ import annotations

from typing import Any

import pytest
import tarantool

SEEN: list[Any] = []


def _log(old: Any, new: Any, space: str, kind: str) -> None:
    SEEN.append((None if old is None else list(old), None if new is None else new["name"], space, kind))


def _refuse(old: Any, new: Any, space: str, kind: str) -> None:
    if new is not None and new[1] == "bad":
        raise ValueError("refused by trigger")


def _push(old: Any, new: Any, space: str, kind: str) -> None:
    from styx import box

    if new is not None and new[1] == "push me":
        box.session.push(["pushed", new[0]])


def init() -> None:
    from styx import box

    box.schema.user.grant("guest", "read,write,execute", "universe")
    s = box.schema.space.create("t", format=[("id", "unsigned"), ("name", "string")])
    s.create_index("pk", parts=["id"])
    s.on_replace(_log)
    s.on_replace(_refuse)
    s.on_replace(_push)


def in_txn() -> None:
    from styx import box

    box.begin()
    box.space.t.replace([7, "txn"])
    SEEN.append("before commit")
    box.commit()


def remove() -> int:
    from styx import box

    box.space.t.on_replace(None, _log)
    return len(box.space.t.on_replace())


def seen() -> list[Any]:
    out = list(SEEN)
    SEEN.clear()
    return out


APP = {"init": init, "in_txn": in_txn, "remove": remove, "seen": seen}


def test_on_replace_from_python(make_server: Any) -> None:
    SEEN.clear()
    styx = make_server(app=APP)
    c = tarantool.Connection("127.0.0.1", styx.port)
    c.insert("t", [1, "a"])
    c.update("t", 1, [("=", 1, "b")])  # IPROTO counts fields from 0
    c.delete("t", 1)
    assert c.call("seen").data == [[[None, "a", "t", "INSERT"], [[1, "a"], "b", "t", "UPDATE"],
                                     [[1, "b"], None, "t", "DELETE"]]]
    with pytest.raises(tarantool.error.DatabaseError) as e:
        c.insert("t", [2, "bad"])
    assert e.value.args[0] == 32 and "refused by trigger" in e.value.args[1]
    assert c.select("t", 2).data == []
    c.call("seen")
    c.call("in_txn")
    assert c.call("seen").data == [["before commit", [None, "txn", "t", "INSERT"]]]
    assert c.call("remove").data == [2]  # _refuse and _push stay
    c.insert("t", [3, "c"])
    assert c.call("seen").data == [[]]
    c.close()


def test_a_trigger_pushes_to_the_request_that_fired_it(make_server: Any) -> None:
    """An IPROTO INSERT runs the space's triggers in its own fiber: a push
    reaches the client before the reply (tarantool-python's test_push)."""
    styx = make_server(app=APP)
    c = tarantool.Connection("127.0.0.1", styx.port)
    pushed: list[Any] = []
    c.insert("t", [9, "push me"], on_push=lambda data, ctx: ctx.append(data), on_push_ctx=pushed)
    assert pushed == [[["pushed", 9]]]
    c.close()
