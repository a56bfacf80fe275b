-- 0001_init: the first schema of Herald on PostgreSQL. It mirrors the SQLite
-- schema with native types: timestamptz (microseconds, as SQLite keeps),
-- jsonb for maps and event type schemas, text[] for lists, bytea for
-- payloads and sealed secrets. Optional uids and lists are NULL when unset.
-- Keys and names are COLLATE "C": KSUIDs sort bytewise ('Z' < 'a'), and
-- lists page by them, whatever the database's collation.

CREATE TABLE application (
    id         text COLLATE "C" NOT NULL PRIMARY KEY,
    uid        text,
    name       text        NOT NULL,
    rate_limit integer,
    metadata   jsonb,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

-- Any number of applications may leave their uid unset.
CREATE UNIQUE INDEX application_uid ON application (uid) WHERE uid IS NOT NULL;

CREATE TABLE event_type (
    name         text COLLATE "C" NOT NULL PRIMARY KEY,
    description  text        NOT NULL,
    archived     boolean     NOT NULL,
    deprecated   boolean     NOT NULL,
    feature_flag text,
    schemas      jsonb,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);

CREATE TABLE endpoint (
    id           text COLLATE "C" NOT NULL PRIMARY KEY,
    app_id       text COLLATE "C" NOT NULL REFERENCES application (id) ON DELETE CASCADE,
    uid          text,
    url          text        NOT NULL,
    description  text        NOT NULL,
    version      integer     NOT NULL,
    disabled     boolean     NOT NULL,
    filter_types text[],
    channels     text[],
    rate_limit   integer,
    metadata     jsonb,
    headers      jsonb,
    -- The JSON list of signing secrets sealed by the keyring with the
    -- endpoint ID as additional data: never a secret in clear.
    secrets      bytea       NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);

CREATE UNIQUE INDEX endpoint_uid ON endpoint (app_id, uid) WHERE uid IS NOT NULL;
-- Lists an application's endpoints by ID; also serves the cascade.
CREATE INDEX endpoint_app ON endpoint (app_id, id);

CREATE TABLE message (
    id           text COLLATE "C" NOT NULL PRIMARY KEY,
    app_id       text COLLATE "C" NOT NULL REFERENCES application (id) ON DELETE CASCADE,
    event_id     text,
    event_type   text COLLATE "C" NOT NULL,
    -- Stored once however many endpoints receive it, byte for byte (raw
    -- payloads need not be JSON); NULL once expunged.
    payload      bytea,
    content_type text        NOT NULL,
    channels     text[],
    tags         text[],
    created_at   timestamptz NOT NULL
);

CREATE UNIQUE INDEX message_event_id ON message (app_id, event_id) WHERE event_id IS NOT NULL;
-- Lists an application's messages by ID; also serves the cascade.
CREATE INDEX message_app ON message (app_id, id);
-- Replay and time-bounded lists walk an application's messages by time.
CREATE INDEX message_app_created ON message (app_id, created_at, id);

CREATE TABLE delivery (
    id               text COLLATE "C" NOT NULL PRIMARY KEY,
    app_id           text COLLATE "C" NOT NULL,
    message_id       text COLLATE "C" NOT NULL REFERENCES message (id) ON DELETE CASCADE,
    endpoint_id      text COLLATE "C" NOT NULL REFERENCES endpoint (id) ON DELETE CASCADE,
    status           text        NOT NULL
        CHECK (status IN ('pending', 'sending', 'succeeded', 'failed', 'canceled')),
    next_attempt_at  timestamptz NOT NULL,
    attempts         integer     NOT NULL,
    lease_owner      text,
    lease_expires_at timestamptz,
    -- herald.TriggerType of the next attempt: 0 scheduled, 1 manual.
    trigger_type     smallint    NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL
);

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
    id              text COLLATE "C" NOT NULL PRIMARY KEY,
    delivery_id     text COLLATE "C" NOT NULL,
    message_id      text COLLATE "C" NOT NULL REFERENCES message (id) ON DELETE CASCADE,
    endpoint_id     text COLLATE "C" NOT NULL REFERENCES endpoint (id) ON DELETE CASCADE,
    app_id          text COLLATE "C" NOT NULL,
    url             text        NOT NULL,
    response_status integer     NOT NULL,
    -- Truncated to 4 KiB by the writer.
    response_body   bytea,
    -- Microseconds.
    duration_us     bigint      NOT NULL,
    -- herald.AttemptStatus and herald.TriggerType numbers.
    status          smallint    NOT NULL,
    trigger_type    smallint    NOT NULL,
    error           text,
    created_at      timestamptz NOT NULL
);

CREATE INDEX attempt_message ON attempt (message_id, id);
CREATE INDEX attempt_endpoint ON attempt (endpoint_id, id);
-- An application's attempts by ID, when neither message nor endpoint is
-- given.
CREATE INDEX attempt_app ON attempt (app_id, id);

CREATE TABLE idempotency_key (
    key          text COLLATE "C" NOT NULL PRIMARY KEY,
    request_hash bytea,
    completed    boolean     NOT NULL,
    status_code  integer     NOT NULL,
    body         bytea,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL
);

CREATE INDEX idempotency_key_expires ON idempotency_key (expires_at);
