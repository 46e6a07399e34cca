"""Box over IPROTO, differentially: Styx against Debian's Tarantool 2.6.

One Tarantool 2.6 (tests/lua/tarantool_server.lua `box`, once per module)
and one Styx per test (make_server with tests/apps/box_app.py) hold the same
schema: the same spaces under the same ids (512..518), formats and indexes,
guest granted read,write,execute on the universe, and a user 'limited' with
only the default grants. Raw IPROTO requests (no connector in between) go to both,
and the replies are compared: the header's code and sync; DATA type-aware (1
is not 1.0 nor True, NaN equals NaN, map order counts); for an error the
message (0x31) and every MP_ERROR entry's type, message, errno, code and
fields. What is not compared, and why, is listed in tests/deliberate.py.

- System views: _vspace/_vindex rows of the user spaces and of the system
  spaces as guest sees them; access checks and view rows for 'limited'.
- Hand-picked: SELECT with every iterator on every index with keys of every
  shape, limit and offset (a matrix over fixed rows); SELECT errors; INSERT,
  REPLACE, DELETE, UPDATE (every op; INDEX_BASE 1 as net.box sends, 0, and
  absent as tarantool-python sends: field numbers 0-based; negative numbers;
  field names), UPSERT, with the whole content compared afterwards.
- Generated (hypothesis): sequences of those requests on one or two spaces,
  each example starting from empty spaces (`reset`, a CALL on both) and
  ending with every index's content compared. Values come from small domains
  so that keys collide; some tuples, keys and ops are wrong on purpose.

Styx bugs this module found are in STYX_BUGS, each with a test
`test_bug_<name>` that reproduces it and FAILS while the bug is there. The
matrix and generated tests could excuse a difference a known bug explains
(`known_bug`, for the bugs in EXCUSED); all are fixed, EXCUSED is empty, and
everything they send must match. A DML bug that left the two servers with different
data would still fail them (contents are compared after each sequence).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import msgpack
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from msgpack import ExtType

from styx import Server
from tests.deliberate import DELIBERATE  # noqa: F401 (what same() accepts, and why)
from tests.iproto import Raw, frame
from tests.oracle import tarantool_server

HERE = Path(__file__).parent
APP = str(HERE / "apps" / "box_app.py")

SELECT, INSERT, REPLACE, UPDATE, DELETE, CALL, UPSERT = 1, 2, 3, 4, 5, 10, 9
SPACE_ID, INDEX_ID, LIMIT, OFFSET, ITERATOR, INDEX_BASE = 0x10, 0x11, 0x12, 0x13, 0x14, 0x15
KEY, TUPLE, FUNCTION_NAME, OPS = 0x20, 0x21, 0x22, 0x28
DATA, ERROR_24, ERROR = 0x30, 0x31, 0x52
EQ, REQ, ALL, LT, LE, GE, GT = range(7)
UMAX = 2**64 - 1
MISSING_REQUEST_FIELD = 69
VSPACE, VINDEX = 281, 289

# ---------------------------------------------------------------------------
# The schema (tarantool_server.lua `box` and tests/apps/box_app.py create it), as
# the generators need it: per space the "kind" of each field of a well-typed
# tuple and how many a tuple needs; per index its fields, HASH or not, unique.


class Idx(NamedTuple):
    iid: int
    fields: tuple[int, ...]  # 0-based field numbers of its parts, in key order
    hash: bool = False
    unique: bool = True


class Sp(NamedTuple):
    id: int
    name: str
    fields: tuple[str, ...]  # kind of each field of a well-typed tuple ('?': nullable)
    required: int  # fields a well-typed tuple must have
    indexes: tuple[Idx, ...]
    names: tuple[str, ...] = ()  # format field names
    field_count: int = 0

    def kinds(self, idx: Idx) -> list[str]:
        return [self.fields[f] for f in idx.fields]


SPACES = {
    "tree": Sp(512, "tree", ("unsigned", "string", "integer", "any"), 3,
               (Idx(0, (0,)), Idx(1, (1,), unique=False), Idx(2, (2, 1))), names=("id", "s", "n")),
    "hash": Sp(513, "hash", ("unsigned", "string", "integer", "any"), 3,
               (Idx(0, (0,), hash=True), Idx(1, (1, 2), hash=True), Idx(2, (2,), unique=False))),
    "nullable": Sp(514, "nullable", ("unsigned", "integer?", "string?", "any"), 1,
                   (Idx(0, (0,)), Idx(1, (1,), unique=False), Idx(2, (2,)))),
    "scalar": Sp(515, "scalar", ("scalar", "any"), 1, (Idx(0, (0,)),)),
    "fmt": Sp(516, "fmt", ("unsigned", "integer", "number", "string?", "unsigned?", "any"), 3,
              (Idx(0, (0,)), Idx(1, (3,), unique=False)),
              names=("id", "cnt", "price", "name", "bits", "extra")),
    "fixed": Sp(517, "fixed", ("unsigned", "any", "any"), 3, (Idx(0, (0,)),), field_count=3),
    "multi": Sp(518, "multi", ("string", "unsigned", "any"), 2, (Idx(0, (0, 1)),)),
}
BY_ID = {s.id: s for s in SPACES.values()}


def is_hash(space_id: Any, index_id: Any) -> bool:
    s = BY_ID.get(space_id)
    return s is not None and any(i.iid == index_id and i.hash for i in s.indexes)


# ---------------------------------------------------------------------------
# IPROTO: two clients, one reply form.


class Client(Raw):
    """A raw connection: strings decoded with surrogateescape, syncs counted."""

    sync = 0

    def do(self, rtype: int, body: Any) -> tuple[dict[int, Any], Any]:
        self.sync += 1
        payload = msgpack.packb({0: rtype, 1: self.sync}) + msgpack.packb(
            body, use_bin_type=True, unicode_errors="surrogateescape")
        self.send(frame(payload))
        header, rbody = self.reply()
        assert header.get(1) == self.sync, f"reply sync {header.get(1)} for request {self.sync}"
        return header, rbody


def norm(v: Any) -> Any:
    """Comparable form: types count (1, 1.0, True differ), NaN equals NaN,
    map order counts."""
    if isinstance(v, ExtType):
        return ("ext", v.code, v.data)
    if isinstance(v, dict):
        return ("map", tuple((norm(k), norm(x)) for k, x in v.items()))
    if isinstance(v, (list, tuple)):
        return ("arr", tuple(norm(x) for x in v))
    if isinstance(v, float):
        return ("float", "nan" if v != v else v)
    if isinstance(v, bool):
        return ("bool", v)
    return (type(v).__name__, v)


class Reply(NamedTuple):
    """A reply as compared: code (0 or the error code), DATA (normalized
    tuples) or the error (message, MP_ERROR entries without file/line)."""

    code: int
    data: tuple[Any, ...] | None = None
    message: str | None = None
    stack: tuple[Any, ...] | None = None

    def __repr__(self) -> str:
        if self.code == 0:
            return f"OK {[denorm(t) for t in self.data or ()]!r}"
        return f"ERROR {self.code} {self.message!r}"

    @property
    def rows(self) -> list[Any]:
        return [denorm(t) for t in self.data or ()]


def denorm(v: Any) -> Any:
    tag, x = v[0], v[1:]
    if tag == "arr":
        return [denorm(e) for e in x[0]]
    if tag == "map":
        return {denorm(k): denorm(e) for k, e in x[0]}
    if tag == "ext":
        return ExtType(x[0], x[1])
    if tag == "float" and x[0] == "nan":
        return float("nan")
    return x[0]


def to_reply(header: dict[int, Any], body: Any) -> Reply:
    code = header[0]
    if code == 0:
        assert set(body) == {DATA}, f"OK body keys {sorted(body)}"
        return Reply(0, tuple(norm(t) for t in body[DATA]))
    assert code & 0x8000, f"reply code {code:#x}"
    stack = tuple(
        tuple(sorted((k, norm(v)) for k, v in e.items() if k not in (1, 2)))  # file, line: DELIBERATE['error location']
        for e in body.get(ERROR, {}).get(0, []))
    return Reply(code & 0x7FFF, None, body.get(ERROR_24), stack)


class Pair:
    """The same requests to Tarantool (t) and Styx (s)."""

    def __init__(self, tport: int, sport: int) -> None:
        self.t = Client(tport)
        self.s = Client(sport)

    def close(self) -> None:
        self.t.close()
        self.s.close()

    def both(self, rtype: int, body: Any) -> tuple[Reply, Reply]:
        return to_reply(*self.t.do(rtype, body)), to_reply(*self.s.do(rtype, body))

    def call(self, name: str, *args: Any) -> None:
        for c in (self.t, self.s):
            h, b = c.do(CALL, {FUNCTION_NAME: name, 0x21: list(args)})
            assert h[0] == 0, b

    def reset(self) -> None:
        self.call("reset")

    def select_all(self, space_id: int, iid: int = 0) -> tuple[Reply, Reply]:
        return self.both(SELECT, select_body(space_id, iid, ALL, []))


def select_body(space_id: Any, iid: Any, iterator: Any, key: Any, limit: Any = 2**32 - 1,
                offset: Any = 0) -> dict[int, Any]:
    return {SPACE_ID: space_id, INDEX_ID: iid, LIMIT: limit, OFFSET: offset, ITERATOR: iterator,
            KEY: key}


# ---------------------------------------------------------------------------
# Fixtures: the oracle once per module, a Styx per test (make_server).


@pytest.fixture(scope="module")
def oracle_port(tarantool_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with tarantool_server(tarantool_bin, "box", tmp_path_factory.mktemp("box_oracle")) as port:
        yield port


@pytest.fixture
def styx(make_server: Callable[..., Server]) -> Server:
    return make_server(app=APP)


@pytest.fixture
def pair(oracle_port: int, styx: Server) -> Iterator[Pair]:
    p = Pair(oracle_port, styx.port)
    p.reset()
    yield p
    p.close()


# ---------------------------------------------------------------------------
# Strategies: requests over that schema.

DEC_1_5 = ExtType(1, b"\x01\x01\x5c")  # MP_EXT decimal 1.5 (scale 1, BCD 15, sign +)
DEC_2 = ExtType(1, b"\x00\x2c")  # decimal 2: equal to the integer 2 in a scalar/number key
UUID = ExtType(2, bytes(range(16)))
WILD = st.sampled_from([None, True, False, -1, 0, 7, 1.5, -0.5, 1.0, "x", "", b"\x01", [1],
                        {"k": 1}, 2**63, UMAX, -2**63, DEC_1_5, UUID])


def _mostly(common: st.SearchStrategy[Any], *rare_values: Any) -> st.SearchStrategy[Any]:
    """`common`, and one of `rare_values` about once in eight draws."""
    return st.integers(0, 7).flatmap(
        lambda x: st.sampled_from(rare_values) if x == 7 else common)


# Small domains: keys collide (duplicates, updates and deletes that find their tuple).
VALUES: dict[str, st.SearchStrategy[Any]] = {
    "unsigned": _mostly(st.integers(0, 3), 2**63, UMAX),
    "integer": _mostly(st.integers(-1, 2), -2**63, UMAX),
    "string": _mostly(st.sampled_from(["a", "b", "c"]), "", "ab", "я"),
    "number": _mostly(st.sampled_from([0, 1, 2, 1.5, -0.5]), 2.0, 1e300, -1, DEC_1_5, DEC_2),
    "scalar": _mostly(st.sampled_from([0, 1, 2, 1.5, "a", "b", True]),
                      False, 2.0, "", b"a", b"", -2**63, UMAX, -1, DEC_1_5, DEC_2, UUID),
}
VALUES["any"] = st.one_of(VALUES["scalar"], WILD)
for _k in ("unsigned", "integer", "string"):
    VALUES[_k + "?"] = st.one_of(st.none(), VALUES[_k])


def rare(n: int) -> st.SearchStrategy[bool]:
    """True about once in n draws (hypothesis favours small integers: 0 is False)."""
    return st.integers(0, n - 1).map(lambda x: x == n - 1)


@st.composite
def value(draw: st.DrawFn, kind: str) -> Any:
    """A value of `kind`, now and then any value at all."""
    return draw(WILD if draw(rare(12)) else VALUES[kind])


@st.composite
def tuples(draw: st.DrawFn, sp: Sp) -> list[Any]:
    if draw(rare(8)):
        n = draw(st.integers(0, len(sp.fields) + 2))
    else:
        n = draw(st.integers(sp.required, len(sp.fields)))
    kinds = list(sp.fields) + ["any"] * 2
    return [draw(value(kinds[i])) for i in range(n)]


Seen = dict  # space id -> tuples sent so far in the sequence (keys are drawn from them)


@st.composite
def keys(draw: st.DrawFn, sp: Sp, idx: Idx, seen: Seen) -> list[Any]:
    olds = [t for t in seen.get(sp.id, ()) if len(t) > max(idx.fields)]
    if olds and draw(st.booleans()):
        old = draw(st.sampled_from(olds))
        full = [old[f] for f in idx.fields]
    else:
        full = [draw(VALUES[k]) for k in sp.kinds(idx)]
    shape = draw(st.sampled_from(["prefix", "long", "wrong", "empty"]) if draw(rare(6))
                 else st.just("full"))
    if shape == "full":
        return full
    if shape == "prefix":
        return full[:draw(st.integers(0, len(full) - 1))]
    if shape == "long":
        return full + [draw(VALUES["any"])]
    if shape == "wrong":
        return [draw(WILD) for _ in full]
    return []


def index_of(sp: Sp, draw: st.DrawFn, unique_only: bool = False) -> tuple[int, Idx | None]:
    if draw(rare(20)):
        return draw(st.sampled_from([len(sp.indexes), 9])), None  # no such index
    choices = [i for i in sp.indexes if i.unique or not unique_only]
    idx = draw(st.sampled_from(list(sp.indexes) if draw(rare(10)) else choices))
    return idx.iid, idx


def space_of(draw: st.DrawFn, among: list[Sp]) -> tuple[int, Sp]:
    sp = draw(st.sampled_from(among))
    if draw(rare(40)):
        return 600, sp  # no such space
    return sp.id, sp


OP_NAMES = "=+-&|^:!#"


@st.composite
def update_ops(draw: st.DrawFn, sp: Sp, base: int | None) -> list[Any]:
    """0-3 operations; field numbers relative to `base` (None: absent, 0-based),
    negative ones, names (format spaces), and now and then a wrong one."""
    ops = []
    b = base or 0
    kinds = list(sp.fields) + ["any"] * 2
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(OP_NAMES))
        pos = draw(st.sampled_from([2, 3, 2, 3, 4, 5, 6, 1, -1, -2, -4]))  # 1-based
        kind = kinds[pos - 1] if 0 < pos <= len(kinds) else "any"
        if sp.names and draw(rare(4)):
            field: Any = draw(st.sampled_from(list(sp.names) + ["nope"]))
            if field in sp.names:
                kind = sp.fields[sp.names.index(field)]
        elif draw(rare(30)):
            field = draw(st.sampled_from([b - 1 if b else 0, 1.5, "[2]", -9]))
        else:
            field = pos if pos < 0 else pos - 1 + b
        kind = kind.rstrip("?")
        if op in "=!":
            arg = [draw(value(kind))]
        elif op in "+-":
            arg = [draw(_mostly(st.integers(-2, 3), 1.5, -0.5, UMAX, "x", None))]
        elif op in "&|^":
            arg = [draw(_mostly(st.integers(0, 7), -1, 1.5, UMAX))]
        elif op == ":":
            arg = [draw(st.sampled_from([b, b + 1, -1, 0, 5, "1"])),
                   draw(st.sampled_from([0, 1, -1, 9])), draw(st.sampled_from(["", "Z", "zz", 5]))]
        else:
            arg = [draw(_mostly(st.sampled_from([1, 2]), 0, 9, -1))]
        if draw(rare(40)):
            arg = arg[:-1]  # wrong arity
        ops.append([op, field, *arg])
    return ops


BASES = st.sampled_from([1, 1, 0, None])
KINDS = ["insert"] * 5 + ["replace"] * 3 + ["update"] * 4 + ["upsert"] * 2 + ["delete"] * 2 + [
    "select"] * 5


@st.composite
def requests(draw: st.DrawFn, among: list[Sp], seen: Seen,
             kinds: list[str] | None = None) -> tuple[int, dict[int, Any]]:
    sid, sp = space_of(draw, among)
    kind = draw(st.sampled_from(kinds or KINDS))
    if kind in ("insert", "replace"):
        tup = draw(tuples(sp))
        seen.setdefault(sp.id, []).append(tup)
        return (INSERT if kind == "insert" else REPLACE), {SPACE_ID: sid, TUPLE: tup}
    if kind == "select":
        iid, idx = index_of(sp, draw)
        it = draw(st.sampled_from([7, 8, 9, 10, 11, 12, 13, 14, 100]) if draw(rare(8))
                  else st.integers(0, 6))
        key = draw(keys(sp, idx, seen)) if idx else [draw(VALUES["unsigned"])]
        limit = draw(_mostly(st.just(2**32 - 1), 0, 1, 2, 3))
        offset = draw(_mostly(st.just(0), 1, 2))
        return SELECT, select_body(sid, iid, it, key, limit, offset)
    if kind == "delete":
        iid, idx = index_of(sp, draw, unique_only=True)
        key = draw(keys(sp, idx, seen)) if idx else [1]
        return DELETE, {SPACE_ID: sid, INDEX_ID: iid, KEY: key}
    base = draw(BASES)
    if kind == "update":
        iid, idx = index_of(sp, draw, unique_only=True)
        key = draw(keys(sp, idx, seen)) if idx else [1]
        body = {SPACE_ID: sid, INDEX_ID: iid, KEY: key, TUPLE: draw(update_ops(sp, base))}
    else:
        tup = draw(tuples(sp))
        seen.setdefault(sp.id, []).append(tup)
        body = {SPACE_ID: sid, TUPLE: tup, OPS: draw(update_ops(sp, base))}
    if base is not None:
        body[INDEX_BASE] = base
    return (UPDATE if kind == "update" else UPSERT), body


@st.composite
def sequences(draw: st.DrawFn, max_size: int = 25, setup: int = 0,
              kinds: list[str] | None = None) -> list[tuple[int, dict[int, Any]]]:
    """Requests on one or two spaces (so that they meet each other's tuples):
    `setup` INSERTs of well-typed tuples first, then requests of `kinds`."""
    among = draw(st.lists(st.sampled_from(list(SPACES.values())), min_size=1, max_size=2,
                          unique=True))
    seen: Seen = {}
    out = []
    for _ in range(setup):
        sp = draw(st.sampled_from(among))
        tup = [draw(VALUES[k]) for k in sp.fields[:sp.required]]
        seen.setdefault(sp.id, []).append(tup)
        out.append((INSERT, {SPACE_ID: sp.id, TUPLE: tup}))
    n = draw(st.integers(1, max_size))
    return out + [draw(requests(among, seen, kinds)) for _ in range(n)]


# ---------------------------------------------------------------------------
# Styx bugs this module found. Each has a test `test_bug_...` that fails while
# it is there; the generated tests recognise a difference it explains (the
# predicate sees the request and both replies) and go on.


class Bug(NamedTuple):
    summary: str
    explains: Callable[[int, dict[int, Any], Reply, Reply], bool]


def _sel(body: dict[int, Any]) -> tuple[Any, Any, int, list[Any]]:
    return body.get(SPACE_ID), body.get(INDEX_ID, 0), body.get(ITERATOR, EQ), body.get(KEY) or []


def _nparts(sid: Any, iid: Any) -> int | None:
    sp = BY_ID.get(sid)
    for idx in sp.indexes if sp else ():
        if idx.iid == iid:
            return len(idx.fields)
    return None


def _hash_iterators(rtype: int, body: dict[int, Any], t: Reply, s: Reply) -> bool:
    sid, iid, it, key = _sel(body)
    return (rtype == SELECT and is_hash(sid, iid)
            and (it in (ALL, GT) or len(key) != _nparts(sid, iid)))


def _tree_all_with_key(rtype: int, body: dict[int, Any], t: Reply, s: Reply) -> bool:
    sid, iid, it, key = _sel(body)
    return (rtype == SELECT and it == ALL and bool(key) and not is_hash(sid, iid)
            and t.code == 0 and s.code == 0)


STYX_BUGS: dict[str, Bug] = {
    "select-key-checked-after-iterator": Bug(
        "SELECT with an iterator the index does not support (7..11 on a TREE; REQ, LT, LE, "
        "GE and 7..11 on a HASH) and a key of the wrong type or length: Tarantool validates "
        "the key first (18, 31, 136), Styx answers 'does not support requested iterator "
        "type' (112) first.",
        lambda rtype, body, t, s: (rtype == SELECT and s.code == 112
                                   and t.code in (18, 31, 136))),
    "select-all-with-key-on-tree": Bug(
        "SELECT with ITER_ALL and a non-empty key on a TREE index: Tarantool starts at the "
        "key (ALL with a key is GE in memtx's tree), Styx ignores the key and returns "
        "everything from the start.", _tree_all_with_key),
    "select-hash-iterators": Bug(
        "SELECT on a HASH index with a key that is not a full, valid key: Tarantool "
        "validates it for every iterator, ITER_ALL included (ALL then ignores it): fewer "
        "parts than the index is ER_PARTIAL_KEY (136), more is ER_KEY_PART_COUNT (31), a "
        "wrong type is 18. Styx takes any key with ALL unchecked (returns everything), and "
        "answers 19 (ER_EXACT_MATCH) for a partial or long key with EQ and GT. (Until "
        "1ec71ee it also refused ALL-with-key and GT, and returned everything for EQ with "
        "an empty key.)", _hash_iterators),
    "select-invalid-iterator": Bug(
        "SELECT with ITERATOR >= 12 (past ITER_NEIGHBOR): Tarantool checks it before "
        "anything else and answers ER_ILLEGAL_PARAMS 'Invalid iterator type'; Styx looks up "
        "the space and index first, then answers 112 for 12 and 13, and "
        "ER_ITERATOR_TYPE (72) \"Unknown iterator type '14'\" from 14 on.",
        lambda rtype, body, t, s: rtype == SELECT and _sel(body)[2] >= 12 and t.code == 1),
    "upsert-result-format": Bug(
        "UPSERT on an existing tuple whose result breaks the space format (field type, "
        "field_count, a missing required field) and changes the primary key: Tarantool "
        "checks the result against the format first and returns that error (23, 38, 39); "
        "Styx looks at the primary key first and silently keeps the old tuple (OK), or, "
        "when the result has no primary key field at all, fails with 'Internal error: "
        "IndexError' (115) and a traceback in its log.",
        lambda rtype, body, t, s: (rtype == UPSERT and t.code in (23, 38, 39)
                                   and s.code in (0, 115))),
    "uint32-request-fields": Bug(
        "SPACE_ID, INDEX_ID, LIMIT, OFFSET, ITERATOR and INDEX_BASE are uint32 in "
        "Tarantool: a larger unsigned is taken modulo 2^32 (LIMIT 2^32 is 0: no tuples; "
        "ITERATOR 2^40 is EQ; SPACE_ID 2^32 is space 0). Styx takes the whole 64-bit "
        "value (LIMIT 2^32: everything; ITERATOR 2^40: 'Unknown iterator type').",
        lambda *_: False),
    # Found in the system views (no request of the generated tests meets them).
    "vindex-index-type-spelling": Bug(
        "_vindex shows an index's type as the app spelled it in Tarantool ('TREE' from "
        "create_index(type='TREE'), 'tree' by default); Styx always shows 'tree'/'hash'.",
        lambda *_: False),
    "vspace-func-format": Bug(
        "_vspace's row for _func (296) has a 4-field format in Styx (id, owner, name, "
        "setuid) while its _func/_vfunc tuples have Tarantool's 19 fields and Tarantool's "
        "format names all 19 (language, body, ..., last_altered).", lambda *_: False),
    "missing-system-spaces": Bug(
        "System spaces Tarantool 2.6 has and Styx does not (a SELECT on them is "
        "ER_NO_SUCH_SPACE): _vinyl_deferred_delete, _sequence, _sequence_data, _vsequence "
        "(which public is granted read on), _trigger, _truncate, _fk_constraint, "
        "_ck_constraint, _func_index, _session_settings.", lambda *_: False),
}


# Every bug above is fixed now (its test_bug_* passes): none excuses a
# difference any more -- a difference is a bug or in tests/deliberate.py.
EXCUSED: set[str] = set()


def known_bug(rtype: int, body: dict[int, Any], t: Reply, s: Reply) -> str | None:
    for name, bug in STYX_BUGS.items():
        if name in EXCUSED and bug.explains(rtype, body, t, s):
            return name
    return None


# ---------------------------------------------------------------------------
# Comparing.


def multiset(r: Reply) -> Counter[Any]:
    return Counter(r.data or ())


def explain(rtype: int, body: Any, t: Reply, s: Reply, what: str = "replies differ") -> str:
    return (f"{what}\n  request   type {rtype} body {body!r}\n  tarantool {t!r}\n  styx      {s!r}"
            + (f"\n  tarantool MP_ERROR {t.stack!r}\n  styx      MP_ERROR {s.stack!r}"
               if t.code == s.code != 0 and t.message == s.message else ""))


def bug_message(name: str, diffs: list[str]) -> str:
    return f"STYX BUG '{name}': {STYX_BUGS[name].summary}\n" + "\n".join(diffs)


def same(pair: Pair, rtype: int, body: dict[int, Any], t: Reply, s: Reply) -> bool:
    """Equal, or different only as tests/deliberate.py allows."""
    if t == s:
        return True
    if t.code == s.code == MISSING_REQUEST_FIELD:  # DELIBERATE['2.11 error semantics']
        return True
    sid, iid, it, _ = _sel(body)
    if not (rtype == SELECT and t.code == s.code == 0 and is_hash(sid, iid) and it in (ALL, GT)):
        return False
    # A HASH index's order is its own (DELIBERATE['hash order']): same multiset when nothing
    # was cut off, else tuples the other server holds (as many, for ALL).
    if multiset(t) == multiset(s):
        return True
    cut = body.get(OFFSET, 0) > 0 or len(t.data or ()) >= body.get(LIMIT, 2**32 - 1) or it == GT
    if not cut:
        return False
    ft, fs = pair.select_all(sid, iid)
    assert multiset(ft) == multiset(fs), explain(SELECT, f"ALL of {sid}/{iid}", ft, fs,
                                                 "the two servers hold different tuples")
    if multiset(s) - multiset(ft) or multiset(t) - multiset(fs):
        return False
    key = body.get(KEY) or []
    if it == ALL or not key:  # GT without a key: everything, in hash order
        return len(t.data or ()) == len(s.data or ())
    # GT: what follows the key's own tuple, never the tuple itself; nothing
    # when the key is not there.
    et, es = pair.both(SELECT, select_body(sid, iid, EQ, key))
    assert et == es, explain(SELECT, select_body(sid, iid, EQ, key), et, es)
    if not et.data:
        return not s.data
    return not set(et.data) & set(s.data or ())


def check(pair: Pair, rtype: int, body: dict[int, Any], known: Counter[str] | None = None) -> Reply:
    """Send to both; fail on a difference that is neither deliberate nor, when
    `known` is given (generated tests), explained by a known Styx bug (counted)."""
    t, s = pair.both(rtype, body)
    if not same(pair, rtype, body, t, s):
        bug = known_bug(rtype, body, t, s) if known is not None else None
        assert bug is not None, explain(rtype, body, t, s)
        known[bug] += 1  # type: ignore[index]  # not None: asserted above
    return t


def check_state(pair: Pair, spaces: Any = None) -> None:
    """Every index of every space holds the same tuples on both servers."""
    for sp in spaces or SPACES.values():
        for idx in sp.indexes:
            t, s = pair.select_all(sp.id, idx.iid)
            ok = multiset(t) == multiset(s) if idx.hash else t == s
            assert ok, explain(SELECT, select_body(sp.id, idx.iid, ALL, []), t, s,
                               f"space '{sp.name}' index {idx.iid}: contents differ")


def diffs_of(pair: Pair, reqs: list[tuple[int, dict[int, Any]]]) -> list[str]:
    """Every request sent to both; the differences, described."""
    out = []
    for rtype, body in reqs:
        t, s = pair.both(rtype, body)
        if not same(pair, rtype, body, t, s):
            out.append(explain(rtype, body, t, s))
    return out


def run_all(pair: Pair, reqs: list[tuple[int, dict[int, Any]]]) -> list[Reply]:
    """Every request checked; Tarantool's replies (for sanity checks on the cases)."""
    return [check(pair, rtype, body) for rtype, body in reqs]


def load(pair: Pair, space: str, rows: list[list[Any]]) -> None:
    for row in rows:
        t, s = pair.both(INSERT, {SPACE_ID: SPACES[space].id, TUPLE: row})
        assert t == s and t.code == 0, explain(INSERT, row, t, s)


ROWS = {
    "tree": [[1, "a", 1], [2, "b", 2], [3, "b", -1], [4, "c", 2], [5, "a", 0], [7, "", UMAX]],
    "hash": [[1, "a", 1], [2, "b", 2], [3, "c", 3], [4, "a", 2], [5, "b", 1]],
    "nullable": [[1], [2, None, None], [3, 5, "x"], [4, None, "y"], [5, -1], [6, 5, None]],
    "scalar": [[1], [1.5], ["1"], [b"1"], [True], [False], [-2**63], [UMAX], [""], [0.5]],
    "multi": [["a", 1], ["a", 2], ["b", 1], ["", 0], ["a", 3, "x"], ["я", 5]],
    "fmt": [[1, -1, 1.5], [2, 1, 1, "n", 5, [1]], [3, 0, 2.5, None, None, {"k": 1}],
            [4, 2, 0, "m"]],
    "fixed": [[1, "x", None], [2, [1], {"a": 1}]],
}


def load_rows(pair: Pair) -> None:
    for name, rows in ROWS.items():
        load(pair, name, rows)


# ---------------------------------------------------------------------------
# System views: the schema as connectors read it.


def view(pair: Pair, sid: int, iterator: int = ALL, key: Any = ()) -> tuple[list[Any], list[Any]]:
    t, s = pair.both(SELECT, select_body(sid, 0, iterator, list(key)))
    assert t.code == 0 and s.code == 0, explain(SELECT, sid, t, s)
    return t.rows, s.rows


def test_vspace_user_spaces(pair: Pair) -> None:
    t, s = view(pair, VSPACE, GE, [512])
    assert [r[0] for r in t] == sorted(BY_ID)
    assert t == s, "\n".join(f"tarantool {a}\nstyx      {b}" for a, b in zip(t, s, strict=False) if a != b)


def test_vindex_user_spaces(pair: Pair) -> None:
    """Same rows, the type compared case-insensitively ('TREE' vs 'tree' is the bug
    vindex-index-type-spelling, test_bug_vindex_index_type_spelling)."""
    t, s = view(pair, VINDEX, GE, [512])
    assert len(t) == sum(len(sp.indexes) for sp in SPACES.values())
    lower = [[r[:3] + [r[3].lower()] + r[4:] for r in rows] for rows in (t, s)]
    assert lower[0] == lower[1], "\n".join(
        f"tarantool {a}\nstyx      {b}" for a, b in zip(*lower, strict=False) if a != b)


def test_bug_vindex_index_type_spelling(pair: Pair) -> None:
    t, s = view(pair, VINDEX, GE, [512])
    diffs = [f"  tarantool {a}\n  styx      {b}" for a, b in zip(t, s, strict=False) if a[3] != b[3]]
    assert not diffs, bug_message("vindex-index-type-spelling", diffs)


def _system_rows(pair: Pair, sid: int) -> tuple[dict[Any, Any], dict[Any, Any]]:
    t, s = view(pair, sid, LT, [512])
    keyf = (lambda r: r[0]) if sid == VSPACE else (lambda r: (r[0], r[1]))
    return {keyf(r): r for r in t}, {keyf(r): r for r in s}


def test_vspace_system_spaces(pair: Pair) -> None:
    """What guest (read on the universe) sees of the system spaces: the rows of
    those both have are equal (but _func's: bug vspace-func-format); Styx's only
    extra one is 2.10's _vspace_sequence (tests/deliberate.py)."""
    t, s = _system_rows(pair, VSPACE)
    assert set(s) - set(t) == {341}
    shared = sorted(set(t) & set(s) - {296})
    assert len(shared) >= 10
    diffs = [f"tarantool {t[k]}\nstyx      {s[k]}" for k in shared if t[k] != s[k]]
    assert not diffs, "\n".join(diffs)


def test_vindex_system_spaces(pair: Pair) -> None:
    t, s = _system_rows(pair, VINDEX)
    spaces = {k[0] for k in t} & {k[0] for k in s}
    tk = {k for k in t if k[0] in spaces}
    sk = {k for k in s if k[0] in spaces}
    assert tk == sk
    diffs = [f"tarantool {t[k]}\nstyx      {s[k]}" for k in sorted(tk) if t[k] != s[k]]
    assert not diffs, "\n".join(diffs)


def test_bug_vspace_func_format(pair: Pair) -> None:
    t, s = _system_rows(pair, VSPACE)
    assert t[296] == s[296], bug_message("vspace-func-format", [
        f"  tarantool {t[296]}\n  styx      {s[296]}"])


# Tarantool 2.6's system spaces Styx does not have (bug missing-system-spaces).
_system_rows_missing = (257, 284, 285, 286, 328, 330, 356, 364, 372, 380)


def test_bug_missing_system_spaces(pair: Pair) -> None:
    t, s = _system_rows(pair, VSPACE)
    assert set(t) - set(s) <= set(_system_rows_missing)
    missing = [f"  {t[k][:4]}" for k in sorted(set(t) - set(s))]
    assert not missing, bug_message("missing-system-spaces", ["  only in Tarantool:", *missing])


def logged_in_pair(oracle_port: int, styx: Server, user: str, password: str) -> Pair:
    p = Pair(oracle_port, styx.port)
    for c in (p.t, p.s):
        h, b = c.auth(user, password)
        assert h[0] == 0, b
    return p


def test_access_checks_for_a_user_without_grants(oracle_port: int, styx: Server) -> None:
    """'limited' (default grants only): every data request on a user space or a
    system space is refused with the same AccessDeniedError (code, message, fields)."""
    p = logged_in_pair(oracle_port, styx, "limited", "secret")
    try:
        run_all(p, [
            (SELECT, select_body(512, 0, ALL, [])), (SELECT, select_body(512, 7, ALL, [])),
            (SELECT, select_body(512, 0, EQ, ["x"])), (SELECT, select_body(600, 0, ALL, [])),
            (SELECT, select_body(276, 0, ALL, [], 2)), (SELECT, select_body(280, 0, ALL, [])),
            ins(512, [1, "a", 1]), rep(512, [1, "a", 1]), upd(512, 0, [1], []), dele(512, 0, [1]),
            ups(512, [1, "a", 1], []), ins(281, [999, 1, "x", "memtx", 0, {}, []]),
            ins(280, [999, 1, "x", "memtx", 0, {}, []]), dele(281, 0, [512]),
            (CALL, {FUNCTION_NAME: "reset", 0x21: []}),
        ])
    finally:
        p.close()


def test_views_for_a_user_without_grants(oracle_port: int, styx: Server) -> None:
    """What 'limited' (default grants: session+usage on the universe, role public)
    sees in _vspace, _vindex, _vuser, _vpriv: only what it has a privilege on or
    owns (public's views, itself, public, its own grants, 'alter' on itself
    included). The system spaces Styx lacks (bug missing-system-spaces) are left
    out. Styx before 1ec71ee showed every row of every view here, password hashes
    in _vuser included (can_see() counted session/usage on the universe as a
    right on every object)."""
    missing = set(_system_rows_missing)
    p = logged_in_pair(oracle_port, styx, "limited", "secret")
    try:
        diffs = []
        for sid, keyf in ((VSPACE, lambda r: (r[0], r[2])), (VINDEX, lambda r: (r[0], r[1], r[2])),
                          (305, lambda r: (r[0], r[2], sorted(r[4]))), (313, lambda r: tuple(r))):
            t, s = p.both(SELECT, select_body(sid, 0, ALL, []))
            assert t.code == 0 and s.code == 0, explain(SELECT, sid, t, s)
            skip = missing if sid in (VSPACE, VINDEX) else set()
            tk = [keyf(r) for r in t.rows if r[0] not in skip]
            sk = [keyf(r) for r in s.rows if not (sid in (VSPACE, VINDEX) and r[0] == 341)]
            if tk != sk:
                diffs.append(f"  space {sid}: tarantool shows {tk}\n    styx shows {sk}")
        assert not diffs, "\n".join(diffs)
    finally:
        p.close()


# ---------------------------------------------------------------------------
# SELECT, hand-picked: every iterator, every index, keys of every shape.


def key_shapes(sp: Sp, idx: Idx) -> list[list[Any]]:
    """Keys present and absent, prefixes, empty, too long, wrongly typed, nil."""
    rows = [r for r in ROWS[sp.name] if len(r) > max(idx.fields)]
    present = [[r[f] for f in idx.fields] for r in rows[:3]]
    out = present + [[], present[0] + [1], [[1]], ["zz"], [-5], [1.5], [None]]
    if len(idx.fields) > 1:
        out += [p[:1] for p in present[:2]] + [["zz", 0], [present[0][0], -1]]
    else:
        out += [["a"], [2], [3], [0], [UMAX], ["b"]]
    return out


def select_matrix(hash_indexes: bool) -> list[tuple[int, dict[int, Any]]]:
    reqs = []
    for sp in SPACES.values():
        for idx in sp.indexes:
            if idx.hash != hash_indexes:
                continue
            for key in key_shapes(sp, idx):
                for it in range(7):
                    for limit, offset in ((2**32 - 1, 0), (2, 1), (0, 0), (1, 5)):
                        reqs.append((SELECT, select_body(sp.id, idx.iid, it, key, limit, offset)))
    return reqs


def test_select_tree(pair: Pair) -> None:
    """Every TREE index, iterators EQ..GT, keys of every shape, limits and offsets.
    ALL with a key is bug select-all-with-key-on-tree (tested on its own)."""
    load_rows(pair)
    known: Counter[str] = Counter()
    for rtype, body in select_matrix(hash_indexes=False):
        check(pair, rtype, body, known)
    assert set(known) <= {"select-all-with-key-on-tree"}, known


def test_select_hash(pair: Pair) -> None:
    """HASH indexes: EQ with a full key, ALL without one (as multisets), the
    iterators a hash does not support with a full key. The rest (ALL with a key,
    GT, partial keys) is bug select-hash-iterators."""
    load_rows(pair)
    known: Counter[str] = Counter()
    for rtype, body in select_matrix(hash_indexes=True):
        check(pair, rtype, body, known)
    assert set(known) <= {"select-hash-iterators", "select-key-checked-after-iterator"}, known
    sp = SPACES["hash"]
    for iid, key in ((0, [1]), (0, [9]), (1, ["a", 1]), (1, ["a", 2]), (1, ["q", 1])):
        t = check(pair, SELECT, select_body(sp.id, iid, EQ, key))
        assert t.code == 0
    for limit, offset in ((2**32 - 1, 0), (2, 0), (3, 2), (9, 9)):
        check(pair, SELECT, select_body(sp.id, 0, ALL, [], limit, offset))


def test_select_errors(pair: Pair) -> None:
    load_rows(pair)
    run_all(pair, [
        (SELECT, select_body(600, 0, EQ, [1])),                  # no such space
        (SELECT, select_body(512, 3, EQ, [1])),                  # no such index
        (SELECT, select_body(512, 200, ALL, [])),
        (SELECT, select_body(512, 0, EQ, ["1"])),                # key type
        (SELECT, select_body(512, 0, EQ, [-1])),
        (SELECT, select_body(512, 0, EQ, [1.0])),
        (SELECT, select_body(512, 0, EQ, [None])),
        (SELECT, select_body(512, 2, GE, ["a", 1])),
        (SELECT, select_body(512, 2, GE, [1, 2])),
        (SELECT, select_body(512, 0, EQ, [1, 2])),               # key part count
        (SELECT, select_body(518, 0, LT, ["a", 1, 2])),
        (SELECT, select_body(514, 1, EQ, [None])),               # nil in a nullable part
        (SELECT, select_body(514, 2, GE, [None])),
        (SELECT, select_body(514, 0, EQ, [None])),
        (SELECT, select_body(512, 0, 7, [1])),                   # bitset iterators on a TREE
        (SELECT, select_body(512, 1, 11, ["a"])),
        (SELECT, select_body(513, 0, 8, [1])),
        (SELECT, select_body(513, 0, LT, [1])),                  # not a hash's iterators
        (SELECT, select_body(513, 1, REQ, ["a", 1])),
        (SELECT, select_body(513, 0, EQ, ["x"])),                # hash key type
        (SELECT, {SPACE_ID: 512, INDEX_ID: 0, ITERATOR: ALL, KEY: []}),   # no LIMIT: all
        (SELECT, {SPACE_ID: 512, LIMIT: 10, KEY: [1]}),          # index and iterator default
        (SELECT, {SPACE_ID: 512, LIMIT: 10}),                    # no KEY
        (SELECT, {INDEX_ID: 0, LIMIT: 10, KEY: []}),             # no SPACE_ID
        (SELECT, select_body(512, 0, ALL, 5)),                   # key not an array
        (SELECT, select_body("512", 0, ALL, [])),
        (SELECT, select_body(281, 0, EQ, ["x"])),                # system views: key types
        (SELECT, select_body(281, 2, EQ, ["tree"])),
        (SELECT, select_body(281, 0, EQ, [512, 1])),
        (SELECT, select_body(289, 0, EQ, [281])),               # (user spaces' rows: a bug)
        (SELECT, select_body(289, 0, GT, [281, 1], 1)),
        (SELECT, select_body(289, 2, EQ, [281, "name"])),
        (SELECT, select_body(289, 0, REQ, [289])),
    ])


def test_bug_select_all_with_key_on_tree(pair: Pair) -> None:
    load_rows(pair)
    diffs = diffs_of(pair, [(SELECT, select_body(512, 0, ALL, [2])),
                            (SELECT, select_body(512, 1, ALL, ["b"])),
                            (SELECT, select_body(518, 0, ALL, ["b"])),
                            (SELECT, select_body(514, 1, ALL, [5], 2))])
    assert not diffs, bug_message("select-all-with-key-on-tree", diffs)


def test_bug_select_hash_iterators(pair: Pair) -> None:
    load_rows(pair)
    diffs = diffs_of(pair, [(SELECT, select_body(513, 1, EQ, ["a"])),    # ER_PARTIAL_KEY
                            (SELECT, select_body(513, 1, GT, ["a"])),
                            (SELECT, select_body(513, 1, ALL, ["a"])),
                            (SELECT, select_body(513, 0, EQ, [1, 2])),    # ER_KEY_PART_COUNT
                            (SELECT, select_body(513, 0, ALL, [1, 2])),
                            (SELECT, select_body(513, 0, ALL, ["x"])),    # key type
                            (SELECT, select_body(513, 0, ALL, [1])),      # (fixed in 1ec71ee)
                            (SELECT, select_body(513, 0, GT, [])),
                            (SELECT, select_body(513, 1, GT, ["a", 1])),
                            (SELECT, select_body(513, 0, EQ, [])),
                            (SELECT, select_body(513, 0, GE, []))])
    assert not diffs, bug_message("select-hash-iterators", diffs)


def test_bug_select_invalid_iterator(pair: Pair) -> None:
    diffs = diffs_of(pair, [(SELECT, select_body(512, 0, 12, [])),
                            (SELECT, select_body(512, 0, 13, [1])),
                            (SELECT, select_body(512, 0, 14, [])),
                            (SELECT, select_body(512, 9, 100, [])),
                            (SELECT, select_body(600, 0, 12, []))])
    assert not diffs, bug_message("select-invalid-iterator", diffs)


def test_bug_select_key_checked_after_iterator(pair: Pair) -> None:
    diffs = diffs_of(pair, [(SELECT, select_body(512, 1, 7, [2])),
                            (SELECT, select_body(512, 0, 8, [1, 2])),
                            (SELECT, select_body(513, 1, 9, ["a"]))])
    assert not diffs, bug_message("select-key-checked-after-iterator", diffs)


# ---------------------------------------------------------------------------
# INSERT, REPLACE, DELETE, UPDATE, UPSERT, hand-picked (in this order, on empty
# spaces: each case sees what the previous ones left).


def ins(sid: int, tup: Any) -> tuple[int, dict[int, Any]]:
    return INSERT, {SPACE_ID: sid, TUPLE: tup}


def rep(sid: int, tup: Any) -> tuple[int, dict[int, Any]]:
    return REPLACE, {SPACE_ID: sid, TUPLE: tup}


def dele(sid: int, iid: int, key: Any) -> tuple[int, dict[int, Any]]:
    return DELETE, {SPACE_ID: sid, INDEX_ID: iid, KEY: key}


def upd(sid: int, iid: int, key: Any, ops: Any, base: int | None = 1) -> tuple[int, dict[int, Any]]:
    body = {SPACE_ID: sid, INDEX_ID: iid, KEY: key, TUPLE: ops}
    if base is not None:
        body[INDEX_BASE] = base
    return UPDATE, body


def ups(sid: int, tup: Any, ops: Any, base: int | None = 1) -> tuple[int, dict[int, Any]]:
    body = {SPACE_ID: sid, TUPLE: tup, OPS: ops}
    if base is not None:
        body[INDEX_BASE] = base
    return UPSERT, body


def test_insert_replace_delete(pair: Pair) -> None:
    run_all(pair, [
        ins(512, [1, "a", 1]), ins(512, [1, "b", 2]),              # duplicate primary key
        ins(512, [2, "a", 1]),                                     # duplicate in by_ns
        ins(512, [2, "a", 2]), ins(512, [3, "c"]), ins(512, [3, 5, 1]), ins(512, [-1, "c", 1]),
        ins(512, [3.0, "c", 1]), ins(512, [3, "c", 1.0]), ins(512, [3, "c", 2**63]),
        ins(512, [3, "c", -2**63, {"x": [1]}, None]), ins(512, []), ins(512, [None, "c", 1]),
        ins(512, [UMAX, "c", UMAX]), ins(512, [4, b"c", 1]), ins(512, [4, "c", True]),
        ins(600, [1]), ins(512, 5), ins(512, {"a": 1}),
        (INSERT, {TUPLE: [1]}), (INSERT, {SPACE_ID: 512}),
        rep(512, [1, "z", 2]), rep(512, [1, "a", 2]),               # by_ns taken by [2, 'a', 2]
        rep(512, [9, "a", 2]), rep(512, [2, "a", 5]), rep(512, [7, 7]),
        ins(514, [1]), ins(514, [2, None, None]), ins(514, [3, None, "x"]), ins(514, [4, 1, "x"]),
        ins(514, [5, "s"]), ins(514, [6, 1, None]), ins(514, [7, None, None, None]),
        ins(514, [8, 1, "y", 1, 2]), ins(514, [None]), rep(514, [3, 2, "x"]),
        ins(515, [1]), ins(515, [1.0]), ins(515, [True]), ins(515, ["1"]), ins(515, [b"1"]),
        ins(515, [None]), ins(515, [[1]]), ins(515, [{}]), ins(515, [1.5]), ins(515, [-0.0]),
        ins(515, [0]), ins(515, [2**63]), ins(515, [2.0]), ins(515, [2]), ins(515, [DEC_2]),
        ins(515, [DEC_1_5]), ins(515, [UUID]), ins(515, [ExtType(3, b"")]), ins(516, [20, 1, DEC_2]),
        ins(516, [21, 1, UUID]), ins(512, [22, "a", DEC_2]),
        ins(517, [1, 2]), ins(517, [1, 2, 3]), ins(517, [2, 2, 3, 4]), ins(517, []),
        rep(517, [1, None, None]), rep(517, [1]),
        ins(516, [1, -1, 1.5]), ins(516, [2, 1, 1, "n", 5, [1]]), ins(516, [3, 1, "x"]),
        ins(516, [4, 1, 1, 5]), ins(516, [5, 1, 1, None, -1]), ins(516, [6, 1.5, 1]),
        ins(516, [7, 1, 1, None, None, None, "more"]), ins(516, [8, 1]), ins(516, [9, 1, 1e300]),
        ins(518, ["a", 1]), ins(518, ["a", 2]), ins(518, ["a", 1]), ins(518, [1, "a"]),
        ins(518, ["a"]), ins(518, ["b", -1]),
        ins(513, [1, "a", 1]), ins(513, [2, "a", 1]), ins(513, [2, "a", 2]), ins(513, [3, "a"]),
        ins(513, ["x", "a", 3]), rep(513, [1, "a", 2]), rep(513, [1, "b", 2]),
        dele(512, 0, [1]), dele(512, 0, [1]), dele(512, 2, [2, "a"]), dele(512, 2, [5, "a"]),
        dele(512, 1, ["a"]), dele(512, 2, [2]), dele(512, 0, ["x"]), dele(512, 0, []),
        dele(512, 0, [1, 2]), dele(512, 5, [1]), dele(600, 0, [1]), dele(513, 1, ["b", 2]),
        dele(513, 1, ["a"]), dele(513, 0, [2]), dele(514, 2, ["x"]), dele(514, 2, [None]),
        dele(514, 1, [1]), dele(515, 0, [1.0]), dele(515, 0, [True]), dele(518, 0, ["a", 2]),
        dele(518, 0, ["a"]), dele(517, 0, [1]), (DELETE, {SPACE_ID: 512, KEY: [3]}),
        (DELETE, {SPACE_ID: 512, INDEX_ID: 0}),
    ])
    check_state(pair)


UPDATE_CASES = [  # on fmt's tuple [1, 10, 1.5, "name", 6, [1, 2]] (id cnt price name bits extra)
    [["=", 2, 11]], [["+", 2, 5]], [["-", 3, 1]], [["+", 3, 0.25]], [["&", 5, 3]], [["|", 5, 8]],
    [["^", 5, 2]], [[":", 4, 1, 1, "N"]], [[":", 4, -1, 0, "!"]], [["!", 7, "x"]], [["!", 2, 1]],
    [["#", 6, 1]], [["#", 4, 3]], [["#", 3, 1]], [["=", 1, 2]], [["=", 1, 1]], [["+", 1, 1]],
    [["=", 2, "x"]], [["=", 3, "x"]], [["=", 4, 5]], [["=", 4, None]], [["=", 5, -1]],
    [["=", -1, 0]], [["+", -5, 1]], [["=", -7, 0]], [["#", -1, 1]], [["!", -1, 0]],
    [["=", "cnt", 3]], [["+", "price", 1]], [["=", "name", "x"]], [["=", "nope", 1]],
    [["&", "bits", 1], ["|", "bits", 1]], [["=", "extra", {"a": 1}]], [["=", "[6][1]", 9]],
    [["+", 2, 1], ["+", 2, 1]], [["=", 7, 1], ["=", 8, 2]], [["=", 9, 1]], [["+", 2, "x"]],
    [["?", 2, 1]], [["=", 2]], [], [["+", 2, UMAX]], [["-", 2, UMAX]], [["#", 2, 0]],
    [[":", 2, 1, 1, "x"]], [["=", 0, 1]], [["=", 1.5, 1]],
]


def test_update(pair: Pair) -> None:
    """Each case on a fresh copy of the tuple, with INDEX_BASE 1 (net.box), 0 and
    absent (tarantool-python: 0-based); field numbers sent relative to it."""
    row = [1, 10, 1.5, "name", 6, [1, 2]]
    codes: Counter[int] = Counter()
    for base in (1, 0, None):
        for ops in UPDATE_CASES:
            shifted = [[op[0], op[1] - 1 + (base or 0) if isinstance(op[1], int) and op[1] > 0
                        else op[1], *op[2:]] if isinstance(op, list) and len(op) > 1 else op
                       for op in ops]
            codes[run_all(pair, [rep(516, row), upd(516, 0, [1], shifted, base)])[1].code] += 1
    assert codes[0] > len(UPDATE_CASES) and len(codes) > 8, codes  # most applied, many errors
    run_all(pair, [
        rep(512, [1, "a", 1]), rep(512, [2, "b", 2]),
        upd(512, 0, [1], [["=", 2, "b"]]), upd(512, 0, [1], [["=", 3, 2]]),   # by_ns taken
        upd(512, 0, [1], [["=", 1, 2]]), upd(512, 0, [1], [["=", 1, 3]]),     # primary key
        upd(512, 2, [2, "b"], [["+", 3, 1]]), upd(512, 2, [2], [["+", 3, 1]]),
        upd(512, 1, ["b"], [["+", 3, 1]]), upd(512, 0, [9], [["+", 3, 1]]),
        upd(512, 0, [9], [["?"]]), upd(512, 0, [1], 5), upd(512, 0, ["x"], []),
        upd(512, 0, [], []), upd(512, 0, [1, 2], []), upd(512, 4, [1], []), upd(600, 0, [1], []),
        upd(512, 0, [1], [["=", "s", "q"], ["-", "n", 10]]), upd(512, 0, [1], [["#", 3, 1]]),
        upd(512, 0, [1], [["=", 4, [1]], ["=", 5, 5]], None), upd(512, 0, [1], [["#", 3, 1]], 0),
        upd(513, 1, ["b", 2], [["=", 2, "c"]]), upd(513, 0, [2], [["=", 4, 1]]),
        upd(514, 2, ["x"], []), rep(514, [1, 1, "x"]), upd(514, 2, ["x"], [["=", 3, None]]),
        upd(514, 0, [1], [["=", 2, None], ["=", 3, "y"]]), upd(514, 0, [1], [["#", 2, 1]]),
        rep(518, ["a", 1, "x"]), upd(518, 0, ["a", 1], [[":", 3, 1, 0, "y"]]),
        upd(518, 0, ["a", 1], [["=", 2, 2]]), rep(517, [1, 2, 3]), upd(517, 0, [1], [["!", 2, 0]]),
        upd(517, 0, [1], [["#", 3, 1]]), upd(517, 0, [1], [["=", 3, None]]),
        rep(515, [1]), rep(515, ["a"]), upd(515, 0, [1.0], [["=", 2, "x"]]),
        upd(515, 0, ["a"], [["=", 1, 1]]), upd(515, 0, ["a"], [["=", 1, "a"]]),
    ])
    check_state(pair)


def test_upsert(pair: Pair) -> None:
    run_all(pair, [
        ups(512, [1, "a", 1], [["+", 3, 1]]), ups(512, [1, "a", 1], [["+", 3, 1]]),
        ups(512, [1, "zz", 5], [["=", 2, "b"], ["+", 3, 10]]), ups(512, [1, "a", 1], [["+", 3, "x"]]),
        ups(512, [2, "a", 1], [["?", 2, 1]]), ups(512, [2, "a", 1], 5), ups(512, [2], []),
        ups(512, [2, "b", 1], [["=", 9, 1]]), ups(512, [2, "b", 1], [["+", 2, 1], ["+", 3, 1]]),
        ups(512, [1, "a", 1], [["=", 3, 12]]),                   # by_ns (12, 'b') is [2, 'b', 12]
        ups(512, [1, "a", 1], [["=", 1, 1], ["+", 3, 1]]),
        ups(512, [1, "a", 1], [["=", "n", 0], ["=", "s", "q"]], None),
        ups(512, [1, "a", 1], [["+", 2, 1]], 0), ups(516, [1, 1, 1], [["+", "cnt", 2]]),
        ups(516, [1, 1, 1], [["+", "cnt", 2], ["=", "nope", 1]]), ups(516, [1, 1, 1], [["=", 6, 1]]),
        ups(513, [1, "a", 1], [["=", 3, 5]]), ups(513, [2, "a", 5], []),  # h2 taken by [1, 'a', 5]
        ups(513, [1, "a", 1], [["=", 2, "b"]]), ups(514, [1, None, "x"], []),
        ups(514, [2, None, "x"], []), ups(514, [1], [["=", 3, None]]), ups(518, ["a", 1], [["=", 3, 1]]),
        ups(518, ["a", 1], [["=", 3, 2]]), ups(515, [1], [["=", 2, 0]]), ups(515, [1.0], [["+", 2, 1]]),
        ups(600, [1], []), (UPSERT, {SPACE_ID: 512, TUPLE: [1, "a", 1]}),
    ])
    check_state(pair)


def test_bug_upsert_result_format(pair: Pair) -> None:
    run_all(pair, [ins(517, [3, True, 1]), ins(512, [1, "a", 1])])
    diffs = diffs_of(pair, [ups(517, [3, True, 1], [["!", 1, 1.5]]),    # 4 fields, key 1.5
                            ups(517, [3, True, 1], [["=", 1, "x"]]),    # key 'x'
                            ups(512, [1, "a", 1], [["#", 1, 1]])])      # ['a', 1]
    assert not diffs, bug_message("upsert-result-format", diffs)


def test_bug_upsert_deleting_the_key_field(pair: Pair) -> None:
    """Part of upsert-result-format: the result has no field 1 at all, and Styx
    fails with an internal error (IndexError in Space.upsert)."""
    run_all(pair, [ins(514, [7, 1])])
    diffs = diffs_of(pair, [ups(514, [7], [["#", 1, 2]])])
    assert not diffs, bug_message("upsert-result-format", diffs)


# ---------------------------------------------------------------------------
# Generated sequences.

def generated(max_examples: int) -> settings:
    return settings(max_examples=max_examples, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow, HealthCheck.data_too_large])


def run_sequence(pair: Pair, seq: list[tuple[int, dict[int, Any]]]) -> None:
    pair.reset()
    known: Counter[str] = Counter()
    names = {SELECT: "SELECT", INSERT: "INSERT", REPLACE: "REPLACE", UPDATE: "UPDATE",
             DELETE: "DELETE", UPSERT: "UPSERT"}
    for rtype, body in seq:
        t = check(pair, rtype, body, known)
        if rtype in (SELECT, UPDATE, DELETE) and t.data:
            event(f"{names[rtype]} returned tuples")
        elif t.code:
            event(f"{names[rtype]} error {t.code}")
    for name in known:
        event(f"known Styx bug met: {name}")
    check_state(pair, {BY_ID[b[SPACE_ID]] for _, b in seq if b.get(SPACE_ID) in BY_ID})


@generated(500)
@given(seq=sequences(max_size=25))
def test_generated_sequences(pair: Pair, seq: list[tuple[int, dict[int, Any]]]) -> None:
    """Any request on one or two spaces, then the whole content compared."""
    run_sequence(pair, seq)


@generated(500)
@given(seq=sequences(max_size=6, setup=5, kinds=["update"] * 4 + ["upsert"] * 2 + ["select"]))
def test_generated_updates(pair: Pair, seq: list[tuple[int, dict[int, Any]]]) -> None:
    """UPDATE and UPSERT on tuples that are there: ops by number (INDEX_BASE 1,
    0, absent), negative numbers, names, every op."""
    run_sequence(pair, seq)


@generated(500)
@given(seq=sequences(max_size=10, setup=8, kinds=["select"] * 5 + ["delete"]))
def test_generated_selects(pair: Pair, seq: list[tuple[int, dict[int, Any]]]) -> None:
    """SELECT with every iterator number, keys of every shape, limit, offset."""
    run_sequence(pair, seq)


def test_bug_uint32_request_fields(pair: Pair) -> None:
    load_rows(pair)
    diffs = diffs_of(pair, [(SELECT, select_body(512, 0, ALL, [], 2**32)),
                            (SELECT, select_body(512, 0, ALL, [], 2**32 + 1)),
                            (SELECT, select_body(512, 0, ALL, [], 10, 2**40)),
                            (SELECT, select_body(512, 0, 2**40 + ALL, [])),
                            (SELECT, select_body(512, 2**32, EQ, [1])),
                            (SELECT, select_body(2**32 + 512, 0, EQ, [1])),
                            upd(512, 0, [1], [["=", 2, "z"]], 2**40 + 1)])
    assert not diffs, bug_message("uint32-request-fields", diffs)
