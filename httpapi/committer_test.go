package httpapi

import (
	"testing"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/ingest"
)

// newCommitter returns the real group committer over store, closed when the
// test ends (before the store, since cleanups run last-in first-out).
func newCommitter(t testing.TB, store herald.Store) MessageCreator {
	t.Helper()
	c := ingest.New(store, ingest.Config{})
	t.Cleanup(func() { _ = c.Close() })
	return c
}
