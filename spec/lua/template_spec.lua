-- Run from the repository root:
--   lua5.4 /usr/bin/busted --lpath='./scripts/?.lua;./scripts/?/init.lua;./spec/lua/support/?.lua' spec/lua
package.path = "./scripts/?.lua;./scripts/?/init.lua;./spec/lua/support/?.lua;" .. package.path

local template = require "lib.template"

local function render(source, data, base)
    local fn = assert(template.compile(source, "views/t.etlua", base))
    return fn(data)
end

describe("template", function()
    describe("output", function()
        it("copies text as is", function()
            assert.equal("plain <b>text</b>\n% with 'quotes' \\ and \"more\"\r\n\0end",
                render("plain <b>text</b>\n% with 'quotes' \\ and \"more\"\r\n\0end"))
            assert.equal("", render(""))
        end)

        it("does not end a tag at a %> inside a Lua string", function()
            assert.equal("50%&gt;", render([[<%= "50%>" %>]]))
            assert.equal("a%>b%>|", render([[<%- 'a%>' .. "b%>" %>|]]))
            assert.equal([[it's %> "q%>"]], render([[<%- 'it\'s %>' .. " \"q%>\"" %>]]))
            assert.equal("x%>y", render("<%- [==[x%>]==] .. [[y]] %>"))
            assert.equal("7", render("<% local t = { 7 } %><%= t[1] %>"))
        end)

        it("reports an unfinished string in a tag at its line", function()
            local fn, err = template.compile('<%= "abc %>', "views/s.etlua")
            assert.is_nil(fn)
            assert.matches("^views/s%.etlua:1: unfinished string", err)
        end)

        it("escapes all five HTML characters in <%= %>", function()
            assert.equal("&amp;&lt;&gt;&quot;&#39; ok", render("<%= s %> ok", { s = "&<>\"'" }))
        end)

        it("writes <%- %> raw", function()
            assert.equal("<b class=\"x\">&amp;</b>", render("<%- s %>", { s = "<b class=\"x\">&amp;</b>" }))
        end)

        it("renders nil as an empty string and other values with tostring", function()
            assert.equal("[][][false][42][1.5]",
                render("[<%= missing %>][<%- missing %>][<%= f %>][<%= n %>][<%- x %>]",
                    { f = false, n = 42, x = 1.5 }))
        end)

        it("runs code blocks, loops and conditions", function()
            local src = "<% for i, v in ipairs(list) do %><%= i %>=<%= v %>;<% end %>" ..
                "<% if flag then %>yes<% else %>no<% end %>"
            assert.equal("1=a;2=b;yes", render(src, { list = { "a", "b" }, flag = true }))
            assert.equal("no", render(src, { list = {} }))
        end)

        it("drops the newline after -%>", function()
            local src = "<ul>\n<% for _, v in ipairs(list) do -%>\n  <li><%= v -%>\n</li>\n<% end -%>\n</ul>\n"
            assert.equal("<ul>\n  <li>a</li>\n  <li>b</li>\n</ul>\n", render(src, { list = { "a", "b" } }))
            assert.equal("x\r\ny", render("<%- 'x' -%>\r\n<%- '\\r\\n' %>y"))
        end)

        it("keeps the newline after %>", function()
            assert.equal("\nx\n", render("<% local a = 'x' %>\n<%= a %>\n"))
        end)

        it("allows a line comment at the end of a code block or expression", function()
            assert.equal("ab", render("<% local x = 'a' -- comment %><%= x -- why %><%- 'b' -- raw %>"))
        end)

        it("sees the safe base and not the rest of the global environment", function()
            assert.equal("ABC|3|x", render("<%= string.upper(s) %>|<%= #t %>|<%= table.concat({ 'x' }) %>",
                { s = "abc", t = { 1, 2, 3 } }))
            assert.equal("", render("<%= io %><%= require %><%= load %><%= debug %><%= os.execute %>"))
            assert.equal("&amp;", render("<%- escape('&') %>"))
        end)

        it("keeps assignments in the template's own environment", function()
            local data = { a = 1 }
            assert.equal("2", render("<% a = 2; b = 3 %><%= a %>", data))
            assert.same({ a = 1 }, data)
        end)

        it("uses a given base", function()
            local base = template.new_base { shout = function(s) return s:upper() .. "!" end }
            assert.equal("HI!", render("<%= shout('hi') %>", {}, base))
        end)

        it("lets a called function yield the running coroutine", function()
            local base = template.new_base { fetch = function() return coroutine.yield("need") end }
            local fn = assert(template.compile("[<%= fetch() %>]", "views/y.etlua", base))
            local co = coroutine.create(fn)
            assert.same({ true, "need" }, { coroutine.resume(co, {}) })
            assert.same({ true, "[row]" }, { coroutine.resume(co, "row") })
        end)

        it("renders the same compiled template many times", function()
            local fn = assert(template.compile("<%= n %>", "n"))
            for i = 1, 3 do assert.equal(tostring(i), fn({ n = i })) end
        end)
    end)

    describe("errors", function()
        it("report a compile error with the template file and line", function()
            local fn, err = template.compile("one\ntwo\n<%= ) %>\nfour", "views/index.etlua")
            assert.is_nil(fn)
            assert.matches("^views/index%.etlua:3: ", err)
        end)

        it("report the template line of an unclosed block", function()
            local _, err = template.compile("a\n<% for i = 1, 2 do %>\nb\n", "views/loop.etlua")
            assert.matches("^views/loop%.etlua:%d+: 'end' expected", err)
            local _, err2 = template.compile("a\n\n<% if x then %>\nb\n\n<% end end %>\n", "views/if.etlua")
            assert.matches("^views/if%.etlua:6: ", err2)
        end)

        it("report an unclosed tag with its line", function()
            local fn, err = template.compile("a\nb <%= x\n", "views/open.etlua")
            assert.is_nil(fn)
            assert.equal("views/open.etlua:2: unclosed '<%'", err)
        end)

        it("report a runtime error with the template file and line", function()
            local src = "<h1>\n<% for i = 1, 2 do -%>\n  <li><%= i %></li>\n<% end -%>\n\n<%= user.name %>\n"
            local fn = assert(template.compile(src, "views/index.etlua"))
            local out, err = fn({})
            assert.is_nil(out)
            assert.equal("views/index.etlua:6: attempt to index a nil value (global 'user')", err)
        end)

        it("report a multi-line block error on the right line", function()
            local src = "a\n<%\n  local x = 1\n  local y = nil\n  local z = x + y\n%>\nb"
            local _, err = assert(template.compile(src, "views/m.etlua"))({})
            assert.matches("^views/m%.etlua:5: attempt to perform arithmetic", err)
        end)

        it("put the template line before errors raised by called functions", function()
            local _, err = assert(template.compile("x\n<%= ('a'):rep() %>", "views/c.etlua"))({})
            assert.matches("^views/c%.etlua:2: bad argument #1 to 'rep'", err)
            local base = template.new_base { fail = function() error("helper failed") end }
            _, err = assert(template.compile("\n\n<% fail() %>", "views/h.etlua", base))({})
            assert.matches("^views/h%.etlua:3: .*helper failed$", err)
        end)

        it("report error() in a template at its line", function()
            local _, err = assert(template.compile("\n<% error('nope') %>", "views/e.etlua"))({})
            assert.equal("views/e.etlua:2: nope", err)
        end)

        it("return a raised non-string value as is", function()
            local obj = { status = 418 }
            local base = template.new_base { raise = function() error(obj) end }
            local out, err = assert(template.compile("<% raise() %>", "views/o.etlua", base))({})
            assert.is_nil(out)
            assert.equal(obj, err)
        end)

        it("name long template paths in full", function()
            local name = "/a/very/long/path/to/the/views/directory/of/the/application/partials/x.etlua"
            local _, err = assert(template.compile("\n<%= a.b %>", name))({})
            assert.equal(name .. ":2: attempt to index a nil value (global 'a')", err)
        end)
    end)

    describe("escape", function()
        it("escapes strings and converts other values", function()
            assert.equal("a&amp;b&lt;c&gt;d&quot;e&#39;f", template.escape("a&b<c>d\"e'f"))
            assert.equal("plain", template.escape("plain"))
            assert.equal("", template.escape(nil))
            assert.equal("12", template.escape(12))
        end)
    end)
end)
