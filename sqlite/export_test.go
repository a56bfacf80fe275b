package sqlite

import "context"

// ExecOnWriter runs q on the store's one writer connection, so a test can
// set a connection pragma such as max_page_count that then applies to every
// later write.
func ExecOnWriter(ctx context.Context, s *Store, q string) error {
	_, err := s.w.ExecContext(ctx, q)
	return err
}

// PragmaOnWriter and PragmaOnReader read one pragma's value on the writer
// connection or a reader connection.
func PragmaOnWriter(ctx context.Context, s *Store, name string) (string, error) {
	var v string
	err := s.w.QueryRowContext(ctx, "PRAGMA "+name).Scan(&v)
	return v, err
}

func PragmaOnReader(ctx context.Context, s *Store, name string) (string, error) {
	var v string
	err := s.r.QueryRowContext(ctx, "PRAGMA "+name).Scan(&v)
	return v, err
}
