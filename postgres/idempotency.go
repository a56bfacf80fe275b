package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-webhooks/herald"
)

const idempotencyColumns = `key, request_hash, completed, status_code, body, created_at, expires_at`

// beginIdempotentSQL records a request as in progress; it replaces only an
// expired record, so when it changes no row a live one holds the key. A
// concurrent insert of the same key waits for the first to commit and then
// takes the conflict path.
const beginIdempotentSQL = `INSERT INTO idempotency_key (` + idempotencyColumns + `)
	VALUES ($1, $2, false, 0, NULL, $3, $4)
	ON CONFLICT (key) DO UPDATE SET request_hash = excluded.request_hash, completed = false, status_code = 0,
		body = NULL, created_at = excluded.created_at, expires_at = excluded.expires_at
	WHERE idempotency_key.expires_at <= excluded.created_at`

// beginAttempts bounds how often BeginIdempotent retries when the record
// that held the key vanishes between its two statements (abandoned or
// cleaned up meanwhile).
const beginAttempts = 5

// BeginIdempotent records rec as in progress unless a record with its key
// exists that has not expired at rec.CreatedAt; then it changes nothing and
// returns that record. The upsert and the read are two statements, so the
// read sees a record another caller committed while the upsert waited.
func (s *Store) BeginIdempotent(ctx context.Context, rec *herald.IdempotencyRecord) (*herald.IdempotencyRecord, error) {
	for range beginAttempts {
		tag, err := s.pool.Exec(ctx, beginIdempotentSQL, rec.Key, rec.RequestHash, rec.CreatedAt, rec.ExpiresAt)
		if err != nil {
			return nil, s.fail("begin idempotent request", err)
		}
		if tag.RowsAffected() > 0 {
			return nil, nil
		}
		existing, err := scanIdempotency(s.pool.QueryRow(ctx, `SELECT `+idempotencyColumns+` FROM idempotency_key WHERE key = $1`, rec.Key))
		if errors.Is(err, pgx.ErrNoRows) {
			continue // gone since the upsert: try to take the key again
		}
		if err == nil {
			existing.Body, err = herald.OpenResponse(s.keyring, existing.Key, existing.Body)
		}
		if err != nil {
			return nil, s.fail("begin idempotent request", err)
		}
		return existing, nil
	}
	return nil, herald.Errorf(herald.EUNAVAILABLE, "The idempotency key is contended; try again.")
}

// CompleteIdempotent stores the response of the record with key; an unknown
// key is ENOTFOUND.
func (s *Store) CompleteIdempotent(ctx context.Context, key string, statusCode int, body []byte) error {
	body, err := herald.SealResponse(s.keyring, key, body)
	if err != nil {
		return s.fail("complete idempotent request", err)
	}
	tag, err := s.pool.Exec(ctx, `UPDATE idempotency_key SET completed = true, status_code = $1, body = $2 WHERE key = $3`,
		statusCode, body, key)
	if err == nil {
		err = mustAffect(tag, errIdempotencyNotFound)
	}
	if err != nil {
		return s.fail("complete idempotent request", err)
	}
	return nil
}

// AbandonIdempotent deletes the in-progress record of key begun at
// createdAt, so the request can be retried; no such record is ENOTFOUND.
func (s *Store) AbandonIdempotent(ctx context.Context, key string, createdAt time.Time) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM idempotency_key WHERE key = $1 AND NOT completed AND created_at = $2`,
		key, createdAt.Truncate(time.Microsecond))
	if err == nil {
		err = mustAffect(tag, errIdempotencyNotFound)
	}
	if err != nil {
		return s.fail("abandon idempotent request", err)
	}
	return nil
}

// DeleteExpiredIdempotent deletes up to limit records expired at now (whose
// ExpiresAt is not after now), oldest first, and returns how many it
// deleted.
func (s *Store) DeleteExpiredIdempotent(ctx context.Context, now time.Time, limit int) (int, error) {
	if limit < 1 {
		return 0, nil
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM idempotency_key WHERE key IN (
		SELECT key FROM idempotency_key WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)`, now, limit)
	if err != nil {
		return 0, s.fail("delete expired idempotency keys", err)
	}
	return int(tag.RowsAffected()), nil
}

func scanIdempotency(row pgx.Row) (*herald.IdempotencyRecord, error) {
	var (
		rec                  herald.IdempotencyRecord
		createdAt, expiresAt time.Time
	)
	err := row.Scan(&rec.Key, &rec.RequestHash, &rec.Completed, &rec.StatusCode, &rec.Body, &createdAt, &expiresAt)
	if err != nil {
		return nil, err
	}
	rec.CreatedAt = createdAt.UTC()
	rec.ExpiresAt = expiresAt.UTC()
	return &rec, nil
}
