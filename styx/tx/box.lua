-- `box` in Lua (styx/tx/lua.py): a thin layer over the Python box API, so
-- that Lua and Python see the same spaces, schema, users and transactions.
-- `bridge` is the Python side (lua.py, _Bridge); `await` (fiber.lua) waits
-- for what a Python call returns as an awaitable (box.snapshot, ...).
-- Returns make_tuple, which lua.py uses to hand box's tuples to Lua.
local bridge, await = ...
-- Each lookup of a Python attribute costs a call into Python: the bridge's
-- functions are looked up once.
local bridge_call, space_call, space_exists = bridge.call, bridge.space_call, bridge.space_exists

local function caller(path)
    return function(...) return await(bridge_call(path, ...)) end
end

-- Tuples: a table of the fields (t[1], #t, ipairs and unpack work on it),
-- whose metatable knows the space's field names and the tuple methods.
local tuple_methods = {}
local tuple_mts = setmetatable({}, {__mode = 'k'})  -- names table -> metatable

local function tuple_mt(names)
    local mt = tuple_mts[names]
    if mt == nil then
        mt = {
            __index = function(t, k)
                local m = tuple_methods[k]
                if m ~= nil then return m end
                local i = names[k]
                if i ~= nil then return rawget(t, i) end
                return nil
            end,
            __tostring = function(t) return require('json').encode(t) end,
            names = names,
            styx_tuple = true,
        }
        tuple_mts[names] = mt
    end
    return mt
end

local NO_NAMES = {}

local function make_tuple(fields, names)
    return setmetatable(fields, tuple_mt(names or NO_NAMES))
end

local function is_tuple(v)
    local mt = type(v) == 'table' and getmetatable(v)
    return mt and mt.styx_tuple == true or false
end

local function fields_of(t)
    local out = {}
    for i = 1, table.maxn(t) do out[i] = rawget(t, i) end
    return out
end

function tuple_methods.totable(t, i, j)
    local out = {}
    for k = i or 1, j or table.maxn(t) do out[#out + 1] = rawget(t, k) end
    return out
end
tuple_methods.unpack = function(t, i, j) return unpack(fields_of(t), i or 1, j or table.maxn(t)) end
function tuple_methods.tomap(t, opts)
    local names = getmetatable(t).names
    local out = {}
    if not (opts and opts.names_only) then
        for i = 1, table.maxn(t) do out[i] = rawget(t, i) end
    end
    for name, i in pairs(names) do
        if i <= table.maxn(t) then out[name] = rawget(t, i) end
    end
    return out
end
function tuple_methods.update(t, ops)
    return make_tuple(bridge.tuple_update(fields_of(t), ops), getmetatable(t).names)
end
function tuple_methods.transform(t, from, count, ...)
    local out = fields_of(t)
    for _ = 1, count or 0 do table.remove(out, from) end
    for i, v in ipairs({...}) do table.insert(out, from + i - 1, v) end
    return make_tuple(out, getmetatable(t).names)
end
function tuple_methods.find(t, from, value)
    if value == nil then from, value = 1, from end
    for i = from, table.maxn(t) do if rawget(t, i) == value then return i end end
    return nil
end
function tuple_methods.findall(t, from, value)
    if value == nil then from, value = 1, from end
    local out = {}
    for i = from, table.maxn(t) do if rawget(t, i) == value then out[#out + 1] = i end end
    return out
end
function tuple_methods.len(t) return table.maxn(t) end
function tuple_methods.bsize(t) return bridge.tuple_bsize(fields_of(t)) end
function tuple_methods.pairs(t) return ipairs(fields_of(t)) end
tuple_methods.ipairs = tuple_methods.pairs

-- Every method of a space or an index: self is the table, the rest goes over.
-- Triggers (space:on_replace, box.session.on_connect, ...): Lua keeps the
-- functions by key, and Python one trigger per key that runs them (fire,
-- below), while there are any (`enable`).
local registry = {}  -- key -> {fn, ...}, newest first

local function set_trigger(what, key, fn, old, enable)
    local list = registry[key] or {}
    if fn == nil and old == nil then
        local copy = {}
        for i, t in ipairs(list) do copy[i] = t end
        return copy
    end
    if fn ~= nil and type(fn) ~= 'function' then error('trigger reference must be a function or nil', 3) end
    if old ~= nil then
        local at
        for i, t in ipairs(list) do if t == old then at = i break end end
        if at == nil then error(what .. ': trigger is not found', 3) end
        if fn == nil then table.remove(list, at) else list[at] = fn end
    else
        table.insert(list, 1, fn)
    end
    registry[key] = list
    enable(#list > 0)
    return fn
end

local function fire(key, ...)
    for _, t in ipairs(registry[key] or {}) do
        local ok, err = pcall(t, ...)
        if not ok then return err end
    end
    return nil
end

local function on_replace(space, fn, old)
    return set_trigger('on_replace', space, fn, old, function(on) bridge.on_replace(space, on) end)
end

local function session_trigger(kind)
    local key = 'session.' .. kind
    return function(fn, old)
        return set_trigger(kind, key, fn, old, function(on) bridge.session_trigger(kind, on) end)
    end
end

-- pairs() is a select whose tuples are walked in Lua (Tarantool's is a
-- lazy iterator; the results are the same for a loop that does not write).
-- What a space or an index object has as fields, not methods (read live).
local FIELDS = {id = true, engine = true, field_count = true, type = true, unique = true, parts = true}

local function methods(space, index)
    return setmetatable({}, {__index = function(_, name)
        if name == 'on_replace' and index == nil then
            return function(self, fn, old) return on_replace(space, fn, old) end
        end
        if FIELDS[name] then return bridge.space_field(space, index, name) end
        if name == 'pairs' then
            return function(self, key, opts)
                if key == nil then key = {} end
                local all
                if opts then all = space_call(space, index, 'select', key, opts)
                else all = space_call(space, index, 'select', key) end
                return ipairs(all or {})
            end
        end
        return function(self, ...)
            return space_call(space, index, name, ...)
        end
    end})
end

local function index_of(space, index)
    return setmetatable({name = index}, {__index = methods(space, index)})
end

local function space_of(name)
    local indexes = setmetatable({}, {__index = function(_, index)
        if type(index) ~= 'string' and type(index) ~= 'number' then return nil end
        return index_of(name, index)
    end})
    return setmetatable({name = name, index = indexes}, {__index = methods(name, nil)})
end

local function namespace(prefix)
    return setmetatable({}, {__index = function(t, name)
        return caller(prefix .. name)
    end})
end

-- box.cfg: a function (configure) and a table (read an option).
local cfg = setmetatable({}, {
    __call = function(_, options) return await(bridge.cfg(options)) end,
    __index = function(_, key) return bridge.cfg_get(key) end,
})

-- box.info: a function (the whole table) and a table (one item).
local info = setmetatable({}, {
    __call = function() return bridge.call('info') end,
    __index = function(_, key) return bridge.call('info')[key] end,
})

local function atomic(fn, ...)
    box.begin()
    local r = {pcall(fn, ...)}
    if not r[1] then
        box.rollback()
        error(r[2], 0)
    end
    box.commit()
    return unpack(r, 2, table.maxn(r))
end

-- As 2.6's: the space, and 'created' (or 'not created', if_not_exists).
local function create_space(name, opts)
    local existed = type(name) == 'string' and bridge.space_exists(name)
    if opts then bridge.call('schema.space.create', name, opts)
    else bridge.call('schema.space.create', name) end
    return space_of(name), existed and 'not created' or 'created'
end

box = {
    cfg = cfg,
    space = setmetatable({}, {__index = function(_, name)
        if type(name) ~= 'string' and type(name) ~= 'number' then return nil end
        if space_exists(name) then return space_of(name) end
        return nil
    end}),
    schema = {
        space = {create = create_space},
        create_space = create_space,
        user = namespace('schema.user.'),
        role = namespace('schema.role.'),
        func = namespace('schema.func.'),
    },
    session = {
        push = function(value) return bridge.push(value) end,
        id = caller('session.id'),
        user = caller('session.user'),
        uid = caller('session.uid'),
        sync = caller('session.sync'),
        peer = caller('session.peer'),
        effective_user = caller('session.effective_user'),
        on_connect = session_trigger('on_connect'),
        on_disconnect = session_trigger('on_disconnect'),
        on_auth = session_trigger('on_auth'),
        -- su(user, fn, ...): fn runs in Lua, with user's rights (Python's su
        -- holds them for the call, bridge.su_call gives fn back to Lua).
        su = function(user, fn, ...)
            if fn == nil then return bridge_call('session.su', user) end
            if type(fn) ~= 'function' then error('session.su(): bad arguments', 2) end
            local r = {n = 0}
            local args = {n = select('#', ...), ...}
            bridge.su_call(user, function()
                r = {n = 0}
                local res = {pcall(fn, unpack(args, 1, args.n))}
                r = res
            end)
            if not r[1] then error(r[2], 0) end
            return unpack(r, 2, table.maxn(r))
        end,
    },
    -- An error made here is located where Lua made it (its file, line), as 2.6's.
    error = setmetatable({
        new = function(code, ...)
            local at = debug.getinfo(2, 'Sl') or {}
            return bridge.error_at(at.short_src, at.currentline, code, ...)
        end,
    }, {
        __call = function(_, code, ...)
            if code == nil or type(code) == 'string' then error('box.error(): bad arguments', 2) end
            local at = debug.getinfo(2, 'Sl') or {}
            error(bridge.error_at(at.short_src, at.currentline, code, ...))
        end,
        __index = function(_, name) return bridge.error_code(name) end,  -- box.error.NO_SUCH_SPACE
    }),
    begin = function(opts)
        if opts then return bridge.call('begin', opts) end
        return bridge.call('begin')
    end,
    commit = caller('commit'),
    rollback = caller('rollback'),
    is_in_txn = caller('is_in_txn'),
    atomic = atomic,
    info = info,
    stat = setmetatable({net = caller('stat.net')}, {__call = function() return bridge.call('stat') end}),
    slab = {info = caller('slab.info'), stats = caller('slab.stats')},
    broadcast = caller('broadcast'),
    snapshot = caller('snapshot'),
    index = {EQ = 0, REQ = 1, ALL = 2, LT = 3, LE = 4, GE = 5, GT = 6},
    tuple = {
        new = function(...)
            local fields = select('#', ...) == 1 and type(...) == 'table' and fields_of(...) or {...}
            return make_tuple(fields)
        end,
        is = is_tuple,
    },
}

-- box.once(key, fn, ...): fn runs once per database, ever: the mark is a
-- row of _schema, as Tarantool keeps it (and so it survives a restart).
function box.once(key, fn, ...)
    if type(key) ~= 'string' or type(fn) ~= 'function' then
        error('Usage: box.once(key, func, ...)', 2)
    end
    if bridge.once(key) then return fn(...) end
end

return make_tuple, fire
