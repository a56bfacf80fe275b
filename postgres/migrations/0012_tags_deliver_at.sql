-- 0012_tags_deliver_at: message tags behind an index, and scheduled
-- messages.
-- message_tag holds one row per tag of a message, so that ?tag= walks
-- (app_id, tag, message_id) in message-ID order instead of reading every
-- message's tags. message.tags stays the message's own copy, returned with
-- it. message_tag_message serves the cascade from message; it is a hash
-- index, which finds a message's rows and nothing else: a B-tree on
-- message_id would also deliver every tag's rows in message order, and the
-- planner took that walk (filtering on the tag) for a rare tag's list.
-- deliver_at is a scheduled message's due time (Svix's deliverAt; NULL when
-- sent at once): its deliveries are created pending and due then.
ALTER TABLE message ADD COLUMN deliver_at timestamptz;

CREATE TABLE message_tag (
    app_id     text COLLATE "C" NOT NULL,
    tag        text COLLATE "C" NOT NULL,
    message_id text COLLATE "C" NOT NULL REFERENCES message (id) ON DELETE CASCADE,
    PRIMARY KEY (app_id, tag, message_id)
);

CREATE INDEX message_tag_message ON message_tag USING hash (message_id);

INSERT INTO message_tag (app_id, tag, message_id)
    SELECT app_id, t, id FROM message, unnest(tags) AS t WHERE tags IS NOT NULL
    ON CONFLICT DO NOTHING;
