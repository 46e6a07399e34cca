-- What Styx's Lua modules share (styx/tx/lua_modules.py loads this first and
-- hands the table it returns to every module): the NULL the serializers
-- write as nil, Tarantool's rule for "is this table an array or a map", the
-- cdata types (uuid, decimal, datetime) and how each crosses to Python.
-- `py` is a Lua table of plain Python functions (lua_modules.py, _helpers).
local py = ...
local ffi = require('ffi')

local S = {py = py, ffi = ffi}

-- Tarantool's box.NULL, json.NULL, msgpack.NULL and yaml.NULL: a NULL
-- pointer, so `NULL == nil` is true and a table keeps its slot.
S.NULL = ffi.cast('void *', 0)

-- What the decoders put on what they make, as Tarantool's do, so that an
-- empty object encodes back as {} and not [].
S.map_mt = {__serialize = 'map'}
S.array_mt = {__serialize = 'seq'}

-- cdef once per Lua state: another module (or a second load) may have them.
local function cdef(decl) pcall(ffi.cdef, decl) end
S.cdef = cdef

cdef[[
struct styx_uuid { uint8_t b[16]; };
struct styx_decimal { char s[48]; };
struct styx_datetime { double epoch; int32_t nsec; int16_t tzoffset; int16_t tzindex; };
struct styx_datetime_wire { int64_t epoch; int32_t nsec; int16_t tzoffset; int16_t tzindex; };
]]
-- MP_BIN in Lua, as Tarantool 3.0 keeps it (Styx greets as 3.0, and its
-- Python procedures keep str and bytes apart too): a varbinary object with
-- a length, its bytes by tostring, equal to the same bytes or string.
cdef[[struct varbinary { uint32_t size; char data[?]; };]]
S.varbinary_t = ffi.typeof('struct varbinary')
local function varbinary_string(v) return ffi.string(v.data, v.size) end
ffi.metatype(S.varbinary_t, {
    __len = function(v) return v.size end,
    __tostring = varbinary_string,
    __eq = function(a, b)
        local function s(x) return type(x) == 'cdata' and ffi.istype(S.varbinary_t, x) and varbinary_string(x) or x end
        return s(a) == s(b)
    end,
})
function S.varbinary(str)
    local v = S.varbinary_t(#str, #str)
    ffi.copy(v.data, str, #str)
    return v
end

S.uuid_t = ffi.typeof('struct styx_uuid')
S.decimal_t = ffi.typeof('struct styx_decimal')
S.datetime_t = ffi.typeof('struct styx_datetime')
local int64_t, uint64_t = ffi.typeof('int64_t'), ffi.typeof('uint64_t')
S.int64_t, S.uint64_t = int64_t, uint64_t

function S.is_null(v)
    return type(v) == 'cdata' and ffi.istype('void *', v) and v == nil
end

-- A Lua number as Tarantool's serializers see it (luaL_tofield): integral
-- and in range is an integer, anything else a double.
function S.number_kind(x)
    if x == x and x ~= math.huge and x ~= -math.huge and math.floor(x) == x then
        if x >= 0 and x < 2^64 then return 'uint' end
        if x >= -2^63 and x < 2^63 then return 'int' end
    end
    return 'double'
end

-- A table as Tarantool's serializers see it: 'map', or 'array' and its
-- length. __serialize wins; else only positive integer keys make an array,
-- unless it is too sparse (encode_sparse_ratio 2, encode_sparse_safe 10),
-- which Tarantool turns into a map (encode_sparse_convert).
function S.shape(t)
    local mt = getmetatable(t)
    local hint = type(mt) == 'table' and rawget(mt, '__serialize') or nil
    if hint == 'map' or hint == 'mapping' then return 'map' end
    if hint == 'seq' or hint == 'sequence' or hint == 'array' then
        local n = 0
        for k in pairs(t) do
            if type(k) == 'number' and k > n and math.floor(k) == k then n = k end
        end
        return 'array', n
    end
    local max, size = 0, 0
    for k in pairs(t) do
        if type(k) ~= 'number' or k < 1 or math.floor(k) ~= k then return 'map' end
        size = size + 1
        if k > max then max = k end
    end
    if max > size * 2 and max > 10 then return 'map' end
    return 'array', max
end

-- A table's __serialize function, applied: what the serializers encode instead.
function S.serialized(v)
    if type(v) == 'table' then
        local mt = getmetatable(v)
        local f = type(mt) == 'table' and rawget(mt, '__serialize') or nil
        if type(f) == 'function' then return f(v) end
    end
    return v
end

-- An int64_t/uint64_t cdata as a Lua number when it fits a double exactly.
function S.int64_value(v)
    local s = tostring(v):gsub('U?LL$', '')
    return tonumber(s), s
end

-- -- crossing to Python (lua_modules.Values) -------------------------------------

-- A datetime as MessagePack extension 4 carries it (little-endian, as this host).
local datetime_bytes = ffi.new('struct styx_datetime_wire[1]')

-- What Lua.from_lua asks of a cdata: its kind and a payload Python reads.
function S.export(v)
    if ffi.istype('void *', v) and v == nil then return 'nil' end
    if ffi.istype(S.uuid_t, v) then return 'uuid', ffi.string(v.b, 16) end
    if ffi.istype(S.varbinary_t, v) then return 'bin', varbinary_string(v) end
    if ffi.istype(S.decimal_t, v) then return 'decimal', ffi.string(v.s) end
    if ffi.istype(S.datetime_t, v) then
        local w = datetime_bytes[0]
        w.epoch, w.nsec, w.tzoffset, w.tzindex = v.epoch, v.nsec, v.tzoffset, v.tzindex
        return 'datetime', ffi.string(datetime_bytes, 16)
    end
    if ffi.istype(int64_t, v) or ffi.istype(uint64_t, v) then
        local _, s = S.int64_value(v)
        return 'int', s
    end
    return nil
end

-- What Lua.to_lua makes of a Python uuid, decimal or datetime.
function S.import(kind, payload)
    if kind == 'uuid' then
        local u = S.uuid_t()
        ffi.copy(u.b, payload, 16)
        return u
    elseif kind == 'decimal' then
        local d = S.decimal_t()
        ffi.copy(d.s, payload)
        return d
    elseif kind == 'bin' then
        return S.varbinary(payload)
    elseif kind == 'datetime' then
        local w = datetime_bytes[0]
        w.nsec, w.tzoffset, w.tzindex = 0, 0, 0
        ffi.copy(datetime_bytes, payload, #payload)
        return S.datetime_t(tonumber(w.epoch), w.nsec, w.tzoffset, w.tzindex)
    end
    error('unknown kind ' .. tostring(kind))
end

return S
