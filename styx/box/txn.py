"""Interactive transactions: private writes applied at commit, tracked
reads, conflicts, and read views (Tarantool's memtx transaction manager,
serializable as it promises).

A transaction (BEGIN in a stream, or `box.begin()` in a procedure) keeps its
writes to itself: per space, an overlay mapping a primary key to the tuple
the transaction wrote there (or None: deleted), with the committed tuple it
found there the first time it touched that key. `View` is a space as the
transaction sees it: the overlay over the committed data. So a transaction
reads its own writes and the committed data of others, and others do not
see its writes before COMMIT.

Serializable, by tracking what each transaction read:
- every read through a View is kept: a point read, or a range (index,
  iterator, key, the position it started after), which covers the gaps
  between the tuples it returned (phantoms) as well as the tuples; count,
  len, min and max are ranges too. A limit is not kept: the whole range
  counts as read, which can only abort more, never less. Past READS_MAX
  ranges on one space, the whole space counts as read, and past POINTS_MAX
  point reads, reads are kept as ranges (the read set stays bounded);
- when a change is committed (a transaction's COMMIT, or any autocommit
  write), every other open transaction whose reads cover the old or the new
  tuple is in conflict with it. One that has written is aborted: its later
  requests and its COMMIT get ER_TRANSACTION_CONFLICT (97), as Tarantool's
  since 2.10.1. One that has only read is sent to a read view instead: from
  that moment it sees every tuple as it was before that commit, whatever
  commits after (the versions it needs are kept for it, and freed when it
  ends); if it then writes, it is aborted (97);
- write-write: COMMIT checks, for every key it wrote, that the committed
  tuple there is still the one it first found (first committer wins, 97);
- then it applies the writes in order; if one breaks a constraint (another
  commit took a unique secondary key), everything applied is undone and the
  error is returned.

Isolation levels (BEGIN's TXN_ISOLATION), as Tarantool's: a commit is in
memory before the WAL has written it ("prepared"). read-committed sees
prepared changes; read-confirmed, and best-effort (the default) while it has
not written, see only written ones: the manager keeps, per key, the
versions before the changes still in flight (only while such a transaction
is open), and a View shows those. A read that looked past a prepared change
marks its transaction stale: it may not write (97). When the WAL is done
with a transaction, that is its commit for those readers: one that read
what it changed is sent to a read view (or aborted if it has written),
decided for all its changes before any version moves.

A transaction past its TIMEOUT is rolled back; its later requests get
ER_TRANSACTION_TIMEOUT (231). Outside transactions nothing is tracked: a
write costs one attribute test while no transaction can conflict.

Memory: each tuple a transaction writes is charged to the `memtx_memory`
quota when it is written, as memtx allocates it then: the write that does
not fit fails with ER_MEMORY_ISSUE (2), and an open transaction cannot hold
more than the quota. The charges go back when the transaction ends; COMMIT
then charges what it stores, as any write (less than was reserved). A read
view holds the versions it needs (one per key changed while it is open)
until its transaction ends, as Tarantool's do.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Sequence
from typing import Any

from ..protocol import constants as C
from ..protocol.errors import ER, BoxError
from .index import HashIndex, Index, TreeIndex
from .space import DROPPED, TRUNCATED, ChangeLog, Space, cost, unpack_tuple

__all__ = ["Txn", "View", "TxnManager"]

ACTIVE, TIMED_OUT, DONE, CONFLICTED = range(4)
DEFAULT, READ_COMMITTED, READ_CONFIRMED, BEST_EFFORT = range(4)  # BEGIN's TXN_ISOLATION
READS_MAX = 256  # ranges kept per transaction and space, past which the whole space counts as read
POINTS_MAX = 4096  # point reads kept per transaction; past them, reads are kept as ranges (which stay bounded)

Read = tuple[Index, int, Any, Any]  # index, iterator, key, after
BY_KEY = -1  # a Read's iterator for one key as index.key_of makes it (a write's own lookup)


class Entry:
    """The transaction's write to one primary key (or, in a read view, the
    version of it the transaction sees)."""

    __slots__ = ("seen", "data", "fields")

    def __init__(self, seen: bytes | None) -> None:
        self.seen = seen  # the committed tuple found there first (None: none)
        self.data: bytes | None = None  # what the transaction put there (None: deleted)
        self.fields: list[Any] | None = None

    @classmethod
    def version(cls, data: bytes | None, fields: list[Any] | None) -> Entry:
        """A version a View shows in place of what memory holds (read
        views, confirmed data): `data` (None: absent), unpacked as `fields`."""
        entry = cls(data)
        entry.data, entry.fields = data, fields
        return entry


class TxnManager:
    """The open transactions that can be in conflict, and what they read,
    indexed so that a committed change finds the readers it conflicts with
    without looking at the others: point reads by (index, key), ranges by
    space. Told of every committed change while there is one (ChangeLog.watch)."""

    def __init__(self, changes: ChangeLog) -> None:
        self.changes = changes
        self.points: dict[tuple[Index, Any], dict[Txn, None]] = {}
        self.ranges: dict[Space, dict[Txn, list[Read]]] = {}
        self.views: dict[Txn, None] = {}  # in read views: they keep the versions they see
        self.txns: dict[Txn, None] = {}  # every transaction tracked here
        self.committing: Txn | None = None  # its own writes are no conflict to it
        self.conflicts = 0  # transactions aborted by a conflict
        self.read_views = 0  # transactions sent to a read view
        # Changes made in memory whose WAL write is not done yet ("prepared",
        # in Tarantool's words), as the versions before them: kept only while
        # an open transaction may have to see past them (see `confirmed_only`).
        self.unconfirmed: dict[Space, dict[Any, Entry]] = {}
        self._chains: dict[tuple[Space, Any], collections.deque[bytes | None]] = {}  # old versions, in WAL order
        self.confirmed_readers = 0  # open transactions whose level may read confirmed data only
        self.in_flight: Callable[[], list[list[Any]]] | None = None  # the WAL's changes not yet back (commit.py)

    # -- what is not confirmed yet (the WAL has it, the disk not yet) -------------

    def reader_opened(self) -> None:
        self.confirmed_readers += 1
        if self.confirmed_readers == 1 and self.in_flight is not None:
            for changes in self.in_flight():  # what went to the WAL before anyone needed to know
                self.prepared(changes)

    def reader_closed(self) -> None:
        self.confirmed_readers -= 1
        if not self.confirmed_readers:
            self.unconfirmed.clear()
            self._chains.clear()

    def prepared(self, changes: list[Any]) -> None:
        """(The committer) these changes went to the WAL: keep the versions
        before them, while someone may need them."""
        if not self.confirmed_readers:
            return
        for space, old, new in changes:
            if space is None or old is TRUNCATED or old is DROPPED:
                continue
            old_fields = None if old is None else unpack_tuple(old)
            pk_key = space.pk.key_of(old_fields if old_fields is not None else unpack_tuple(new))
            chain = self._chains.get((space, pk_key))
            if chain is None:
                chain = self._chains[(space, pk_key)] = collections.deque()
                self._show(space, pk_key, old)  # the confirmed version: before the first change in flight
            chain.append(old)

    def confirmed(self, changes: list[Any], failed: bool = False) -> None:
        """(The committer) the WAL is done with these changes: written (the
        confirmed version moves on to what the next change in flight found),
        or failed and undone, newest first (the confirmed version stays)."""
        if not self._chains:
            return
        data = [(space, None if old is None else unpack_tuple(old), None if new is None else unpack_tuple(new))
                for space, old, new in changes if space is not None and old is not TRUNCATED and old is not DROPPED]
        if not failed:
            # For those that see confirmed data only, this is when the
            # transaction commits: what they read of it is overwritten now.
            # All of it is decided before any version moves (a read view
            # then keeps the transaction whole).
            for space, old_fields, new_fields in data:
                for txn in self.readers(space, old_fields, new_fields):
                    if txn.confirmed_only():
                        txn.conflict()
        for space, old_fields, new_fields in data:
            pk_key = space.pk.key_of(old_fields if old_fields is not None else new_fields)
            chain = self._chains.get((space, pk_key))
            if chain is None:
                continue
            if failed:
                chain.pop()
            else:
                chain.popleft()
                if chain:
                    self._show(space, pk_key, chain[0])
            if not chain:
                del self._chains[(space, pk_key)]
                versions = self.unconfirmed.get(space)
                if versions is not None:
                    versions.pop(pk_key, None)
                    if not versions:
                        del self.unconfirmed[space]

    def _show(self, space: Space, pk_key: Any, data: bytes | None) -> None:
        """What those that see confirmed data only see at `pk_key`."""
        versions = self.unconfirmed.get(space)
        if versions is None:
            versions = self.unconfirmed[space] = {}
        versions[pk_key] = Entry.version(data, None if data is None else unpack_tuple(data))

    def _track(self, txn: Txn) -> None:
        if txn not in self.txns:
            self.txns[txn] = None
            self.changes.watch = self.changed

    def add_point(self, txn: Txn, index: Index, key: Any) -> None:
        self._track(txn)
        readers = self.points.get((index, key))
        if readers is None:
            readers = self.points[(index, key)] = {}
        readers[txn] = None
        txn.points.append((index, key))

    def add_range(self, txn: Txn, space: Space, read: Read) -> None:
        self._track(txn)
        by_txn = self.ranges.get(space)
        if by_txn is None:
            by_txn = self.ranges[space] = {}
        reads = by_txn.get(txn)
        if reads is None:
            reads = by_txn[txn] = []
            txn.range_spaces.append(space)
        if len(reads) >= READS_MAX:  # from now on, the whole space
            reads[:] = [(space.pk, C.ITER_ALL, (), None)]
            return
        reads.append(read)

    def to_view(self, txn: Txn) -> None:
        """`txn` goes to a read view: its reads no longer matter."""
        self._drop_reads(txn)
        self.views[txn] = None
        self.read_views += 1

    def _drop_reads(self, txn: Txn) -> None:
        for point in txn.points:
            readers = self.points.get(point)
            if readers is not None:
                readers.pop(txn, None)
                if not readers:
                    del self.points[point]
        txn.points.clear()
        for space in txn.range_spaces:
            by_txn = self.ranges.get(space)
            if by_txn is not None and by_txn.pop(txn, None) is not None and not by_txn:
                del self.ranges[space]
        txn.range_spaces.clear()

    def forget(self, txn: Txn) -> None:
        if self.txns.pop(txn, 0) is None:
            self._drop_reads(txn)
            self.views.pop(txn, None)
            if not self.txns:
                self.changes.watch = None

    def readers(self, space: Space, old_fields: list[Any] | None, fields: list[Any] | None) -> list[Txn]:
        """The transactions whose reads cover one of these tuples of `space`."""
        found: dict[Txn, None] = {}
        points = self.points
        if points:
            for index in space.indexes:
                if index.unique:
                    for f in (old_fields, fields):
                        if f is not None:
                            readers = points.get((index, index.key_of(f)))
                            if readers:
                                found.update(readers)
        for txn, reads in self.ranges.get(space, {}).items():
            if txn not in found and _covers(space, reads, old_fields, fields):
                found[txn] = None
        return list(found)

    def changed(self, space: Space, old: Any, old_fields: list[Any] | None, fields: list[Any] | None,
                new: bytes | None) -> None:
        """A change was committed to `space` (old and new tuples; TRUNCATED
        or DROPPED: emptied)."""
        committing = self.committing
        if old is TRUNCATED or old is DROPPED:
            for txn in list(self.txns):
                if txn is not committing and txn.uses(space):
                    txn._abort()
            return
        if committing is None:  # (a COMMIT's changes were decided on in before_commit)
            for txn in self.readers(space, old_fields, fields):
                txn.conflict()
        for txn in self.views:
            if txn is not committing:
                txn.keep_version(space, old, old_fields, fields)

    def before_commit(self, txn: Txn, changes: list[tuple[Space, bytes | None, list[Any] | None]]) -> None:
        """`txn` is about to apply `changes` (space, old tuple, new fields):
        decide the others' fate before any of it is visible, so that a read
        view sees none of the commit."""
        for space, old, fields in changes:
            for other in self.readers(space, None if old is None else unpack_tuple(old), fields):
                if other is not txn:
                    other.conflict()


def _covers(space: Space, reads: list[Read], old_fields: list[Any] | None, fields: list[Any] | None) -> bool:
    """Does one of these range reads see, or see the absence of, one of these tuples?"""
    for index, iterator, key, after in reads:
        if index not in space.indexes:
            return True  # an index dropped since: assume the worst
        if ((old_fields is not None and _matches(index, iterator, key, after, old_fields))
                or (fields is not None and _matches(index, iterator, key, after, fields))):
            return True
    return False


class Txn:
    def __init__(self, timeout: float | None = None, isolation: int = 0,
                 manager: TxnManager | None = None) -> None:
        self.timeout = timeout
        self.isolation = isolation
        self.manager = manager
        self.state = ACTIVE
        self.writes: dict[Space, dict[Any, Entry]] = {}
        self.order: list[tuple[Space, Any]] = []  # keys in the order first written
        self.points: list[tuple[Index, Any]] = []  # its point reads, as the manager has them
        self.range_spaces: list[Space] = []  # the spaces it has range reads of
        self.rv: dict[Space, dict[Any, Entry]] | None = None  # the read view, once sent to one
        self.stale = False  # it read past a change not yet confirmed: it may not write
        self.timer: Any = None
        self._reader = manager is not None and isolation != READ_COMMITTED
        if self._reader:
            manager.reader_opened()  # type: ignore[union-attr]  # _reader implies a manager

    def confirmed_only(self) -> bool:
        """Does it see only what the WAL has confirmed? (Tarantool's levels:
        read-confirmed always; best-effort, the default, while it has not
        written; read-committed never.)"""
        return self._reader and (self.isolation == READ_CONFIRMED or not self.order)

    def _end_reader(self) -> None:
        if self._reader:
            self._reader = False
            self.manager.reader_closed()  # type: ignore[union-attr]  # _reader implies a manager

    def check(self) -> None:
        """Raise if the transaction can no longer do anything."""
        if self.state == CONFLICTED:
            raise BoxError(ER.TRANSACTION_CONFLICT)
        if self.state == TIMED_OUT:
            raise BoxError(ER.TRANSACTION_TIMEOUT)
        if self.state == DONE:
            raise BoxError(ER.NO_TRANSACTION)

    def view(self, space: Space) -> View:
        return View(self, space)

    # -- reads and conflicts ---------------------------------------------------------

    def read(self, space: Space, index: Index, iterator: int, key: Any, after: Any = None) -> None:
        """Keep a read: a point read (an EQ with the whole key of a unique
        index, or BY_KEY) by its key, anything else as a range."""
        manager = self.manager
        if self.rv is not None or manager is None or self.state != ACTIVE:
            return  # a read view cannot conflict any more
        if len(self.points) >= POINTS_MAX:
            if iterator == BY_KEY:  # a key as key_of makes it: not one a range can take
                iterator, key = C.ITER_ALL, ()
        elif iterator == BY_KEY:
            manager.add_point(self, index, key)
            return
        elif (iterator == C.ITER_EQ and index.unique and after is None and len(key) == len(index.parts)
                and None not in key):
            try:
                manager.add_point(self, index, index.search_of(key))
                return
            except Exception:  # noqa: BLE001 - a key it cannot normalize is kept as a range
                pass
        manager.add_range(self, space, (index, iterator, key, after))

    def uses(self, space: Space) -> bool:
        """Has it read or written `space`, or does its read view hold versions of it?"""
        m = self.manager
        return (space in self.writes or (self.rv is not None and space in self.rv)
                or (m is not None and (self in m.ranges.get(space, {})
                                       or any(index in space.indexes for index, _ in self.points))))

    def keep_version(self, space: Space, old: bytes | None, old_fields: list[Any] | None,
                     fields: list[Any] | None) -> None:
        """(In a read view) another's change was committed: keep the version
        of the tuple this transaction sees, if it is the first change to it."""
        assert self.rv is not None
        versions = self.rv.get(space)
        if versions is None:
            versions = self.rv[space] = {}
        pk_key = space.pk.key_of(old_fields if old_fields is not None else fields)  # type: ignore[arg-type]
        if pk_key not in versions:
            versions[pk_key] = Entry.version(old, old_fields)

    def conflict(self) -> None:
        """A commit overwrote what this transaction read: abort it if it has
        written, else send it to a read view."""
        if self.state != ACTIVE or self.rv is not None:
            return
        if self.order:
            self._abort()
        else:
            self.rv = {}
            if self.manager is not None:
                if self.confirmed_only():  # the view it keeps is of confirmed data
                    for space, versions in self.manager.unconfirmed.items():
                        self.rv[space] = dict(versions)
                self.manager.to_view(self)

    def _abort(self) -> None:
        self._release()
        self.state = CONFLICTED
        if self.manager is not None:
            self.manager.conflicts += 1

    # -- the end ---------------------------------------------------------------------

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
        if self.manager is not None:
            self.manager.forget(self)
        self.rv = None
        self._end_reader()

    def commit(self) -> None:
        try:
            self.check()
        except BoxError:
            if self.state == CONFLICTED:
                self.rollback()
            raise
        self._cancel_timer()
        self._refund()  # applying the writes charges them again
        manager = self.manager
        try:
            for space, pk_key in self.order:
                entry = self.writes[space][pk_key]
                if space.pk.by_key(pk_key) is not entry.seen:
                    raise BoxError(ER.TRANSACTION_CONFLICT)
            if manager is not None and manager.txns and self.order:
                manager.before_commit(self, [(space, self.writes[space][k].seen, self.writes[space][k].fields)
                                             for space, k in self.order])
                manager.committing = self
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
            if manager is not None:
                manager.committing = None
            self.writes.clear()
            self.order.clear()
            self.state = DONE
            if manager is not None:
                manager.forget(self)
            self.rv = None
            self._end_reader()

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
        # Its own writes; or, in a read view, the versions it sees instead;
        # reading confirmed data only, the versions before what is not, under its own writes.
        self.unconfirmed: dict[Any, Entry] | None = None
        if txn.rv is not None:
            self.overlay = txn.rv.get(space)
        else:
            self.overlay = txn.writes.get(space)
            manager = txn.manager
            if manager is not None and manager.unconfirmed and txn.confirmed_only():
                self.unconfirmed = manager.unconfirmed.get(space)
                if self.unconfirmed:
                    self.overlay = {**self.unconfirmed, **(self.overlay or {})}

    # -- what the transaction sees ----------------------------------------------

    def _current(self, pk_key: Any) -> bytes | None:
        self.txn.read(self.space, self.space.pk, BY_KEY, pk_key)
        if self.overlay is not None:
            entry = self.overlay.get(pk_key)
            if entry is not None:
                return entry.data
        return self.space.pk.by_key(pk_key)

    def select(self, index: Index, iterator: int, key: Sequence[Any], offset: int = 0,
               limit: int = 0xFFFFFFFF, after: Any = None) -> list[bytes]:
        self.txn.check()
        space = self.space
        self.txn.read(space, index, iterator, key, after)
        if self.unconfirmed and not self.txn.stale:
            self._note_stale(index, iterator, key, after)
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

    def _note_stale(self, index: Index, iterator: int, key: Sequence[Any], after: Any) -> None:
        """Does this read see past a change not yet confirmed (its old version
        instead of the one in memory)? Then the transaction must not write:
        what it saw may be gone for good once the WAL is done."""
        pk = self.space.pk
        for pk_key, entry in (self.unconfirmed or {}).items():
            current = pk.by_key(pk_key)
            for fields in (entry.fields, None if current is None else unpack_tuple(current)):
                if fields is not None and _matches(index, iterator, key, after, fields):
                    self.txn.stale = True
                    return

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
        if txn.rv is not None or txn.stale:  # what it read is gone: it cannot write on top of it
            txn._abort()
            raise BoxError(ER.TRANSACTION_CONFLICT)
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

    def store(self, fields: list[Any], replace: bool) -> bytes:
        """INSERT (`replace` False) or REPLACE, in the transaction."""
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
        return self.store(fields, replace=False)

    def replace(self, fields: list[Any]) -> bytes:
        return self.store(fields, replace=True)

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
        return self.store(fields, replace=True)

    def upsert(self, fields: list[Any], ops: Any, index_base: int = 1) -> None:
        self.txn.check()
        space = self.space
        space._validate(fields)
        old = self._current(space.pk.key_of(fields))
        if old is None:
            space.check_upsert_ops(ops, index_base)
            self.store(fields, replace=False)
            return
        upserted = space.upserted(unpack_tuple(old), ops, index_base)
        if upserted is not None:
            self.store(upserted[0], replace=True)

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

