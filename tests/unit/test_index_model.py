"""A space's TREE indexes against a plain sorted-list model, on random
operation sequences (hypothesis): every iterator, full and partial keys,
unique and non-unique, and atomicity of failed requests."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from styx.box.index import Part
from styx.box.space import Quota, Space, unpack_tuple
from styx.protocol import constants as C
from styx.protocol.errors import ER, BoxError

ITERATORS = [C.ITER_EQ, C.ITER_REQ, C.ITER_ALL, C.ITER_LT, C.ITER_LE, C.ITER_GE, C.ITER_GT]


def make_space() -> Space:
    s = Space(512, "t", 1, Quota(1 << 30),
              format=[{"name": "id", "type": "unsigned"}, {"name": "a", "type": "integer"},
                      {"name": "b", "type": "string"}])
    s.add_index(s.make_index(0, "pk", "TREE", [Part(0, "unsigned")], True))
    s.add_index(s.make_index(1, "ab", "TREE", [Part(1, "integer"), Part(2, "string")], False))
    s.add_index(s.make_index(2, "uniq_b", "TREE", [Part(2, "string")], True))
    return s


def model_select(rows: list[list[Any]], key_fields: list[int], tie: list[int], iterator: int,
                 key: list[Any]) -> list[list[Any]]:
    """What a TREE index returns, computed the slow, obvious way."""
    order = sorted(rows, key=lambda r: [r[f] for f in key_fields + tie])
    n = len(key)

    def prefix(r: list[Any]) -> list[Any]:
        return [r[f] for f in key_fields[:n]]

    if iterator in (C.ITER_REQ, C.ITER_LT, C.ITER_LE):
        order.reverse()
    if not key:
        return order
    if iterator == C.ITER_ALL:
        iterator = C.ITER_GE  # Tarantool: ALL with a key is GE
    test = {
        C.ITER_EQ: lambda p: p == key, C.ITER_REQ: lambda p: p == key,
        C.ITER_GE: lambda p: p >= key, C.ITER_GT: lambda p: p > key,
        C.ITER_LE: lambda p: p <= key, C.ITER_LT: lambda p: p < key,
    }[iterator]
    return [r for r in order if test(prefix(r))]


ids = st.integers(0, 30)
ints = st.integers(-5, 5)
strs = st.text(alphabet="abé", max_size=3)
rows = st.tuples(ids, ints, strs).map(list)
ops = st.lists(st.one_of(
    st.tuples(st.just("insert"), rows),
    st.tuples(st.just("replace"), rows),
    st.tuples(st.just("delete"), ids),
    st.tuples(st.just("update"), ids, ints),
), max_size=40)


@settings(max_examples=400, deadline=None)
@given(ops, st.data())
def test_tree_indexes_match_the_model(operations, data):
    space = make_space()
    model: dict[int, list[Any]] = {}
    for op in operations:
        before = dict(model)
        try:
            if op[0] == "insert":
                space.insert(list(op[1]))
                model_insert(model, op[1], replace=False)
            elif op[0] == "replace":
                space.replace(list(op[1]))
                model_insert(model, op[1], replace=True)
            elif op[0] == "delete":
                space.delete(space.pk, [op[1]])
                model.pop(op[1], None)
            else:
                got = space.update(space.pk, [op[1]], [["=", 2, op[2]]], index_base=1)
                if op[1] in model:
                    assert got is not None
                    model[op[1]] = [op[1], op[2], model[op[1]][2]]
                else:
                    assert got is None
        except BoxError as e:
            assert e.code == ER.TUPLE_FOUND, e
            model.clear()
            model.update(before)  # a failed request changes nothing
        check_all(space, model)
    # Every iterator over the secondary (non-unique, two parts) and primary,
    # with keys that often hit stored ones.
    rows_ = list(model.values())
    iterator = data.draw(st.sampled_from(ITERATORS))
    some_row = data.draw(st.sampled_from(rows_)) if rows_ else [7, 0, "a"]
    pair = data.draw(st.one_of(st.just((some_row[1], some_row[2])), st.tuples(ints, strs)))
    key = list(pair)[:data.draw(st.integers(0, 2))]
    got = [unpack_tuple(d) for d in space.select(space.index(1), iterator, key)]
    assert got == model_select(rows_, [1, 2], [0], iterator, key)
    pk_key = data.draw(st.sampled_from([[], [some_row[0]], [some_row[0] + 1]]))
    got = [unpack_tuple(d) for d in space.select(space.pk, iterator, pk_key)]
    assert got == model_select(rows_, [0], [], iterator, pk_key)
    # limit and offset cut the same sequence.
    full = [unpack_tuple(d) for d in space.select(space.index(1), iterator, key)]
    assert [unpack_tuple(d) for d in space.select(space.index(1), iterator, key, 1, 2)] == full[1:3]


def model_insert(model: dict[int, list[Any]], row: tuple[int, int, str], replace: bool) -> None:
    rid, _, b = row
    if rid in model and not replace:
        raise BoxError(ER.TUPLE_FOUND, "pk", "t")
    for other in model.values():
        if other[2] == b and other[0] != rid:
            raise BoxError(ER.TUPLE_FOUND, "uniq_b", "t")
    model[rid] = list(row)


def check_all(space: Space, model: dict[int, list[Any]]) -> None:
    want = sorted(model.values())
    assert [unpack_tuple(d) for d in space.select(space.pk, C.ITER_ALL, [])] == want
    assert len(space.index(1)) == len(space.index(2)) == len(model)
    by_b = sorted(model.values(), key=lambda r: r[2])
    assert [unpack_tuple(d) for d in space.select(space.index(2), C.ITER_ALL, [])] == by_b


def test_unique_nullable_index_allows_many_nils():
    s = Space(513, "n", 1, Quota(1 << 30))
    s.add_index(s.make_index(0, "pk", "TREE", [Part(0, "unsigned")], True))
    s.add_index(s.make_index(1, "u", "TREE", [Part(1, "string", True)], True))
    s.insert([1, None])
    s.insert([2, None])
    s.insert([3, "x"])
    try:
        s.insert([4, "x"])
    except BoxError as e:
        assert e.code == ER.TUPLE_FOUND
    else:
        raise AssertionError("a non-nil duplicate must conflict")
    assert [unpack_tuple(d) for d in s.select(s.index(1), C.ITER_EQ, [None])] == [[1, None], [2, None]]
    assert s.get(s.index(1), ["x"]) is not None


def test_altering_the_primary_key_rebuilds_every_secondary():
    from styx.box.schema import Schema
    from styx.box.users import Users

    schema = Schema(Users())
    s = schema.create_space("t", 1, format=[("a", "unsigned"), ("b", "string"), ("c", "unsigned")])
    pk = schema.create_index(s, "pk", parts=["a"])
    schema.create_index(s, "by_b", parts=["b"], unique=False)
    schema.create_index(s, "by_c", parts=["c"], unique=False, type="tree")
    for row in ([1, "x", 7], [2, "x", 7], [3, "y", 7]):
        s.insert(row)
    schema.alter_index(s, pk, parts=[["c", "unsigned"], ["a", "unsigned"]])
    assert [i.name for i in s.indexes] == ["pk", "by_b", "by_c"]
    assert s.index(2).type_shown == "tree"
    # Secondaries now break ties by the new primary key (c, a) and hold every tuple.
    assert [unpack_tuple(d) for d in s.select(s.index(1), C.ITER_EQ, ["x"])] == [[1, "x", 7], [2, "x", 7]]
    assert len(s.index(1)) == len(s.index(2)) == 3
