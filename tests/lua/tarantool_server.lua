-- Debian's Tarantool 2.6 as the oracle for the differential tests: the same
-- spaces, users and grants as a Styx test app, on an ephemeral port. Every
-- test that needs a Tarantool server starts it with this script, through
-- tests/oracle.py `tarantool_server`.
--
--     tarantool tarantool_server.lua <setup> <work_dir> [memtx_memory]
--
-- <setup> is `crud` (tests/apps/crud_app.py), `priv` (tests/apps/priv_app.py),
-- `memtx` (tests/apps/memtx_app.py), `ddl` (tests/apps/ddl_app.py), `head`
-- (tests/apps/head_app.py), `update` (tests/unit/test_update.py), `box`
-- (tests/apps/box_app.py) or `field_types` (tests/unit/test_field_types.py).
-- Prints "PORT <n>" once listening, then serves until terminated. The log
-- goes to stderr, which tests/oracle.py sends to <work_dir>/tarantool.log.

local setup, work_dir, memtx_memory = arg[1], arg[2], tonumber(arg[3])

-- What a setup needs of box.cfg besides the defaults below.
local CFG = {
    box = {wal_mode = 'none', log_level = 5},
    field_types = {wal_mode = 'none'},
}

local cfg = {listen = '127.0.0.1:0', work_dir = work_dir, log_level = 2,
             memtx_memory = memtx_memory}
for k, v in pairs(CFG[setup] or {}) do cfg[k] = v end
box.cfg(cfg)

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

-- tests/test_box_differential.py (tests/apps/box_app.py, which creates the
-- same schema in Styx: same names, same ids, same formats and indexes; keep
-- the two in step). No WAL; the log at level 5.
function S.box()
    box.schema.user.grant('guest', 'read,write,execute', 'universe')
    -- A user with only the default grants: what the _v views filter.
    box.schema.user.create('limited', {password = 'secret'})
    -- DDL in the generated tests (tests/test_box_generated.py) runs as boss.
    box.schema.user.create('boss', {password = 'pw'})
    box.schema.user.grant('boss', 'super', nil)

    -- TREE primary [unsigned], non-unique TREE [string], unique multipart [integer, string].
    local s = box.schema.space.create('tree', {id = 512, format = {
        {name = 'id', type = 'unsigned'},
        {name = 's', type = 'string'},
        {name = 'n', type = 'integer'},
    }})
    s:create_index('pk', {type = 'TREE', parts = {{1, 'unsigned'}}})
    s:create_index('by_s', {type = 'TREE', parts = {{2, 'string'}}, unique = false})
    s:create_index('by_ns', {type = 'TREE', parts = {{3, 'integer'}, {2, 'string'}}, unique = true})

    -- HASH primary, unique HASH multipart secondary, non-unique TREE secondary.
    s = box.schema.space.create('hash', {id = 513})
    s:create_index('pk', {type = 'HASH', parts = {{1, 'unsigned'}}})
    s:create_index('h2', {type = 'HASH', parts = {{2, 'string'}, {3, 'integer'}}, unique = true})
    s:create_index('t3', {type = 'TREE', parts = {{3, 'integer'}}, unique = false})

    -- Nullable secondary parts, non-unique and unique.
    s = box.schema.space.create('nullable', {id = 514})
    s:create_index('pk', {type = 'TREE', parts = {{1, 'unsigned'}}})
    s:create_index('sec', {type = 'TREE', parts = {{field = 2, type = 'integer', is_nullable = true}},
                           unique = false})
    s:create_index('uniq', {type = 'TREE', parts = {{field = 3, type = 'string', is_nullable = true}},
                            unique = true})

    -- A scalar primary key.
    s = box.schema.space.create('scalar', {id = 515})
    s:create_index('pk', {type = 'TREE', parts = {{1, 'scalar'}}})

    -- A format with names (UPDATE by field name), nullable fields at the end.
    s = box.schema.space.create('fmt', {id = 516, format = {
        {name = 'id', type = 'unsigned'},
        {name = 'cnt', type = 'integer'},
        {name = 'price', type = 'number'},
        {name = 'name', type = 'string', is_nullable = true},
        {name = 'bits', type = 'unsigned', is_nullable = true},
        {name = 'extra', type = 'any', is_nullable = true},
    }})
    s:create_index('pk', {type = 'TREE', parts = {'id'}})
    s:create_index('by_name', {type = 'TREE', parts = {{field = 4, type = 'string', is_nullable = true}},
                               unique = false})

    -- field_count = 3.
    s = box.schema.space.create('fixed', {id = 517, field_count = 3})
    s:create_index('pk', {type = 'TREE', parts = {{1, 'unsigned'}}})

    -- A multipart TREE primary key [string, unsigned].
    s = box.schema.space.create('multi', {id = 518})
    s:create_index('pk', {type = 'TREE', parts = {{1, 'string'}, {2, 'unsigned'}}})

    -- Empties every space above; called between generated sequences.
    rawset(_G, 'reset', function()
        for _, name in ipairs({'tree', 'hash', 'nullable', 'scalar', 'fmt', 'fixed', 'multi'}) do
            box.space[name]:truncate()
        end
    end)
end

-- tests/unit/test_field_types.py: guest is super (the tests create their
-- spaces over IPROTO); no WAL.
function S.field_types()
    box.schema.user.grant('guest', 'super')
end

S[setup]()
io.stdout:write('PORT ' .. box.info.listen:match(':(%d+)$') .. '\n')
io.stdout:flush()
