-- A pure-Lua stand-in for a store of the server's `h2lua.shared` (core/shared_api.c, documented in
-- docs/lua-api.md): get, set, add, incr (with init and init_ttl), delete, ttl, flush_all, on a
-- clock the spec moves. Errors are values, as the server's are. `max_entries` makes a small store
-- that evicts its least recently used entry (forcible = true); `fail = "message"` makes every
-- write fail with that message (a store that refuses, for the fail-open paths).
--
--   local store = dofile("spec/lua/support/fake_shared.lua").new { clock = function() return t end }

local fake_shared = {}

local Store = {}
Store.__index = Store

function fake_shared.new(opts)
    opts = opts or {}
    return setmetatable({
        clock = opts.clock or os.time,
        max_entries = opts.max_entries,
        entries = {}, -- key -> { value =, expires = (nil: never), used = tick }
        tick = 0,
        fail = opts.fail,
        calls = 0,
    }, Store)
end

local function check_key(key)
    if type(key) ~= "string" or #key < 1 or #key > 250 then
        return false, "the key must be 1 to 250 bytes, got " .. (type(key) == "string" and #key or type(key))
    end
    return true
end

function Store:live(key)
    local e = self.entries[key]
    if e and e.expires and e.expires <= self.clock() then
        self.entries[key] = nil
        return nil
    end
    return e
end

function Store:touch(e)
    self.tick = self.tick + 1
    e.used = self.tick
end

-- Makes room for one more entry; returns whether a valid one was evicted.
function Store:room(key)
    if not self.max_entries or self.entries[key] then return false end
    local n, oldest, oldest_key = 0, nil, nil
    for k in pairs(self.entries) do
        local e = self:live(k)
        if e then
            n = n + 1
            if not oldest or e.used < oldest.used then oldest, oldest_key = e, k end
        end
    end
    if n < self.max_entries then return false end
    self.entries[oldest_key] = nil
    return true
end

function Store:get(key)
    self.calls = self.calls + 1
    local e = self:live(key)
    if not e then return nil end
    self:touch(e)
    return e.value
end

function Store:set(key, value, ttl)
    self.calls = self.calls + 1
    local ok, err = check_key(key)
    if not ok then return false, err end
    if self.fail then return false, self.fail end
    if value == nil then
        self.entries[key] = nil
        return true, nil, false
    end
    local forcible = self:room(key)
    local e = { value = value, expires = ttl and ttl > 0 and self.clock() + ttl or nil }
    self:touch(e)
    self.entries[key] = e
    return true, nil, forcible
end

function Store:add(key, value, ttl)
    if self:live(key) then return false, "exists" end
    return self:set(key, value, ttl)
end

function Store:incr(key, n, init, init_ttl)
    self.calls = self.calls + 1
    local ok, err = check_key(key)
    if not ok then return nil, err end
    if self.fail then return nil, self.fail end
    if type(n) ~= "number" then return nil, "the increment must be a number, got " .. type(n) end
    local e = self:live(key)
    if not e then
        if init == nil then return nil, "not found" end
        local forcible = self:room(key)
        e = { value = init + n, expires = init_ttl and init_ttl > 0 and self.clock() + init_ttl or nil }
        self:touch(e)
        self.entries[key] = e
        return e.value, nil, forcible
    end
    if type(e.value) ~= "number" then return nil, "not a number" end
    e.value = e.value + n
    self:touch(e)
    return e.value, nil, false
end

function Store:delete(key)
    self.entries[key] = nil
    return true
end

function Store:ttl(key)
    local e = self:live(key)
    if not e then return nil, "not found" end
    return e.expires and e.expires - self.clock() or 0
end

function Store:flush_all()
    self.entries = {}
end

return fake_shared
