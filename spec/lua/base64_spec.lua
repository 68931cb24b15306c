-- Run from the repository root:
--   lua5.4 /usr/bin/busted --lpath='./scripts/?.lua;./scripts/?/init.lua;./spec/lua/support/?.lua' spec/lua
package.path = "./scripts/?.lua;./scripts/?/init.lua;./spec/lua/support/?.lua;" .. package.path

local base64 = require "lib.base64"

describe("base64", function()
    it("encodes the RFC 4648 vectors without padding", function()
        local vectors = { [""] = "", f = "Zg", fo = "Zm8", foo = "Zm9v", foob = "Zm9vYg", fooba = "Zm9vYmE",
                          foobar = "Zm9vYmFy" }
        for plain, encoded in pairs(vectors) do
            assert.equal(encoded, base64.url_encode(plain))
            assert.equal(plain, base64.url_decode(encoded))
        end
    end)

    it("uses - and _ instead of + and /", function()
        assert.equal("-_-_", base64.url_encode("\251\255\191"))
        assert.equal("\251\255\191", base64.url_decode("-_-_"))
    end)

    it("round-trips every byte at every length", function()
        local all = {}
        for i = 0, 255 do all[#all + 1] = string.char(i) end
        local s = table.concat(all)
        for n = 0, 70 do
            local part = s:sub(1, n)
            assert.equal(part, base64.url_decode(base64.url_encode(part)))
        end
    end)

    it("refuses what it does not make", function()
        assert.is_nil(base64.url_decode("Zm9v+g"))
        assert.is_nil(base64.url_decode("Zm9v/g"))
        assert.is_nil(base64.url_decode("Zg=="))
        assert.is_nil(base64.url_decode("Z"))
        assert.is_nil(base64.url_decode("Zh"), "bits set past the end")
        assert.is_nil(base64.url_decode("Zm9"), "bits set past the end")
        assert.is_nil(base64.url_decode("Zm 9v"))
        assert.is_nil(base64.url_decode(nil))
    end)
end)
