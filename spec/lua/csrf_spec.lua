-- Run from the repository root:
--   lua5.4 /usr/bin/busted --lpath='./scripts/?.lua;./scripts/?/init.lua;./spec/lua/support/?.lua' spec/lua
package.path = "./scripts/?.lua;./scripts/?/init.lua;./spec/lua/support/?.lua;" .. package.path

local fake_h2lua = dofile("spec/lua/support/fake_h2lua.lua")

describe("csrf", function()
    local fake, csrf, http
    local alice = { id = string.rep("a", 32) }
    local bob = { id = string.rep("b", 32) }

    before_each(function()
        fake = fake_h2lua.new()
        csrf = fake_h2lua.require_with(fake, "lib.csrf")
        http = package.loaded["lib.http"]
    end)

    it("makes tokens of an expiry and an HMAC", function()
        local token = csrf.token(alice)
        local expiry, mac = token:match("^(%d+)%.(%x+)$")
        assert.equal(math.floor(fake.clock) + csrf.max_age, tonumber(expiry))
        assert.equal(fake.hmac_sha256("csrf\0" .. alice.id .. "\0" .. expiry), mac)
    end)

    it("accepts a token of the same session until it expires", function()
        local token = csrf.token(alice, 60)
        assert.is_true(csrf.verify(alice, token))
        assert.is_true(csrf.verify({ id = alice.id }, token))
        fake.clock = fake.clock + 59
        assert.is_true(csrf.verify(alice, token))
        fake.clock = fake.clock + 2
        assert.is_false(csrf.verify(alice, token))
    end)

    it("refuses another session's token", function()
        assert.is_false(csrf.verify(bob, csrf.token(alice)))
    end)

    it("refuses a token whose expiry was moved", function()
        local token = csrf.token(alice, 60)
        local expiry, mac = token:match("^(%d+)%.(%x+)$")
        assert.is_false(csrf.verify(alice, (tonumber(expiry) + 3600) .. "." .. mac))
        assert.is_false(csrf.verify(alice, "0" .. token))
    end)

    it("refuses a token made with another key", function()
        local other = fake_h2lua.require_with(fake_h2lua.new { secret_key = "another-key-0123456789" }, "lib.csrf")
        assert.is_false(csrf.verify(alice, other.token(alice)))
    end)

    it("refuses malformed tokens and missing sessions", function()
        local token = csrf.token(alice)
        for _, bad in ipairs { "", ".", token .. "0", token:sub(1, -2), " " .. token, token:upper(),
                               "1." .. string.rep("0", 64), "99999999999999." .. string.rep("0", 64) } do
            assert.is_false(csrf.verify(alice, bad), bad)
        end
        assert.is_false(csrf.verify(alice, nil))
        assert.is_false(csrf.verify(alice, 12))
        assert.is_false(csrf.verify(nil, token))
        assert.is_false(csrf.verify({}, token))
        assert.has_error(function() csrf.token({}) end)
    end)

    describe("check", function()
        it("passes a form with the session's token", function()
            assert.has_no.errors(function() csrf.check({ form = { csrf_token = csrf.token(alice) } }, alice) end)
        end)

        it("raises HTTP 403 otherwise", function()
            for _, f in ipairs { {}, { csrf_token = "" }, { csrf_token = csrf.token(bob) } } do
                local ok, err = pcall(csrf.check, { form = f }, alice)
                assert.is_false(ok)
                assert.is_true(http.is_error(err))
                assert.equal(403, err.status)
            end
        end)
    end)
end)
