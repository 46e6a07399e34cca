-- net.box (Debian's tarantool 2.6) driving DDL, for tests/test_box_api.py and
-- tests/test_ddl_over_call.py:
--
--     tarantool netbox_ddl.lua <scenario> <port> [name]
--
-- Each scenario logs in as boss/pw (the role super), prints exactly one JSON
-- line (a map of observations) and exits 0; a Lua error exits non-zero.

local net = require('net.box')
local json = require('json')
local fiber = require('fiber')

local scenario, port, name = arg[1], arg[2], arg[3]
local OPTS = {connect_timeout = 10, wait_connected = 10}

local function connect(user, password)
    local uri = '127.0.0.1:' .. port
    if user ~= nil then
        uri = user .. ':' .. password .. '@' .. uri
    end
    return net.connect(uri, OPTS)
end

-- The outcome of a call: how many values it returned and what they were,
-- or the error's code and message.
local function try(conn, fname, args)
    local res = {pcall(conn.call, conn, fname, args)}
    if res[1] then
        local n = table.maxn(res) - 1
        local values = {}
        for i = 2, n + 1 do
            local v = res[i]
            if v == nil then v = json.NULL end
            values[i - 1] = v
        end
        return {ok = true, n = n, values = values}
    end
    local e = res[2]
    if type(e) == 'cdata' then
        return {ok = false, code = e.code, message = e.message}
    end
    return {ok = false, message = tostring(e)}
end

-- Wait until net.box's own schema shows (or stops showing) a space.
local function wait_space(c, space, present)
    for _ = 1, 200 do
        if (c.space[space] ~= nil) == present then return true end
        c:ping()
        fiber.sleep(0.01)
    end
    return false
end

local S = {}

-- tests/test_box_api.py: DDL done by app procedures (tests/apps/api_app.py),
-- seen through net.box's schema.
function S.api_ddl()
    local c = connect('boss', 'pw')
    local r = {state = c.state, before = c.space[name] ~= nil}
    local made = {c:call('make_space', {name})}
    r.made_version = made[2]
    r.seen = wait_space(c, name, true)
    r.schema_version_after_create = c.schema_version
    local s = c.space[name]
    r.space_id = s and s.id
    r.made_id = made[1]
    r.index_pk = s and s.index.pk ~= nil
    r.insert = s and s:insert({1, 'one'}):totable()
    r.insert2 = s and s:insert({2, 'two'}):totable()
    r.select = s and s:select({}, {iterator = 'GE'})
    r.get = s and s:get({2}):totable()
    r.index_version = c:call('make_index', {name, 'byv', 'v'})
    for _ = 1, 200 do
        if c.space[name] and c.space[name].index.byv then break end
        c:ping()
        fiber.sleep(0.01)
    end
    r.schema_version_after_index = c.schema_version
    local byv = c.space[name] and c.space[name].index.byv
    r.byv_id = byv and byv.id
    r.byv_select = byv and byv:select({'two'})
    r.drop_version = c:call('drop_space', {name})
    r.gone = wait_space(c, name, false)
    r.schema_version_after_drop = c.schema_version
    c:close()
    print(json.encode(r))
end

-- tests/test_ddl_over_call.py: the Lua-named builtins over CALL, as a
-- Tarantool user drives a server. Run against Styx and against Tarantool 2.6.
function S.builtins()
    local c = connect('boss', 'pw')
    local r = {state = c.state}
    local fmt = {{name = 'id', type = 'unsigned'}, {name = 'v', type = 'string'}}
    r.create = try(c, 'box.schema.space.create', {'nb', {format = fmt, id = 1500}})
    r.create_again = try(c, 'box.schema.space.create', {'nb'})
    r.pk = try(c, 'box.space.nb:create_index', {'pk', {parts = {'id'}}})
    r.sec = try(c, 'box.space.nb:create_index', {'sec', {parts = {{2, 'string'}}, unique = false}})
    r.insert1 = try(c, 'box.space.nb:insert', {{1, 'a'}})
    r.insert2 = try(c, 'box.space.nb:insert', {{2, 'b'}})
    r.insert3 = try(c, 'box.space.nb:replace', {{3, 'b'}})
    r.insert_dup = try(c, 'box.space.nb:insert', {{1, 'z'}})
    r.get = try(c, 'box.space.nb:get', {{1}})
    r.get_missing = try(c, 'box.space.nb:get', {{99}})
    r.select_all = try(c, 'box.space.nb:select', {})
    r.select_opts = try(c, 'box.space.nb:select', {{1}, {iterator = 'GT', limit = 1}})
    r.select_sec = try(c, 'box.space.nb.index.sec:select', {{'b'}})
    r.count = try(c, 'box.space.nb:count', {})
    r.count_sec = try(c, 'box.space.nb.index.sec:count', {{'b'}})
    r.len = try(c, 'box.space.nb:len', {})
    r.update = try(c, 'box.space.nb:update', {{1}, {{'=', 2, 'A'}}})
    r.update_missing = try(c, 'box.space.nb:update', {{99}, {{'=', 2, 'A'}}})
    r.upsert = try(c, 'box.space.nb:upsert', {{4, 'd'}, {{'=', 2, 'D'}}})
    r.delete = try(c, 'box.space.nb:delete', {{2}})
    r.delete_missing = try(c, 'box.space.nb:delete', {{2}})
    r.min = try(c, 'box.space.nb.index.pk:min', {})
    r.max = try(c, 'box.space.nb.index.pk:max', {})
    r.after = try(c, 'box.space.nb:select', {})
    -- net.box's own schema shows the space (it reloads on a new schema_version).
    for _ = 1, 200 do
        if c.space.nb ~= nil then break end
        c:ping()
        fiber.sleep(0.01)
    end
    r.netbox_select = c.space.nb and c.space.nb:select({}, {iterator = 'ALL'})
    r.netbox_sec = c.space.nb and c.space.nb.index.sec:select({'b'})
    r.truncate = try(c, 'box.space.nb:truncate', {})
    r.len_after_truncate = try(c, 'box.space.nb:len', {})
    r.user_create = try(c, 'box.schema.user.create', {'nbuser', {password = 'p1'}})
    r.user_grant = try(c, 'box.schema.user.grant', {'nbuser', 'read,write', 'space', 'nb'})
    r.user_info = try(c, 'box.schema.user.info', {'nbuser'})
    r.user_revoke = try(c, 'box.schema.user.revoke', {'nbuser', 'write', 'space', 'nb'})
    r.user_passwd = try(c, 'box.schema.user.passwd', {'nbuser', 'p2'})
    local u = connect('nbuser', 'p2')
    r.new_password = {state = u.state, ping = u.state == 'active' and u:ping()}
    u:close()
    r.role_create = try(c, 'box.schema.role.create', {'nbrole'})
    r.role_exists = try(c, 'box.schema.role.exists', {'nbrole'})
    r.user_drop = try(c, 'box.schema.user.drop', {'nbuser'})
    r.drop = try(c, 'box.space.nb:drop', {})
    r.select_dropped = try(c, 'box.space.nb:select', {})
    r.session_user = try(c, 'box.session.user', {})
    local info = try(c, 'box.info', {})
    r.info_keys = {}
    if info.ok then
        for _, k in ipairs({'id', 'ro', 'status', 'uuid', 'version', 'uptime'}) do
            r.info_keys[k] = type(info.values[1][k])
        end
        r.info_status = info.values[1].status
        r.info_ro = info.values[1].ro
    end
    local stat = try(c, 'box.stat', {})
    r.stat_select_type = stat.ok and type(stat.values[1].SELECT.total)
    local net_stat = try(c, 'box.stat.net', {})
    r.stat_net_keys = {}
    if net_stat.ok then
        for k in pairs(net_stat.values[1]) do table.insert(r.stat_net_keys, k) end
        table.sort(r.stat_net_keys)
    end
    c:close()
    local g = connect()
    r.guest = {
        create = try(g, 'box.schema.space.create', {'g'}),
        select = try(g, 'box.space.nb:select', {}),
        info = try(g, 'box.info', {}),
    }
    g:close()
    print(json.encode(r))
end

package.path = debug.getinfo(1, 'S').source:match('@?(.*/)') .. '?.lua;' .. package.path
require('scenario')(S, scenario)
