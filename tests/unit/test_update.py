"""styx.box.update: plain unit tests per operation, then a differential test
against Debian's Tarantool 2.6 over IPROTO (hand-picked cases and
hypothesis-generated tuples and operation lists, valid and invalid).

The oracle is one tarantool instance per module: space 't' (id 512), format
{id unsigned, a, b, c: any nullable}, primary key on field 1. Cases that
change the primary key get ER_CANT_UPDATE_PRIMARY_KEY (or a format error)
from Tarantool where Styx's pure engine returns a tuple; for those the test
checks that Styx's tuple indeed has another key.
"""

from __future__ import annotations

import decimal
import math
import re
from collections.abc import Iterator
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from msgpack import ExtType

from styx.box.update import apply_update, apply_upsert, check_ops
from styx.protocol.errors import ER, BoxError
from tests.iproto import Raw, frame
from tests.oracle import tarantool_server

NAMES = {"id": 0, "a": 1, "b": 2, "c": 3}
T = [1, 10, "abc", 3.5, [1, 2], {"k": 1}, -5, 2**64 - 1, True, None, b"\x01\x02", "яzb"]
UMAX, IMIN = 2**64 - 1, -(2**63)



def _decimal_pack(d: decimal.Decimal) -> bytes:
    """MP_DECIMAL payload for any Decimal, including ones 2.6 cannot read back
    (the tests send those on purpose): scale as a msgpack int, packed BCD."""
    sign, digits, exponent = d.as_tuple()
    nibbles = list(digits) + [0x0D if sign else 0x0C]
    if len(nibbles) % 2:
        nibbles.insert(0, 0)
    body = bytes((nibbles[i] << 4) | nibbles[i + 1] for i in range(0, len(nibbles), 2))
    return msgpack.packb(-exponent) + body

def dec(s: str) -> ExtType:
    return ExtType(1, _decimal_pack(decimal.Decimal(s)))


def upd(fields: list[Any], ops: Any, base: int = 1) -> list[Any]:
    return apply_update(fields, ops, index_base=base, field_names=NAMES)


def err(fields: list[Any], ops: Any, base: int = 1) -> tuple[int, str]:
    with pytest.raises(BoxError) as info:
        apply_update(fields, ops, index_base=base, field_names=NAMES)
    return info.value.code, info.value.message


# ---------------------------------------------------------------------------
# Plain unit tests


def test_set_and_append():
    assert upd(T, [["=", 2, 5]])[1] == 5
    assert upd(T, [["=", 13, "x"]]) == T + ["x"]           # len+1 appends
    assert upd(T, [["=", -1, "x"]]) == T[:-1] + ["x"]
    assert err(T, [["=", 14, "x"]]) == (ER.NO_SUCH_FIELD_NO, "Field 14 was not found in the tuple")
    assert err(T, [["=", -13, "x"]]) == (ER.NO_SUCH_FIELD_NO, "Field -13 was not found in the tuple")
    assert err(T, [["=", 0, "x"]]) == (ER.NO_SUCH_FIELD_NO, "Field 0 was not found in the tuple")
    assert upd([], [["=", 1, 7]]) == [7]
    assert upd(T, [["=", 2, 5], ["=", 2, 6], ["=", 2, 7]])[1] == 7


def test_ext_values_are_values():
    uuid = ExtType(2, bytes(range(16)))
    out = upd([1, {"z": uuid}, (1, 2)], [["=", "[2].k", 0], ["=", "[3][1]", 5], ["!", 2, uuid]])
    assert out == [1, uuid, {"k": 0, "z": uuid}, [5, 2]]
    assert err([1], [uuid])[1].endswith("update operation must be an array {op,..}")


def test_input_is_not_modified():
    src = [1, [1, [2]], {"k": {"z": 1}}]
    copy = [1, [1, [2]], {"k": {"z": 1}}]
    out = upd(src, [["=", "[2][2][1]", 9], ["!", "[3].k.y", 0], ["#", 1, 1]])
    assert src == copy
    assert out == [[1, [9]], {"k": {"y": 0, "z": 1}}]


def test_arith_int():
    assert upd(T, [["+", 2, 5]])[1] == 15
    assert upd(T, [["-", 2, 15]])[1] == -5
    assert upd(T, [["+", 2, UMAX - 10]])[1] == UMAX
    assert err(T, [["+", 2, UMAX - 9]]) == (
        ER.UPDATE_INTEGER_OVERFLOW, "Integer overflow when performing '+' operation on field 2")
    assert upd(T, [["-", 2, 2**63 + 10]])[1] == IMIN
    assert err(T, [["-", 2, 2**63 + 11]])[0] == ER.UPDATE_INTEGER_OVERFLOW
    assert upd(T, [["+", 7, UMAX]])[6] == UMAX - 5       # -5 + UMAX fits
    assert upd(T, [["-", 8, UMAX]])[7] == 0


def test_arith_float_and_types():
    assert upd(T, [["+", 2, 1.5]])[1] == 11.5
    assert upd(T, [["+", 4, 1]])[3] == 4.5
    assert upd(T, [["-", 4, -1e308], ["+", 2, 0.1]])[3] == 1e308 + 3.5
    assert math.isinf(upd([1, 1e308], [["+", 2, 1e308]])[1])
    msg = "Argument type in operation '+' on field %s does not match field type: expected a number"
    assert err(T, [["+", 3, 1]]) == (ER.UPDATE_ARG_TYPE, msg % 3)      # string field
    assert err(T, [["+", 9, 1]]) == (ER.UPDATE_ARG_TYPE, msg % 9)      # bool is not a number
    assert err(T, [["+", 10, 1]]) == (ER.UPDATE_ARG_TYPE, msg % 10)    # nil
    assert err(T, [["+", 2, True]]) == (ER.UPDATE_ARG_TYPE, msg % 2)
    assert err(T, [["+", 2, "1"]]) == (ER.UPDATE_ARG_TYPE, msg % 2)
    assert err(T, [["+", "a", "1"]]) == (ER.UPDATE_ARG_TYPE, msg % "'a'")


def test_arith_decimal():
    assert upd([1, dec("1.5")], [["+", 2, 1]])[1] == dec("2.5")
    assert upd([1, 1], [["-", 2, dec("0.25")]])[1] == dec("0.75")
    assert upd([1, dec("1.00")], [["+", 2, dec("1.0")]])[1] == dec("2.00")
    assert upd([1, dec("1")], [["+", 2, 0.1]])[1] == dec("1.1")        # double via %.15g
    big = "12345678901234567890123456789012345678"
    assert upd([1, dec(big)], [["+", 2, dec("0.5")]])[1] == dec(big[:-1] + "9")  # 38 digits, half up
    assert err([1, dec("9.9999999999999999999999999999999999999E+37")], [["+", 2, 1]]) == (
        ER.UPDATE_DECIMAL_OVERFLOW, "Decimal overflow when performing operation '+' on field 2")
    assert err([1, dec("1")], [["+", 2, 1e38]]) == (
        ER.UPDATE_ARG_TYPE, "Argument type in operation '+' on field 2 does not match field type: "
        "expected a number convertible to decimal")
    assert err([1, dec("1")], [["+", 2, float("nan")]])[0] == ER.UPDATE_ARG_TYPE
    assert err([1, 1], [["+", 2, dec("1E+38")]]) == (
        ER.ILLEGAL_PARAMS, "Illegal parameters, can't unpack update operations")
    # decimal.Decimal values work too, and stay Decimal
    assert upd([1, decimal.Decimal("1.5")], [["+", 2, 1]])[1] == decimal.Decimal("2.5")
    # other extensions are not numbers
    assert err([1, ExtType(2, b"\0" * 16)], [["+", 2, 1]])[0] == ER.UPDATE_ARG_TYPE


def test_bit_ops():
    assert upd(T, [["&", 2, 3]])[1] == 2
    assert upd(T, [["|", 2, 5]])[1] == 15
    assert upd(T, [["^", 2, 15]])[1] == 5
    msg = ("Argument type in operation '&' on field %s does not match field type: "
           "expected a positive integer")
    assert err(T, [["&", 2, -3]]) == (ER.UPDATE_ARG_TYPE, msg % 2)
    assert err(T, [["&", 2, 1.0]]) == (ER.UPDATE_ARG_TYPE, msg % 2)
    assert err(T, [["&", 7, 3]]) == (ER.UPDATE_ARG_TYPE, msg % 7)     # negative field value
    assert err(T, [["&", 4, 3]]) == (ER.UPDATE_ARG_TYPE, msg % 4)


def test_splice():
    def sp(offset: int, length: int, paste: str = "X", base: int = 1) -> Any:
        return upd(T, [[":", 2 + base, offset, length, paste]], base)[2]

    assert sp(1, 1) == "Xbc"
    assert sp(-1, 1) == "abcX"
    assert sp(-4, 1) == "Xbc"
    assert sp(10, 1) == "abcX"
    assert sp(2, -1) == "aXc"
    assert sp(2, -10) == "aXbc"
    assert sp(2, 100) == "aX"
    assert sp(4, 0) == "abcX"
    assert sp(0, 0, base=0) == "Xabc"                       # 0-based offsets with index_base 0
    assert sp(1, 0, base=0) == "aXbc"
    bound = (ER.UPDATE_SPLICE, "SPLICE error on field 3: offset is out of bound")
    assert err(T, [[":", 3, 0, 1, "X"]]) == bound
    assert err(T, [[":", 3, -5, 1, "X"]]) == bound
    assert err(T, [[":", 3, -2**31, 1, "X"]]) == bound       # 2.6 crashes here
    assert sp(2, -2**31) == "aXbc"                            # 2.6 crashes here too
    msg = "Argument type in operation ':' on field %s does not match field type: expected %s"
    assert err(T, [[":", 2, 1, 1, "X"]]) == (ER.UPDATE_ARG_TYPE, msg % (2, "a string"))
    assert err(T, [[":", 11, 1, 1, "X"]]) == (ER.UPDATE_ARG_TYPE, msg % (11, "a string"))  # bin
    assert err(T, [[":", 3, 1, 1, b"X"]]) == (ER.UPDATE_ARG_TYPE, msg % (3, "a string"))
    assert err(T, [[":", 3, "1", 1, "X"]]) == (ER.UPDATE_ARG_TYPE, msg % (3, "an integer"))
    assert err(T, [[":", 3, 1, 2**31, "X"]]) == (ER.UPDATE_ARG_TYPE, msg % (3, "an integer"))
    # bytes, not characters: 'я' is two bytes and can be cut in two
    assert upd(T, [[":", 12, 2, 1, "X"]])[11] == "\udcd1Xzb"
    assert upd(T, [[":", 12, 1, 2, "Ж"]])[11] == "Жzb"


def test_insert():
    assert upd(T, [["!", 2, "x"]])[:3] == [1, "x", 10]
    assert upd(T, [["!", 13, "x"]]) == T + ["x"]
    assert upd(T, [["!", -1, "x"]]) == T + ["x"]            # negative counts against len+1
    assert upd(T, [["!", -12, "x"]])[:3] == [1, "x", 10]
    assert err(T, [["!", 14, "x"]]) == (ER.NO_SUCH_FIELD_NO, "Field 14 was not found in the tuple")
    assert err(T, [["!", -14, "x"]]) == (ER.NO_SUCH_FIELD_NO, "Field -14 was not found in the tuple")


def test_delete():
    assert upd(T, [["#", 2, 1]]) == [1] + T[2:]
    assert upd(T, [["#", 2, 100]]) == [1]
    assert upd(T, [["#", -1, 1]]) == T[:-1]
    assert upd(T, [["#", 2, 2**32 + 1]]) == [1] + T[2:]     # count is a uint32
    zero = (ER.UPDATE_FIELD, "Field 2 UPDATE error: cannot delete 0 fields")
    assert err(T, [["#", 2, 0]]) == zero
    assert err(T, [["#", 2, 2**32]]) == zero
    assert err(T, [["#", 13, 1]]) == (ER.NO_SUCH_FIELD_NO, "Field 13 was not found in the tuple")
    assert err(T, [["#", -100, 0]]) == (ER.UPDATE_FIELD, "Field -100 UPDATE error: cannot delete 0 fields")
    assert err(T, [["#", 2, -1]])[0] == ER.UPDATE_ARG_TYPE


def test_ops_see_the_tuple_as_left_by_previous_ops():
    assert upd(T, [["#", 2, 1], ["=", 2, "x"]])[:3] == [1, "x", 3.5]
    assert err(T, [["#", 2, 1], ["+", 2, 1]])[0] == ER.UPDATE_ARG_TYPE   # now 'abc'
    assert upd([1, 2, 3], [["#", 3, 20], ["=", "b", 1]]) == [1, 2, 1]    # 'b' is field 3 = len+1


def test_double_update():
    double = "Field %s UPDATE error: double update of the same field"
    assert err(T, [["+", 2, 5], ["+", 2, 1]]) == (ER.UPDATE_FIELD, double % 2)
    assert err(T, [["=", 2, 5], ["+", 2, 1]]) == (ER.UPDATE_FIELD, double % 2)
    assert err(T, [["+", 2, 5], ["&", 2, 1]]) == (ER.UPDATE_FIELD, double % 2)
    assert err(T, [[":", 3, 1, 1, ""], [":", 3, 1, 1, ""]]) == (ER.UPDATE_FIELD, double % 3)
    assert err(T, [["+", "a", 1], ["+", "a", 1]]) == (ER.UPDATE_FIELD, double % "'a'")
    assert err(T, [["+", "a", 1], ["+", 2, 1]]) == (ER.UPDATE_FIELD, double % 2)
    # '=' always wins; inserted/appended fields are fresh; the mark moves with the field
    assert upd(T, [["+", 2, 5], ["=", 2, 1]])[1] == 1
    assert upd(T, [["!", 2, 5], ["+", 2, 1]])[1] == 6
    assert upd(T, [["=", 13, 5], ["+", 13, 1]])[12] == 6
    assert err(T, [["+", 2, 5], ["!", 2, 5], ["+", 3, 1]]) == (ER.UPDATE_FIELD, double % 3)
    assert err(T, [["=", 2, 5], ["#", 3, 1], ["+", 2, 1]]) == (ER.UPDATE_FIELD, double % 2)


def test_shapes_and_names():
    illegal = ER.ILLEGAL_PARAMS
    assert err(T, [[]]) == (illegal, "Illegal parameters, update operation must be an array {op,..}, "
                                     "got empty array")
    assert err(T, ["x"]) == (illegal, "Illegal parameters, update operation must be an array {op,..}")
    assert err(T, [[1, 1, 1]]) == (illegal, "Illegal parameters, update operation name must be a string")
    assert err(T, [[b"=", 1, 1]])[1].endswith("name must be a string")
    assert err(T, [["=", 2, 1], ["?", 2, 1]]) == (ER.UNKNOWN_UPDATE_OP, 'Unknown UPDATE operation #2: "?"')
    assert err(T, [["==", 2, 1]]) == (ER.UNKNOWN_UPDATE_OP, 'Unknown UPDATE operation #1: "=="')
    assert err(T, [[":", 3, 1, 1]]) == (
        ER.UNKNOWN_UPDATE_OP, "Unknown UPDATE operation #1: wrong number of arguments, expected 5, got 4")
    assert err(T, [["=", 1.5, 1]]) == (illegal, "Illegal parameters, field id must be a number or a string")
    assert err(T, [["=", True, 1]])[1].endswith("field id must be a number or a string")
    assert err(T, [["=", 2**31, 1]]) == (
        ER.UPDATE_ARG_TYPE,
        "Argument type in operation '=' on field 2147483648 does not match field type: expected an integer")
    assert err(T, [["#", 2, 1]] * 4001) == (illegal, "Illegal parameters, too many operations for update")
    assert err(T, 5) == (ER.INVALID_MSGPACK, "Invalid MsgPack - packet body")
    assert upd(T, []) == T
    # decode errors come before any apply error
    assert err(T, [["+", 3, 1], ["=", 2]])[0] == ER.UNKNOWN_UPDATE_OP


def test_field_names_and_paths():
    assert upd(T, [["=", "a", 7]])[1] == 7
    assert upd(T, [["=", "[2]", 7]])[1] == 7
    assert upd(T, [["=", '["a"]', 7]])[1] == 7
    assert upd(T, [["=", ".a", 7]])[1] == 7
    assert upd(T, [["=", "[02]", 7]])[1] == 7
    assert err(T, [["=", "zz", 7]]) == (ER.NO_SUCH_FIELD_NAME, "Field 'zz' was not found in the tuple")
    assert err(T, [["=", "", 7]]) == (ER.NO_SUCH_FIELD_NAME, "Field '' was not found in the tuple")
    with pytest.raises(BoxError):                            # no field_names: no names
        apply_update(T, [["=", "a", 7]])
    bad = "Field '%s' UPDATE error: invalid JSON in position %d"
    for path, pos in [("[0]", 2), ("[", 1), ("1a", 1), ("a b", 2), ("[2", 3), ("[2]]", 4),
                      ("[2].", 5), ('[""]', 3), ("[2]x", 4), ("..a", 2), ("a.", 3)]:
        assert err(T, [["=", path, 1]]) == (ER.UPDATE_FIELD, bad % (path, pos)), path
    # a field given by name that is gone: Tarantool's double quotes
    assert err([1, 2], [["=", "c", 1]]) == (ER.NO_SUCH_FIELD_NAME, "Field ''c'' was not found in the tuple")
    assert err(T, [["=", "[14]", 1]])[1] == "Field ''[14]'' was not found in the tuple"


def test_nested_paths():
    assert upd(T, [["=", "[5][1]", 9]])[4] == [9, 2]
    assert upd(T, [["=", "[5][3]", 9]])[4] == [1, 2, 9]                  # append
    assert upd(T, [["!", "[5][1]", 0]])[4] == [0, 1, 2]
    assert upd(T, [["#", "[5][1]", 5]])[4] == []
    assert upd(T, [["+", "[6].k", 1.5]])[5] == {"k": 2.5}
    out = upd(T, [["=", "[6].z", 1]])[5]
    assert list(out.items()) == [("z", 1), ("k", 1)]                      # new keys go first
    assert upd(T, [["#", "[6].k", 1]])[5] == {}
    assert upd(T, [["=", "[5][1]", 9], ["=", "[6].k", 8], ["=", "[5][2]", 7]])[4:6] == [[9, 7], {"k": 8}]
    f = "Field '%s' UPDATE error: %s"
    assert err(T, [["!", "[6].k", 1]]) == (ER.UPDATE_FIELD, f % ("[6].k", "the key exists already"))
    assert err(T, [["#", "[6].k", 2]]) == (
        ER.UPDATE_FIELD, f % ("[6].k", "can delete only 1 field from a map in a row"))
    assert err(T, [["=", "[6][1]", 1]]) == (
        ER.UPDATE_FIELD, f % ("[6][1]", "can not access by index a non-array field"))
    assert err(T, [["=", "b.x", 1]]) == (ER.UPDATE_FIELD, f % ("b.x", "can not access by key a non-map field"))
    assert err(T, [["=", "[5][4]", 0]]) == (ER.NO_SUCH_FIELD_NAME, "Field ''[5][4]'' was not found in the tuple")
    assert err(T, [["+", "[5][1]", UMAX]]) == (
        ER.UPDATE_INTEGER_OVERFLOW, "Integer overflow when performing '+' operation on field '[5][1]'")
    double = (ER.UPDATE_FIELD, f % ("[5][1]", "double update of the same field"))
    assert err(T, [["=", "[5][1]", 1], ["+", "[5][1]", 1]]) == double
    assert err(T, [["#", "[5][1]", 1], ["=", "[5][1]", 9]]) == double
    assert err(T, [["=", "[5][1]", 9], ["+", 5, 1]])[1] == "Field 5 UPDATE error: double update of the same field"
    assert upd(T, [["=", "[5][1]", 9], ["=", 5, "x"]])[4] == "x"
    # Styx's choices where 2.6 is inconsistent or crashes (see the module note)
    assert err(T, [["=", "[6].k", 5], ["=", "[6].z", 6], ["=", "[6].k", 7]])[0] == ER.UPDATE_FIELD
    assert err(T, [["=", 5, [7, 8]], ["=", "[5][1]", 9]])[1].endswith("double update of the same field")


def test_index_base_zero():
    assert upd(T, [["=", 1, 7]], 0)[1] == 7
    assert err(T, [["=", 13, 7]], 0) == (ER.NO_SUCH_FIELD_NO, "Field 14 was not found in the tuple")
    assert err(T, [["+", 2, "x"]], 0)[1].startswith("Argument type in operation '+' on field 3 ")
    assert err(T, [["#", 1, 0]], 0)[1] == "Field 2 UPDATE error: cannot delete 0 fields"
    assert err(T, [["+", -1, 1]], 0)[1].startswith("Argument type in operation '+' on field 12 ")
    assert upd(T, [["=", "[2]", 7]], 0)[1] == 7              # paths stay 1-based


def test_check_ops():
    check_ops([["=", 1, 1], ["+", "a", 1]], field_names=NAMES)
    check_ops([["=", "a b", 1]], field_names=NAMES)          # the rest of a path is checked later
    check_ops([["+", 200, 1]])                               # no tuple, no range check
    for ops, code in [([["+", 2, "x"]], ER.UPDATE_ARG_TYPE), ([["?", 2, 1]], ER.UNKNOWN_UPDATE_OP),
                      ([["=", "zz", 1]], ER.NO_SUCH_FIELD_NAME), ([["=", 0, 1]], ER.NO_SUCH_FIELD_NO),
                      ([["#", 2, 0]], ER.UPDATE_FIELD), ([["=", "[0]", 1]], ER.UPDATE_FIELD),
                      ([[":", 3, 0, 1, ""]], ER.UPDATE_SPLICE)]:
        with pytest.raises(BoxError) as info:
            check_ops(ops, field_names=NAMES)
        assert info.value.code == code, ops
    check_ops([["=", 0, 1]], index_base=0)


def test_upsert_skips_failing_ops():
    errors: list[BoxError] = []
    out = apply_upsert(T, [["+", 2, 1], ["+", 2, 1], ["+", 3, 1], ["=", 100, 1], ["+", 8, 1],
                           ["-", 8, 1], ["=", "[5][9]", 1], ["=", "a b", 1]],
                       field_names=NAMES, on_error=errors.append)
    assert out[1] == 11 and out[7] == UMAX - 1            # a failed op leaves no mark
    assert [e.code for e in errors] == [ER.UPDATE_FIELD, ER.UPDATE_ARG_TYPE, ER.NO_SUCH_FIELD_NO,
                                        ER.UPDATE_INTEGER_OVERFLOW, ER.NO_SUCH_FIELD_NAME, ER.UPDATE_FIELD]
    with pytest.raises(BoxError):                          # decode errors are errors
        apply_upsert(T, [["+", 2, 1], ["+", 2, "x"]])
    assert apply_upsert(T, [["=", 2, 5], ["+", 2, 1], ["=", 3, 5]])[1:3] == [5, 5]


# ---------------------------------------------------------------------------
# The oracle: Tarantool 2.6 over IPROTO

SPACE = 512  # tests/lua/tarantool_server.lua, setup `update`


class Client(Raw):
    """Raw IPROTO client; strings decoded with surrogateescape (splice cuts UTF-8)."""

    sync = 0

    def do(self, rtype: int, body: dict[int, Any]) -> Any:
        """('ok', data) or ('err', code, message)."""
        self.sync += 1
        self.send(_packet({0: rtype, 1: self.sync}, body))
        header, rbody = self.reply()
        if header[0] != 0:
            return ("err", header[0] & 0x7FFF, rbody[0x31])
        return ("ok", rbody.get(0x30))


def _packet(header: dict[int, Any], body: Any) -> bytes:
    return frame(msgpack.packb(header) + msgpack.packb(body, unicode_errors="surrogateescape"))


class Oracle:
    def __init__(self, client: Client) -> None:
        self.c = client

    def _body(self, base: int | None, **keys: Any) -> dict[int, Any]:
        body = {0x10: SPACE, **{int(k[1:], 16): v for k, v in keys.items()}}
        if base is not None:
            body[0x15] = base
        return body

    def update(self, fields: list[Any], ops: Any, base: int | None) -> Any:
        r = self.c.do(3, self._body(None, x21=fields))
        assert r[0] == "ok", r
        r = self.c.do(4, self._body(base, x11=0, x20=[fields[0]], x21=ops))
        return r if r[0] == "err" else ("ok", r[1][0])

    def upsert(self, fields: list[Any] | None, new: list[Any], ops: Any, base: int | None) -> Any:
        """UPSERT on `fields` (None: no such tuple); ('ok', tuple after) or the error."""
        if fields is None:
            assert self.c.do(5, self._body(None, x11=0, x20=[new[0]]))[0] == "ok"
        else:
            assert self.c.do(3, self._body(None, x21=fields))[0] == "ok"
        r = self.c.do(9, self._body(base, x21=new, x28=ops))
        if r[0] == "err":
            return r
        assert r[1] == [], r
        got = self.c.do(1, self._body(None, x11=0, x20=[new[0]], x12=1, x13=0, x14=0))
        return ("ok", got[1][0] if got[1] else None)


@pytest.fixture(scope="module")
def oracle(tarantool_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Oracle]:
    with tarantool_server(tarantool_bin, "update", tmp_path_factory.mktemp("tarantool_update")) as port:
        client = Client(port)
        yield Oracle(client)
        client.close()


def norm(v: Any) -> Any:
    """Comparable form: map order matters, NaN equals NaN, bool is not int."""
    if isinstance(v, ExtType):
        return ("ext", v.code, v.data)
    if isinstance(v, dict):
        return ("map", [(norm(k), norm(x)) for k, x in v.items()])
    if isinstance(v, (list, tuple)):
        return ("arr", [norm(x) for x in v])
    if isinstance(v, float):
        return ("float", "nan" if v != v else v)
    if isinstance(v, bool):
        return ("bool", v)
    return (type(v).__name__, v)


def styx_update(fields: list[Any], ops: Any, base: int | None) -> Any:
    try:
        return ("ok", apply_update(fields, ops, index_base=base or 0, field_names=NAMES))
    except BoxError as e:
        return ("err", e.code, e.message)


_GARBAGE_FIELD = re.compile(r"^Argument type in operation '(.)' on field .* expected an integer$")
_PK_ERRORS = {94, ER.FIELD_TYPE, 39, ER.TUPLE_FOUND}  # key changed (into another), field 1 type or missing


def _key_changed(old: list[Any], new: list[Any]) -> bool:
    return not new or new[0] != old[0] or not (isinstance(new[0], int) and not isinstance(new[0], bool))


def assert_same(fields: list[Any], ops: Any, tnt: Any, styx: Any) -> None:
    where = f"tuple={fields!r} ops={ops!r}"
    if tnt[0] == "err" and tnt[1] in _PK_ERRORS:
        # Tarantool refused the result for the space (key changed / field 1 not unsigned).
        assert styx[0] == "ok" and _key_changed(fields, styx[1]), f"{where}: {tnt} vs {styx}"
        return
    if tnt[0] == "err" and styx[0] == "err" and tnt[1] == styx[1] == ER.UPDATE_ARG_TYPE:
        m1, m2 = _GARBAGE_FIELD.match(tnt[2]), _GARBAGE_FIELD.match(styx[2])
        if m1 and m2 and any(isinstance(op, (list, tuple)) and len(op) > 1
                             and isinstance(op[1], int) and not -2**31 <= op[1] < 2**31 for op in ops):
            assert m1.group(1) == m2.group(1)  # field named with garbage by 2.6
            return
    if tnt[0] == "ok" and styx[0] == "ok":
        assert norm(tnt[1]) == norm(styx[1]), f"{where}:\n tarantool {tnt[1]!r}\n styx      {styx[1]!r}"
    else:
        assert tnt == styx, f"{where}:\n tarantool {tnt!r}\n styx      {styx!r}"


# Hand-picked cases (all verified against 2.6), each run with index_base 1 and 0.
CASES: list[Any] = [
    [["+", 2, 5], ["+", 2, 1]], [["+", 2, 5], ["=", 2, 1]], [["=", 2, 5], ["+", 2, 1]],
    [["+", 2, 5], ["#", 2, 1]], [["+", 2, 5], ["!", 3, 1], ["+", 2, 1]], [["#", 2, 1], ["+", 2, 1]],
    [["=", 13, 5], ["+", 13, 1]], [["!", 13, 5], ["+", 13, 1]], [["=", 2, 5], ["#", 3, 1], ["+", 2, 1]],
    [["+", 2, UMAX - 11]], [["+", 2, UMAX - 10]], [["-", 2, 2**63 + 10]], [["-", 2, 2**63 + 11]],
    [["+", 8, 1]], [["-", 8, UMAX]], [["-", 7, 2**63 - 5]], [["-", 7, 2**63 - 4]], [["+", 7, UMAX]],
    [["+", 2, 1.5]], [["+", 4, 1]], [["+", 4, 0.1]], [["-", 4, -1e308]], [["+", 3, 1]], [["+", 2, "a"]],
    [["+", 2, None]], [["+", 2, True]], [["+", 9, 1]], [["+", 10, 1]], [["&", 2, 3]], [["|", 2, 5]],
    [["^", 2, 15]], [["&", 2, -3]], [["&", 7, 3]], [["&", 4, 3]], [["&", 2, 1.0]], [["&", 3, 1]],
    [[":", 3, 1, 1, "X"]], [[":", 3, 0, 1, "X"]], [[":", 3, -1, 1, "X"]], [[":", 3, -4, 1, "X"]],
    [[":", 3, -5, 1, "X"]], [[":", 3, 10, 1, "X"]], [[":", 3, 2, -1, "X"]], [[":", 3, 2, -10, "X"]],
    [[":", 3, 2, 100, "X"]], [[":", 3, 4, 0, "X"]], [[":", 2, 1, 1, "X"]], [[":", 3, 1, 1, 5]],
    [[":", 3, "a", 1, "X"]], [[":", 3, 1.0, 1, "X"]], [[":", 3, 2**31, 1, "X"]], [[":", 3, 1, 2**31, "X"]],
    [[":", 3, -2**31 + 1, 1, "X"]], [[":", 12, 1, 1, "X"]], [[":", 12, 2, 1, "X"]], [[":", 11, 1, 1, "X"]],
    [["#", 2, 0]], [["#", 2, 1]], [["#", 2, 100]], [["#", 12, 1]], [["#", 13, 1]], [["#", -1, 1]],
    [["#", -13, 1]], [["#", 2, -1]], [["#", 2, "x"]], [["#", 2, 2**32]], [["#", 2, 2**32 + 1]],
    [["#", 14, 0]], [["#", -100, 0]], [["!", 2, "x"]], [["!", 12, "x"]], [["!", 13, "x"]], [["!", 14, "x"]],
    [["!", -1, "x"]], [["!", -12, "x"]], [["!", -14, "x"]], [["=", 12, "x"]], [["=", 13, "x"]],
    [["=", 14, "x"]], [["=", -1, "x"]], [["=", -13, "x"]], [["?", 2, 1]], [["=", 2]], [["=", 2, 2, 3]],
    [["="]], [[]], [[1, 1, 1]], [["==", 2, 1]], [["", 2, 1]], ["x"], 5, [5], [None], {"a": 1},
    [{"a": 1}], [[b"=", 2, 1]], [["=", "a", 7]], [["=", "zz", 7]], [["=", "[2]", 7]], [["=", "a.b", 7]],
    [["=", 1.5, 7]], [["=", None, 7]], [["=", 2**31 - 1, 7]], [["=", -2**31, 7]], [["=", 2**31, 7]],
    [["#", "a", 1], ["=", "a", 5]], [["=", 2, 1], ["?", 2, 1]], [["+", 2, "x"], ["?", 2, 1]],
    [["+", 3, 1], ["=", 2]], [["=", 0, 1]], [["+", 0, "x"]], [["+", "zz", "x"]], [["+", 200, "x"]],
    [["+", 200, 1]], [["=", "c", 1]], [["=", "A", 1]], [["=", "[3]", 1]], [["=", "[0]", 1]],
    [["=", '["a"]', 1]], [["=", "a[1]", 1]], [["=", "[5][1]", 9]], [["=", "", 1]], [["=", "[", 1]],
    [["=", ".a", 1]], [["=", "[6].k", 1]], [["=", '[6]["k"]', 1]], [["=", "[6].z", 1]], [["=", "[5][3]", 1]],
    [["=", "[5][4]", 1]], [["=", "[5][1]", 9], ["=", "[5][2]", 8]], [["=", "[5][1]", 9], ["=", 5, "x"]],
    [["+", "[5][1]", 1], ["+", "[5][1]", 1]], [["=", "[5][1]", 1], ["+", "[5][1]", 1]],
    [["+", "[5][1]", 1], ["=", "[5][1]", 5]], [["=", "[6].k", 2], ["=", "[6].k", 3]], [["#", "[5][1]", 1]],
    [["#", "[5][1]", 5]], [["#", "[5][3]", 1]], [["!", "[5][1]", 0]], [["!", "[5][3]", 0]],
    [["!", "[5][4]", 0]], [["!", "[6].q", 1]], [["!", "[6].k", 1]], [["#", "[6].k", 1]], [["#", "[6].k", 2]],
    [["#", "[6].z", 1]], [["+", "[6].z", 1]], [["=", "[6].z", 1], ["=", "[6].y", 2]], [["=", "[6][1]", 1]],
    [["=", "[5].a", 1]], [["=", "[5][-1]", 1]], [["=", "[2][1]", 1]], [["=", "[3].x", 1]],
    [["+", "[5][1]", "x"]], [["=", "[5][1]", 9], ["+", 5, 1]], [["+", 5, 1], ["=", "[5][1]", 9]],
    [["#", 5, 1], ["=", "[5][1]", 9]], [["=", "[5][1]", 9], ["#", 5, 1]], [["=", "[5][1]", 9], ["!", 5, 1]],
    [["=", "[5][1]", 9], ["=", "[5]", 5]], [["=", "[5][1]", 9], ["#", "[5][2]", 1]],
    [["#", "[5][2]", 1], ["=", "[5][1]", 9]], [["#", "[5][1]", 1], ["=", "[5][1]", 9]],
    [["!", "[5][1]", 0], ["!", "[5][1]", 1], ["+", "[5][3]", 5]], [["=", "b.x", 1]],
    [["=", '[6]["k"]', 5], ["=", "[6].k", 6]], [["#", "[6].k", 1], ["=", "[6].k", 6]],
    [["=", "[6].k", 5], ["=", 6, 6]], [["=", "[6].k", 5], ["=", "[5][1]", 6]],
    [["=", "[6].k", 5], ["=", 2, 0], ["=", "[6].k", 7]], [["=", "[20][1]", 1]], [["=", "[13]", 1]],
    [["=", "[14]", 1]], [["=", "[13][1]", 1]], [["!", "[13]", 1]], [["#", 3, 20], ["=", "c", 1]],
    [["#", 3, 20], ["+", "c", 1]], [["#", 3, 20], ["=", "[4]", 1]], [["#", 3, 20], ["=", "c.x", 1]],
    [["#", 3, 20], ["=", "b", 1]], [["=", "[5][1]", 3], ["=", 5, 7], ["+", 5, 1]],
    [["=", "[5][1]", 3], ["#", "[5][1]", 1]], [["=", "a", 1], ["+", "a", 1]], [["+", "a", 1], ["+", 2, 1]],
    [["=", "яz", 1]], [["=", "_x", 1]], [["=", "1a", 1]], [["=", "a b", 1]], [["=", "[2", 1]],
    [["=", "[2]]", 1]], [["=", "[2].", 1]], [["=", "['a']", 1]], [["=", "['']", 1]], [["=", '[""]', 1]],
    [["=", "[2]x", 1]], [["=", "[02]", 1]], [["=", "..a", 1]], [["=", '["b"]["x"]', 1]],
    [["=", '[6]["k"]["z"]', 1]], [["=", "a.", 1]], [["=", "[6].k.z", 1]], [["+", "[6].k", 1.5]],
    [["+", "[5][1]", UMAX]], [["&", "[5][1]", 3]], [[":", "[5][1]", 1, 1, ""]],
    [["!", "[5][2]", 5], ["+", "[5][3]", 1]], [["!", "[5][2]", 5], ["#", "[5][2]", 1]],
    [["=", "[6].k", 1], ["=", 6, {}]], [["=", "[6].k", 1], ["#", 6, 1]], [["=", "[6].k", 1], ["+", 6, 1]],
    [["!", 5, 1], ["=", "[6][1]", 7]], [["=", 13, [5]], ["=", "[13][1]", 7]], [["=", 2, "s"], ["+", 2, 1]],
    [["=", "[5][1][1]", 1], ["=", "[5][1]", 1]], [["#", 2, 1]] * 4001, [["#", 2, 1]] * 4000,
    [["?", 2, 1]] * 4001, [], [["=", 1, 5]], [["=", -12, "x"]],
]

DEC_VALUES = [dec("1.5"), dec("-0.001"), dec("12345678901234567890123456789012345678"), dec("1E+10"),
              dec("0"), dec("-0"), dec("1.10"), dec("-123.4500"), dec("9.9999999999999999999999999999999999999E+37"),
              dec("1E-38")]
DEC_ARGS = [1, -1, UMAX, IMIN, 0.1, 1e300, 1.5, 1e38, 9.9e37, 1e-39, float("inf"), float("nan"), dec("1"),
            dec("-1.5"), dec("0.00000000000000000000000000000000000001"), dec("1E+38"), dec("1.5E-38"), "x"]


def test_oracle_cases(oracle: Oracle):
    for base in (1, 0, None):
        for ops in CASES:
            assert_same(T, ops, oracle.update(T, ops, base), styx_update(T, ops, base))


def test_oracle_decimals(oracle: Oracle):
    for v in DEC_VALUES:
        for a in DEC_ARGS:
            for code in "+-":
                cases = [([1, v], [[code, 2, a]])]
                if a not in (dec("1E+38"), dec("1.5E-38")):  # 2.6 reads garbage for these in a tuple
                    cases.append(([1, a], [[code, 2, v]]))
                for fields, ops in cases:
                    assert_same(fields, ops, oracle.update(fields, ops, 1), styx_update(fields, ops, 1))


def test_oracle_upsert_cases(oracle: Oracle):
    new = [1, "new"]
    for ops in CASES:
        for base in (1, None):
            for exists in (True, False):
                tnt = oracle.upsert(T if exists else None, new, ops, base)
                try:
                    if exists:
                        styx: Any = ("ok", apply_upsert(T, ops, index_base=base or 0, field_names=NAMES))
                    else:
                        check_ops(ops, index_base=base or 0, field_names=NAMES)
                        styx = ("ok", new)
                except BoxError as e:
                    styx = ("err", e.code, e.message)
                assert_same_upsert(T if exists else None, ops, tnt, styx)


def assert_same_upsert(fields: list[Any] | None, ops: Any, tnt: Any, styx: Any) -> None:
    if fields is not None and tnt == ("ok", None):
        # 2.6 lost the tuple: operations that leave it without field 1 end in
        # "ER_FIELD_MISSING ... fatal error, exiting the event loop" in its log
        # (seen with [1] and [['+', -1, 17], ['=', 1, {}], ['#', 1, 2]] after
        # two failing ones). No oracle for that; Styx must still answer.
        assert styx[0] in ("ok", "err"), styx
        return
    if fields is not None and styx[0] == "ok" and _key_changed(fields, styx[1]):
        # A changed key is logged and the old tuple stays; field 1 not unsigned is an error.
        assert tnt in (("ok", fields),) or (tnt[0] == "err" and tnt[1] in _PK_ERRORS), (fields, ops, tnt, styx)
        return
    assert_same(fields or [1], ops, tnt, styx)


def test_tarantool_python_sends_zero_based_field_numbers(oracle: Oracle):
    """tarantool-python documents 1-based numbers but sends no INDEX_BASE."""
    import tarantool

    port = oracle.c.sock.getpeername()[1]
    conn = tarantool.Connection("127.0.0.1", port)
    try:
        conn.replace("t", [7, "a", "b"])
        assert list(conn.update("t", [7], [("=", 1, "x")])[0]) == [7, "x", "b"]
    finally:
        conn.close()


# ---------------------------------------------------------------------------
# Generated cases

ints = st.one_of(st.integers(-20, 20), st.sampled_from([0, 1, -1, 2**63 - 1, IMIN, UMAX, 2**32, 2**31]),
                 st.integers(IMIN, UMAX))
floats = st.one_of(st.floats(allow_nan=False, width=64), st.sampled_from([0.5, -1.5, 1e308, float("inf")]))
texts = st.text(alphabet=st.sampled_from("abcяЖ_ 1.[]\"'"), max_size=6)
small = st.integers(0, 9)
scalars = st.one_of(small, small, small, ints, texts, texts, floats, st.binary(max_size=4), st.booleans(), st.none(),
                    st.sampled_from(DEC_VALUES[:8]), st.just(ExtType(2, bytes(range(16)))))
keys = st.sampled_from(["k", "z", "a"])
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(keys, inner, max_size=3)),
                      max_leaves=6)
tuples = st.builds(lambda pk, rest: [pk] + rest, st.integers(0, 5), st.lists(values, max_size=7))


@st.composite
def field_ids(draw: Any, base: int, nested: bool) -> Any:
    kind = draw(st.sampled_from(["num"] * 12 + ["neg"] * 3 + ["name"] * 2 + ["path", "weird"]
                                + (["deep"] * 6 if nested else [])))
    if kind == "num":
        return draw(st.integers(-1, 9)) + base  # around the tuple, pk and "Field 0" included
    if kind == "neg":
        return draw(st.integers(-10, -1))
    if kind == "name":
        return draw(st.sampled_from(["a", "b", "c", "id", "zz", ""]))
    if kind == "path":
        return draw(st.sampled_from(["[1]", "[2]", "[3]", '["a"]', ".b", "[0]", "[9]", "[", "..a"]))
    if kind == "deep":
        top = draw(st.sampled_from(["[2]", "[3]", "[4]", "a", "b"]))
        rest = draw(st.lists(st.one_of(st.integers(1, 4).map(lambda n: f"[{n}]"), keys.map(lambda k: "." + k),
                                       st.sampled_from([" b", "x", "[0]", "."])),
                             min_size=1, max_size=3))
        return top + "".join(rest)
    return draw(st.sampled_from([2**31, -2**31 - 1, 1.5, None, True]))


@st.composite
def operations(draw: Any, base: int, nested: bool) -> Any:
    shape = draw(st.sampled_from(["ok"] * 60 + ["arity", "notarray", "badname"]))
    code = draw(st.sampled_from(list("=+-&|^:!#")))
    fid = draw(field_ids(base, nested))
    if shape == "notarray":
        return draw(st.sampled_from([5, "x", None, {}]))
    if shape == "badname":
        return [draw(st.sampled_from(["?", "==", "", 1, b"="])), fid, 1]
    if code in "=!":
        args = [draw(values)]
    elif code == "#":
        args = [draw(st.one_of(st.integers(1, 3), st.integers(1, 3), st.sampled_from([0, 2**32, 2**32 + 1, -1, "x"])))]
    elif code in "+-":
        args = [draw(st.one_of(small, small, ints, floats, st.sampled_from(DEC_ARGS)))]
    elif code in "&|^":
        args = [draw(st.one_of(small, small, st.integers(0, 2**64 - 1), st.sampled_from([-1, 1.0, "x"])))]
    else:
        int32 = st.one_of(st.integers(-8, 8), st.sampled_from([2**31 - 1, -2**31 + 1, 2**31]))
        args = [draw(int32), draw(int32), draw(st.one_of(texts, texts, texts, st.sampled_from([b"x", 5])))]
    op = [code, fid, *args]
    if shape == "arity":
        op = op[:draw(st.integers(0, len(op) - 1))] if draw(st.booleans()) else op + [1]
    return op


@st.composite
def fitting_op(draw: Any, fields: list[Any], base: int) -> Any:
    """An operation that suits the field it targets (as the tuple was at first)."""
    i = draw(st.integers(1, max(1, len(fields) - 1)))
    v = fields[i] if i < len(fields) else None
    fid = i + base if draw(st.integers(0, 3)) else i - len(fields)
    if isinstance(v, bool) or v is None or not isinstance(v, (int, float, str)):
        code = draw(st.sampled_from("=!#"))
    elif isinstance(v, str):
        code = draw(st.sampled_from(":=!#"))
    elif isinstance(v, int) and v >= 0:
        code = draw(st.sampled_from("+-&|^=#"))
    else:
        code = draw(st.sampled_from("+-=!"))
    if code in "=!":
        return [code, fid, draw(values)]
    if code == "#":
        return [code, fid, draw(st.integers(1, 3))]
    if code in "+-":
        return [code, fid, draw(st.one_of(small, ints, floats))]
    if code in "&|^":
        return [code, fid, draw(st.one_of(small, st.integers(0, 2**64 - 1)))]
    return [code, fid, draw(st.integers(-4, 4)), draw(st.integers(-4, 4)), draw(texts)]


@st.composite
def scenarios(draw: Any) -> tuple[list[Any], list[Any], int | None]:
    base = draw(st.sampled_from([1, 0, None]))
    b = base or 0
    fields = draw(tuples)
    if draw(st.booleans()):
        ops = draw(st.lists(operations(b, False), max_size=4))
    else:
        ops = draw(st.lists(st.one_of(fitting_op(fields, b), fitting_op(fields, b), operations(b, False)),
                            max_size=4))
    if draw(st.integers(0, 2)) == 0:
        # One JSON path deeper than a field, first: several into one field are
        # inconsistent in 2.6 and one after '=' on its field crashes it.
        ops.insert(0, draw(operations(b, True)))
    return fields, ops, base


SETTINGS = settings(max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck))


@SETTINGS
@given(case=scenarios())
def test_oracle_generated_update(oracle: Oracle, case: Any):
    fields, ops, base = case
    assert_same(fields, ops, oracle.update(fields, ops, base), styx_update(fields, ops, base))


@settings(max_examples=800, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=scenarios(), exists=st.booleans())
def test_oracle_generated_upsert(oracle: Oracle, case: Any, exists: bool):
    fields, ops, base = case
    new = [fields[0], "new"]
    tnt = oracle.upsert(fields if exists else None, new, ops, base)
    try:
        if exists:
            styx: Any = ("ok", apply_upsert(fields, ops, index_base=base or 0, field_names=NAMES))
        else:
            check_ops(ops, index_base=base or 0, field_names=NAMES)
            styx = ("ok", new)
    except BoxError as e:
        styx = ("err", e.code, e.message)
    assert_same_upsert(fields if exists else None, ops, tnt, styx)
