-- The Tarantool side of the benchmark (bench/run.py starts it as
-- `tarantool bench/tarantool_init.lua` with the settings in the environment).
-- It defines the same procedures as bench/app.py, with the same semantics,
-- and the same spaces with the same contents.
local listen = os.getenv('BENCH_LISTEN') or '127.0.0.1:3301'
local dir = os.getenv('BENCH_WORK_DIR') or '.'
local net_msg_max = tonumber(os.getenv('BENCH_NET_MSG_MAX') or '768')
local memtx_memory = tonumber(os.getenv('BENCH_MEMTX_MEMORY') or tostring(256 * 1024 * 1024))
local keys = tonumber(os.getenv('BENCH_KEYS') or '10000')
local wal_mode = os.getenv('BENCH_WAL_MODE') or 'none'

box.cfg{
    listen = listen,
    net_msg_max = net_msg_max,
    -- readahead: Tarantool's default (16320), as Styx's
    memtx_memory = memtx_memory,  -- Styx gets the same (--memtx-memory)
    memtx_dir = dir,
    wal_dir = dir,
    vinyl_dir = dir,
    wal_mode = wal_mode,  -- none unless --wal-mode (Styx gets the same)
    log_level = 4,   -- warnings and errors only
}

box.schema.user.grant('guest', 'super', nil, nil, {if_not_exists = true})

-- `bench` (512): pre-filled with keys 1..keys; `mem` (513): empty (the tuple
-- memory test fills it); `txn` (514): empty (the transaction scenario, Styx
-- only, writes to it: kept here so both servers have the same spaces). The
-- same as app.py's init().
local format = {{name = 'id', type = 'unsigned'}, {name = 'value', type = 'string'}}
for _, s in ipairs({{'bench', 512}, {'mem', 513}, {'txn', 514}}) do
    local sp = box.schema.space.create(s[1], {id = s[2], format = format, if_not_exists = true})
    sp:create_index('primary', {parts = {'id'}, if_not_exists = true})
end

local function value(k)  -- 32 bytes, the same as app.py's _value() and loadgen.value()
    return string.format('value-%026d', k)
end

for k = 1, keys do
    box.space.bench:replace{k, value(k)}
end

-- The snapshot benchmark: tuples {k, value(k)} for k in 1..n in space mem
-- (as app.py's fill; in transactions of 1,000, or each row would wait for its own WAL write).
function fill(n)
    box.begin()
    for k = 1, n do
        box.space.mem:replace{k, value(k)}
        if k % 1000 == 0 then box.commit() box.begin() end
    end
    box.commit()
    return n
end

function sum(a, b)
    return a + b
end

lua_sum = sum  -- the call-lua scenario: Styx runs it in its LuaJIT (bench/app.py)

function echo(...)
    return ...
end

function sum_yield(a, b)
    require('fiber').yield()
    return a + b
end
