package httpapi

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/herald-webhooks/herald/internal/testkeys"
	"github.com/herald-webhooks/herald/sqlite"
)

// TestIdempotentResponseSealed: a retried app-portal-access gets the very
// token of the first answer (the Svix contract of idempotency keys), yet
// the stored answer is sealed, so the database files never hold the
// token: a copy of the database yields no usable credential.
func TestIdempotentResponseSealed(t *testing.T) {
	dir := t.TempDir()
	store, err := sqlite.Open(t.Context(), sqlite.Config{Path: filepath.Join(dir, "herald.db"), Keyring: testkeys.Ring(t), Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	ts := newTestServerOn(t, store)
	ts.mustCall(t, http.StatusCreated, nil, "POST", "/api/v1/app", `{"name":"A","uid":"tenant-a"}`)
	var first, again appPortalAccessOut
	ts.mustCall(t, http.StatusOK, &first, "POST", "/api/v1/auth/app-portal-access/tenant-a", `{}`, "Idempotency-Key", "portal-1")
	res := ts.mustCall(t, http.StatusOK, &again, "POST", "/api/v1/auth/app-portal-access/tenant-a", `{}`, "Idempotency-Key", "portal-1")
	if res.Header.Get("Idempotent-Replayed") != "true" || again.Token != first.Token || first.Token == "" {
		t.Fatalf("replay %q (replayed %q), first %q", again.Token, res.Header.Get("Idempotent-Replayed"), first.Token)
	}
	ts.mustCall(t, http.StatusOK, nil, "GET", "/api/v1/app/tenant-a", "", "Authorization", "Bearer "+first.Token)
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	for _, f := range filesHolding(t, dir, first.Token) {
		t.Errorf("%s holds the portal token", f)
	}
}

// filesHolding returns the SQLite files (database, WAL, shm) in dir whose
// bytes contain secret; the store must be closed.
func filesHolding(t *testing.T, dir, secret string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "herald.db*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("database files %v: %v", files, err)
	}
	var holding []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(secret)) {
			holding = append(holding, filepath.Base(f))
		}
	}
	return holding
}
