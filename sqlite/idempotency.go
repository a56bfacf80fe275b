package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/herald-webhooks/herald"
)

const idempotencyColumns = `key, request_hash, completed, status_code, body, created_at, expires_at`

// BeginIdempotent records rec as in progress unless a record with its key
// exists that has not expired at rec.CreatedAt; then it changes nothing and
// returns that record. Check and insert run in one write transaction.
func (s *Store) BeginIdempotent(ctx context.Context, rec *herald.IdempotencyRecord) (*herald.IdempotencyRecord, error) {
	var existing *herald.IdempotencyRecord
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		// The upsert replaces only an expired record; when it changes no
		// row, a live one holds the key.
		res, err := tx.ExecContext(ctx, `INSERT INTO idempotency_key (`+idempotencyColumns+`)
			VALUES (?, ?, 0, 0, NULL, ?, ?)
			ON CONFLICT (key) DO UPDATE SET request_hash = excluded.request_hash, completed = 0, status_code = 0,
				body = NULL, created_at = excluded.created_at, expires_at = excluded.expires_at
			WHERE idempotency_key.expires_at <= excluded.created_at`,
			rec.Key, rec.RequestHash, micros(rec.CreatedAt), micros(rec.ExpiresAt))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil || n > 0 {
			return err
		}
		existing, err = scanIdempotency(tx.QueryRowContext(ctx, `SELECT `+idempotencyColumns+` FROM idempotency_key WHERE key = ?`, rec.Key))
		return err
	})
	if err == nil && existing != nil {
		existing.Body, err = herald.OpenResponse(s.keyring, existing.Key, existing.Body)
	}
	if err != nil {
		return nil, s.fail("begin idempotent request", err)
	}
	return existing, nil
}

// CompleteIdempotent stores the response of the record with key; an unknown
// key is ENOTFOUND.
func (s *Store) CompleteIdempotent(ctx context.Context, key string, statusCode int, body []byte) error {
	body, err := herald.SealResponse(s.keyring, key, body)
	if err != nil {
		return s.fail("complete idempotent request", err)
	}
	res, err := s.w.ExecContext(ctx, `UPDATE idempotency_key SET completed = 1, status_code = ?, body = ? WHERE key = ?`,
		statusCode, body, key)
	if err == nil {
		err = mustAffect(res, errIdempotencyNotFound)
	}
	if err != nil {
		return s.fail("complete idempotent request", err)
	}
	return nil
}

// AbandonIdempotent deletes the in-progress record of key begun at
// createdAt, so the request can be retried; no such record is ENOTFOUND.
func (s *Store) AbandonIdempotent(ctx context.Context, key string, createdAt time.Time) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM idempotency_key WHERE key = ? AND completed = 0 AND created_at = ?`, key, micros(createdAt))
	if err == nil {
		err = mustAffect(res, errIdempotencyNotFound)
	}
	if err != nil {
		return s.fail("abandon idempotent request", err)
	}
	return nil
}

// DeleteExpiredIdempotent deletes up to limit records expired at now (whose
// ExpiresAt is not after now) and returns how many it deleted.
func (s *Store) DeleteExpiredIdempotent(ctx context.Context, now time.Time, limit int) (int, error) {
	if limit < 1 {
		return 0, nil
	}
	res, err := s.w.ExecContext(ctx, `DELETE FROM idempotency_key WHERE key IN (
		SELECT key FROM idempotency_key WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)`, micros(now), limit)
	if err != nil {
		return 0, s.fail("delete expired idempotency keys", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, s.fail("delete expired idempotency keys", err)
	}
	return int(n), nil
}

func scanIdempotency(row scanner) (*herald.IdempotencyRecord, error) {
	var (
		rec                  herald.IdempotencyRecord
		createdAt, expiresAt int64
	)
	err := row.Scan(&rec.Key, &rec.RequestHash, &rec.Completed, &rec.StatusCode, &rec.Body, &createdAt, &expiresAt)
	if err != nil {
		return nil, err
	}
	rec.CreatedAt = fromMicros(createdAt)
	rec.ExpiresAt = fromMicros(expiresAt)
	return &rec, nil
}
