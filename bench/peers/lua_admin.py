"""A stand-in for Tarantool's Lua admin console, for connector test suites
that set their server up by sending Lua text to it (tarantool-python's
`srv.admin("...")`).

Styx has no Lua. This reads the small subset of Lua those setup snippets are
written in and turns it into IPROTO CALLs of the same Lua names, which Styx
serves with its builtins (`box.schema.space.create`, `box.space.X:create_index`,
`box.schema.user.grant`, ...):

- statements: calls, `return`, `local`/global assignment, `do ... end`,
  `if NAME then ... end`, `function NAME() ... end`, `local function ...`;
- expressions: nil, booleans, numbers, strings, table constructors,
  variables, indexing, calls and method calls;
- `require(...)` and `pcall(require, ...)` give a placeholder module
  (`pcall(require, 'datetime')` is false: Styx cannot hold datetime values);
  `decimal.new(...)` and `uuid.fromstr(...)` build the values they name;
  globals live on from one snippet to the next, as in one console;
  `pcall(function() ... end)` runs the body and catches its errors;
- a Lua function the snippet defines (`function f() ... end`, or one put in
  _G with rawset) is handed to the app: one that only returns literals as
  `peer_define_values(name, values)`, any other as `peer_define(name,
  source)`, for which the app must hold a Python twin, else the snippet is
  unsupported.

Anything else (operators, loops, triggers, changing `box.info`, sockets,
`decimal.new(...)` values, ...) raises LuaConsoleUnsupported: the test needs
real Lua. Results are what the console's YAML would give: a list of the
returned values, or [{'error': message}] when a call fails.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class LuaConsoleUnsupported(RuntimeError):
    pass


def unsupported(what: str, src: str = "") -> LuaConsoleUnsupported:
    return LuaConsoleUnsupported(f"Styx has no Lua console: {what}" + (f" in {src.strip()[:200]!r}" if src else ""))


class LuaError(Exception):
    """An error raised by a call: the console prints it."""


def _decimal(v: Any) -> Any:
    import decimal
    return decimal.Decimal(str(v))


def _uuid(v: Any) -> Any:
    import uuid
    return uuid.UUID(str(v))


# Lua values the snippets build, which go to Styx as MessagePack extensions
# (decimal: 1, uuid: 2), as Tarantool's console would store them.
CONSTRUCTORS: dict[str, Callable[..., Any]] = {"decimal.new": _decimal, "uuid.fromstr": _uuid}
# Lua modules whose values Styx cannot hold: `pcall(require, m)` is false,
# as on a Tarantool without them.
MISSING_MODULES = {"datetime": "Styx has no datetime/interval (MP_EXT 4, 6)"}


# -- tokens -------------------------------------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<comment>--\[(?P<eq>=*)\[.*?\](?P=eq)\]|--[^\n]*)
  | (?P<long>\[(?P<eq2>=*)\[.*?\](?P=eq2)\])
  | (?P<str>"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*')
  | (?P<num>0[xX][0-9a-fA-F]+|\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>\.\.\.|\.\.|==|~=|<=|>=|[-+*/%^#<>=(){}\[\];:,.])
""", re.S | re.X)

KEYWORDS = {"and", "break", "do", "else", "elseif", "end", "false", "for", "function", "if", "in",
            "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while"}


@dataclass
class Tok:
    kind: str  # name, kw, str, num, op, eof
    value: Any
    pos: int


def _unescape(body: str) -> str:
    out = bytearray()
    i = 0
    b = body.encode("utf-8")
    while i < len(b):
        c = b[i]
        if c != 0x5C:
            out.append(c)
            i += 1
            continue
        n = chr(b[i + 1])
        i += 2
        if n in "abfnrtv":
            out += {"a": b"\a", "b": b"\b", "f": b"\f", "n": b"\n", "r": b"\r", "t": b"\t", "v": b"\v"}[n]
        elif n == "x":
            out.append(int(b[i:i + 2], 16))
            i += 2
        elif n.isdigit():
            j = i - 1
            while i < len(b) and i - j < 3 and chr(b[i]).isdigit():
                i += 1
            out.append(int(b[j:i]))
        elif n == "\n":
            out += b"\n"
        else:
            out += n.encode()
    return out.decode("utf-8", "surrogateescape")


def tokenize(src: str) -> list[Tok]:
    toks, pos = [], 0
    while pos < len(src):
        m = _TOKEN.match(src, pos)
        if m is None:
            raise unsupported(f"cannot read {src[pos:pos + 20]!r}", src)
        kind = m.lastgroup
        text = m.group(0)
        if kind in ("str",):
            toks.append(Tok("str", _unescape(text[1:-1]), pos))
        elif kind == "long":
            body = text[2 + len(m.group("eq2")):-(2 + len(m.group("eq2")))]
            toks.append(Tok("str", body[1:] if body.startswith("\n") else body, pos))
        elif kind == "num":
            v: Any = int(text, 16) if text[:2].lower() == "0x" else (
                float(text) if any(c in text for c in ".eE") else int(text))
            toks.append(Tok("num", v, pos))
        elif kind == "name":
            toks.append(Tok("kw" if text in KEYWORDS else "name", text, pos))
        elif kind == "op":
            toks.append(Tok("op", text, pos))
        pos = m.end()
    toks.append(Tok("eof", None, len(src)))
    return toks


# -- values ------------------------------------------------------------------------------------


@dataclass
class LuaFunc:
    name: str | None
    source: str  # the whole `function ... end` text
    body: list[Tok] = field(default_factory=list, repr=False)


@dataclass
class Module:
    name: str


@dataclass
class BoxPath:
    """box, box.schema, box.space.X, ...: a Lua name not yet called."""
    path: str


@dataclass
class Ref:
    """What box.schema.space.create / :create_index returned: a space or an
    index, by its Lua path, with the description Styx sent back."""
    path: str
    desc: Any


class Table(dict):
    """A Lua table: positional entries under 1..n, others by key."""

    def to_py(self) -> Any:
        n = len(self)
        if all(i in self for i in range(1, n + 1)):
            return [to_py(self[i]) for i in range(1, n + 1)]
        return {k: to_py(v) for k, v in self.items()}


def to_py(v: Any) -> Any:
    if isinstance(v, Table):
        return v.to_py()
    if isinstance(v, Ref):
        return v.desc
    if isinstance(v, (LuaFunc, Module, BoxPath)):
        raise unsupported(f"cannot send a {type(v).__name__} over IPROTO")
    return v


# -- the interpreter ---------------------------------------------------------------------------

class Interp:
    def __init__(self, call: Callable[[str, list[Any]], list[Any]], src: str,
                 env: dict[str, Any] | None = None) -> None:
        self.call = call  # (Lua name, args) -> values, raising LuaError
        self.src = src
        # Globals live on between snippets, as in one Tarantool's console.
        self.env: dict[str, Any] = env if env is not None else {}
        self.env.setdefault("box", BoxPath("box"))
        self.env.setdefault("_G", Module("_G"))

    # token cursor
    def run(self, toks: list[Tok]) -> list[Any] | None:
        self.t, self.i = toks, 0
        return self.block(("eof",))

    def peek(self, k: int = 0) -> Tok:
        return self.t[min(self.i + k, len(self.t) - 1)]

    def next(self) -> Tok:
        tok = self.peek()
        self.i += 1
        return tok

    def accept(self, value: str) -> bool:
        tok = self.peek()
        if tok.kind in ("op", "kw") and tok.value == value:
            self.i += 1
            return True
        return False

    def expect(self, value: str) -> None:
        if not self.accept(value):
            raise unsupported(f"expected {value!r} at {self.src[self.peek().pos:self.peek().pos + 30]!r}",
                              self.src)

    def name(self) -> str:
        tok = self.next()
        if tok.kind != "name":
            raise unsupported(f"expected a name, got {tok.value!r}", self.src)
        return tok.value

    def at_end(self, enders: tuple[str, ...]) -> bool:
        tok = self.peek()
        return tok.kind == "eof" or (tok.kind == "kw" and tok.value in enders)

    # statements
    def block(self, enders: tuple[str, ...]) -> list[Any] | None:
        while not self.at_end(enders):
            if self.accept(";"):
                continue
            if self.accept("return"):
                vals = [] if self.at_end(enders) or self.peek().value == ";" else self.explist()
                self.accept(";")
                return vals
            ret = self.statement()
            if ret is not None:
                return ret
        return None

    def skip_block(self) -> None:
        """Skip to the `end` closing the block just opened; return nothing."""
        depth = 1
        while depth:
            tok = self.next()
            if tok.kind == "eof":
                raise unsupported("unterminated block", self.src)
            if tok.kind == "kw" and tok.value in ("function", "do", "if"):
                depth += 1  # while/for bodies open with their `do`
            elif tok.kind == "kw" and tok.value == "end":
                depth -= 1

    def funcbody(self, name: str | None, start: int) -> LuaFunc:
        self.expect("(")
        while not self.accept(")"):
            self.next()
        body_start = self.i
        # count nested blocks; while/for bodies open with `do`
        depth = 1
        while depth:
            tok = self.next()
            if tok.kind == "eof":
                raise unsupported("unterminated function", self.src)
            if tok.kind == "kw":
                if tok.value in ("function", "do", "if"):
                    depth += 1
                elif tok.value == "end":
                    depth -= 1
        end_pos = self.t[self.i - 1].pos + 3
        return LuaFunc(name, self.src[start:end_pos], self.t[body_start:self.i - 1])

    def statement(self) -> list[Any] | None:
        tok = self.peek()
        if tok.kind == "kw":
            if tok.value == "do":
                self.next()
                ret = self.block(("end",))
                if ret is not None:
                    return ret
                self.expect("end")
                return None
            if tok.value == "if":
                self.next()
                cond = self.value(self.expr())
                self.expect("then")
                if cond not in (None, False):
                    ret = self.block(("end", "else", "elseif"))
                    if ret is not None:
                        return ret
                    if not self.accept("end"):
                        raise unsupported("if with else", self.src)
                else:
                    self.skip_block()
                return None
            if tok.value == "function":
                start = tok.pos
                self.next()
                name = self.name()
                if self.peek().value in (".", ":"):
                    raise unsupported(f"function {name}.{self.peek(1).value} (changes a Lua table)", self.src)
                self.define(name, self.funcbody(name, start))
                return None
            if tok.value == "local":
                self.next()
                if self.peek().kind == "kw" and self.peek().value == "function":
                    start = self.next().pos
                    name = self.name()
                    self.env[name] = self.funcbody(name, start)
                    return None
                names = [self.name()]
                while self.accept(","):
                    names.append(self.name())
                vals = self.explist() if self.accept("=") else []
                for j, n in enumerate(names):
                    self.env[n] = vals[j] if j < len(vals) else None
                return None
            raise unsupported(f"statement {tok.value!r}", self.src)
        # assignment or call
        targets = [self.suffixed(assign=True)]
        while self.accept(","):
            targets.append(self.suffixed(assign=True))
        if self.accept("="):
            vals = self.explist()
            for j, tgt in enumerate(targets):
                self.assign(tgt, vals[j] if j < len(vals) else None)
            return None
        if len(targets) != 1 or not isinstance(targets[0], _Called):
            raise unsupported("expression statement", self.src)
        return None

    def assign(self, target: Any, value: Any) -> None:
        if isinstance(target, _Var):
            if target.name in ("box",):
                raise unsupported("assigning box", self.src)
            self.env[target.name] = value
            if isinstance(value, LuaFunc) and target.name != "_":
                pass  # a local Lua function value; only rawset/global defs reach the app
            return
        raise unsupported("assigning a table field (e.g. box.info = ...)", self.src)

    def define(self, name: str, fn: LuaFunc) -> None:
        self.env[name] = fn
        self.define_in_app(name, fn)

    def define_in_app(self, name: str, fn: LuaFunc) -> None:
        """A function whose body is `return <literals>` is sent as its values
        (`peer_define_values`); any other needs a Python twin in the app."""
        values = self.constant_body(fn)
        if values is not None:
            self.call_app("peer_define_values", [name, values])
        else:
            self.call_app("peer_define", [name, fn.source])

    def constant_body(self, fn: LuaFunc) -> list[Any] | None:
        toks = fn.body
        if not toks or toks[0].kind != "kw" or toks[0].value != "return":
            return None
        probe = Interp(lambda name, args: (_ for _ in ()).throw(unsupported("call")), self.src, {})
        try:
            ret = probe.run(toks + [Tok("eof", None, 0)])
        except LuaConsoleUnsupported:
            return None
        if ret is None or any(isinstance(v, (LuaFunc, Module, BoxPath, Ref)) for v in ret):
            return None
        return [to_py(v) for v in ret]

    def call_app(self, name: str, args: list[Any]) -> list[Any]:
        return self.call(name, args)

    # expressions
    def explist(self) -> list[Any]:
        vals = [self.expr()]
        while self.accept(","):
            vals.append(self.expr())
        out: list[Any] = []
        for j, v in enumerate(vals):  # the last call's values all count
            if isinstance(v, _Multi):
                out.extend(v.values if j == len(vals) - 1 else v.values[:1])
            else:
                out.append(v)
        return [self.value(v) for v in out]

    def value(self, v: Any) -> Any:
        if isinstance(v, (_Var, _Index)):
            v = self.resolve(v)
        if isinstance(v, _Called):
            v = v.value
        if isinstance(v, _Multi):
            return v.values[0] if v.values else None
        return v

    def expr(self) -> Any:
        tok = self.peek()
        if tok.kind == "op" and tok.value == "-" and self.peek(1).kind == "num":
            self.next()
            v = -self.next().value
            return v
        else:
            v = self.simple()
        if self.peek().kind == "op" and self.peek().value not in (",", ")", "}", "]", ";", "="):
            raise unsupported(f"operator {self.peek().value!r}", self.src)
        if self.peek().kind == "kw" and self.peek().value in ("and", "or"):
            raise unsupported(f"operator {self.peek().value!r}", self.src)
        return v

    def simple(self) -> Any:
        tok = self.peek()
        if tok.kind in ("num", "str"):
            self.next()
            return tok.value
        if tok.kind == "kw":
            if tok.value in ("nil", "true", "false"):
                self.next()
                return {"nil": None, "true": True, "false": False}[tok.value]
            if tok.value == "function":
                self.next()
                return self.funcbody(None, tok.pos)
            raise unsupported(f"{tok.value!r}", self.src)
        if tok.kind == "op" and tok.value == "{":
            return self.table()
        v = self.suffixed()
        if isinstance(v, _Called):
            return v.value  # may be _Multi: explist expands the last one
        return self.value(v)

    def table(self) -> Table:
        self.expect("{")
        t, n = Table(), 0
        while not self.accept("}"):
            if self.peek().kind == "op" and self.peek().value == "[":
                self.next()
                k = self.value(self.expr())
                self.expect("]")
                self.expect("=")
                t[k] = self.value(self.expr())
            elif self.peek().kind == "name" and self.peek(1).kind == "op" and self.peek(1).value == "=":
                k = self.name()
                self.next()
                t[k] = self.value(self.expr())
            else:
                n += 1
                t[n] = self.value(self.expr())
            if not self.accept(","):
                self.accept(";")
        return t

    def suffixed(self, assign: bool = False) -> Any:
        tok = self.peek()
        if tok.kind == "op" and tok.value == "(":
            self.next()
            cur: Any = self.expr()
            self.expect(")")
        else:
            cur = _Var(self.name())
        while True:
            tok = self.peek()
            if tok.kind == "op" and tok.value == ".":
                self.next()
                cur = _Index(self.value(cur), self.name())
            elif tok.kind == "op" and tok.value == "[":
                self.next()
                k = self.value(self.expr())
                self.expect("]")
                cur = _Index(self.value(cur), k)
            elif tok.kind == "op" and tok.value == ":":
                self.next()
                method = self.name()
                args = self.args()
                cur = _Called(self.invoke(self.value(cur), method, args))
            elif (tok.kind == "op" and tok.value in ("(", "{")) or tok.kind == "str":
                args = self.args()
                cur = _Called(self.invoke(self.resolve(cur), None, args))
            else:
                break
        if isinstance(cur, _Index) and not assign:
            return self.resolve(cur)
        return cur

    def args(self) -> list[Any]:
        tok = self.peek()
        if tok.kind == "str":
            self.next()
            return [tok.value]
        if tok.kind == "op" and tok.value == "{":
            return [self.table()]
        self.expect("(")
        if self.accept(")"):
            return []
        vals = self.explist()
        self.expect(")")
        return vals

    def resolve(self, v: Any) -> Any:
        if isinstance(v, _Var):
            if v.name in self.env:
                return self.env[v.name]
            if v.name in ("require", "pcall", "rawset", "rawget"):
                return v
            return None  # an undefined global is nil
        if isinstance(v, _Index):
            base, key = v.base, v.key
            if isinstance(base, BoxPath):
                if base.path == "box.space" and isinstance(key, str):
                    return Ref(f"box.space.{key}", None)
                return BoxPath(f"{base.path}.{key}")
            if isinstance(base, Ref):
                if key == "index":
                    return BoxPath(f"{base.path}.index")
                if isinstance(base.desc, dict) and key in base.desc:
                    return base.desc[key]
                raise unsupported(f"{base.path}.{key}", self.src)
            if isinstance(base, Table):
                return base.get(key)
            if isinstance(base, Module):
                return BoxPath(f"{base.name}.{key}")
            raise unsupported(f"indexing {base!r}", self.src)
        if isinstance(v, _Called):
            return v.value
        return v

    def invoke(self, fn: Any, method: str | None, args: list[Any]) -> Any:
        if method is not None:
            if isinstance(fn, Ref):
                return self.box_call(f"{fn.path}:{method}", args)
            if isinstance(fn, BoxPath) and ".index." in fn.path:
                return self.box_call(f"{fn.path}:{method}", args)
            raise unsupported(f"method {method} on {fn!r}", self.src)
        if isinstance(fn, _Var):
            if fn.name == "require":
                return Module(str(args[0]) if args else "?")
            if fn.name == "pcall":
                return self.pcall(args)
            if fn.name == "rawset":
                if len(args) == 3 and isinstance(args[0], Module) and args[0].name == "_G":
                    if isinstance(args[2], LuaFunc):
                        self.define_in_app(args[1], args[2])
                        return args[0]
                raise unsupported("rawset of a non-function", self.src)
            if fn.name == "rawget":
                raise unsupported("rawget", self.src)
        if isinstance(fn, BoxPath) and fn.path in CONSTRUCTORS:
            try:
                return _Multi([CONSTRUCTORS[fn.path](*[to_py(a) for a in args])])
            except Exception as e:  # noqa: BLE001 - Lua raises
                raise LuaError(f"{fn.path}: {e}") from None
        if isinstance(fn, BoxPath):
            if fn.path == "box.cfg":
                opts = to_py(args[0]) if args else {}
                if opts:
                    raise unsupported(f"box.cfg{opts!r} (Styx has no such runtime option; "
                                      "read_only: no read-only mode)", self.src)
                return _Multi([])
            return self.box_call(fn.path, args)
        if isinstance(fn, LuaFunc):
            raise unsupported(f"calling the Lua function {fn.name}", self.src)
        raise unsupported(f"calling {fn!r}", self.src)

    def pcall(self, args: list[Any]) -> Any:
        if not args:
            raise unsupported("pcall()", self.src)
        f = args[0]
        if isinstance(f, _Var) and f.name == "require":
            m = str(args[1])
            if m in MISSING_MODULES:
                return _Multi([False, f"module '{m}' not found: {MISSING_MODULES[m]}"])
            return _Multi([True, Module(m)])
        if isinstance(f, LuaFunc) and f.name is None:
            saved = (self.t, self.i)
            try:
                self.t, self.i = f.body + [Tok("eof", None, 0)], 0
                ret = self.block(("eof",))
                return _Multi([True, *(ret or [])])
            except LuaError as e:
                return _Multi([False, str(e)])
            finally:
                self.t, self.i = saved
        raise unsupported("pcall of this function", self.src)

    def box_call(self, name: str, args: list[Any]) -> Any:
        name = re.sub(r"^box\.schema\.create_space$", "box.schema.space.create", name)
        py_args = [to_py(a) for a in args]
        existed = False
        if name == "box.schema.space.create" and py_args:
            got = self.call("box.space._vspace.index.name:get", [[py_args[0]]])
            existed = bool(got and got[0])
        values = self.call(name, py_args)
        if name == "box.schema.space.create" and py_args:
            # Lua returns the space and "created" (or "not created" with
            # if_not_exists); Styx's builtin sends the space's description.
            ref = Ref(f"box.space.{py_args[0]}", values[0] if values else None)
            return _Multi([ref, "not created" if existed else "created"])
        m = re.match(r"^(box\.space\.[^:]+):create_index$", name)
        if m and py_args:
            return _Multi([Ref(f"{m.group(1)}.index.{py_args[0]}", values[0] if values else None)])
        return _Multi(values)


@dataclass
class _Var:
    name: str


@dataclass
class _Index:
    base: Any
    key: Any


@dataclass
class _Called:
    value: Any


@dataclass
class _Multi:
    values: list[Any]


def _is_single_expression(toks: list[Tok]) -> bool:
    """`name(.name|[...]|:name args|args)*` and nothing else: the console runs
    such a line as `return <line>`, so its values are the answer."""
    if not toks or toks[0].kind != "name":
        return False
    depth, called, prev = 0, False, toks[0]
    for tok in toks[1:]:
        if tok.kind == "eof":
            break
        if tok.kind == "op" and tok.value in ("(", "{", "["):
            depth += 1
            if depth == 1 and tok.value in ("(", "{"):
                called = True
        elif tok.kind == "op" and tok.value in (")", "}", "]"):
            depth -= 1
        elif depth == 0:
            if tok.kind == "name" and not (prev.kind == "op" and prev.value in (".", ":")):
                return False  # a second statement
            if tok.kind == "str":
                called = True
            elif not (tok.kind == "name" or (tok.kind == "op" and tok.value in (".", ":"))):
                return False
        if depth == 0 or (depth == 1 and tok.kind == "op" and tok.value in ("(", "{", "[")):
            prev = tok
    return called and depth == 0


def run_snippet(src: str, call: Callable[[str, list[Any]], list[Any]],
                env: dict[str, Any] | None = None) -> list[Any] | None:
    """The console's answer to `src`: the returned values (Refs as their
    descriptions), None without a `return`, or [{'error': message}] if a
    call failed."""
    interp = Interp(call, src, env)
    toks = tokenize(src)
    if _is_single_expression(toks):
        toks = [Tok("kw", "return", 0), *toks]
    try:
        ret = interp.run(toks)
    except LuaError as e:
        return [{"error": str(e)}]
    if not ret:
        return None  # nothing returned: the console prints an empty document
    out = []
    for v in ret or []:
        if isinstance(v, Ref):
            v = v.desc
        elif isinstance(v, Module):
            v = {}  # a module table; its contents are not reproduced
        elif isinstance(v, (LuaFunc, BoxPath)):
            raise unsupported("returning a Lua function", src)
        out.append(to_py(v) if isinstance(v, Table) else v)
    return out
