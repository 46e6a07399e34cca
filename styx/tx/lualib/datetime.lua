-- datetime, as Tarantool 2.10's (2.6 has none): a cdata with Tarantool's
-- layout (epoch seconds UTC, nsec, tzoffset minutes, tzindex) and its
-- fields (year ... sec, nsec, timestamp, wday, yday, tzoffset), new{},
-- now(), parse(), is_datetime, tostring (ISO 8601: '2022-01-01T00:00:00Z',
-- '.123' / '.123456' / '.123456789', '+0300'), :format(strftime) (Python),
-- :totable(), :set{}, :add{}/:sub{} by a table (years and months snap to
-- the month's last day), comparisons. It crosses IPROTO as MessagePack
-- extension 4 (core.lua, protocol/ext.py).
-- Not here: intervals as objects (datetime - datetime), named time zones
-- (tz = 'Europe/Moscow': Styx has no Olson table), strptime-style parse.
local S = ...
local ffi = S.ffi
local datetime_t = S.datetime_t
local floor = math.floor

local SECS_PER_DAY = 86400

-- Days since 1970-01-01 of a proleptic Gregorian date, and back (H. Hinnant's algorithms).
local function days_from_civil(y, m, d)
    y = m <= 2 and y - 1 or y
    local era = floor(y / 400)
    local yoe = y - era * 400
    local doy = floor((153 * (m > 2 and m - 3 or m + 9) + 2) / 5) + d - 1
    local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
    return era * 146097 + doe - 719468
end

local function civil_from_days(z)
    z = z + 719468
    local era = floor(z / 146097)
    local doe = z - era * 146097
    local yoe = floor((doe - floor(doe / 1460) + floor(doe / 36524) - floor(doe / 146096)) / 365)
    local doy = doe - (365 * yoe + floor(yoe / 4) - floor(yoe / 100))
    local mp = floor((5 * doy + 2) / 153)
    local d = doy - floor((153 * mp + 2) / 5) + 1
    local m = mp < 10 and mp + 3 or mp - 9
    return yoe + era * 400 + (m <= 2 and 1 or 0), m, d
end

local function days_in_month(y, m)
    if m == 2 then
        return ((y % 4 == 0 and y % 100 ~= 0) or y % 400 == 0) and 29 or 28
    end
    return ({31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31})[m]
end

local function is_datetime(v) return ffi.istype(datetime_t, v) end

local function local_secs(self) return self.epoch + self.tzoffset * 60 end

-- The local calendar fields of a datetime.
local function fields(self)
    local secs = local_secs(self)
    local days = floor(secs / SECS_PER_DAY)
    local y, m, d = civil_from_days(days)
    local rest = secs - days * SECS_PER_DAY
    return {year = y, month = m, day = d, hour = floor(rest / 3600), min = floor(rest / 60) % 60,
            sec = rest % 60, days = days}
end

local function check_range(v, from, to, name, level, extra)
    if type(v) ~= 'number' then
        error(('numeric value expected, but received %s'):format(type(v)), level + 1)
    end
    if v == extra or (v >= from and v <= to) then return end
    if extra ~= nil then
        error(('value %d of %s is out of allowed range [%d, %d..%d]'):format(v, name, extra, from, to), level + 1)
    end
    error(('value %d of %s is out of allowed range [%d, %d]'):format(v, name, from, to), level + 1)
end

local function check_integer(v, name, level)
    if v ~= nil and (type(v) ~= 'number' or v % 1 ~= 0) then
        error(('%s: integer value expected, but received %s'):format(name, type(v)), level + 1)
    end
end

local function parse_tzoffset(s, level)
    if s == 'Z' or s == 'z' then return 0 end
    local sign, h, m = s:match('^([+-])(%d%d):?(%d%d)$')
    if not sign then sign, h = s:match('^([+-])(%d%d)$'); m = '00' end
    if not sign then error(('invalid time-zone format %s'):format(s), level + 1) end
    local off = tonumber(h) * 60 + tonumber(m)
    return sign == '-' and -off or off
end

local function get_tzoffset(v, level)
    if type(v) == 'number' then
        check_integer(v, 'tzoffset', level + 1)
    elseif type(v) == 'string' then
        v = parse_tzoffset(v, level + 1)
    else
        error(('tzoffset: string or number expected, but received %s'):format(tostring(v)), level + 1)
    end
    check_range(v, -720, 840, 'tzoffset', level + 1)
    return v
end

local function subsecond(obj, level)
    local n = (obj.nsec ~= nil and 1 or 0) + (obj.usec ~= nil and 1 or 0) + (obj.msec ~= nil and 1 or 0)
    if n > 1 then error('only one of nsec, usec or msecs may be defined simultaneously', level + 1) end
    if obj.usec ~= nil then
        check_range(obj.usec, 0, 1e6, 'usec', level + 1); check_integer(obj.usec, 'usec', level + 1)
        return obj.usec * 1e3, n
    elseif obj.msec ~= nil then
        check_range(obj.msec, 0, 1e3, 'msec', level + 1); check_integer(obj.msec, 'msec', level + 1)
        return obj.msec * 1e6, n
    elseif obj.nsec ~= nil then
        check_range(obj.nsec, 0, 1e9, 'nsec', level + 1); check_integer(obj.nsec, 'nsec', level + 1)
        return obj.nsec, n
    end
    return nil, n
end

local function check_parts(obj, level)
    for _, p in ipairs({{'year', -5879610, 5879611}, {'month', 1, 12}, {'day', 1, 31, -1},
                        {'hour', 0, 23}, {'min', 0, 59}, {'sec', 0, 60}}) do
        local v = obj[p[1]]
        if v ~= nil then
            check_range(v, p[2], p[3], p[1], level + 1, p[4])
            check_integer(v, p[1], level + 1)
        end
    end
end

local function day_of(y, m, d, level)
    if d < 0 then d = days_in_month(y, m) end
    if d > days_in_month(y, m) then
        error(('invalid number of days %d in month %d for %d'):format(d, m, y), level + 1)
    end
    return days_from_civil(y, m, d)
end

local datetime = {}

function datetime.new(obj)
    if obj == nil then return datetime_t(0, 0, 0, 0) end
    if type(obj) ~= 'table' then
        error(('datetime.new(): expected table, but received %s'):format(type(obj)), 2)
    end
    if obj.tz ~= nil then error("Styx's datetime has no named time zones (tz); use tzoffset", 2) end
    check_parts(obj, 2)
    local nsec, count = subsecond(obj, 2)
    nsec = nsec or 0
    local ymd = obj.year ~= nil or obj.month ~= nil or obj.day ~= nil
    local hms = obj.hour ~= nil or obj.min ~= nil or obj.sec ~= nil
    local secs = 0
    if obj.timestamp ~= nil then
        if ymd then error('timestamp is not allowed if year/month/day provided', 2) end
        if hms then error('timestamp is not allowed if hour/min/sec provided', 2) end
        local ts = obj.timestamp
        if type(ts) ~= 'number' then
            error(("bad timestamp ('number' expected, got '%s')"):format(type(ts)), 2)
        end
        local s, fraction = math.modf(ts)
        if fraction < 0 then s, fraction = s - 1, fraction + 1 end
        if count == 0 then
            nsec = floor(fraction * 1e9 + 0.5)
        elseif fraction ~= 0 then
            error('only integer values allowed in timestamp if nsec, usec, or msecs provided', 2)
        end
        secs = s
    end
    local offset = obj.tzoffset ~= nil and get_tzoffset(obj.tzoffset, 2) or 0
    local days = 0
    if ymd then days = day_of(obj.year or 1970, obj.month or 1, obj.day or 1, 2) end
    if hms then secs = (obj.hour or 0) * 3600 + (obj.min or 0) * 60 + (obj.sec or 0) end
    return datetime_t(days * SECS_PER_DAY + secs - offset * 60, nsec, offset, 0)
end

function datetime.now()
    local t = require('clock').realtime64()
    local secs = tonumber(t / 1000000000)
    local now = os.time()
    local offset = floor(os.difftime(now, os.time(os.date('!*t', now))) / 60)
    return datetime_t(secs, tonumber(t % 1000000000), offset, 0)
end

-- ISO 8601: date [T time [zone]]; the datetime and how many characters it took.
function datetime.parse(s, opts)
    if type(s) ~= 'string' then
        error(('datetime.parse(): expected string, but received %s'):format(type(s)), 2)
    end
    local y, m, d, pos = s:match('^(%-?%d%d%d%d)%-(%d%d)%-(%d%d)()')
    if not y then y, m, d, pos = s:match('^(%d%d%d%d)(%d%d)(%d%d)()') end
    if not y then error(("could not parse '%s'"):format(s), 2) end
    y, m, d = tonumber(y), tonumber(m), tonumber(d)
    if m < 1 or m > 12 or d < 1 or d > days_in_month(y, m) then error(("could not parse '%s'"):format(s), 2) end
    local secs, nsec, offset = 0, 0, 0
    if opts and opts.tzoffset ~= nil then offset = get_tzoffset(opts.tzoffset, 2) end
    local sep = s:sub(pos, pos)
    if sep == 'T' or sep == 't' or sep == ' ' then
        local hh, mm, rest = s:match('^(%d%d):?(%d%d)()', pos + 1)
        if not hh then error(("could not parse '%s'"):format(s), 2) end
        pos = rest
        local ss = s:match('^:?(%d%d)', pos)
        if ss then
            pos = s:find('%d%d', pos) + 2
            local frac = s:match('^[.,](%d+)', pos)
            if frac then
                pos = pos + 1 + #frac
                nsec = floor(tonumber(('0.' .. frac)) * 1e9 + 0.5)
            end
        end
        secs = tonumber(hh) * 3600 + tonumber(mm) * 60 + (tonumber(ss) or 0)
        if s:sub(pos, pos) == ' ' then pos = pos + 1 end
        local zone = s:match('^(Z)', pos) or s:match('^z', pos) or s:match('^([+-]%d%d:?%d%d)', pos)
            or s:match('^([+-]%d%d)', pos)
        if zone then
            offset = parse_tzoffset(zone, 2)
            pos = pos + #zone
        end
    end
    if pos <= #s then error(("could not parse '%s'"):format(s), 2) end
    return datetime_t(days_from_civil(y, m, d) * SECS_PER_DAY + secs - offset * 60, nsec, offset, 0), pos - 1
end

function datetime.is_datetime(v) return is_datetime(v) end

-- -- methods ----------------------------------------------------------------------------

local function tostr(self)
    local f = fields(self)
    local out = {string.format('%04d-%02d-%02dT%02d:%02d:%02d', f.year, f.month, f.day, f.hour, f.min, f.sec)}
    local nsec = self.nsec
    if nsec ~= 0 then
        if nsec % 1000000 == 0 then out[2] = string.format('.%03d', nsec / 1000000)
        elseif nsec % 1000 == 0 then out[2] = string.format('.%06d', nsec / 1000)
        else out[2] = string.format('.%09d', nsec) end
    end
    local off = self.tzoffset
    if off == 0 then
        out[#out + 1] = 'Z'
    else
        local sign = off < 0 and '-' or '+'
        off = math.abs(off)
        out[#out + 1] = string.format('%s%02d%02d', sign, floor(off / 60), off % 60)
    end
    return table.concat(out)
end

local function check_self(self, what)
    if not is_datetime(self) then
        error(('%s: expected datetime, but received %s'):format(what, type(self)), 3)
    end
end

local function totable(self)
    check_self(self, 'datetime.totable()')
    local f = fields(self)
    return {year = f.year, month = f.month, day = f.day, hour = f.hour, min = f.min, sec = f.sec,
            nsec = self.nsec, wday = (f.days + 4) % 7 + 1,
            yday = f.days - days_from_civil(f.year, 1, 1) + 1, isdst = false,
            tzoffset = self.tzoffset, tz = '', timestamp = self.epoch + self.nsec / 1e9}
end

local function format(self, fmt)
    check_self(self, 'datetime.format()')
    if fmt == nil then return tostr(self) end
    if type(fmt) ~= 'string' then
        error(('datetime.strftime(): expected string, but received %s'):format(type(fmt)), 2)
    end
    return S.py.datetime_format(self.epoch, self.nsec, self.tzoffset, fmt)
end

local function set(self, obj)
    check_self(self, 'datetime.set()')
    if type(obj) ~= 'table' then
        error(('datetime.set(): expected table, but received %s'):format(type(obj)), 2)
    end
    check_parts(obj, 2)
    local nsec = subsecond(obj, 2)
    if nsec ~= nil then self.nsec = nsec end
    local offset = obj.tzoffset ~= nil and get_tzoffset(obj.tzoffset, 2) or self.tzoffset
    if obj.timestamp ~= nil then
        local s, fraction = math.modf(obj.timestamp)
        if fraction < 0 then s, fraction = s - 1, fraction + 1 end
        if nsec == nil then self.nsec = floor(fraction * 1e9 + 0.5) end
        self.epoch, self.tzoffset = s - offset * 60, offset
        return self
    end
    local f = fields(self)
    local days = day_of(obj.year or f.year, obj.month or f.month, obj.day or f.day, 2)
    local secs = (obj.hour or f.hour) * 3600 + (obj.min or f.min) * 60 + (obj.sec or f.sec)
    self.epoch, self.tzoffset = days * SECS_PER_DAY + secs - offset * 60, offset
    return self
end

-- self moved by a table of years, months, weeks, days, hours, mins, secs,
-- nsec (direction 1 or -1); a new datetime.
local function shift(self, by, direction)
    if type(by) ~= 'table' then
        error(('%s: expected interval or table, but received %s'):format(
            direction > 0 and 'datetime.add' or 'datetime.sub', type(by)), 3)
    end
    local r = datetime_t(self)
    local months = ((by.year or 0) * 12 + (by.month or 0)) * direction
    if months ~= 0 then
        local f = fields(r)
        local total = f.year * 12 + (f.month - 1) + months
        local y, m = floor(total / 12), total % 12 + 1
        local d = math.min(f.day, days_in_month(y, m))
        r.epoch = r.epoch + (days_from_civil(y, m, d) - f.days) * SECS_PER_DAY
    end
    local secs = ((by.week or 0) * 7 * SECS_PER_DAY + (by.day or 0) * SECS_PER_DAY + (by.hour or 0) * 3600
                  + (by.min or 0) * 60 + (by.sec or 0)) * direction
    local nsec = r.nsec + (by.nsec or (by.usec or 0) * 1e3 + (by.msec or 0) * 1e6) * direction
    secs = secs + floor(nsec / 1e9)
    r.epoch, r.nsec = r.epoch + secs, nsec % 1e9
    return r
end

local getters = {
    timestamp = function(self) return self.epoch + self.nsec / 1e9 end,
    year = function(self) return fields(self).year end,
    month = function(self) return fields(self).month end,
    day = function(self) return fields(self).day end,
    hour = function(self) return fields(self).hour end,
    min = function(self) return fields(self).min end,
    sec = function(self) return self.epoch % 60 end,
    yday = function(self) return totable(self).yday end,
    wday = function(self) return totable(self).wday end,
    usec = function(self) return self.nsec / 1e3 end,
    msec = function(self) return self.nsec / 1e6 end,
    isdst = function() return false end,
    tz = function() return '' end,
}

local methods = {
    format = format, totable = totable, set = set,
    add = function(self, by) local r = shift(self, by, 1); self.epoch, self.nsec = r.epoch, r.nsec; return self end,
    sub = function(self, by) local r = shift(self, by, -1); self.epoch, self.nsec = r.epoch, r.nsec; return self end,
}

local function compare(a, b)
    if not is_datetime(a) or not is_datetime(b) then
        error('incompatible types for datetime comparison', 3)
    end
    local d = a.epoch - b.epoch
    return d ~= 0 and d or a.nsec - b.nsec
end

ffi.metatype(datetime_t, {
    __tostring = tostr,
    __index = function(self, key)
        local get = getters[key]
        if get then return get(self) end
        return methods[key]
    end,
    __eq = function(a, b) return is_datetime(a) and is_datetime(b) and compare(a, b) == 0 end,
    __lt = function(a, b) return compare(a, b) < 0 end,
    __le = function(a, b) return compare(a, b) <= 0 end,
    __add = function(a, b)
        if is_datetime(b) then a, b = b, a end
        return shift(a, b, 1)
    end,
    __sub = function(a, b)
        if is_datetime(b) then
            error("Styx's datetime has no intervals: datetime - datetime is not there yet", 2)
        end
        return shift(a, b, -1)
    end,
})

return setmetatable(datetime, {__call = function(_, obj) return datetime.new(obj) end})
