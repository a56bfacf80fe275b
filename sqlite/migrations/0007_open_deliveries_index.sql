-- 0007_open_deliveries_index: the endpoint-and-status index holds only the
-- deliveries that are not done with success.
-- delivery_endpoint_status (endpoint_id, status, message_id) held every
-- delivery, so every successful attempt moved its entry from the
-- endpoint's sending entries to the end of its succeeded ones: another
-- index page written per endpoint in every batch of outcomes, and the
-- largest index of the database, whose succeeded entries only the endpoint
-- stats and the list filtered by succeeded read. Those now count and list
-- succeeded deliveries through delivery_endpoint (sqlite/delivery.go).
-- The condition is OR-connected equalities so that a query naming one
-- status (status = 'pending') can use the index: SQLite proves a partial
-- index usable when a term of the query's WHERE is a term of the index's.
DROP INDEX delivery_endpoint_status;
CREATE INDEX delivery_endpoint_open ON delivery (endpoint_id, status, message_id)
    WHERE status = 'pending' OR status = 'sending' OR status = 'failed' OR status = 'canceled';
