"""The modules Tarantool scripts `require` (json, msgpack, log, clock, uuid,
decimal, digest, errno, fio, yaml, datetime, and luafun's fun), for TX's Lua
(tx/lua.py).

What it does: `install(lua)` puts a loader for each module in Lua's
`package.preload`; the modules are Lua sources in tx/lualib/ (package data,
like box.lua), each run with the table core.lua returns. A module Styx's
Lua does not have (net.box, console) fails with an error that names
it, at `require`, not at first use.

Why Lua and not Python: the serializers must see Lua values as Tarantool's
do (an integral double is an integer, a table with holes is still an
array, a NULL keeps its slot), which a Python walk over lupa's tables
cannot tell apart. Python does what Lua has no library for: hashes,
decimal arithmetic, YAML, the file system, logging -- through plain
functions (`_helpers`) that take and give bytes and numbers.

Values across: uuid, decimal and datetime are FFI cdata in Lua (as in
Tarantool: `type(v) == 'cdata'`), and NULL is a NULL pointer. `Values`
turns them into uuid.UUID, decimal.Decimal, datetime and None for Python
(Lua.from_lua) and back (Lua.to_lua), so they cross IPROTO as MessagePack
extensions 2, 1 and 4 (protocol/ext.py).

Risks: fio reaches the file system as the server's user, as Tarantool's
does; EVAL needs execute on the universe. The helpers are Python functions
in Lua: lua.py's attribute filter keeps Lua from walking from them to
Python's internals (`f.__globals__`).
"""

from __future__ import annotations

import base64
import decimal
import errno
import functools
import hashlib
import json
import logging
import os
import re
import shutil
import stat as stat_module
import tempfile
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from importlib.resources import files
from typing import TYPE_CHECKING, Any

import google_crc32c

from ..protocol import ext

if TYPE_CHECKING:
    from .lua import Lua

__all__ = ["install", "boundary", "MISSING", "MODULES", "VALUE_TYPES", "Values"]

# What Tarantool scripts lean on and Styx's Lua has not yet.
MISSING = ("net.box", "console")
# What tx/lualib/ has, in the order they may need each other.
MODULES = ("json", "log", "clock", "msgpack", "uuid", "decimal", "digest", "errno", "fio", "yaml", "datetime",
           "fun")  # fun: luafun's fun.lua, unchanged (MIT; see LICENSE), which Tarantool bundles
# Loaded at install: they give their cdata types methods (ffi.metatype),
# which must be in place before Python hands Lua a value of one.
_EAGER = ("uuid", "decimal", "datetime")

VALUE_TYPES = (bytes, uuid.UUID, decimal.Decimal, datetime)

log = logging.getLogger("styx.lua")
_LEVELS = {b"error": logging.ERROR, b"warn": logging.WARNING, b"info": logging.INFO, b"verbose": 15,
           b"debug": logging.DEBUG}


class Values:
    """uuid, decimal, datetime and NULL across Lua and Python (see the module
    note); 64-bit integer cdata (clock.time64()) become ints."""

    def __init__(self, export: Any, import_: Any, shape: Any, cdata: type) -> None:
        # lupa's class for a cdata (and other non-table Lua objects): Lua.from_lua asks only these.
        self.cdata = cdata
        self._export = export
        self._import = import_
        self._shape = shape

    def from_lua(self, v: Any) -> Any:
        kind, payload = _pair(self._export(v))
        if kind is None:
            return v
        if kind == b"nil":
            return None
        if kind == b"uuid":
            return uuid.UUID(bytes=payload)
        if kind == b"decimal":
            return decimal.Decimal(payload.decode())
        if kind == b"datetime":
            return ext.datetime_unpack(payload)
        if kind == b"bin":
            return payload  # bytes: MP_BIN again
        return int(payload)

    def array_length(self, table: Any) -> int | None:
        """A Lua table's length if Tarantool would send it as an array, else
        None (a map): core.lua's S.shape."""
        shape, n = _pair(self._shape(table))
        return int(n) if shape == b"array" else None

    def to_lua(self, v: Any) -> Any:
        if isinstance(v, bytes):
            return self._import(b"bin", v)
        if isinstance(v, uuid.UUID):
            return self._import(b"uuid", v.bytes)
        if isinstance(v, decimal.Decimal):
            return self._import(b"decimal", _dec_str(v).encode())
        return self._import(b"datetime", ext.datetime_pack(v))


def _pair(r: Any) -> tuple[Any, Any]:
    return (r[0], r[1]) if isinstance(r, tuple) else (r, None)


def install(lua: Lua) -> Values:
    rt = lua.rt
    missing = rt.eval("""function(name)
        package.preload[name] = function()
            error("Styx's Lua has no module '" .. name .. "' yet", 2)
        end
    end""")
    for name in MISSING:
        missing(name.encode())
    source = files(__package__).joinpath("lualib")
    helpers = _helpers()
    helpers[b"errno_names"] = rt.table_from(errno_names())
    core = rt.execute(source.joinpath("core.lua").read_bytes(), rt.table_from(helpers))
    preload = rt.eval("""function(name, chunk, S)
        package.preload[name] = function() return chunk(S) end
    end""")
    for name in MODULES:
        chunk = rt.eval("function(code, name) return assert(loadstring(code, '=' .. name)) end")(
            source.joinpath(f"{name}.lua").read_bytes(), f"builtin/{name}.lua".encode())
        preload(name.encode(), chunk, core)
    require = rt.eval("require")
    for name in _EAGER:
        require(name.encode())
    return Values(core[b"export"], core[b"import"], core[b"shape"], type(core[b"NULL"]))


# -- the Python side of the modules ---------------------------------------------------
#
# Plain functions only: Lua sees nothing else of Python. Strings arrive as
# bytes (the runtime has no encoding) and numbers as floats.


def boundary(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A Python function as Lua calls it (the bridges, the modules' helpers).

    Lua objects that lupa hands a Python function called from inside a
    coroutine belong to that coroutine's state, and dropping one after Lua
    has collected the coroutine crashes the process (lupa issue 84).
    Arguments die with the call; what could keep them longer is an
    exception's traceback (its frames hold them), so a raised exception
    leaves without one."""
    @functools.wraps(fn)
    def call(*args: Any) -> Any:
        try:
            return fn(*args)
        except BaseException as e:  # noqa: BLE001 - raised again, without the frames
            err = e
        del args
        cause: BaseException | None = err
        while cause is not None:
            cause.__traceback__ = None
            cause = cause.__cause__ or cause.__context__
        raise err

    return call


def _helpers() -> dict[bytes, Any]:
    fns: dict[str, Any] = {
        "log": _log, "strerror": _strerror, "urandom": _urandom,
        "hash": _hash, "crc32c": _crc32c, "murmur": _murmur, "base64_encode": _b64encode,
        "base64_decode": _b64decode,
        "decimal": _decimal, "decimal_pack": _decimal_pack, "decimal_unpack": _decimal_unpack,
        "yaml_encode": _yaml_encode, "yaml_decode": _yaml_decode,
        "datetime_format": _datetime_format,
    }
    fns.update({f"fio_{k}": v for k, v in _FIO.items()})
    return {k.encode(): boundary(v) for k, v in fns.items()}


def _log(level: bytes, msg: bytes) -> None:
    log.log(_LEVELS.get(level, logging.INFO), "%s", msg.decode("utf-8", "replace"))


def _strerror(n: float) -> bytes:
    return os.strerror(int(n)).encode()


def _urandom(n: float) -> bytes:
    return os.urandom(int(n))


_HASHES = {b"md5", b"md4", b"sha1", b"sha224", b"sha256", b"sha384", b"sha512"}


def _hash(name: bytes, data: bytes) -> bytes:
    if name not in _HASHES:
        raise ValueError(f"no hash {name!r}")
    return hashlib.new(name.decode(), data).digest()


def _crc32c(state: float, data: bytes) -> int:
    # Tarantool's crc32 is CRC-32C without the final inversion: its state is
    # the inverse of the checksum google_crc32c extends.
    return int(google_crc32c.extend(int(state) ^ 0xFFFFFFFF, data)) ^ 0xFFFFFFFF


def _murmur(data: bytes, seed: float) -> int:
    """MurmurHash3 x86 32-bit (Tarantool's PMurHash32)."""
    c1, c2, m = 0xCC9E2D51, 0x1B873593, 0xFFFFFFFF
    h = int(seed) & m
    n = len(data) // 4 * 4
    for i in range(0, n, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * c1) & m
        k = ((k << 15) | (k >> 17)) & m
        h ^= (k * c2) & m
        h = ((h << 13) | (h >> 19)) & m
        h = (h * 5 + 0xE6546B64) & m
    tail = data[n:]
    if tail:
        k = int.from_bytes(tail, "little")
        k = (k * c1) & m
        k = ((k << 15) | (k >> 17)) & m
        h ^= (k * c2) & m
    h ^= len(data)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & m
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & m
    h ^= h >> 16
    return h


def _b64encode(data: bytes, urlsafe: bool, nopad: bool, nowrap: bool) -> bytes:
    out = base64.urlsafe_b64encode(data) if urlsafe else base64.b64encode(data)
    if nopad or urlsafe:
        out = out.rstrip(b"=")
    if not nowrap and not urlsafe:
        # Tarantool's base64 breaks lines every 72 characters.
        out = b"\n".join(out[i:i + 72] for i in range(0, len(out), 72))
    return out


def _b64decode(data: bytes) -> bytes:
    # As Tarantool's: characters outside the alphabet are skipped, padding is optional.
    clean = re.sub(rb"[^A-Za-z0-9+/_-]", b"", data.split(b"=")[0]).translate(bytes.maketrans(b"-_", b"+/"))
    clean = clean[:len(clean) - (len(clean) % 4 == 1)]
    return base64.b64decode(clean + b"=" * (-len(clean) % 4))


# -- decimal: Tarantool's decNumber context (38 digits, half up) --------------------------

_DEC = decimal.Context(prec=38, rounding=decimal.ROUND_HALF_UP, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN,
                       traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow])
_DEC_SYNTAX = re.compile(rb"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _dec_str(d: decimal.Decimal) -> str:
    return format(d, "f")


def _dec_check(d: decimal.Decimal) -> decimal.Decimal | None:
    """What Tarantool keeps: at most 38 digits, a positive exponent written
    out (1e10 is 10000000000), nothing past 38 integer digits."""
    if not d.is_finite():
        return None
    d = _DEC.create_decimal(d)  # 38 digits, rounded; keeps -0, as decNumber does
    if d.adjusted() >= 38:
        return None
    exp = d.as_tuple().exponent
    assert isinstance(exp, int)  # finite
    if exp > 0:
        d = d.quantize(decimal.Decimal(1), context=_DEC)  # (the default context has 28 digits)
    elif exp < -38:  # Tarantool keeps at most 38 digits after the point
        d = d.quantize(decimal.Decimal(1).scaleb(-38), rounding=decimal.ROUND_HALF_UP, context=_DEC)
    return d


def _decimal(op: bytes, a: bytes, b: Any = None) -> bytes | None:
    """An operation on decimals given as strings; None where Tarantool's
    fails ("decimal operation failed", or no valid decimal)."""
    try:
        x = decimal.Decimal(a.decode())
        if op == b"new":
            if not _DEC_SYNTAX.fullmatch(a):
                return None
            r = x
        elif op in (b"+", b"-", b"*", b"/", b"%", b"^"):
            y = decimal.Decimal(b.decode())
            r = {b"+": _DEC.add, b"-": _DEC.subtract, b"*": _DEC.multiply, b"/": _DEC.divide,
                 b"%": _DEC.remainder, b"^": _DEC.power}[op](x, y)
        elif op == b"cmp":
            return str(x.compare(decimal.Decimal(b.decode()))).encode()
        elif op == b"round":
            n = int(b)
            r = x if n < 0 or -x.as_tuple().exponent <= n else x.quantize(decimal.Decimal(1).scaleb(-n),  # type: ignore[operator]
                                                                   rounding=decimal.ROUND_HALF_UP)
        elif op == b"rescale":
            r = x.quantize(decimal.Decimal(1).scaleb(-int(b)), rounding=decimal.ROUND_HALF_UP)
        elif op == b"trim":
            r = x.normalize(_DEC) if x != x.to_integral_value() else x.quantize(decimal.Decimal(1))
        else:
            r = {b"abs": _DEC.abs, b"minus": _DEC.minus, b"sqrt": _DEC.sqrt, b"ln": _DEC.ln,
                 b"log10": _DEC.log10, b"exp": _DEC.exp}[op](x)
        checked = _dec_check(r)
        return None if checked is None else _dec_str(checked).encode()
    except (decimal.DecimalException, ValueError, KeyError):
        return None


def _decimal_pack(s: bytes) -> bytes:
    return ext.decimal_pack(decimal.Decimal(s.decode()))


def _decimal_unpack(data: bytes) -> bytes | None:
    try:
        return _dec_str(ext.decimal_unpack(data)).encode()
    except (ValueError, IndexError):
        return None


# -- yaml: PyYAML, with JSON between it and Lua (json.lua keeps arrays, maps and null apart) --

def _yaml_encode(doc: bytes) -> bytes:
    import yaml

    value = json.loads(doc.decode("utf-8", "surrogateescape"), parse_constant=float)
    out = yaml.dump(value, Dumper=_yaml_dumper(), explicit_start=True, explicit_end=True,
                    default_flow_style=False, allow_unicode=True, sort_keys=False)
    return out.encode("utf-8", "surrogateescape")


def _yaml_decode(text: bytes) -> tuple[bytes | None, bytes | None]:
    import yaml

    try:
        docs = list(yaml.safe_load_all(text.decode("utf-8", "surrogateescape")))
    except yaml.YAMLError as e:
        return None, str(e).encode()
    return json.dumps(docs, default=str, ensure_ascii=False).encode("utf-8", "surrogateescape"), None


def _yaml_dumper() -> Any:
    """PyYAML's SafeDumper with numbers written as Tarantool's yaml writes
    them (%.14g, as Lua numbers print), not as Python's repr."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def number(dumper: Any, x: float) -> Any:
        text = "nan" if x != x else "inf" if x == float("inf") else "-inf" if x == float("-inf") else format(x, ".14g")
        return dumper.represent_scalar("tag:yaml.org,2002:float", text)

    Dumper.add_representer(float, number)
    # So that 1e+100 (no point, which YAML 1.1's float wants) needs no !!float tag.
    Dumper.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9]+[eE][-+]?[0-9]+$"),
                                 list("-+0123456789"))
    return Dumper


# -- datetime -------------------------------------------------------------------------

def _datetime_format(epoch: float, nsec: float, tzoffset: float, fmt: bytes) -> bytes:
    off = timedelta(minutes=int(tzoffset))
    local = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=int(epoch)) + off
    local = local.replace(tzinfo=timezone(off))
    # Tarantool's strftime has %f (the fraction) and %N-like nanoseconds; Python's only microseconds.
    fraction = f"{int(nsec):09d}"
    text = fmt.decode("utf-8", "surrogateescape").replace("%f", fraction.rstrip("0") or "0")
    text = re.sub(r"%(\d)f", lambda m: fraction[:int(m.group(1))], text)
    return local.strftime(text).encode("utf-8", "surrogateescape")


# -- fio: file descriptors and paths; failures are (None, "fio: <strerror>") ----------

_Result = tuple[Any, bytes | None]


def _fio_error(e: OSError) -> _Result:
    return None, b"fio: " + os.strerror(e.errno or errno.EIO).encode()


def _fio_call(fn: Any, *args: Any) -> _Result:
    try:
        r = fn(*args)
    except OSError as e:
        return _fio_error(e)
    return (True if r is None else r), None


def _fio_open(path: bytes, flags: float, mode: float) -> _Result:
    return _fio_call(os.open, path, int(flags), int(mode))


def _fio_read(fd: float, size: float) -> _Result:
    def read_all() -> bytes:
        chunks = []
        while chunk := os.read(int(fd), 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    return _fio_call(read_all) if size < 0 else _fio_call(os.read, int(fd), int(size))


def _fio_pread(fd: float, size: float, offset: float) -> _Result:
    return _fio_call(os.pread, int(fd), int(size), int(offset))


def _fio_write(fd: float, data: bytes) -> _Result:
    def write_all() -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(int(fd), view):]
    return _fio_call(write_all)


def _fio_pwrite(fd: float, data: bytes, offset: float) -> _Result:
    return _fio_call(os.pwrite, int(fd), data, int(offset))


def _fio_seek(fd: float, offset: float, whence: float) -> _Result:
    return _fio_call(os.lseek, int(fd), int(offset), int(whence))


def _fio_close(fd: float) -> _Result:
    return _fio_call(os.close, int(fd))


def _fio_fsync(fd: float) -> _Result:
    return _fio_call(os.fsync, int(fd))


def _fio_ftruncate(fd: float, size: float) -> _Result:
    return _fio_call(os.ftruncate, int(fd), int(size))


_STAT_FIELDS = ("st_dev", "st_ino", "st_mode", "st_nlink", "st_uid", "st_gid", "st_rdev", "st_size",
                "st_blksize", "st_blocks", "st_atime", "st_mtime", "st_ctime")


def _stat_values(st: os.stat_result) -> tuple[Any, ...]:
    return tuple(getattr(st, f) for f in _STAT_FIELDS)


def _fio_stat(path: Any, follow: bool) -> Any:
    try:
        st = os.fstat(int(path)) if isinstance(path, float) else os.stat(path, follow_symlinks=follow)
    except OSError as e:
        return _fio_error(e)
    return (True, *_stat_values(st))


def _fio_listdir(path: bytes) -> tuple[Any, ...]:
    """(True, names...) or (None, message): a tuple is several values in Lua."""
    try:
        return (True, *os.listdir(path))
    except OSError as e:
        return None, b"can't listdir " + path + b": " + _fio_error(e)[1]  # type: ignore[operator]


def _fio_tempdir() -> bytes:
    return tempfile.mkdtemp().encode()


def _fio_rmtree(path: bytes) -> _Result:
    return _fio_call(shutil.rmtree, path)


def _fio_copyfile(src: bytes, dst: bytes) -> _Result:
    return _fio_call(lambda: shutil.copyfile(src, dst) and None)


def _fio_mktree(path: bytes, mode: float) -> _Result:
    return _fio_call(os.makedirs, path, int(mode), True)


def _fio_glob(pattern: bytes) -> tuple[bytes, ...]:
    import glob

    return tuple(sorted(glob.glob(pattern)))


def _fio_is(path: bytes, what: bytes) -> bool:
    try:
        st = os.lstat(path) if what in (b"link", b"lexists") else os.stat(path)
    except OSError:
        return False
    return {b"exists": True, b"lexists": True, b"dir": stat_module.S_ISDIR(st.st_mode),
            b"file": stat_module.S_ISREG(st.st_mode), b"link": stat_module.S_ISLNK(st.st_mode)}[what]


_FIO: dict[str, Any] = {
    "open": _fio_open, "read": _fio_read, "pread": _fio_pread, "write": _fio_write, "pwrite": _fio_pwrite,
    "seek": _fio_seek, "close": _fio_close, "fsync": _fio_fsync, "ftruncate": _fio_ftruncate,
    "stat": _fio_stat, "listdir": _fio_listdir, "tempdir": _fio_tempdir, "rmtree": _fio_rmtree,
    "copyfile": _fio_copyfile, "mktree": _fio_mktree, "glob": _fio_glob, "is": _fio_is,
    "mkdir": lambda p, m: _fio_call(os.mkdir, p, int(m)),
    "rmdir": lambda p: _fio_call(os.rmdir, p),
    "unlink": lambda p: _fio_call(os.unlink, p),
    "rename": lambda a, b: _fio_call(os.rename, a, b),
    "chmod": lambda p, m: _fio_call(os.chmod, p, int(m)),
    "truncate": lambda p, n: _fio_call(os.truncate, p, int(n)),
    "symlink": lambda a, b: _fio_call(os.symlink, a, b),
    "link": lambda a, b: _fio_call(os.link, a, b),
    "readlink": lambda p: _fio_call(os.readlink, p),
    "cwd": lambda: os.getcwd().encode(),
    "chdir": lambda p: _fio_call(os.chdir, p),
    "umask": lambda m: os.umask(int(m)),
    "abspath": lambda p: os.path.abspath(p),
    "utime": lambda p, a, m: _fio_call(os.utime, p, (a, m)),
}


def errno_names() -> dict[bytes, int]:
    return {name.encode(): code for code, name in errno.errorcode.items()} | {
        name.encode(): getattr(errno, name) for name in dir(errno) if name.startswith("E")}
