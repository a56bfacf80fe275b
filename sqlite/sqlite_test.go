package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/internal/testkeys"
	"github.com/herald-webhooks/herald/keyring"
	"github.com/herald-webhooks/herald/sqlite"
	"github.com/herald-webhooks/herald/storetest"
)

// testKeyring returns a keyring with one fresh key.
func testKeyring(t testing.TB) *keyring.Keyring { return testkeys.Ring(t) }

// openAt opens a store on path and closes it when the test ends.
func openAt(t testing.TB, path string, ring *keyring.Keyring) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), sqlite.Config{Path: path, Keyring: ring})
	if err != nil {
		t.Fatalf("Open %s: %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// newStore opens a store on a fresh file in a temporary directory.
func newStore(t testing.TB) (*sqlite.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "herald.db")
	return openAt(t, path, testKeyring(t)), path
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) herald.Store {
		s, _ := newStore(t)
		return s
	})
}
