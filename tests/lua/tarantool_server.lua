-- Debian's Tarantool 2.6 as the oracle for the differential tests: the same
-- spaces, users and grants as a Styx test app, on an ephemeral port.
--
--     tarantool tarantool_server.lua <setup> <work_dir> [memtx_memory]
--
-- <setup> is `crud` (tests/apps/crud_app.py), `priv` (tests/apps/priv_app.py),
-- `memtx` (tests/apps/memtx_app.py), `ddl` (tests/apps/ddl_app.py), `head`
-- (tests/apps/head_app.py) or `update` (tests/unit/test_update.py).
-- Prints "PORT <n>" once listening, then serves until terminated.

local setup, work_dir, memtx_memory = arg[1], arg[2], tonumber(arg[3])
box.cfg{listen = '127.0.0.1:0', work_dir = work_dir, log_level = 2,
        memtx_memory = memtx_memory}

local S = {}

function S.crud()
    box.schema.user.grant('guest', 'read,write,execute', 'universe')
    local tester = box.schema.space.create('tester', {format = {
        {name = 'id', type = 'unsigned'}, {name = 'name', type = 'string'},
        {name = 'value', type = 'any'}}})
    tester:create_index('primary', {type = 'TREE', parts = {'id'}})
    tester:create_index('name', {type = 'TREE', parts = {'name'}, unique = false})
    local hashy = box.schema.space.create('hashy', {format = {
        {name = 'key', type = 'string'}, {name = 'value', type = 'any'}}})
    hashy:create_index('pk', {type = 'HASH', parts = {'key'}})
    box.schema.user.create('crud', {password = 'pw'})
    box.schema.user.grant('crud', 'read,write', 'space', 'tester')
    box.schema.user.grant('crud', 'read,write', 'space', 'hashy')
    box.schema.user.grant('crud', 'execute', 'universe')
    box.schema.user.create('nogrants', {password = 'pw'})
    box.schema.user.create('boss', {password = 'pw'})
    box.schema.user.grant('boss', 'super')
    rawset(_G, 'add', function(a, b) return a + b end)
    rawset(_G, 'tester_names', function()
        local names = {}
        for _, t in box.space.tester.index.name:pairs() do table.insert(names, t[2]) end
        return names
    end)
    rawset(_G, 'whoami', function() return box.session.user() end)
end

function S.priv()
    box.schema.user.passwd('admin', 'pw')
    local secret = box.schema.space.create('secret', {format = {
        {name = 'id', type = 'unsigned'}, {name = 'v', type = 'any'}}})
    secret:create_index('pk')
    secret:insert{1, 'a'}
    secret:insert{2, 'b'}
    local other = box.schema.space.create('other', {format = {
        {name = 'id', type = 'unsigned'}, {name = 'v', type = 'any'}}})
    other:create_index('pk')
    other:insert{10, 'x'}
    box.schema.user.create('nopriv', {password = 'pw'})
    box.schema.user.create('reader', {password = 'pw'})
    box.schema.user.grant('reader', 'read', 'space', 'secret')
    box.schema.user.create('boss', {password = 'pw'})
    box.schema.user.grant('boss', 'super')
    box.schema.func.create('f')
    box.schema.user.grant('reader', 'execute', 'function', 'f')
    rawset(_G, 'f', function(...) return 'f', ... end)
    rawset(_G, 'g', function(...) return 'g', ... end)
end

function S.memtx()
    box.schema.user.grant('guest', 'read,write,execute', 'universe')
    local t = box.schema.space.create('t', {format = {
        {name = 'id', type = 'unsigned'}, {name = 'tag', type = 'string'},
        {name = 'data', type = 'any'}}})
    t:create_index('pk')
    t:create_index('tag', {parts = {'tag'}, unique = false})
end

-- tests/test_ddl_over_call.py: no spaces; boss/pw has the role super; guest
-- has only its default grants (no execute on the universe).
function S.ddl()
    box.schema.user.create('boss', {password = 'pw'})
    box.schema.user.grant('boss', 'super')
end

-- tests/test_reply_head.py (tests/apps/head_app.py): guest may do anything;
-- space `bench` holds {1, 'value1'}; echo(...) and progress(n), which pushes
-- {step = i} n times and returns 'done'.
function S.head()
    box.schema.user.grant('guest', 'read,write,execute', 'universe')
    local bench = box.schema.space.create('bench', {format = {
        {name = 'id', type = 'unsigned'}, {name = 'value', type = 'string'}}})
    bench:create_index('pk')
    bench:insert{1, 'value1'}
    rawset(_G, 'echo', function(...) return ... end)
    rawset(_G, 'progress', function(n)
        for i = 0, n - 1 do box.session.push({step = i}) end
        return 'done'
    end)
end

-- tests/unit/test_update.py: space `t` (id 512), {id unsigned, a, b, c any
-- nullable}, a TREE primary key on id; guest is super.
function S.update()
    box.schema.user.grant('guest', 'super')
    local s = box.schema.space.create('t', {id = 512, format = {
        {name = 'id', type = 'unsigned'},
        {name = 'a', type = 'any', is_nullable = true},
        {name = 'b', type = 'any', is_nullable = true},
        {name = 'c', type = 'any', is_nullable = true},
    }})
    s:create_index('pk', {parts = {1, 'unsigned'}})
end

S[setup]()
io.stdout:write('PORT ' .. box.info.listen:match(':(%d+)$') .. '\n')
io.stdout:flush()
