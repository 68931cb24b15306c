-- What `require "h2lua.static"` finds in the specs: the server's module as it answers for a file
-- it does not hold in memory (static.url returns the path itself).
local static = {}

function static.url(path)
    assert(type(path) == "string", "static.url: path must be a string")
    return path
end

return static
