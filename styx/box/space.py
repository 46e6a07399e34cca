"""A memtx space: its format, its indexes, and every data request on it.

Tuples are stored as the MessagePack bytes of their field array (see
index.py). Every change follows one rule: check everything first (types,
field counts, every unique index, the memory quota), then change every
index. A request that fails leaves the space exactly as it was, so no undo
log is needed.

Field numbers are 0-based inside Styx (as in `_index` rows) and 1-based in
the messages users read (as Tarantool's). Errors are Tarantool 2.6's: the
oracle the differential tests run against.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import msgpack

from ..protocol import constants as C
from ..protocol.codec import plain_first
from ..protocol.errors import ER, BoxError
from . import field_types as ft
from .index import HashIndex, Index, Part, TreeIndex
from .update import apply_update, apply_upsert, check_ops

__all__ = ["Space", "Quota", "KeyMap", "map_key", "pack_tuple", "unpack_tuple"]

log = logging.getLogger("styx.box")


def _log_upsert_error(err: BoxError) -> None:
    log.error("UPSERT operation failed: %s", err.message)

TUPLE_OVERHEAD = 64  # what a stored tuple costs beyond its bytes, for the quota


def pack_tuple(fields: Sequence[Any]) -> bytes:
    return msgpack.packb(fields, default=ft.default, use_bin_type=True,
                         unicode_errors="surrogateescape")


def _packer() -> Any:
    return plain_first(msgpack.Packer(default=ft.default, use_bin_type=True, unicode_errors="surrogateescape").pack)


def unpack_tuple(data: bytes) -> list[Any]:
    try:
        return msgpack.unpackb(data, ext_hook=ft.ext_hook, raw=False, strict_map_key=False,
                               unicode_errors="surrogateescape")
    except TypeError:  # a map whose key is an array or a map (MessagePack allows it)
        return msgpack.unpackb(data, ext_hook=ft.ext_hook, raw=False, strict_map_key=False,
                               unicode_errors="surrogateescape",
                               object_pairs_hook=lambda pairs: {map_key(k): v for k, v in pairs})


class KeyMap(dict[Any, Any]):  # a map that is a map's key: packs as a map
    __hash__ = object.__hash__  # type: ignore[assignment]  # by identity, as a Lua table key is


def map_key(k: Any) -> Any:
    """A map's key as a Python dict key: MessagePack allows an array (a
    tuple here) or a map (a KeyMap) as a key, Python wants it hashable."""
    if isinstance(k, list):
        return tuple(map_key(x) for x in k)
    if isinstance(k, dict) and not isinstance(k, KeyMap):
        return KeyMap(k)
    return k


class Quota:
    """memtx_memory: bytes tuples may take, all spaces together."""

    __slots__ = ("limit", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def charge(self, size: int) -> None:
        if self.used + size > self.limit:
            raise BoxError(ER.MEMORY_ISSUE, size, "slab allocator", "memtx_tuple",
                           type_name="OutOfMemory", errno=12)  # ENOMEM, as Tarantool
        self.used += size

    def refund(self, size: int) -> None:
        self.used -= size

    def resize(self, old: bytes, new: bytes) -> None:
        """A tuple replaced by one of another size: a growth is charged (and
        may fail, before anything changed), a shrink given back."""
        delta = len(new) - len(old)
        if delta > 0:
            self.charge(delta)
        else:
            self.used += delta


TRUNCATED: Any = type("Truncated", (), {"__repr__": lambda self: "TRUNCATED"})()
DROPPED: Any = type("Dropped", (), {"__repr__": lambda self: "DROPPED"})()


class ChangeLog:
    """Where every change to a space's data is told, while someone listens
    (the WAL): `record(space, old, new)` after each swap, old or new None
    for an insert or a delete; `record(space, TRUNCATED or DROPPED, tuples)`
    when a truncate or a drop empties it (the tuples it held). One per schema, shared by its spaces, as the
    quota is."""

    __slots__ = ("record", "watch", "read_only")

    def __init__(self) -> None:
        self.read_only = False  # box.cfg{read_only}: no change but to temporary spaces
        self.record: Callable[[Space, Any, Any], None] | None = None
        # The transaction manager (txn.py), while a transaction may conflict:
        # watch(space, old, old_fields, fields, new) after each swap;
        # watch(space, TRUNCATED or DROPPED, None, None, None) when emptied.
        self.watch: Callable[[Space, Any, Any, Any, Any], None] | None = None


def cost(data: bytes) -> int:
    """What a stored tuple takes of the memtx_memory quota."""
    return len(data) + TUPLE_OVERHEAD


class Space:
    engine = "memtx"

    def __init__(self, space_id: int, name: str, owner: int, quota: Quota, *,
                 format: list[dict[str, Any]] | None = None, field_count: int = 0,
                 flags: dict[str, Any] | None = None, changes: ChangeLog | None = None) -> None:
        self.id = space_id
        self.truncations = 0
        self.name = name
        self.owner = owner
        self.quota = quota
        self.changes = changes or ChangeLog()
        self.format: list[dict[str, Any]] = list(format or [])
        self.field_count = field_count
        self.flags = dict(flags or {})
        self.indexes: list[Index] = []
        # on_replace triggers: trigger(old, new, space name, request type)
        # after each statement; one that raises undoes the statement.
        self.on_replace: list[Callable[[Any, Any, str, str], None]] = []
        self._pack = _packer()  # one Packer per space: packb builds one per call
        self._refresh()

    def __repr__(self) -> str:
        return f"<Space {self.id} {self.name!r}>"

    # -- definition ------------------------------------------------------------

    def row(self) -> list[Any]:
        """The `_space` tuple."""
        return [self.id, self.owner, self.name, self.engine, self.field_count, dict(self.flags),
                [dict(f) for f in self.format]]

    @property
    def pk(self) -> Index:
        if not self.indexes:
            raise BoxError(ER.NO_SUCH_INDEX_ID, 0, self.name)
        return self.indexes[0]

    def index(self, iid: int | None = None, name: str | None = None) -> Index:
        if name is not None:
            for idx in self.indexes:
                if idx.name == name:
                    return idx
            raise BoxError(ER.NO_SUCH_INDEX_NAME, name, self.name)
        for idx in self.indexes:
            if idx.iid == iid:
                return idx
        raise BoxError(ER.NO_SUCH_INDEX_ID, iid, self.name)

    def field_no(self, field: int | str) -> int:
        """A format field name or a 1-based number -> 0-based number."""
        if isinstance(field, str):
            no = self.field_names.get(field)
            if no is None:
                raise BoxError(ER.ILLEGAL_PARAMS, f"Unknown field '{field}'")
            return no
        return field - 1

    def _refresh(self) -> None:
        """Recompute what checks need after the format or indexes change."""
        self.field_names = {f["name"]: i for i, f in enumerate(self.format) if "name" in f}
        self.defs = self._defs(self.indexes)
        self._check = ft.tuple_check(self.defs)
        # iid -> the entries of each index where a one-unsigned key finds its
        # tuple by one dict look-up, the key being the int itself: a point
        # read's (tx/process.py).
        self.points = {i.iid: i.entries for i in self.indexes if i.exact_unique and i.one_uint}

    def _defs(self, indexes: list[Index]) -> list[tuple[str, bool] | None]:
        """Each field's (type, nullable) as the format and `indexes` make it."""
        width = max([len(self.format)] + [p.fieldno + 1 for i in indexes for p in i.parts])
        defs: list[tuple[str, bool] | None] = [None] * width
        for i, f in enumerate(self.format):
            t = ft.field_type_by_name(str(f.get("type", "any"))) or ft.ANY
            nullable = bool(f.get("is_nullable", False))
            defs[i] = None if t == ft.ANY and nullable else (t, nullable)
        for idx in indexes:
            for p in idx.parts:
                d = defs[p.fieldno]
                if d is None or d[0] == ft.ANY:
                    defs[p.fieldno] = (p.type, p.is_nullable and (d is None or d[1]))
                else:
                    stricter = ft.stricter_field_type(d[0], p.type) or p.type
                    defs[p.fieldno] = (stricter, d[1] and p.is_nullable)
        return defs

    def make_index(self, iid: int, name: str, kind: str, parts: list[Part], unique: bool) -> Index:
        cls = TreeIndex if kind.upper() == "TREE" else HashIndex
        pk_parts = self.indexes[0].parts if self.indexes and iid != 0 else None
        idx = cls(self.id, iid, name, parts, unique, pk_parts)
        return idx

    def add_index(self, idx: Index, source: Index | None = None) -> None:
        """Build `idx` from the existing tuples, then start maintaining it.

        Any index holds every tuple: the primary key while it exists, the
        old definition of an index being altered (`source`)."""
        if source is None and self.indexes:
            source = self.indexes[0]
        if source is not None:
            defs = self._defs(self.indexes + [idx])  # the new format checks every tuple
            for data in source.iterate(C.ITER_ALL, ()):
                fields = unpack_tuple(data)
                ft.check_tuple(fields, defs)
                if idx.unique and idx.find(fields) is not None:
                    raise self.duplicate(idx)
                idx.put(fields, data)
        self.indexes.append(idx)
        self.indexes.sort(key=lambda i: i.iid)
        self._refresh()

    def drop_index(self, idx: Index) -> None:
        self.indexes.remove(idx)
        if idx.iid == 0:
            self.truncate(dropped=True)  # the tuples go with the primary key (the WAL logs the drop)
        self._refresh()

    def duplicate(self, idx: Index) -> BoxError:
        return BoxError(ER.TUPLE_FOUND, idx.name, self.name)

    # -- reads -----------------------------------------------------------------

    def select(self, index: Index, iterator: int, key: Sequence[Any], offset: int = 0,
               limit: int = 0xFFFFFFFF, after: Any = None) -> list[bytes]:
        if (iterator == C.ITER_EQ and after is None and index.exact_unique
                and len(key) == len(index.parts) and key):
            # A lookup by a full unique key (SELECT by primary key): no range scan.
            k0 = key[0]
            if not (index.one_uint and type(k0) is int and k0 >= 0):
                index.check_key(key, exact=False)
            data = index.get(key)
            return [data] if data is not None and not offset and limit else []
        self._check_iterator(index, iterator, key)
        if after is not None and isinstance(index, HashIndex):
            raise BoxError(ER.UNSUPPORTED_INDEX_FEATURE, index.name, "HASH", self.name,
                           self.engine, "pagination")
        out: list[bytes] = []
        if limit == 0:
            return out
        for data in index.iterate(iterator, key, after):
            if offset:
                offset -= 1
                continue
            out.append(data)
            if len(out) >= limit:
                break
        return out

    def _check_iterator(self, index: Index, iterator: int, key: Sequence[Any]) -> None:
        """Tarantool's order: the key first, then whether the index has the iterator."""
        if not 0 <= iterator < 12:
            raise BoxError(ER.ILLEGAL_PARAMS, "Invalid iterator type")
        if key:
            # 2.6's key_validate: too long (31), partial on a HASH (136), then
            # each part's type (18).
            if isinstance(index, HashIndex) and len(key) < len(index.parts):
                raise BoxError(ER.PARTIAL_KEY, "HASH", len(index.parts), len(key))
            index.check_key(key, exact=False)
        if isinstance(index, HashIndex):
            # Tarantool's HASH: a key must be whole; ALL ignores it, GT walks
            # on from it in hash order (or from the start), EQ finds it.
            if iterator in (C.ITER_ALL, C.ITER_GT):
                return
            if not key:
                raise BoxError(ER.PARTIAL_KEY, "HASH", len(index.parts), 0)
            if iterator != C.ITER_EQ:
                raise self.unsupported_iterator(index)
            return
        if iterator > C.ITER_GT:
            raise self.unsupported_iterator(index)

    def unsupported_iterator(self, index: Index) -> BoxError:
        return BoxError(ER.UNSUPPORTED_INDEX_FEATURE, message=(
            f"Index '{index.name}' ({index.type_name}) of space '{self.name}' ({self.engine}) "
            "does not support requested iterator type"))

    def get(self, index: Index, key: Sequence[Any]) -> bytes | None:
        self._check_unique_key(index, key)
        return index.get(key)

    def _check_unique_key(self, index: Index, key: Sequence[Any]) -> None:
        if not index.unique:
            raise BoxError(ER.MORE_THAN_ONE_TUPLE)
        index.check_key(key, exact=True)

    def count(self, index: Index, iterator: int = C.ITER_ALL, key: Sequence[Any] = ()) -> int:
        if not key or iterator == C.ITER_ALL:
            self._check_iterator(index, iterator, key)
            return len(index)
        return len(self.select(index, iterator, key))

    def __len__(self) -> int:
        return len(self.indexes[0]) if self.indexes else 0

    def bsize(self) -> int:
        return sum(len(d) for d in self.pk.iterate(C.ITER_ALL, ())) if self.indexes else 0

    # -- writes ------------------------------------------------------------------

    def _validate(self, fields: Any) -> bytes:
        if type(fields) is not list:
            raise BoxError(ER.TUPLE_NOT_ARRAY)
        if self.field_count and len(fields) != self.field_count:
            raise BoxError(ER.EXACT_FIELD_COUNT, len(fields), self.field_count)
        self._check(fields)
        return self._pack(fields)

    def _conflicts(self, fields: list[Any], old: bytes | None, replace: bool) -> None:
        """Raise if storing `fields` (replacing `old`) breaks a unique index.

        Only the secondary indexes are looked at: every caller has settled
        the primary key already (found `old` through it, refused an insert
        over it, or replaces whatever is there)."""
        indexes = self.indexes
        if len(indexes) < 2:
            return
        for idx in indexes[1:]:
            if not idx.unique:
                # Its entries are keyed by its parts and the primary key's. A
                # HASH primary key can hold two tuples this index's comparison
                # finds equal (1.5 and decimal 1.5): 2.6 refuses the second (3).
                other = idx.by_key(idx.key_of(fields))
                if other is not None and other is not old:
                    raise self.duplicate(idx)
                continue
            other = idx.find(fields)
            if other is not None and other is not old:
                raise self.duplicate(idx)

    def _swap(self, old: bytes | None, old_fields: list[Any] | None, fields: list[Any] | None,
              data: bytes | None, kind: str | None = None) -> None:
        """Commit: every index drops `old` and takes `data` (either may be None).

        The memory quota is charged first: past `memtx_memory` this raises
        before anything has changed. `kind` (INSERT, REPLACE, ...) is a
        statement's: its on_replace triggers run, and one that raises takes
        the change back before anyone was told of it.
        """
        if kind is not None and self.changes.read_only:  # a statement; an undo (revert) must go through
            self._check_writable()
        self._put(old, old_fields, fields, data)
        if kind is not None and self.on_replace:
            self._fire(kind, old, fields, data, old_fields)
        record = self.changes.record
        if record is not None:
            record(self, old, data)
        watch = self.changes.watch
        if watch is not None:
            watch(self, old, old_fields, fields, data)

    def _fire(self, kind: str, old: bytes | None, fields: list[Any] | None, data: bytes | None,
              old_fields: list[Any] | None) -> None:
        before = None if old is None else unpack_tuple(old)  # old_fields may be the new key's
        try:
            for trigger in list(self.on_replace):
                trigger(before, fields, self.name, kind)
        except BaseException:
            self._put(data, fields, before, old)
            raise

    def _put(self, old: bytes | None, old_fields: list[Any] | None, fields: list[Any] | None,
             data: bytes | None) -> None:
        if old is not None and data is not None:
            self.quota.resize(old, data)
            for idx in self.indexes:
                idx.replace(old_fields, fields, data)  # type: ignore[arg-type]  # both set: old and data are
        elif old is not None:
            self.quota.refund(cost(old))
            for idx in self.indexes:
                idx.remove(old_fields)  # type: ignore[arg-type]  # set: old is
        elif data is not None:
            self.quota.charge(cost(data))
            for idx in self.indexes:
                idx.put(fields, data)  # type: ignore[arg-type]  # set: data is

    def _check_writable(self) -> None:
        """box.cfg{read_only = true}: only temporary spaces change (2.6's text)."""
        if not self.flags.get("temporary"):
            raise BoxError(ER.READONLY, message="Can't modify data because this instance is in read-only mode.")

    def insert(self, fields: list[Any]) -> bytes:
        return self.store(fields, replace=False)

    def replace(self, fields: list[Any]) -> bytes:
        return self.store(fields, replace=True)

    def store(self, fields: list[Any], replace: bool) -> bytes:
        """INSERT (`replace` False) or REPLACE: the tuple's bytes."""
        data = self._validate(fields)
        indexes = self.indexes
        if len(indexes) == 1 and not self.on_replace:
            # Only a primary key and no triggers (the write path's hottest
            # case): its key made once, the tuple found and stored through
            # its entries.
            pk = indexes[0]
            key = pk.key_of(fields)
            entries = pk.entries
            old = entries.get(key)
            if old is not None and not replace:
                raise self.duplicate(pk)
            self._commit_one(entries, key, old, None if old is None else fields, fields, data)
            return data
        pk = indexes[0] if indexes else self.pk  # (self.pk raises: no primary key)
        old = pk.find(fields)
        if old is not None and not replace:
            raise self.duplicate(pk)
        old_fields: list[Any] | None
        if len(indexes) > 1:
            self._conflicts(fields, old, replace)
            old_fields = None if old is None else unpack_tuple(old)
        else:
            old_fields = None if old is None else fields  # only the primary key, and it is the same
        self._swap(old, old_fields, fields, data, "REPLACE" if replace else "INSERT")
        return data

    def _commit_one(self, entries: dict[Any, bytes], key: Any, old: bytes | None, old_fields: list[Any] | None,
                    fields: list[Any], data: bytes) -> None:
        """`_swap` for a space with only a primary key and no triggers: `data`
        goes in under `key`, in place of `old` (or new)."""
        changes = self.changes
        if changes.read_only:
            self._check_writable()
        if old is None:
            self.quota.charge(cost(data))
            entries[key] = data  # a new key: a TREE's SortedDict orders it
        else:
            self.quota.resize(old, data)
            dict.__setitem__(entries, key, data)  # the key is there: only its value changes
        record = changes.record
        if record is not None:
            record(self, old, data)
        watch = changes.watch
        if watch is not None:
            watch(self, old, old_fields, fields, data)

    def delete(self, index: Index, key: Sequence[Any]) -> bytes | None:
        self._check_unique_key(index, key)
        old = index.get(key)
        if old is not None:
            self._swap(old, unpack_tuple(old), None, None, "DELETE")
        return old

    def update(self, index: Index, key: Sequence[Any], ops: Any, index_base: int = 1) -> bytes | None:
        """UPDATE. With no tuple under the key Tarantool returns nothing and
        checks nothing more than that the operations are an array."""
        # The commonest key, one unsigned for one unsigned part, needs no
        # more checking, and is its own entry's key.
        plain = index.one_uint and index.exact_unique and len(key) == 1 and type(key[0]) is int and key[0] >= 0
        if not plain:
            self._check_unique_key(index, key)
        if type(ops) is not list:
            raise BoxError(ER.INVALID_MSGPACK, "packet body")  # what IPROTO answers
        old = index.entries.get(key[0]) if plain else index.get(key)
        if old is None:
            return None
        old_fields = unpack_tuple(old)
        fields, data = self.updated(old_fields, ops, index_base)
        indexes = self.indexes
        if len(indexes) == 1 and not self.on_replace:
            pk = indexes[0]
            self._commit_one(pk.entries, pk.key_of(fields), old, old_fields, fields, data)
            return data
        self._conflicts(fields, old, replace=True)
        self._swap(old, old_fields, fields, data, "UPDATE")
        return data

    def updated(self, old_fields: list[Any], ops: Any, index_base: int) -> tuple[list[Any], bytes]:
        """The tuple UPDATE makes of `old_fields` (and its bytes); its primary
        key must stay."""
        fields = apply_update(old_fields, ops, index_base=index_base, field_names=self.field_names)
        data = self._validate(fields)
        pk = self.pk
        if pk.key_of(fields) != pk.key_of(old_fields):
            if pk.find(fields) is not None:
                raise self.duplicate(pk)  # the new key is another tuple's: 2.6 says so first
            raise BoxError(ER.CANT_UPDATE_PRIMARY_KEY, pk.name, self.name)
        return fields, data

    def upsert(self, fields: list[Any], ops: Any, index_base: int = 1) -> None:
        """UPSERT: the tuple is checked against the format first; if its key is
        free the operations are checked and the tuple goes in as is; else the
        operations apply to the old tuple, and one that fails is skipped, as
        is a result that would change the primary key (Tarantool logs both)."""
        data = self._validate(fields)
        pk = self.pk
        old = pk.find(fields)
        if old is None:
            self.check_upsert_ops(ops, index_base)
            self._conflicts(fields, None, replace=False)
            self._swap(None, None, fields, data, "UPSERT")
            return
        old_fields = unpack_tuple(old)
        upserted = self.upserted(old_fields, ops, index_base)
        if upserted is not None:
            new, new_data = upserted
            self._conflicts(new, old, replace=True)
            self._swap(old, old_fields, new, new_data, "UPSERT")

    def check_upsert_ops(self, ops: Any, index_base: int) -> None:
        check_ops(ops, index_base=index_base, field_names=self.field_names)

    def upserted(self, old_fields: list[Any], ops: Any,
                 index_base: int) -> tuple[list[Any], bytes] | None:
        """The tuple UPSERT makes of an existing one (and its bytes), or None
        if it is skipped."""
        new = apply_upsert(old_fields, ops, index_base=index_base, field_names=self.field_names,
                           on_error=_log_upsert_error)
        data = self._validate(new)  # a result the format refuses is the client's error
        if self.pk.key_of(new) != self.pk.key_of(old_fields):
            log.warning("UPSERT in space '%s' would change the primary key: skipped", self.name)
            return None
        return new, data

    # What a transaction's COMMIT does with each of its writes (see txn.py);
    # its on_replace triggers run then.

    def pk_store(self, fields: list[Any], old: bytes | None) -> None:
        data = self._validate(fields)
        self._conflicts(fields, old, replace=True)
        self._swap(old, None if old is None else unpack_tuple(old), fields, data,
                   "INSERT" if old is None else "REPLACE")

    def pk_delete(self, old: bytes) -> None:
        self._swap(old, unpack_tuple(old), None, None, "DELETE")

    def revert(self, old: bytes | None, new: bytes | None) -> None:
        """Undo a store or delete: `new` goes, `old` comes back."""
        self._swap(new, None if new is None else unpack_tuple(new),
                   None if old is None else unpack_tuple(old), old)

    def truncate(self, dropped: bool = False) -> None:
        """Empty the space (`dropped`: because it, or its primary key, goes)."""
        if self.changes.read_only:
            self._check_writable()
        if not dropped:
            self.truncations += 1  # its `_truncate` row's count
        before = list(self.pk.iterate(C.ITER_ALL, ())) if self.indexes else []
        for data in before:
            self.quota.refund(cost(data))
        for idx in self.indexes:
            idx.clear()
        record = self.changes.record
        if record is not None:  # what went, so that a failed write can bring it back
            record(self, DROPPED if dropped else TRUNCATED, before)
        watch = self.changes.watch
        if watch is not None:
            watch(self, DROPPED if dropped else TRUNCATED, None, None, None)

    def tuples(self) -> Iterable[bytes]:
        return self.pk.iterate(C.ITER_ALL, ()) if self.indexes else ()
