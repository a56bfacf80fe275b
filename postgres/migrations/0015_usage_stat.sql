-- 0015_usage_stat: usage counters kept as messages are written, for the
-- statistics tasks (application.stats), so that they sum a few rows per
-- application instead of scanning messages. One row per application, hour
-- (bucket: unix seconds of the hour's start) of the messages' creation
-- times and shard: messages stored, and deliveries created for them (at
-- ingest, by a deferred fan-out's chunks or by replay-missing). The transaction that writes
-- the messages adds to its rows, one upsert per (application, hour) of the
-- batch, on a shard it picks at random: concurrent batches of one
-- application (other nodes, other connections) then seldom wait for each
-- other's row lock until commit. Rows go with their application.
CREATE TABLE usage_stat (
    app_id       text     NOT NULL REFERENCES application (id) ON DELETE CASCADE,
    bucket       bigint   NOT NULL,
    shard        smallint NOT NULL,
    messages     bigint   NOT NULL,
    destinations bigint   NOT NULL,
    PRIMARY KEY (app_id, bucket, shard)
);

-- A statistics task's result (the tasks that compute one).
ALTER TABLE background_task ADD COLUMN result jsonb;

-- Messages written before the counters existed, counted once here.
INSERT INTO usage_stat (app_id, bucket, shard, messages, destinations)
    SELECT m.app_id, (floor(extract(epoch FROM m.created_at) / 3600) * 3600)::bigint, 0, count(*),
        coalesce(sum((SELECT count(*) FROM delivery d WHERE d.message_id = m.id)), 0)
    FROM message m GROUP BY 1, 2;
