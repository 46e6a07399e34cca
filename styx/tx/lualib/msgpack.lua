-- msgpack, as Tarantool 2.6's: encode(value) -> string with Tarantool's
-- serializer rules (S.shape, S.number_kind) and its extensions (decimal 1,
-- uuid 2, datetime 4); decode(string[, pos]) -> value, next position.
local S = ...
local ffi = S.ffi
local char, byte = string.char, string.byte

local msgpack = {NULL = S.NULL}

local u64 = ffi.typeof('uint64_t')
local dbl = ffi.new('double[1]')

-- n big-endian bytes of an integer given as a Lua number (two's complement if negative).
local function be(x, n)
    local v = x < 0 and ffi.cast(u64, ffi.cast('int64_t', x)) or ffi.cast(u64, x)
    local out = {}
    for i = n - 1, 0, -1 do
        out[#out + 1] = char(tonumber(bit.band(bit.rshift(v, 8 * i), 0xff)))
    end
    return table.concat(out)
end

local function encode_int(x, out)
    if x >= 0 then
        if x < 128 then out[#out + 1] = char(x)
        elseif x < 2^8 then out[#out + 1] = '\204' .. be(x, 1)
        elseif x < 2^16 then out[#out + 1] = '\205' .. be(x, 2)
        elseif x < 2^32 then out[#out + 1] = '\206' .. be(x, 4)
        else out[#out + 1] = '\207' .. be(x, 8) end
    else
        if x >= -32 then out[#out + 1] = char(256 + x)
        elseif x >= -2^7 then out[#out + 1] = '\208' .. be(x, 1)
        elseif x >= -2^15 then out[#out + 1] = '\209' .. be(x, 2)
        elseif x >= -2^31 then out[#out + 1] = '\210' .. be(x, 4)
        else out[#out + 1] = '\211' .. be(x, 8) end
    end
end

local function header(n, fix, limit, c16, c32, out)
    if n < limit then out[#out + 1] = char(fix + n)
    elseif n < 2^16 then out[#out + 1] = c16 .. be(n, 2)
    else out[#out + 1] = c32 .. be(n, 4) end
end

local function ext(kind, data, out)
    local n = #data
    local fixed = {[1] = '\212', [2] = '\213', [4] = '\214', [8] = '\215', [16] = '\216'}
    if fixed[n] then out[#out + 1] = fixed[n] .. char(kind) .. data
    elseif n < 2^8 then out[#out + 1] = '\199' .. char(n) .. char(kind) .. data
    elseif n < 2^16 then out[#out + 1] = '\200' .. be(n, 2) .. char(kind) .. data
    else out[#out + 1] = '\201' .. be(n, 4) .. char(kind) .. data end
end

local encode_value

local function encode_cdata(v, out)
    if S.is_null(v) then out[#out + 1] = '\192'; return end
    local kind, payload = S.export(v)
    if kind == 'uuid' then ext(2, payload, out)
    elseif kind == 'decimal' then ext(1, S.py.decimal_pack(payload), out)
    elseif kind == 'datetime' then
        -- Tarantool's datetime_pack: 8 bytes unless nsec, tzoffset or tzindex is set.
        ext(4, payload:sub(9) == string.rep('\0', 8) and payload:sub(1, 8) or payload, out)
    elseif kind == 'bin' then
        local n = #payload
        if n < 2^8 then out[#out + 1] = '\196' .. char(n)
        elseif n < 2^16 then out[#out + 1] = '\197' .. be(n, 2)
        else out[#out + 1] = '\198' .. be(n, 4) end
        out[#out + 1] = payload
    elseif kind == 'int' then
        -- As small as it goes, as Tarantool packs an int64/uint64 cdata.
        local n = tonumber(payload)
        if n ~= nil and n >= -2^53 and n <= 2^53 then encode_int(n, out); return end
        local bytes = {}
        local u = ffi.cast(u64, v)
        for i = 7, 0, -1 do bytes[#bytes + 1] = char(tonumber(bit.band(bit.rshift(u, 8 * i), 0xff))) end
        out[#out + 1] = (payload:sub(1, 1) == '-' and '\211' or '\207') .. table.concat(bytes)
    else
        error("unsupported Lua type 'cdata'", 0)
    end
end

function encode_value(v, out, depth)
    v = S.serialized(v)
    local t = type(v)
    if t == 'nil' then out[#out + 1] = '\192'
    elseif t == 'boolean' then out[#out + 1] = v and '\195' or '\194'
    elseif t == 'number' then
        if S.number_kind(v) == 'double' then
            dbl[0] = v
            out[#out + 1] = '\203' .. ffi.string(dbl, 8):reverse()
        else
            encode_int(v, out)
        end
    elseif t == 'string' then
        local n = #v
        if n < 32 then out[#out + 1] = char(0xa0 + n)
        elseif n < 2^8 then out[#out + 1] = '\217' .. char(n)
        elseif n < 2^16 then out[#out + 1] = '\218' .. be(n, 2)
        else out[#out + 1] = '\219' .. be(n, 4) end
        out[#out + 1] = v
    elseif t == 'table' then
        if depth > 128 then error('Too high nest level - 129', 0) end
        local shape, n = S.shape(v)
        if shape == 'array' then
            header(n, 0x90, 16, '\220', '\221', out)
            for i = 1, n do encode_value(v[i], out, depth + 1) end
        else
            local count = 0
            for _ in pairs(v) do count = count + 1 end
            header(count, 0x80, 16, '\222', '\223', out)
            for k, x in pairs(v) do
                encode_value(k, out, depth + 1)
                encode_value(x, out, depth + 1)
            end
        end
    elseif t == 'cdata' then encode_cdata(v, out)
    else
        error("unsupported Lua type '" .. t .. "'", 0)
    end
end

function msgpack.encode(v)
    local out = {}
    encode_value(v, out, 0)
    return table.concat(out)
end

-- -- decode ---------------------------------------------------------------------------

local INVALID = 'msgpack.decode: invalid MsgPack'

local function uint(s, pos, n)
    if pos + n - 1 > #s then error(INVALID, 0) end
    if n == 8 then
        local v = ffi.new(u64, 0)
        for i = 0, 7 do v = v * 256 + byte(s, pos + i) end
        if v < 2^53 then return tonumber(v) end
        return v
    end
    local v = 0
    for i = 0, n - 1 do v = v * 256 + byte(s, pos + i) end
    return v
end

local function int(s, pos, n)
    if n == 8 then
        if pos + 7 > #s then error(INVALID, 0) end
        local v = ffi.new(u64, 0)
        for i = 0, 7 do v = v * 256 + byte(s, pos + i) end
        local signed = ffi.cast('int64_t', v)
        if signed >= -2^53 and signed <= 2^53 then return tonumber(signed) end
        return signed
    end
    local v = uint(s, pos, n)
    if v >= 2^(8 * n - 1) then v = v - 2^(8 * n) end
    return v
end

local function take(s, pos, n)
    if pos + n - 1 > #s then error(INVALID, 0) end
    return s:sub(pos, pos + n - 1), pos + n
end

local decode_value

local function decode_ext(s, kind, data)
    if kind == 1 then
        local str = S.py.decimal_unpack(data)
        if str == nil then error(INVALID, 0) end
        return S.import('decimal', str)
    elseif kind == 2 and #data == 16 then
        return S.import('uuid', data)
    elseif kind == 4 and (#data == 8 or #data == 16) then
        return S.import('datetime', data)
    end
    error('Unsuported MsgPack extension type: ' .. kind, 0)
end

local function container(s, pos, n, is_map)
    local t = setmetatable({}, is_map and S.map_mt or S.array_mt)
    for i = 1, n do
        local v
        if is_map then
            local k
            k, pos = decode_value(s, pos)
            v, pos = decode_value(s, pos)
            if k ~= nil then t[k] = v end
        else
            v, pos = decode_value(s, pos)
            t[i] = v
        end
    end
    return t, pos
end

function decode_value(s, pos)
    local c = byte(s, pos)
    if c == nil then error(INVALID, 0) end
    pos = pos + 1
    if c < 0x80 then return c, pos end
    if c >= 0xe0 then return c - 256, pos end
    if c < 0x90 then return container(s, pos, c - 0x80, true) end
    if c < 0xa0 then return container(s, pos, c - 0x90, false) end
    if c < 0xc0 then return take(s, pos, c - 0xa0) end
    if c == 0xc0 then return S.NULL, pos end
    if c == 0xc1 then error('Unsuported MsgPack extension type: 0', 0) end
    if c == 0xc2 then return false, pos end
    if c == 0xc3 then return true, pos end
    if c >= 0xc4 and c <= 0xc6 then  -- bin 8/16/32
        local w = 2^(c - 0xc4)
        return take(s, pos + w, uint(s, pos, w))
    end
    if c >= 0xc7 and c <= 0xc9 then  -- ext 8/16/32
        local w = 2^(c - 0xc7)
        local n = uint(s, pos, w)
        local kind = int(s, pos + w, 1)
        local data, nxt = take(s, pos + w + 1, n)
        return decode_ext(s, kind, data), nxt
    end
    if c == 0xca then
        local raw = take(s, pos, 4)
        local f = ffi.new('float[1]')
        ffi.copy(f, raw:reverse(), 4)
        return tonumber(f[0]), pos + 4
    end
    if c == 0xcb then
        local raw = take(s, pos, 8)
        local d = ffi.new('double[1]')
        ffi.copy(d, raw:reverse(), 8)
        return d[0], pos + 8
    end
    if c >= 0xcc and c <= 0xcf then
        local w = 2^(c - 0xcc)
        return uint(s, pos, w), pos + w
    end
    if c >= 0xd0 and c <= 0xd3 then
        local w = 2^(c - 0xd0)
        return int(s, pos, w), pos + w
    end
    if c >= 0xd4 and c <= 0xd8 then  -- fixext 1/2/4/8/16
        local kind = int(s, pos, 1)
        local data, nxt = take(s, pos + 1, 2^(c - 0xd4))
        return decode_ext(s, kind, data), nxt
    end
    if c >= 0xd9 and c <= 0xdb then  -- str 8/16/32
        local w = 2^(c - 0xd9)
        return take(s, pos + w, uint(s, pos, w))
    end
    if c == 0xdc or c == 0xdd then
        local w = c == 0xdc and 2 or 4
        return container(s, pos + w, uint(s, pos, w), false)
    end
    local w = c == 0xde and 2 or 4
    return container(s, pos + w, uint(s, pos, w), true)
end

function msgpack.decode(s, pos)
    if type(s) ~= 'string' then error("msgpack.decode: a Lua string or 'char *' expected", 0) end
    pos = pos or 1
    if #s > 0 and (pos < 1 or pos > #s) then error('msgpack.decode: offset is out of bounds', 0) end
    return decode_value(s, pos)
end
msgpack.decode_unchecked = msgpack.decode

-- An array's or a map's header: fix (its 16 one-byte forms from `fix`), 16 or 32.
local function container_header(s, fix, c16, c32, who)
    local c = byte(s, 1)
    if c and c >= fix and c < fix + 16 then return c - fix, 2 end
    if c == c16 then return uint(s, 2, 2), 4 end
    if c == c32 then return uint(s, 2, 4), 6 end
    error('msgpack.' .. who .. ': unexpected MsgPack type', 0)
end

function msgpack.decode_array_header(s, size)
    return container_header(s, 0x90, 0xdc, 0xdd, 'decode_array_header')
end

function msgpack.decode_map_header(s, size)
    return container_header(s, 0x80, 0xde, 0xdf, 'decode_map_header')
end

function msgpack.cfg() end
function msgpack.new() return msgpack end

return msgpack
