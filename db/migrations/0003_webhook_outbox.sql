-- The webhook outbox: an event per change of an entry, written in the same transaction as the
-- change (so an acknowledged change always has its event, and a rolled-back one never does), and
-- delivered later by lib.webhook's dispatcher, which leases a row (lease_until) while it posts it.
-- Rows are delivered in id order per subject; a delivered or given-up row is kept for a day
-- (state, done_at, last_error), then deleted.
CREATE TABLE IF NOT EXISTS webhook_outbox (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    event_id CHAR(32) NOT NULL,
    subject VARCHAR(64) NOT NULL,
    type VARCHAR(64) NOT NULL,
    payload MEDIUMTEXT NOT NULL,
    state ENUM('pending', 'delivered', 'failed') NOT NULL DEFAULT 'pending',
    attempts INT UNSIGNED NOT NULL DEFAULT 0,
    created_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    next_attempt_at DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    lease_until DATETIME(3) NULL,
    done_at DATETIME(3) NULL,
    last_error VARCHAR(255) NULL,
    UNIQUE KEY webhook_outbox_event (event_id),
    KEY webhook_outbox_due (state, next_attempt_at),
    KEY webhook_outbox_subject (subject, state, id),
    KEY webhook_outbox_done (state, done_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
