"""The Lua modules of Styx's EVAL (styx/tx/lua_modules.py, styx/tx/lualib/):
the same expressions against Tarantool 2.6 and Styx give the same values
and the same errors, module by module (json, msgpack, yaml, log, clock,
uuid, decimal, digest, errno, fio). datetime is not in 2.6: its cases are
checked against Tarantool 2.10's documented behaviour and the bytes of
MessagePack extension 4. uuid, decimal and datetime values cross IPROTO
as their extension types, and come back to Python as uuid.UUID,
decimal.Decimal and datetime.datetime."""

from __future__ import annotations

import decimal
import logging
import os
import struct
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tarantool

from tests.oracle import differences, tarantool_script

ROOT = Path(__file__).resolve().parent
APP = str(ROOT / "apps" / "eval_app.py")

# Every case runs with this prefix: the module under test as a local, and
# `hex` to compare binary strings (tarantool-python decodes strings as UTF-8).
PRELUDE = ("local {m} = require('{m}') "
           "local function hex(s) return (s:gsub('.', function(c) return string.format('%02x', c:byte()) end)) end ")

CASES: dict[str, list[str]] = {
    "json": [
        "return json.encode({1, 2, 3})",
        "return json.encode({a = 1})",
        "return json.encode({a = {b = {1, 'x', true, false}}})",
        "return json.encode('a/b\"c\\n\\t\\1')",
        "return json.encode(1.5), json.encode(0.1), json.encode(1e100), json.encode(-3), json.encode(2^53)",
        "return json.encode(1/3), json.encode(100), json.encode(123456789012)",
        "return json.encode(true), json.encode(json.NULL), json.encode({})",
        "return json.encode({1, json.NULL, 3})",
        "return json.encode({[1] = 'a', [2] = 'b', [4] = 'd'})",
        "return json.encode({[20] = 'b'}), json.encode({[1] = 'a', [3] = 'c'})",
        "return json.encode(function() end)",
        "return json.encode(0/0)",
        "return json.encode(1/0)",
        "return json.decode('{\"a\": [1, 2.5, \"x\", null, true, false]}')",
        "return json.decode('[1, 2')",
        "return json.decode('[1, 2] x')",
        "return json.decode('\"\\\\u00e9\\\\n\"')",
        "return json.decode('12'), json.decode('-1.5e3'), json.decode('\"s\"')",
        "return json.decode('nul')",
        "return json.decode(12)",
        "return json.decode('null') == nil, json.NULL == nil, type(json.NULL)",
        "return json.decode('{\"a\": null}').a == json.NULL",
        "return json.decode('{}'), json.decode('[]')",
        "return {1, nil, 3}, setmetatable({}, {__serialize = 'map'}), {[1] = 'a', [20] = 'b'}, {}",
        "return json.encode(json.decode('{\"x\": {\"y\": [1, {\"z\": null}]}}'))",
        "return json.decode('[1e400]')",
        "return hex(json.encode('\\xe9'))",
        "return json.encode({require('decimal').new('1.5')})",
        "return json.encode(require('uuid').fromstr('00112233-4455-6677-8899-aabbccddeeff'))",
        'return json.encode(json.decode(\'{"a": {}}\'))',
        'return json.encode({[true] = 1})',
        "return json.encode(setmetatable({1, 2}, {__serialize = function(t) return 'x' end}))",
        "return json.encode('\\127\\0')",
        'return json.encode(2^63), json.encode(-2^63), json.encode(2^64), json.encode(1e15), json.encode(-0.0)',
        'return json.decode(\'{"a":1,}\')',
        "return json.decode('[1,]')",
        'return json.decode(\'{"a" 1}\')',
        "return json.decode('{1: 2}')",
        'return json.decode(\'"abc\')',
        'return json.decode(\'"\\\\x"\')',
        "return json.decode('  ')",
        "return json.decode('[1,\\n2,\\n x]')",
        "return json.decode('-')",
        "return json.decode('01')",
        "return json.decode('1.')",
        "return json.decode('.5')",
        "return json.decode('[true, false, null]')",
        'return json.decode(\'"\\\\ud83d\\\\ude00"\')',
        'return json.decode({})',
        'return json.decode()',
    ],
    "msgpack": [
        "return hex(msgpack.encode({1, 2, 3}))",
        "return hex(msgpack.encode({a = 1}))",
        "return hex(msgpack.encode(1.5)), hex(msgpack.encode(-1)), hex(msgpack.encode(2^40)), hex(msgpack.encode(300))",
        "return hex(msgpack.encode('abc')), hex(msgpack.encode(true)), hex(msgpack.encode(msgpack.NULL))",
        "return hex(msgpack.encode({})), hex(msgpack.encode({1, nil, 3}))",
        "return hex(msgpack.encode(-2^63)), hex(msgpack.encode(2^64 - 1)), hex(msgpack.encode(0.5))",
        "return msgpack.decode(msgpack.encode({1, 'a', {b = 2}}))",
        "return msgpack.decode('\\x93\\x01\\x02\\x03\\xa1x', 5)",
        "return msgpack.decode('\\xc1')",
        "return msgpack.decode('\\x93\\x01')",
        "return msgpack.decode('\\xc0') == nil, msgpack.NULL == nil",
        "return msgpack.decode('\\xcb\\x3f\\xf8\\x00\\x00\\x00\\x00\\x00\\x00')",
        "return msgpack.encode(function() end)",
        "return msgpack.decode(1)",
        "return msgpack.decode('\\xc4\\x03abc')",
        "return msgpack.decode('\\xcf\\x00\\x00\\x00\\x01\\x00\\x00\\x00\\x00')",
        "return hex(msgpack.encode(require('decimal').new('-12.345')))",
        "return hex(msgpack.encode(require('uuid').fromstr('00112233-4455-6677-8899-aabbccddeeff')))",
        "return msgpack.decode(msgpack.encode(require('decimal').new('-12.345')))",
        "return hex(msgpack.encode({[1] = 'a', [20] = 'b'}))",
        "return hex(msgpack.encode(string.rep('x', 40))), hex(msgpack.encode(-200)), "
        'hex(msgpack.encode(-40000)), hex(msgpack.encode(-3e9))',
        'return hex(msgpack.encode(1ULL)), hex(msgpack.encode(-1LL)), hex(msgpack.encode(2^63))',
        "return msgpack.decode('\\xd4\\x07\\x00')",
        "return msgpack.decode('\\xca\\x3f\\xc0\\x00\\x00')",
        "return msgpack.decode('\\xcf\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff')",
        "return msgpack.decode('\\xd3\\x80\\x00\\x00\\x00\\x00\\x00\\x00\\x00')",
        "return msgpack.decode('\\x81\\xa1a\\xc0')",
        "return msgpack.decode('')",
        "return msgpack.decode('\\x01\\x02', 3)",
    ],
    "yaml": [
        "return yaml.encode({1, 2, 3})",
        "return yaml.encode({a = 1})",
        "return yaml.encode('abc'), yaml.encode(1), yaml.encode(true), yaml.encode(yaml.NULL)",
        "return yaml.encode({a = {1, 'x'}})",
        "return yaml.encode({})",
        "return yaml.decode('---\\na: 1\\nb: [1, 2]\\n...\\n')",
        "return yaml.decode('- x\\n- 2.5\\n- null\\n- true\\n')",
        'return yaml.encode({a = {b = {c = 1}}})',
        "return yaml.encode('multi\\nline')",
        "return yaml.encode({'-', ' x', 'null', '~', 'true', '#a'})",
        "return yaml.encode(setmetatable({}, {__serialize = 'map'}))",
        "return yaml.decode('1'), yaml.decode('x'), yaml.decode('[1, {a: b}]')",
        "return yaml.decode('')",
        "return yaml.decode('--- 1\\n...\\n--- 2\\n')",
        "return yaml.encode({1/3, 'a b', 'yes', '1', 'x: y', {}, 1e100})",
    ],
    "log": [
        "return log.info('hello %s %d', 'world', 5)",
        "return log.warn('w'), log.error('e'), log.debug('d'), log.verbose('v')",
        "return log.info({a = 1})",
        "return type(log.info), type(log.warn), type(log.error)",
        "return log.info('%d', 'x')",
    ],
    "clock": [
        "return type(clock.time()), type(clock.realtime()), type(clock.monotonic()), type(clock.proc())",
        "return type(clock.time64()), type(clock.monotonic64()), type(clock.realtime64()), type(clock.proc64())",
        "return clock.time() > 1.6e9, clock.realtime() > 1.6e9, clock.monotonic() >= 0, clock.proc() >= 0",
        "local a = clock.monotonic() local b = clock.monotonic() return b >= a",
        "return clock.time64() > 1600000000000000000ULL, math.abs(tonumber(clock.time64()) / 1e9 - clock.time()) < 5",
        "local a = clock.monotonic64() return clock.monotonic64() - a >= 0",
        "local r = clock.bench(function(x) return x + 1 end, 41) return type(r[1]), r[2]",
        "return type(clock.thread()), type(clock.thread64())",
        'return type(clock.bench(function() end)[1])',
    ],
    "uuid": [
        "return uuid.fromstr('00112233-4455-6677-8899-aabbccddeeff'):str()",
        "return tostring(uuid.fromstr('00112233-4455-6677-8899-AABBCCDDEEFF'))",
        "return uuid.fromstr('00112233-4455-6677-8899-aabbccddeeff')",
        "return hex(uuid.fromstr('00112233-4455-6677-8899-aabbccddeeff'):bin())",
        "return hex(uuid.fromstr('00112233-4455-6677-8899-aabbccddeeff'):bin('b'))",
        "return hex(uuid.fromstr('00112233-4455-6677-8899-aabbccddeeff'):bin('l'))",
        "return uuid.frombin(uuid.fromstr('00112233-4455-6677-8899-aabbccddeeff'):bin()):str()",
        "return uuid.frombin(uuid.fromstr('00112233-4455-6677-8899-aabbccddeeff'):bin('b'), 'b'):str()",
        "return uuid.NULL:str(), uuid.NULL:isnil(), uuid.new():isnil()",
        "return uuid.fromstr('nope'), uuid.frombin('short')",
        "return #uuid.str(), #uuid.bin(), #uuid.new():str(), uuid.str():sub(15, 15)",
        "local u = uuid.new() return u == uuid.fromstr(u:str()), u ~= uuid.new()",
        "local s = '00112233-4455-6677-8899-aabbccddeeff' return uuid.fromstr(s) == uuid.fromstr(s)",
        "return {u = uuid.fromstr('00112233-4455-6677-8899-aabbccddeeff')}, type(uuid.new())",
        "local u = uuid() return u:isnil(), #u:str()",
        "return uuid.fromstr('00112233445566778899aabbccddeeff'), "
        "uuid.fromstr('{00112233-4455-6677-8899-aabbccddeeff}')",
        'return uuid.fromstr(123)',
        "return uuid.new() == 'x', uuid.NULL == nil",
    ],
    "decimal": [
        "return decimal.new('1.10'), tostring(decimal.new('1.10'))",
        "return tostring(decimal.new(1) / 3), tostring(decimal.new(2) / 3)",
        "return tostring(decimal.new(1) + 2), tostring(3 - decimal.new('0.5')), tostring(decimal.new('1.5') * 2)",
        "return tostring(decimal.new(0.1)), tostring(decimal.new(1/3)), tostring(decimal.new(100))",
        "return tostring(decimal.new('1e10')), tostring(decimal.new('1E-5')), tostring(decimal.new('-0'))",
        "return decimal.new('abc')",
        "return decimal.new(1) / 0",
        "return tostring(-decimal.new('2.5')), tostring(decimal.new(7) % 3), tostring(decimal.new(2) ^ 10)",
        "return decimal.new(1) < decimal.new(2), decimal.new('1.0') == decimal.new(1), decimal.new(3) <= 3",
        "return decimal.precision(decimal.new('12.345')), decimal.scale(decimal.new('12.345'))",
        "return tostring(decimal.round(decimal.new('2.345'), 2)), tostring(decimal.round(decimal.new('2.5'), 0))",
        "return tostring(decimal.abs(decimal.new('-3'))), tostring(decimal.sqrt(decimal.new(2)))",
        "return tostring(decimal.ln(decimal.new(10))), tostring(decimal.log10(decimal.new(1000))), "
        "tostring(decimal.exp(decimal.new(1)))",
        "return decimal.is_decimal(decimal.new(1)), decimal.is_decimal(1), type(decimal.new(1))",
        "return decimal.new('123456789012345678901234567890.12345678')",
        "return tostring(decimal.new('1.5') + 0.25)",
        "return decimal.new(1) + 'x'",
        "return tonumber(decimal.new('2.5')), tostring(decimal.new(2^40))",
        "return tostring(decimal.trim(decimal.new('1.500'))), tostring(decimal.rescale(decimal.new('1.5'), 3))",
        "return decimal.new('1e40')",
        "return {d = decimal.new('-0.001')}",
        "return tostring(decimal.new('0.1') + decimal.new('0.2')), tostring(decimal.new('1') - decimal.new('1.00'))",
        "return tostring(decimal.new('99999999999999999999999999999999999999') + 1)",
        "return tostring(decimal.new('1e-38')), tostring(decimal.new('1e-39'))",
        "return tostring(decimal.new('12345678901234567890123456789012345678.9'))",
        'return tostring(decimal.new(-1) ^ 0.5)',
        'return tostring(decimal.ln(decimal.new(0)))',
        "return tostring(decimal.new('-1.5') % 1), tostring(decimal.new(10) / 4)",
        "return tostring(decimal.new('1e33')), tostring(decimal.new('-1.2345e33')), tostring(decimal.new('1.5e37'))",
        "return decimal.new('1e38')",
        "return decimal.new('1') == 1, decimal.new(2) > 1, 1 < decimal.new(2), decimal.new(1) == nil",
        "return tostring(decimal.round(decimal.new('-2.5'), 0)), tostring(decimal.round(decimal.new('123.456'), -1))",
        'return decimal.new(1LL), decimal.new(-5ULL)',
        'return decimal.new(nil)',
        'return decimal.new(true)',
        "return tostring(decimal.new('  1.5'))",
        "return tostring(decimal.new('1.5e')), 1",
        "return decimal.precision(decimal.new(0)), decimal.scale(decimal.new('0.00')), tostring(decimal.new('0.00'))",
    ],
    "digest": [
        "return digest.md5_hex('abc'), digest.sha1_hex('abc'), digest.sha256_hex('abc')",
        "return digest.sha512_hex('abc'), digest.sha224_hex('abc'), digest.sha384_hex('abc')",
        "return hex(digest.md5('abc')), hex(digest.sha1('')), #digest.sha256('x'), #digest.sha512('x')",
        "return digest.crc32('abc'), digest.crc32(''), digest.crc32('123456789')",
        "return digest.base64_encode('hello world'), digest.base64_decode('aGVsbG8gd29ybGQ=')",
        "return digest.base64_encode(string.rep('x', 100))",
        "return digest.base64_encode('\\255\\254\\253', {urlsafe = true}), "
        "digest.base64_encode('ab', {nopad = true}), digest.base64_encode(string.rep('y', 60), {nowrap = true})",
        "return digest.base64_decode('aGVsbG8'), digest.base64_decode('aGV sbG8=\\n')",
        "return digest.murmur('abc'), digest.murmur(''), digest.murmur('hello world')",
        "return digest.guava(10863919174838991, 11), digest.guava(2016238256797177309, 11)",
        "return #digest.urandom(16), type(digest.urandom(0))",
        "return digest.md5_hex(1)",
        "return digest.md5_hex()",
        "local c = digest.crc32.new() c:update('12345') c:update('6789') return c:result()",
        "return digest.crc32_update(4294967295, '123456789')",
        "return digest.sha1_hex(''), digest.md5_hex(string.rep('a', 1000))",
        "return digest.base64_decode('!!!'), digest.base64_decode(''), digest.base64_encode('')",
        "return digest.base64_encode('\\255\\255\\254', {urlsafe = true, nopad = false})",
        "return digest.murmur('a'), digest.murmur('ab'), digest.murmur('abcd'), digest.murmur('abcde')",
        'return digest.guava(1, 100), digest.guava(-1, 100), digest.guava(123456789, 1000)',
        'return digest.crc32(1234)',
    ],
    "errno": [
        "return errno.ENOENT, errno.EAGAIN, errno.EINVAL, errno.EEXIST, errno.EPERM, errno.ENOTDIR",
        "return errno.strerror(errno.ENOENT), errno.strerror(13)",
        "return type(errno()), type(errno.strerror())",
        "return errno.ECONNREFUSED, errno.ETIMEDOUT, errno.EINTR, errno.EWOULDBLOCK",
        'return errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSPC, errno.EDEADLK, errno.ENOSYS',
        'return errno.strerror(0), errno.strerror(9999)',
    ],
    "fun": [  # luafun, which Tarantool bundles (asynctnt's app.lua checks versions with it)
        "return fun.iter({1, 2, 3}):map(function(x) return x * 2 end):totable()",
        "return fun.range(10):filter(function(x) return x % 2 == 1 end):sum(), fun.iter('abc'):totable()",
        "return fun.iter({'2', '6', '0'}):zip({2, 10}):reduce(function(r, l, x) "
        "if r ~= nil then return r end if tonumber(l) == x then return nil end return tonumber(l) > x end, nil)",
        "return fun.iter({a = 1}):totable(), fun.length({4, 5}), fun.operator.add(1, 2)",
    ],
    "fio": [
        "return fio.basename('/a/b/c.txt'), fio.basename('/a/b/c.txt', '.txt'), fio.dirname('/a/b/c.txt')",
        "return fio.pathjoin('a', 'b', 'c'), fio.pathjoin('/a/', 'b'), fio.dirname('c'), fio.basename('/')",
        "return fio.path.exists('/nonexistent/x'), fio.path.exists('/'), fio.path.is_dir('/'), "
        "fio.path.is_file('/')",
        "local d = fio.tempdir() local ok = fio.path.is_dir(d) fio.rmtree(d) return ok, fio.path.exists(d)",
        "local d = fio.tempdir() local p = fio.pathjoin(d, 'f') "
        "local f = fio.open(p, {'O_RDWR', 'O_CREAT'}, tonumber('644', 8)) "
        "local n = f:write('hello') f:close() "
        "f = fio.open(p) local s = f:read(100) local s2 = f:read(100) f:close() "
        "local st = fio.stat(p) local r = {n, s, s2, st.size, st:is_reg(), st:is_dir(), "
        "bit.band(st.mode, tonumber('777', 8))} "
        "fio.unlink(p) fio.rmdir(d) return r, fio.path.exists(p)",
        "local d = fio.tempdir() fio.mkdir(fio.pathjoin(d, 'x')) fio.mkdir(fio.pathjoin(d, 'y')) "
        "local l = fio.listdir(d) table.sort(l) fio.rmtree(d) return l",
        "return fio.open('/nonexistent/x')",
        "return fio.stat('/nonexistent/x')",
        "return fio.mkdir('/nonexistent/x/y')",
        "return fio.unlink('/nonexistent/x')",
        "return fio.listdir('/nonexistent/x')",
        "local d = fio.tempdir() local p = fio.pathjoin(d, 'f') "
        "local f = fio.open(p, {'O_WRONLY', 'O_CREAT', 'O_TRUNC'}, tonumber('600', 8)) f:write('abc', 2) f:close() "
        "f = fio.open(p, {'O_RDONLY'}) local s = f:read() f:seek(1) local s1 = f:read(1) f:close() "
        "fio.rmtree(d) return s, s1",
        "return fio.stat('/'):is_dir(), type(fio.stat('/').mtime), type(fio.cwd())",
        "return fio.c.flag.O_RDONLY, fio.c.flag.O_CREAT, fio.c.flag.O_TRUNC, fio.c.flag.O_APPEND",
        "return fio.path.lexists('/'), fio.abspath('/a/../b'), fio.rmdir('/nonexistent/x')",
        "return fio.basename('a/b/'), fio.dirname('/a/b/'), fio.dirname('/'), fio.dirname(''), fio.basename('')",
        "return fio.pathjoin('a'), fio.pathjoin('/', 'a'), fio.pathjoin('a', '/b'), fio.pathjoin('a/', '/b/')",
        "return fio.open('/', {'O_RDONLY', 'O_BOGUS'})",
        'local d = fio.tempdir() local ok = fio.mkdir(d) fio.rmdir(d) return ok',
        "local d = fio.tempdir() local f = fio.open(d .. '/x', {'O_CREAT', 'O_WRONLY'}) "
        "f:write('12345') f:close() local s = fio.stat(d .. '/x') "
        "local r = {s.size, s:is_dir(), s:is_reg()} fio.rmtree(d) return r",
        "local d = fio.tempdir() local f = fio.open(d .. '/x', {'O_CREAT', 'O_RDWR'}) "
        "f:write('hello') local p = f:pread(3, 1) f:seek(0) local a = f:read(2) f:close() fio.rmtree(d) return p, a",
        "return fio.glob('/nonexistent/*')",
    ],
}


@pytest.fixture(scope="module")
def tarantool_port(tarantool_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with tarantool_script(tarantool_bin, ROOT / "lua" / "eval_setup.lua", tmp_path_factory.mktemp("modules")) as port:
        yield port


def answer(c: tarantool.Connection, expr: str) -> Any:
    try:
        return ("ok", c.eval(expr).data)
    except tarantool.error.DatabaseError as e:
        return ("error", e.args[0], e.args[1])


@pytest.mark.parametrize("module", sorted(CASES))
def test_module_as_tarantool(module: str, tarantool_port: int, make_server: Any) -> None:
    styx = make_server(app=APP)
    t = tarantool.Connection("127.0.0.1", tarantool_port)
    s = tarantool.Connection("127.0.0.1", styx.port)
    try:
        prelude = PRELUDE.format(m=module)
        diffs = differences(CASES[module], lambda expr: answer(t, prelude + expr),
                            lambda expr: answer(s, prelude + expr))
        assert not diffs, diffs
    finally:
        t.close()
        s.close()


# -- Styx only: what 2.6 has not (datetime, uuid.is_uuid), what goes to Python --------


def styx_eval(c: tarantool.Connection, module: str, expr: str, *args: Any) -> Any:
    return c.eval(PRELUDE.format(m=module) + expr, list(args)).data


@pytest.fixture
def styx(make_server: Any) -> Iterator[tarantool.Connection]:
    c = tarantool.Connection("127.0.0.1", make_server(app=APP).port)
    yield c
    c.close()


# Tarantool 2.10's datetime (src/lua/datetime.lua, datetime_to_string in
# src/lib/core/datetime.c; the docs' example is 2021-08-04T00:00:00+0300).
DATETIME_CASES: list[tuple[str, list[Any]]] = [
    ("return tostring(datetime.new{year = 2021, month = 8, day = 4, tzoffset = 180})",
     ["2021-08-04T00:00:00+0300"]),
    ("return tostring(datetime.new()), tostring(datetime.new{tzoffset = '-02:30'})",
     ["1970-01-01T00:00:00Z", "1970-01-01T00:00:00-0230"]),
    ("return tostring(datetime.new{msec = 5}), tostring(datetime.new{usec = 5}), tostring(datetime.new{nsec = 5})",
     ["1970-01-01T00:00:00.005Z", "1970-01-01T00:00:00.000005Z", "1970-01-01T00:00:00.000000005Z"]),
    ("local d = datetime.new{year = 2024, month = 2, day = 29, hour = 13, min = 14, sec = 15, tzoffset = 60} "
     "return d.year, d.month, d.day, d.hour, d.min, d.sec, d.epoch, d.tzoffset, d.wday, d.yday",
     [2024, 2, 29, 13, 14, 15, 1709208855, 60, 5, 60]),
    ("local t = datetime.new{year = 2000, month = 12, day = 31, nsec = 7}:totable() "
     "return t.year, t.month, t.day, t.hour, t.min, t.sec, t.nsec, t.wday, t.yday, t.isdst, t.tzoffset",
     [2000, 12, 31, 0, 0, 0, 7, 1, 366, False, 0]),
    ("return datetime.new{year = 2022, month = 3, day = 4, hour = 5}:format('%Y/%m/%d %H:%M:%S %z')",
     ["2022/03/04 05:00:00 +0000"]),
    ("return datetime.new{year = 2022, month = 3, day = 4}:format()", ["2022-03-04T00:00:00Z"]),
    ("return tostring(datetime.new{year = 2022, month = 1, day = 31} + {month = 1}), "
     "tostring(datetime.new{year = 2022, month = 3, day = 1} - {day = 1, hour = 1})",
     ["2022-02-28T00:00:00Z", "2022-02-27T23:00:00Z"]),
    ("local d = datetime.new{year = 2022} d:set{month = 6, hour = 3} return tostring(d)",
     ["2022-06-01T03:00:00Z"]),
    ("local d, n = datetime.parse('2022-03-04T05:06:07.25+03:00') return tostring(d), n",
     ["2022-03-04T05:06:07.250+0300", 28]),
    ("return tostring(datetime.parse('2022-03-04')), tostring(datetime.new{timestamp = 1.5})",
     ["2022-03-04T00:00:00Z", "1970-01-01T00:00:01.500Z"]),
    ("return datetime.new{year = 2022} < datetime.new{year = 2023}, "
     "datetime.new{year = 2022} == datetime.new{year = 2022}, datetime.is_datetime(datetime.new()), "
     "datetime.is_datetime({}), type(datetime.now())",
     [True, True, True, False, "cdata"]),
    ("return math.abs(datetime.now().timestamp - os.time()) < 5", [True]),
    # The bytes of MessagePack extension 4: int64 seconds, then nsec, tzoffset, tzindex if any is set.
    ("return hex(msgpack.encode(datetime.new{year = 2022}))",
     ["d704" + struct.pack("<q", 1640995200).hex()]),
    ("return hex(msgpack.encode(datetime.new{year = 2022, nsec = 1, tzoffset = 180}))",
     ["d804" + struct.pack("<qihh", 1640995200 - 180 * 60, 1, 180, 0).hex()]),
    ("return tostring(msgpack.decode(msgpack.encode(datetime.new{year = 1969, month = 7, day = 20, tzoffset = -300})))",
     ["1969-07-20T00:00:00-0500"]),
]


@pytest.mark.parametrize(("expr", "expected"), DATETIME_CASES)
def test_datetime_as_tarantool_2_10(styx: tarantool.Connection, expr: str, expected: list[Any]) -> None:
    assert styx_eval(styx, "datetime", "local msgpack = require('msgpack') " + expr) == expected


@pytest.mark.parametrize(("expr", "message"), [
    ("return datetime.new{month = 13}", "value 13 of month is out of allowed range [1, 12]"),
    ("local d = datetime.new{year = 2021, month = 2, day = 30} return d",
     "eval:1: invalid number of days 30 in month 2 for 2021"),
    ("local d = datetime.new{nsec = 1, usec = 1} return d",
     "eval:1: only one of nsec, usec or msecs may be defined simultaneously"),
    ("local d = datetime.parse('yesterday') return d", "eval:1: could not parse 'yesterday'"),
])
def test_datetime_errors(styx: tarantool.Connection, expr: str, message: str) -> None:
    with pytest.raises(tarantool.error.DatabaseError) as e:
        styx_eval(styx, "datetime", expr)
    assert e.value.args[:2] == (32, message)


def test_values_cross_iproto_as_python_types(styx: tarantool.Connection) -> None:
    """uuid, decimal and datetime arguments are Lua objects with their
    methods; returned, they are uuid.UUID, decimal.Decimal and the
    connector's Datetime again; NULL is None, an int64 cdata an int."""
    u, d = uuid.UUID("00112233-4455-6677-8899-aabbccddeeff"), decimal.Decimal("-12.345")
    t = tarantool.Datetime(year=2022, month=1, day=31, hour=12, nsec=1000, tzoffset=180)
    r = styx_eval(styx, "uuid", "local u, d, t = ... return u:str(), tostring(d), tostring(t), "
                  "uuid.is_uuid(u), tostring(d * 2), t.hour, u, d, t", u, d, t)
    assert r[:6] == [str(u), "-12.345", "2022-01-31T12:00:00.000001+0300", True, "-24.690", 12]
    assert r[6:8] == [u, d] and type(r[6]) is uuid.UUID and type(r[7]) is decimal.Decimal
    assert isinstance(r[8], tarantool.Datetime) and r[8] == t
    assert styx_eval(styx, "json", "return json.NULL, {json.NULL}, require('clock').time64() > 0, "
                     "0x7fffffffffffffffLL") == [None, [None], True, 2**63 - 1]


def test_values_from_a_space_are_lua_objects(styx: tarantool.Connection) -> None:
    """A tuple that box gives Lua holds a Lua uuid and decimal (with :str(),
    arithmetic), and what Lua stores comes back to Python as UUID/Decimal."""
    u = uuid.uuid4()
    styx.insert("ext", [1, u, decimal.Decimal("1.5")])
    r = styx_eval(styx, "uuid", "local t = box.space.ext:get(1) "
                  "return t[2]:str(), uuid.is_uuid(t[2]), tostring(t[3] + 1), t[2] == uuid.fromstr(t[2]:str())")
    assert r == [str(u), True, "2.5", True]
    styx_eval(styx, "uuid", "box.space.ext:replace{2, uuid.fromstr('00112233-4455-6677-8899-aabbccddeeff'), "
              "require('decimal').new('0.001')}")
    assert styx.select("ext", 2).data == [[2, uuid.UUID("00112233-4455-6677-8899-aabbccddeeff"),
                                           decimal.Decimal("0.001")]]


def test_uuid_is_uuid_and_yaml_errors(styx: tarantool.Connection) -> None:
    assert styx_eval(styx, "uuid", "return uuid.is_uuid(uuid.new()), uuid.is_uuid('x'), uuid.is_uuid(uuid())") == [
        True, False, True]
    with pytest.raises(tarantool.error.DatabaseError) as e:
        styx_eval(styx, "yaml", "return yaml.decode('a: [1')")
    assert e.value.args[0] == 32 and "expected ',' or ']'" in e.value.args[1]


def test_log_goes_to_the_styx_lua_logger(styx: tarantool.Connection, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="styx.lua"):
        styx_eval(styx, "log", "log.info('hello %s %d', 'world', 5) log.warn({a = 1}) log.error('plain %s') "
                  "log.debug('d') log.verbose('v')")
    got = [(r.name, r.levelno, r.getMessage()) for r in caplog.records if r.name == "styx.lua"]
    assert got == [("styx.lua", logging.INFO, "hello world 5"), ("styx.lua", logging.WARNING, '{"a":1}'),
                   ("styx.lua", logging.ERROR, "plain %s"), ("styx.lua", logging.DEBUG, "d"),
                   ("styx.lua", 15, "v")]


@pytest.mark.parametrize("name", ["net.box", "console"])
def test_missing_modules_name_themselves(styx: tarantool.Connection, name: str) -> None:
    with pytest.raises(tarantool.error.DatabaseError) as e:
        styx.eval(f"return require('{name}')")
    assert e.value.args[:2] == (32, f"Styx's Lua has no module '{name}' yet")


def test_lua_cannot_reach_python(styx: tarantool.Connection) -> None:
    """The helpers are Python functions, and a script can find them (debug
    is there, as in Tarantool): it may call them, but gets no '_' attribute
    of them (so no __globals__, no __class__), and there is no python.eval
    or python.builtins."""
    r = styx.eval("""
        local py
        for i = 1, 10 do
            local name, v = debug.getupvalue(require('digest').md5_hex, i)
            if name == 'py' then py = v end
        end
        local function try(f) local ok = pcall(f) return ok end
        return type(py.hash), #py.hash('md5', 'x'),
               try(function() return py.hash.__globals__ end),
               try(function() return py.hash.__class__ end),
               try(function() return py.hash._x end),
               python == nil or (python.eval == nil and python.builtins == nil)
    """).data
    assert r == ["userdata", 16, False, False, False, True]


def test_fio_handles_dropped_close_their_descriptors(tmp_path: Path) -> None:
    from styx.tx.lua import Lua

    (tmp_path / "f").write_text("x")
    lua = Lua(None, lambda value: None)
    before = len(os.listdir("/proc/self/fd"))
    lua.eval("local fio = require('fio') for i = 1, 50 do fio.open(...) end collectgarbage() collectgarbage()",
             [str(tmp_path / "f")])
    assert len(os.listdir("/proc/self/fd")) <= before
    assert lua.eval("local f = require('fio').open(...) collectgarbage() collectgarbage() "
                    "local s = f:read() f:close() return s, f.fd", [str(tmp_path / "f")]) == ("x", None)
