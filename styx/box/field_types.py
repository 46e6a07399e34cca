"""Field types, type checks and index key ordering, as Tarantool 2.6 has them.

Pure: no I/O. Everything here was checked against a running Tarantool 2.6.0
(see tests/unit/test_field_types.py, which does it again differentially).

Values are msgpack-decoded Python values: int, float, str, bytes, bool, None,
list, dict, and the extensions decoded by `ext_hook` (type 1 -> Decimal,
type 2 -> uuid.UUID; any other extension stays a `msgpack.ExtType`).
`default` packs Decimal and UUID back, byte for byte as Tarantool does.

Names (`field_type_by_name`, `index_part_type_by_name`)
    The 13 types: any unsigned string number double integer boolean varbinary
    scalar decimal uuid array map. Tarantool's C lookup (used for space
    formats and raw _index rows) is case-insensitive and also maps 'num' to
    *unsigned* (the 1.6 meaning, not 'number'), 'str' to string and '*' to
    any. Surprise: the 'num'/'str' fallback compares only the given length,
    so '', 'n' and 'nu' also mean unsigned and 's', 'st' mean string.
    box.schema's create_index (Lua) further accepts 'int' and 'uint' (any
    case) in index parts; a space format does not ('int', 'uint', 'bool' are
    "unknown field type" there). _space keeps a format's type as given
    ('Str', 'num', 'UNSIGNED'); create_index stores the canonical lowercase
    name in _index for the names it knows (the 13, num, str, int, uint, any
    case) and other spellings as given ('n'); a raw _index insert keeps what
    it was given.
    'any', 'array' and 'map' cannot be index parts ("field type 'any' is not
    supported"). A format type and an index part type for the same field
    must be nested (`field_type_contains` either way, else ER 27); the
    stricter one is the field's effective type (`stricter_field_type`).

Validity (`is_valid`, `check_field`, `check_tuple`)
    unsigned: int in [0, 2^64). integer: int in [-2^63, 2^64). Never a float,
    not even 1.0. double: float only (not an int, not even 1; NaN and +-inf
    are accepted). number: int, float (NaN, inf too) or Decimal. boolean:
    bool only (bool is not a number). string: str. varbinary: bytes. decimal:
    Decimal. uuid: UUID. array: list (or tuple). map: dict. scalar: bool,
    int, float, str, bytes, Decimal -- and in 2.6 NOT uuid. any: everything,
    unknown extensions too, except types 0, 32, 64, 96 (2.6's 32-bit mask,
    see `_v_any`). nil (None) passes only 'any' or a nullable field.
    Two things a decoded value cannot show: Tarantool rejects a MessagePack
    float32 (0xca) for 'double' and a positive integer sent in signed form
    (0xd0 0x05) for 'unsigned'; both decode to ordinary Python values, which
    Styx accepts.
    Errors: ER_FIELD_TYPE (23) "Tuple field %s type does not match one
    required by operation: expected %s" -- 2.6 names the field by its 1-based
    number only (even when the format names it) and has no ", got ..." (that
    came in 2.10). The types of present fields are checked first, in order;
    then ER_FIELD_MISSING (39) "Tuple field %s required by space format is
    missing" for the first absent required field (a format field that is not
    nullable, or a field an index part needs).
    Keys (`check_key`): ER_KEY_PART_COUNT (31) "Invalid key part count
    (expected [0..%u], got %u)" when a key is longer than the index; for an
    exact match (get/delete/update, HASH lookups) ER_EXACT_MATCH (19)
    "Invalid key part count in an exact match (expected %u, got %u)"; then
    each part: ER_KEY_PART_TYPE (18) "Supplied key type of part %u does not
    match index part type: expected %s", part numbered from 0. A key part
    obeys the same rules as a field (a double part refuses 1, a number part
    takes a decimal); nil only in a nullable part of an iterator's key --
    an exact key (get, delete, update) refuses nil even there.

Ordering (`key_part_fn`, `key_maker`, `make_key`, `search_key`, `key_bounds`)
    Python's ordering of the returned objects is Tarantool's TREE order:
    - scalar: by class first -- nil < boolean < number < string < varbinary
      (< uuid, which a 2.6 scalar cannot hold) -- then within the class.
      So true < 0 and 'z' < b'a'.
    - numbers (scalar, number): ints, floats and decimals compare by value,
      ints against floats exactly, so 1 == 1.0 == Decimal('1.00') is ONE key
      (a duplicate in a unique index), and -0.0 == 0. NaN is less than every
      number, NaNs equal each other (a quiet NaN above a signalling one).
      Surprise: a decimal is compared with a double by the double's 15
      significant digits ("%.15g", then rounded to 38 decimal places), so
      Decimal('0.1') == 0.1, Decimal('0.3') == 0.1 + 0.2 and
      Decimal('0.000') == 5e-324 -- except in an index's first part, where
      Tarantool's comparison hints (the integral part, truncated) decide
      first: there 0.9999999999999999 < Decimal('1') although they are
      "equal" in a later part. This equality is not transitive (0.1 and
      0.1000000000000001 both equal Decimal('0.1')), so when a number lies
      between such a pair, whether Tarantool's tree sees the duplicate
      depends on its shape; our keys answer pairwise. A decimal against NaN,
      +-inf or a double of 1e38 or more is undefined behaviour in 2.6 (an
      uninitialised decimal); we order by the double (NaN below, the others
      by sign), as later Tarantool does.
    - string: memcmp of the bytes, then length. 2.6 stores invalid UTF-8 in
      a string as is; Styx's codec decodes it to surrogateescape'd code
      points, which Python would misplace, so a non-ASCII string is keyed by
      its bytes read as latin-1 (ASCII ones are their own key). No
      collation: 'none' and
      'binary' are byte order; the ICU collations ('unicode', 'unicode_ci',
      the locale ones) are not implemented -- pass a callable sort-key
      function as `collation` to plug one in; a name raises ER_UNSUPPORTED.
    - varbinary: memcmp then length (Python's bytes order). uuid: the 16
      big-endian bytes (UUID's order). boolean: false < true. decimal:
      numeric. unsigned, integer: numeric.
    - double: numeric, but Surprise: a 2.6 'double' index compares with a
      plain C `<`, so a NaN is *equal to every value* -- a unique double
      index holding NaN refuses any other value, and NaN can be inserted
      only into an empty one. That is no order; here NaN sorts below every
      number (as in 'number') and a double index keeps NaN apart.
    - nullable parts: nil first (less than every value), and a nullable part
      beyond the end of a tuple reads as nil. (A unique index lets several
      tuples share a key with nil in it, and a non-unique one orders ties by
      the primary key: append the primary key's parts to the key, as
      Tarantool's cmp_def does -- the index's business, not this module's.)
    Hashing: keys hash as their values, so exactly equal numbers (1, 1.0,
    Decimal(1)) hash alike; the "%.15g" decimal/double equality does not.
    Keys of one part are that part's key object itself; of several parts, a
    tuple. A search key may be a prefix of the parts; `key_bounds` gives the
    lowest and highest index key that has that prefix, for range scans
    (`KEY_MAX` sorts above everything). Fast path: a non-nullable unsigned,
    integer, boolean, varbinary, decimal or uuid part is keyed by the value
    itself (`key_maker` then returns `operator.itemgetter`); a string part by
    the value itself when it is ASCII.

Decimal and uuid (`ext_hook`, `default`, `decimal_pack`, `decimal_unpack`)
    uuid: ext 2, the 16 bytes of UUID.bytes. decimal: ext 1, the scale
    (-exponent) as the smallest MessagePack int (uint when >= 0), then BCD
    digits and a sign nibble (0xC plus, 0xD minus; '-0' keeps its sign),
    after a zero nibble if the digit count is even: Decimal('1.50') is
    c7 03 01 02 15 0c, Decimal('1E+5') d5 01 fb 1c. The exponent (trailing
    zeros) is kept both ways, so a round trip is byte-exact. 2.6 reads only
    a scale in (-38, 38] ("invalid MsgPack" else) and up to 39 digits; we
    pack at most 38 digits and refuse what 2.6 cannot read.

Parts are `(fieldno, type)`, `(fieldno, type, nullable)` or `(fieldno, type,
nullable, collation)` with fieldno 0-based, as _index stores it.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable, Sequence
from decimal import ROUND_HALF_UP, Context, Decimal
from functools import lru_cache
from operator import itemgetter
from typing import Any

import msgpack

from styx.protocol.errors import ER, BoxError
from styx.protocol.ext import EXT_DECIMAL, EXT_UUID, decimal_pack, decimal_unpack, default, ext_hook  # noqa: F401 - re-exported

__all__ = [
    "ANY", "UNSIGNED", "STRING", "NUMBER", "DOUBLE", "INTEGER", "BOOLEAN", "VARBINARY",
    "SCALAR", "DECIMAL", "UUID", "ARRAY", "MAP", "FIELD_TYPES", "INDEXABLE_TYPES",
    "field_type_by_name", "index_part_type_by_name", "field_type_contains",
    "stricter_field_type", "is_valid", "check_field", "check_tuple", "check_key",
    "field_type_message", "key_part_fn", "key_maker", "make_key", "search_key",
    "search_key_maker", "key_bounds", "KEY_MAX", "NIL_KEY",
    "ext_hook", "default", "decimal_pack", "decimal_unpack", "EXT_DECIMAL", "EXT_UUID",
]

# -- types and their names -----------------------------------------------------------

ANY, UNSIGNED, STRING, NUMBER, DOUBLE, INTEGER = "any", "unsigned", "string", "number", "double", "integer"
BOOLEAN, VARBINARY, SCALAR, DECIMAL, UUID = "boolean", "varbinary", "scalar", "decimal", "uuid"
ARRAY, MAP = "array", "map"

# Tarantool's field_type_strs order.
FIELD_TYPES = (ANY, UNSIGNED, STRING, NUMBER, DOUBLE, INTEGER, BOOLEAN, VARBINARY,
               SCALAR, DECIMAL, UUID, ARRAY, MAP)
INDEXABLE_TYPES = frozenset(FIELD_TYPES) - {ANY, ARRAY, MAP}
_CANONICAL = {t: t for t in FIELD_TYPES}


def field_type_by_name(name: str) -> str | None:
    """Tarantool's C `field_type_by_name` (space formats, raw _index rows).

    Case-insensitive. 'num' is unsigned, 'str' string, '*' any -- compared
    over the given length only, so '', 'n', 'nu' are unsigned and 's', 'st'
    string, as in Tarantool. None for an unknown name.
    """
    if not isinstance(name, str):
        return None
    low = name.lower()
    t = _CANONICAL.get(low)
    if t is not None:
        return t
    if "num".startswith(low):
        return UNSIGNED
    if "str".startswith(low):
        return STRING
    if name == "*":
        return ANY
    return None


_LUA_PART_ALIASES = {"int": INTEGER, "uint": UNSIGNED}


def index_part_type_by_name(name: str) -> str | None:
    """What box.schema's create_index accepts in parts: the C names plus
    'int' and 'uint' (any case). _index gets the canonical name for the 13
    names and num/str/int/uint (any case); the other spellings the C lookup
    takes ('', 'n', 'nu', 's', 'st') are stored as given."""
    if not isinstance(name, str):
        return None
    return _LUA_PART_ALIASES.get(name.lower()) or field_type_by_name(name)


_CONTAINS = {
    ANY: frozenset(FIELD_TYPES),
    NUMBER: frozenset({NUMBER, UNSIGNED, INTEGER, DOUBLE, DECIMAL}),
    INTEGER: frozenset({INTEGER, UNSIGNED}),
    SCALAR: frozenset({SCALAR, UNSIGNED, STRING, NUMBER, DOUBLE, INTEGER, BOOLEAN,
                       VARBINARY, DECIMAL}),
}


def field_type_contains(outer: str, inner: str) -> bool:
    """True if every value of `inner` is a value of `outer` (2.6's
    field_type1_contains_type2: scalar does not contain uuid)."""
    s = _CONTAINS.get(outer)
    return inner == outer if s is None else inner in s


def stricter_field_type(a: str, b: str) -> str | None:
    """The effective type of a field typed `a` by the format and `b` by an
    index part: the contained one. None if neither contains the other
    (Tarantool: ER_FORMAT_MISMATCH_INDEX_PART, 27)."""
    if field_type_contains(a, b):
        return b
    if field_type_contains(b, a):
        return a
    return None


# -- validity ------------------------------------------------------------------------

_U64 = 1 << 64
_I64_MIN = -(1 << 63)


def _v_any(v: Any) -> bool:
    # 2.6 tests an extension type against a 32-bit mask with `1 << type`,
    # which x86 takes modulo 32, and bit 0 (no extension) is never set: so
    # types 0, 32, 64 and 96 fit no field, not even 'any'; 33 passes as 1.
    if type(v) is msgpack.ExtType:
        return v.code & 31 != 0
    return True


def _v_unsigned(v: Any) -> bool:
    return type(v) is int and 0 <= v < _U64


def _v_integer(v: Any) -> bool:
    return type(v) is int and _I64_MIN <= v < _U64


def _v_number(v: Any) -> bool:
    t = type(v)
    if t is int:
        return _I64_MIN <= v < _U64
    return t is float or (t is Decimal and v.is_finite())


def _v_double(v: Any) -> bool:
    return type(v) is float


def _v_string(v: Any) -> bool:
    return type(v) is str


def _v_boolean(v: Any) -> bool:
    return type(v) is bool


def _v_varbinary(v: Any) -> bool:
    return type(v) is bytes or type(v) is bytearray


def _v_scalar(v: Any) -> bool:
    t = type(v)
    if t is int:
        return _I64_MIN <= v < _U64
    if t is Decimal:
        return v.is_finite()
    return t is str or t is float or t is bool or t is bytes or t is bytearray


def _v_decimal(v: Any) -> bool:
    return type(v) is Decimal and v.is_finite()


def _v_uuid(v: Any) -> bool:
    return isinstance(v, uuid.UUID)


def _v_array(v: Any) -> bool:
    return type(v) is list or type(v) is tuple


def _v_map(v: Any) -> bool:
    return type(v) is dict


_VALIDATORS: dict[str, Callable[[Any], bool]] = {
    ANY: _v_any, UNSIGNED: _v_unsigned, STRING: _v_string, NUMBER: _v_number,
    DOUBLE: _v_double, INTEGER: _v_integer, BOOLEAN: _v_boolean, VARBINARY: _v_varbinary,
    SCALAR: _v_scalar, DECIMAL: _v_decimal, UUID: _v_uuid, ARRAY: _v_array, MAP: _v_map,
}


def _canonical(field_type: str) -> str:
    t = _CANONICAL.get(field_type) or field_type_by_name(field_type)
    if t is None:
        raise ValueError(f"unknown field type {field_type!r}")
    return t


def is_valid(value: Any, field_type: str) -> bool:
    """Whether Tarantool 2.6 stores `value` in a field of `field_type`
    (nil: only for 'any'; a nullable field's nil is `check_field`'s)."""
    f = _VALIDATORS.get(field_type)
    if f is None:
        f = _VALIDATORS[_canonical(field_type)]
    return f(value)


# ER_FIELD_TYPE as 2.6 words it. MESSAGES[ER.FIELD_TYPE] has the 2.10+ text
# (", got %s"), so the message is formatted here.
_FIELD_TYPE_FMT = "Tuple field %s type does not match one required by operation: expected %s"


def field_type_message(fieldno: int | str, field_type: str) -> str:
    """The 2.6 text of ER_FIELD_TYPE; `fieldno` is 1-based."""
    return _FIELD_TYPE_FMT % (fieldno, _canonical(field_type))


def check_field(value: Any, field_type: str, nullable: bool = False,
                fieldno: int = 1, name: str | None = None) -> None:
    """Raise ER_FIELD_TYPE unless `value` fits. `fieldno` is 1-based; 2.6's
    message names the field by number only, so `name` is not used."""
    if value is None:
        if nullable or _canonical(field_type) == ANY:
            return
    elif is_valid(value, field_type):
        return
    raise BoxError(ER.FIELD_TYPE, message=field_type_message(fieldno, field_type))


def check_tuple(fields: Sequence[Any], defs: Sequence[tuple[str, bool] | None]) -> None:
    """Check a tuple against per-field constraints, as insert/replace do.

    `defs[i]` constrains field i (0-based): (type, nullable), or None for a
    free field. Build it from the format and the index parts (the stricter
    type; a field an index part needs is required unless that part is
    nullable). Present fields first, in order: ER_FIELD_TYPE; then the first
    absent required field: ER_FIELD_MISSING.
    """
    n = len(fields)
    i = 0
    for d in defs:
        if i == n:
            break
        if d is not None:
            v = fields[i]
            if v is None:
                if not d[1]:
                    check_field(v, d[0], False, i + 1)
            else:
                f = _VALIDATORS.get(d[0])
                if f is None or not f(v):
                    check_field(v, d[0], d[1], i + 1)
        i += 1
    for i in range(n, len(defs)):
        d = defs[i]
        if d is not None and not d[1]:
            raise BoxError(ER.FIELD_MISSING, i + 1)


# What `tuple_check` inlines: each validator above as an expression of `v`
# (the same test; the rest are called).
_INLINE = {
    UNSIGNED: "type(v) is int and 0 <= v < U64",
    INTEGER: "type(v) is int and I64_MIN <= v < U64",
    STRING: "type(v) is str",
    DOUBLE: "type(v) is float",
    BOOLEAN: "type(v) is bool",
    ANY: "type(v) is not ExtType or v.code & 31 != 0",
}


def tuple_check(defs: Sequence[tuple[str, bool] | None]) -> Callable[[list[Any]], None]:
    """`check_tuple(fields, defs)` as one function made for `defs`, for a
    space's every write: a tuple with all the fields defs constrain, each
    of its type, passes in straight-line code; anything else goes to
    `check_tuple`, which finds and raises the error. (Generated source, as
    dataclasses does: a loop over `defs` with a call per field cost a REPLACE
    0.3 us.) The source holds only names and indexes made here."""
    namespace: dict[str, Any] = {"U64": _U64, "I64_MIN": _I64_MIN, "ExtType": msgpack.ExtType,
                                 "slow": check_tuple, "defs": list(defs)}
    lines = ["def check(fields):", f"    if len(fields) < {len(defs)}:", "        return slow(fields, defs)"]
    for i, d in enumerate(defs):
        if d is None:
            continue
        field_type, nullable = d
        expr = _INLINE.get(field_type)
        if expr is None:
            namespace[f"valid{i}"] = _VALIDATORS.get(field_type) or (lambda v: False)  # unknown: the slow path says why
            expr = f"valid{i}(v)"
        if nullable:
            expr = f"v is None or {expr}"
        lines += [f"    v = fields[{i}]", f"    if not ({expr}):", "        return slow(fields, defs)"]
    exec("\n".join(lines), namespace)  # noqa: S102 - source made above from fixed fragments
    check: Callable[[list[Any]], None] = namespace["check"]
    return check


def _norm_part(p: Sequence[Any]) -> tuple[int, str, bool, Any]:
    fieldno, t = p[0], p[1]
    nullable = bool(p[2]) if len(p) > 2 else False
    coll = p[3] if len(p) > 3 else None
    return fieldno, _canonical(t), nullable, coll


def check_key(key: Sequence[Any], parts: Sequence[Sequence[Any]], exact: bool = False) -> None:
    """Validate a search key against index parts, as Tarantool's key_validate
    (exact=False: TREE iterators, any prefix incl. empty) and
    exact_key_validate (exact=True: get/delete/update, and a HASH index with
    a non-empty key -- its empty key is fine for ALL and legacy GT).

    Raises ER_KEY_PART_COUNT / ER_EXACT_MATCH, then ER_KEY_PART_TYPE for the
    first part of a wrong type (numbered from 0). nil passes a nullable part
    of a non-exact key only: 2.6 refuses `sk:get{nil}` with ER_KEY_PART_TYPE.
    """
    n, m = len(key), len(parts)
    if exact:
        if n != m:
            raise BoxError(ER.EXACT_MATCH, m, n)
    elif n > m:
        raise BoxError(ER.KEY_PART_COUNT, m, n)
    for i in range(n):
        p = parts[i]
        v = key[i]
        t = p[1]
        if v is None:
            if not exact and len(p) > 2 and p[2]:
                continue
        else:
            f = _VALIDATORS.get(t)
            if f is not None and f(v) or f is None and is_valid(v, t):
                continue
        raise BoxError(ER.KEY_PART_TYPE, i, _canonical(t))


# -- key objects ---------------------------------------------------------------------

class _Sentinel:
    """NIL_KEY (below every key) and KEY_MAX (above every key)."""

    __slots__ = ("_rank", "_name")

    def __init__(self, rank: int, name: str) -> None:
        self._rank = rank
        self._name = name

    def __repr__(self) -> str:
        return self._name

    def __hash__(self) -> int:
        return hash(self._name)

    def __eq__(self, o: object) -> bool:
        return o is self

    def __ne__(self, o: object) -> bool:
        return o is not self

    def __lt__(self, o: object) -> bool:
        return o is not self and self._rank < 0

    def __le__(self, o: object) -> bool:
        return o is self or self._rank < 0

    def __gt__(self, o: object) -> bool:
        return o is not self and self._rank > 0

    def __ge__(self, o: object) -> bool:
        return o is self or self._rank > 0


NIL_KEY = _Sentinel(-1, "NIL_KEY")
KEY_MAX = _Sentinel(1, "KEY_MAX")

_HINT_MIN = -(1 << 59)
_HINT_MAX = (1 << 59) - 1


def _hint(x: Any) -> int:
    """The value of Tarantool's number hint: the integral part (truncated
    toward zero) clamped to 60 bits. `x` is a finite float or a Decimal."""
    if x >= _HINT_MAX:
        return _HINT_MAX
    if x <= _HINT_MIN:
        return _HINT_MIN
    return int(x)


class _Ordered:
    """Rich comparisons from one `_cmp(other) -> negative, 0, positive`."""

    __slots__ = ()

    def _cmp(self, o: Any) -> Any:
        raise NotImplementedError

    def __eq__(self, o: object) -> Any:
        c = self._cmp(o)
        return c if c is NotImplemented else c == 0

    def __ne__(self, o: object) -> Any:
        c = self._cmp(o)
        return c if c is NotImplemented else c != 0

    def __lt__(self, o: Any) -> Any:
        c = self._cmp(o)
        return c if c is NotImplemented else c < 0

    def __le__(self, o: Any) -> Any:
        c = self._cmp(o)
        return c if c is NotImplemented else c <= 0

    def __gt__(self, o: Any) -> Any:
        c = self._cmp(o)
        return c if c is NotImplemented else c > 0

    def __ge__(self, o: Any) -> Any:
        c = self._cmp(o)
        return c if c is NotImplemented else c >= 0


class _NaN(_Ordered):
    """A NaN in a number class: below every number; NaNs by their quiet bit."""

    __slots__ = ("q", "bits")

    def __init__(self, f: float) -> None:
        self.bits = struct.unpack("<Q", struct.pack("<d", f))[0]
        self.q = self.bits >> 51 & 1

    def __repr__(self) -> str:
        return f"NaN(q={self.q})"

    def __hash__(self) -> int:
        return hash(("nan", self.q))

    def _cmp(self, o: Any) -> Any:
        t = type(o)
        if t is _NaN:
            return self.q - o.q
        if t is int or t is float or t is _Dec or t is _DecH:
            return -1
        return NotImplemented



DECIMAL_MAX_DIGITS = 38
_TINY = Decimal("1E-38")
_CTX = Context(prec=50)


def _double_to_decimal(f: float) -> Decimal | None:
    """2.6's decimal_from_double: "%.15g", read in a context of 38 digits,
    emax 37, emin -1 -- so rounded (half up) to 38 decimal places, and None
    (NULL) for NaN, +-inf and anything from 1e38 up."""
    if f - f != 0.0:
        return None
    d = Decimal(f"{f:.15g}")
    if d.adjusted() >= DECIMAL_MAX_DIGITS:
        return None
    if d.as_tuple().exponent < -DECIMAL_MAX_DIGITS:  # type: ignore[operator]  # finite: an int
        d = d.quantize(_TINY, rounding=ROUND_HALF_UP, context=_CTX)
    return d


def _dec_cmp_double(d: Decimal, f: float) -> int:
    """mp_compare_decimal_any_number: the double converted to a decimal.
    Where that fails (|f| >= 1e38, inf) 2.6 compares an uninitialised
    decimal; we order by the double's sign, as later Tarantool does."""
    o = _double_to_decimal(f)
    if o is None:
        return -1 if f > 0 else 1
    return (d > o) - (d < o)


class _Dec(_Ordered):
    """A decimal in a number class (not the first part of an index)."""

    __slots__ = ("d",)

    def __init__(self, d: Decimal) -> None:
        self.d = d

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.d!r})"

    def __hash__(self) -> int:
        return hash(self.d)

    def _cmp(self, o: Any) -> Any:
        t = type(o)
        if t is int or t is _Dec or t is _DecH:
            od = o if t is int else o.d
            d = self.d
            return (d > od) - (d < od)
        if t is float:
            return _dec_cmp_double(self.d, o)
        if t is _NaN:
            return 1
        return NotImplemented



class _DecH(_Dec):
    """A decimal in an index's first part: against a finite double, the
    comparison hints (integral parts, truncated, clamped to 60 bits) first."""

    __slots__ = ()

    def _cmp(self, o: Any) -> Any:
        if type(o) is float and o - o == 0.0:  # finite
            a, b = _hint(self.d), _hint(o)
            if a != b:
                return -1 if a < b else 1
            return _dec_cmp_double(self.d, o)
        return _Dec._cmp(self, o)


def _num_key(v: Any) -> Any:
    t = type(v)
    if t is int:
        return v
    if t is float:
        return v if v == v else _NaN(v)
    return _Dec(v)


def _num_key_h(v: Any) -> Any:
    t = type(v)
    if t is int:
        return v
    if t is float:
        return v if v == v else _NaN(v)
    return _DecH(v)


def _double_key(v: float) -> Any:
    return v if v == v else _NaN(v)


def _str_key_bytes(s: str) -> str:
    # memcmp of UTF-8 == code point order, but a string carrying invalid
    # UTF-8 (surrogateescape'd bytes) must be ordered by its bytes: every
    # non-ASCII string is keyed by its bytes as latin-1 code points.
    return s if s.isascii() else s.encode("utf-8", "surrogateescape").decode("latin-1")


# Scalar classes (Tarantool's enum mp_class).
_C_NIL, _C_BOOL, _C_NUM, _C_STR, _C_BIN, _C_UUID = 0, 1, 2, 3, 4, 5
_SCALAR_NIL = (_C_NIL,)


def _make_scalar_key(numkey: Callable[[Any], Any], strkey: Callable[[str], Any]) -> Callable[[Any], Any]:
    def key(v: Any) -> Any:
        t = type(v)
        if t is int or t is float or t is Decimal:
            return (_C_NUM, numkey(v))
        if t is str:
            return (_C_STR, strkey(v))
        if t is bool:
            return (_C_BOOL, v)
        if t is bytes or t is bytearray:
            return (_C_BIN, bytes(v))
        if v is None:
            return _SCALAR_NIL
        if isinstance(v, uuid.UUID):
            return (_C_UUID, v)
        raise TypeError(f"not a scalar: {v!r}")
    return key


def _identity(v: Any) -> Any:
    return v


def _collation_key(collation: Any) -> Callable[[str], Any]:
    if collation is None or collation in ("none", "binary"):
        return _str_key_bytes
    if callable(collation):
        return collation
    raise BoxError(ER.UNSUPPORTED, "Styx", f"collation '{collation}'")


def key_part_fn(field_type: str, nullable: bool = False, collation: Any = None,
                first: bool = True) -> Callable[[Any], Any]:
    """`value -> comparable` giving Tarantool's TREE order for one index part.

    Returns `_identity` itself (test with `is`) where the value is its own
    key. `collation`: None/'none'/'binary', or a callable str -> sort key
    (ICU collations by name raise ER_UNSUPPORTED). `first`: the part is the
    index's first (where Tarantool's comparison hints apply: see the note).
    Values must be valid for the type; nil only if `nullable`.
    """
    t = _canonical(field_type)
    if t in (UNSIGNED, INTEGER, BOOLEAN, VARBINARY, DECIMAL, UUID):
        base: Callable[[Any], Any] = _identity
    elif t == STRING:
        base = _collation_key(collation)
    elif t == NUMBER:
        base = _num_key_h if first else _num_key
    elif t == DOUBLE:
        base = _double_key
    elif t == SCALAR:
        return _make_scalar_key(_num_key_h if first else _num_key, _collation_key(collation))
    else:
        raise BoxError(ER.UNSUPPORTED, "TREE index", f"field type '{t}'")
    if not nullable:
        return base
    if base is _identity:
        return lambda v: NIL_KEY if v is None else v
    return lambda v: NIL_KEY if v is None else base(v)


def _part_fns(parts: Sequence[Sequence[Any]]) -> list[tuple[int, Callable[[Any], Any], Any]]:
    out = []
    for i, p in enumerate(parts):
        fieldno, t, nullable, coll = _norm_part(p)
        fn = key_part_fn(t, nullable, coll, first=(i == 0))
        out.append((fieldno, fn, fn(None) if nullable else None))
    return out


def _parts_tuple(parts: Sequence[Sequence[Any]]) -> tuple[tuple[Any, ...], ...]:
    return tuple(tuple(p) for p in parts)


@lru_cache(maxsize=1024)
def _key_maker(parts: tuple[tuple[Any, ...], ...]) -> Callable[[Sequence[Any]], Any]:
    fns = _part_fns(parts)
    if len(fns) == 1:
        f, fn, nil = fns[0]
        if fn is _identity:
            return itemgetter(f)
        if nil is None:
            return lambda fields: fn(fields[f])
        return lambda fields: fn(fields[f]) if f < len(fields) else nil
    if all(fn is _identity for _, fn, _ in fns):
        return itemgetter(*(f for f, _, _ in fns))
    # Several parts: one generated expression, no per-part loop.
    ns: dict[str, Any] = {}
    items = []
    for i, (f, fn, nil) in enumerate(fns):
        ns[f"k{i}"], ns[f"n{i}"] = fn, nil
        get = f"fields[{int(f)}]" if fn is _identity else f"k{i}(fields[{int(f)}])"
        items.append(get if nil is None else f"({get} if {int(f)} < len(fields) else n{i})")
    exec(f"def make(fields):\n    return ({', '.join(items)},)\n", ns)
    return ns["make"]


def key_maker(parts: Sequence[Sequence[Any]]) -> Callable[[Sequence[Any]], Any]:
    """A compiled `make_key` for these parts: `fields -> index key` (cached)."""
    return _key_maker(_parts_tuple(parts))


def make_key(fields: Sequence[Any], parts: Sequence[Sequence[Any]]) -> Any:
    """The index key of a tuple: the part key for one part, else a tuple."""
    return _key_maker(_parts_tuple(parts))(fields)


@lru_cache(maxsize=1024)
def _search_key_maker(parts: tuple[tuple[Any, ...], ...]) -> Callable[[Sequence[Any]], Any]:
    fns = [fn for _, fn, _ in _part_fns(parts)]
    if len(fns) == 1:
        fn0 = fns[0]
        return lambda key: fn0(key[0]) if key else None

    def make(key: Sequence[Any]) -> Any:
        if not key:
            return None
        return tuple(fn(v) for fn, v in zip(fns, key, strict=False))  # a key may be partial
    return make


def search_key_maker(parts: Sequence[Sequence[Any]]) -> Callable[[Sequence[Any]], Any]:
    """A compiled `search_key` for these parts (cached)."""
    return _search_key_maker(_parts_tuple(parts))


def search_key(key: Sequence[Any], parts: Sequence[Sequence[Any]]) -> Any:
    """A search key (already `check_key`ed) comparable with `make_key`'s keys:
    None for an empty key, the part key for a one-part index, else a tuple
    of as many parts as given -- a prefix sorts before every index key that
    extends it (use `key_bounds` for ranges)."""
    return _search_key_maker(_parts_tuple(parts))(key)


def key_bounds(key: Sequence[Any], parts: Sequence[Sequence[Any]]) -> tuple[Any, Any]:
    """(lowest, highest) index keys that match `key` (a prefix of parts):
    both inclusive; (None, None) for an empty key (everything). For EQ take
    [lo, hi]; GE: from lo; GT: after hi; LE: up to hi; LT: before lo."""
    sk = _search_key_maker(_parts_tuple(parts))(key)
    if sk is None:
        return None, None
    if len(parts) > 1 and len(key) < len(parts):
        return sk, sk + (KEY_MAX,)
    return sk, sk


def _hash_part(v: Any) -> Any:
    """A value as a 2.6 HASH index tells it apart. Its hash is over the
    MessagePack bytes, but a double with an integral value in the int64 or
    uint64 range hashes as that integer (so 1.0 finds 1). Hence NaNs with
    different bits (-nan from Lua, +nan from Python) are different keys, and
    a decimal is never the double or integer of the same value (a TREE
    holds all of these equal)."""
    t = type(v)
    if t is float:
        if v != v:
            return ("nan", struct.unpack("<Q", struct.pack("<d", v))[0])
        if v - v == 0 and v == int(v) and -2**63 <= v < 2**64:
            return int(v)
        return v
    if t is bool:
        return ("bool", v)
    if t is Decimal:
        return ("dec", decimal_pack(v))
    return v


def hash_key_makers(fieldnos: list[int]) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """key_of (fields -> key) and search_of (a full key -> key) for a HASH
    index with a number, double or scalar part."""
    if len(fieldnos) == 1:
        f0 = fieldnos[0]
        return (lambda fields: _hash_part(fields[f0])), (lambda key: _hash_part(key[0]))
    return ((lambda fields: tuple(_hash_part(fields[f]) for f in fieldnos)),
            (lambda key: tuple(_hash_part(k) for k in key)))
