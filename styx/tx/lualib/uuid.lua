-- uuid, as Tarantool 2.6's: a cdata (struct styx_uuid, the 16 bytes in
-- RFC 4122 order) with :str(), :bin([byteorder]), :isnil(), tostring and
-- ==; uuid.new/str/bin (version 4), fromstr (nil if not one),
-- frombin, NULL, is_uuid (2.6.1's). bin() is host order ('l' here), as
-- Tarantool's: time_low, time_mid and time_hi_and_version swapped.
local S = ...
local ffi = S.ffi
local uuid_t = S.uuid_t

local uuid = {}

local function swapped(b)
    return b:sub(1, 4):reverse() .. b:sub(5, 6):reverse() .. b:sub(7, 8):reverse() .. b:sub(9)
end

local big = {b = true, n = true, network = true, big = true}

local function str(u)
    local h = ffi.string(u.b, 16):gsub('.', function(c) return string.format('%02x', c:byte()) end)
    return h:sub(1, 8) .. '-' .. h:sub(9, 12) .. '-' .. h:sub(13, 16) .. '-' .. h:sub(17, 20) .. '-' .. h:sub(21)
end

local function bin(u, order)
    local b = ffi.string(u.b, 16)
    if big[order] then return b end
    return swapped(b)
end

local function isnil(u)
    for i = 0, 15 do if u.b[i] ~= 0 then return false end end
    return true
end

ffi.metatype(uuid_t, {
    __tostring = str,
    __eq = function(a, b)
        return ffi.istype(uuid_t, a) and ffi.istype(uuid_t, b) and ffi.string(a.b, 16) == ffi.string(b.b, 16)
    end,
    __index = {str = str, bin = bin, isnil = isnil},
})

function uuid.new()
    local u = uuid_t()
    ffi.copy(u.b, S.py.urandom(16), 16)
    u.b[6] = bit.bor(bit.band(u.b[6], 0x0f), 0x40)
    u.b[8] = bit.bor(bit.band(u.b[8], 0x3f), 0x80)
    return u
end

function uuid.fromstr(s)
    if type(s) ~= 'string' then error('builtin/uuid.lua:38: fromstr(str)', 0) end
    local hex = s:match('^(%x%x%x%x%x%x%x%x)%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$') and s:gsub('-', '')
    if not hex then return nil end
    local u = uuid_t()
    for i = 0, 15 do u.b[i] = tonumber(hex:sub(2 * i + 1, 2 * i + 2), 16) end
    return u
end

function uuid.frombin(b, order)
    if type(b) ~= 'string' or #b ~= 16 then
        error('builtin/uuid.lua:73: frombin(bin, [byteorder])', 0)  -- 2.6's message, word for word
    end
    local u = uuid_t()
    ffi.copy(u.b, big[order] and b or swapped(b), 16)
    return u
end

function uuid.str() return str(uuid.new()) end
function uuid.bin(order) return bin(uuid.new(), order) end
function uuid.is_uuid(v) return ffi.istype(uuid_t, v) end

uuid.NULL = uuid_t()

return setmetatable(uuid, {__call = function() return uuid.new() end})
