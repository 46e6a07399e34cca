-- A net.box client for the connector tests, run by Debian's tarantool 2.6:
--
--     tarantool netbox_client.lua <scenario> <port>
--
-- Each scenario prints exactly one JSON line (a map of observations) and
-- exits 0; the Python test parses it and asserts. Anything unexpected in the
-- script itself (a Lua error) exits non-zero with the traceback on stderr.

local net = require('net.box')
local json = require('json')
local fiber = require('fiber')
local clock = require('clock')

local scenario, port = arg[1], arg[2]
local addr = '127.0.0.1:' .. port
local OPTS = {connect_timeout = 10, wait_connected = 10}

local function connect(user, password)
    local uri = addr
    if user ~= nil then
        uri = user .. ':' .. password .. '@' .. addr
    end
    return net.connect(uri, OPTS)
end

-- pcall a connection method; returns a table describing the outcome.
local function try(conn, method, ...)
    local res = {pcall(conn[method], conn, ...)}
    if res[1] then
        return {ok = true, values = {unpack(res, 2, table.maxn(res))}}
    end
    local e = res[2]
    local out = {ok = false, message = tostring(e)}
    if type(e) == 'cdata' then
        out.code = e.code
        out.type = e.type
    end
    return out
end

local function names(rows, field)
    local t = {}
    for _, row in ipairs(rows) do table.insert(t, row[field]) end
    return t
end

local S = {}

-- Connect without a user: net.box loads the schema (_vspace, _vindex,
-- _vcollation) before the connection becomes active.
function S.basic()
    local c = connect()
    local r = {
        state = c.state,
        error = c.error,
        peer_version_id = c.peer_version_id,
        schema_version = c.schema_version,
        ping = c:ping(),
        has_vspace = c.space._vspace ~= nil,
        vspace_id = c.space._vspace and c.space._vspace.id,
        vindex_id = c.space._vindex and c.space._vindex.id,
        vcollation_id = c.space._vcollation and c.space._vcollation.id,
        vspace_index_name_id = c.space._vspace and c.space._vspace.index.name
            and c.space._vspace.index.name.id,
        echo = {c:call('echo', {1, 'a'})},
        echo_n = select('#', c:call('echo', {1, 'a'})),
        echo_mixed = {c:call('echo', {{1, 2}, {k = 'v'}, 2.5, true})},
        one = {c:call('one', {5})},
        nothing_n = select('#', c:call('nothing')),
        sum = c:call('sum', {2, 3}),
        whoami = {c:call('whoami')},
    }
    c:close()
    print(json.encode(r))
end

-- AUTH as test/secret, next to a guest connection.
function S.auth()
    local a = connect('test', 'secret')
    local g = connect()
    local r = {
        state = a.state,
        error = a.error,
        ping = a:ping(),
        whoami = {a:call('whoami')},
        guest_whoami = {g:call('whoami')},
        echo = {a:call('echo', {'x', 7})},
    }
    a:close()
    g:close()
    print(json.encode(r))
end

-- Wrong password and unknown user: the connection ends in state 'error'
-- with the server's message; calls on it fail with that message.
function S.bad_auth()
    local r = {}
    for key, creds in pairs({wrong_password = {'test', 'bad'},
                             unknown_user = {'nobody', 'x'}}) do
        local c = connect(creds[1], creds[2])
        r[key] = {
            state = c.state,
            error = c.error,
            is_connected = c:is_connected(),
            call = try(c, 'call', 'echo', {1}),
        }
        c:close()
    end
    print(json.encode(r))
end

function S.errors()
    local c = connect()
    local r = {
        fail = try(c, 'call', 'fail', {'boom'}),
        fail_box = try(c, 'call', 'fail_box', {1000, 'msg'}),
        unknown = try(c, 'call', 'x'),
        ping_after = c:ping(),
        echo_after = {c:call('echo', {42})},
    }
    c:close()
    print(json.encode(r))
end

-- box.session.push: on_push callbacks, and an async future's pairs().
function S.push()
    local c = connect()
    local pushes, ctxs = {}, {}
    local ctx = {tag = 'ctx'}
    local res = c:call('progress', {3}, {
        on_push = function(arg, msg)
            table.insert(ctxs, arg.tag)
            table.insert(pushes, msg)
        end,
        on_push_ctx = ctx,
    })
    local slow_pushes = {}
    local slow_res = c:call('push_then_sleep', {3, 0.01}, {
        on_push = function(_, msg) table.insert(slow_pushes, msg) end,
    })
    local future = c:call('progress', {2}, {is_async = true})
    local seen = {}
    for _, msg in future:pairs(10) do table.insert(seen, msg) end
    local r = {
        result = res,
        pushes = pushes,
        ctxs = ctxs,
        slow_result = slow_res,
        slow_pushes = slow_pushes,
        future_seen = seen,
        future_result = future:result(),
    }
    c:close()
    print(json.encode(r))
end

-- conn.space: system spaces through net.box's own schema.
function S.space()
    local c = connect()
    local vspace = c.space._vspace:select{}
    local rows_281
    for _, t in ipairs(vspace) do
        if t[1] == 281 then rows_281 = t:totable() end
    end
    local by_name = c.space._vspace.index.name:get{'_vcollation'}
    local r = {
        vspace_count = #vspace,
        vspace_names = names(vspace, 3),
        vspace_row = rows_281,
        get_289 = c.space._vspace:get{289}:totable(),
        by_name_id = by_name and by_name[1],
        vindex_of_vspace = names(c.space._vindex:select{281}, 3),
        vcollation_names = names(c.space._vcollation:select{}, 2),
        limit_2 = #c.space._vspace:select({}, {limit = 2}),
    }
    c:close()
    print(json.encode(r))
end

-- Many fibers share one connection: net.box multiplexes by sync.
function S.concurrent()
    local c = connect()
    local N = 100
    local results, done = {}, fiber.channel(N)
    for i = 1, N do
        fiber.create(function()
            local ok, a, b = pcall(c.call, c, 'echo', {i, 'v' .. i})
            results[i] = ok and {a, b} or {'error', tostring(a)}
            done:put(true)
        end)
    end
    for _ = 1, N do done:get(10) end
    local mismatched = {}
    for i = 1, N do
        local got = results[i]
        if got == nil or got[1] ~= i or got[2] ~= 'v' .. i then
            table.insert(mismatched, {i, got})
        end
    end
    -- Ten 0.2 s sleeps at once: async procedures run in fibers on the server.
    local M = 10
    local slept, sdone = {}, fiber.channel(M)
    local t0 = clock.monotonic()
    for i = 1, M do
        fiber.create(function()
            local ok, v = pcall(c.call, c, 'sleep', {0.2, i})
            slept[i] = ok and v or tostring(v)
            sdone:put(true)
        end)
    end
    for _ = 1, M do sdone:get(10) end
    local answered = 0
    for i = 1, N do
        if results[i] ~= nil then answered = answered + 1 end
    end
    local r = {
        count = N,
        answered = answered,
        mismatched = mismatched,
        slept = slept,
        sleep_elapsed = clock.monotonic() - t0,
    }
    c:close()
    print(json.encode(r))
end

package.path = debug.getinfo(1, 'S').source:match('@?(.*/)') .. '?.lua;' .. package.path
require('scenario')(S, scenario)
