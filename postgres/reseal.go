package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/herald-webhooks/herald"
)

// sealedHeadersVersion is the migration that adds endpoint.sealed_headers;
// migrateLocked seals the plaintext headers in its transaction.
const sealedHeadersVersion = 8

// sealPlaintextHeaders seals the headers of every endpoint stored in
// plaintext into sealed_headers and clears the plaintext, in tx, and
// reports how many it sealed.
func (s *Store) sealPlaintextHeaders(ctx context.Context, tx pgx.Tx) (int, error) {
	type row struct {
		id      string
		headers []byte
	}
	rows, err := tx.Query(ctx, `SELECT id, headers FROM endpoint WHERE headers IS NOT NULL ORDER BY id FOR UPDATE`)
	plain, err := collect(rows, err, func(r pgx.Row) (row, error) {
		var v row
		return v, r.Scan(&v.id, &v.headers)
	})
	if err != nil {
		return 0, fmt.Errorf("read plaintext headers: %w", err)
	}
	for _, r := range plain {
		headers, err := parseMap(r.headers)
		if err != nil {
			return 0, fmt.Errorf("headers of endpoint %s: %w", r.id, err)
		}
		sealed, err := herald.SealHeaders(s.keyring, r.id, headers)
		if err != nil {
			return 0, err
		}
		if _, err := tx.Exec(ctx, `UPDATE endpoint SET sealed_headers = $1, headers = NULL WHERE id = $2`, sealed, r.id); err != nil {
			return 0, err
		}
	}
	return len(plain), nil
}

// ResealEndpoints implements herald.SealStore. The batch's rows are locked
// (FOR UPDATE) as they are read, so an update of one of them by any node
// waits for the batch, which is short, and is never overwritten by it.
func (s *Store) ResealEndpoints(ctx context.Context, after string, limit int) (herald.ResealBatch, error) {
	var b herald.ResealBatch
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		b = herald.ResealBatch{}
		type row struct {
			id                                string
			secrets, sealedHeaders, plaintext []byte
		}
		rows, err := tx.Query(ctx, `SELECT id, secrets, sealed_headers, headers FROM endpoint WHERE id > $1 ORDER BY id LIMIT $2 FOR UPDATE`,
			after, max(limit, 1))
		batch, err := collect(rows, err, func(r pgx.Row) (row, error) {
			var v row
			return v, r.Scan(&v.id, &v.secrets, &v.sealedHeaders, &v.plaintext)
		})
		if err != nil {
			return err
		}
		for _, r := range batch {
			b.Last = r.id
			b.Endpoints++
			secrets, headers, changed, err := herald.ResealEndpoint(s.keyring, r.id, r.secrets, r.sealedHeaders, r.plaintext)
			if err != nil {
				return err
			}
			if !changed {
				continue
			}
			if _, err := tx.Exec(ctx, `UPDATE endpoint SET secrets = $1, sealed_headers = $2, headers = NULL WHERE id = $3`,
				secrets, headers, r.id); err != nil {
				return err
			}
			b.Resealed++
		}
		return nil
	})
	if err != nil {
		return herald.ResealBatch{}, s.fail("reseal endpoints", err)
	}
	return b, nil
}

// CountSealed implements herald.SealStore.
func (s *Store) CountSealed(ctx context.Context) (herald.SealCount, error) {
	var c herald.SealCount
	rows, err := s.pool.Query(ctx, `SELECT secrets, sealed_headers, headers IS NOT NULL FROM endpoint`)
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
