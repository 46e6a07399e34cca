-- json, as Tarantool 2.6's (lua-cjson with Tarantool's serializer rules):
-- numbers as %.14g (integral ones in range as integers), '/' escaped,
-- tables as arrays or maps by S.shape, NULL as null; decode errors with
-- cjson's "Expected X but found Y on line L at character C".
local S = ...
local ffi = S.ffi

local json = {NULL = S.NULL}

local escapes = {['"'] = '\\"', ['\\'] = '\\\\', ['/'] = '\\/', ['\b'] = '\\b', ['\f'] = '\\f',
                 ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t'}
local function escape(c) return escapes[c] or string.format('\\u%04x', c:byte()) end

local function number(x)
    local kind = S.number_kind(x)
    if kind ~= 'double' then return string.format('%.0f', x + 0) end  -- + 0: -0 is 0
    if x ~= x then return 'nan' end
    if x == math.huge then return 'inf' end
    if x == -math.huge then return '-inf' end
    return string.format('%.14g', x)
end

local encode_value

local function encode_string(s, out)
    out[#out + 1] = '"' .. s:gsub('[%c"\\/]', escape) .. '"'
end

local function encode_table(t, out, depth)
    if depth > 128 then error('Too high nest level - 129', 0) end
    local shape, n = S.shape(t)
    if shape == 'array' then
        out[#out + 1] = '['
        for i = 1, n do
            if i > 1 then out[#out + 1] = ',' end
            encode_value(t[i], out, depth + 1)
        end
        out[#out + 1] = ']'
        return
    end
    out[#out + 1] = '{'
    local first = true
    for k, v in pairs(t) do
        if not first then out[#out + 1] = ',' end
        first = false
        if type(k) == 'string' then
            encode_string(k, out)
        elseif type(k) == 'number' then
            out[#out + 1] = '"' .. number(k) .. '"'
        else
            error("table key must be a number or string", 0)
        end
        out[#out + 1] = ':'
        encode_value(v, out, depth + 1)
    end
    out[#out + 1] = '}'
end

function encode_value(v, out, depth)
    v = S.serialized(v)
    local t = type(v)
    if t == 'nil' then out[#out + 1] = 'null'
    elseif t == 'boolean' then out[#out + 1] = v and 'true' or 'false'
    elseif t == 'number' then out[#out + 1] = number(v)
    elseif t == 'string' then encode_string(v, out)
    elseif t == 'table' then encode_table(v, out, depth)
    elseif t == 'cdata' and S.is_null(v) then out[#out + 1] = 'null'
    elseif t == 'cdata' and (ffi.istype(S.decimal_t, v) or ffi.istype(S.uuid_t, v)
                             or ffi.istype(S.datetime_t, v) or ffi.istype(S.varbinary_t, v)) then
        encode_string(tostring(v), out)  -- as Tarantool writes its extensions: strings
    elseif t == 'cdata' and (ffi.istype(S.int64_t, v) or ffi.istype(S.uint64_t, v)) then
        local _, s = S.int64_value(v)
        out[#out + 1] = s
    else
        error("unsupported Lua type '" .. t .. "'", 0)
    end
end

function json.encode(v)
    local out = {}
    encode_value(v, out, 0)
    return table.concat(out)
end

-- -- decode ---------------------------------------------------------------------------

local function fail(text, pos, expected, found)
    local line, col = 1, pos
    for nl in text:sub(1, pos - 1):gmatch('()\n') do
        line, col = line + 1, pos - nl
    end
    error(string.format('Expected %s but found %s on line %d at character %d', expected, found, line, col), 0)
end

local function utf8(cp)
    if cp < 0x80 then return string.char(cp) end
    if cp < 0x800 then return string.char(0xC0 + math.floor(cp / 64), 0x80 + cp % 64) end
    if cp < 0x10000 then
        return string.char(0xE0 + math.floor(cp / 4096), 0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
    end
    return string.char(0xF0 + math.floor(cp / 262144), 0x80 + math.floor(cp / 4096) % 64,
                       0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
end

local simple = {['"'] = '"', ['\\'] = '\\', ['/'] = '/', b = '\b', f = '\f', n = '\n', r = '\r', t = '\t'}

-- A token at pos: its kind, its value, and where the next one starts.
local function token(s, pos)
    pos = s:find('[^ \t\r\n]', pos) or #s + 1
    local c = s:sub(pos, pos)
    if c == '' then return 'T_END', nil, pos, pos end
    if c == '{' then return 'T_OBJ_BEGIN', nil, pos, pos + 1 end
    if c == '}' then return 'T_OBJ_END', nil, pos, pos + 1 end
    if c == '[' then return 'T_ARR_BEGIN', nil, pos, pos + 1 end
    if c == ']' then return 'T_ARR_END', nil, pos, pos + 1 end
    if c == ':' then return 'T_COLON', nil, pos, pos + 1 end
    if c == ',' then return 'T_COMMA', nil, pos, pos + 1 end
    if c == '"' then
        local parts, i = {}, pos + 1
        while true do
            local j = s:find('["\\]', i)
            if j == nil then return 'T_ERROR', 'unexpected end of string', #s + 1, #s + 1 end
            parts[#parts + 1] = s:sub(i, j - 1)
            if s:sub(j, j) == '"' then return 'T_STRING', table.concat(parts), pos, j + 1 end
            local e = s:sub(j + 1, j + 1)
            if simple[e] then
                parts[#parts + 1] = simple[e]
                i = j + 2
            elseif e == 'u' then
                local cp = tonumber(s:sub(j + 2, j + 5):match('^%x%x%x%x$') or '', 16)
                if cp == nil then return 'T_ERROR', 'invalid unicode escape code', j, j end
                i = j + 6
                if cp >= 0xD800 and cp < 0xDC00 then
                    local lo = s:sub(i, i + 1) == '\\u' and tonumber(s:sub(i + 2, i + 5):match('^%x%x%x%x$') or '', 16)
                    if not lo or lo < 0xDC00 or lo > 0xDFFF then
                        return 'T_ERROR', 'invalid unicode escape code', j, j
                    end
                    cp, i = 0x10000 + (cp - 0xD800) * 0x400 + (lo - 0xDC00), i + 6
                end
                parts[#parts + 1] = utf8(cp)
            else
                return 'T_ERROR', 'invalid escape code', j, j
            end
        end
    end
    if s:match('^-?0%d', pos) then return 'T_ERROR', 'invalid token', pos, pos + 1 end
    local num = s:match('^-?%d+%.?%d*[eE][-+]?%d+', pos) or s:match('^-?%d+%.?%d*', pos)
    if num then
        -- cjson names an integer literal T_INT, anything else T_NUMBER.
        return num:find('^-?%d+$') and 'T_INT' or 'T_NUMBER', tonumber(num), pos, pos + #num
    end
    for word, value in pairs({['true'] = true, ['false'] = false, null = S.NULL}) do
        if s:sub(pos, pos + #word - 1) == word then
            return value == S.NULL and 'T_NULL' or 'T_BOOLEAN', value, pos, pos + #word
        end
    end
    return 'T_ERROR', 'invalid token', pos, pos + 1
end

local function found(kind, value)
    return kind == 'T_ERROR' and value or kind
end

local parse_value

local function parse_object(s, pos)
    local obj = setmetatable({}, S.map_mt)
    local kind, value, at, nxt = token(s, pos)
    if kind == 'T_OBJ_END' then return obj, nxt end
    while true do
        if kind ~= 'T_STRING' then fail(s, at, 'object key string', found(kind, value)) end
        local key = value
        kind, value, at, nxt = token(s, nxt)
        if kind ~= 'T_COLON' then fail(s, at, 'colon', found(kind, value)) end
        obj[key], nxt = parse_value(s, nxt)
        kind, value, at, nxt = token(s, nxt)
        if kind == 'T_OBJ_END' then return obj, nxt end
        if kind ~= 'T_COMMA' then fail(s, at, 'comma or object end', found(kind, value)) end
        kind, value, at, nxt = token(s, nxt)
    end
end

local function parse_array(s, pos)
    local arr = setmetatable({}, S.array_mt)
    local kind, value, at, nxt = token(s, pos)
    if kind == 'T_ARR_END' then return arr, nxt end
    local n = 0
    nxt = pos
    while true do
        n = n + 1
        arr[n], nxt = parse_value(s, nxt)
        kind, value, at, nxt = token(s, nxt)
        if kind == 'T_ARR_END' then return arr, nxt end
        if kind ~= 'T_COMMA' then fail(s, at, 'comma or array end', found(kind, value)) end
    end
end

function parse_value(s, pos)
    local kind, value, at, nxt = token(s, pos)
    if kind == 'T_OBJ_BEGIN' then return parse_object(s, nxt) end
    if kind == 'T_ARR_BEGIN' then return parse_array(s, nxt) end
    if kind == 'T_STRING' or kind == 'T_NUMBER' or kind == 'T_INT' or kind == 'T_BOOLEAN' or kind == 'T_NULL' then
        return value, nxt
    end
    fail(s, at, 'value', found(kind, value))
end

function json.decode(...)
    local s = ...
    local n = select('#', ...)
    if n < 1 or n > 2 then error("bad argument #1 to '?' (expected 1 or 2 arguments)", 0) end
    if type(s) == 'number' then s = tostring(s) end
    if type(s) ~= 'string' then
        error("bad argument #1 to '?' (string expected, got " .. type(s) .. ")", 0)
    end
    local value, pos = parse_value(s, 1)
    local kind, v, at = token(s, pos)
    if kind ~= 'T_END' then fail(s, at, 'the end', found(kind, v)) end
    return value
end

-- Options are accepted and kept; the encoder follows Tarantool's defaults.
local options = {}
function json.cfg(opts)
    for k, v in pairs(opts or {}) do options[k] = v end
end
function json.new() return json end

return json
