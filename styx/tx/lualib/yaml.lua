-- yaml, as Tarantool's: encode(value) -> a YAML document ('---' ... '...'),
-- decode(text) -> value. PyYAML does the YAML (lua_modules._yaml_*); JSON
-- carries the value between it and Lua, so arrays, maps and null keep
-- Tarantool's serializer rules (json.lua) both ways.
local S = ...
local json = require('json')

local yaml = {NULL = S.NULL}

function yaml.encode(v)
    return S.py.yaml_encode(json.encode(v))
end

function yaml.decode(text)
    if type(text) ~= 'string' then
        error("bad argument #1 to 'decode' (string expected, got " .. type(text) .. ")", 2)
    end
    local docs, err = S.py.yaml_decode(text)
    if docs == nil then error(err, 2) end
    return unpack(json.decode(docs))  -- every document in the stream: one value each
end

function yaml.cfg() end
function yaml.new() return yaml end

return yaml
