-- One init script, run by Tarantool 2.6 and by Styx (tests/test_lua_procs.py):
-- the functions it defines are called over IPROTO on both, and the answers
-- compared.
local fiber = require('fiber')
local json = require('json')

box.cfg{listen = os.getenv('LISTEN') or 3301, work_dir = os.getenv('WORK'), memtx_memory = 0.1 * 1024^3}

box.once('procs-schema', function()
    box.schema.user.grant('guest', 'read,write,execute', 'universe')
    local s = box.schema.space.create('t', {format = {{'id', 'unsigned'}, {'name', 'string'}, {'n', 'any', is_nullable = true}}})
    s:create_index('pk', {parts = {1, 'unsigned'}})
    box.schema.user.create('nobody_su')
    box.schema.user.create('auth_user', {password = 'secret'})
    box.schema.user.grant('auth_user', 'execute', 'universe')
end)

-- Session triggers: what they saw, and one that refuses a connection.
auths, connects, refuse = {}, 0, false
box.session.on_connect(function()
    connects = connects + 1
    if refuse then refuse = false error('not now') end
end)
box.session.on_auth(function(user, ok) table.insert(auths, {user, ok}) end)
function session_seen() local a = auths auths = {} return connects > 0, a end
function refuse_next() refuse = true end
once_runs = 0
box.once('procs-counter', function() once_runs = once_runs + 1 end)
box.once('procs-counter', function() once_runs = once_runs + 1 end)

function sum(a, b) return a + b end
function several() return 1, nil, 'three', {4}, {a = 5} end
function nothing() end
function echo(...) return ... end
function boom() error('boom') end
function boom_table() error({reason = 'x'}) end
function box_err() box.error(box.error.NO_SUCH_SPACE, 'nope') end
function box_err_table() box.error{code = 1234, reason = 'custom reason'} end
function caught() local ok, e = pcall(error, 'inner') return ok, tostring(e) end
function func_returns_function() return function() end end
function get_once_runs() return once_runs end

function put(id, name) return box.space.t:replace{id, name} end
function tuple_parts(id)
    local t = box.space.t:get(id)
    if t == nil then return 'none' end
    return t[1], t[2], t.name, t.id, #t, t:totable(), t:tomap({names_only = true})
end
function tuple_update(id) return box.space.t:get(id):update({{'=', 2, 'changed'}}):totable() end
function tuple_unpack(id) return box.space.t:get(id):unpack() end
function select_all() return box.space.t:select{} end
function count_loop(n)
    local c = 0
    for _, t in box.space.t:pairs() do c = c + 1 end
    return c
end

function sleepy(t) fiber.sleep(t) return 'woke' end
function via_channel()
    local ch = fiber.channel(1)
    fiber.create(function() fiber.sleep(0.01) ch:put('from fiber') end)
    return ch:get(2)
end
function via_cond()
    local c = fiber.cond()
    local done = false
    fiber.create(function() fiber.sleep(0.01) done = true c:signal() end)
    local woken = c:wait(2)
    return woken, done
end
function cond_timeout() return fiber.cond():wait(0.01) end
function joined()
    local f = fiber.new(function(a, b) fiber.sleep(0.01) return a + b end, 20, 22)
    f:set_joinable(true)
    return f:join()
end
function fiber_status()
    local f = fiber.create(function() fiber.sleep(10) end)
    local before = f:status()
    f:cancel()
    fiber.sleep(0.01)
    return before, f:status(), fiber.self():status()
end
function channel_timeout() return fiber.channel(0):get(0.01) end
function atomic_rollback(id)
    local ok = pcall(box.atomic, function()
        box.space.t:replace{id, 'in atomic'}
        error('undo')
    end)
    return ok, box.space.t:get(id) == nil
end
function txn_commit(id)
    box.begin()
    box.space.t:replace{id, 'in txn'}
    box.commit()
    return box.space.t:get(id):totable()
end
function txn_left_open(id)
    box.begin()
    box.space.t:replace{id, 'left'}
end
function json_round(v) return json.decode(json.encode(v)) end

-- on_replace triggers: what they see, and one that refuses undoes the statement.
trigger_log = {}
local function log_trigger(old, new, space, kind)
    table.insert(trigger_log, {old and old:totable() or 'nil', new and new:totable() or 'nil', space, kind,
                               new and new.name or 'no name'})
end
function triggers_seen(id)
    trigger_log = {}
    box.space.t:on_replace(log_trigger)
    box.space.t:insert{id, 'a'}
    box.space.t:replace{id, 'b'}
    box.space.t:update(id, {{'=', 2, 'c'}})
    box.space.t:upsert({id, 'd'}, {{'=', 2, 'e'}})
    box.space.t:delete(id)
    box.space.t:on_replace(nil, log_trigger)
    box.space.t:insert{id + 1, 'after'}
    return trigger_log, #box.space.t:on_replace()
end
function trigger_refuses(id)
    local function refuse(old, new) if new and new[2] == 'bad' then error('refused by trigger') end end
    box.space.t:on_replace(refuse)
    local ok, err = pcall(function() box.space.t:insert{id, 'bad'} end)
    local inserted = box.space.t:get(id)
    box.space.t:insert{id, 'good'}
    box.space.t:on_replace(nil, refuse)
    return ok, tostring(err):match('refused by trigger') ~= nil, inserted == nil, box.space.t:get(id):totable()
end

function su_check()
    local who = {box.session.su('nobody_su', function() return box.session.user(), box.session.effective_user() end)}
    local ok, err = pcall(box.session.su, 'nobody_su', function() return box.space.t:select{} end)
    local ok2, err2 = pcall(box.session.su, 'no_such_user_su', function() end)
    return who, box.session.user(), ok, tostring(err), ok2, tostring(err2)
end

function ddl_round()
    return box.session.su('admin', function()
        local s = box.schema.space.create('ddl_round')
        s:create_index('pk', {parts = {1, 'unsigned'}})
        s:create_index('sk', {parts = {2, 'string'}, unique = false})
        s.index.pk:alter({parts = {1, 'integer'}})
        s.index.sk:rename('by_name')
        s:format({{'id', 'integer'}, {'name', 'string'}})
        s:rename('ddl_round2')
        local t = box.space.ddl_round2
        local out = {t.index.pk.parts[1].type, t.index.by_name ~= nil, t:format(), box.space.ddl_round == nil}
        t:drop()
        table.insert(out, box.space.ddl_round2 == nil)
        return out
    end)
end

nested = {deeper = {fn = function(x) return 'nested ' .. x end}}
obj = {name = 'obj'}
function obj:method(x) return self.name .. ' ' .. x end

-- What the connectors' own setup scripts use (bench/peers: asynctnt's
-- tests/files/app.lua, tarantool-driver's test/box.lua).
box.once('procs-peers', function()
    local s = box.schema.create_space('peers_mk')
    s:create_index('pk', {parts = {1, 'NUM'}})
end)
function map_keys()
    box.space.peers_mk:replace{1, 'array as key', {[{2, 7}] = {1, 2, 3}}}
    box.space.peers_mk:replace{2, 'map as key', {[{[2.7] = 3, [7] = 7}] = {1, 2, 3}}}
    local n = 0
    for k, v in pairs(box.space.peers_mk:get(1)[3]) do n = n + k[1] + k[2] + #v end
    for k, _ in pairs(box.space.peers_mk:get(2)[3]) do n = n + k[7] end
    return box.space.peers_mk:count(), n
end
function tarantool_version() return type(_TARANTOOL), _TARANTOOL == box.info.version end
function custom_error() box.error(box.error.new{code = 5, reason = 'A', type = 'B'}) end
function fun_squares(n) return require('fun').range(n):map(function(x) return x * x end):totable() end
function users_named(name) return #box.space._user.index.name:select{name} end
function set_global(k, v) rawset(_G, k, v) return rawget(_G, k) end
box.once('procs-peers-tmp', function()
    box.schema.space.create('peers_tmp', {temporary = true}):create_index('pk')
end)
function read_only_round()  -- tarantool-python's pool tests switch it through the console
    box.cfg{read_only = true}
    local out = {box.info.ro, box.cfg.read_only}
    local function err(...) return tostring(select(2, pcall(...))) end
    out[#out + 1] = err(box.space.t.replace, box.space.t, {40, 'ro'})
    out[#out + 1] = err(box.space.t.truncate, box.space.t)
    out[#out + 1] = box.space.peers_tmp:replace{1, 'temporary spaces change'}
    out[#out + 1] = err(box.cfg, {read_only = 'yes'})
    box.cfg{read_only = false}
    out[#out + 1] = box.info.ro
    out[#out + 1] = box.space.t:replace{40, 'rw'}
    box.space.t:delete{40}
    return out
end
function create_func(name) box.schema.func.create(name) end
function space_fields()
    local s = box.space.t
    return s.id, s.name, s.engine, s.field_count, s.index.pk.id, s.index.pk.type, s.index.pk.unique
end
function create_twice()
    local s1, r1 = box.schema.space.create('peers_twice', {if_not_exists = true})
    local s2, r2 = box.schema.create_space('peers_twice', {if_not_exists = true})
    local same = s1.id == s2.id
    s2:drop()
    return r1, r2, same
end

print('READY')
io.stdout:flush()
