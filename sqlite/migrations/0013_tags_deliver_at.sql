-- 0013_tags_deliver_at: message tags behind an index, and scheduled
-- messages.
-- message_tag holds one row per tag of a message, so that ?tag= walks
-- (app_id, tag, message_id) in message-ID order instead of reading every
-- message's tags. message.tags stays the message's own copy, returned with
-- it. message_tag_message serves the cascade from message.
-- A trigger writes a new message's tags into message_tag, whoever inserts
-- the message: the store's ingest, a bulk tool, or an older Herald
-- writing to the file.
-- deliver_at is a scheduled message's due time (Svix's deliverAt; NULL when
-- sent at once): its deliveries are created pending and due then.
ALTER TABLE message ADD COLUMN deliver_at INTEGER;

CREATE TABLE message_tag (
    app_id     TEXT NOT NULL,
    tag        TEXT NOT NULL,
    message_id TEXT NOT NULL REFERENCES message (id) ON DELETE CASCADE,
    PRIMARY KEY (app_id, tag, message_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX message_tag_message ON message_tag (message_id);

INSERT OR IGNORE INTO message_tag (app_id, tag, message_id)
    SELECT m.app_id, t.value, m.id FROM message m, json_each(m.tags) t WHERE m.tags IS NOT NULL;

CREATE TRIGGER message_tag_insert AFTER INSERT ON message WHEN NEW.tags IS NOT NULL
BEGIN
    INSERT OR IGNORE INTO message_tag (app_id, tag, message_id)
        SELECT NEW.app_id, value, NEW.id FROM json_each(NEW.tags);
END;
