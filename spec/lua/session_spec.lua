-- Run from the repository root:
--   lua5.4 /usr/bin/busted --lpath='./scripts/?.lua;./scripts/?/init.lua;./spec/lua/support/?.lua' spec/lua
package.path = "./scripts/?.lua;./scripts/?/init.lua;./spec/lua/support/?.lua;" .. package.path

local fake_h2lua = dofile("spec/lua/support/fake_h2lua.lua")
local base64 = require "lib.base64"
local cjson = require "cjson"

local WEEK = 7 * 24 * 3600

describe("session", function()
    local fake, session, sessions

    local function load(name, key)
        local f = fake_h2lua.new { secret_key = key }
        return f, fake_h2lua.require_with(f, name)
    end

    before_each(function()
        fake, session = load("lib.session")
        sessions = session.new()
    end)

    local function request(cookie, fields)
        local req = { scheme = "http", headers = {}, cookies = { session = cookie } }
        for k, v in pairs(fields or {}) do req[k] = v end
        return req
    end

    -- The cookie value a response sets, or nil.
    local function cookie_of(res)
        local h = res.headers["set-cookie"]
        if h == nil then return nil end
        return h:match("^session=([^;]*)")
    end

    local function round_trip(s, req)
        local res = sessions.save(s, req or request(), { status = 200, headers = {}, body = "" })
        return sessions.load(request(cookie_of(res))), res
    end

    it("gives a new session with a random id when there is no cookie", function()
        local a = sessions.load(request(nil))
        local b = sessions.load({ headers = {} })
        assert.is_true(a.is_new)
        assert.matches("^%x+$", a.id)
        assert.equal(32, #a.id)
        assert.are_not.equal(a.id, b.id)
        assert.same({}, a:take_flashes())
    end)

    it("writes a new session with HttpOnly, SameSite=Lax, Path=/ and Max-Age", function()
        local res = sessions.save(sessions.load(request(nil)), request(nil), { status = 200, headers = {} })
        local header = res.headers["set-cookie"]
        assert.matches("^session=[%w_%-]+%.%x+; Path=/; Max%-Age=604800; HttpOnly; SameSite=Lax$", header)
    end)

    it("marks the cookie Secure over HTTPS, directly or behind the load balancer", function()
        local s = sessions.load(request(nil))
        assert.matches("; Secure$", sessions.cookie(s, request(nil, { scheme = "https" })))
        assert.matches("; Secure$", sessions.cookie(s, request(nil, { headers = { ["x-forwarded-proto"] = "https" } })))
        local proxied = request(nil, { headers = { ["x-forwarded-proto"] = "https, http" } })
        assert.matches("; Secure$", sessions.cookie(s, proxied))
        assert.not_matches("Secure", sessions.cookie(s, request(nil, { headers = { ["x-forwarded-proto"] = "http" } })))
        assert.not_matches("Secure", sessions.cookie(s, request(nil)))
    end)

    it("keeps the id, flash messages and values across requests", function()
        local s = sessions.load(request(nil))
        s:flash("Entry added.", "success")
        s:flash("<b>second</b>")
        s:set("theme", "dark")
        local again = round_trip(s)
        assert.is_false(again.is_new)
        assert.equal(s.id, again.id)
        assert.equal("dark", again:get("theme"))
        assert.same({ { message = "Entry added.", category = "success" },
                      { message = "<b>second</b>", category = "info" } }, again:take_flashes())
    end)

    it("shows flash messages once", function()
        local s = sessions.load(request(nil))
        s:flash("once")
        local second = round_trip(s)
        assert.equal(1, #second:take_flashes())
        local third, res = round_trip(second)
        assert.is_string(res.headers["set-cookie"], "taking the flashes rewrites the cookie")
        assert.same({}, third:take_flashes())
    end)

    it("writes nothing when an existing session did not change", function()
        local s = round_trip(sessions.load(request(nil)))
        assert.is_false(s.changed)
        local res = sessions.save(s, request(), { status = 200, headers = {} })
        assert.is_nil(res.headers["set-cookie"])
        assert.same({}, s:take_flashes())
        assert.is_nil(sessions.save(s, request(), { headers = {} }).headers["set-cookie"])
    end)

    it("keeps at most max_flashes messages, the newest", function()
        local s = session.new { max_flashes = 2 }.load(request(nil))
        s:flash("1")
        s:flash("2")
        s:flash("3")
        local msgs = s:take_flashes()
        assert.same({ "2", "3" }, { msgs[1].message, msgs[2].message })
    end)

    it("adds its Set-Cookie to those already in the response", function()
        local s = sessions.load(request(nil))
        local res = sessions.save(s, request(), { headers = { ["set-cookie"] = "a=1" } })
        assert.equal("a=1", res.headers["set-cookie"][1])
        assert.matches("^session=", res.headers["set-cookie"][2])
        s:flash("x")
        res = sessions.save(s, request(), { headers = { ["set-cookie"] = { "a=1", "b=2" } } })
        assert.equal(3, #res.headers["set-cookie"])
        local bare = sessions.save(sessions.load(request(nil)), request(), { status = 200 })
        assert.matches("^session=", bare.headers["set-cookie"])
    end)

    describe("refuses", function()
        local s, value

        before_each(function()
            s = sessions.load(request(nil))
            s:flash("hello")
            value = sessions.cookie(s, request()):match("^session=([^;]*)")
        end)

        local function refused(v)
            local got = sessions.load(request(v))
            assert.is_true(got.is_new, "accepted " .. tostring(v))
            assert.are_not.equal(s.id, got.id)
            assert.same({}, got:take_flashes())
        end

        it("a cookie whose payload was changed", function()
            local payload, mac = value:match("^(.*)%.(%x+)$")
            local p = cjson.decode(base64.url_decode(payload))
            p.id = string.rep("a", 32)
            refused(base64.url_encode(cjson.encode(p)) .. "." .. mac)
        end)

        it("a cookie whose signature was changed", function()
            local last = value:sub(-1)
            refused(value:sub(1, -2) .. (last == "0" and "1" or "0"))
            refused(value:sub(1, -3))
            refused(value .. "00")
        end)

        it("a cookie signed with another key", function()
            local other_fake, other_session = load("lib.session", "another-secret-key-0123456789")
            other_fake.clock = fake.clock
            local forged = other_session.new().cookie(other_session.new().load(request(nil)), request())
            refused(forged:match("^session=([^;]*)"))
        end)

        it("a correctly signed payload that is not a session", function()
            local function signed(json_text)
                local payload = base64.url_encode(json_text)
                return payload .. "." .. fake.hmac_sha256("session\0" .. payload)
            end
            assert.is_false(sessions.load(request(signed(
                '{"id":"' .. string.rep("b", 32) .. '","exp":' .. (fake.clock + 100) .. '}'))).is_new,
                "the signing scheme of the spec matches the library's")
            refused(signed("[1,2]"))
            refused(signed('"x"'))
            refused(signed("not json"))
            refused(signed('{"id":"xyz","exp":' .. (fake.clock + 100) .. '}'))
            refused(signed('{"id":"' .. string.rep("b", 32) .. '"}'))
            refused(signed('{"id":"' .. string.rep("b", 32) .. '","exp":"soon"}'))
            refused(signed('{"id":"' .. string.rep("b", 32) .. '","exp":' .. (fake.clock + 100) .. ',"flash":[[1,2]]}'))
            refused(signed('{"id":"' .. string.rep("b", 32) .. '","exp":' .. (fake.clock + 100) .. ',"data":3}'))
        end)

        it("a cookie signed for something else (another purpose, same key)", function()
            local payload = value:match("^(.*)%.")
            refused(payload .. "." .. fake.hmac_sha256(payload))
            refused(payload .. "." .. fake.hmac_sha256("csrf\0" .. payload))
        end)

        it("malformed cookies", function()
            for _, v in ipairs { "", ".", "abc", "abc.", ".abc", "a.b.c", "a+b.00", value .. ";x",
                                 string.rep("a", 5000) .. "." .. string.rep("0", 64) } do
                refused(v)
            end
        end)

        it("an expired cookie", function()
            fake.clock = fake.clock + WEEK + 1
            refused(value)
        end)
    end)

    it("writes the cookie again once less than half its life is left", function()
        local s = round_trip(sessions.load(request(nil)))
        local value = sessions.cookie(s, request()):match("^session=([^;]*)")
        fake.clock = fake.clock + WEEK / 2 - 10
        assert.is_false(sessions.load(request(value)).changed)
        fake.clock = fake.clock + 20
        local old = sessions.load(request(value))
        assert.is_true(old.changed)
        assert.equal(s.id, old.id)
    end)

    it("checks its options", function()
        assert.has_error(function() session.new { name = "bad name" } end)
        assert.has_error(function() session.new { max_age = 0 } end)
        assert.equal("sid", session.new { name = "sid" }.name)
    end)
end)
