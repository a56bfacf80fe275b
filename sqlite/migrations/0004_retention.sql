-- 0004_retention: what the cleaner needs to enforce retention.
-- payload_expires_at is set from a message's payloadRetentionPeriod or
-- payloadRetentionHours (NULL: the payload lives as long as the message);
-- the partial index holds only the messages that set one, so it costs the
-- rest nothing.
ALTER TABLE message ADD COLUMN payload_expires_at INTEGER;
CREATE INDEX message_payload_expiry ON message (payload_expires_at) WHERE payload_expires_at IS NOT NULL;
