-- 0003_endpoint_isolation: per-endpoint ordering and failure tracking.
-- ordering is NULL (concurrent, no promised order) or 'fifo' (one delivery
-- at a time, in message ID order); the partial index lists the FIFO
-- endpoints, which the claim serves separately, and costs the rest nothing.
-- failing_since is when the endpoint's current run of failed attempts
-- began (unix microseconds), NULL while its last attempt succeeded: the
-- auto-disable rule reads it, so it survives restarts.
ALTER TABLE endpoint ADD COLUMN ordering TEXT;
ALTER TABLE endpoint ADD COLUMN failing_since INTEGER;
CREATE INDEX endpoint_ordering ON endpoint (ordering, id) WHERE ordering IS NOT NULL;
