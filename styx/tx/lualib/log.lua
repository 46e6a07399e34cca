-- log, as Tarantool 2.6's: log.info(fmt, ...) formats with string.format
-- when there are arguments, a table alone is written as JSON; the line goes
-- to Python's logger "styx.lua" (lua_modules.py) at the matching level.
local S = ...
local json = require('json')

local log = {}

local function say(level)
    return function(fmt, ...)
        local msg
        if select('#', ...) > 0 then
            local ok, text = pcall(string.format, tostring(fmt), ...)
            if not ok then  -- as 2.6 reports it: no place, and '?' for the function
                error((tostring(text):gsub("^[^:]*:%d+: ", ""):gsub("'format'", "'?'")), 0)
            end
            msg = text
        elseif type(fmt) == 'table' then
            msg = json.encode(fmt)
        else
            msg = tostring(fmt)
        end
        S.py.log(level, msg)
    end
end

for _, level in ipairs({'error', 'warn', 'info', 'verbose', 'debug'}) do
    log[level] = say(level)
end

function log.syserror(fmt, ...)
    local e = S.ffi.errno()
    local msg = select('#', ...) > 0 and string.format(tostring(fmt), ...) or tostring(fmt)
    S.py.log('error', msg .. ': ' .. S.py.strerror(e))
end

local current = 5
function log.level(level)
    if level ~= nil then current = level end
    return current
end
function log.cfg() end
function log.rotate() end
function log.pid() return 0 end

return log
