"""Generated differential tests: random schemas and request sequences, each
sent to Tarantool 2.6 and to Styx, every reply compared.

Each example creates a space `g` (id 800) as boss: with or without a format
(every field type, decimal and uuid included, nullable fields), a TREE or
HASH primary key of one or two parts, then requests drawn one at a time
(`st.data()`, so each draw sees what the servers answered): IPROTO INSERT,
REPLACE, UPDATE (every operator; NaN, infinities, huge and negative field
numbers), UPSERT, DELETE, SELECT (every iterator, limit, offset); the
box.space.g / box.space.g.index.* methods over CALL (select, get, min, max,
count, insert, replace, update, upsert, delete, len, pairs); and DDL in the
middle: create_index (TREE/HASH, unique or not, one or two parts, nullable),
index drop and alter, format(). After the sequence every index's content
and the space's _vindex rows are compared; then the space is dropped.

What is not compared is in tests/deliberate.py (HASH order, the field
number of a huge UPDATE field, ...). Values come from small domains so that
keys collide.

    STYX_DIFF_EXAMPLES=5000 pytest tests/test_box_generated.py   # make fuzz-diff
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from msgpack import ExtType

from styx import Server
from tests.deliberate import field_no_outside_int32
from tests.test_box_differential import (  # noqa: F401 (fixtures)
    CALL,
    DELETE,
    FUNCTION_NAME,
    INDEX_BASE,
    INDEX_ID,
    INSERT,
    ITERATOR,
    KEY,
    LIMIT,
    OFFSET,
    OPS,
    REPLACE,
    SELECT,
    SPACE_ID,
    TUPLE,
    UPDATE,
    UPSERT,
    Pair,
    Reply,
    explain,
    logged_in_pair,
    norm,
    oracle_port,
    select_body,
    styx,
)

EXAMPLES = int(os.environ.get("STYX_DIFF_EXAMPLES", "400"))
SID = 800
NAN, INF = float("nan"), float("inf")
UMAX = 2**64 - 1


def dec(text: str) -> ExtType:
    """MP_EXT decimal (type 1): scale, then BCD digits and the sign nibble."""
    neg = text.startswith("-")
    digits = text.lstrip("-")
    scale = len(digits.split(".")[1]) if "." in digits else 0
    # canonical, as Tarantool packs it (DELIBERATE['tuple bytes']): no leading zeros
    nibbles = [int(c) for c in digits.replace(".", "").lstrip("0") or "0"] + [0xD if neg else 0xC]
    if len(nibbles) % 2:
        nibbles.insert(0, 0)
    return ExtType(1, bytes([scale]) + bytes(a << 4 | b for a, b in zip(nibbles[::2], nibbles[1::2], strict=True)))


DECIMALS = [dec("1.5"), dec("2"), dec("-0.5"), dec("0"), dec("100")]
UUIDS = [ExtType(2, bytes(16)), ExtType(2, bytes(range(16))), ExtType(2, b"\xff" * 16)]

# Values per field type: small domains (keys collide), edges now and then.
BASE: dict[str, list[Any]] = {
    "unsigned": [0, 1, 2, 3, 2**63, UMAX],
    "integer": [-2, -1, 0, 1, 2, -2**63, UMAX],
    "number": [0, 1, 2, 1.5, -0.5, 2.0, NAN, INF, -INF, -0.0, 1e300, *DECIMALS[:2]],
    "double": [1.0, 1.5, -0.5, 0.0, -0.0, INF, -INF, 1e300],
    "string": ["a", "b", "", "ab", "я"],
    "boolean": [True, False],
    "varbinary": [b"", b"a", b"\x00"],
    "decimal": DECIMALS,
    "uuid": UUIDS,
    "array": [[], [1], [1, "a"]],
    "map": [{}, {"k": 1}],
}
BASE["scalar"] = [0, 1, 1.5, NAN, "a", "", b"a", True, False, -1, UMAX, DECIMALS[0]]
BASE["any"] = BASE["scalar"] + [[1], {"k": 1}, None, UUIDS[1]]
INDEXABLE = ["unsigned", "integer", "number", "double", "string", "boolean", "varbinary",
             "scalar", "decimal", "uuid"]
TYPES = INDEXABLE + ["any", "array", "map"]


def rare(n: int) -> st.SearchStrategy[bool]:
    return st.integers(0, n - 1).map(lambda x: x == n - 1)


class Model:
    """What the generator believes the space is (updated from Tarantool's
    replies, so a DDL both servers refused changes nothing)."""

    def __init__(self) -> None:
        self.format: list[dict[str, Any]] = []
        self.width = 4  # fields a tuple has (types beyond the format: any)
        self.indexes: dict[str, dict[str, Any]] = {}  # name -> {iid, type, unique, parts}
        self.seen: list[list[Any]] = []  # tuples sent
        # NaN, inf and 1e300 (then no decimals and no TREE parts of type
        # 'double'), or decimals: never both (tests/deliberate.py).
        self.nan_ok = True

    def allowed(self, v: Any) -> Any:
        """`v`, or 0.5 if this example must not have it."""
        if type(v) is float and (v != v or v - v != 0 or abs(v) >= 1e38):
            return v if self.nan_ok else 0.5
        if type(v) is ExtType and v.code == 1:
            return 0.5 if self.nan_ok else v
        if type(v) is list:
            return [self.allowed(x) for x in v]
        if type(v) is dict:
            return {k: self.allowed(x) for k, x in v.items()}
        return v

    def ftype(self, i: int) -> str:
        return self.format[i]["type"] if i < len(self.format) else "any"

    def nullable(self, i: int) -> bool:
        return i < len(self.format) and bool(self.format[i].get("is_nullable"))

    def by_iid(self) -> list[dict[str, Any]]:
        return sorted(self.indexes.values(), key=lambda i: i["iid"])


class Gen:
    """Draws against the model, with `data` (hypothesis' interactive draws)."""

    def __init__(self, data: st.DataObject, m: Model) -> None:
        self.d = data
        self.m = m

    def draw(self, s: st.SearchStrategy[Any]) -> Any:
        return self.d.draw(s)

    def pick(self, xs: list[Any]) -> Any:
        return self.draw(st.sampled_from(xs))

    def value(self, t: str, nullable: bool = False) -> Any:
        if nullable and self.draw(rare(4)):
            return None
        if self.draw(rare(12)):
            v = self.pick(BASE["any"] + [0.5, 7])  # anything at all
        else:
            v = self.pick(BASE.get(t, BASE["any"]))
        return self.m.allowed(v)

    def tuple_(self) -> list[Any]:
        m = self.m
        n = m.width if not self.draw(rare(8)) else self.draw(st.integers(0, m.width + 2))
        out = [self.value(m.ftype(i), m.nullable(i)) for i in range(n)]
        m.seen.append(out)
        return out

    def index(self, unique_only: bool = False) -> dict[str, Any] | None:
        idx = [i for i in self.m.by_iid() if i["unique"] or not unique_only]
        if not idx or self.draw(rare(25)):
            return None
        return self.pick(idx)

    def key(self, idx: dict[str, Any] | None) -> list[Any]:
        if idx is None:
            return [self.value("unsigned")]
        fields = [p[0] for p in idx["parts"]]
        olds = [t for t in self.m.seen if len(t) > max(fields)]
        if olds and self.draw(st.booleans()):
            old = self.pick(olds)
            full = [old[f] for f in fields]
        else:
            full = [self.value(p[1]) for p in idx["parts"]]
        shape = self.pick(["prefix", "long", "wrong", "empty"]) if self.draw(rare(6)) else "full"
        if shape == "prefix":
            return full[:self.draw(st.integers(0, len(full) - 1))]
        if shape == "long":
            return full + [self.value("any")]
        if shape == "wrong":
            return [self.value("any") for _ in full]
        if shape == "empty":
            return []
        return full

    def ops(self, base: int | None) -> list[Any]:
        m = self.m
        b = base or 0
        out = []
        for _ in range(self.draw(st.integers(0, 3))):
            op = self.pick(list("=+-&|^:!#"))
            pos = self.pick([1, 2, 3, 4, 2, 3, 5, 6, -1, -2, -5])
            field: Any = pos if pos < 0 else pos - 1 + b
            kind = m.ftype(pos - 1) if pos > 0 else "any"
            if m.format and self.draw(rare(5)):
                field = self.pick([f["name"] for f in m.format] + ["nope", ""])
            elif self.draw(rare(25)):
                field = self.pick([2**32 + 2, -2**31 - 1, 2**31, 2**63, b - 1 if b else 0, 1.5])
            elif self.draw(rare(12)):  # JSON paths
                field = self.pick(["[1]", "[2]", "[3][1]", "[4]['k']", "f1[1]", "f2.k", "[0]",
                                   "[-1]", "[", "[2]x", "f0"])
            if op in "=!":
                args = [self.value(kind)]
            elif op in "+-":
                args = [m.allowed(self.pick([1, -1, 2, 0, 1.5, -0.5, UMAX, -2**63, INF, -INF, NAN,
                                             1e300, "x", DECIMALS[0], DECIMALS[2], None]))]
            elif op in "&|^":
                args = [self.pick([0, 1, 3, 7, -1, 1.5, UMAX])]
            elif op == ":":
                args = [self.pick([b, b + 1, -1, 0, 5, "1"]), self.pick([0, 1, -1, 9]),
                        self.pick(["", "Z", "zz", 5])]
            else:
                args = [self.pick([1, 2, 1, 0, 9, -1])]
            if self.draw(rare(30)):
                args = args[:-1]
            out.append([op, field, *args])
        return out


# -- comparing ---------------------------------------------------------------------------


def hash_rows(r: Reply, call: bool) -> Counter[Any] | None:
    rows = r.data or ()
    if call:
        if len(rows) != 1 or rows[0][0] != "arr":
            return None
        rows = rows[0][1]
    return Counter(rows)


def same(rtype: int, body: dict[int, Any], t: Reply, s: Reply, idx: dict[str, Any] | None,
         it: int | None, cut: bool, scans: bool = False) -> bool:
    if t == s:
        return True
    if scans and t.code and s.code:
        return True  # DELIBERATE['hash order']: the first tuple refused is met in hash order
    if rtype in (UPDATE, UPSERT):
        ops = body.get(TUPLE) if rtype == UPDATE else body.get(OPS)
    elif rtype == CALL:
        args = body.get(0x21) or []
        ops = args[1] if len(args) > 1 else None
    else:
        ops = None
    if t.code == s.code == 26 and field_no_outside_int32(ops):
        return True  # DELIBERATE['update field_no']
    if idx is not None and idx["type"] == "HASH" and it in (2, 6) and t.code == s.code == 0:
        # DELIBERATE['hash order']: the same tuples when nothing was cut, else as
        # many; GT: the reply code only.
        if it == 6:
            return True
        ht, hs = hash_rows(t, rtype == CALL), hash_rows(s, rtype == CALL)
        if ht is None or hs is None:
            return False
        return ht == hs or cut and sum(ht.values()) == sum(hs.values())
    return False


class Session:
    def __init__(self, p: Pair, m: Model) -> None:
        self.p = p
        self.m = m
        self.count = 0
        self.log: list[str] = []

    def send(self, rtype: int, body: dict[int, Any], idx: dict[str, Any] | None = None,
             it: int | None = None, cut: bool = False, scans: bool = False) -> Reply:
        t, s = self.p.both(rtype, body)
        self.count += 1
        self.log.append(f"  {rtype} {body!r} -> {t!r}")
        assert s.code != 115 and t.code != 115, explain(rtype, body, t, s, "internal error")
        assert same(rtype, body, t, s, idx, it, cut, scans), explain(rtype, body, t, s) + self.history()
        return t

    def history(self) -> str:
        return "\n  the example's requests (tarantool's replies):\n" + "\n".join(self.log[-60:])

    def call(self, name: str, *args: Any, idx: dict[str, Any] | None = None,
             it: int | None = None, cut: bool = False, scans: bool = False) -> Reply:
        """`scans`: a DDL that checks every stored tuple, in the primary key's order."""
        return self.send(CALL, {FUNCTION_NAME: name, 0x21: list(args)}, idx, it, cut, scans)


# -- one example -------------------------------------------------------------------------


def make_space(g: Gen, ses: Session) -> None:
    m = g.m
    p = ses.p
    if g.draw(st.booleans()):
        n = g.draw(st.integers(1, 5))
        m.format = []
        for i in range(n):
            t = g.pick(INDEXABLE + INDEXABLE + ["any", "array", "map"])
            f: dict[str, Any] = {"name": f"f{i}", "type": t}
            if i > 0 and g.draw(rare(3)):
                f["is_nullable"] = True
            m.format.append(f)
        m.width = max(n, 3)
    else:
        m.width = g.draw(st.integers(2, 4))
    opts: dict[str, Any] = {"id": SID}
    if m.format:
        opts["format"] = m.format
    t, s = p.both(CALL, {FUNCTION_NAME: "box.schema.space.create", 0x21: ["g", opts]})
    assert (t.code, s.code) == (32, 0), (t, s)  # DELIBERATE['space.create']
    pk = create_index(g, ses, primary=True)
    if pk is None:  # both refused: a plain primary key then, on a field that takes it
        f = next((i for i in range(len(m.format)) if m.ftype(i) in ("unsigned", "integer", "number",
                                                                      "scalar", "any")
                  and not m.nullable(i)), len(m.format))
        m.width = max(m.width, f + 1)
        r = ses.call("box.space.g:create_index", "pk", {"parts": [[f + 1, "unsigned"]]})
        assert r.code == 0, ses.history()
        m.indexes["pk"] = {"iid": 0, "type": "TREE", "unique": True, "parts": [(f, "unsigned", False)]}
    for _ in range(g.draw(st.integers(0, 2))):
        create_index(g, ses)


def part_spec(g: Gen, m: Model, fieldno: int, nullable_ok: bool,
              tree: bool) -> tuple[Any, tuple[int, str, bool]]:
    t = m.ftype(fieldno)
    if t in ("any", "array", "map") or g.draw(rare(5)):
        t = g.pick(INDEXABLE) if not g.draw(rare(10)) else g.pick(TYPES + ["blah"])
    no_double = tree and m.nan_ok  # DELIBERATE['double NaN']
    if no_double and t == "double":
        t = "number"
    nullable = nullable_ok and (m.nullable(fieldno) or g.draw(rare(4)))
    form = g.draw(st.integers(0, 3))
    if form == 0 and not nullable:
        spec: Any = [fieldno + 1, t]
    elif (form == 1 and m.format and fieldno < len(m.format) and not g.draw(rare(3))
          and not (no_double and m.ftype(fieldno) == "double")):
        spec = m.format[fieldno]["name"]
        t = m.ftype(fieldno)
        nullable = m.nullable(fieldno)
    else:
        spec = {"field": fieldno + 1, "type": t}
        if nullable or g.draw(rare(3)):
            spec["is_nullable"] = nullable
    return spec, (fieldno, t, nullable)


def create_index(g: Gen, ses: Session, primary: bool = False) -> dict[str, Any] | None:
    m = g.m
    kind = g.pick(["TREE", "TREE", "HASH"] + ([] if primary else ["tree", "hash"]))
    unique = True if primary or kind.upper() == "HASH" and not g.draw(rare(6)) \
        else g.draw(st.booleans())
    nparts = g.draw(st.integers(1, 2))
    fields = g.draw(st.lists(st.integers(0, m.width - 1), min_size=nparts, max_size=nparts,
                             unique=not g.draw(rare(15))))
    specs, parts = [], []
    for f in fields:
        spec, part = part_spec(g, m, f, nullable_ok=not primary or g.draw(rare(6)),
                               tree=kind.upper() == "TREE")
        specs.append(spec)
        parts.append(part)
    name = "pk" if primary else f"i{len(m.indexes)}{g.draw(st.integers(0, 9))}"
    opts: dict[str, Any] = {"type": kind, "parts": specs}
    if not primary or g.draw(rare(4)):
        opts["unique"] = unique
    r = ses.call("box.space.g:create_index", name, opts, scans=hash_pk(m))
    if r.code != 0:
        return None
    info = r.rows[0]
    idx = {"iid": info["id"], "type": info["type"].upper(), "unique": info["unique"],
           "parts": [(pp["fieldno"] - 1, pp["type"], pp["is_nullable"]) for pp in info["parts"]]}
    m.indexes[name] = idx
    return idx


def hash_pk(m: Model) -> bool:
    """Existing tuples are met in the primary key's order: a HASH one's is its own."""
    return m.indexes.get("pk", {}).get("type") == "HASH"


def ddl(g: Gen, ses: Session) -> None:
    m = g.m
    what = g.pick(["create", "create", "drop", "alter", "format"])
    if what == "create":
        create_index(g, ses)
    elif what == "drop":
        idx = g.pick(list(m.indexes)) if m.indexes else "nope"
        r = ses.call(f"box.space.g.index.{idx}:drop")
        if r.code == 0:
            iid = m.indexes.pop(idx)["iid"]
            if iid == 0:
                m.seen.clear()
    elif what == "alter" and m.indexes:
        name = g.pick(list(m.indexes))
        idx = m.indexes[name]
        f = g.draw(st.integers(0, m.width - 1))
        spec, part = part_spec(g, m, f, nullable_ok=idx["iid"] != 0, tree=idx["type"] == "TREE")
        r = ses.call(f"box.space.g.index.{name}:alter", {"parts": [spec]}, scans=hash_pk(m))
        if r.code == 0:
            idx["parts"] = [part]
            r2, s2 = ses.p.both(SELECT, select_body(289, 0, 0, [SID, idx["iid"]]))
            # as decoded values: DELIBERATE['view map order']
            assert r2.rows == s2.rows, explain(SELECT, "_vindex", r2, s2) + ses.history()
            if r2.code == 0 and r2.rows:
                row = r2.rows[0][5][0]
                idx["parts"] = [(row["field"], row["type"], row.get("is_nullable", False))
                                if isinstance(row, dict) else (row[0], row[1], False)]
    elif what == "format":
        fmt = [dict(f) for f in m.format] or [{"name": "f0", "type": "any"}]
        i = g.draw(st.integers(0, len(fmt)))
        if i == len(fmt):
            fmt.append({"name": f"f{i}", "type": g.pick(TYPES), "is_nullable": True})
        else:
            fmt[i]["type"] = g.pick(TYPES)
        r = ses.call("box.space.g:format", fmt, scans=hash_pk(m))
        if r.code == 0:
            m.format = fmt
            m.width = max(m.width, len(fmt))


def request(g: Gen, ses: Session) -> None:
    kind = g.pick(["insert"] * 5 + ["replace"] * 3 + ["update"] * 4 + ["upsert"] * 2
                  + ["delete"] * 2 + ["select"] * 5 + ["call"] * 6 + ["ddl"])
    if kind in ("insert", "replace"):
        ses.send(INSERT if kind == "insert" else REPLACE, {SPACE_ID: SID, TUPLE: g.tuple_()})
    elif kind == "select":
        idx = g.index()
        iid = idx["iid"] if idx else g.pick([7, 30])
        it = g.draw(st.integers(0, 6)) if not g.draw(rare(10)) else g.pick([7, 8, 11, 12, 13])
        limit = g.pick([2**32 - 1] * 4 + [0, 1, 2])
        offset = g.pick([0] * 4 + [1, 2])
        ses.send(SELECT, select_body(SID, iid, it, g.key(idx), limit, offset), idx, it,
                 cut=offset > 0 or limit < 2**32 - 1)
    elif kind == "delete":
        idx = g.index(unique_only=True)
        ses.send(DELETE, {SPACE_ID: SID, INDEX_ID: idx["iid"] if idx else 9, KEY: g.key(idx)})
    elif kind in ("update", "upsert"):
        base = g.pick([1, 1, 0, None])
        if kind == "update":
            idx = g.index(unique_only=True)
            body = {SPACE_ID: SID, INDEX_ID: idx["iid"] if idx else 9, KEY: g.key(idx),
                    TUPLE: g.ops(base)}
        else:
            body = {SPACE_ID: SID, TUPLE: g.tuple_(), OPS: g.ops(base)}
        if base is not None:
            body[INDEX_BASE] = base
        ses.send(UPDATE if kind == "update" else UPSERT, body)
    elif kind == "ddl":
        ddl(g, ses)
    else:
        call_method(g, ses)


LUA_ITERATORS = ["EQ", "REQ", "ALL", "LT", "LE", "GE", "GT", "eq", "ge", "BITS_ALL_SET",
                 "OVERLAPS", "NEIGHBOR", "XX"]


def lua_key(g: Gen, idx: dict[str, Any] | None) -> Any:
    key = g.key(idx)
    shape = g.draw(st.integers(0, 9))
    if shape == 0 and len(key) == 1:
        return key[0]  # a scalar key: Lua wraps it
    if shape == 1:
        return None
    if shape == 2:
        return {"k": 1} if g.draw(st.booleans()) else {}
    return key


def call_method(g: Gen, ses: Session) -> None:
    m = g.m
    idx = g.index()
    on_index = idx is not None and g.draw(st.booleans())
    if on_index:
        name = next(n for n, i in m.indexes.items() if i is idx)
        path = f"box.space.g.index.{name if not g.draw(rare(20)) else idx['iid']}"
    else:
        path = "box.space.g"
        idx = m.indexes.get("pk") or next(iter(m.by_iid()), None)
        if idx is not None and idx["iid"] != 0:
            idx = None
    method = g.pick(["select", "select", "get", "min", "max", "count", "insert", "replace",
                     "update", "upsert", "delete", "len", "pairs"])
    fn = f"{path}:{method}"
    if method in ("select", "count", "pairs"):
        key = lua_key(g, idx)
        opts: dict[str, Any] = {}
        it = None
        if g.draw(st.booleans()):
            it = g.pick(LUA_ITERATORS) if not g.draw(rare(10)) else g.pick([None, 2, False])
            opts["iterator"] = it
        if method == "select":
            if g.draw(rare(3)):
                opts["limit"] = g.pick([0, 1, 2, 10])
            if g.draw(rare(4)):
                opts["offset"] = g.pick([0, 1, 2])
        key_nil = key is None or isinstance(key, list) and not key or \
            isinstance(key, dict) and 1 not in key
        if it is None and "iterator" not in opts or it is False:
            itc: int | None = 2 if key_nil else 0
        elif isinstance(it, str):
            itc = {"ALL": 2, "GT": 6}.get(it.upper())
        else:
            itc = it if isinstance(it, int) else None
        args = [key, opts] if opts or g.draw(rare(4)) else [key]
        ses.call(fn, *args, idx=idx, it=itc, cut="limit" in opts or "offset" in opts)
    elif method in ("get", "min", "max", "delete"):
        ses.call(fn, lua_key(g, idx))
    elif method in ("insert", "replace"):
        ses.call(fn, g.tuple_() if not g.draw(rare(15)) else g.pick([5, {"a": 1}, None]))
    elif method == "update":
        ops = g.ops(1) if not g.draw(rare(15)) else g.pick(["x", {"a": 1}, None])
        ses.call(fn, lua_key(g, idx), ops)
    elif method == "upsert":
        ses.call(fn, g.tuple_(), g.ops(1) if not g.draw(rare(15)) else g.pick([{"a": 1}, 5]))
    else:
        ses.call(fn)


def compare_contents(ses: Session) -> None:
    m = ses.m
    for idx in m.by_iid():
        t, s = ses.p.both(SELECT, select_body(SID, idx["iid"], 2, []))
        if idx["type"] == "HASH":
            ok = t.code == s.code and Counter(t.data or ()) == Counter(s.data or ())
        else:
            ok = t == s
        assert ok, explain(SELECT, f"ALL of index {idx}", t, s, "contents differ") + ses.history()
    t, s = ses.p.both(SELECT, select_body(289, 0, 0, [SID]))
    assert t.rows == s.rows, explain(SELECT, "_vindex", t, s, "_vindex rows differ") + ses.history()


def drop(p: Pair) -> None:
    for c in (p.t, p.s):
        c.do(CALL, {FUNCTION_NAME: "box.space.g:drop", 0x21: []})


# -- the tests ---------------------------------------------------------------------------


@pytest.fixture
def boss(oracle_port: int, styx: Server) -> Iterator[Pair]:
    p = logged_in_pair(oracle_port, styx, "boss", "pw")
    drop(p)
    yield p
    p.close()


REQUESTS: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    """How many requests went to each server, and how fast (pytest -s shows it)."""
    start = time.monotonic()
    yield
    took = time.monotonic() - start
    n = REQUESTS["requests"]
    print(f"\ngenerated differential: {REQUESTS['examples']} examples, {n} requests to each "
          f"server in {took:.1f} s ({n / max(took, 1e-9):.0f}/s)")


# Shrinking replays whole sequences against two servers: slow, and the failure
# message already names the request that differed. STYX_DIFF_SHRINK=1 turns it on.
PHASES = [Phase.explicit, Phase.reuse, Phase.generate] + (
    [Phase.shrink] if os.environ.get("STYX_DIFF_SHRINK") == "1" else [])


@pytest.mark.timeout(max(120, EXAMPLES))  # ~25 examples a second; a long run needs more
@settings(max_examples=EXAMPLES, deadline=None, phases=PHASES, print_blob=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(data=st.data())
def test_generated(boss: Pair, data: st.DataObject) -> None:
    m = Model()
    g = Gen(data, m)
    m.nan_ok = data.draw(st.booleans())
    ses = Session(boss, m)
    try:
        make_space(g, ses)
        for _ in range(data.draw(st.integers(1, 30))):
            request(g, ses)
        compare_contents(ses)
    finally:
        drop(boss)
        REQUESTS["requests"] += ses.count
        REQUESTS["examples"] += 1
