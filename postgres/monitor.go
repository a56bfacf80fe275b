package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/migration"
)

// queueStatsSQL reads the queue in one statement, so one snapshot: the
// counts use delivery_claim and delivery_lease, the oldest due delivery is
// the first entry of delivery_claim's pending range.
const queueStatsSQL = `SELECT
	(SELECT count(*) FROM delivery WHERE status = 'pending'),
	(SELECT count(*) FROM delivery WHERE status = 'sending'),
	(SELECT min(next_attempt_at) FROM delivery WHERE status = 'pending' AND next_attempt_at <= $1),
	(SELECT count(*) FROM endpoint WHERE disabled)`

// QueueStats counts the queue for monitoring (see herald.Store).
func (s *Store) QueueStats(ctx context.Context, now time.Time) (herald.QueueStats, error) {
	var (
		pending, sending, disabled int64
		oldest                     pgtype.Timestamptz
	)
	if err := s.pool.QueryRow(ctx, queueStatsSQL, now).Scan(&pending, &sending, &oldest, &disabled); err != nil {
		return herald.QueueStats{}, s.fail("queue stats", err)
	}
	return herald.QueueStats{
		Pending:           int(pending),
		Sending:           int(sending),
		OldestDue:         fromNullTime(oldest),
		DisabledEndpoints: int(disabled),
	}, nil
}

// PoolStat returns the connection pool's statistics, for the pool metrics.
func (s *Store) PoolStat() *pgxpool.Stat { return s.pool.Stat() }

// CheckSchema returns an error when the database is behind the newest
// migration this binary embeds (the readiness check "migrations"). A newer
// schema, migrated by a newer node in a rolling upgrade, passes.
func (s *Store) CheckSchema(ctx context.Context) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	v, err := s.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	return migration.CheckNotBehind(v, ms)
}
