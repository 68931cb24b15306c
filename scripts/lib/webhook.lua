-- webhook: the application's events delivered to a URL as signed JSON, at least once and in order
-- per subject, through an outbox table (db/migrations/0003_webhook_outbox.sql).
--
--   local hooks = webhook.new { url =, secret =, max_attempts =, backoff =, backoff_max = }
--   hooks:enqueue(tx, subject, type, data)   -- in the change's own transaction (lib.db's tx):
--                                            -- the event exists exactly when the change does
--   hooks:start()                            -- from app.lua: this worker's dispatcher
--   hooks:kick()                             -- after a commit: a round soon, not in this request
--
-- An event is POSTed as
--   {"id": 32 hex digits, "type": "entry.created", "subject": "entry:42", "time": RFC 3339 UTC,
--    "data": {...}}
-- with the headers X-Webhook-Id (the event id: a receiver that sees an id twice has seen a
-- redelivery), X-Webhook-Attempt, X-Webhook-Timestamp (seconds since the epoch) and
-- X-Webhook-Signature: "sha256=" .. hex HMAC-SHA256(secret, timestamp .. "." .. body).
-- A 2xx answer delivers it; anything else (another status, a refused connection, a timeout) is
-- tried again after backoff * 2^(attempt-1) seconds (at most backoff_max), each delay drawn at
-- random from its upper half (jitter), until max_attempts tries have failed: then the event is
-- given up (state 'failed', logged at error level and counted), and the subject's next event goes.
--
-- Each round a dispatcher finds due events — the oldest pending event of each subject, so that a
-- subject's events go one after the other — with a plain read, then claims them by primary key with
-- SELECT ... FOR UPDATE SKIP LOCKED and leases them (lease_until) in one short transaction, so
-- that dispatchers on other workers and other app servers never claim them too; it posts them
-- outside any transaction and records each outcome.
-- A dispatcher that dies holding a lease (a crash, a lost database) leaves its events to be
-- claimed again when the lease ends: an event can arrive twice, with the same id, never zero times.
-- A post that fails also pauses this worker's dispatcher (no round, not even one a commit asks
-- for) for the backoff of its consecutive failures, jittered like an event's: a receiver that is
-- down costs the database one round per pause, not one per commit. The first post that succeeds
-- ends it.

local h2lua = require "h2lua"
local cjson = require "cjson"
local db = require "lib.db"
local http = require "h2lua.http"
local timer = require "h2lua.timer"
local log = require "h2lua.log"
local metrics = require "h2lua.metrics"

local webhook = {}
webhook.__index = webhook

local format, rep, min, random, floor = string.format, string.rep, math.min, math.random, math.floor
local unpack = table.unpack
local tostring, ipairs, pcall, setmetatable = tostring, ipairs, pcall, setmetatable

local BATCH = 16          -- events claimed by one round
local POLL = 1            -- seconds between two rounds of a worker with nothing to do
local TIMEOUT = 10        -- seconds a post may take in all
local LEASE = 60          -- seconds a claim holds its events (well above a round's posts)
local KEEP = 86400        -- seconds a delivered or given-up event stays in the table
local VERSION = h2lua.config.version

local outcomes = metrics.counter("webhook_deliveries_total",
    "Webhook posts by outcome: delivered, retry (failed, tried again later), failed (given up).", { "outcome" })

-- The due events a round may claim: the oldest pending event of each subject, if due and not
-- leased. A plain read (no locks): the claim below then locks just these rows, by primary key, so
-- that a round takes no gap lock that a change inserting its event would wait on (a locking read
-- of these ranges made changes and rounds deadlock: the change then failed with a 503).
local DUE = [[
SELECT o.id FROM webhook_outbox o
WHERE o.state = 'pending' AND o.next_attempt_at <= NOW(3)
  AND (o.lease_until IS NULL OR o.lease_until < NOW(3))
  AND o.id = (SELECT MIN(p.id) FROM webhook_outbox p WHERE p.subject = o.subject AND p.state = 'pending')
ORDER BY o.id LIMIT ?]]

-- Locks those of the due rows (ids) that nobody has claimed or delivered since.
local CLAIM = "SELECT id, event_id, subject, payload, attempts FROM webhook_outbox WHERE id IN (%s)"
    .. " AND state = 'pending' AND (lease_until IS NULL OR lease_until < NOW(3)) ORDER BY id FOR UPDATE SKIP LOCKED"

-- opts: url, secret (required); max_attempts (12), backoff (2 s), backoff_max (300 s).
function webhook.new(opts)
    assert(type(opts) == "table" and type(opts.url) == "string" and type(opts.secret) == "string",
        "webhook.new needs { url =, secret = }")
    return setmetatable({
        url = opts.url,
        secret = opts.secret,
        max_attempts = opts.max_attempts or 12,
        backoff = opts.backoff or 2,
        backoff_max = opts.backoff_max or 300,
        running = false,
        again = false,
        kicked = false,
        failures = 0,     -- posts failed in a row, by this worker
        paused_until = 0, -- h2lua.now() before which this worker runs no round
    }, webhook)
end

-- Writes the event into the outbox on tx, the transaction of the change it tells of.
function webhook:enqueue(tx, subject, kind, data) -- luacheck: ignore 212/self
    local id = h2lua.random_hex(16)
    local now = h2lua.now()
    local body = cjson.encode {
        id = id,
        type = kind,
        subject = subject,
        time = os.date("!%Y-%m-%dT%H:%M:%S", floor(now)) .. format(".%03dZ", floor((now % 1) * 1000)),
        data = data,
    }
    tx:query("INSERT INTO webhook_outbox (event_id, subject, type, payload) VALUES (?, ?, ?, ?)",
        id, subject, kind, body)
    return id
end

-- The delay before try number attempts + 1, with jitter: a random point of its upper half.
function webhook:delay(attempts)
    local d = min(self.backoff * 2 ^ (attempts - 1), self.backoff_max)
    return d / 2 + random() * d / 2
end

-- Posts one claimed row; returns true when the receiver took it, else false and why.
function webhook:post(row)
    local ts = tostring(os.time())
    local res, err = http.request(self.url, {
        method = "POST",
        body = row.payload,
        timeout = TIMEOUT,
        headers = {
            ["content-type"] = "application/json",
            ["user-agent"] = "h2lua-webhook/" .. VERSION,
            ["x-webhook-id"] = row.event_id,
            ["x-webhook-attempt"] = tostring(row.attempts + 1),
            ["x-webhook-timestamp"] = ts,
            ["x-webhook-signature"] = "sha256=" .. h2lua.hmac_sha256(ts .. "." .. row.payload, self.secret),
        },
    })
    if not res then return false, tostring(err) end
    if res.status >= 200 and res.status < 300 then return true end
    return false, "HTTP " .. res.status
end

-- Records the outcome of a post of row.
function webhook:record(row, ok, why)
    local attempts = row.attempts + 1
    local fields = { event = row.event_id, subject = row.subject, attempt = attempts }
    if ok then
        db.query("UPDATE webhook_outbox SET state = 'delivered', attempts = ?, done_at = NOW(3), lease_until = NULL,"
            .. " last_error = NULL WHERE id = ?", attempts, row.id)
        outcomes:inc(1, { outcome = "delivered" })
        log.info("webhook delivered", fields)
    elseif attempts >= self.max_attempts then
        db.query("UPDATE webhook_outbox SET state = 'failed', attempts = ?, done_at = NOW(3), lease_until = NULL,"
            .. " last_error = ? WHERE id = ?", attempts, why:sub(1, 255), row.id)
        outcomes:inc(1, { outcome = "failed" })
        fields.error = why
        log.error("webhook given up", fields)
    else
        local delay = self:delay(attempts)
        db.query("UPDATE webhook_outbox SET attempts = ?, next_attempt_at = NOW(3) + INTERVAL ? MICROSECOND,"
            .. " lease_until = NULL, last_error = ? WHERE id = ?",
            attempts, floor(delay * 1e6), why:sub(1, 255), row.id)
        outcomes:inc(1, { outcome = "retry" })
        fields.error, fields.retry_in = why, floor(delay * 1000) / 1000
        log.warn("webhook failed, will retry", fields)
    end
end

-- "?, ?, ..." for n values, and the ids of rows[from..]
local function ids_of(rows, from)
    local ids = {}
    for i = from, #rows do ids[#ids + 1] = rows[i].id end
    return rep("?", #ids, ", "), ids
end

-- One round: claims due events and posts them in order. Returns the number claimed, and whether
-- a post failed.
function webhook:round()
    local due = db.query(DUE, BATCH)
    if #due == 0 then return 0, false end
    local rows = db.transaction(function(tx)
        local due_marks, due_ids = ids_of(due, 1)
        local rows = tx:query(format(CLAIM, due_marks), unpack(due_ids))
        if #rows > 0 then
            local marks, ids = ids_of(rows, 1)
            tx:query("UPDATE webhook_outbox SET lease_until = NOW(3) + INTERVAL ? SECOND WHERE id IN (" .. marks .. ")",
                LEASE, unpack(ids))
        end
        return rows
    end)
    local started = os.time()
    for i, row in ipairs(rows) do
        -- a receiver that fails or is slow gets one post a round: the rest are given back at once
        if i > 1 and (rows.stop or os.time() - started > LEASE / 2) then
            local marks, ids = ids_of(rows, i)
            db.query("UPDATE webhook_outbox SET lease_until = NULL WHERE id IN (" .. marks .. ")", unpack(ids))
            break
        end
        local ok, why = self:post(row)
        self:record(row, ok, why)
        if ok then
            self.failures = 0
        else
            rows.stop = true
            self.failures = self.failures + 1
            self.paused_until = h2lua.now() + self:delay(self.failures)
        end
    end
    return #rows, rows.stop
end

-- Runs rounds while they find work; one runner per worker at a time, none while paused.
function webhook:run()
    if self.running then
        self.again = true
        return
    end
    if h2lua.now() < self.paused_until then return end
    self.running = true
    repeat
        self.again = false
        local ok, n, stopped = pcall(self.round, self)
        if not ok then
            log.error("webhook round failed", { error = tostring(n) })
        elseif n > 0 and not stopped then
            self.again = true
        end
    until not self.again or h2lua.now() < self.paused_until
    self.running = false
end

-- Deletes events delivered or given up more than KEEP seconds ago, a bounded number at a time.
local function sweep()
    db.query("DELETE FROM webhook_outbox WHERE state <> 'pending' AND done_at < NOW(3) - INTERVAL ? SECOND"
        .. " LIMIT 1000", KEEP)
end

function webhook:start()
    local run = function() self:run() end
    assert(timer.every(POLL, run))
    assert(timer.every(3600, sweep))
    return self
end

-- Asks this worker for a round as soon as the caller's request is done with the loop (one timer
-- for the commits of a moment; nothing while the dispatcher is paused: its poll ends the pause).
local function kicked(self)
    self.kicked = false
    self:run()
end

function webhook:kick()
    if self.kicked or h2lua.now() < self.paused_until then return end
    self.kicked = true
    if not timer.at(0, kicked, self) then self.kicked = false end
end

return webhook
