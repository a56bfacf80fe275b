package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/herald-webhooks/herald"
)

// sealedHeadersVersion is the migration that adds endpoint.sealed_headers;
// migrate seals the plaintext headers in its transaction.
const sealedHeadersVersion = 10

// withSecureDelete runs fn with secure_delete on for the writer connection
// tx belongs to, so the values fn overwrites (plaintext headers, values
// sealed by a key being retired) are zeroed in the file rather than left
// in free space; the setting is put back afterwards.
func withSecureDelete(ctx context.Context, tx *sql.Tx, fn func() error) error {
	var was string
	if err := tx.QueryRowContext(ctx, `PRAGMA secure_delete`).Scan(&was); err != nil {
		return fmt.Errorf("read secure_delete: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `PRAGMA secure_delete = ON`); err != nil {
		return fmt.Errorf("set secure_delete: %w", err)
	}
	err := fn()
	if was == "0" || was == "1" || was == "2" {
		if _, rerr := tx.ExecContext(ctx, `PRAGMA secure_delete = `+was); rerr != nil && err == nil {
			err = fmt.Errorf("restore secure_delete: %w", rerr)
		}
	}
	return err
}

// sealPlaintextHeaders seals the headers of every endpoint stored in
// plaintext into sealed_headers and clears the plaintext, in tx, and
// reports how many it sealed.
func (s *Store) sealPlaintextHeaders(ctx context.Context, tx *sql.Tx) (int, error) {
	type row struct {
		id      string
		headers string
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, headers FROM endpoint WHERE headers IS NOT NULL ORDER BY id`)
	plain, err := collect(rows, err, func(sc scanner) (row, error) {
		var r row
		return r, sc.Scan(&r.id, &r.headers)
	})
	if err != nil {
		return 0, fmt.Errorf("read plaintext headers: %w", err)
	}
	err = withSecureDelete(ctx, tx, func() error {
		for _, r := range plain {
			headers, err := parseMap(sql.NullString{String: r.headers, Valid: true})
			if err != nil {
				return fmt.Errorf("headers of endpoint %s: %w", r.id, err)
			}
			sealed, err := herald.SealHeaders(s.keyring, r.id, headers)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE endpoint SET sealed_headers = ?, headers = NULL WHERE id = ?`, sealed, r.id); err != nil {
				return err
			}
		}
		return nil
	})
	return len(plain), err
}

// ResealEndpoints implements herald.SealStore. A batch is one write
// transaction of its own (never grouped with others), so the write lock is
// held for as long as limit endpoints take to re-seal and no longer.
func (s *Store) ResealEndpoints(ctx context.Context, after string, limit int) (herald.ResealBatch, error) {
	var b herald.ResealBatch
	err := s.writeAlone(ctx, func(ctx context.Context, tx *sql.Tx) error {
		b = herald.ResealBatch{}
		type row struct {
			id                     string
			secrets, sealedHeaders []byte
			plaintext              sql.NullString
		}
		rows, err := tx.QueryContext(ctx, `SELECT id, secrets, sealed_headers, headers FROM endpoint WHERE id > ? ORDER BY id LIMIT ?`,
			after, max(limit, 1))
		batch, err := collect(rows, err, func(sc scanner) (row, error) {
			var r row
			return r, sc.Scan(&r.id, &r.secrets, &r.sealedHeaders, &r.plaintext)
		})
		if err != nil {
			return err
		}
		return withSecureDelete(ctx, tx, func() error {
			for _, r := range batch {
				b.Last = r.id
				b.Endpoints++
				var plaintext []byte
				if r.plaintext.Valid {
					plaintext = []byte(r.plaintext.String)
				}
				secrets, headers, changed, err := herald.ResealEndpoint(s.keyring, r.id, r.secrets, r.sealedHeaders, plaintext)
				if err != nil {
					return err
				}
				if !changed {
					continue
				}
				if _, err := tx.ExecContext(ctx, `UPDATE endpoint SET secrets = ?, sealed_headers = ?, headers = NULL WHERE id = ?`,
					secrets, headers, r.id); err != nil {
					return err
				}
				b.Resealed++
			}
			return nil
		})
	})
	if err != nil {
		return herald.ResealBatch{}, s.fail("reseal endpoints", err)
	}
	return b, nil
}

// CountSealed implements herald.SealStore.
func (s *Store) CountSealed(ctx context.Context) (herald.SealCount, error) {
	var c herald.SealCount
	rows, err := s.r.QueryContext(ctx, `SELECT secrets, sealed_headers, headers IS NOT NULL FROM endpoint`)
	if err != nil {
		return c, s.fail("count sealed values", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			secrets, headers []byte
			plaintext        bool
		)
		if err := rows.Scan(&secrets, &headers, &plaintext); err != nil {
			return herald.SealCount{}, s.fail("count sealed values", err)
		}
		c.Add(s.keyring, secrets, headers, plaintext)
	}
	if err := rows.Err(); err != nil {
		return herald.SealCount{}, s.fail("count sealed values", err)
	}
	return c, nil
}
