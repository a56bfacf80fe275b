// Package sqlitetest opens SQLite stores for the tests of other packages.
package sqlitetest

import (
	"path/filepath"
	"testing"

	"github.com/herald-webhooks/herald/internal/testkeys"
	"github.com/herald-webhooks/herald/sqlite"
)

// Open opens a store, with its defaults and a new keyring, on a new file
// in a temporary directory; it is closed when the test ends.
func Open(t testing.TB) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), sqlite.Config{Path: filepath.Join(t.TempDir(), "h.db"), Keyring: testkeys.Ring(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
