-- clock, as Tarantool 2.6's: seconds as Lua numbers, and the *64 variants
-- as int64_t nanoseconds; read through LuaJIT's FFI (clock_gettime), with
-- no trip to Python.
local S = ...
local ffi = S.ffi

S.cdef[[
struct styx_timespec { long tv_sec; long tv_nsec; };
int clock_gettime(int clk_id, struct styx_timespec *tp);
]]

local ts = ffi.new('struct styx_timespec')
local REALTIME, MONOTONIC, PROCESS, THREAD = 0, 1, 2, 3

local function seconds(id)
    return function()
        ffi.C.clock_gettime(id, ts)
        return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
    end
end

local function nanoseconds(id)
    return function()
        ffi.C.clock_gettime(id, ts)
        return ffi.new('int64_t', ts.tv_sec) * 1000000000 + ts.tv_nsec
    end
end

local clock = {
    realtime = seconds(REALTIME), time = seconds(REALTIME), monotonic = seconds(MONOTONIC),
    proc = seconds(PROCESS), thread = seconds(THREAD),
    realtime64 = nanoseconds(REALTIME), time64 = nanoseconds(REALTIME), monotonic64 = nanoseconds(MONOTONIC),
    proc64 = nanoseconds(PROCESS), thread64 = nanoseconds(THREAD),
}

-- {seconds of CPU time, fun's results...}
function clock.bench(fun, ...)
    local start = clock.proc()
    local res = {0, fun(...)}
    res[1] = clock.proc() - start
    return res
end

return clock
