-- Run from the repository root:
--   lua5.4 /usr/bin/busted --lpath='./scripts/?.lua;./scripts/?/init.lua' spec/lua
-- lib/devreload with a stand-in for the server's h2lua (app_state) and for a stream's `out`; the
-- real stream and the browser are in spec/e2e/devreload.test.mjs.
package.path = "./scripts/?.lua;./scripts/?/init.lua;" .. package.path

local fake_h2lua = dofile("spec/lua/support/fake_h2lua.lua")
local router = require "lib.router"

-- An `out` that records what is sent; each sleep runs step(n) (n = sleeps so far) first.
local function fake_out(step)
    local out = { sent = {}, sleeps = 0 }
    function out.send(_, s)
        out.sent[#out.sent + 1] = s
        return true
    end
    function out.sleep()
        out.sleeps = out.sleeps + 1
        return step(out.sleeps)
    end
    return out
end

describe("devreload", function()
    local fake, devreload, state

    before_each(function()
        fake = fake_h2lua.new()
        state = { version = 3, err = nil, boot = "0123456789abcdef" }
        function fake.app_state() return state.version, state.err, state.boot end
        devreload = fake_h2lua.require_with(fake, "lib.devreload")
    end)

    it("mounts the script and the events, and tags every render with the version", function()
        local r = router.new()
        local seen
        local views = { render = function(name, data) seen = { name, data.dev_version } return "page" end }
        devreload.mount(r, views)
        local js = r:match("GET", "/_dev/reload.js")({})
        assert.equal("text/javascript; charset=utf-8", js.headers["content-type"])
        assert.truthy(js.body:find("new EventSource('/_dev/events?since='", 1, true))
        assert.truthy(r:match("GET", "/_dev/events"))
        assert.equal("page", views.render("index", { title = "t" }))
        assert.same({ "index", "0123456789abcdef.3" }, seen)
        views.render("index")
        assert.same({ "index", "0123456789abcdef.3" }, seen)
    end)

    it("streams the load error while it lasts, line by line, then reload for a newer version", function()
        local res = devreload.events { query = { since = "0123456789abcdef.3" } }
        assert.equal("text/event-stream", res.headers["content-type"])
        local out = fake_out(function(n)
            if n == 1 then state.err = "scripts/app.lua:12: unexpected symbol\nstack traceback:" end
            if n == 3 then state.err, state.version = nil, 4 end
            return true
        end)
        res.stream(out)
        assert.same({
            "retry: 500\n\n",
            "event: load-error\ndata: scripts/app.lua:12: unexpected symbol\ndata: stack traceback:\n\n",
            "event: reload\ndata: 0123456789abcdef.4\n\n",
        }, out.sent)
    end)

    it("a version already newer than the page's reloads at once; the stream ends when the client goes", function()
        local out = fake_out(function() return true end)
        devreload.events({ query = { since = "0123456789abcdef.2" } }).stream(out)
        assert.same({ "retry: 500\n\n", "event: reload\ndata: 0123456789abcdef.3\n\n" }, out.sent)

        local idle = fake_out(function(n) if n == 5 then return nil, "closed" end return true end)
        devreload.events({ query = { since = "0123456789abcdef.3" } }).stream(idle)
        assert.equal(5, idle.sleeps)
        assert.same({ "retry: 500\n\n" }, idle.sent)
    end)

    it("a page of another run of the server (it was restarted) reloads at once, whatever its generation", function()
        for _, since in ipairs { "fedcba9876543210.0", "fedcba9876543210.9", "3", "" } do
            local out = fake_out(function() return true end)
            devreload.events({ query = { since = since } }).stream(out)
            assert.same({ "retry: 500\n\n", "event: reload\ndata: 0123456789abcdef.3\n\n" }, out.sent, since)
        end
        local out = fake_out(function(n) return n < 3 end)
        devreload.events({ query = { since = "0123456789abcdef.3" } }).stream(out)
        assert.same({ "retry: 500\n\n" }, out.sent, "the same run and generation: no reload")
    end)
end)
