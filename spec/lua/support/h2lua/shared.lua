-- What `require "h2lua.shared"` finds in the specs: the stores of the default SHARED_STORES
-- (limits) as fake_shared.lua stores on the default fake core's clock.
local fake_shared = require "fake_shared"
return {
    limits = fake_shared.new { clock = function() return require("h2lua").now() end },
}
