package postgres

import "context"

// MapError exposes mapError to the external tests.
var MapError = mapError

// QueryString runs q on a pooled connection of s and returns its one text
// value, with errors mapped as the store's verbs map them.
func QueryString(ctx context.Context, s *Store, q string) (string, error) {
	var v string
	if err := s.pool.QueryRow(ctx, q).Scan(&v); err != nil {
		return "", s.fail("query", err)
	}
	return v, nil
}
