package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/herald-webhooks/herald"
)

// The retention deletes each take one bounded batch in one short write
// transaction, so the writer is never held long. Attempts and messages are
// walked by primary key: IDs sort by creation second, so "id < MinIDAt"
// is a range scan of the primary key, and created_at keeps the bound exact.

// DeleteExpiredAttempts deletes up to limit attempts created before before.
func (s *Store) DeleteExpiredAttempts(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit < 1 {
		return 0, nil
	}
	res, err := s.w.ExecContext(ctx, `DELETE FROM attempt WHERE id IN (
		SELECT id FROM attempt WHERE id < ? AND created_at < ? ORDER BY id LIMIT ?)`,
		herald.MinIDAt(herald.PrefixAttempt, before.Add(time.Second)), micros(before), limit)
	return s.affected("delete expired attempts", res, err)
}

// ExpirePayloads drops the payloads of up to limit messages past their
// payload retention with no delivery pending or being sent.
func (s *Store) ExpirePayloads(ctx context.Context, now time.Time, limit int) (int, error) {
	if limit < 1 {
		return 0, nil
	}
	res, err := s.w.ExecContext(ctx, `UPDATE message SET payload = NULL, payload_expires_at = NULL WHERE id IN (
		SELECT m.id FROM message m
		WHERE m.payload_expires_at IS NOT NULL AND m.payload_expires_at <= ?
		  AND NOT EXISTS (SELECT 1 FROM delivery d WHERE d.message_id = m.id AND d.status IN ('pending', 'sending'))
		  AND NOT EXISTS (SELECT 1 FROM fanout f WHERE f.message_id = m.id)
		ORDER BY m.payload_expires_at LIMIT ?)`, micros(now), limit)
	return s.affected("expire payloads", res, err)
}

// DeleteExpiredMessages deletes up to limit messages created before before
// with no delivery pending or being sent; foreign keys cascade to their
// deliveries and attempts.
func (s *Store) DeleteExpiredMessages(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit < 1 {
		return 0, nil
	}
	res, err := s.w.ExecContext(ctx, `DELETE FROM message WHERE id IN (
		SELECT m.id FROM message m
		WHERE m.id < ? AND m.created_at < ?
		  AND NOT EXISTS (SELECT 1 FROM delivery d WHERE d.message_id = m.id AND d.status IN ('pending', 'sending'))
		  AND NOT EXISTS (SELECT 1 FROM fanout f WHERE f.message_id = m.id)
		ORDER BY m.id LIMIT ?)`,
		herald.MinIDAt(herald.PrefixMessage, before.Add(time.Second)), micros(before), limit)
	return s.affected("delete expired messages", res, err)
}

// affected returns the rows a retention statement changed.
func (s *Store) affected(op string, res sql.Result, err error) (int, error) {
	if err != nil {
		return 0, s.fail(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, s.fail(op, err)
	}
	return int(n), nil
}
