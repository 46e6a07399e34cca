-- Fibers in TX's Lua (styx/tx/lua.py): every piece of Lua code a request, a
-- script or fiber.create runs is a Lua coroutine, and TX's event loop drives
-- it. A fiber that waits (fiber.sleep, a channel, a Python awaitable such as
-- box.snapshot) yields MARK and what it waits for to the Python driver
-- (lua.py, Lua._drive), which awaits it in an asyncio task and resumes the
-- coroutine: other requests go on meanwhile, as with an `async def`.
--
-- A fiber that never waits never leaves Lua: its coroutine runs to the end in
-- one resume, inline, with no task. A time slice (Tarantool's max_slice:
-- warn 0.5 s, error 1 s) is checked by an instruction-count hook, so a loop
-- that never yields ends with "fiber slice is exceeded" instead of holding
-- TX forever.
local bridge = ...

local MARK = setmetatable({}, {__tostring = function() return 'fiber yield' end})
local fibers = setmetatable({}, {__mode = 'k'})  -- coroutine -> fiber object
local by_id = {}                                 -- id -> fiber object, while it lives
local next_id = 101                              -- Tarantool's first user fiber id
local slice = {warn = 0.5, err = 1.0}
local HOOK_EVERY = 10000                         -- instructions between two checks

-- Bridge calls cost a Python call each (and an attribute lookup): the ones
-- every request makes are looked up once, and the clock is read through FFI.
local slow, slice_exceeded, cancelled = bridge.slow, bridge.slice_exceeded, bridge.cancelled
local wakeup = bridge.wakeup
local ffi = require('ffi')
pcall(ffi.cdef, [[
struct styx_timespec { long tv_sec; long tv_nsec; };
int clock_gettime(int clk_id, struct styx_timespec *tp);
]])
local ts = ffi.new('struct styx_timespec')
local function clock()
    ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
    return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

-- One fiber runs at a time: the slice is the running step's. Its start is
-- read at the hook's first call in the step (HOOK_EVERY instructions late,
-- some microseconds), so that a step that ends sooner reads no clock.
local started, warned = nil, false
local function hook()
    local now = clock()
    if started == nil then started = now end
    local spent = now - started
    if spent > slice.warn and not warned then
        warned = true
        slow(spent)
    end
    if spent > slice.err then
        slice_exceeded()
    end
end

local fiber_mt = {}
fiber_mt.__index = fiber_mt

-- A pool of coroutines, as Tarantool keeps a pool of fibers: a worker runs
-- one function, yields DONE with its values, and waits for the next. A
-- request that never waits takes an idle worker and gives it back, so
-- no coroutine is made per request.
local DONE = setmetatable({}, {__tostring = function() return 'fiber done' end})
local idle, IDLE_MAX = {}, 64

-- fn runs under pcall, a C frame: an error(msg, 2) in a function the
-- request called directly names no line of Styx's, as in Tarantool.
local function finish(ok, ...)
    if not ok then error((...), 0) end  -- the same value goes on, with no position added
    return coroutine.yield(DONE, ...)
end

local function worker(fn, ...)
    return worker(finish(pcall(fn, ...)))  -- a tail call: the stack does not grow
end

local function new_fiber(fn, name)
    local co = table.remove(idle)
    if co == nil then
        co = coroutine.create(worker)
        debug.sethook(co, hook, '', HOOK_EVERY)
    end
    local f = setmetatable({co = co, fn = fn, fid = next_id, fname = name or 'lua'}, fiber_mt)
    next_id = next_id + 1
    fibers[co] = f
    by_id[f.fid] = f
    return f
end

-- What a fiber's end leaves for join(), and its joiners woken.
local function ended(f, ok, ...)
    by_id[f.fid] = nil
    f.state = 'dead'
    if fibers[f.co] == f then fibers[f.co] = nil end
    if ok and #idle < IDLE_MAX then idle[#idle + 1] = f.co end
    if f.joiners then
        if ok then f.results = {n = select('#', ...), ...} else f.failed, f.err = true, ... end
        for _, j in ipairs(f.joiners) do wakeup(j.fid) end
        f.joiners = nil
    elseif f.joinable then
        if ok then f.results = {n = select('#', ...), ...} else f.failed, f.err = true, ... end
    end
end

-- After a resume: what the driver (lua.py) is told, as plain values:
--   'done', v1, ..., vn      the fiber ended with these values
--   'error', err             it failed
--   'wait', what, arg        it waits (what: 'sleep', 'park', 'await')
local function outcome(f, ok, ...)
    if not ok then
        local err = ...
        ended(f, false, err)
        return 'error', err
    end
    local first = ...
    if first == DONE then
        ended(f, true, select(2, ...))
        return 'done', select(2, ...)  -- every value, nil among them, none if none
    end
    if first == MARK then return 'wait', select(2, ...) end
    return 'wait', 'sleep', 0  -- a bare coroutine.yield() at a fiber's top: fiber.yield()
end

-- The fiber running now (fiber.create runs one inside another: restored).
local running_fiber = nil
local raw_resume = coroutine.resume

local function resumed(prev, ...)
    running_fiber = prev
    return ...
end

local function resume(f, ...)
    started, warned = nil, false
    local prev = running_fiber
    running_fiber = f
    local fn = f.fn
    if fn ~= nil then  -- its first resume: the worker takes the function
        f.fn = nil
        return resumed(prev, raw_resume(f.co, fn, ...))
    end
    return resumed(prev, raw_resume(f.co, ...))
end

-- A coroutine of the user's own inside a fiber: when code in it waits
-- (fiber.sleep), the whole fiber waits, as in Tarantool, where fibers are
-- not coroutines: its yield is passed up, and what comes back passed down.
local function pass_up(co, ok, first, ...)
    if ok and first == MARK then
        return pass_up(co, raw_resume(co, coroutine.yield(MARK, ...)))
    end
    return ok, first, ...
end

function coroutine.resume(co, ...)
    return pass_up(co, raw_resume(co, ...))
end

function coroutine.wrap(fn)
    local co = coroutine.create(fn)
    return function(...)
        local function unwrap(ok, ...)
            if not ok then error((...), 0) end
            return ...
        end
        return unwrap(coroutine.resume(co, ...))
    end
end

local function step_fiber(f, ...)
    return outcome(f, resume(f, ...))
end

local function run_outcome(f, ok, ...)
    if ok then
        local first = ...
        if first == MARK then return 'wait', f.fid, select(2, ...) end
        if first ~= DONE then return 'wait', f.fid, 'sleep', 0 end
    end
    return outcome(f, ok, ...)
end

-- fn(...) in a new fiber: 'done'/'error' as above, or 'wait', fid, what, arg.
local function run(fn, ...)
    local f = new_fiber(fn)
    return run_outcome(f, resume(f, ...))
end

-- Resume the fiber `fid` with what it waited for.
local function step(fid, ...)
    return step_fiber(by_id[fid], ...)
end

local function self_fiber()
    local f = running_fiber
    if f == nil or coroutine.running() == nil then
        error('this Lua code runs outside a fiber (in a trigger, or called from Python) and cannot wait', 3)
    end
    return f
end

local function testcancel(f)
    if f.cancelled then
        cancelled()
    end
end

-- Wait: the Python driver answers what it waited for.
local function wait(what, arg)
    local f = self_fiber()
    f.state = 'suspended'
    local ok, v = coroutine.yield(MARK, what, arg)
    f.state = 'running'
    testcancel(f)
    if not ok then error(v, 0) end
    return v
end

-- A Python awaitable returned by box (box.snapshot, ...): wait for its value.
local AWAIT = '\0styx-await'
local function await(first, second, ...)
    if first == AWAIT then return wait('await', second) end
    return first, second, ...
end

local fiber = {}

function fiber.create(fn, ...)
    if type(fn) ~= 'function' then error('fiber.create(function, ...): bad arguments', 2) end
    local f = new_fiber(fn)
    f.state = 'running'
    bridge.start(f.fid, ...)  -- runs it until it ends or waits, as Tarantool does
    return f
end

function fiber.new(fn, ...)
    if type(fn) ~= 'function' then error('fiber.new(function, ...): bad arguments', 2) end
    local f = new_fiber(fn)
    f.state = 'suspended'
    bridge.start_later(f.fid, ...)
    return f
end

function fiber.sleep(t)
    t = tonumber(t) or 0
    wait('sleep', t > 0 and t or 0)
end

function fiber.yield() wait('sleep', 0) end

function fiber.self() return self_fiber() end

function fiber.id() local f = fibers[coroutine.running()]; return f and f.fid or 1 end

function fiber.find(id) return by_id[id] end

function fiber.testcancel() testcancel(self_fiber()) end

local function realtime()
    ffi.C.clock_gettime(0, ts)  -- CLOCK_REALTIME
    return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end
fiber.time = realtime
fiber.clock = clock
function fiber.time64()
    ffi.C.clock_gettime(0, ts)
    return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000
end
function fiber.clock64()
    ffi.C.clock_gettime(1, ts)
    return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000
end

function fiber.status(f)
    f = f or self_fiber()
    return f:status()
end

function fiber.name(name)
    local f = self_fiber()
    if name ~= nil then f.fname = tostring(name) end
    return f.fname
end

function fiber.info()
    local out = {}
    for id, f in pairs(by_id) do out[id] = {fid = id, name = f.fname} end
    return out
end

function fiber.set_max_slice(s)
    if type(s) == 'number' then
        slice = {warn = s, err = s}
    elseif type(s) == 'table' and tonumber(s.err) then
        slice = {warn = tonumber(s.warn) or s.err, err = tonumber(s.err)}
    else
        error('fiber.set_max_slice(number | {warn = number, err = number})', 2)
    end
end

function fiber.check_slice() end  -- the hook checks it

function fiber_mt:id() return self.fid end
function fiber_mt:name(name)
    if name ~= nil then self.fname = tostring(name) end
    return self.fname
end
function fiber_mt:status()
    if self.state == 'dead' then return 'dead' end
    return fibers[coroutine.running()] == self and 'running' or 'suspended'
end
function fiber_mt:cancel()
    if self.state == 'dead' then
        error('the fiber is dead', 2)
    end
    self.cancelled = true
    if fibers[coroutine.running()] ~= self then wakeup(self.fid) end
end
function fiber_mt:wakeup()
    if self.state ~= 'dead' then wakeup(self.fid) end
end
function fiber_mt:set_joinable(yes) self.joinable = yes end
function fiber_mt:join()
    if not self.joinable then error('the fiber is not joinable', 2) end
    while self.state ~= 'dead' do
        self.joiners = self.joiners or {}
        table.insert(self.joiners, fiber.self())
        wait('park', nil)
    end
    if self.failed then return false, self.err end
    return true, unpack(self.results or {}, 1, self.results and self.results.n or 0)
end
fiber_mt.__tostring = function(self) return 'fiber: ' .. self.fid end

-- fiber.cond and fiber.channel: queues of parked fibers.
local cond_mt = {}
cond_mt.__index = cond_mt
function fiber.cond() return setmetatable({waiters = {}}, cond_mt) end
function cond_mt:wait(timeout)
    local f = self_fiber()
    table.insert(self.waiters, f)
    local woken = wait('park', timeout)
    for i, w in ipairs(self.waiters) do
        if w == f then table.remove(self.waiters, i) break end
    end
    return woken == true
end
function cond_mt:signal()
    local f = table.remove(self.waiters, 1)
    if f then wakeup(f.fid) end
end
function cond_mt:broadcast()
    local waiters = self.waiters
    self.waiters = {}
    for _, f in ipairs(waiters) do wakeup(f.fid) end
end

local channel_mt = {}
channel_mt.__index = channel_mt
function fiber.channel(size)
    size = tonumber(size) or 0
    if size < 0 then error('fiber.channel(size): negative size', 2) end
    return setmetatable({size = size, items = {}, readers = fiber.cond(), writers = fiber.cond()}, channel_mt)
end
local function deadline(timeout) return timeout and (clock() + timeout) or nil end
local function left(d) return d and math.max(0, d - clock()) or nil end
function channel_mt:put(v, timeout)
    local d = deadline(timeout)
    while not self.closed and #self.items >= math.max(self.size, 1)
            and not (self.size == 0 and #self.readers.waiters > 0 and #self.items == 0) do
        if d and left(d) <= 0 then return false end
        self.writers:wait(left(d))
    end
    if self.closed then return false end
    table.insert(self.items, {v})
    self.readers:signal()
    return true
end
function channel_mt:get(timeout)
    local d = deadline(timeout)
    while #self.items == 0 do
        if self.closed then return nil end
        if d and left(d) <= 0 then return nil end
        self.writers:signal()
        self.readers:wait(left(d))
    end
    local item = table.remove(self.items, 1)
    self.writers:signal()
    return item[1]
end
function channel_mt:is_empty() return #self.items == 0 end
function channel_mt:is_full() return #self.items >= self.size end
function channel_mt:count() return #self.items end
function channel_mt:has_readers() return #self.readers.waiters > 0 end
function channel_mt:has_writers() return #self.writers.waiters > 0 end
function channel_mt:is_closed() return self.closed == true end
function channel_mt:close()
    self.closed = true
    self.readers:broadcast()
    self.writers:broadcast()
end

package.loaded.fiber = fiber

return {run = run, step = step, await = await}
