-- 0017_poller: polling endpoints (Svix's messagePoller).
-- poll_seq orders an application's messages for pollers. The single writer
-- assigns it in the transaction that inserts the message, from poll_clock
-- (bumped once per ingest batch), so it increases in commit order: a
-- reader that has passed a poll_seq never sees a smaller one appear later.
-- poll_clock keeps the counter rather than max(poll_seq), which a deleted
-- newest message would move back. The trigger numbers a message inserted
-- without one (operational events, a bulk tool, an older Herald).
-- Existing messages are numbered in rowid order, their insertion order.
ALTER TABLE message ADD COLUMN poll_seq INTEGER;
UPDATE message SET poll_seq = rowid;

CREATE TABLE poll_clock (
    id  INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL
) STRICT;
INSERT INTO poll_clock (id, seq) SELECT 1, coalesce(max(poll_seq), 0) FROM message;

CREATE TRIGGER message_poll_seq AFTER INSERT ON message WHEN NEW.poll_seq IS NULL
BEGIN
    UPDATE poll_clock SET seq = seq + 1 WHERE id = 1;
    UPDATE message SET poll_seq = (SELECT seq FROM poll_clock WHERE id = 1) WHERE rowid = NEW.rowid;
END;

-- A page walks an application's messages in poll order from a position.
CREATE INDEX message_app_poll ON message (app_id, poll_seq);

-- Each consumer's position on a polling endpoint; goes with the endpoint.
CREATE TABLE poll_consumer (
    endpoint_id TEXT    NOT NULL REFERENCES endpoint (id) ON DELETE CASCADE,
    consumer_id TEXT    NOT NULL,
    app_id      TEXT    NOT NULL,
    seq         INTEGER NOT NULL,
    message_id  TEXT    NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (endpoint_id, consumer_id)
) STRICT, WITHOUT ROWID;
