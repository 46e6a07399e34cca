-- Runs one named scenario of a client script and exits: 0 when it printed
-- its JSON line, 1 with the traceback on stderr if it raised, 2 if there is
-- no such scenario.
--
--     package.path = debug.getinfo(1, 'S').source:match('@?(.*/)') .. '?.lua;' .. package.path
--     require('scenario')(S, scenario)

return function(scenarios, name)
    local f = scenarios[name]
    if f == nil then
        io.stderr:write('unknown scenario ' .. tostring(name) .. '\n')
        os.exit(2)
    end
    local ok, err = xpcall(f, debug.traceback)
    io.stdout:flush()
    if not ok then
        io.stderr:write(tostring(err) .. '\n')
        os.exit(1)
    end
    os.exit(0)
end
