package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/internal/testkeys"
)

// openInternal opens a store on a fresh file, closed when the test ends.
func openInternal(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.Context(), Config{Path: filepath.Join(t.TempDir(), "herald.db"), Keyring: testkeys.Ring(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// openGroupStore opens a store on a fresh file with a table t of its own.
func openGroupStore(t *testing.T) *Store {
	t.Helper()
	s := openInternal(t)
	if err := s.write(t.Context(), func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `CREATE TABLE t (x INTEGER PRIMARY KEY)`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestWriteGroup: writes queued while the writer is busy are written as one
// group; one failing rolls back alone, the others are committed, and each
// caller hears its own result.
func TestWriteGroup(t *testing.T) {
	s := openGroupStore(t)
	const n = 20
	var mu sync.Mutex
	var sizes []int
	queued := make(chan struct{}, 1)
	groupHook = func(size int) {
		mu.Lock()
		sizes = append(sizes, size)
		mu.Unlock()
	}
	t.Cleanup(func() { groupHook = nil })

	// A first write holds the writer until the others are queued behind it.
	release := make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- s.write(t.Context(), func(ctx context.Context, tx *sql.Tx) error {
			queued <- struct{}{}
			<-release
			_, err := tx.ExecContext(ctx, `INSERT INTO t VALUES (1000)`)
			return err
		})
	}()
	<-queued
	errBoom := errors.New("boom")
	results := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			results[i] = s.write(t.Context(), func(ctx context.Context, tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, `INSERT INTO t VALUES (?)`, i); err != nil {
					return err
				}
				if i%2 == 1 {
					return fmt.Errorf("write %d: %w", i, errBoom) // after its insert: rolled back
				}
				return nil
			})
		})
	}
	// Let the writers queue; the writer takes them all at once when the
	// first write ends (those not yet queued form later groups).
	waitForSenders(t, s, n)
	close(release)
	wg.Wait()
	if err := <-first; err != nil {
		t.Fatalf("first write: %v", err)
	}
	for i, err := range results {
		if want := i%2 == 1; errors.Is(err, errBoom) != want || (!want && err != nil) {
			t.Errorf("write %d returned %v", i, err)
		}
	}
	var count, odd int
	if err := s.r.QueryRowContext(t.Context(), `SELECT count(*), count(*) FILTER (WHERE x % 2 = 1 AND x < 1000) FROM t`).Scan(&count, &odd); err != nil {
		t.Fatal(err)
	}
	if count != n/2+1 || odd != 0 {
		t.Fatalf("table holds %d rows (%d odd), want %d and none odd", count, odd, n/2+1)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sizes) < 2 || sizes[1] < 2 {
		t.Fatalf("group sizes %v: the queued writes were not written together", sizes)
	}
}

// waitForSenders waits until n writes are queued for the busy writer.
func waitForSenders(t *testing.T, s *Store, n int) {
	t.Helper()
	for len(s.group.reqs) < n {
		runtime.Gosched()
	}
}

// TestWriteCancelledBeforeStart: a write whose context ends before the
// writer takes it is not run.
func TestWriteCancelledBeforeStart(t *testing.T) {
	s := openGroupStore(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	ran := false
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		ran = true
		return nil
	})
	if !errors.Is(err, context.Canceled) || ran {
		t.Fatalf("cancelled write returned %v, ran %v", err, ran)
	}
}

// TestWriteAfterClose: a closed store's writer answers EUNAVAILABLE.
func TestWriteAfterClose(t *testing.T) {
	s := openGroupStore(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	err := s.write(t.Context(), func(ctx context.Context, tx *sql.Tx) error { return nil })
	if herald.ErrorCode(err) != herald.EUNAVAILABLE {
		t.Fatalf("write after close returned %v", err)
	}
}
