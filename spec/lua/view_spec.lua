-- Run from the repository root:
--   lua5.4 /usr/bin/busted --lpath='./scripts/?.lua;./scripts/?/init.lua;./spec/lua/support/?.lua' spec/lua
package.path = "./scripts/?.lua;./scripts/?/init.lua;./spec/lua/support/?.lua;" .. package.path

local view = require "lib.view"

local DIR = "spec/lua/fixtures/views"
local BROKEN = "spec/lua/fixtures/broken_views"

describe("view", function()
    local views

    before_each(function()
        views = view.load(DIR)
    end)

    it("compiles every template under the directory, named by relative path", function()
        assert.same({ "alt_layout", "broken_partial", "layout", "list", "missing_partial", "page",
                      "partials/deep/item", "partials/fails", "partials/flash" }, views.names)
        assert.is_true(views.has("partials/deep/item"))
        assert.is_false(views.has("nope"))
    end)

    it("accepts the directory with a trailing slash", function()
        assert.same(views.names, view.load(DIR .. "/").names)
    end)

    it("wraps a page in the layout, passing the page as content", function()
        local html = views.render("page", { title = "<Home>", flash = "saved" })
        assert.equal('<html><title>&lt;Home&gt;</title><body><h1>&lt;Home&gt;</h1>' ..
            '<div class="flash">saved</div></body></html>\n', html)
    end)

    it("renders without the layout when opts.layout is false", function()
        assert.equal("<h1>t</h1>", views.render("page", { title = "t" }, { layout = false }))
    end)

    it("renders inside another layout when opts.layout names one", function()
        assert.equal("<alt><h1>t</h1></alt>\n", views.render("page", { title = "t" }, { layout = "alt_layout" }))
    end)

    it("renders partials from nested directories", function()
        assert.equal("<ul>\n<li>a</li>\n<li>&lt;b&gt;</li>\n</ul>\n",
            views.render("list", { names = { "a", "<b>" } }, { layout = false }))
    end)

    it("raises with the partial's file and line, after the caller's", function()
        local ok, err = pcall(views.render, "broken_partial", {}, { layout = false })
        assert.is_false(ok)
        assert.equal(DIR .. "/broken_partial.etlua:2: " .. DIR ..
            "/partials/fails.etlua:2: attempt to index a nil value (global 'nothing')", err)
    end)

    it("raises on a missing view or partial", function()
        assert.has_error(function() views.render("nope") end, 'view not found: "nope"')
        local ok, err = pcall(views.render, "missing_partial", {}, { layout = false })
        assert.is_false(ok)
        assert.equal(DIR .. '/missing_partial.etlua:1: view not found: "partials/nope"', err)
    end)

    it("fails to load with the file and line of a broken template", function()
        local ok, err = pcall(view.load, BROKEN)
        assert.is_false(ok)
        assert.matches("^" .. BROKEN:gsub("%p", "%%%0") .. "/sub/bad%.etlua:5: ", err)
    end)

    it("fails to load a directory that does not exist", function()
        assert.has_error(function() view.load("spec/lua/fixtures/no-such-dir") end)
    end)

    describe("without LuaFileSystem", function()
        local saved_loaded, saved_preload

        before_each(function()
            saved_loaded, saved_preload = package.loaded.lfs, package.preload.lfs
            package.loaded.lfs = nil
            package.preload.lfs = function() error("no lfs here") end
        end)

        after_each(function()
            package.loaded.lfs, package.preload.lfs = saved_loaded, saved_preload
        end)

        it("finds the same templates", function()
            assert.same(views.names, view.load(DIR).names)
        end)

        it("fails on a missing directory", function()
            assert.has_error(function() view.load("spec/lua/fixtures/no-such-dir") end)
        end)
    end)
end)
