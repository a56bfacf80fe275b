-- 0005_due_index: the claim index holds only the pending deliveries.
-- delivery_claim (status, next_attempt_at) held every delivery, so each
-- one moved in it twice more after its claim (to sending, then to its
-- outcome), and a delivery that ingest handed straight to the dispatcher
-- was inserted and moved there without ever being claimed through it.
-- Claims, the oldest-due gauge and the pending count only ask for pending
-- rows; the sending count reads delivery_lease, which holds only those.
-- Now a delivery enters the index when it becomes pending and leaves it
-- when it is claimed: two fewer index writes per attempt, none for a
-- handed-off delivery that succeeds.
DROP INDEX delivery_claim;
CREATE INDEX delivery_due ON delivery (next_attempt_at) WHERE status = 'pending';
