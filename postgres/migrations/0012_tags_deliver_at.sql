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
--
-- The order keeps the older nodes ingesting while the existing tags are
-- copied (about 30 s a million tagged messages): the table is created and
-- filled before anything refers to message, so the copy takes no lock
-- that blocks inserts. The foreign key is added NOT VALID (the rows were
-- just copied from message; checking them again would hold inserts for
-- another scan), then the trigger: both wait for the inserts in flight and
-- hold new ones until the commit, while a second copy picks up the
-- messages inserted since the migration began (now() is the transaction's
-- start; five minutes allow for the nodes' clocks), one application at a
-- time through message_app_created. The column comes last: ADD COLUMN
-- locks out readers too, until the commit right after. A message the
-- cleaner deleted during the first copy may leave tag rows behind: they
-- are never listed (every list joins the message).
CREATE TABLE message_tag (
    app_id     text COLLATE "C" NOT NULL,
    tag        text COLLATE "C" NOT NULL,
    message_id text COLLATE "C" NOT NULL,
    PRIMARY KEY (app_id, tag, message_id)
);

CREATE INDEX message_tag_message ON message_tag USING hash (message_id);

INSERT INTO message_tag (app_id, tag, message_id)
    SELECT app_id, t, id FROM message, unnest(tags) AS t WHERE tags IS NOT NULL
    ON CONFLICT DO NOTHING;

ALTER TABLE message_tag ADD CONSTRAINT message_tag_message_id_fkey
    FOREIGN KEY (message_id) REFERENCES message (id) ON DELETE CASCADE NOT VALID;

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

INSERT INTO message_tag (app_id, tag, message_id)
    SELECT m.app_id, t, m.id
    FROM application a
    CROSS JOIN LATERAL (SELECT app_id, id, tags FROM message
        WHERE app_id = a.id AND created_at >= now() - interval '5 minutes' AND tags IS NOT NULL) m,
        unnest(m.tags) AS t
    ON CONFLICT DO NOTHING;

ALTER TABLE message ADD COLUMN deliver_at timestamptz;
