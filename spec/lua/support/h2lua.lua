-- What `require "h2lua"` finds in the specs (spec/lua/support on the path): a default instance of
-- the fake core. A spec that needs its own (a key, a clock) sets package.loaded.h2lua.
return require("fake_h2lua").new()
