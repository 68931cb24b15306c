-- mysql: the smallest MySQL/MariaDB client for ngx_lua (cosockets), for the benchmark's
-- OpenResty-style peer only: mysql_native_password, COM_QUERY, text result sets. Debian packages
-- no lua-resty-mysql; this does what that peer needs and no more (no TLS, no prepared statements,
-- no multi-results).
--
--   local db, err = mysql.connect { host =, port =, user =, password =, database = }
--   local rows, err = db:query(sql)   -- rows: array of tables by column name (NULL -> ngx.null);
--                                     -- an OK packet gives { affected_rows =, insert_id = }
--   db:keepalive()                    -- back to the worker's pool

-- luacheck: globals ngx
local bit = require "bit"
local band, bor, bxor, rshift = bit.band, bit.bor, bit.bxor, bit.rshift
local byte, char, sub, find = string.byte, string.char, string.sub, string.find
local concat = table.concat
local sha1 = ngx.sha1_bin
local null = ngx.null

local mysql = {}
local Conn = {}
Conn.__index = Conn

local function u24(n) return char(band(n, 255), band(rshift(n, 8), 255), band(rshift(n, 16), 255)) end
local function u32(n) return u24(n) .. char(band(rshift(n, 24), 255)) end

local function read_packet(sock)
    local head, err = sock:receive(4)
    if not head then return nil, err end
    local a, b, c, seq = byte(head, 1, 4)
    local len = a + b * 256 + c * 65536
    local body = ""
    if len > 0 then
        body, err = sock:receive(len)
        if not body then return nil, err end
    end
    return body, nil, seq
end

local function send_packet(sock, seq, body)
    return sock:send(u24(#body) .. char(seq) .. body)
end

-- A length-encoded integer at pos: value, next pos (nil value for NULL, 0xfb).
local function lenenc(s, pos)
    local first = byte(s, pos)
    if first < 0xfb then return first, pos + 1 end
    if first == 0xfb then return nil, pos + 1 end
    if first == 0xfc then
        local a, b = byte(s, pos + 1, pos + 2)
        return a + b * 256, pos + 3
    end
    if first == 0xfd then
        local a, b, c = byte(s, pos + 1, pos + 3)
        return a + b * 256 + c * 65536, pos + 4
    end
    local v, m = 0, 1
    for i = pos + 1, pos + 8 do
        v = v + byte(s, i) * m
        m = m * 256
    end
    return v, pos + 9
end

local function err_of(packet)
    return "mysql error " .. (byte(packet, 2) + byte(packet, 3) * 256) .. ": " .. sub(packet, 10)
end

local function scramble(password, salt)
    if password == "" then return "" end
    local s1 = sha1(password)
    local s3 = sha1(salt .. sha1(s1))
    local out = {}
    for i = 1, #s1 do out[i] = char(bxor(byte(s1, i), byte(s3, i))) end
    return concat(out)
end

local CLIENT_FLAGS = bor(0x1, 0x8, 0x200, 0x2000, 0x8000, 0x80000) -- long password, with db,
-- protocol 41, transactions, secure connection, plugin auth

local function handshake(sock, opts)
    local p, err = read_packet(sock)
    if not p then return nil, err end
    if byte(p, 1) == 0xff then return nil, err_of(p) end
    local pos = find(p, "\0", 2, true) + 1 -- after the server version
    pos = pos + 4 -- thread id
    local salt = sub(p, pos, pos + 7)
    pos = pos + 8 + 1 + 2 + 1 + 2 + 2 + 1 + 10
    salt = salt .. sub(p, pos, pos + 11)
    local auth = scramble(opts.password or "", salt)
    local body = u32(CLIENT_FLAGS) .. u32(16777216) .. char(224) .. string.rep("\0", 23)
        .. opts.user .. "\0" .. char(#auth) .. auth .. opts.database .. "\0" .. "mysql_native_password\0"
    local ok
    ok, err = send_packet(sock, 1, body)
    if not ok then return nil, err end
    p, err = read_packet(sock)
    if not p then return nil, err end
    if byte(p, 1) ~= 0 then return nil, byte(p, 1) == 0xff and err_of(p) or "mysql: unexpected authentication reply" end
    return true
end

function mysql.connect(opts)
    local sock = ngx.socket.tcp()
    local ok, err = sock:connect(opts.host, opts.port, { pool = "peer:" .. opts.port .. ":" .. opts.database })
    if not ok then return nil, err end
    if sock:getreusedtimes() == 0 then
        ok, err = handshake(sock, opts)
        if not ok then
            sock:close()
            return nil, err
        end
    end
    return setmetatable({ sock = sock }, Conn)
end

function Conn:query(sql)
    local sock = self.sock
    local ok, err = send_packet(sock, 0, "\3" .. sql)
    if not ok then return nil, err end
    local p
    p, err = read_packet(sock)
    if not p then return nil, err end
    local first = byte(p, 1)
    if first == 0xff then return nil, err_of(p) end
    if first == 0 then
        local affected, pos = lenenc(p, 2)
        local insert_id = lenenc(p, pos)
        return { affected_rows = affected, insert_id = insert_id }
    end
    local ncols = lenenc(p, 1)
    local names = {}
    for i = 1, ncols do
        p, err = read_packet(sock)
        if not p then return nil, err end
        -- catalog, schema, table, org_table, name
        local pos = 1
        for _ = 1, 4 do
            local n
            n, pos = lenenc(p, pos)
            pos = pos + n
        end
        local n
        n, pos = lenenc(p, pos)
        names[i] = sub(p, pos, pos + n - 1)
    end
    p, err = read_packet(sock) -- EOF after the column definitions
    if not p then return nil, err end
    local rows = {}
    while true do
        p, err = read_packet(sock)
        if not p then return nil, err end
        local b1 = byte(p, 1)
        if b1 == 0xfe and #p < 9 then break end
        if b1 == 0xff then return nil, err_of(p) end
        local row, pos = {}, 1
        for i = 1, ncols do
            local n
            n, pos = lenenc(p, pos)
            if n == nil then
                row[names[i]] = null
            else
                row[names[i]] = sub(p, pos, pos + n - 1)
                pos = pos + n
            end
        end
        rows[#rows + 1] = row
    end
    return rows
end

function Conn:keepalive()
    return self.sock:setkeepalive(10000, 64)
end

return mysql
