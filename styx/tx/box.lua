-- `box` in Lua (styx/tx/lua.py): a thin layer over the Python box API, so
-- that Lua and Python see the same spaces, schema, users and transactions.
-- `bridge` is the Python side (lua.py, _Bridge).
local bridge = ...

local function caller(path)
    return function(...) return bridge.call(path, ...) end
end

-- Every method of a space or an index: self is the table, the rest goes over.
local function methods(space, index)
    return setmetatable({}, {__index = function(_, name)
        return function(self, ...)
            return bridge.space_call(space, index, name, ...)
        end
    end})
end

local function index_of(space, index)
    return setmetatable({name = index}, {__index = methods(space, index)})
end

local function space_of(name)
    local indexes = setmetatable({}, {__index = function(_, index) return index_of(name, index) end})
    return setmetatable({name = name, index = indexes}, {__index = methods(name, nil)})
end

local function namespace(prefix)
    return setmetatable({}, {__index = function(t, name)
        return caller(prefix .. name)
    end})
end

box = {
    space = setmetatable({}, {__index = function(_, name)
        if bridge.space_exists(name) then return space_of(name) end
        return nil
    end}),
    schema = {
        space = {create = function(name, opts)
            bridge.call('schema.space.create', name, opts or {})
            return space_of(name)
        end},
        user = namespace('schema.user.'),
        role = namespace('schema.role.'),
        func = namespace('schema.func.'),
    },
    session = {
        push = function(value) return bridge.push(value) end,
        id = caller('session.id'),
        user = caller('session.user'),
    },
    error = setmetatable({}, {__call = function(_, code, ...) bridge.error(code, ...) end}),
    begin = caller('begin'),
    commit = caller('commit'),
    rollback = caller('rollback'),
    info = caller('info'),
    index = {EQ = 0, REQ = 1, ALL = 2, LT = 3, LE = 4, GE = 5, GT = 6},
}
