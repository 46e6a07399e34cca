-- errno, as Tarantool's: the platform's E* constants, errno() (the
-- thread's last errno, through the FFI) and strerror([code]).
local S = ...

local errno = {}
for name, code in pairs(S.py.errno_names) do errno[name] = code end

function errno.strerror(code)
    return S.py.strerror(code or S.ffi.errno())
end

return setmetatable(errno, {__call = function(_, set)
    if set ~= nil then return S.ffi.errno(set) end
    return S.ffi.errno()
end})
