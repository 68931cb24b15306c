-- lib.limit on a fake store of h2lua.shared (spec/lua/support/fake_shared.lua) and a clock the
-- spec moves: fixed and sliding windows, retry_after, the refused take counted nowhere, several
-- keys and limiters apart, long keys, and a failing store that lets requests through with a log.

local fake_h2lua = dofile("spec/lua/support/fake_h2lua.lua")
local fake_shared = dofile("spec/lua/support/fake_shared.lua")

describe("lib.limit", function()
    local h2lua, limit, store

    before_each(function()
        h2lua = fake_h2lua.new { clock = 1700000040 } -- a multiple of 60 (and of 5, 10, 30)
        limit = fake_h2lua.require_with(h2lua, "lib.limit")
        store = fake_shared.new { clock = h2lua.now }
    end)

    local function takes(l, key, n)
        local got = {}
        for i = 1, n do got[i] = (l:take(key)) end
        return got
    end

    it("refuses bad options", function()
        assert.has_error(function() limit.new { limit = 1, window = 1 } end)
        assert.has_error(function() limit.new { store = store, limit = 0, window = 1 } end)
        assert.has_error(function() limit.new { store = store, limit = 1.5, window = 1 } end)
        assert.has_error(function() limit.new { store = store, limit = 1, window = 0 } end)
        assert.has_error(function() limit.new { store = store, limit = 1, window = 1, prefix = 3 } end)
        local l = limit.new { store = store, limit = 2, window = 1 }
        assert.has_error(function() l:take(42) end)
        assert.has_error(function() l:take("k", 3) end)
        assert.has_error(function() l:take("k", 0) end)
    end)

    describe("a fixed window", function()
        it("allows the limit, then refuses until the window ends", function()
            local l = limit.new { store = store, limit = 3, window = 60 }
            local ok, remaining, retry = l:take("a")
            assert.same({ true, 2, 0 }, { ok, remaining, retry })
            assert.same({ true, true }, takes(l, "a", 2))
            h2lua.clock = h2lua.clock + 20.5
            ok, remaining, retry = l:take("a")
            assert.same({ false, 0, 40 }, { ok, remaining, retry })
            h2lua.clock = h2lua.clock + 39
            ok, remaining, retry = l:take("a")
            assert.same({ false, 0, 1 }, { ok, remaining, retry })
            h2lua.clock = h2lua.clock + 0.5 -- the next window
            assert.same({ true, true, true, false }, takes(l, "a", 4))
        end)

        it("counts n at once, and a refused take counts nothing", function()
            local l = limit.new { store = store, limit = 10, window = 10 }
            local ok, remaining = l:take("a", 7)
            assert.same({ true, 3 }, { ok, remaining })
            assert.is_false((l:take("a", 4)))
            ok, remaining = l:take("a", 3)
            assert.same({ true, 0 }, { ok, remaining })
            for _ = 1, 5 do assert.is_false((l:take("a"))) end
            h2lua.clock = h2lua.clock + 10
            ok, remaining = l:take("a")
            assert.same({ true, 9 }, { ok, remaining })
        end)

        it("keeps keys and prefixes apart", function()
            local a = limit.new { store = store, limit = 1, window = 60, prefix = "a:" }
            local b = limit.new { store = store, limit = 1, window = 60, prefix = "b:" }
            assert.is_true((a:take("10.0.0.1")))
            assert.is_false((a:take("10.0.0.1")))
            assert.is_true((a:take("10.0.0.2")))
            assert.is_true((b:take("10.0.0.1")))
        end)

        it("creates its counters with the window as TTL", function()
            local l = limit.new { store = store, limit = 5, window = 60, prefix = "w:" }
            l:take("k")
            assert.equal(60, store:ttl("w:k:" .. string.format("%d", h2lua.clock / 60)))
        end)
    end)

    describe("a sliding window", function()
        it("weighs the previous window by what is left of it", function()
            local l = limit.new { store = store, limit = 10, window = 10, sliding = true }
            h2lua.clock = h2lua.clock + 9 -- 10 takes at the end of a window
            assert.same({ true, true, true, true, true, true, true, true, true, true }, takes(l, "a", 10))
            h2lua.clock = h2lua.clock + 1 -- the next window starts: the previous counts fully
            local ok, remaining, retry = l:take("a")
            assert.is_false(ok)
            assert.equal(0, remaining)
            assert.equal(1, retry) -- after 1 s a tenth of the previous has slid out: room for one
            h2lua.clock = h2lua.clock + 1
            ok, remaining = l:take("a")
            assert.same({ true, 0 }, { ok, remaining })
            assert.is_false((l:take("a")))
            h2lua.clock = h2lua.clock + 4 -- half of the previous left: 5 + 1 used
            ok, remaining = l:take("a")
            assert.same({ true, 3 }, { ok, remaining })
        end)

        it("says when the next window has room when this one is full", function()
            local l = limit.new { store = store, limit = 4, window = 10, sliding = true }
            assert.same({ true, true, true, true, false }, takes(l, "a", 5))
            local _, _, retry = l:take("a")
            -- 10 s to the next window, then 4 * (1 - e/10) + 1 <= 4 from e = 2.5 s
            assert.equal(13, retry)
            h2lua.clock = h2lua.clock + 12
            assert.is_false((l:take("a")))
            h2lua.clock = h2lua.clock + 0.5
            assert.is_true((l:take("a")))
        end)

        it("forgets windows older than the previous one", function()
            local l = limit.new { store = store, limit = 2, window = 5, sliding = true }
            assert.same({ true, true, false }, takes(l, "a", 3))
            h2lua.clock = h2lua.clock + 10
            assert.same({ true, true, false }, takes(l, "a", 3))
        end)

        it("keeps its counters for two windows", function()
            local l = limit.new { store = store, limit = 5, window = 30, sliding = true, prefix = "s:" }
            l:take("k")
            assert.equal(60, store:ttl("s:k:" .. string.format("%d", h2lua.clock / 30)))
        end)
    end)

    it("hashes keys too long for the store", function()
        local l = limit.new { store = store, limit = 1, window = 60 }
        local long = string.rep("x", 300)
        assert.is_true((l:take(long)))
        assert.is_false((l:take(long)))
        assert.is_true((l:take(string.rep("x", 299) .. "y")))
        for key in pairs(store.entries) do assert.is_true(#key <= 250) end
        assert.same({}, h2lua.logged)
    end)

    it("fails open with one log line a minute when the store refuses", function()
        local broken = fake_shared.new { clock = h2lua.now, fail = "no memory" }
        local l = limit.new { store = broken, limit = 1, window = 60 }
        local ok, remaining, retry = l:take("a")
        assert.same({ true, 0, 0 }, { ok, remaining, retry })
        assert.same({ true, true, true }, takes(l, "a", 3))
        assert.equal(1, #h2lua.logged)
        assert.matches("limit: the store failed %(no memory%); requests are let through", h2lua.logged[1][1])
        h2lua.clock = h2lua.clock + 61
        l:take("a")
        assert.equal(2, #h2lua.logged)
    end)

    it("says so when a full store evicts counters, and still counts", function()
        local small = fake_shared.new { clock = h2lua.now, max_entries = 2 }
        local l = limit.new { store = small, limit = 1, window = 60 }
        assert.is_true((l:take("a")))
        assert.is_true((l:take("b")))
        assert.same({}, h2lua.logged)
        assert.is_true((l:take("c"))) -- evicts a's counter
        assert.equal(1, #h2lua.logged)
        assert.matches("the store is full", h2lua.logged[1][1])
        assert.is_false((l:take("c")))
        assert.is_true((l:take("a"))) -- a starts from zero again
        assert.equal(1, #h2lua.logged)
    end)

    it("uses the core's clock and log by default", function()
        local l = limit.new { store = store, limit = 1, window = 60 }
        assert.is_true((l:take("a")))
        assert.is_false((l:take("a")))
        h2lua.clock = h2lua.clock + 60
        assert.is_true((l:take("a")))
    end)
end)
