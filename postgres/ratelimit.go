package postgres

import (
	"context"
	"time"
)

// takeTokensSQL refills the bucket of key for the time since its last take
// (at $2 tokens per second, up to a burst of $3), grants up to $4 whole
// tokens and keeps the rest, in one upsert: the row lock makes concurrent
// takes, from any node, see each other's result. A new key starts full.
// The clock never runs backwards for a bucket (greatest), so nodes whose
// clocks disagree grant less, never more.
const takeTokensSQL = `
INSERT INTO rate_bucket AS b (key, tokens, granted, updated_at)
VALUES ($1, $3::float8 - least($4::int, floor($3::float8)), least($4::int, floor($3::float8))::int, $5)
ON CONFLICT (key) DO UPDATE SET
	granted = least($4::int, floor(least($3::float8,
		b.tokens + $2::float8 * greatest(0, extract(epoch FROM $5::timestamptz - b.updated_at)::float8))))::int,
	tokens = least($3::float8,
		b.tokens + $2::float8 * greatest(0, extract(epoch FROM $5::timestamptz - b.updated_at)::float8))
		- least($4::int, floor(least($3::float8,
		b.tokens + $2::float8 * greatest(0, extract(epoch FROM $5::timestamptz - b.updated_at)::float8)))),
	updated_at = greatest(b.updated_at, $5::timestamptz)
RETURNING granted`

// TakeTokens takes up to want tokens from the shared token bucket of key
// (an application or endpoint ID), refilled at perSecond up to burst, and
// returns how many it got: from 0 to want. Every node on the database
// shares the bucket, so together they never get more than burst plus
// perSecond tokens a second (the dispatcher's cluster-wide rateLimit).
func (s *Store) TakeTokens(ctx context.Context, key string, perSecond, burst float64, want int, now time.Time) (int, error) {
	if want < 1 {
		return 0, nil
	}
	var granted int
	if err := s.pool.QueryRow(ctx, takeTokensSQL, key, perSecond, burst, want, now).Scan(&granted); err != nil {
		return 0, s.fail("take rate-limit tokens", err)
	}
	return granted, nil
}

// DeleteIdleRateBuckets deletes the shared token buckets whose key starts
// with prefix and that nobody has taken from since before, and returns how
// many went. A bucket idle longer than it takes to refill is full, exactly
// what a missing row starts as, so the caller picks a before at least that
// far back and nothing changes but the table's size: the API's buckets
// ("api:" and a token ID) would otherwise stay for every token ever used.
// A take racing the delete either refreshes the row first (and it stays)
// or inserts a new, full one.
func (s *Store) DeleteIdleRateBuckets(ctx context.Context, prefix string, before time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM rate_bucket WHERE starts_with(key, $1) AND updated_at < $2`, prefix, before)
	if err != nil {
		return 0, s.fail("delete idle rate-limit buckets", err)
	}
	return int(tag.RowsAffected()), nil
}
