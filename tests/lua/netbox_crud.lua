-- net.box (Debian's Tarantool 2.6) doing CRUD by names against a server
-- serving tests/apps/crud_app.py (or its Lua twin in tarantool_server.lua):
--
--     tarantool netbox_crud.lua <scenario> <port>
--
-- Each scenario prints one JSON line of observations and exits 0; a Lua
-- error in the script itself exits 1 with the traceback on stderr.

local net = require('net.box')
local json = require('json')
local fiber = require('fiber')

local scenario, port = arg[1], arg[2]
local addr = '127.0.0.1:' .. port
local OPTS = {connect_timeout = 10, wait_connected = 10}

local function connect(user, password)
    if user == nil then return net.connect(addr, OPTS) end
    return net.connect(user .. ':' .. password .. '@' .. addr, OPTS)
end

-- Tuples (cdata) -> plain tables, recursively, so json can print them.
local function plain(v)
    if type(v) == 'cdata' and v.totable ~= nil then return v:totable() end
    if type(v) == 'table' then
        local t = {}
        for k, x in pairs(v) do t[k] = plain(x) end
        return t
    end
    return v
end

-- pcall a method; {ok = true, value = ...} or {ok = false, code, type, message}.
local function try(obj, method, ...)
    local res = {pcall(obj[method], obj, ...)}
    if res[1] then
        return {ok = true, value = plain(res[2]), n = select('#', unpack(res, 2, table.maxn(res)))}
    end
    local e = res[2]
    if type(e) == 'cdata' then
        return {ok = false, code = e.code, type = e.type, message = e.message}
    end
    return {ok = false, message = tostring(e)}
end

local S = {}

function S.crud()
    local c = connect()
    local t = c.space.tester
    local r = {
        state = c.state,
        space_id = t and t.id,
        index_names = {t.index[0].name, t.index[1].name},
        index_by_name = t.index.name.id,
        empty = plain(t:select{}),
        ins1 = try(t, 'insert', {1, 'alice', 10}),
        ins2 = try(t, 'insert', {2, 'bob', 20}),
        ins3 = try(t, 'insert', {3, 'bob', {k = 'v'}}),
        ins4 = try(t, 'insert', {4, 'dan', 40}),
        dup = try(t, 'insert', {1, 'again', 0}),
        wrong_type = try(t, 'insert', {'one', 'x', 0}),
        replace = try(t, 'replace', {4, 'dave', 41}),
        -- net.box sends INDEX_BASE = 1: field 3 is `value`.
        update_no = try(t, 'update', {1}, {{'+', 3, 5}}),
        update_name = try(t, 'update', 1, {{'=', 'name', 'alicia'}, {'-', 'value', 1}}),
        update_missing = try(t, 'update', {99}, {{'=', 3, 0}}),
        update_pk = try(t, 'update', {1}, {{'=', 1, 100}}),
        upsert_new = try(t, 'upsert', {5, 'eve', 1}, {{'+', 3, 10}}),
        upsert_old = try(t, 'upsert', {5, 'eve', 1}, {{'+', 3, 10}}),
        upsert_name = try(t, 'upsert', {5, 'eve', 1}, {{'+', 'value', 100}}),
        get5 = plain(t:get{5}),
        get_none = t:get{77} == nil,
        delete = try(t, 'delete', {4}),
        delete_none = try(t, 'delete', {4}),
        all = plain(t:select{}),
        by_name = plain(t.index.name:select{'bob'}),
        by_name_none = plain(t.index.name:select{'nobody'}),
        by_name_all = plain(t.index.name:select{}),
        ge_2 = plain(t:select({2}, {iterator = 'GE'})),
        ge_2_limit = plain(t:select({2}, {iterator = 'GE', limit = 2})),
        lt_5 = plain(t:select({5}, {iterator = 'LT'})),
        lt_5_limit = plain(t:select({5}, {iterator = 'LT', limit = 1})),
        gt_offset = plain(t:select({1}, {iterator = 'GT', offset = 1, limit = 1})),
        name_lt = plain(t.index.name:select({'bob'}, {iterator = 'LT'})),
        name_le = plain(t.index.name:select({'bob'}, {iterator = 'LE', limit = 2})),
        count_call = {c:call('box.space.tester:count')},
        count_key = {c:call('box.space.tester:count', {{3}, {iterator = 'LE'}})},
        count_index = t.index.primary:count({3}, {iterator = "GE"}),
        count_name = t.index.name:count({"bob"}),
        names_call = {c:call('tester_names')},
        add = {c:call('add', {2, 3})},
        index_select_call = plain({c:call('box.space.tester.index.name:select', {{'eve'}})}),
        hash_insert = try(c.space.hashy, 'insert', {'k1', 1}),
        hash_get = plain(c.space.hashy:get{'k1'}),
        hash_update = try(c.space.hashy, 'update', {'k1'}, {{'+', 2, 1}}),
        hash_delete = try(c.space.hashy, 'delete', {'k1'}),
        hash_empty = plain(c.space.hashy:select{}),
    }
    -- Iterate the whole primary index two tuples at a time (GT from the
    -- last key seen), and the name index backwards one at a time (LT).
    r.pages = {}
    local last = {}
    while true do
        local page = t:select(last, {iterator = #last == 0 and 'GE' or 'GT', limit = 2})
        if #page == 0 then break end
        local ids = {}
        for _, tuple in ipairs(page) do table.insert(ids, tuple[1]) end
        table.insert(r.pages, ids)
        last = {page[#page][1]}
    end
    r.names_desc = {}
    local key = {}
    while true do
        local page = t.index.name:select(key, {iterator = #key == 0 and 'LE' or 'LT', limit = 1})
        if #page == 0 then break end
        table.insert(r.names_desc, {page[1][2], page[1][1]})
        key = {page[1][2]}
    end
    c:close()
    print(json.encode(r))
end

-- DDL at runtime by a user with the role `super`; a guest connection opened
-- before the DDL sees the new space once net.box has reloaded its schema.
function S.ddl()
    local guest = connect()
    local boss = connect('boss', 'pw')
    local r = {before = guest.space.late == nil, version_before = guest.schema_version}
    -- Tarantool's box.schema.space.create returns a space object, which a
    -- CALL cannot encode: ignore the result, look at the effect.
    pcall(boss.call, boss, 'box.schema.space.create', {'late'})
    r.index = try(boss, 'call', 'box.space.late:create_index', {'pk'})
    -- Any request's reply carries the new schema_version; net.box then
    -- reloads its schema in the background.
    guest:ping()
    local deadline = fiber.clock() + 5
    while guest.space.late == nil and fiber.clock() < deadline do
        guest:ping()
        fiber.sleep(0.01)
    end
    r.after = guest.space.late ~= nil
    r.version_after = guest.schema_version
    if r.after then
        r.late_id = guest.space.late.id
        r.late_index = guest.space.late.index.pk and guest.space.late.index.pk.id
        r.insert = try(guest.space.late, 'insert', {1, 'x'})
        r.select = plain(guest.space.late:select{})
    end
    boss:close()
    guest:close()
    print(json.encode(r))
end

package.path = debug.getinfo(1, 'S').source:match('@?(.*/)') .. '?.lua;' .. package.path
require('scenario')(S, scenario)
