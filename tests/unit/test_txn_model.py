"""Serializability, checked by brute force (styx/box/txn.py).

A hypothesis state machine interleaves a few transactions on a small space:
point reads, range reads, counts, replaces and deletes inside transactions,
autocommit writes outside them, commits and rollbacks, in any order. Every
operation's result is logged. After every step, the history of what
committed (each committed transaction's operations, each autocommit write
on its own) must be equivalent to some serial order of it: replayed one
transaction after another from the initial data, some order gives every
read the same answer and ends with the same data. The orders are tried
all (a history holds a handful of transactions).

Aborted transactions (error 97) leave no trace and need no check: what they
read is never acted on, as their writes never happen.
"""

from __future__ import annotations

import os
from typing import Any

import msgpack
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from styx.box.schema import Schema
from styx.box.txn import Txn
from styx.box.users import ADMIN, Users
from styx.protocol import constants as C
from styx.protocol.errors import ER, BoxError

KEYS = st.integers(0, 2)
TXNS = st.integers(0, 2)
Op = tuple[Any, ...]


def replay(initial: dict[int, int], history: list[list[Op]]) -> dict[int, int] | None:
    """The data after running `history` serially, or None if some read
    answers differently from what was logged."""
    state = dict(initial)
    for ops in history:
        for op in ops:
            kind = op[0]
            if kind == "get" and state.get(op[1]) != op[2]:
                return None
            if kind == "ge" and sorted((k, v) for k, v in state.items() if k >= op[1]) != op[2]:
                return None
            if kind == "count" and len(state) != op[1]:
                return None
            if kind == "put":
                state[op[1]] = op[2]
            elif kind == "del":
                state.pop(op[1], None)
    return state


def serial_order(state: dict[int, int], history: list[list[Op]], actual: dict[int, int]) -> bool:
    """Is there an order of `history` that, run serially from `state`, reads
    what was logged and ends with `actual`? Every order is tried, depth
    first, giving up on a prefix at its first read that differs."""
    if not history:
        return state == actual
    for i, ops in enumerate(history):
        after = replay(state, [ops])
        if after is not None and serial_order(after, history[:i] + history[i + 1:], actual):
            return True
    return False


class Transactions(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.schema = Schema(Users())
        space = self.schema.create_space("t", ADMIN)
        assert space is not None
        self.schema.create_index(space, "pk", type="TREE", parts=[1, "unsigned"])
        self.space = space
        self.initial = {0: 0, 2: 20}
        for k, v in self.initial.items():
            space.replace([k, v])
        self.open: dict[int, tuple[Txn, list[Op]]] = {}
        self.history: list[list[Op]] = []
        self.counter = 100

    def _value(self) -> int:
        self.counter += 1
        return self.counter

    def _run(self, i: int, op: Any) -> Any:
        txn, log = self.open[i]
        try:
            return op(txn.view(self.space), log)
        except BoxError as e:
            assert e.code == ER.TRANSACTION_CONFLICT, e
            txn.rollback()
            del self.open[i]
            return None

    @rule(i=TXNS)
    def begin(self, i: int) -> None:
        if i not in self.open:
            self.open[i] = (Txn(manager=self.schema.txns), [])

    @precondition(lambda self: self.open)
    @rule(data=st.data(), k=KEYS)
    def get(self, data: st.DataObject, k: int) -> None:
        i = data.draw(st.sampled_from(sorted(self.open)))

        def op(view: Any, log: list[Op]) -> None:
            found = view.get(self.space.pk, [k])
            log.append(("get", k, None if found is None else msgpack.unpackb(found)[1]))
        self._run(i, op)

    @precondition(lambda self: self.open)
    @rule(data=st.data(), k=KEYS)
    def scan(self, data: st.DataObject, k: int) -> None:
        i = data.draw(st.sampled_from(sorted(self.open)))

        def op(view: Any, log: list[Op]) -> None:
            rows = [msgpack.unpackb(d) for d in view.select(self.space.pk, C.ITER_GE, [k])]
            log.append(("ge", k, [tuple(r) for r in rows]))
        self._run(i, op)

    @precondition(lambda self: self.open)
    @rule(data=st.data())
    def count(self, data: st.DataObject) -> None:
        i = data.draw(st.sampled_from(sorted(self.open)))
        self._run(i, lambda view, log: log.append(("count", view.count(self.space.pk))))

    @precondition(lambda self: self.open)
    @rule(data=st.data(), k=KEYS)
    def put(self, data: st.DataObject, k: int) -> None:
        i = data.draw(st.sampled_from(sorted(self.open)))
        v = self._value()

        def op(view: Any, log: list[Op]) -> None:
            view.replace([k, v])
            log.append(("put", k, v))
        self._run(i, op)

    @precondition(lambda self: self.open)
    @rule(data=st.data(), k=KEYS)
    def delete(self, data: st.DataObject, k: int) -> None:
        i = data.draw(st.sampled_from(sorted(self.open)))

        def op(view: Any, log: list[Op]) -> None:
            view.delete(self.space.pk, [k])
            log.append(("del", k))
        self._run(i, op)

    @rule(k=KEYS, remove=st.booleans())
    def autocommit(self, k: int, remove: bool) -> None:
        if remove:
            self.space.delete(self.space.pk, [k])
            self.history.append([("del", k)])
        else:
            v = self._value()
            self.space.replace([k, v])
            self.history.append([("put", k, v)])

    @precondition(lambda self: self.open)
    @rule(data=st.data())
    def commit(self, data: st.DataObject) -> None:
        i = data.draw(st.sampled_from(sorted(self.open)))
        txn, log = self.open.pop(i)
        try:
            txn.commit()
        except BoxError as e:
            assert e.code == ER.TRANSACTION_CONFLICT, e
            return
        self.history.append(log)

    @precondition(lambda self: self.open)
    @rule(data=st.data())
    def rollback(self, data: st.DataObject) -> None:
        i = data.draw(st.sampled_from(sorted(self.open)))
        self.open.pop(i)[0].rollback()

    @invariant()
    def serializable(self) -> None:
        actual = {k: v for k, v in (msgpack.unpackb(d) for d in self.space.tuples())}
        if not serial_order(self.initial, self.history, actual):
            raise AssertionError(f"no serial order gives this history: {self.history}, data {actual}")

    def teardown(self) -> None:
        for txn, _ in self.open.values():
            txn.rollback()
        # Nothing is tracked once every transaction has ended.
        assert not self.schema.txns.txns and self.schema.changes.watch is None


Transactions.TestCase.settings = settings(
    max_examples=int(os.environ.get("STYX_FUZZ_EXAMPLES", 500)), stateful_step_count=20, deadline=None,
    suppress_health_check=[HealthCheck.too_slow], database=None)
test_transactions_are_serializable = Transactions.TestCase


def test_read_sets_stay_bounded_and_still_conflict() -> None:
    """Past POINTS_MAX point reads a transaction's reads are kept as ranges
    (at most READS_MAX a space): memory stays bounded, and a write to what it
    read after the cap still aborts it."""
    from styx.box.txn import POINTS_MAX, READS_MAX

    schema = Schema(Users())
    space = schema.create_space("t", ADMIN)
    assert space is not None
    schema.create_index(space, "pk", type="TREE", parts=[1, "unsigned"])
    txn = Txn(manager=schema.txns)
    view = txn.view(space)
    view.replace([0, 0])  # it has written: a conflict aborts it
    for k in range(1, POINTS_MAX + 600):
        view.get(space.pk, [k])
    assert len(txn.points) <= POINTS_MAX
    assert len(schema.txns.ranges[space][txn]) <= READS_MAX
    space.replace([POINTS_MAX + 500, 1])  # read after the cap
    try:
        view.get(space.pk, [1])
    except BoxError as e:
        assert e.code == ER.TRANSACTION_CONFLICT
    else:
        raise AssertionError("not aborted")
    txn.rollback()
    assert not schema.txns.txns and not schema.txns.points and not schema.txns.ranges
