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
-- Each round a dispatcher claims due events — the oldest pending event of each subject, so that a
-- subject's events go one after the other — with SELECT ... FOR UPDATE SKIP LOCKED and leases them
-- (lease_until) in one short transaction, so that dispatchers on other workers and other app
-- servers never claim them too; it posts them outside any transaction and records each outcome.
-- A dispatcher that dies holding a lease (a crash, a lost database) leaves its events to be
-- claimed again when the lease ends: an event can arrive twice, with the same id, never zero times.

local h2lua = require "h2lua"
local cjson = require "cjson"
local db = require "lib.db"
local http = require "h2lua.http"
local timer = require "h2lua.timer"
local log = require "h2lua.log"
local metrics = require "h2lua.metrics"

local webhook = {}
webhook.__index = webhook

local format, min, random, floor = string.format, math.min, math.random, math.floor
local tostring, ipairs, pcall, setmetatable = tostring, ipairs, pcall, setmetatable

local BATCH = 16          -- events claimed by one round
local POLL = 1            -- seconds between two rounds of a worker with nothing to do
local TIMEOUT = 10        -- seconds a post may take in all
local LEASE = 60          -- seconds a claim holds its events (well above a round's posts)
local KEEP = 86400        -- seconds a delivered or given-up event stays in the table
local VERSION = h2lua.config.version

local outcomes = metrics.counter("webhook_deliveries_total",
    "Webhook posts by outcome: delivered, retry (failed, tried again later), failed (given up).", { "outcome" })

local CLAIM = [[
SELECT o.id, o.event_id, o.subject, o.payload, o.attempts FROM webhook_outbox o
WHERE o.state = 'pending' AND o.next_attempt_at <= NOW(3)
  AND (o.lease_until IS NULL OR o.lease_until < NOW(3))
  AND o.id = (SELECT MIN(p.id) FROM webhook_outbox p WHERE p.subject = o.subject AND p.state = 'pending')
ORDER BY o.id LIMIT ? FOR UPDATE SKIP LOCKED]]

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

-- One round: claims due events and posts them in order. Returns the number claimed.
function webhook:round()
    local rows = db.transaction(function(tx)
        local rows = tx:query(CLAIM, BATCH)
        for _, row in ipairs(rows) do
            tx:query("UPDATE webhook_outbox SET lease_until = NOW(3) + INTERVAL ? SECOND WHERE id = ?", LEASE, row.id)
        end
        return rows
    end)
    local started = os.time()
    for i, row in ipairs(rows) do
        -- a receiver that fails or is slow gets one post a round: the rest are given back
        if i > 1 and (rows.stop or os.time() - started > LEASE / 2) then
            db.query("UPDATE webhook_outbox SET lease_until = NULL WHERE id = ?", row.id)
        else
            local ok, why = self:post(row)
            self:record(row, ok, why)
            if not ok then rows.stop = true end
        end
    end
    return #rows, rows.stop
end

-- Runs rounds while they find work; one runner per worker at a time.
function webhook:run()
    if self.running then
        self.again = true
        return
    end
    self.running = true
    repeat
        self.again = false
        local ok, n, stopped = pcall(self.round, self)
        if not ok then
            log.error("webhook round failed", { error = tostring(n) })
        elseif n > 0 and not stopped then
            self.again = true
        end
    until not self.again
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

-- Asks this worker for a round as soon as the caller's request is done with the loop.
function webhook:kick()
    timer.at(0, self.run, self)
end

return webhook
