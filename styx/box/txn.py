"""Interactive transactions: private writes, applied at commit.

A transaction (BEGIN in a stream, or `box.begin()` in a procedure) keeps its
writes to itself: per space, an overlay mapping a primary key to the tuple
the transaction wrote there (or None: deleted), with the committed tuple it
found there the first time it touched that key. `View` is a space as the
transaction sees it: the overlay over the committed data. So:

- a transaction reads its own writes, and committed data of others;
- other sessions do not see its writes before COMMIT;
- COMMIT checks, for every key it wrote, that the committed tuple there is
  still the one it first found; if another transaction committed a change
  to it meanwhile, COMMIT fails with ER_TRANSACTION_CONFLICT (97) and
  changes nothing (first committer wins);
- then it applies the writes in order; if one breaks a constraint (another
  commit took a unique secondary key), everything applied is undone and the
  error is returned.

That is read-committed isolation with write-write conflict detection.
Tarantool's memtx MVCC does more (it also aborts on read-write conflicts);
TXN_ISOLATION is accepted and recorded, and every level behaves as above.
A transaction past its TIMEOUT is rolled back; its later requests get
ER_TRANSACTION_TIMEOUT (231).

Memory: each tuple a transaction writes is charged to the `memtx_memory`
quota when it is written, as memtx allocates it then: the write that does
not fit fails with ER_MEMORY_ISSUE (2), and an open transaction cannot hold
more than the quota. The charges go back when the transaction ends; COMMIT
then charges what it stores, as any write (less than was reserved).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..protocol import constants as C
from ..protocol.errors import ER, BoxError
from .index import HashIndex, Index, TreeIndex
from .space import Space, cost, unpack_tuple

__all__ = ["Txn", "View"]

ACTIVE, TIMED_OUT, DONE = range(3)


class Entry:
    """The transaction's write to one primary key."""

    __slots__ = ("seen", "data", "fields")

    def __init__(self, seen: bytes | None) -> None:
        self.seen = seen  # the committed tuple found there first (None: none)
        self.data: bytes | None = None  # what the transaction put there (None: deleted)
        self.fields: list[Any] | None = None


class Txn:
    def __init__(self, timeout: float | None = None, isolation: int = 0) -> None:
        self.timeout = timeout
        self.isolation = isolation
        self.state = ACTIVE
        self.writes: dict[Space, dict[Any, Entry]] = {}
        self.order: list[tuple[Space, Any]] = []  # keys in the order first written
        self.timer: Any = None

    def check(self) -> None:
        """Raise if the transaction can no longer do anything."""
        if self.state == TIMED_OUT:
            raise BoxError(ER.TRANSACTION_TIMEOUT)
        if self.state == DONE:
            raise BoxError(ER.NO_TRANSACTION)

    def view(self, space: Space) -> View:
        return View(self, space)

    def expire(self) -> None:
        """The TIMEOUT passed: roll back; later requests get 231."""
        if self.state == ACTIVE:
            self._release()
            self.state = TIMED_OUT

    def rollback(self) -> None:
        self._cancel_timer()
        self._release()
        self.state = DONE

    def _refund(self) -> None:
        """Give back what the writes were charged."""
        for space, entries in self.writes.items():
            for entry in entries.values():
                if entry.data is not None:
                    space.quota.refund(cost(entry.data))

    def _release(self) -> None:
        self._refund()
        self.writes.clear()
        self.order.clear()

    def commit(self) -> None:
        self.check()
        self._cancel_timer()
        self._refund()  # applying the writes charges them again
        try:
            for space, pk_key in self.order:
                entry = self.writes[space][pk_key]
                if space.pk.by_key(pk_key) is not entry.seen:
                    raise BoxError(ER.TRANSACTION_CONFLICT)
            applied: list[tuple[Space, bytes | None, bytes | None]] = []
            try:
                for space, pk_key in self.order:
                    entry = self.writes[space][pk_key]
                    old = entry.seen
                    if entry.fields is None:  # deleted
                        if old is not None:
                            space.pk_delete(old)
                    else:
                        space.pk_store(entry.fields, old)
                    applied.append((space, old, entry.data))
            except BoxError:
                for space, old, new in reversed(applied):
                    space.revert(old, new)
                raise
        finally:
            self.writes.clear()
            self.order.clear()
            self.state = DONE

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class View:
    """A space as a transaction sees it: its own writes over committed data.

    It answers the same data calls as `Space` (select, get, insert, replace,
    update, upsert, delete, count, len); writes go to the transaction.
    """

    def __init__(self, txn: Txn, space: Space) -> None:
        self.txn = txn
        self.space = space
        self.overlay = txn.writes.get(space)

    # -- what the transaction sees ----------------------------------------------

    def _current(self, pk_key: Any) -> bytes | None:
        if self.overlay is not None:
            entry = self.overlay.get(pk_key)
            if entry is not None:
                return entry.data
        return self.space.pk.by_key(pk_key)

    def select(self, index: Index, iterator: int, key: Sequence[Any], offset: int = 0,
               limit: int = 0xFFFFFFFF, after: Any = None) -> list[bytes]:
        self.txn.check()
        space = self.space
        if not self.overlay:
            return space.select(index, iterator, key, offset, limit, after)
        base = space.select(index, iterator, key, 0, 0xFFFFFFFF, after)
        pk = space.pk
        rows = []
        for data in base:
            fields = unpack_tuple(data)
            if pk.key_of(fields) not in self.overlay:
                rows.append((index.key_of(fields), data))
        for entry in self.overlay.values():
            written, wdata = entry.fields, entry.data
            if written is not None and wdata is not None and _matches(index, iterator, key, after, written):
                rows.append((index.key_of(written), wdata))
        if not isinstance(index, HashIndex):
            rows.sort(key=lambda r: r[0],
                      reverse=iterator in (C.ITER_REQ, C.ITER_LT, C.ITER_LE))
        out = [data for _, data in rows[offset:]]
        return out[:limit]

    def get(self, index: Index, key: Sequence[Any]) -> bytes | None:
        rows = self.select(index, C.ITER_EQ, key, 0, 1) if key else []
        if index.unique:
            index.check_key(key, exact=True)
        return rows[0] if rows else None

    def count(self, index: Index, iterator: int = C.ITER_ALL, key: Sequence[Any] = ()) -> int:
        return len(self.select(index, iterator, key))

    def __len__(self) -> int:
        return self.count(self.space.pk)

    # -- writes ----------------------------------------------------------------------

    def _record(self, fields: list[Any] | None, data: bytes | None, pk_key: Any) -> None:
        txn = self.txn
        overlay = txn.writes.get(self.space)
        if overlay is None:
            overlay = txn.writes[self.space] = self.overlay = {}
        entry = overlay.get(pk_key)
        if data is not None:
            self.space.quota.charge(cost(data))  # first: past the quota, nothing changes
        if entry is None:
            entry = overlay[pk_key] = Entry(self.space.pk.by_key(pk_key))
            txn.order.append((self.space, pk_key))
        elif entry.data is not None:
            self.space.quota.refund(cost(entry.data))
        entry.data = data
        entry.fields = fields

    def _unique_ok(self, fields: list[Any], pk_key: Any) -> None:
        """Secondary unique keys, as the transaction sees them."""
        space = self.space
        for idx in space.indexes[1:]:
            if not idx.unique:
                continue
            other = idx.find(fields)
            if other is not None:
                other_pk = space.pk.key_of(unpack_tuple(other))
                if other_pk != pk_key and not (self.overlay and other_pk in self.overlay):
                    raise space.duplicate(idx)
            for k, entry in (self.overlay or {}).items():
                if (k != pk_key and entry.fields is not None
                        and idx.key_of(entry.fields) == idx.key_of(fields)):
                    raise space.duplicate(idx)

    def _store(self, fields: list[Any], replace: bool) -> bytes:
        self.txn.check()
        space = self.space
        data = space._validate(fields)
        pk_key = space.pk.key_of(fields)
        if not replace and self._current(pk_key) is not None:
            raise space.duplicate(space.pk)
        self._unique_ok(fields, pk_key)
        self._record(fields, data, pk_key)
        return data

    def insert(self, fields: list[Any]) -> bytes:
        return self._store(fields, replace=False)

    def replace(self, fields: list[Any]) -> bytes:
        return self._store(fields, replace=True)

    def delete(self, index: Index, key: Sequence[Any]) -> bytes | None:
        self.txn.check()
        space = self.space
        space._check_unique_key(index, key)
        old = self.get(index, key)
        if old is not None:
            self._record(None, None, space.pk.key_of(unpack_tuple(old)))
        return old

    def update(self, index: Index, key: Sequence[Any], ops: Any, index_base: int = 1) -> bytes | None:
        self.txn.check()
        space = self.space
        space._check_unique_key(index, key)
        old = self.get(index, key)
        if old is None:
            return None
        fields, _ = space.updated(unpack_tuple(old), ops, index_base)
        return self._store(fields, replace=True)

    def upsert(self, fields: list[Any], ops: Any, index_base: int = 1) -> None:
        self.txn.check()
        space = self.space
        space._validate(fields)
        old = self._current(space.pk.key_of(fields))
        if old is None:
            space.check_upsert_ops(ops, index_base)
            self._store(fields, replace=False)
            return
        upserted = space.upserted(unpack_tuple(old), ops, index_base)
        if upserted is not None:
            self._store(upserted[0], replace=True)

    def truncate(self) -> None:
        raise BoxError(ER.UNSUPPORTED, "Styx", "truncate in a transaction")


def _matches(index: Index, iterator: int, key: Sequence[Any], after: Any,
             fields: list[Any]) -> bool:
    """Would `index.iterate(iterator, key)` return a tuple with these fields?"""
    k = index.key_of(fields)
    if isinstance(index, HashIndex):
        return not key or iterator == C.ITER_ALL or k == index.search_of(key)
    if after is not None:
        if iterator in (C.ITER_REQ, C.ITER_LT, C.ITER_LE):
            if not k < after:
                return False
        elif not k > after:
            return False
    if not key:
        return True
    assert isinstance(index, TreeIndex)  # the only other kind, HASH, returned above
    lo, hi = index.bounds(key)
    if iterator == C.ITER_ALL:
        iterator = C.ITER_GE
    if iterator in (C.ITER_EQ, C.ITER_REQ):
        return lo <= k <= hi
    if iterator == C.ITER_GE:
        return k >= lo
    if iterator == C.ITER_GT:
        return k > hi
    if iterator == C.ITER_LE:
        return k <= hi
    if iterator == C.ITER_LT:
        return k < lo
    return False

