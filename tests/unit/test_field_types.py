"""styx.box.field_types: names, validity, errors, key order, decimal/uuid
codec -- pure tests, then the same rules checked differentially against a
real Tarantool 2.6 (Debian's `tarantool`, tests/lua/tarantool_server.lua
`field_types`)."""

from __future__ import annotations

import math
import struct
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from sortedcontainers import SortedKeyList

from styx.box import field_types as ft
from styx.box.field_types import KEY_MAX, NIL_KEY, check_field, check_key, check_tuple, is_valid
from styx.protocol.errors import ER, BoxError

from ..iproto import Raw, frame
from ..oracle import tarantool_server

TYPES = ft.FIELD_TYPES
NAN = float("nan")
INF = float("inf")

pack = msgpack.Packer(use_bin_type=True, unicode_errors="surrogateescape", default=ft.default).pack


def unpackb(b: bytes) -> Any:
    return msgpack.unpackb(b, ext_hook=ft.ext_hook, raw=False, unicode_errors="surrogateescape",
                           strict_map_key=False)


def same(a: Any, b: Any) -> bool:
    """Equal as Tarantool would store them (-0.0 is not 0, NaN is NaN)."""
    return pack(a) == pack(b)


# -- names --------------------------------------------------------------------------

# spelling -> (format type, index part type), None = rejected. Checked against
# Tarantool below (test_names_vs_tarantool).
NAMES = {
    "unsigned": ("unsigned", "unsigned"), "UNSIGNED": ("unsigned", "unsigned"),
    "Unsigned": ("unsigned", "unsigned"), "string": ("string", "string"),
    "str": ("string", "string"), "Str": ("string", "string"), "STR": ("string", "string"),
    "num": ("unsigned", "unsigned"), "NUM": ("unsigned", "unsigned"),
    "number": ("number", "number"), "NUMBER": ("number", "number"),
    "double": ("double", "double"), "integer": ("integer", "integer"),
    "Integer": ("integer", "integer"), "int": (None, "integer"), "INT": (None, "integer"),
    "uint": (None, "unsigned"), "Uint": (None, "unsigned"), "boolean": ("boolean", "boolean"),
    "Boolean": ("boolean", "boolean"), "bool": (None, None), "varbinary": ("varbinary", "varbinary"),
    "scalar": ("scalar", "scalar"), "Scalar": ("scalar", "scalar"), "any": ("any", "any"),
    "*": ("any", "any"), "array": ("array", "array"), "map": ("map", "map"),
    "uuid": ("uuid", "uuid"), "decimal": ("decimal", "decimal"), "numeric": (None, None),
    "float": (None, None), "n": ("unsigned", "unsigned"), "nu": ("unsigned", "unsigned"),
    "s": ("string", "string"), "st": ("string", "string"), "": ("unsigned", "unsigned"),
    "numb": (None, None), "strin": (None, None),
}


def test_names() -> None:
    for name, (fmt, part) in NAMES.items():
        assert ft.field_type_by_name(name) == fmt, name
        assert ft.index_part_type_by_name(name) == part, name
    assert ft.field_type_by_name(1) is None  # type: ignore[arg-type]  # a wrong type on purpose
    assert set(TYPES) - ft.INDEXABLE_TYPES == {"any", "array", "map"}


# format type (row) x index part type (column): '+' compatible, '.' ER 27.
CONTAINS_MATRIX = """
any       + + + + + + + + + + + +
unsigned  + . + . + . . + . . . .
string    . + . . . . . + . . . .
number    + . + + + . . + + . . .
double    . . + + . . . + . . . .
integer   + . + . + . . + . . . .
boolean   . . . . . + . + . . . .
varbinary . . . . . . + + . . . .
scalar    + + + + + + + + + . . .
decimal   . . + . . . . + + . . .
uuid      . . . . . . . . . + . .
array     . . . . . . . . . . + .
map       . . . . . . . . . . . +
"""  # columns: unsigned string number double integer boolean varbinary scalar decimal uuid array map
MATRIX_COLS = ["unsigned", "string", "number", "double", "integer", "boolean", "varbinary",
               "scalar", "decimal", "uuid", "array", "map"]


def matrix() -> dict[tuple[str, str], bool]:
    out = {}
    for line in CONTAINS_MATRIX.strip().splitlines():
        row, *cells = line.split()
        for col, c in zip(MATRIX_COLS, cells, strict=True):
            out[row, col] = c == "+"
    return out


def test_field_type_contains() -> None:
    for (fmt, part), ok in matrix().items():
        merged = ft.stricter_field_type(fmt, part)
        assert (merged is not None) == ok, (fmt, part)
        if ok:
            assert merged in (fmt, part) and ft.field_type_contains(fmt, merged)
            assert ft.field_type_contains(part, merged)
    assert ft.stricter_field_type("integer", "unsigned") == "unsigned"
    assert ft.stricter_field_type("unsigned", "integer") == "unsigned"
    assert ft.stricter_field_type("scalar", "decimal") == "decimal"
    assert ft.stricter_field_type("any", "uuid") == "uuid"


# -- validity -----------------------------------------------------------------------

UUID1 = uuid.UUID("6ba7b810-9dad-11d1-80b4-00c04fd430c8")
VALUES: dict[str, Any] = {
    "uint5": 5, "uint64max": 2**64 - 1, "neg5": -5, "int64min": -2**63, "zero": 0,
    "f1.0": 1.0, "f1.5": 1.5, "f-0.0": -0.0, "inf": INF, "-inf": -INF, "nan": NAN,
    "str": "a", "empty_str": "", "bin": b"a", "true": True, "false": False, "nil": None,
    "array": [1], "map": {1: 2}, "dec": Decimal("1.5"), "uuid": UUID1,
    "ext5": msgpack.ExtType(5, b"ab"),
}
NUMS = {"uint5", "uint64max", "neg5", "int64min", "zero", "f1.0", "f1.5", "f-0.0", "inf", "-inf", "nan", "dec"}
ACCEPTS = {
    "any": set(VALUES),
    "unsigned": {"uint5", "uint64max", "zero"},
    "integer": {"uint5", "uint64max", "neg5", "int64min", "zero"},
    "number": NUMS,
    "double": {"f1.0", "f1.5", "f-0.0", "inf", "-inf", "nan"},
    "string": {"str", "empty_str"}, "varbinary": {"bin"}, "boolean": {"true", "false"},
    "scalar": NUMS | {"str", "empty_str", "bin", "true", "false"},
    "array": {"array"}, "map": {"map"}, "uuid": {"uuid"}, "decimal": {"dec"},
}


def test_is_valid_table() -> None:
    for t in TYPES:
        got = {n for n, v in VALUES.items() if is_valid(v, t)}
        assert got == ACCEPTS[t], t
    assert not is_valid(2**64, "unsigned") and not is_valid(2**64, "number")
    assert not is_valid(-2**63 - 1, "integer") and not is_valid(-1, "unsigned")
    assert not is_valid(True, "unsigned") and not is_valid(1, "boolean")
    assert is_valid(5, "UNSIGNED") and is_valid(5, "num") and not is_valid(1.5, "num")
    assert is_valid((1, 2), "array")
    with pytest.raises(ValueError):
        is_valid(1, "int")  # a Lua-only alias, not a field type



def _outcome(f: Any, *args: Any) -> Any:
    try:
        f(*args)
    except BoxError as e:
        return e.code, e.message
    except ValueError as e:  # a type name that is none
        return str(e)
    return None


_DEFS = st.lists(st.one_of(st.none(), st.tuples(st.sampled_from(ft.FIELD_TYPES + ("num", "bogus")), st.booleans())),
                 max_size=5)
_FIELD_VALUES = st.one_of(st.none(), st.integers(-2**64, 2**65), st.floats(), st.text(max_size=3),
                          st.binary(max_size=3), st.booleans(), st.just(Decimal("1.5")), st.just(Decimal("NaN")),
                          st.just(uuid.UUID(int=7)), st.just([1]), st.just({"a": 1}),
                          st.sampled_from([msgpack.ExtType(33, b"x"), msgpack.ExtType(64, b"x")]))


@settings(max_examples=500, deadline=None)
@given(_DEFS, st.lists(_FIELD_VALUES, max_size=7))
def test_tuple_check_is_check_tuple(defs: list[Any], fields: list[Any]) -> None:
    # The generated checker of a space's format passes what check_tuple
    # passes, and raises the same error for the rest.
    assert _outcome(ft.tuple_check(defs), fields) == _outcome(check_tuple, fields, defs)

def test_check_field_and_messages() -> None:
    check_field(None, "string", True, 2)
    check_field(None, "any", False, 2)
    check_field(None, "*", False, 2)
    check_tuple([None], [("*", False)])
    check_field(5, "unsigned", False, 1)
    with pytest.raises(BoxError) as e:
        check_field(None, "string", False, 2, "v")
    assert e.value.code == ER.FIELD_TYPE == 23
    assert e.value.message == ("Tuple field 2 type does not match one required by operation: "
                               "expected string")
    with pytest.raises(BoxError) as e:
        check_field(-1, "num", False, 3)
    assert e.value.message.endswith("expected unsigned")


def test_check_tuple_order() -> None:
    defs = [("unsigned", False), ("string", False), ("integer", True)]
    check_tuple([1, "x"], defs)
    check_tuple([1, "x", None, "extra"], defs)
    with pytest.raises(BoxError) as e:
        check_tuple(["x"], defs)  # a present field's type first
    assert e.value.code == ER.FIELD_TYPE and "field 1 " in e.value.message
    with pytest.raises(BoxError) as e:
        check_tuple([1], defs)
    assert (e.value.code, e.value.message) == (39, "Tuple field 2 required by space format is missing")
    check_tuple([1], [("unsigned", False), None, ("string", True)])
    with pytest.raises(BoxError) as e:
        check_tuple([1, 2], [None, None, ("string", False)])
    assert e.value.message == "Tuple field 3 required by space format is missing"


def test_check_key() -> None:
    parts = [(2, "string"), (1, "integer", True)]
    check_key([], parts)
    check_key(["a"], parts)
    check_key(["a", None], parts)
    with pytest.raises(BoxError) as e:
        check_key(["a", 1, 2], parts)
    assert (e.value.code, e.value.message) == (31, "Invalid key part count (expected [0..2], got 3)")
    with pytest.raises(BoxError) as e:
        check_key(["a"], parts, exact=True)
    assert (e.value.code, e.value.message) == (
        19, "Invalid key part count in an exact match (expected 2, got 1)")
    with pytest.raises(BoxError) as e:
        check_key(["a", None], parts, exact=True)  # nil never matches exactly
    assert (e.value.code, e.value.message) == (
        18, "Supplied key type of part 1 does not match index part type: expected integer")
    with pytest.raises(BoxError) as e:
        check_key([1], parts)
    assert e.value.message == "Supplied key type of part 0 does not match index part type: expected string"
    with pytest.raises(BoxError) as e:
        check_key([None], parts)
    assert e.value.code == 18


# -- decimal and uuid ---------------------------------------------------------------

# Tarantool 2.6: require('msgpack').encode(require('decimal').new(s))
DECIMAL_BYTES = {
    "1.5": "c7 03 01 01 01 5c", "-1.5": "c7 03 01 01 01 5d", "0": "d5 01 00 0c",
    "-0": "d5 01 00 0d", "1e5": "d5 01 fb 1c", "1.50": "c7 03 01 02 15 0c",
    "12345678901234567890123456789012345678":
        "c7 15 01 00 01 23 45 67 89 01 23 45 67 89 01 23 45 67 89 01 23 45 67 8c",
    "0.000001": "d5 01 06 1c", "1e-30": "d5 01 1e 1c", "100": "c7 03 01 00 10 0c",
    "0.0": "d5 01 01 0c", "-0.00": "d5 01 02 0d", "1E+2": "d5 01 fe 1c", "0.1": "d5 01 01 1c",
    "1e-38": "d5 01 26 1c",
}


def test_decimal_vectors() -> None:
    for s, h in DECIMAL_BYTES.items():
        b = bytes.fromhex(h.replace(" ", ""))
        assert pack(Decimal(s)) == b, s
        d = unpackb(b)
        assert type(d) is Decimal and d == Decimal(s) and str(d) == str(Decimal(s))
        assert pack(d) == b


def test_decimal_decoding_edges() -> None:
    # Other sign nibbles and leading zeros decode (as decPacked does).
    assert ft.decimal_unpack(b"\x01\x00\x01\x5b") == Decimal("-1.5")
    assert ft.decimal_unpack(b"\x01\x15\x0f") == Decimal("15.0")
    assert ft.decimal_unpack(b"\xcc\x02\x15\x0c") == Decimal("1.50")  # a wide scale
    assert ft.decimal_unpack(b"\xd0\xfe\x1c") == Decimal("1E+2")
    for bad in (b"", b"\x01", b"\x01\x15", b"\x01\xa5\x0c", b"\x01\x1a\x0c", b"\xc0\x1c",
                b"\x00" + b"\x99" * 20 + b"\x9c", b"\xd2\x80\x00\x00\x00\x1c"):
        with pytest.raises(ValueError):
            ft.decimal_unpack(bad)
    assert ft.decimal_unpack(b"\x26\x1c") == Decimal("1E-38")
    assert ft.decimal_unpack(b"\xd0\xdb\x1c") == Decimal("1E+37")
    assert ft.decimal_unpack(b"\x00" + b"\x12" * 19 + b"\x3c") == Decimal("12" * 19 + "3")  # 39 digits
    assert ft.decimal_unpack(b"\x00" * 21 + b"\x1c") == Decimal(1)
    for bad in (b"\x27\x1c", b"\xd0\xda\x1c"):  # scale 39, -38
        with pytest.raises(ValueError):
            ft.decimal_unpack(bad)
    for bad_d in (Decimal("NaN"), Decimal("Infinity"), Decimal("1" * 39), Decimal("1E+38"),
                  Decimal("1E-39")):
        with pytest.raises((ValueError, TypeError)):
            pack(bad_d)
    with pytest.raises(TypeError):
        pack(object())
    assert unpackb(pack(msgpack.ExtType(5, b"ab"))) == msgpack.ExtType(5, b"ab")
    # A uuid or decimal 2.6 cannot read stays an ExtType (an 'any' field keeps it).
    assert unpackb(pack(msgpack.ExtType(2, b"short"))) == msgpack.ExtType(2, b"short")
    assert unpackb(pack(msgpack.ExtType(1, b"\x01\x15"))) == msgpack.ExtType(1, b"\x01\x15")


def test_uuid_codec() -> None:
    b = bytes.fromhex("d8026ba7b8109dad11d180b400c04fd430c8")  # Tarantool 2.6's bytes
    assert pack(UUID1) == b
    assert unpackb(b) == UUID1


def decimals(max_exp: int = 37) -> st.SearchStrategy[Decimal]:
    """Decimals 2.6 can hold: <= 38 digits, exponent in [-38, 37]."""
    return st.builds(
        lambda sign, digits, exp: Decimal((sign, tuple(int(c) for c in str(digits)), exp)),
        st.integers(0, 1), st.integers(0, 10**38 - 1), st.integers(-min(max_exp + 1, 38), max_exp))


@given(decimals())
def test_decimal_roundtrip(d: Decimal) -> None:
    b = pack(d)
    back = unpackb(b)
    assert back == d and back.as_tuple() == d.as_tuple()
    assert pack(back) == b


# -- key order (pure) ---------------------------------------------------------------

def order(values: list[Any], t: str, nullable: bool = False) -> list[Any]:
    return sorted(values, key=ft.key_part_fn(t, nullable))


def test_scalar_class_order() -> None:
    vals = [b"a", "z", "", 10**19, -5, 1.5, Decimal("1.25"), True, False, b""]
    assert order(vals, "scalar") == [False, True, -5, Decimal("1.25"), 1.5, 10**19, "", "z", b"", b"a"]
    assert order([None, True, 0], "scalar", nullable=True) == [None, True, 0]
    k = ft.key_part_fn("scalar")
    assert k(1) == k(1.0) == k(Decimal("1.00")) and k(True) != k(1)
    assert k(0.0) == k(-0.0) == k(0)


def test_number_order_nan_and_decimals() -> None:
    k = ft.key_part_fn("number")
    vals = [2, NAN, -INF, INF, Decimal("-3"), 1.5, -2**63, 2**64 - 1]
    got = order(vals, "number")
    assert math.isnan(got[0])
    assert got[1:] == [-INF, -2**63, Decimal("-3"), 1.5, 2, 2**64 - 1, INF]
    assert k(NAN) == k(NAN) and k(NAN) < k(-INF)
    assert k(2**53 + 1) > k(2.0**53) and k(2**64 - 1) < k(2.0**64)
    # decimal vs double: the double's 15 significant digits
    k2 = ft.key_part_fn("number", first=False)
    assert k2(Decimal("0.1")) == k2(0.1) and k2(Decimal("0.3")) == k2(0.1 + 0.2)
    assert k2(Decimal("1")) == k2(0.9999999999999999)
    # ... but in a first part the integral-part hint decides first
    assert k(0.9999999999999999) < k(Decimal("1"))
    assert k(Decimal("0.3")) == k(0.1 + 0.2)


def test_string_order_is_bytes() -> None:
    vals = ["b", "a", "ab", "é", "\U0001F600", "\uffff", "\udcff", "\udc80", "Z", ""]
    want = sorted(vals, key=lambda s: s.encode("utf-8", "surrogateescape"))
    assert order(vals, "string") == want
    assert ft.key_part_fn("string")("abc") == "abc"
    with pytest.raises(BoxError) as e:
        ft.key_part_fn("string", collation="unicode_ci")
    assert e.value.code == ER.UNSUPPORTED
    assert ft.key_part_fn("string", collation=str.casefold)("AbC") == "abc"


def test_fast_paths_and_nullable() -> None:
    for t in ("unsigned", "integer", "boolean", "varbinary", "uuid", "decimal"):
        assert ft.key_part_fn(t) is ft._identity
    assert ft.key_maker([(0, "unsigned")])([7, "x"]) == 7
    assert ft.key_maker([(1, "string"), (0, "integer")])([7, "x"]) == ("x", 7)
    assert ft.make_key([3, 2.5], [(0, "unsigned"), (1, "number")]) == (3, 2.5)
    kn = ft.key_maker([(1, "unsigned", True)])
    assert kn([1]) is NIL_KEY and kn([1, None]) is NIL_KEY and kn([1, 5]) == 5
    assert sorted([[1, 5], [2], [3, 0], [4, None]], key=kn) in ([[2], [4, None], [3, 0], [1, 5]],
                                                                  [[4, None], [2], [3, 0], [1, 5]])
    assert NIL_KEY < 0 and NIL_KEY < "" and not (NIL_KEY > -10**30) and NIL_KEY == NIL_KEY
    assert KEY_MAX > 10**30 and KEY_MAX > ("z",) and not (KEY_MAX < 0)
    with pytest.raises(BoxError):
        ft.key_part_fn("array")


def test_key_bounds_prefix() -> None:
    parts = [(0, "string"), (1, "unsigned")]
    rows = [["a", 1], ["a", 2], ["b", 0], ["", 9], ["ab", 0]]
    sl = SortedKeyList(rows, key=ft.key_maker(parts))
    lo, hi = ft.key_bounds(["a"], parts)
    assert list(sl.irange_key(lo, hi)) == [["a", 1], ["a", 2]]
    assert list(sl.irange_key(hi, None, inclusive=(False, True))) == [["ab", 0], ["b", 0]]
    assert list(sl.irange_key(None, lo, inclusive=(True, False))) == [["", 9]]
    assert ft.key_bounds([], parts) == (None, None)
    assert ft.key_bounds(["a", 2], parts) == (("a", 2), ("a", 2))
    assert ft.key_bounds([5], [(0, "unsigned")]) == (5, 5)
    assert ft.search_key([], parts) is None


scalars = st.one_of(
    st.booleans(), st.integers(-2**63, 2**64 - 1), st.floats(), st.text(max_size=5),
    st.binary(max_size=5), decimals())


@given(st.lists(scalars, max_size=12))
def test_scalar_key_is_a_total_order(vals: list[Any]) -> None:
    # Without the decimal/double "%.15g" ties the order is total and
    # consistent: sorting is idempotent and neighbours compare properly.
    assume(not (any(type(v) is Decimal for v in vals) and any(type(v) is float for v in vals)))
    k = ft.key_part_fn("scalar")
    keys = sorted(k(v) for v in vals)
    for a, b in zip(keys, keys[1:], strict=False):
        assert a <= b and not (b < a) and (a == b) == (not a < b)


# -- Tarantool 2.6, differentially --------------------------------------------------

SELECT, INSERT, DELETE, EVAL = 1, 2, 5, 8
ITER_EQ, ITER_REQ, ITER_ALL, ITER_LT, ITER_LE, ITER_GE, ITER_GT = range(7)


class Tarantool:
    """A raw client of the Tarantool tarantool_server.lua `field_types` serves."""

    def __init__(self, port: int) -> None:
        self.raw = Raw(port)
        self.sync = 0
        self.ids: dict[str, int] = {}

    def close(self) -> None:
        self.raw.close()

    def request(self, rtype: int, body: bytes) -> tuple[int, Any]:
        """(0, body) or (error code, message)."""
        self.sync += 1
        payload = pack({0: rtype, 1: self.sync}) + body
        self.raw.send(frame(payload))
        head = self.raw._exact(5)
        data = self.raw._exact(struct.unpack(">I", head[1:])[0])
        u = msgpack.Unpacker(raw=False, strict_map_key=False, unicode_errors="surrogateescape",
                             ext_hook=ft.ext_hook)
        u.feed(data)
        h = u.unpack()
        b = u.unpack()
        if h[0] != 0:
            return h[0] & 0x7FFF, b.get(0x31)
        return 0, b

    def eval(self, code: str, *args: Any) -> Any:
        rc, b = self.request(EVAL, pack({0x27: code, 0x21: list(args)}))
        if rc:
            raise RuntimeError(b)
        return b[0x30]

    def space(self, name: str) -> int:
        if name not in self.ids:
            self.ids[name] = self.eval("return box.space[...].id", name)[0]
        return self.ids[name]

    def insert(self, space: str, tup: list[Any]) -> tuple[int, Any]:
        return self.request(INSERT, b"\x82" + pack(0x10) + pack(self.space(space)) + pack(0x21) + pack(tup))

    def select(self, space: str, index: int = 0, key: list[Any] | None = None,
               iterator: int = ITER_ALL) -> tuple[int, Any]:
        rc, b = self.request(SELECT, pack({0x10: self.space(space), 0x11: index, 0x12: 2**32 - 1,
                                           0x13: 0, 0x14: iterator, 0x20: key or []}))
        return (rc, b) if rc else (0, b[0x30])

    def delete(self, space: str, index: int, key: list[Any]) -> tuple[int, Any]:
        return self.request(DELETE, pack({0x10: self.space(space), 0x11: index, 0x20: key}))

    def truncate(self, *spaces: str) -> None:
        for s in spaces:
            self.eval("box.space[...]:truncate()", s)


@pytest.fixture(scope="module")
def tt(tarantool_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tarantool]:
    with tarantool_server(tarantool_bin, "field_types", tmp_path_factory.mktemp("tarantool_ft")) as port:
        t = Tarantool(port)
        try:
            assert t.eval("return box.info.version")[0].startswith("2.6")
            yield t
        finally:
            t.close()


def test_names_vs_tarantool(tt: Tarantool) -> None:
    res = tt.eval(r"""
        local out = {}
        for i, n in ipairs(...) do
            local fmt, part = box.NULL, box.NULL
            local ok, s = pcall(box.schema.space.create, 'name_f'..i, {format={{'a', n}}})
            if ok then
                fmt = s:format()[1].type
                s:drop()
            end
            local x = box.schema.space.create('name_i'..i)
            local ok2 = pcall(x.create_index, x, 'pk', {parts={{1, n}}})
            if ok2 then part = box.space._index:get{x.id, 0}[6][1][2] end
            local ok3, err3 = pcall(box.space._index.insert, box.space._index,
                                    {x.id, 0, 'pk', 'tree', {unique=true}, {{0, n}}})
            local raw = box.NULL
            if not ok2 and ok3 then raw = 'stored' end
            if not ok3 and tostring(err3):find('is not supported') then raw = 'unsupported' end
            x:drop()
            out[i] = {fmt, part, raw}
        end
        return out
    """, list(NAMES))[0]
    for name, (fmt_stored, part_stored, raw) in zip(NAMES, res, strict=True):
        fmt, part = NAMES[name]
        # a format keeps the spelling; the type it means is field_type_by_name's
        assert (fmt_stored is not None) == (fmt is not None), name
        if fmt_stored is not None:
            assert fmt_stored == name
        if part in ft.INDEXABLE_TYPES:
            # create_index stores the canonical name of the names it knows;
            # the C-only prefix spellings ('', 'n', 's', ...) as given.
            known = name.lower() in set(TYPES) | {"num", "str", "int", "uint"}
            assert part_stored == (part if known else name), name
        else:
            assert part_stored is None, name
            if part is not None:
                assert raw == "unsupported", name  # any, array, map: "not supported"


def test_contains_matrix_vs_tarantool(tt: Tarantool) -> None:
    got = tt.eval(r"""
        local fmts, parts = ...
        local out = {}
        for _, a in ipairs(fmts) do
            for _, b in ipairs(parts) do
                local s = box.schema.space.create('m', {format={{'id', 'unsigned'}, {'v', a}}})
                s:create_index('pk')
                local ok, e = pcall(s.create_index, s, 'sk', {parts={{2, b}}})
                table.insert(out, {a, b, ok and 0 or e.code})
                s:drop()
            end
        end
        return out
    """, list(TYPES), sorted(ft.INDEXABLE_TYPES))[0]
    for fmt, part, code in got:
        want = ft.stricter_field_type(fmt, part)
        assert (code == 0) == (want is not None), (fmt, part, code)
        assert code in (0, 27)


@pytest.fixture(scope="module")
def validity_spaces(tt: Tarantool) -> Tarantool:
    """v_<type> and v_<type>_n: format {id unsigned, v <type> [nullable]}."""
    tt.eval(r"""
        for _, t in ipairs(...) do
            for _, n in ipairs({false, true}) do
                local s = box.schema.space.create('v_'..t..(n and '_n' or ''),
                    {format={{'id', 'unsigned'}, {'v', t, is_nullable=n}}})
                s:create_index('pk', {sequence=true})
            end
        end
    """, list(TYPES))
    return tt


def test_validity_vs_tarantool(validity_spaces: Tarantool) -> None:
    """Every value x every type x nullable: accepted or ER_FIELD_TYPE, same text."""
    tt = validity_spaces
    values = VALUES
    i = 0
    for t in TYPES:
        for nullable in (False, True):
            space = f"v_{t}_n" if nullable else f"v_{t}"
            for name, v in values.items():
                i += 1
                rc, msg = tt.insert(space, [i, v])
                try:
                    check_field(v, t, nullable, 2)
                    assert rc == 0, (t, nullable, name, msg)
                except BoxError as e:
                    assert (rc, msg) == (e.code, e.message), (t, nullable, name)
    # The format name given as 'num' means unsigned there too.
    tt.eval("local s = box.schema.space.create('v_num', {format={{'id', 'num'}}}) s:create_index('pk')")
    assert tt.insert("v_num", [1.5])[0] == 23 and tt.insert("v_num", [1])[0] == 0


any_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**64 - 1), st.floats(),
              st.text(max_size=4), st.binary(max_size=4), decimals(), st.uuids(),
              # Unknown extensions; 2.6 takes a type modulo 32 in its type
              # checks (see field_types._v_any), so 33 would pass as a decimal:
              # that aliasing is not reproduced, and such types are not sent.
              st.builds(msgpack.ExtType, st.integers(3, 100).filter(lambda c: c % 32 > 2),
                        st.binary(max_size=3)),
              st.builds(msgpack.ExtType, st.sampled_from([0, 32, 64, 96]), st.binary(max_size=3))),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.integers(0, 9) | st.text(max_size=2),
                                                                 inner, max_size=3),
    max_leaves=6)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(v=any_values)
def test_validity_random_vs_tarantool(validity_spaces: Tarantool, v: Any) -> None:
    tt = validity_spaces
    for t in TYPES:
        for nullable in (False, True):
            space = f"v_{t}_n" if nullable else f"v_{t}"
            rc, msg = tt.insert(space, [None, v])  # id from the sequence
            ok = v is None and (nullable or t == "any") or v is not None and is_valid(v, t)
            assert (rc == 0) == ok, (t, nullable, v, msg)
            assert rc in (0, 23)


def test_tuple_errors_vs_tarantool(tt: Tarantool) -> None:
    tt.eval(r"""
        local a = box.schema.space.create('te_a', {format={{'id','unsigned'},{'v','string'},
                                                  {'w','integer', is_nullable=true}}})
        a:create_index('pk')
        local b = box.schema.space.create('te_b')
        b:create_index('pk', {parts={{1,'unsigned'}}})
        b:create_index('sk', {parts={{3,'string'}, {2, 'integer'}}})
        b:create_index('nk', {parts={{4,'unsigned', is_nullable=true}}})
    """)
    defs_a = [("unsigned", False), ("string", False), ("integer", True)]
    defs_b = [("unsigned", False), ("integer", False), ("string", False), ("unsigned", True)]
    cases = [("te_a", defs_a, t) for t in ([1], [], ["x"], [1, None], [1, "x", "y"], [1, "x"],
                                            [1, "x", None, 5], [-1, 5])]
    cases += [("te_b", defs_b, t) for t in ([1], [1, 2], [1, 2, 3], [1, "x", "y"], ["1", 2, "y"],
                                            [2, 2, "y", "z"], [None, 2, "y"], [3, 2, "y", None])]
    for space, defs, tup in cases:
        rc, msg = tt.insert(space, tup)
        try:
            check_tuple(tup, defs)
            assert rc == 0, (space, tup, msg)
        except BoxError as e:
            assert (rc, msg) == (e.code, e.message), (space, tup)
        tt.truncate(space)


def test_key_validation_vs_tarantool(tt: Tarantool) -> None:
    """Select keys (iterators; nil in nullable parts) and exact keys (delete)."""
    idx = sorted(ft.INDEXABLE_TYPES)
    tt.eval(r"""
        for _, t in ipairs(...) do
            local s = box.schema.space.create('k_'..t)
            s:create_index('pk', {parts={{1, t}}})
            s:create_index('sk', {parts={{2, t, is_nullable=true}}, unique=true})
        end
    """, idx)
    for t in idx:
        for index, parts in ((0, [(0, t)]), (1, [(1, t, True)])):
            for name, v in VALUES.items():
                for exact in (False, True):
                    key = [v]
                    if exact:
                        rc, msg = tt.delete(f"k_{t}", index, key)
                    else:
                        rc, msg = tt.select(f"k_{t}", index, key, ITER_EQ)
                    try:
                        check_key(key, parts, exact)
                        assert rc == 0, (t, index, name, exact, msg)
                    except BoxError as e:
                        assert (rc, msg) == (e.code, e.message), (t, index, name, exact)
    tt.eval(r"""
        local s = box.schema.space.create('k_multi')
        s:create_index('pk', {parts={{1, 'string'}, {2, 'unsigned'}}})
    """)
    parts = [(0, "string"), (1, "unsigned")]
    for key in ([], ["a"], ["a", 1], ["a", 1, 2], [1], ["a", "b"]):
        for exact in (False, True):
            if exact:
                rc, msg = tt.delete("k_multi", 0, key)
            else:
                rc, msg = tt.select("k_multi", 0, key, ITER_GE)
            try:
                check_key(key, parts, exact)
                assert rc == 0, (key, exact, msg)
            except BoxError as e:
                assert (rc, msg) == (e.code, e.message), (key, exact)


def test_decimal_and_uuid_bytes_vs_tarantool(tt: Tarantool) -> None:
    """Tarantool's own encoding of decimal.new(s) / uuid.fromstr(s) equals ours,
    and what we send comes back byte for byte."""
    strs = list(DECIMAL_BYTES) + ["-12.34500", "99999999999999999999999999999999999999", "1e+37",
                                  "-0.00000000000000000000000000000000000001", "123.456e-7"]
    raw_out = tt.eval(r"""
        local out = {}
        for i, s in ipairs(...) do out[i] = require('msgpack').encode(require('decimal').new(s)) end
        return out
    """, strs)
    # returned as MP_STR holding binary: decode the surrogates back
    for s, enc in zip(strs, raw_out[0], strict=True):
        b = enc.encode("utf-8", "surrogateescape")
        assert b == pack(Decimal(s)), s
    for _ in range(20):
        u = uuid.uuid4()
        enc = tt.eval("return require('msgpack').encode(require('uuid').fromstr(...))", str(u))[0]
        assert enc.encode("utf-8", "surrogateescape") == pack(u)
        assert tt.eval("return tostring(...)", u) == [str(u)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(d=decimals())
@example(d=Decimal("-0"))
@example(d=Decimal("1E+37"))
@example(d=Decimal("-1E-38"))
def test_decimal_echo_vs_tarantool(tt: Tarantool, d: Decimal) -> None:
    s, enc = tt.eval("local d = ... return tostring(d), require('msgpack').encode(d)", d)
    assert enc.encode("utf-8", "surrogateescape") == pack(d)
    assert Decimal(s) == d


# ---- ordering: hypothesis values through Tarantool's TREE indexes

ORDER_SPACES = {
    "o_scalar": "scalar", "o_number": "number", "o_string": "string", "o_varbinary": "varbinary",
    "o_integer": "integer", "o_unsigned": "unsigned", "o_double": "double", "o_decimal": "decimal",
    "o_uuid": "uuid", "o_boolean": "boolean",
}


@pytest.fixture(scope="module")
def order_spaces(tt: Tarantool) -> Tarantool:
    tt.eval(r"""
        for name, t in pairs(...) do
            local s = box.schema.space.create(name)
            s:create_index('pk', {parts={{1, t}}})
        end
        local n = box.schema.space.create('o_nullable')
        n:create_index('pk', {parts={{1, 'unsigned'}}})
        n:create_index('sk', {parts={{2, 'unsigned', is_nullable=true}}, unique=false})
        n:create_index('sc', {parts={{3, 'scalar', is_nullable=true}}, unique=false})
        local m = box.schema.space.create('o_multi')
        m:create_index('pk', {parts={{1, 'scalar'}, {2, 'number'}}})
    """, ORDER_SPACES)
    return tt


ints = st.one_of(
    st.integers(-2**63, 2**64 - 1), st.integers(-300, 300),
    st.sampled_from([0, 1, -1, 2**53, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 1, -2**63,
                     2**59 - 1, 2**59, -2**59, -2**59 - 1]))
# Doubles a decimal may meet: below 1e38 (2.6 compares a decimal with a
# bigger double, inf or NaN through an uninitialised decimal).
small_floats = st.one_of(
    st.floats(-1e37, 1e37),
    st.sampled_from([0.0, -0.0, 1.0, 0.5, -0.5, 1.5, 0.1, 0.1 + 0.2, 0.9999999999999999,
                     1.0000000000000002, 0.1000000000000001, 2.0**53, 2.0**63, 2.0**64, 5e-324,
                     1e-38, 5e-39, 1.5e-38, 2.0**59, -(2.0**59), 9.99999999999999e36]),
    st.integers(-2000, 2000).map(lambda i: i / 8), st.integers(-1000, 1000).map(lambda i: i / 10),
    ints.map(float))
finite_floats = st.one_of(small_floats, st.floats(allow_nan=False, allow_infinity=False),
                          st.sampled_from([1e300, -1e300, 1e38, 9.999999999999999e37]))
special_floats = st.sampled_from([NAN, -NAN, INF, -INF,
                                  struct.unpack(">d", bytes.fromhex("7ff0000000000001"))[0]])


def encodable(d: Decimal) -> bool:
    try:
        ft.decimal_pack(d)
        return True
    except ValueError:
        return False


decs = st.one_of(
    decimals(), st.integers(-10**6, 10**6).map(lambda i: Decimal(i).scaleb(-3)),
    small_floats.filter(lambda f: f == 0 or 1e-20 < abs(f) < 1e20).map(lambda f: Decimal(f"{f:.15g}")),
    ints.map(Decimal),
    st.sampled_from([Decimal("0.1"), Decimal("0.3"), Decimal("1"), Decimal("1.0"), Decimal("-0"),
                     Decimal("0.99999999999999999"), Decimal(2**59), Decimal("1E+37")]),
).filter(encodable)
texts = st.one_of(st.text(max_size=6), st.sampled_from(["a", "ab", "b", "é", "\U0001F600", "Z"]),
                  st.binary(max_size=4).map(lambda b: b.decode("utf-8", "surrogateescape")))
blobs = st.binary(max_size=6)


def number_lists() -> st.SearchStrategy[list[Any]]:
    # Decimal against NaN, +-inf or |double| >= 1e38 is undefined behaviour
    # in 2.6: never mix them.
    plain = st.lists(st.one_of(ints, small_floats, decs), max_size=25)
    special = st.lists(st.one_of(ints, finite_floats, special_floats), max_size=25)
    return st.one_of(plain, special)


def scalar_lists() -> st.SearchStrategy[list[Any]]:
    others = st.one_of(st.booleans(), texts, blobs)
    plain = st.lists(st.one_of(ints, small_floats, decs, others), max_size=25)
    special = st.lists(st.one_of(ints, finite_floats, special_floats, others), max_size=25)
    return st.one_of(plain, special)


def ambiguous(values: list[Any]) -> bool:
    """Whether a decimal and a double compare otherwise than their exact
    values do (2.6 converts the double to a decimal of 15 digits) while a
    third number lies between them or equals one of them: the order is not
    transitive then, so whether the TREE sees a duplicate depends on its
    shape. (The int 2**59 - 1 and the double 2**59 stored, Decimal(2**59 - 1)
    came out a duplicate of the int in one history and not in another.)"""
    nums = [v for v in values if type(v) in (int, Decimal) or (type(v) is float and math.isfinite(v))]
    exact = [Decimal(v) for v in nums]
    for i, f in enumerate(nums):
        if type(f) is not float:
            continue
        for j, d in enumerate(nums):
            if type(d) is not Decimal:
                continue
            fd = exact[i]
            if ft._dec_cmp_double(d, f) != (d > fd) - (d < fd):
                lo, hi = sorted((fd, d))
                if any(lo <= e <= hi for k, e in enumerate(exact) if k not in (i, j)):
                    return True
    return False


def test_ambiguous_flags_a_third_number_at_the_pair() -> None:
    """The history hypothesis found on 2026-12-05 is excluded; one with
    nothing at or between the pair is not."""
    assert ambiguous([0, 4, 2**59 - 1, 2.0**59, 0.5, Decimal(2), Decimal(2**59 - 1)])
    assert not ambiguous([2**59 - 2, 2.0**59, Decimal(2**59 - 1)])
    assert not ambiguous([Decimal(2**59), 2.0**59, 7])  # they compare as their exact values do


def run_unique(tt: Tarantool, space: str, field_type: str, values: list[Any]) -> None:
    """Insert one by one into a unique TREE index; duplicates refused exactly
    where our keys are equal; then the stored order is our sorted order."""
    tt.truncate(space)
    k = ft.key_part_fn(field_type)
    keys: list[Any] = []
    accepted: list[Any] = []
    for v in values:
        rc, msg = tt.insert(space, [v])
        kv = k(v)
        dup = any(kv == o for o in keys)
        assert rc in (0, 3), msg
        assert (rc == 3) == dup, (v, msg, accepted)
        if not dup:
            keys.append(kv)
            accepted.append(v)
    rc, rows = tt.select(space)
    got = [r[0] for r in rows]
    want = sorted(accepted, key=k)
    assert [pack(v) for v in got] == [pack(v) for v in want]


SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@SETTINGS
@given(vals=scalar_lists())
@example(vals=[1, 1.0, Decimal("1.00"), True, "1", b"1"])
@example(vals=[Decimal("0.1"), 0.1, 0.9999999999999999, Decimal("1"), -0.0, 0])
@example(vals=[NAN, -NAN, 1, -INF, "x", False])
def test_scalar_order_vs_tarantool(order_spaces: Tarantool, vals: list[Any]) -> None:
    assume(not ambiguous(vals))
    run_unique(order_spaces, "o_scalar", "scalar", vals)


@SETTINGS
@given(vals=number_lists())
@example(vals=[2**64 - 1, 2.0**64, 2**63, 2.0**63, 2**53 + 1, 2.0**53, -2**63, -(2.0**63)])
@example(vals=[Decimal("0.3"), 0.1 + 0.2, Decimal("1E+37"), 1e37, Decimal(2**59), 2.0**59])
def test_number_order_vs_tarantool(order_spaces: Tarantool, vals: list[Any]) -> None:
    assume(not ambiguous(vals))
    run_unique(order_spaces, "o_number", "number", vals)


@SETTINGS
@given(vals=st.lists(texts, max_size=25))
@example(vals=["\udcff", "\ue000", "\udc80", "é", "a", "\U0001F600", "\uffff"])
def test_string_order_vs_tarantool(order_spaces: Tarantool, vals: list[str]) -> None:
    run_unique(order_spaces, "o_string", "string", vals)


@SETTINGS
@given(data=st.data())
def test_other_types_order_vs_tarantool(order_spaces: Tarantool, data: st.DataObject) -> None:
    strategies = {
        "varbinary": blobs, "integer": ints, "unsigned": st.integers(0, 2**64 - 1),
        "double": finite_floats | st.sampled_from([INF, -INF]), "decimal": decs,
        "uuid": st.uuids(), "boolean": st.booleans(),
    }
    t = data.draw(st.sampled_from(sorted(strategies)))
    vals = data.draw(st.lists(strategies[t], max_size=25))
    assume(t != "decimal" or not ambiguous(vals))
    run_unique(order_spaces, f"o_{t}", t, vals)


def test_double_index_nan_is_equal_to_everything(order_spaces: Tarantool) -> None:
    """Pinned 2.6 behaviour we do not reproduce (see the module note)."""
    tt = order_spaces
    tt.truncate("o_double")
    assert tt.insert("o_double", [NAN])[0] == 0
    assert tt.insert("o_double", [1.0])[0] == 3
    tt.truncate("o_double")
    assert tt.insert("o_double", [-INF])[0] == 0
    assert tt.insert("o_double", [NAN])[0] == 3
    k = ft.key_part_fn("double")
    assert k(NAN) < k(-INF)


@SETTINGS
@given(rows=st.lists(st.tuples(
    st.one_of(st.none(), st.integers(0, 5), st.just("missing")),
    st.one_of(st.none(), st.integers(-3, 3), st.sampled_from([1.5, "a", b"a", True, Decimal("2.5")]))),
    max_size=20))
def test_nullable_secondary_order_vs_tarantool(order_spaces: Tarantool, rows: list[Any]) -> None:
    """Non-unique nullable secondary keys: nil first, ties by the primary key."""
    tt = order_spaces
    tt.truncate("o_nullable")
    tuples = []
    for i, (a, b) in enumerate(rows):
        tup = [i] if a == "missing" and b is None else [i, None if a == "missing" else a, b]
        assert tt.insert("o_nullable", tup)[0] == 0
        tuples.append(tup)
    for index, parts in ((1, [(1, "unsigned", True)]), (2, [(2, "scalar", True)])):
        km = ft.key_maker(parts + [(0, "unsigned")])
        rc, got = tt.select("o_nullable", index)
        assert [r[0] for r in got] == [t[0] for t in sorted(tuples, key=km)], index


@SETTINGS
@given(rows=st.lists(st.tuples(st.sampled_from([1, 1.0, "a", b"a", True, Decimal("1.5"), -2]),
                               st.one_of(ints, small_floats, decs)), max_size=25),
       probe=st.tuples(st.sampled_from([1, "a", b"a", True, Decimal("1.5"), -2, 0, "b"]),
                       st.one_of(ints, small_floats, decs)),
       use_full=st.booleans())
def test_multipart_order_and_iterators_vs_tarantool(order_spaces: Tarantool, rows: list[Any],
                                                     probe: tuple[Any, Any], use_full: bool) -> None:
    """[scalar, number] unique: the second part has no comparison hint (pure
    "%.15g" decimal/double rule); every iterator over a full or prefix key
    matches key_bounds on a SortedKeyList."""
    assume(not ambiguous([b for _, b in rows]))
    tt = order_spaces
    tt.truncate("o_multi")
    parts = [(0, "scalar"), (1, "number")]
    km = ft.key_maker(parts)
    keys: list[Any] = []
    sl = SortedKeyList(key=km)
    for a, b in rows:
        rc, msg = tt.insert("o_multi", [a, b])
        kv = km([a, b])
        dup = any(kv == o for o in keys)
        assert (rc == 3) == dup and rc in (0, 3), (a, b, msg)
        if not dup:
            keys.append(kv)
            sl.add([a, b])
    rc, got = tt.select("o_multi")
    assert [pack(r) for r in got] == [pack(r) for r in sl]
    key = list(probe) if use_full else [probe[0]]
    lo, hi = ft.key_bounds(key, parts)
    model = {
        ITER_EQ: list(sl.irange_key(lo, hi)),
        ITER_REQ: list(sl.irange_key(lo, hi, reverse=True)),
        ITER_GE: list(sl.irange_key(lo, None)),
        ITER_GT: list(sl.irange_key(hi, None, inclusive=(False, True))),
        ITER_LE: list(sl.irange_key(None, hi, reverse=True)),
        ITER_LT: list(sl.irange_key(None, lo, inclusive=(True, False), reverse=True)),
    }
    for it, want in model.items():
        rc, got = tt.select("o_multi", 0, key, it)
        assert rc == 0
        assert [pack(r) for r in got] == [pack(r) for r in want], (it, key)

