-- The Tarantool side of the benchmark (bench/run.py starts it as
-- `tarantool bench/tarantool_init.lua` with the settings in the environment).
-- It defines the same procedures as bench/app.py, with the same semantics.
local listen = os.getenv('BENCH_LISTEN') or '127.0.0.1:3301'
local dir = os.getenv('BENCH_WORK_DIR') or '.'
local net_msg_max = tonumber(os.getenv('BENCH_NET_MSG_MAX') or '768')

box.cfg{
    listen = listen,
    net_msg_max = net_msg_max,
    -- readahead: Tarantool's default (16320), as Styx's
    memtx_dir = dir,
    wal_dir = dir,
    vinyl_dir = dir,
    wal_mode = 'none',
    log_level = 4,   -- warnings and errors only
}

box.schema.user.grant('guest', 'super', nil, nil, {if_not_exists = true})

function sum(a, b)
    return a + b
end

function echo(...)
    return ...
end

function sum_yield(a, b)
    require('fiber').yield()
    return a + b
end
