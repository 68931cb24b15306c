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

    describe("integers and numbers", function()
        local AGE = { { name = "age", label = "Age", type = "integer", min = 0, max = 150 } }
        local PRICE = { { name = "price", label = "Price", type = "number", min = 0.5, max = 99.5 } }

        it("read form text and JSON numbers as Lua numbers", function()
            assert.same({ age = 42 }, (form.validate({ age = " 42 " }, AGE)))
            assert.equal("integer", math.type(form.validate({ age = "+7" }, AGE).age))
            assert.equal("integer", math.type(form.validate({ age = 7.0 }, AGE).age))
            assert.same({ price = 2.25 }, (form.validate({ price = "2.25" }, PRICE)))
            assert.same({ price = 50 }, (form.validate({ price = "5e1" }, PRICE)))
            assert.same({ price = 0.5 }, (form.validate({ price = ".5" }, PRICE)))
            assert.same({ price = 3 }, (form.validate({ price = 3 }, PRICE)))
        end)

        it("refuse what is not a number, hex, inf and nan included", function()
            for _, v in ipairs { "4.5", "x", "0x10", "1e3", "", true } do
                local _, errors = form.validate({ age = v }, { { name = "age", label = "Age", type = "integer" } })
                if v == "" then
                    assert.is_nil(errors)
                else
                    assert.equal("Age must be a whole number.", errors.age)
                end
            end
            for _, v in ipairs { "0x10", "inf", "nan", "1,5", "1.2.3", {} } do
                local _, errors = form.validate({ price = v }, PRICE)
                assert.equal("Price must be a number.", errors.price)
            end
            local _, huge = form.validate({ age = string.rep("9", 20) }, AGE)
            assert.equal("Age must be a whole number.", huge.age)
            local _, nan = form.validate({ price = 0 / 0 }, PRICE)
            assert.equal("Price must be a number.", nan.price)
        end)

        it("check the range", function()
            assert.equal("Age must be at least 0.", select(2, form.validate({ age = "-1" }, AGE)).age)
            assert.equal("Age must be at most 150.", select(2, form.validate({ age = 151 }, AGE)).age)
            assert.equal("Price must be at least 0.5.", select(2, form.validate({ price = "0.4" }, PRICE)).price)
            assert.is_nil(select(2, form.validate({ age = "150" }, AGE)))
        end)

        it("leave an empty optional number out, and require a required one", function()
            local values, errors = form.validate({ age = "  " }, AGE)
            assert.same({}, values)
            assert.is_nil(errors)
            local required = { { name = "age", label = "Age", type = "integer", required = true } }
            local _, req = form.validate({ age = "" }, required)
            assert.equal("Age is required.", req.age)
        end)
    end)

    describe("patterns, one-of, e-mail and custom checks", function()
        it("match a pattern", function()
            local fields = { { name = "zip", label = "ZIP code", pattern = "^%d%d%d%d%d$" } }
            assert.same({ zip = "75001" }, (form.validate({ zip = " 75001 " }, fields)))
            local _, errors = form.validate({ zip = "7500" }, fields)
            assert.equal("ZIP code is not in the expected format.", errors.zip)
        end)

        it("accept one of a list, after conversion", function()
            local fields = {
                { name = "color", label = "Color", one_of = { "red", "green" } },
                { name = "size", label = "Size", type = "integer", one_of = { 1, 2, 3 } },
            }
            assert.same({ color = "red", size = 2 }, (form.validate({ color = "red", size = "2" }, fields)))
            local _, errors = form.validate({ color = "blue", size = "4" }, fields)
            assert.equal("Color must be one of: red, green.", errors.color)
            assert.equal("Size must be one of: 1, 2, 3.", errors.size)
        end)

        it("tell an e-mail-shaped text", function()
            local fields = { { name = "email", label = "E-mail", email = true, max = 254 } }
            for _, ok in ipairs { "a@b.co", "first.last+tag@sub.example.org", "é@exemple.fr" } do
                assert.is_nil(select(2, form.validate({ email = ok }, fields)), ok)
            end
            for _, bad in ipairs { "a", "a@b", "@b.co", "a@@b.co", "a b@c.de", "a@b.", "a@.b.co", "a@b..co",
                "a\0@b.co", "a\1@b.co", string.rep("a", 250) .. "@b.co" } do
                local _, errors = form.validate({ email = bad }, { { name = "email", label = "E-mail", email = true } })
                assert.equal("E-mail must be an e-mail address.", errors and errors.email, bad)
            end
        end)

        it("run custom checks last, with every value that validated", function()
            local fields = {
                { name = "password", label = "Password", required = true, min = 8 },
                { name = "confirm", label = "Confirmation", required = true,
                  check = function(v, values) if v ~= values.password then return "The passwords differ." end end },
            }
            local _, errors = form.validate({ password = "12345678", confirm = "1234567x" }, fields)
            assert.same({ confirm = "The passwords differ." }, errors)
            local values, none = form.validate({ password = "12345678", confirm = "12345678" }, fields)
            assert.is_nil(none)
            assert.equal("12345678", values.confirm)
            -- a value that failed a rule of its own is not checked again
            local calls = 0
            local counted = { { name = "code", min = 2, check = function() calls = calls + 1 end } }
            local _, short = form.validate({ code = "x" }, counted)
            assert.equal(0, calls)
            assert.equal("code must be at least 2 characters long.", short.code)
        end)

        it("use per-field messages, for one rule or for all", function()
            local fields = {
                { name = "age", label = "Age", type = "integer", min = 18, required = true,
                  messages = { required = "Tell us your age.", min = "{label}: {min} or more, please.",
                               type = "Digits only." } },
                { name = "nick", label = "Nickname", pattern = "^%w+$", max = 3, message = "Pick another nickname." },
            }
            local _, errors = form.validate({ age = "12", nick = "a b" }, fields)
            assert.same({ age = "Age: 18 or more, please.", nick = "Pick another nickname." }, errors)
            assert.equal("Digits only.", select(2, form.validate({ age = "x" }, fields)).age)
            assert.equal("Tell us your age.", select(2, form.validate({}, fields)).age)
            assert.equal("Pick another nickname.", select(2, form.validate({ age = 20, nick = "abcd" }, fields)).nick)
        end)
    end)
end)
