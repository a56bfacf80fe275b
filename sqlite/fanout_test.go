package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/sqlite"
	"github.com/herald-webhooks/herald/storetest"
)

// openFanOut opens a store at path whose ingest defers fan-outs over
// inlineMax.
func openFanOut(t *testing.T, path string, inlineMax int) *sqlite.Store {
	t.Helper()
	return openFanOutTB(t, path, inlineMax)
}

func openFanOutTB(t testing.TB, path string, inlineMax int) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), sqlite.Config{Path: path, Keyring: testKeyring(t), FanOutInlineMax: inlineMax})
	if err != nil {
		t.Fatalf("Open %s: %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestFanOutConformance(t *testing.T) {
	storetest.RunFanOut(t, func(t *testing.T, inlineMax int) herald.Store {
		return openFanOut(t, filepath.Join(t.TempDir(), "herald.db"), inlineMax)
	})
}

// TestFanOutResumesAfterRestart: the process that opens the file after a
// crash continues the fan-out from its cursor, even with fan-outs inline.
func TestFanOutResumesAfterRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "herald.db")
	storetest.RunFanOutRestart(t,
		func(t *testing.T) herald.Store { return openFanOut(t, path, 2) },
		func(t *testing.T) herald.Store { return openFanOut(t, path, 0) })
}

func TestOpenRefusesNegativeFanOutInlineMax(t *testing.T) {
	_, err := sqlite.Open(t.Context(), sqlite.Config{Path: filepath.Join(t.TempDir(), "herald.db"), Keyring: testKeyring(t), FanOutInlineMax: -1})
	if err == nil {
		t.Fatal("Open with FanOutInlineMax -1 succeeded")
	}
}
