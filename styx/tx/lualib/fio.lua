-- fio, the file calls Tarantool scripts and tests use: open and a handle
-- (read, write, pread, pwrite, seek, close, fsync, truncate, stat), stat,
-- mkdir/rmdir/mktree/rmtree, unlink, rename, listdir, glob, tempdir, cwd,
-- the path.* tests and the path string functions. Failures answer as 2.6's:
-- nil (or false) and "fio: <strerror>". The system calls are Python's os
-- (lua_modules._FIO), on file descriptors as Tarantool's are.
local S = ...
local py = S.py
local ffi = require('ffi')
S.cdef('int close(int fd);')

local fio = {path = {}}

local flags = {O_RDONLY = 0, O_WRONLY = 1, O_RDWR = 2, O_CREAT = 64, O_EXCL = 128, O_NOCTTY = 256,
               O_TRUNC = 512, O_APPEND = 1024, O_NONBLOCK = 2048, O_DSYNC = 4096, O_DIRECT = 16384,
               O_LARGEFILE = 32768, O_DIRECTORY = 65536, O_NOFOLLOW = 131072, O_NOATIME = 262144,
               O_CLOEXEC = 524288, O_SYNC = 1052672, O_PATH = 2097152, O_TMPFILE = 4259840}
local modes = {S_IRWXU = 448, S_IRUSR = 256, S_IWUSR = 128, S_IXUSR = 64, S_IRWXG = 56, S_IRGRP = 32,
               S_IWGRP = 16, S_IXGRP = 8, S_IRWXO = 7, S_IROTH = 4, S_IWOTH = 2, S_IXOTH = 1}
local seeks = {SEEK_SET = 0, SEEK_CUR = 1, SEEK_END = 2}
fio.c = {flag = flags, mode = modes, seek = seeks}

local function bits(v, names, what)
    if type(v) == 'number' then return v end
    if type(v) == 'string' then v = {v} end
    local r = 0
    for _, name in ipairs(v or {}) do
        if type(name) == 'number' then
            r = bit.bor(r, name)
        else
            if names[name] == nil then  -- 2.6's message, with its place
                error('builtin/fio.lua:204: fio.open(): unknown ' .. what .. ': ' .. tostring(name), 0)
            end
            r = bit.bor(r, names[name])
        end
    end
    return r
end

local function ok_or_false(ok, err)
    if ok == nil then return false, err end
    return true
end

-- -- stat -------------------------------------------------------------------------------

local S_IFMT, types = 61440, {is_reg = 32768, is_dir = 16384, is_link = 40960, is_sock = 49152,
                               is_fifo = 4096, is_chr = 8192, is_blk = 24576}
local stat_methods = {}
for name, ifmt in pairs(types) do
    stat_methods[name] = function(st) return bit.band(st.mode, S_IFMT) == ifmt end
end
local stat_mt = {__index = stat_methods}

local function stat_of(ok, ...)
    if ok == nil then return nil, ... end
    local v = {...}
    return setmetatable({dev = v[1], inode = v[2], mode = v[3], nlink = v[4], uid = v[5], gid = v[6],
                         rdev = v[7], size = v[8], blksize = v[9], blocks = v[10], atime = v[11],
                         mtime = v[12], ctime = v[13]}, stat_mt)
end

function fio.stat(path) return stat_of(py.fio_stat(path, true)) end
function fio.lstat(path) return stat_of(py.fio_stat(path, false)) end

-- -- handles --------------------------------------------------------------------------

local handle = {}
handle.__index = handle

function handle:read(size)
    if self.fd == nil then error('fio: file is closed', 2) end
    return py.fio_read(self.fd, size or -1)
end

function handle:pread(size, offset) return py.fio_pread(self.fd, size, offset) end

-- len counts only for cdata buffers in 2.6: a string is written whole.
function handle:write(data, len)
    data = tostring(data)
    return ok_or_false(py.fio_write(self.fd, data))
end

function handle:pwrite(data, offset)
    data = tostring(data)
    return ok_or_false(py.fio_pwrite(self.fd, data, offset))
end

function handle:seek(offset, whence)
    whence = whence or 'SEEK_SET'
    if type(whence) == 'string' then whence = seeks[whence] end
    return py.fio_seek(self.fd, offset or 0, whence)
end

function handle:close()
    local ok, err = py.fio_close(self.fd)
    if ok then self.fd = nil end
    return ok_or_false(ok, err)
end

function handle:fsync() return ok_or_false(py.fio_fsync(self.fd)) end
handle.fdatasync = handle.fsync
function handle:truncate(size) return ok_or_false(py.fio_ftruncate(self.fd, size or 0)) end
function handle:stat() return stat_of(py.fio_stat(self.fd, true)) end
handle.__tostring = function(self) return 'fh: ' .. tostring(self.fd) end

function fio.open(path, how, mode)
    local flag = bits(how or 0, flags, 'flag')
    local fd, err = py.fio_open(path, flag, bits(mode or 438, modes, 'mode'))  -- 0666
    if fd == nil then return nil, err end
    local fh = setmetatable({fd = fd}, handle)
    -- A handle the script drops closes its descriptor, as Tarantool's does
    -- (a Lua 5.1 table has no __gc: a proxy userdata carries it).
    -- The collector may run while Python's is tearing this state down (the
    -- state and its Python helpers are one cycle): a finalizer must not
    -- call into Python, so it closes through FFI.
    local guard = newproxy(true)
    getmetatable(guard).__gc = function() if fh.fd ~= nil then ffi.C.close(fh.fd) end end
    rawset(fh, guard, true)
    return fh
end

-- -- the file system ------------------------------------------------------------------

function fio.mkdir(path, mode) return ok_or_false(py.fio_mkdir(path, bits(mode or 511, modes, 'mode'))) end
function fio.mktree(path, mode) return ok_or_false(py.fio_mktree(path, bits(mode or 511, modes, 'mode'))) end
function fio.rmdir(path) return ok_or_false(py.fio_rmdir(path)) end
function fio.rmtree(path) return ok_or_false(py.fio_rmtree(path)) end
function fio.unlink(path) return ok_or_false(py.fio_unlink(path)) end
function fio.rename(a, b) return ok_or_false(py.fio_rename(a, b)) end
function fio.copyfile(a, b) return ok_or_false(py.fio_copyfile(a, b)) end
function fio.chmod(path, mode) return ok_or_false(py.fio_chmod(path, mode)) end
function fio.truncate(path, size) return ok_or_false(py.fio_truncate(path, size or 0)) end
function fio.symlink(a, b) return ok_or_false(py.fio_symlink(a, b)) end
function fio.link(a, b) return ok_or_false(py.fio_link(a, b)) end
function fio.readlink(path) return py.fio_readlink(path) end
function fio.chdir(path) return ok_or_false(py.fio_chdir(path)) end
function fio.utime(path, atime, mtime)
    local now = os.time()
    return ok_or_false(py.fio_utime(path, atime or now, mtime or atime or now))
end
function fio.umask(mask) return py.fio_umask(mask) end
function fio.cwd() return py.fio_cwd() end
function fio.tempdir() return py.fio_tempdir() end
function fio.abspath(path) return py.fio_abspath(path) end

function fio.listdir(path)
    local r = {py.fio_listdir(path)}
    if r[1] == nil then return nil, r[2] end
    table.remove(r, 1)
    return r
end

function fio.glob(pattern) return {py.fio_glob(pattern)} end

function fio.path.exists(path) return py.fio_is(path, 'exists') end
function fio.path.lexists(path) return py.fio_is(path, 'lexists') end
function fio.path.is_dir(path) return py.fio_is(path, 'dir') end
function fio.path.is_file(path) return py.fio_is(path, 'file') end
function fio.path.is_link(path) return py.fio_is(path, 'link') end

-- -- path strings (as POSIX basename/dirname and Tarantool's pathjoin) ------------------

function fio.basename(path, suffix)
    if path == nil then return nil end
    path = tostring(path):gsub('.*/', '')
    if suffix ~= nil and #suffix > 0 and #path > #suffix and path:sub(-#suffix) == suffix then
        path = path:sub(1, -#suffix - 1)
    end
    return path
end

function fio.dirname(path)
    if path == nil then return nil end
    local given = tostring(path)
    path = given:gsub('/+$', '')
    if path == '' then return given == '' and '.' or '/' end
    local d = path:match('^(.*)/[^/]*$')
    if d == nil then return '.' end
    d = d:gsub('/+$', '')
    if d == '' then return '/' end
    return d
end

function fio.pathjoin(...)
    local parts = {}
    for i = 1, select('#', ...) do
        local p = select(i, ...)
        if p == nil then error('fio.pathjoin: argument ' .. i .. ' is nil', 2) end
        parts[#parts + 1] = tostring(p)
    end
    local path = table.concat(parts, '/'):gsub('/+', '/')
    if #path > 1 then path = path:gsub('/$', '') end
    return path
end

return fio
