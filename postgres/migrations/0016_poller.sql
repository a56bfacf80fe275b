-- 0016_poller: polling endpoints (Svix's messagePoller).
-- write_xid is the ID of the transaction that wrote the message. Message
-- IDs and creation times do not follow commit order across concurrent
-- writers (group commit, several nodes): a reader paging "after ID X" could
-- pass a message committed later with a smaller ID. Pollers instead read
-- in (write_xid, id) order and only below the oldest transaction still
-- running (pg_snapshot_xmin of the current snapshot): every transaction
-- below it has finished, so no message can later appear behind a position
-- a reader has passed. The default is stable, so existing rows take the
-- migration's own transaction ID without a table rewrite.
ALTER TABLE message ADD COLUMN write_xid xid8 NOT NULL DEFAULT pg_current_xact_id();

-- A page walks an application's messages in poll order from a position.
CREATE INDEX message_app_poll ON message (app_id, write_xid, id);

-- Each consumer's position on a polling endpoint; goes with the endpoint.
CREATE TABLE poll_consumer (
    endpoint_id text        NOT NULL REFERENCES endpoint (id) ON DELETE CASCADE,
    consumer_id text        NOT NULL,
    app_id      text        NOT NULL,
    seq         bigint      NOT NULL,
    message_id  text        NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (endpoint_id, consumer_id)
);
