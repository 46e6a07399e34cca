"""Indexes: TREE (ordered) and HASH, over tuples stored as MessagePack bytes.

A tuple is kept as the bytes of its MessagePack array (what a SELECT sends
back, so a reply copies bytes and encodes nothing); an index maps a key to
those bytes. Keys come from `field_types.key_maker`, whose Python ordering
is Tarantool's: the bare value for one part of a native type, else a tuple.

- TREE: a `sortedcontainers.SortedDict`. A non-unique TREE index appends
  the primary key parts to its own, as Tarantool's does, so every entry has
  a distinct key and equal keys are ordered by primary key. Iterators EQ,
  REQ, ALL, GE, GT, LE, LT take a full key or any prefix (`key_bounds`).
- HASH: a dict; unique only; EQ with a full key, or ALL.

An index does not check uniqueness by itself: `Space` looks for conflicts in
every index before it changes any of them, so a failed request changes
nothing. Pagination positions are base64 of the MessagePack of the last
tuple's key parts (this index's, then the primary key's): opaque to clients.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from typing import Any

import msgpack
from sortedcontainers import SortedDict

from ..protocol import constants as C
from ..protocol.errors import ER, BoxError
from . import field_types as ft

__all__ = ["Index", "TreeIndex", "HashIndex", "Part", "ITERATOR_NAMES", "parts_row"]

ITERATOR_NAMES = {
    "EQ": C.ITER_EQ, "REQ": C.ITER_REQ, "ALL": C.ITER_ALL, "LT": C.ITER_LT, "LE": C.ITER_LE,
    "GE": C.ITER_GE, "GT": C.ITER_GT,
    # Lua's box.index knows these too; memtx's TREE and HASH refuse them (112).
    "BITS_ALL_SET": 7, "BITS_ANY_SET": 8, "BITS_ALL_NOT_SET": 9, "OVERLAPS": 10,
    "NEIGHBOR": 11,
}


class Part:
    """One key part: 0-based field number, type, nullable; `extras` are the
    options the definition spelled out beyond field and type (as
    {'is_nullable': False}): _index shows every part of such an index in
    map form, as Tarantool's create_index keeps it."""

    __slots__ = ("fieldno", "type", "is_nullable", "extras")

    def __init__(self, fieldno: int, type: str, is_nullable: bool = False,
                 extras: dict[str, Any] | None = None) -> None:
        self.fieldno = fieldno
        self.type = type
        self.is_nullable = is_nullable
        self.extras = ({"is_nullable": True} if is_nullable else {}) if extras is None else extras

    def spec(self) -> tuple[int, str, bool]:
        return (self.fieldno, self.type, self.is_nullable)

    def row(self, compact: bool = True) -> Any:
        """How _index shows it: [field, type], or a map with the options given."""
        if compact:
            return [self.fieldno, self.type]
        return {"field": self.fieldno, "type": self.type, **self.extras}

    def given(self) -> Any:
        """The part as create_index would take it back (1-based field)."""
        if self.extras:
            return {"field": self.fieldno + 1, "type": self.type, **self.extras}
        return [self.fieldno + 1, self.type]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Part) and self.spec() == other.spec()

    def __repr__(self) -> str:
        return f"Part({self.fieldno}, {self.type!r}{', nullable' if self.is_nullable else ''})"


def parts_row(parts: list[Part]) -> list[Any]:
    """An index's parts as _index holds them: all compact unless one has options."""
    compact = not any(p.extras for p in parts)
    return [p.row(compact) for p in parts]


class Index:
    type_name = ""

    def __init__(self, space_id: int, iid: int, name: str, parts: list[Part], unique: bool,
                 pk_parts: list[Part] | None) -> None:
        self.space_id = space_id
        self.type_shown = self.type_name.lower()
        self.iid = iid
        self.name = name
        self.parts = parts
        self.unique = unique
        self.specs = [p.spec() for p in parts]
        # The parts the entries are ordered by: a non-unique index adds the
        # primary key's (those it does not already have). So does a unique one
        # with nullable parts: tuples whose key holds nil do not conflict.
        self.nullable = any(p.is_nullable for p in parts)
        cmp_parts = list(self.specs)
        if (not unique or self.nullable) and pk_parts is not None:
            have = {p.fieldno for p in parts}
            cmp_parts += [p.spec() for p in pk_parts if p.fieldno not in have]
        self.cmp_specs = cmp_parts
        self.key_of = ft.key_maker(cmp_parts)  # fields -> stored key
        self.search_of = ft.search_key_maker(cmp_parts)  # a search key (a prefix) -> comparable
        self.fieldnos = [p.fieldno for p in parts]
        # A full key finds at most one tuple with one dict lookup.
        self.exact_unique = unique and len(cmp_parts) == len(parts)
        # The key check of that lookup, for the commonest key: one unsigned.
        self.one_uint = len(parts) == 1 and parts[0].type == "unsigned" and not parts[0].is_nullable

    def row(self, space_id: int | None = None) -> list[Any]:
        """The `_index` tuple (the type spelled as it was given)."""
        return [self.space_id if space_id is None else space_id, self.iid, self.name, self.type_shown,
                {"unique": self.unique}, parts_row(self.parts)]

    def check_key(self, key: Sequence[Any], exact: bool) -> None:
        ft.check_key(key, self.specs, exact)

    # Implemented by subclasses.
    entries: dict[Any, bytes]  # key (as `key_of` makes it) -> tuple

    def __len__(self) -> int:
        raise NotImplementedError

    def get(self, key: Sequence[Any]) -> bytes | None:
        raise NotImplementedError

    def find(self, fields: Sequence[Any]) -> bytes | None:
        """The tuple with the same key as `fields` (a conflict, if unique)."""
        raise NotImplementedError

    def by_key(self, key: Any) -> bytes | None:
        """The tuple stored under a key made by `key_of`."""
        raise NotImplementedError

    def put(self, fields: Sequence[Any], data: bytes) -> None:
        raise NotImplementedError

    def replace(self, old_fields: Sequence[Any], fields: Sequence[Any], data: bytes) -> None:
        raise NotImplementedError

    def remove(self, fields: Sequence[Any]) -> None:
        raise NotImplementedError

    def clear(self) -> None:
        raise NotImplementedError

    def iterate(self, iterator: int, key: Sequence[Any], after: Any = None) -> Iterator[bytes]:
        raise NotImplementedError

    def position_of(self, fields: Sequence[Any]) -> str:
        """A pagination position: base64 of the MessagePack of the entry's
        ordering key (ASCII, so every client can carry it as a string)."""
        packed = msgpack.packb([fields[f] if f < len(fields) else None for f, _, _ in self.cmp_specs],
                               default=ft.default, use_bin_type=True)
        return base64.b64encode(packed).decode()

    def after_key(self, position: str | bytes) -> Any:
        try:
            values = msgpack.unpackb(base64.b64decode(position, validate=True),
                                     ext_hook=ft.ext_hook, raw=False, strict_map_key=False)
        except Exception as e:  # noqa: BLE001 - any undecodable position is error 84
            raise BoxError(ER.ITERATOR_POSITION) from e
        if type(values) is not list or len(values) != len(self.cmp_specs):
            raise BoxError(ER.ITERATOR_POSITION)
        fields: list[Any] = [None] * (max(f for f, _, _ in self.cmp_specs) + 1)
        for (f, t, nullable), v in zip(self.cmp_specs, values, strict=True):
            if v is None and not nullable or v is not None and not ft.is_valid(v, t):
                raise BoxError(ER.ITERATOR_POSITION)
            fields[f] = v
        return self.key_of(fields)


class TreeIndex(Index):
    type_name = "TREE"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tree: SortedDict = SortedDict()
        self.entries: dict[Any, bytes] = self.tree  # a dict: look-ups by key
        self.multipart = len(self.cmp_specs) > 1

    def __len__(self) -> int:
        return len(self.tree)

    def get(self, key: Sequence[Any]) -> bytes | None:
        if self.unique and len(self.cmp_specs) == len(self.specs):
            return self.tree.get(self.search_of(key))
        for data in self.iterate(C.ITER_EQ, key):
            return data
        return None

    def by_key(self, key: Any) -> bytes | None:
        return self.tree.get(key)

    def find(self, fields: Sequence[Any]) -> bytes | None:
        if len(self.cmp_specs) == len(self.specs):
            return self.tree.get(self.key_of(fields))
        # A unique index with nullable parts: nil never conflicts.
        n = len(fields)
        key = [fields[f] if f < n else None for f in self.fieldnos]
        if None in key:
            return None
        for data in self.iterate(C.ITER_EQ, key):
            return data
        return None

    def put(self, fields: Sequence[Any], data: bytes) -> None:
        self.tree[self.key_of(fields)] = data

    def replace(self, old_fields: Sequence[Any], fields: Sequence[Any], data: bytes) -> None:
        key = self.key_of(fields)
        tree = self.tree
        if old_fields is not fields and self.key_of(old_fields) != key:
            tree.pop(self.key_of(old_fields), None)
            tree[key] = data
        else:  # the key is there already: only its value changes (SortedDict's own check skipped)
            dict.__setitem__(tree, key, data)

    def remove(self, fields: Sequence[Any]) -> None:
        self.tree.pop(self.key_of(fields), None)

    def clear(self) -> None:
        self.tree.clear()

    def bounds(self, key: Sequence[Any]) -> tuple[Any, Any]:
        if not key:
            return None, None
        lo = self.search_of(key)
        if self.multipart and (len(key) < len(self.cmp_specs)):
            return lo, lo + (ft.KEY_MAX,)
        return lo, lo

    def iterate(self, iterator: int, key: Sequence[Any], after: Any = None) -> Iterator[bytes]:
        tree = self.tree
        lo, hi = self.bounds(key)
        reverse = iterator in (C.ITER_REQ, C.ITER_LT, C.ITER_LE)
        if iterator == C.ITER_ALL and lo is not None:
            iterator = C.ITER_GE  # Tarantool: ALL with a key is GE
        if lo is None:
            keys = tree.irange(reverse=reverse) if after is None else (
                tree.irange(maximum=after, inclusive=(True, False), reverse=True) if reverse
                else tree.irange(minimum=after, inclusive=(False, True)))
        elif iterator in (C.ITER_EQ, C.ITER_REQ):
            if after is None:
                keys = tree.irange(lo, hi, reverse=reverse)
            elif reverse:
                keys = tree.irange(lo, after, inclusive=(True, False), reverse=True)
            else:
                keys = tree.irange(after, hi, inclusive=(False, True))
        elif iterator == C.ITER_GE:
            keys = tree.irange(minimum=lo if after is None else after,
                               inclusive=(after is None, True))
        elif iterator == C.ITER_GT:
            keys = tree.irange(minimum=hi if after is None else after, inclusive=(False, True))
        elif iterator == C.ITER_LE:
            keys = tree.irange(maximum=hi if after is None else after,
                               inclusive=(True, after is None), reverse=True)
        elif iterator == C.ITER_LT:
            keys = tree.irange(maximum=lo if after is None else after, inclusive=(True, False),
                               reverse=True)
        else:  # Space checks the iterator before it gets here
            raise ValueError(f"iterator {iterator}")
        return map(tree.__getitem__, keys)


class HashIndex(Index):
    type_name = "HASH"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.table: dict[Any, bytes] = {}
        self.entries = self.table
        if any(t in (ft.NUMBER, ft.DOUBLE, ft.SCALAR) for _, t, _ in self.cmp_specs):
            self.key_of, self.search_of = ft.hash_key_makers([f for f, _, _ in self.cmp_specs])

    def __len__(self) -> int:
        return len(self.table)

    def get(self, key: Sequence[Any]) -> bytes | None:
        return self.table.get(self.search_of(key))

    def by_key(self, key: Any) -> bytes | None:
        return self.table.get(key)

    def find(self, fields: Sequence[Any]) -> bytes | None:
        return self.table.get(self.key_of(fields))

    def put(self, fields: Sequence[Any], data: bytes) -> None:
        self.table[self.key_of(fields)] = data

    def replace(self, old_fields: Sequence[Any], fields: Sequence[Any], data: bytes) -> None:
        key = self.key_of(fields)
        if old_fields is not fields and self.key_of(old_fields) != key:
            self.table.pop(self.key_of(old_fields), None)
        self.table[key] = data

    def remove(self, fields: Sequence[Any]) -> None:
        self.table.pop(self.key_of(fields), None)

    def clear(self) -> None:
        self.table.clear()

    def iterate(self, iterator: int, key: Sequence[Any], after: Any = None) -> Iterator[bytes]:
        """ALL: every tuple (the key is ignored); GT: the tuples after `key` in
        hash order; EQ: the one tuple. (Space checks which may be asked.)"""
        table = self.table
        if iterator == C.ITER_EQ:
            data = table.get(self.search_of(key))
            return iter(() if data is None else (data,))
        if iterator == C.ITER_GT and key:
            after = self.search_of(key)
        if after is None:
            return iter(list(table.values()))
        keys = list(table)
        try:
            start = keys.index(after) + 1
        except ValueError:
            return iter(())
        return iter([table[k] for k in keys[start:]])
