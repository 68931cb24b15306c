-- What `require "h2lua.metrics"` finds in the specs: metrics that keep their values in Lua (the
-- server's are kept by the process: core/metrics_api.h). Labels are a table by name, as there.
local metrics = {}

local function key(labels)
    local names = {}
    for k in pairs(labels or {}) do names[#names + 1] = k end
    table.sort(names)
    local parts = {}
    for _, k in ipairs(names) do parts[#parts + 1] = k .. "=" .. tostring(labels[k]) end
    return table.concat(parts, ",")
end

local registry = {}

local function declare(kind, name)
    assert(type(name) == "string" and name:match("^[%a_][%w_]*$"), "bad metric name")
    local m = registry[name]
    if m then
        assert(m.kind == kind, "'" .. name .. "' is already a " .. m.kind)
        return m
    end
    m = { kind = kind, values = {}, counts = {} }
    function m:inc(n, labels)
        if type(n) == "table" then n, labels = 1, n end
        local k = key(labels)
        self.values[k] = (self.values[k] or 0) + (n or 1)
    end
    function m:dec(n, labels)
        if type(n) == "table" then n, labels = 1, n end
        self:inc(-(n or 1), labels)
    end
    function m:set(v, labels) self.values[key(labels)] = v end
    function m:observe(v, labels)
        local k = key(labels)
        self.values[k] = (self.values[k] or 0) + v
        self.counts[k] = (self.counts[k] or 0) + 1
    end
    function m:value(labels)
        local k = key(labels)
        if self.kind == "histogram" then return self.values[k] or 0, self.counts[k] or 0 end
        return self.values[k] or 0
    end
    registry[name] = m
    return m
end

function metrics.counter(name) return declare("counter", name) end
function metrics.gauge(name) return declare("gauge", name) end
function metrics.histogram(name) return declare("histogram", name) end

return metrics
