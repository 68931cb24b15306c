-- Run from the repository root:
--   lua5.4 /usr/bin/busted --lpath='./scripts/?.lua;./scripts/?/init.lua;./spec/lua/support/?.lua' spec/lua
package.path = "./scripts/?.lua;./scripts/?/init.lua;./spec/lua/support/?.lua;" .. package.path

local form = require "lib.form"

local FIELDS = {
    { name = "title", label = "Title", required = true, max = 64 },
    { name = "description", label = "Description", required = true, max = 120 },
}

describe("form", function()
    describe("trim", function()
        it("removes leading and trailing ASCII white space only", function()
            assert.equal("a b", form.trim("  a b \t\r\n"))
            assert.equal("", form.trim(" \t\n "))
            assert.equal("", form.trim(""))
            assert.equal("x", form.trim("x"))
            assert.equal("\u{a0}x\u{a0}", form.trim(" \u{a0}x\u{a0} "))
        end)

        it("is linear on long input", function()
            local s = " " .. string.rep("a ", 200000) .. " "
            local t0 = os.clock()
            assert.equal(#s - 3, #form.trim(s))
            assert.is_true(os.clock() - t0 < 1)
        end)
    end)

    describe("length", function()
        it("counts characters, not bytes", function()
            assert.equal(3, form.length("abc"))
            assert.equal(2, form.length("中文"))
            assert.equal(1, form.length("😀"))
            assert.equal(0, form.length(""))
        end)

        it("is nil for invalid UTF-8", function()
            assert.is_nil(form.length("\xff"))
            assert.is_nil(form.length("\xed\xa0\x80")) -- a surrogate
            assert.is_nil(form.length("\xc0\xaf")) -- overlong
        end)
    end)

    describe("validate", function()
        it("returns trimmed values and no errors for valid input", function()
            local values, errors = form.validate({ title = "  Hi ", description = "there", extra = "x" }, FIELDS)
            assert.same({ title = "Hi", description = "there" }, values)
            assert.is_nil(errors)
        end)

        it("requires required fields, absent or blank", function()
            local _, errors = form.validate({ description = "   " }, FIELDS)
            assert.same({ title = "Title is required.", description = "Description is required." }, errors)
        end)

        it("counts the maximum in characters", function()
            local ok_values, ok_errors = form.validate(
                { title = string.rep("😀", 64), description = string.rep("中", 120) }, FIELDS)
            assert.is_nil(ok_errors)
            assert.equal(64 * 4, #ok_values.title)
            local _, errors = form.validate(
                { title = string.rep("😀", 65), description = string.rep("a", 121) }, FIELDS)
            assert.equal("Title must be at most 64 characters long (it has 65).", errors.title)
            assert.equal("Description must be at most 120 characters long (it has 121).", errors.description)
        end)

        it("checks the length after trimming", function()
            local padded = "  " .. string.rep("a", 64) .. "  "
            local values, errors = form.validate({ title = padded, description = "d" }, FIELDS)
            assert.is_nil(errors)
            assert.equal(64, #values.title)
        end)

        it("has a minimum", function()
            local _, errors = form.validate({ code = "ab" }, { { name = "code", label = "Code", min = 3 } })
            assert.equal("Code must be at least 3 characters long.", errors.code)
        end)

        it("refuses values that are not text, and invalid UTF-8", function()
            local _, errors = form.validate({ title = 12, description = "\xff" }, FIELDS)
            assert.equal("Title must be text.", errors.title)
            assert.equal("Description must be valid UTF-8 text.", errors.description)
        end)

        it("checks booleans", function()
            local fields = { { name = "done", label = "Done", type = "boolean" } }
            assert.same({ done = false }, (form.validate({ done = false }, fields)))
            local _, errors = form.validate({ done = "yes" }, fields)
            assert.equal("Done must be true or false.", errors.done)
            local values, none = form.validate({}, fields)
            assert.same({}, values)
            assert.is_nil(none)
        end)

        it("skips missing fields when partial", function()
            local values, errors = form.validate({ description = " new " }, FIELDS, { partial = true })
            assert.same({ description = "new" }, values)
            assert.is_nil(errors)
            local _, blank = form.validate({ title = " " }, FIELDS, { partial = true })
            assert.equal("Title is required.", blank.title)
        end)
    end)
end)
