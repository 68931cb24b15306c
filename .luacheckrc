-- luacheck configuration. From the repository root: luacheck scripts spec/lua spec/app testing spec/e2e/fixtures
std = "lua54"
max_line_length = 120

files["spec/lua"] = { std = "+busted" }
files["spec/app"] = { std = "+busted" }

-- A symlink to scripts/lib, checked there.
exclude_files = { "spec/e2e/fixtures/scripts/lib/*" }
