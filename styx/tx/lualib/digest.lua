-- digest, as Tarantool 2.6's common part: md4/md5/sha1/sha2 raw and hex
-- (hashlib), crc32 (CRC-32C without the final inversion, with .new() and
-- crc32_update), base64 with its options, murmur (MurmurHash3, seed 13),
-- guava (consistent hashing), urandom.
local S = ...
local py = S.py

local digest = {}

local function hex(s)
    return (s:gsub('.', function(c) return string.format('%02x', c:byte()) end))
end

for _, name in ipairs({'md4', 'md5', 'sha1', 'sha224', 'sha256', 'sha384', 'sha512'}) do
    digest[name] = function(s)
        if type(s) ~= 'string' then
            error('builtin/digest.lua:255: Usage: digest.' .. name .. '(string)', 0)
        end
        return py.hash(name, s)
    end
    digest[name .. '_hex'] = function(s)
        if type(s) ~= 'string' then  -- 2.6's message, with its place
            error('builtin/digest.lua:255: Usage: digest.' .. name .. '_hex(string)', 0)
        end
        return hex(py.hash(name, s))
    end
end

local CRC32_INIT = 4294967295

function digest.crc32_update(state, s)
    return py.crc32c(state, s)
end

local crc32_mt = {__index = {
    update = function(self, s) self.value = py.crc32c(self.value, s) end,
    result = function(self) return self.value end,
    clear = function(self) self.value = CRC32_INIT end,
}}

digest.crc32 = setmetatable({
    new = function() return setmetatable({value = CRC32_INIT}, crc32_mt) end,
}, {__call = function(_, s)
    if type(s) ~= 'string' then error('builtin/digest.lua:139: Usage digest.crc32(string)', 0) end
    return py.crc32c(CRC32_INIT, s)
end})

function digest.base64_encode(s, opts)
    opts = opts or {}
    return py.base64_encode(s, opts.urlsafe and true or false, opts.nopad and true or false,
                            opts.nowrap and true or false)
end

function digest.base64_decode(s)
    return py.base64_decode(s)
end

local murmur_mt = {__index = {
    update = function(self, s) self.data = self.data .. s end,
    result = function(self) return py.murmur(self.data, self.seed) end,
    clear = function(self) self.data = '' end,
}}

digest.murmur = setmetatable({
    new = function(opts)
        return setmetatable({data = '', seed = opts and opts.seed or 13}, murmur_mt)
    end,
}, {__call = function(_, s) return py.murmur(tostring(s), 13) end})

-- Guava's Hashing.consistentHash (Tarantool's guava.c): a bucket in
-- [0, buckets) for a 64-bit state.
function digest.guava(state, buckets)
    local ffi = S.ffi
    local st = ffi.cast('uint64_t', ffi.cast('int64_t', state))
    local candidate = 0
    while true do
        st = st * 2862933555777941757ULL + 1
        local d = tonumber(bit.rshift(st, 33) + 1) / 2^31
        local next = math.floor((candidate + 1) / d)
        if next >= 0 and next < buckets then candidate = next else return candidate end
    end
end

function digest.urandom(n)
    return py.urandom(n)
end

return digest
