-- 0016_usage_stat: usage counters kept as messages are written, for the
-- statistics tasks (application.stats), so that they sum a few rows per
-- application instead of scanning messages. One row per application and
-- hour (bucket: unix seconds of the hour's start, UTC) of the messages'
-- creation times: messages stored, and deliveries created for them (at
-- ingest, by a deferred fan-out's chunks or by replay-missing). The batch that writes the
-- messages adds to its rows in the same transaction, one upsert per
-- (application, hour) of the batch. Rows go with their application.
CREATE TABLE usage_stat (
    app_id       TEXT    NOT NULL REFERENCES application (id) ON DELETE CASCADE,
    bucket       INTEGER NOT NULL,
    messages     INTEGER NOT NULL,
    destinations INTEGER NOT NULL,
    PRIMARY KEY (app_id, bucket)
) STRICT, WITHOUT ROWID;

-- A statistics task's result, as JSON (the tasks that compute one).
ALTER TABLE background_task ADD COLUMN result TEXT;

-- Messages written before the counters existed, counted once here.
INSERT INTO usage_stat (app_id, bucket, messages, destinations)
    SELECT m.app_id, (m.created_at / 3600000000) * 3600, count(*),
        coalesce(sum((SELECT count(*) FROM delivery d WHERE d.message_id = m.id)), 0)
    FROM message m GROUP BY m.app_id, (m.created_at / 3600000000);
