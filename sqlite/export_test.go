package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"runtime"
	"time"

	"modernc.org/sqlite"
)

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

// HoldWriter occupies the store's writer goroutine with an empty write, so
// that writes started meanwhile queue up and are then written as one group.
// queued waits until n writes are queued behind the held one; release lets
// the held write end and returns its error.
func HoldWriter(ctx context.Context, s *Store) (queued func(n int), release func() error) {
	started, done := make(chan struct{}), make(chan struct{})
	result := make(chan error, 1)
	go func() {
		result <- s.write(ctx, func(context.Context, *sql.Tx) error {
			close(started)
			<-done
			return nil
		})
	}()
	<-started
	queued = func(n int) {
		for len(s.group.reqs) < n {
			runtime.Gosched()
		}
	}
	release = func() error {
		close(done)
		return <-result
	}
	return queued, release
}

// RouteLoads returns how many times ingest batches have queried an
// application's routes instead of using the route cache.
func RouteLoads(ctx context.Context, s *Store) (int, error) {
	var n int
	err := s.write(ctx, func(context.Context, *sql.Tx) error {
		n = s.routes.loads
		return nil
	})
	return n, err
}

// SetRouteCacheSize bounds the route cache for one test.
func SetRouteCacheSize(t interface{ Cleanup(func()) }, n int) {
	old := routeCacheSize
	routeCacheSize = n
	t.Cleanup(func() { routeCacheSize = old })
}

// WithCheckpoints returns cfg with the checkpointer's interval and the WAL
// size from which it rewinds the WAL set.
func WithCheckpoints(cfg Config, interval time.Duration, resetFrames int) Config {
	cfg.checkpointInterval = interval
	cfg.walResetFrames = resetFrames
	return cfg
}

// WithWALSizeLimit returns cfg with the size the WAL file is cut back to.
func WithWALSizeLimit(cfg Config, limit int64) Config {
	cfg.walSizeLimit = limit
	return cfg
}

// Checkpoint runs one checkpoint of the checkpointer by hand (tests give
// the store an interval too long for its own to run) and returns its error.
func Checkpoint(ctx context.Context, s *Store) error { return s.checkpoint(ctx, s.ckpt) }

// CheckpointRound runs one round of the checkpointer's goroutine by hand:
// a checkpoint whose failure is logged.
func CheckpointRound(s *Store) { s.checkpointRound(s.ckpt) }

// OnWriterUpdateCompile calls fn for each column an UPDATE sets whenever
// SQLite compiles one on the writer connection (its authorizer asks then),
// so a test can count compilations. Registering it expires the
// connection's compiled statements once.
func OnWriterUpdateCompile(ctx context.Context, s *Store, fn func(table, column string)) error {
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		reg, ok := dc.(sqlite.AuthorizerRegisterer)
		if !ok {
			return fmt.Errorf("%T has no authorizer", dc)
		}
		return reg.RegisterAuthorizer(func(action sqlite.AuthorizerActionCode, arg1, arg2, _, _ string) sqlite.AuthorizerReturnCode {
			if action == sqlite.AuthUpdate {
				fn(arg1, arg2)
			}
			return sqlite.AuthorizerOK
		})
	})
}
