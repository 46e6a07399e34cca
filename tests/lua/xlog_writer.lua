-- Make Tarantool 2.6 write a data directory for tests/test_xlog_tarantool.py.
--
--   tarantool xlog_writer.lua write DIR UUID   DDL, DML of every kind, a user, a
--                                              transaction, a big row, a snapshot,
--                                              then more writes
--   tarantool xlog_writer.lua read DIR UUID    recover DIR; print what it holds
--                                              as JSON on one line
--   tarantool xlog_writer.lua bootstrap DIR UUID   only the bootstrap snapshot
--   tarantool xlog_writer.lua unsupported DIR UUID a vinyl space and a sequence
local json = require('json')
local mode, dir, uuid = arg[1], arg[2], arg[3]

box.cfg{work_dir = dir, instance_uuid = uuid, log = dir .. '/tarantool.log', log_level = 5}

if mode == 'bootstrap' then
    os.exit(0)
end

if mode == 'unsupported' then                -- what Styx cannot carry over
    local kept = box.schema.space.create('kept')
    kept:create_index('pk')
    kept:replace{1, 'memtx'}
    local v = box.schema.space.create('v', {engine = 'vinyl'})
    v:create_index('pk')
    v:replace{1, 'vinyl'}
    box.schema.sequence.create('seq')
    box.snapshot()
    kept:replace{2, 'after'}
    os.exit(0)
end

if mode == 'write' then
    local s = box.schema.space.create('test', {id = 512})
    s:create_index('pk', {type = 'tree', parts = {1, 'unsigned'}})
    s:create_index('name', {type = 'hash', parts = {2, 'string'}})
    s:insert{1, 'a', 0}
    s:replace{2, 'b', 0}
    s:insert{3, 'c', 0}
    s:update({1}, {{'=', 3, 10}, {'=', 2, 'aa'}})
    s:delete{3}
    s:upsert({4, 'd', 0}, {{'+', 3, 1}})
    s:upsert({4, 'd', 0}, {{'+', 3, 1}})
    box.begin()
    s:insert{5, 'e', 0}
    s:insert{6, 'f', 0}
    box.commit()
    s:insert{7, string.rep('x', 4096), 0}   -- a block big enough to be compressed
    box.schema.user.create('alice', {password = 'secret'})
    box.schema.user.grant('alice', 'read,write', 'space', 'test')
    box.snapshot()
    s:replace{8, 'h', 0}
    s.index.name:delete{'b'}                 -- through a secondary index
    os.exit(0)
end

local out = {vclock = box.info.vclock, test = {}, users = {}}
if box.space.test ~= nil then
    for _, t in box.space.test:pairs() do table.insert(out.test, t:totable()) end
    out.indexes = {}
    for _, i in pairs(box.space.test.index) do out.indexes[i.name] = i.type end
    out.format = box.space.test:format()
end
out.spaces = {}
for _, sp in box.space._space:pairs(512, {iterator = 'GE'}) do
    local rows = {}
    for _, t in box.space[sp[1]]:pairs() do table.insert(rows, t:totable()) end
    out.spaces[sp[3]] = rows
end
out.truncate = {}
for _, t in box.space._truncate:pairs() do table.insert(out.truncate, t:totable()) end
out.schema = {}
for _, t in box.space._schema:pairs() do out.schema[t[1]] = t:totable() end
for _, u in box.space._user:pairs() do table.insert(out.users, u[3]) end
out.privs = {}
for _, p in box.space._priv:pairs() do
    if p[2] >= 32 then table.insert(out.privs, {p[2], p[3], p[4], p[5]}) end
end
print(json.encode(out))
os.exit(0)
