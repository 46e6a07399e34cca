-- The oracle of tests/test_box_differential.py: Debian's Tarantool 2.6 with
-- the schema tests/apps/box_app.py creates in Styx (same names, same ids,
-- same formats and indexes; keep the two in step).
--
--     tarantool box_oracle.lua <work dir>
--
-- Prints the listening port on stdout once the schema exists.

local dir = arg[1]
box.cfg{listen = '127.0.0.1:0', wal_mode = 'none', memtx_dir = dir, work_dir = dir,
        log = dir .. '/tarantool.log', log_level = 5}

box.schema.user.grant('guest', 'read,write,execute', 'universe', nil, {if_not_exists = true})
-- A user with only the default grants: what the _v views filter.
box.schema.user.create('limited', {password = 'secret', if_not_exists = true})
-- DDL in the generated tests (tests/test_box_generated.py) runs as boss.
box.schema.user.create('boss', {password = 'pw', if_not_exists = true})
box.schema.user.grant('boss', 'super', nil, nil, {if_not_exists = true})

-- TREE primary [unsigned], non-unique TREE [string], unique multipart [integer, string].
local s = box.schema.space.create('tree', {id = 512, if_not_exists = true, format = {
    {name = 'id', type = 'unsigned'},
    {name = 's', type = 'string'},
    {name = 'n', type = 'integer'},
}})
s:create_index('pk', {type = 'TREE', parts = {{1, 'unsigned'}}})
s:create_index('by_s', {type = 'TREE', parts = {{2, 'string'}}, unique = false})
s:create_index('by_ns', {type = 'TREE', parts = {{3, 'integer'}, {2, 'string'}}, unique = true})

-- HASH primary, unique HASH multipart secondary, non-unique TREE secondary.
s = box.schema.space.create('hash', {id = 513, if_not_exists = true})
s:create_index('pk', {type = 'HASH', parts = {{1, 'unsigned'}}})
s:create_index('h2', {type = 'HASH', parts = {{2, 'string'}, {3, 'integer'}}, unique = true})
s:create_index('t3', {type = 'TREE', parts = {{3, 'integer'}}, unique = false})

-- Nullable secondary parts, non-unique and unique.
s = box.schema.space.create('nullable', {id = 514, if_not_exists = true})
s:create_index('pk', {type = 'TREE', parts = {{1, 'unsigned'}}})
s:create_index('sec', {type = 'TREE', parts = {{field = 2, type = 'integer', is_nullable = true}},
                       unique = false})
s:create_index('uniq', {type = 'TREE', parts = {{field = 3, type = 'string', is_nullable = true}},
                        unique = true})

-- A scalar primary key.
s = box.schema.space.create('scalar', {id = 515, if_not_exists = true})
s:create_index('pk', {type = 'TREE', parts = {{1, 'scalar'}}})

-- A format with names (UPDATE by field name), nullable fields at the end.
s = box.schema.space.create('fmt', {id = 516, if_not_exists = true, format = {
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
s = box.schema.space.create('fixed', {id = 517, if_not_exists = true, field_count = 3})
s:create_index('pk', {type = 'TREE', parts = {{1, 'unsigned'}}})

-- A multipart TREE primary key [string, unsigned].
s = box.schema.space.create('multi', {id = 518, if_not_exists = true})
s:create_index('pk', {type = 'TREE', parts = {{1, 'string'}, {2, 'unsigned'}}})

-- Empties every space above; called between generated sequences.
function reset()
    for _, name in ipairs({'tree', 'hash', 'nullable', 'scalar', 'fmt', 'fixed', 'multi'}) do
        box.space[name]:truncate()
    end
end

io.stdout:write(tostring(box.info.listen):match(':(%d+)$') .. '\n')
io.stdout:flush()
