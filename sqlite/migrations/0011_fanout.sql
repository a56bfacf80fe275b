-- 0011_fanout: large fan-outs outside the ingest group commit. A message
-- whose routing yields more deliveries than the server's
-- --fanout-inline-max is committed with one row here instead of its
-- deliveries, so the other messages of its batch do not wait for them;
-- the fan-out worker then creates the deliveries in short transactions of
-- one chunk of endpoints each, in endpoint-ID order, moving after_endpoint
-- past the chunk in the same transaction and deleting the row with the
-- last chunk. A row left by a crash is continued from after_endpoint at
-- the next start; delivery_message_endpoint keeps a delivery created
-- meanwhile (resend, replay-missing) from being created twice. Workers
-- take the oldest row first, by message ID (time-sortable).
CREATE TABLE fanout (
    message_id     TEXT    NOT NULL PRIMARY KEY REFERENCES message (id) ON DELETE CASCADE,
    app_id         TEXT    NOT NULL,
    -- The last endpoint ID a chunk has routed; '' before the first chunk.
    after_endpoint TEXT    NOT NULL DEFAULT '',
    created_at     INTEGER NOT NULL
) STRICT;
