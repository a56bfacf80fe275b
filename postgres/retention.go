package postgres

import (
	"context"
	"time"

	"github.com/herald-webhooks/herald"
	"github.com/jackc/pgx/v5/pgconn"
)

// The retention deletes each take one bounded batch in one short
// transaction; SKIP LOCKED lets the cleaners of several nodes share the
// work without waiting on each other or on a claim. Attempts and messages
// are walked by primary key: IDs sort by creation second, so
// "id < MinIDAt" is a range scan of the primary key, and created_at keeps
// the bound exact.

// DeleteExpiredAttempts deletes up to limit attempts created before before.
func (s *Store) DeleteExpiredAttempts(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit < 1 {
		return 0, nil
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM attempt WHERE id IN (
		SELECT id FROM attempt WHERE id < $1 AND created_at < $2 ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)`,
		herald.MinIDAt(herald.PrefixAttempt, before.Add(time.Second)), before, limit)
	return s.affected("delete expired attempts", tag, err)
}

// ExpirePayloads drops the payloads of up to limit messages past their
// payload retention with no delivery pending or being sent.
func (s *Store) ExpirePayloads(ctx context.Context, now time.Time, limit int) (int, error) {
	if limit < 1 {
		return 0, nil
	}
	tag, err := s.pool.Exec(ctx, `UPDATE message SET payload = NULL, payload_expires_at = NULL WHERE id IN (
		SELECT m.id FROM message m
		WHERE m.payload_expires_at <= $1
		  AND NOT EXISTS (SELECT 1 FROM delivery d WHERE d.message_id = m.id AND d.status IN ('pending', 'sending'))
		ORDER BY m.payload_expires_at LIMIT $2 FOR UPDATE OF m SKIP LOCKED)`, now, limit)
	return s.affected("expire payloads", tag, err)
}

// DeleteExpiredMessages deletes up to limit messages created before before
// with no delivery pending or being sent; foreign keys cascade to their
// deliveries and attempts.
func (s *Store) DeleteExpiredMessages(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit < 1 {
		return 0, nil
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM message WHERE id IN (
		SELECT m.id FROM message m
		WHERE m.id < $1 AND m.created_at < $2
		  AND NOT EXISTS (SELECT 1 FROM delivery d WHERE d.message_id = m.id AND d.status IN ('pending', 'sending'))
		ORDER BY m.id LIMIT $3 FOR UPDATE OF m SKIP LOCKED)`,
		herald.MinIDAt(herald.PrefixMessage, before.Add(time.Second)), before, limit)
	return s.affected("delete expired messages", tag, err)
}

// affected returns the rows a retention statement changed.
func (s *Store) affected(op string, tag pgconn.CommandTag, err error) (int, error) {
	if err != nil {
		return 0, s.fail(op, err)
	}
	return int(tag.RowsAffected()), nil
}
