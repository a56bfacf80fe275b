-- 0002_traceparent: the W3C traceparent of the request that created a
-- message, sent on with every delivery so the sender's trace continues.
-- NULL when the request carried none. Adding a nullable column without a
-- default rewrites nothing: instant on a table of any size.
ALTER TABLE message ADD COLUMN traceparent text;
