-- 0001_init: the first schema of Herald on SQLite.
-- Times are INTEGER unix microseconds (UTC); JSON columns are TEXT and NULL
-- when empty.

CREATE TABLE application (
    id         TEXT    NOT NULL PRIMARY KEY,
    uid        TEXT,
    name       TEXT    NOT NULL,
    rate_limit INTEGER,
    metadata   TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

-- Any number of applications may leave their uid unset.
CREATE UNIQUE INDEX application_uid ON application (uid) WHERE uid IS NOT NULL;

CREATE TABLE event_type (
    name         TEXT    NOT NULL PRIMARY KEY,
    description  TEXT    NOT NULL,
    archived     INTEGER NOT NULL,
    deprecated   INTEGER NOT NULL,
    feature_flag TEXT,
    schemas      TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
) STRICT;

CREATE TABLE endpoint (
    id           TEXT    NOT NULL PRIMARY KEY,
    app_id       TEXT    NOT NULL REFERENCES application (id) ON DELETE CASCADE,
    uid          TEXT,
    url          TEXT    NOT NULL,
    description  TEXT    NOT NULL,
    version      INTEGER NOT NULL,
    disabled     INTEGER NOT NULL,
    filter_types TEXT,
    channels     TEXT,
    rate_limit   INTEGER,
    metadata     TEXT,
    headers      TEXT,
    -- The JSON list of signing secrets sealed by the keyring with the
    -- endpoint ID as additional data: never a secret in clear.
    secrets      BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
) STRICT;

CREATE UNIQUE INDEX endpoint_uid ON endpoint (app_id, uid) WHERE uid IS NOT NULL;
-- Lists an application's endpoints by ID; also serves the cascade.
CREATE INDEX endpoint_app ON endpoint (app_id, id);

CREATE TABLE message (
    id           TEXT    NOT NULL PRIMARY KEY,
    app_id       TEXT    NOT NULL REFERENCES application (id) ON DELETE CASCADE,
    event_id     TEXT,
    event_type   TEXT    NOT NULL,
    -- Stored once however many endpoints receive it; NULL once expunged.
    payload      BLOB,
    content_type TEXT    NOT NULL,
    channels     TEXT,
    tags         TEXT,
    created_at   INTEGER NOT NULL
) STRICT;

CREATE UNIQUE INDEX message_event_id ON message (app_id, event_id) WHERE event_id IS NOT NULL;
-- Lists an application's messages by ID; also serves the cascade.
CREATE INDEX message_app ON message (app_id, id);
CREATE INDEX message_app_created ON message (app_id, created_at);

CREATE TABLE delivery (
    id               TEXT    NOT NULL PRIMARY KEY,
    app_id           TEXT    NOT NULL,
    message_id       TEXT    NOT NULL REFERENCES message (id) ON DELETE CASCADE,
    endpoint_id      TEXT    NOT NULL REFERENCES endpoint (id) ON DELETE CASCADE,
    status           TEXT    NOT NULL,
    next_attempt_at  INTEGER NOT NULL,
    attempts         INTEGER NOT NULL,
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    -- herald.TriggerType of the next attempt: 0 scheduled, 1 manual.
    trigger          INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
) STRICT;

-- One delivery per (message, endpoint); also serves the message cascade.
CREATE UNIQUE INDEX delivery_message_endpoint ON delivery (message_id, endpoint_id);
-- The dispatcher claims due work through this index.
CREATE INDEX delivery_claim ON delivery (status, next_attempt_at);
-- The messages sent to an endpoint, by message ID; also serves the
-- endpoint cascade.
CREATE INDEX delivery_endpoint ON delivery (endpoint_id, message_id);
-- An endpoint's deliveries in one state: stats, recover, the pending ones
-- a disabled endpoint cancels, and endpoint message lists by status.
CREATE INDEX delivery_endpoint_status ON delivery (endpoint_id, status, message_id);
-- The rescuer finds expired leases here; only leased rows are in it.
CREATE INDEX delivery_lease ON delivery (lease_expires_at) WHERE status = 'sending';

-- attempt has no foreign key to delivery: its rows go with their message or
-- endpoint, and a delivery_id key would need a third index for the cascade.
CREATE TABLE attempt (
    id              TEXT    NOT NULL PRIMARY KEY,
    delivery_id     TEXT    NOT NULL,
    message_id      TEXT    NOT NULL REFERENCES message (id) ON DELETE CASCADE,
    endpoint_id     TEXT    NOT NULL REFERENCES endpoint (id) ON DELETE CASCADE,
    app_id          TEXT    NOT NULL,
    url             TEXT    NOT NULL,
    response_status INTEGER NOT NULL,
    -- Truncated to 4 KiB by the writer.
    response_body   BLOB,
    -- Microseconds.
    duration_us     INTEGER NOT NULL,
    -- herald.AttemptStatus and herald.TriggerType numbers.
    status          INTEGER NOT NULL,
    trigger         INTEGER NOT NULL,
    error           TEXT,
    created_at      INTEGER NOT NULL
) STRICT;

CREATE INDEX attempt_message ON attempt (message_id, id);
CREATE INDEX attempt_endpoint ON attempt (endpoint_id, id);

CREATE TABLE idempotency_key (
    key          TEXT    NOT NULL PRIMARY KEY,
    request_hash BLOB,
    completed    INTEGER NOT NULL,
    status_code  INTEGER NOT NULL,
    body         BLOB,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
) STRICT;

CREATE INDEX idempotency_key_expires ON idempotency_key (expires_at);
