"""Issue 7, "Differences from Tarantool 2.6": each case against the oracle of
tests/test_box_differential.py (same schema, same fixtures), request by
request. Each test failed before its fix."""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from styx import Server
from tests.test_box_differential import (  # noqa: F401 (fixtures)
    CALL, DELETE, FUNCTION_NAME, INDEX_BASE, INDEX_ID, INSERT, KEY, SELECT, SPACE_ID, TUPLE,
    UPDATE, Pair, check_state, logged_in_pair, oracle_port, pair, run_all, select_body, styx,
)

NAN, INF = float("nan"), float("inf")


def call(name: str, *args: Any) -> tuple[int, dict[int, Any]]:
    return CALL, {FUNCTION_NAME: name, 0x21: list(args)}


def ins(sid: int, tup: Any) -> tuple[int, dict[int, Any]]:
    return INSERT, {SPACE_ID: sid, TUPLE: tup}


def upd(sid: int, key: Any, ops: Any, iid: int = 0) -> tuple[int, dict[int, Any]]:
    return UPDATE, {SPACE_ID: sid, INDEX_ID: iid, KEY: key, TUPLE: ops, INDEX_BASE: 1}


@pytest.fixture
def boss(oracle_port: int, styx: Server) -> Iterator[Pair]:
    """A pair logged in as boss (role super): DDL."""
    p = logged_in_pair(oracle_port, styx, "boss", "pw")
    p.reset()
    yield p
    p.close()


def test_a_space_has_no_min_max(pair: Pair) -> None:
    run_all(pair, [call("box.space.tree:max", [1]), call("box.space.tree:min", [1]),
                   call("box.space.tree:min"), call("box.space.tree:random"),
                   call("box.space.tree.index.pk:nope")])


def test_d_numeric_path_is_not_defined(pair: Pair) -> None:
    run_all(pair, [call("box.space.tree.index.0:select", []), call("box.space.512:select", []),
                   call("box.space.512.index.pk:get", [1]), call("box.space.tree.index.1:count")])


def test_e_hash_has_no_min_max(pair: Pair) -> None:
    run_all(pair, [ins(513, [1, "a", 1]),
                   call("box.space.hash.index.pk:min", [1]), call("box.space.hash.index.pk:max", [1]),
                   call("box.space.hash.index.pk:min"), call("box.space.hash.index.h2:max", ["x"]),
                   call("box.space.hash.index.t3:min"), call("box.space.hash.index.t3:max", [1]),
                   call("box.space.hash.index.t3:max", ["x"])])


def test_f_iterator_names_memtx_refuses(pair: Pair) -> None:
    reqs = []
    for it in ("NEIGHBOR", "BITS_ALL_SET", "BITS_ANY_SET", "bits_all_not_set", "OVERLAPS", "XX",
               "eq", "Req"):
        for path in ("box.space.tree", "box.space.hash", "box.space.tree.index.by_s"):
            reqs.append(call(path + ":select", [1], {"iterator": it}))
            reqs.append(call(path + ":count", [1], {"iterator": it}))
            reqs.append(call(path + ":select", ["x"], it))
    run_all(pair, reqs)


def test_g_hash_select_without_key(pair: Pair) -> None:
    run_all(pair, [ins(513, [1, "a", 1]), ins(513, [2, "b", 1]),
                   call("box.space.hash:select"), call("box.space.hash:select", []),
                   call("box.space.hash:select", None, {"limit": 1, "offset": 1}),
                   call("box.space.hash:count", []), call("box.space.hash.index.h2:select", {}),
                   call("box.space.hash.index.h2:select", [], {"iterator": "EQ"})])


def test_j_falsy_keys_are_keys(pair: Pair) -> None:
    run_all(pair, [ins(514, [1, 0]), ins(514, [2, 5]), ins(514, [3, None, ""]),
                   ins(514, [4, None, "x"]), ins(512, [0, "", 0]), ins(512, [1, "a", 1]),
                   ins(515, [False]), ins(515, [0]), ins(515, [""]), ins(515, [1])])
    reqs = []
    for path in ("box.space.nullable.index.sec", "box.space.nullable.index.uniq", "box.space.tree",
                 "box.space.tree.index.by_s", "box.space.scalar", "box.space.hash"):
        for m in ("count", "select", "get", "min", "max", "pairs"):
            if m in ("min", "max") and ".index." not in path:
                continue
            for k in (0, "", False, 0.0, -0.0, [0], [""], [False]):
                reqs.append(call(f"{path}:{m}", k))
    reqs += [call("box.space.scalar:delete", False), call("box.space.scalar:update", "", [["=", 2, 1]]),
             call("box.space.tree:delete", 0), call("box.space.scalar:select")]
    run_all(pair, reqs)
    check_state(pair)


def test_k_key_given_as_a_map(pair: Pair) -> None:
    run_all(pair, [ins(512, [1, "a", 1]), ins(512, [2, "b", 2]), ins(513, [1, "a", 1])])
    reqs = []
    for path in ("box.space.tree", "box.space.tree.index.by_s", "box.space.hash",
                 "box.space.tree.index.by_ns"):
        for m in ("count", "select", "get", "min", "max", "delete", "pairs"):
            for k in ({"k": 1}, {}, {1: 2}, {1: 1, 2: "x"}, {2: 1}):
                reqs.append(call(f"{path}:{m}", k))
        reqs.append(call(f"{path}:update", {"k": 1}, [["=", 4, 1]]))
    run_all(pair, reqs)
    check_state(pair)


def test_l_m_ops_not_an_array(pair: Pair) -> None:
    run_all(pair, [ins(512, [3, "a", 1]),
                   call("box.space.tree:upsert", [1, "a", 1], {"a": 1}),
                   call("box.space.tree:upsert", {"a": 1}, []),
                   call("box.space.tree:upsert", [1, "a", 1], "x"),
                   call("box.space.tree:upsert", [1, "a", 1]),
                   call("box.space.tree:upsert", 1, []),
                   call("box.space.tree.index.pk:update", [3], "x"),
                   call("box.space.tree:update", [3], "x"), call("box.space.tree:update", [3]),
                   call("box.space.tree:update", [3], {"a": 1}), call("box.space.tree:update", [3], 5),
                   call("box.space.tree:update", 3, [["=", 2, "b"]]),
                   call("box.space.tree:insert", 5), call("box.space.tree:insert", {"a": 1}),
                   call("box.space.tree:insert"), call("box.space.tree:replace", None)])
    check_state(pair)


def test_n_update_op_field_empty_name(pair: Pair) -> None:
    run_all(pair, [upd(513, [99], [["=", "", 1]]), upd(512, [99], [["=", "", 1]]),
                   ins(513, [1, "a", 1]), upd(513, [1], [["=", "", 1]]),
                   call("box.space.hash:update", [99], [["=", "", 1]]),
                   call("box.space.hash:update", [1], [["=", "", 1]])])


def test_o_iterator_null(pair: Pair) -> None:
    run_all(pair, [ins(512, [1, "a", 1]),
                   call("box.space.tree:select", [], {"iterator": None}),
                   call("box.space.tree:select", [1], {"iterator": None}),
                   call("box.space.tree:count", [], {"iterator": None}),
                   call("box.space.tree:select", [1], {"iterator": False}),
                   call("box.space.tree:select", [], {"iterator": True}),
                   call("box.space.tree:select", [1], {"iterator": 2}),
                   call("box.space.tree:select", [1], {"limit": None})])
