-- 0012_app_due_index: each application's pending deliveries in due order.
-- A claim in applications' turns (ClaimOptions.PerApp) finds the
-- applications with pending deliveries by hopping from one app_id to the
-- next in this index, and each one's oldest due deliveries with a seek of
-- its own: a backlog of one application costs the claim one seek, not a
-- walk of delivery_due past every row of it. Partial, as delivery_due: a
-- delivery enters it when it becomes pending and leaves it when claimed.
CREATE INDEX delivery_app_due ON delivery (app_id, next_attempt_at) WHERE status = 'pending';
