-- decimal, as Tarantool 2.6's: a cdata (struct styx_decimal, the value as
-- the string Python's Decimal reads) with arithmetic, comparison and
-- tostring; 38 digits, rounding half up (decimal.c's context), in Python
-- (lua_modules._decimal). Numbers convert with 15 significant digits, as
-- decimal_from_double does.
local S = ...
local ffi = S.ffi
local decimal_t = S.decimal_t

local decimal = {}

local function make(s)
    local d = decimal_t()
    ffi.copy(d.s, s)
    return d
end

-- A Lua value as a decimal string, or nil.
local function text(v)
    local t = type(v)
    if t == 'cdata' then
        if ffi.istype(decimal_t, v) then return ffi.string(v.s) end
        if ffi.istype(S.int64_t, v) or ffi.istype(S.uint64_t, v) then
            local _, s = S.int64_value(v)
            return S.py.decimal('new', s)
        end
        return nil
    end
    if t == 'number' then
        if v ~= v or v == math.huge or v == -math.huge then return nil end
        return S.py.decimal('new', string.format('%.15g', v))
    end
    if t == 'string' then return S.py.decimal('new', v) end
    return nil
end

local function operand(v, i, level)
    local s = text(v)
    if s == nil then
        local t = type(v)
        if t ~= 'number' and t ~= 'string' and t ~= 'cdata' then
            error('expected decimal, number or string as ' .. i .. ' argument', level)
        end
        error('incorrect value to convert to decimal as ' .. i .. ' argument', level)
    end
    return s
end

-- Errors name the caller's line, as 2.6's C function does (none after a tail call).
function decimal.new(v)
    return make(operand(v, 1, 3))
end

local function arith(op)
    return function(a, b)
        local r = S.py.decimal(op, operand(a, 1, 3), operand(b, 2, 3))
        if r == nil then error('decimal operation failed', 2) end
        return make(r)
    end
end

local function unary(op)
    return function(a, ...)
        local r = S.py.decimal(op, operand(a, 1, 3), ...)
        if r == nil then error('decimal operation failed', 2) end
        return make(r)
    end
end

local function cmp(a, b)
    return tonumber(S.py.decimal('cmp', operand(a, 1, 4), operand(b, 2, 4)))
end

local tostr = function(d) return ffi.string(d.s) end

ffi.metatype(decimal_t, {
    __tostring = tostr,
    __add = arith('+'), __sub = arith('-'), __mul = arith('*'), __div = arith('/'),
    __mod = arith('%'), __pow = arith('^'),
    __unm = function(a) return make(S.py.decimal('minus', tostr(a))) end,
    __eq = function(a, b)
        if text(a) == nil or text(b) == nil then return false end
        return cmp(a, b) == 0
    end,
    __lt = function(a, b) return cmp(a, b) < 0 end,
    __le = function(a, b) return cmp(a, b) <= 0 end,
})

decimal.abs = unary('abs')
decimal.sqrt = unary('sqrt')
decimal.ln = unary('ln')
decimal.log10 = unary('log10')
decimal.exp = unary('exp')
decimal.trim = unary('trim')
function decimal.round(d, n) return unary('round')(d, n or 0) end
function decimal.rescale(d, n) return unary('rescale')(d, n) end

local function digits(d)
    local s = tostr(d):gsub('^-', '')
    local int, frac = s:match('^(%d*)%.?(%d*)$')
    return int, frac
end

function decimal.scale(d)
    local _, frac = digits(decimal.new(d))
    return #frac
end

function decimal.precision(d)
    local int, frac = digits(decimal.new(d))
    int = int:gsub('^0+', '')
    if int == '' then return math.max(#frac, 1) end
    return #int + #frac
end

function decimal.is_decimal(v) return ffi.istype(decimal_t, v) end

return decimal
