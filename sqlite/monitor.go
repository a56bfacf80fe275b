package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/migration"
)

// queueStatsSQL reads the queue in one statement, so one snapshot: the
// counts walk delivery_due and delivery_lease (partial indexes of the
// pending and the sending rows, index only), the oldest due delivery is
// the first entry of delivery_due.
const queueStatsSQL = `SELECT
	(SELECT count(*) FROM delivery WHERE status = 'pending'),
	(SELECT count(*) FROM delivery WHERE status = 'sending'),
	(SELECT min(next_attempt_at) FROM delivery WHERE status = 'pending' AND next_attempt_at <= ?),
	(SELECT count(*) FROM endpoint WHERE disabled <> 0)`

// QueueStats counts the queue for monitoring (see herald.Store).
func (s *Store) QueueStats(ctx context.Context, now time.Time) (herald.QueueStats, error) {
	var (
		st     herald.QueueStats
		oldest sql.NullInt64
	)
	err := s.r.QueryRowContext(ctx, queueStatsSQL, micros(now)).Scan(&st.Pending, &st.Sending, &oldest, &st.DisabledEndpoints)
	if err != nil {
		return herald.QueueStats{}, s.fail("queue stats", err)
	}
	st.OldestDue = fromNullMicros(oldest)
	return st, nil
}

// WriterStats returns the statistics of the writer connection's pool (one
// connection), for the pool metrics.
func (s *Store) WriterStats() sql.DBStats { return s.w.Stats() }

// ReaderStats returns the statistics of the read-only pool, for the pool
// metrics.
func (s *Store) ReaderStats() sql.DBStats { return s.r.Stats() }

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
