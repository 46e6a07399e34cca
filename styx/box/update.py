"""UPDATE and UPSERT operations on a tuple: Tarantool 2.6's xrow_update.

A pure module: tuples are Python lists of msgpack-decoded values, operations
are what the client sent under IPROTO_TUPLE (UPDATE) or IPROTO_OPS (UPSERT).

    check_ops(ops, *, index_base=1, field_names=None)             decode checks
    apply_update(fields, ops, *, index_base=1, field_names=None)  -> new list
    apply_upsert(fields, ops, *, index_base=1, field_names=None, on_error=None)

`field_names` maps the space format's names to 0-based numbers; None is a
space without format (every name unknown). Every error is a `BoxError`
(ClientError) with Tarantool 2.6's code and message, checked against
Debian's Tarantool 2.6.0: tests/unit/test_update.py sends hand-picked and
generated cases to a live instance and compares.

Two phases, as in Tarantool
---------------------------
1. Decode (`check_ops`): all operations are decoded before any is applied,
   so a decode error in operation #3 wins over an apply error in #1:
   - more than 4000 operations: ER_ILLEGAL_PARAMS "too many operations for
     update" (ILLEGAL_PARAMS messages read "Illegal parameters, ...");
   - an operation that is not an array, is empty, or whose name is not a
     string: ER_ILLEGAL_PARAMS;
   - a name other than = + - & | ^ : ! # (longer names included), or a
     wrong arity: ER_UNKNOWN_UPDATE_OP 'Unknown UPDATE operation #N: "x"',
     '... #N: wrong number of arguments, expected 3, got 2' (N: 1-based
     position in the list);
   - a field id that is not an integer or a string ("field id must be a
     number or a string"); an integer outside int32 (ER_UPDATE_ARG_TYPE
     "expected an integer"); a positive one below index_base ("Field 0 was
     not found in the tuple"); a string that is neither a format name nor
     starts with a JSON token naming a field ("Field 'x' was not found in
     the tuple", ER_NO_SUCH_FIELD_NAME), or whose first token is malformed
     ("Field 'x' UPDATE error: invalid JSON in position N");
   - argument types: '#' an unsigned count, masked to 32 bits as C does
     (2^32 is 0), not 0 ("cannot delete 0 fields"); '+'/'-' a number (int,
     float, decimal; a decimal 2.6 cannot unpack, i.e. beyond 38 digits
     either side of the point, is "can't unpack update operations", or
     "update operation must be an array {op,..}" when operations follow it:
     2.6 goes on reading inside the decimal); '&|^' an unsigned; ':' an
     int32 offset (non-negative and below index_base: ER_UPDATE_SPLICE
     "offset is out of bound"), an int32 length and a string.
2. Apply, in order, each operation on the tuple as the previous ones left it
   (a '#' or '!' shifts the numbers later operations see): field not found,
   the old value's type (a number for '+'/'-', an unsigned for bit ops, a
   string for ':'), integer overflow, splice offset, double update, and all
   of a JSON path after its first token.

UPSERT (`apply_upsert`) decodes as UPDATE does (a decode error is the
request's error), then applies each operation; one that fails is skipped
(Tarantool logs "UPSERT operation failed:" and the error) and leaves no
trace, not even the mark that makes a later one a double update.

What the caller does around this (memtx_space.c, verified against 2.6):
- UPDATE of a key that does not exist returns nothing and checks nothing:
  even {{'?'}} passes. Only a non-array ops value fails, at request decode
  (ER_INVALID_MSGPACK "packet body", which check_ops also raises).
- UPSERT validates the new tuple against the format first, then looks the
  key up; not found: `check_ops` (decode errors are errors), then the new
  tuple is inserted as is; found: `apply_upsert`. The result is validated:
  a format error is returned to the client (e.g. ER_FIELD_TYPE), a changed
  primary key only logged (ER_CANT_UPDATE_PRIMARY_KEY) and the old tuple
  kept. The reply's data is empty.
- UPDATE's result with another primary key: ER_CANT_UPDATE_PRIMARY_KEY
  (94), or ER_TUPLE_FOUND when the new key belongs to another tuple.

Field numbers over IPROTO
-------------------------
Field numbers are relative to IPROTO_INDEX_BASE (0x15), 0 when absent
(xrow_decode_dml starts from a zeroed request). net.box sends INDEX_BASE=1
with UPDATE and UPSERT; tarantool-python 1.x sends none (request.py), so its
numbers are 0-based although its docs say "the first field is 1" (the test
module checks this with the connector). Lua's space:update() is 1-based.
The splice offset is relative to index_base too. Negative numbers count
from the end (-1 is the last field) whatever the base; '!' counts them
against len+1, so {'!', -1, x} appends. JSON paths are always 1-based.

In messages a field is named as Tarantool names it: given by name or path,
as that string in quotes ("on field 'a'"); given by number, as its 1-based
position whatever index_base was ("Field 3" for 0-based 2), computed in C
int (0-based 2^31-1 prints as -2147483648); negative, as sent until it is
resolved and as its 1-based position after (a type error on {'+', -1, 1} in
a 12-field tuple says "field 12"). "Field 0 was not found" (below
index_base) prints the number as sent. A field given by name or path that
is missing when applied gets Tarantool's quotes around the quoted string:
"Field ''c'' was not found in the tuple".

Semantics worth knowing (all verified against 2.6)
--------------------------------------------------
- '=' and '!' may target len+1 (append); '#' deletes up to the end; '#' on
  a missing field is "Field N was not found".
- Double update (ER_UPDATE_FIELD "double update of the same field") concerns
  arithmetic, bit and splice operations: they fail on a field already
  changed by '=' or by one of them, or into which a JSON path went. '='
  always succeeds. A field inserted by '!' or appended by '=' is fresh. The
  mark moves with the field when '!'/'#' shift it.
- Integers are exact; the result must fit [-2^63, 2^64-1], else
  ER_UPDATE_INTEGER_OVERFLOW. A float on either side gives a float (C
  double arithmetic). A decimal (MP_EXT 1 as ExtType, or decimal.Decimal;
  the result keeps the form) on either side gives a decimal in 2.6's
  context: 38 digits, ROUND_HALF_UP, at most 38 digits before the point
  (else ER_UPDATE_DECIMAL_OVERFLOW), a double converted via "%.15g" (inf,
  nan, |x| >= 1e38: "expected a number convertible to decimal"). Booleans
  are not numbers.
- Splice works on the UTF-8 bytes, as Tarantool does, so it can cut a
  character; the result is decoded with surrogateescape (pack and unpack
  tuples with unicode_errors="surrogateescape" to round-trip it).
- JSON paths (2.3+): a string field id that is not a format name is a path;
  its first token picks the field ("[2]", '["a"]', ".a", "a"; "[*]" is not
  found), the rest walks maps and arrays ("[n]" also finds the integer key
  n in a map). '=' and '!' may create the last step: append to an array
  ([len+1]) or add a map key (new keys go first in the map, as Tarantool
  writes them); a wrong container for that last step is "can not access by
  index a non-array field" / "by key a non-map field"; '!' on an existing
  map key is "the key exists already". For the other operations the whole
  path must exist, and any miss, a wrong container type included, is "not
  found". '#' in a map deletes exactly one key ("can delete only 1 field
  from a map in a row"). A syntax error after the first token is an apply
  error (skipped by UPSERT, not seen by check_ops).

Where Styx differs, knowingly
-----------------------------
- Several JSON-path operations into one top-level field: Styx calls two
  paths a double update when one equals or is a prefix of the other, and
  lets others through. That is what 2.6 does for two operations; with three
  or more 2.6's route code is inconsistent (a, b, a on one map succeeds; a
  longer path after a set prefix is "not found") and Styx does not copy it.
  A path into a field already changed by a top-level '=' or arithmetic is a
  double update here; 2.6 crashes or reports garbage there.
- An integer field id outside int32: 2.6 names the field in the message
  with uninitialised memory, Styx with the number sent.
- Splice with offset or length -2^31: 2.6 crashes; Styx treats them as any
  big negative number (offset out of bound / length 0).
- A decimal in the tuple that 2.6 cannot unpack (e.g. 1E+38, stored by
  REPLACE without complaint) is garbage to 2.6's arithmetic; Styx reads 0.
- MP_FLOAT (float32) decodes to a Python float, so arithmetic on it is done
  in double precision; 2.6 rounds the result to float32 when an operand was
  float32, and stores an exact double result as float32 (same value). A
  non-negative integer sent as MP_INT is an unsigned here (decoding erases
  the difference); 2.6 refuses it for bit operations.
- The JSON lexer's "alphabetic" approximates ICU's u_isUAlphabetic with
  str.isalpha() plus combining marks and letter numbers.

Newer Tarantool (current master's xrow_update_*.c and decimal.c) differs
from 2.6: '=' and '!' beyond len+1 in the tuple fill the gap with nils;
arithmetic on an already updated field is allowed (no double update); the
decimal context allows exponents up to 999999, so the 1e38 limits go.
"""

from __future__ import annotations

import decimal as _decimal
import unicodedata as _ud
from collections.abc import Callable
from typing import Any

from msgpack import ExtType

from ..protocol.errors import ER, BoxError
from ..protocol.ext import decimal_pack, decimal_unpack

__all__ = ["MAX_OPS", "check_ops", "apply_update", "apply_upsert"]

MAX_OPS = 4000  # BOX_UPDATE_OP_CNT_MAX
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_INT_MIN, _UINT_MAX = -(2**63), 2**64 - 1
_MP_DECIMAL = 1

_ARITY = {"=": 3, "+": 3, "-": 3, "&": 3, "|": 3, "^": 3, ":": 5, "!": 3, "#": 3}

# Cell states (xrow_update_field types, as far as double updates go).
_NOP, _SET, _SCALAR, _NESTED = 0, 1, 2, 3


# --------------------------------------------------------------------------
# Errors


def _illegal(text: str) -> BoxError:
    return BoxError(ER.ILLEGAL_PARAMS, text)


class _Op:
    __slots__ = ("num", "code", "field_no", "src", "rest", "arg", "cut", "paste")

    def __init__(self, num: int, code: str) -> None:
        self.num = num            # 1-based position in the list
        self.code = code
        self.field_no = 0         # 0-based, or negative from the end
        self.src: str | None = None   # the field id string, if a name/path
        self.rest: int | None = None  # where the path goes on (None: a top-level op)
        self.arg: Any = None
        self.cut = 0              # splice length
        self.paste = b""          # splice replacement

    def field_no_1(self) -> int:
        """The field number Tarantool prints: 1-based, in C int (2^31-1 + 1 wraps)."""
        n = self.field_no + 1 if self.field_no >= 0 else self.field_no
        return (n + 2**31) % 2**32 - 2**31

    def field_str(self) -> str:
        if self.src is not None:
            return f"'{self.src}'"
        return str(self.field_no_1())

    def err_arg(self, needed: str) -> BoxError:
        return BoxError(ER.UPDATE_ARG_TYPE, self.code, self.field_str(), needed)

    def err_field(self, reason: str) -> BoxError:
        return BoxError(ER.UPDATE_FIELD, self.field_str(), reason)

    def err_not_found(self) -> BoxError:
        if self.src is None:
            return BoxError(ER.NO_SUCH_FIELD_NO, self.field_no_1())
        return BoxError(ER.NO_SUCH_FIELD_NAME, self.field_str())

    def err_double(self) -> BoxError:
        return self.err_field("double update of the same field")


# --------------------------------------------------------------------------
# Value kinds


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_uint(v: Any) -> bool:
    return _is_int(v) and v >= 0


def _is_int32(v: Any) -> bool:
    return _is_int(v) and _INT32_MIN <= v <= _INT32_MAX


def _is_array(v: Any) -> bool:
    return isinstance(v, list) or (isinstance(v, tuple) and not isinstance(v, ExtType))


# Tarantool 2.6's decimal context (src/lib/core/decimal.c): 38 digits, adjusted
# exponent at most 37, at least -1 with subnormals down to 1E-38, .5 away from 0.
_DEC_CTX = _decimal.Context(prec=38, rounding=_decimal.ROUND_HALF_UP, Emax=37, Emin=-1,
                            clamp=0, traps=[], flags=[])
_DEC_BAD_FLAGS = (_decimal.Overflow, _decimal.InvalidOperation, _decimal.DivisionByZero)


def _dec_checked(make: Callable[[], _decimal.Decimal]) -> _decimal.Decimal | None:
    """Tarantool's decimal_check_status: a result, or None if it failed."""
    _DEC_CTX.clear_flags()
    r = make()
    if not r.is_finite() or any(_DEC_CTX.flags[f] for f in _DEC_BAD_FLAGS):
        return None
    return r


def _decimal_unpack(data: bytes) -> _decimal.Decimal | None:
    """An MP_DECIMAL payload as update arithmetic can use it, or None."""
    try:
        d = decimal_unpack(bytes(data))
    except ValueError:
        return None
    _sign, digits, exponent = d.as_tuple()
    # What 2.6 can unpack for arithmetic: 38 digits, 38 before the point, 38 after.
    if len(digits) > 38 or len(digits) + exponent > 38 or exponent < -38:  # type: ignore[operator]  # finite
        return None
    return d


def _is_decimal(v: Any) -> bool:
    return (isinstance(v, _decimal.Decimal) and v.is_finite()) or \
        (isinstance(v, ExtType) and v.code == _MP_DECIMAL)


def _as_decimal(v: Any) -> _decimal.Decimal | None:
    if isinstance(v, _decimal.Decimal):
        return v
    if isinstance(v, ExtType) and v.code == _MP_DECIMAL:
        return _decimal_unpack(v.data)
    return None


def _is_number(v: Any) -> bool:
    return _is_int(v) or isinstance(v, float) or _is_decimal(v)


# --------------------------------------------------------------------------
# JSON path lexer (src/lib/json/json.c), index base 1


class _BadJson(Exception):
    def __init__(self, pos: int) -> None:
        self.pos = pos


_END = object()
_ANY = object()  # '[*]'


def _valid_symbol(c: str) -> bool:
    return not ("\ud800" <= c <= "\udfff")


def _is_ualphabetic(c: str) -> bool:
    return c.isalpha() or _ud.category(c) in ("Nl", "Mn", "Mc")


class _Lexer:
    """Positions count code points, as json.c counts symbols."""

    def __init__(self, src: str, offset: int = 0) -> None:
        self.src = src
        self.i = offset

    def at_end(self) -> bool:
        return self.i == len(self.src)

    def _read(self) -> str:
        if self.i == len(self.src) or not _valid_symbol(self.src[self.i]):
            raise _BadJson(self.i + 1)
        c = self.src[self.i]
        self.i += 1
        return c

    def next(self) -> Any:
        """A token: int (0-based array index), str (map key), _ANY or _END."""
        s = self.src
        if self.i == len(s):
            return _END
        start = self.i
        c = self._read()
        if c == "[":
            if self.i == len(s):
                raise _BadJson(self.i)
            q = s[self.i]
            if q == "*":
                self.i += 1
                if self.i == len(s) or s[self.i] != "]":
                    raise _BadJson(self.i + 1)
                self.i += 1
                return _ANY
            if q in "\"'":
                self.i += 1
                begin = self.i
                while True:
                    c = self._read()
                    if c == q:
                        if self.i - begin - 1 == 0:
                            raise _BadJson(self.i)
                        tok: Any = s[begin:self.i - 1]
                        break
            else:
                if not ("0" <= q <= "9"):
                    raise _BadJson(self.i + 1)
                j, value = self.i, 0
                while j < len(s) and "0" <= s[j] <= "9":
                    value = (value * 10 + ord(s[j]) - 48) & 0xFFFFFFFF  # C int wraps
                    j += 1
                if value >= 2**31:
                    value -= 2**32
                if value < 1:
                    raise _BadJson(self.i + 1)
                self.i = j
                tok = value - 1
            if self.i == len(s) or s[self.i] != "]":
                raise _BadJson(self.i + 1)
            self.i += 1
            return tok
        if c == ".":
            if self.i == len(s):
                raise _BadJson(self.i + 1)
            return self._identifier()
        if start != 0:
            raise _BadJson(self.i)  # only the first token may omit the '.'
        self.i = start
        return self._identifier()

    def _identifier(self) -> str:
        s = self.src
        begin = self.i
        c = self._read()
        if not (c.isalpha() or c == "_"):
            raise _BadJson(self.i)
        while self.i < len(s):
            c = s[self.i]
            if not _valid_symbol(c):
                self.i += 1  # json.c keeps an undecodable byte in the token
                break
            if not (_is_ualphabetic(c) or c == "_" or c.isdecimal()):
                break
            self.i += 1
        return s[begin:self.i]


# --------------------------------------------------------------------------
# Phase 1: decode


def _decode(ops: Any, index_base: int, field_names: dict[str, int] | None) -> list[_Op]:
    if not _is_array(ops):
        # What IPROTO answers for a non-array IPROTO_TUPLE / IPROTO_OPS.
        raise BoxError(ER.INVALID_MSGPACK, "packet body")
    if len(ops) > MAX_OPS:
        raise _illegal("too many operations for update")
    names = field_names or {}
    decoded = []
    for i, raw in enumerate(ops, 1):
        try:
            decoded.append(_decode_op(i, raw, index_base, names))
        except _BadDecimal:
            # 2.6 leaves its reader inside the decimal it failed to unpack: the
            # next operation is read from the decimal's scale (an integer), or
            # the list ends early.
            if i < len(ops):
                raise _illegal("update operation must be an array {op,..}") from None
            raise _illegal("can't unpack update operations") from None
    return decoded


class _BadDecimal(Exception):
    pass


def _decode_op(num: int, raw: Any, index_base: int, names: dict[str, int]) -> _Op:
    if not _is_array(raw):
        raise _illegal("update operation must be an array {op,..}")
    if len(raw) < 1:
        raise _illegal("update operation must be an array {op,..}, got empty array")
    name = raw[0]
    if not isinstance(name, str):
        raise _illegal("update operation name must be a string")
    if name not in _ARITY:
        raise BoxError(ER.UNKNOWN_UPDATE_OP, num, f'"{name}"')
    op = _Op(num, name)
    if len(raw) != _ARITY[name]:
        raise BoxError(ER.UNKNOWN_UPDATE_OP, num,
                       f"wrong number of arguments, expected {_ARITY[name]}, got {len(raw)}")
    fid = raw[1]
    if _is_int(fid):
        if not _is_int32(fid):
            # 2.6 names the field with uninitialised memory here.
            raise BoxError(ER.UPDATE_ARG_TYPE, name, str(fid), "an integer")
        if fid - index_base >= 0:
            op.field_no = fid - index_base
        elif fid < 0:
            op.field_no = fid
        else:
            raise BoxError(ER.NO_SUCH_FIELD_NO, fid)
    elif isinstance(fid, str):
        op.src = fid
        if fid in names:
            op.field_no = names[fid]
        else:
            lexer = _Lexer(fid)
            try:
                tok = lexer.next()
            except _BadJson as e:
                raise op.err_field(f"invalid JSON in position {e.pos}") from None
            if isinstance(tok, int):
                op.field_no = tok
            elif isinstance(tok, str) and tok in names:
                op.field_no = names[tok]
            else:
                raise BoxError(ER.NO_SUCH_FIELD_NAME, fid)
            if not lexer.at_end():
                op.rest = lexer.i
    else:
        raise _illegal("field id must be a number or a string")
    _read_arg(op, raw, index_base)
    return op


def _read_arg(op: _Op, raw: Any, index_base: int) -> None:
    code = op.code
    arg = raw[2]
    if code in "=!":
        op.arg = arg
    elif code == "#":
        if not _is_uint(arg):
            raise op.err_arg("a positive integer")
        op.arg = arg & 0xFFFFFFFF
        if op.arg == 0:
            raise op.err_field("cannot delete 0 fields")
    elif code in "+-":
        if not _is_number(arg):
            raise op.err_arg("a number")
        if _is_decimal(arg) and _as_decimal(arg) is None:
            raise _BadDecimal()
        op.arg = arg
    elif code in "&|^":
        if not _is_uint(arg):
            raise op.err_arg("a positive integer")
        op.arg = arg
    else:  # ':'
        offset = arg
        if not _is_int32(offset):
            raise op.err_arg("an integer")
        if offset >= 0:
            if offset - index_base < 0:
                raise BoxError(ER.UPDATE_SPLICE, op.field_str(), "offset is out of bound")
            offset -= index_base
        op.arg = offset
        if not _is_int32(raw[3]):
            raise op.err_arg("an integer")
        op.cut = raw[3]
        if not isinstance(raw[4], str):
            raise op.err_arg("a string")
        op.paste = _to_bytes(raw[4])


# --------------------------------------------------------------------------
# Scalar operations: old value -> new value


def _to_bytes(s: str) -> bytes:
    try:
        return s.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return s.encode("utf-8", "surrogatepass")


def _do_arith(op: _Op, old: Any) -> Any:
    if not _is_number(old):
        raise op.err_arg("a number")
    arg = op.arg
    if _is_int(old) and _is_int(arg):
        r = old + arg if op.code == "+" else old - arg
        if not (_INT_MIN <= r <= _UINT_MAX):
            raise BoxError(ER.UPDATE_INTEGER_OVERFLOW, op.code, op.field_str())
        return r
    if not (_is_decimal(old) or _is_decimal(arg)):
        x, y = float(old), float(arg)
        return x + y if op.code == "+" else x - y
    a = _to_decimal(old)
    b = _to_decimal(arg)
    if a is None or b is None:
        raise op.err_arg("a number convertible to decimal")
    da, db = a, b  # narrowed: the lambdas below see Decimals
    if op.code == "+":
        r = _dec_checked(lambda: _DEC_CTX.add(da, db))
    else:
        r = _dec_checked(lambda: _DEC_CTX.subtract(da, db))
    if r is None:
        raise BoxError(ER.UPDATE_DECIMAL_OVERFLOW, op.code, op.field_str())
    if isinstance(old, _decimal.Decimal) or isinstance(arg, _decimal.Decimal):
        return r
    return ExtType(_MP_DECIMAL, decimal_pack(r))


def _to_decimal(v: Any) -> _decimal.Decimal | None:
    if _is_decimal(v):
        # A tuple's decimal 2.6 cannot unpack is read as 0 (seen: 1E+38 + 1 = 1).
        d = _as_decimal(v)
        return d if d is not None else _decimal.Decimal(0)
    if _is_int(v):
        return _decimal.Decimal(v)
    if v != v or v in (float("inf"), float("-inf")):
        return None
    return _dec_checked(lambda: _DEC_CTX.create_decimal(format(v, ".15g")))


def _do_bit(op: _Op, old: Any) -> int:
    if not _is_uint(old):
        raise op.err_arg("a positive integer")
    if op.code == "&":
        return old & op.arg
    if op.code == "|":
        return old | op.arg
    return old ^ op.arg


def _do_splice(op: _Op, old: Any) -> str:
    if not isinstance(old, str):
        raise op.err_arg("a string")
    data = _to_bytes(old)
    n = len(data)
    offset, cut = op.arg, op.cut
    if offset < 0:
        if -offset > n + 1:
            raise BoxError(ER.UPDATE_SPLICE, op.field_str(), "offset is out of bound")
        offset += n + 1
    elif offset > n:
        offset = n
    if cut < 0:
        cut = 0 if -cut > n - offset else cut + n - offset
    elif cut > n - offset:
        cut = n - offset
    out = data[:offset] + op.paste + data[offset + cut:]
    return out.decode("utf-8", "surrogateescape")


def _do_scalar(op: _Op, old: Any) -> Any:
    if op.code in "+-":
        return _do_arith(op, old)
    if op.code == ":":
        return _do_splice(op, old)
    return _do_bit(op, old)


# --------------------------------------------------------------------------
# Phase 2: apply


class _Cell:
    __slots__ = ("value", "state", "paths")

    def __init__(self, value: Any, state: int = _NOP) -> None:
        self.value = value
        self.state = state
        self.paths: list[tuple[Any, ...]] = []


def _adjust(op: _Op, size: int) -> int:
    """xrow_update_op_adjust_field_no: resolve a negative number, check range."""
    f = op.field_no
    if f >= 0:
        if f < size:
            return f
    elif f + size >= 0:
        op.field_no = f + size
        return op.field_no
    raise op.err_not_found()


def _apply_op(op: _Op, cells: list[_Cell]) -> None:
    if op.rest is not None:
        _apply_nested(op, cells)
        return
    code = op.code
    size = len(cells)
    if code == "=":
        if op.field_no >= size:
            _insert(op, cells)
            return
        cell = cells[_adjust(op, size)]
        cell.value, cell.state, cell.paths = op.arg, _SET, []
    elif code == "!":
        _insert(op, cells)
    elif code == "#":
        f = _adjust(op, size)
        del cells[f:f + op.arg]
    else:
        cell = cells[_adjust(op, size)]
        if cell.state != _NOP:
            raise op.err_double()
        cell.value = _do_scalar(op, cell.value)
        cell.state = _SCALAR


def _insert(op: _Op, cells: list[_Cell]) -> None:
    f = _adjust(op, len(cells) + 1)
    cells.insert(f, _Cell(op.arg))


def _copy(v: Any) -> Any:
    """Deep copy of containers; tuples become lists (they may be updated)."""
    if _is_array(v):
        return [_copy(x) for x in v]
    if isinstance(v, dict):
        return {k: _copy(x) for k, x in v.items()}
    return v


def _apply_nested(op: _Op, cells: list[_Cell]) -> None:
    assert op.src is not None and op.rest is not None
    cell = cells[_adjust(op, len(cells))]
    if cell.state == _NESTED:
        lexer = _Lexer(op.src, op.rest)
        tokens = []
        while (tok := _next_token(op, lexer)) is not _END:
            tokens.append(tok)
        new = tuple(tokens)
        for old in cell.paths:
            k = min(len(old), len(new))
            if old[:k] == new[:k]:
                raise op.err_double()
    elif cell.state != _NOP:
        raise op.err_double()
    value = _copy(cell.value)
    path = _descend(op, value)
    cell.value = value
    cell.state = _NESTED
    cell.paths.append(path)


def _go_to(cur: Any, tok: Any) -> tuple[bool, Any]:
    """tuple_field_go_to_index/_key: (found, key in `cur`)."""
    if isinstance(tok, int):
        if isinstance(cur, list):
            return tok < len(cur), tok
        if isinstance(cur, dict):
            # "[n]" also finds the unsigned key n in a map (1-based, like the path).
            for k in cur:
                if _is_int(k) and k == tok + 1:
                    return True, k
        return False, None
    if isinstance(cur, dict) and tok in cur:
        return True, tok
    return False, None


def _next_token(op: _Op, lexer: _Lexer) -> Any:
    try:
        tok = lexer.next()
    except _BadJson as e:
        raise op.err_field(f"invalid JSON in position {e.pos}") from None
    if tok is _ANY:
        raise op.err_field(f"invalid JSON in position {lexer.i - 1}")
    return tok


def _descend(op: _Op, root: Any) -> tuple[Any, ...]:
    """Apply a path operation inside `root` (a private copy); the tokens walked.

    Two walks, as xrow_update_bar.c: '=' and '!' may create the last step
    (an array's len+1, a map's new key) and complain about the type of its
    container; every other operation needs the whole path to exist, and any
    miss, a wrong container type included, is "not found".
    """
    lexer = _Lexer(op.src or "", op.rest or 0)
    path: list[Any] = []
    parent: Any = None
    key: Any = None
    cur = root
    if op.code not in "=!":
        while (tok := _next_token(op, lexer)) is not _END:
            path.append(tok)
            found, k = _go_to(cur, tok)
            if not found:
                raise op.err_not_found()
            parent, key, cur = cur, k, cur[k]
        if op.code == "#":
            if isinstance(parent, list):
                del parent[key:key + op.arg]
            else:
                if op.arg != 1:
                    raise op.err_field("can delete only 1 field from a map in a row")
                del parent[key]
        else:
            parent[key] = _do_scalar(op, cur)
        return tuple(path)
    while (tok := _next_token(op, lexer)) is not _END:
        path.append(tok)
        found, k = _go_to(cur, tok)
        parent = cur
        if not found:
            break
        key, cur = k, cur[k]
    else:
        # Found: '=' replaces, '!' inserts before an array item, a map key is taken.
        if op.code == "=":
            parent[key] = op.arg
        elif isinstance(parent, list):
            parent.insert(key, op.arg)
        else:
            raise op.err_field("the key exists already")
        return tuple(path)
    if _next_token(op, lexer) is not _END:
        raise op.err_not_found()
    if isinstance(tok, int):
        if not isinstance(parent, list):
            raise op.err_field("can not access by index a non-array field")
        if tok > len(parent):
            raise op.err_not_found()
        parent.append(op.arg)
    else:
        if not isinstance(parent, dict):
            raise op.err_field("can not access by key a non-map field")
        items = list(parent.items())
        parent.clear()
        parent[tok] = op.arg  # a new key goes first, as Tarantool writes it
        parent.update(items)
    return tuple(path)


# --------------------------------------------------------------------------
# API


def check_ops(ops: Any, *, index_base: int = 1, field_names: dict[str, int] | None = None) -> None:
    """Tarantool's xrow_update_check_ops: the decode-time checks, no tuple needed.

    Raises what UPDATE would raise before touching the tuple (op shapes,
    names, arity, field ids and names, argument types). `field_names` maps
    the space format's names to 0-based field numbers; None means no format,
    so every name is unknown. Pass the same index_base and field_names as
    to apply_update/apply_upsert: a field name or field 0 with base 1 is a
    decode-time error.
    """
    _decode(ops, index_base, field_names)


def apply_update(fields: list[Any], ops: Any, *, index_base: int = 1,
                 field_names: dict[str, int] | None = None) -> list[Any]:
    """The tuple after UPDATE's operations: a new list, `fields` untouched."""
    assigned = _assigned(fields, ops, index_base)
    if assigned is not None:
        return assigned
    decoded = _decode(ops, index_base, field_names)
    cells = [_Cell(v) for v in fields]
    for op in decoded:
        _apply_op(op, cells)
    return [c.value for c in cells]


def _assigned(fields: list[Any], ops: Any, index_base: int) -> list[Any] | None:
    """The commonest UPDATE at once: every operation '=' on an existing
    top-level field by number ('=' always succeeds, even twice on one
    field). None for anything else, which the general path decodes."""
    if type(ops) is not list or len(ops) > MAX_OPS:
        return None
    n = len(fields)
    for op in ops:
        if type(op) is not list or len(op) != 3 or op[0] != "=" or type(op[1]) is not int \
                or not 0 <= op[1] - index_base < n:
            return None
    out = list(fields)
    for _, fid, value in ops:
        out[fid - index_base] = value
    return out


def apply_upsert(fields: list[Any], ops: Any, *, index_base: int = 1,
                 field_names: dict[str, int] | None = None,
                 on_error: Callable[[BoxError], None] | None = None) -> list[Any]:
    """UPSERT's update of an existing tuple: failing operations are skipped.

    Decode errors (see check_ops) are raised; an operation that fails while
    applied is passed to `on_error` (Tarantool logs "UPSERT operation
    failed:" and the error at E level) and skipped.
    """
    decoded = _decode(ops, index_base, field_names)
    cells = [_Cell(v) for v in fields]
    for op in decoded:
        try:
            _apply_op(op, cells)
        except BoxError as e:
            if on_error is not None:
                on_error(e)
    return [c.value for c in cells]
