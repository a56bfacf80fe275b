-- 0012_tags_deliver_at: message tags behind an index, and scheduled
-- messages.
-- message_tag holds one row per tag of a message, so that ?tag= walks
-- (app_id, tag, message_id) in message-ID order instead of reading every
-- message's tags. message.tags stays the message's own copy, returned with
-- it. message_tag_message serves the cascade from message; it is a hash
-- index, which finds a message's rows and nothing else: a B-tree on
-- message_id would also deliver every tag's rows in message order, and the
-- planner took that walk (filtering on the tag) for a rare tag's list.
-- A trigger writes a new message's tags into message_tag, whoever inserts
-- the message: the store's ingest, or an older node of a rolling upgrade
-- that knows nothing of message_tag. Its WHEN skips untagged messages
-- without calling the function. The function's search_path is the
-- migration's, so it finds message_tag in Herald's schema whatever the
-- caller's.
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

CREATE FUNCTION message_tag_insert() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO message_tag (app_id, tag, message_id)
        SELECT NEW.app_id, t, NEW.id FROM unnest(NEW.tags) AS t
        ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER message_tag_insert AFTER INSERT ON message
    FOR EACH ROW WHEN (NEW.tags IS NOT NULL) EXECUTE FUNCTION message_tag_insert();
