-- 0005_rate_buckets: the token buckets that hold applications' and
-- endpoints' rateLimit across every node on this database. One row per
-- rate-limited key (an application or endpoint ID): the tokens left at
-- updated_at, refilled on each take; granted is what the latest take got,
-- so one upsert can return it. Nodes take tokens in small chunks
-- (TakeTokens), so the table sees one small UPDATE per chunk.
CREATE TABLE rate_bucket (
    key        text PRIMARY KEY,
    tokens     double precision NOT NULL,
    granted    integer NOT NULL,
    updated_at timestamptz NOT NULL
);
