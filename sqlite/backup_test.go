package sqlite_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/keyring"
	"github.com/herald-webhooks/herald/migration"
	"github.com/herald-webhooks/herald/sqlite"
)

// TestOpenRefusesNewerSchema: a database that a newer Herald migrated (a
// version above every embedded migration) is refused with a clear message,
// and left as it was.
func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "herald.db")
	ring := testKeyring(t)
	s, err := sqlite.Open(t.Context(), sqlite.Config{Path: path, Keyring: ring})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	latest, err := sqlite.LatestVersion()
	if err != nil || latest < 1 {
		t.Fatalf("LatestVersion = %d, %v", latest, err)
	}
	if _, err := rawDB(t, path).Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'from_the_future.sql', 0)`, latest+1); err != nil {
		t.Fatal(err)
	}

	_, err = sqlite.Open(t.Context(), sqlite.Config{Path: path, Keyring: ring})
	var tooNew *migration.TooNewError
	if !errors.As(err, &tooNew) || tooNew.Database != latest+1 || tooNew.Known != latest {
		t.Fatalf("Open of a newer database = %v, want a TooNewError", err)
	}
	if !strings.Contains(err.Error(), "newer Herald") {
		t.Errorf("message does not say why: %v", err)
	}
}

// createMessage commits one message for appID and returns its ID.
func createMessage(ctx context.Context, s *sqlite.Store, appID string) (string, error) {
	m := &herald.Message{ID: herald.NewID(herald.PrefixMessage), AppID: appID, EventType: "order.paid", Payload: []byte(`{"n":1}`), CreatedAt: time.Now()}
	res, err := s.CreateMessages(ctx, []*herald.Message{m}, herald.Lease{})
	if err != nil {
		return "", err
	}
	return m.ID, res[0].Err
}

// seed creates an application, an endpoint and n messages; it returns the
// application's and the messages' IDs.
func seed(t *testing.T, s *sqlite.Store, n int) (string, []string) {
	t.Helper()
	f := newFixture(t, s, randomKey(t))
	ids := make([]string, n)
	for i := range n {
		id, err := createMessage(t.Context(), s, f.app.ID)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
	}
	return f.app.ID, ids
}

// newStoreWithKeyring is newStore that also returns the keyring, to open a
// restored copy with.
func newStoreWithKeyring(t *testing.T) (*sqlite.Store, string, *keyring.Keyring) {
	t.Helper()
	ring := testKeyring(t)
	path := filepath.Join(t.TempDir(), "herald.db")
	return openAt(t, path, ring), path, ring
}

func TestBackupAndRestore(t *testing.T) {
	dir := t.TempDir()
	s, src, ring := newStoreWithKeyring(t)
	appID, ids := seed(t, s, 20)

	dst := filepath.Join(dir, "backup.db")
	v, err := sqlite.Backup(t.Context(), src, dst, false)
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	latest, _ := sqlite.LatestVersion()
	if v != latest {
		t.Errorf("Backup version = %d, want %d", v, latest)
	}
	if _, err := sqlite.Backup(t.Context(), src, dst, false); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("Backup over an existing file = %v, want a refusal", err)
	}
	if _, err := sqlite.Backup(t.Context(), src, dst, true); err != nil {
		t.Errorf("Backup with overwrite: %v", err)
	}
	if _, err := sqlite.Backup(t.Context(), filepath.Join(dir, "missing.db"), filepath.Join(dir, "x.db"), false); err == nil {
		t.Error("Backup of a missing database succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, "missing.db")); err == nil {
		t.Error("Backup created the missing source database")
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, "*.tmp-*"))
	if len(leftovers) > 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}

	// Restore into a new directory and open it with the same key.
	restored := filepath.Join(t.TempDir(), "herald.db")
	res, err := sqlite.Restore(t.Context(), dst, restored, sqlite.RestoreOptions{})
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if res.Version != latest || res.Replaced != "" {
		t.Errorf("Restore = %+v", res)
	}
	if _, err := sqlite.Restore(t.Context(), dst, restored, sqlite.RestoreOptions{}); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("Restore over an existing database = %v, want a refusal", err)
	}
	// Leave a WAL beside the target: an overwriting restore must move it
	// aside with the old database, never replay it into the new one.
	if err := os.WriteFile(restored+"-wal", []byte("stale"), 0o600); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	res, err = sqlite.Restore(t.Context(), dst, restored, sqlite.RestoreOptions{Overwrite: true, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatalf("Restore with overwrite: %v", err)
	}
	if want := restored + ".replaced-20260506T070809Z"; res.Replaced != want {
		t.Errorf("Replaced = %q, want %q", res.Replaced, want)
	}
	if b, err := os.ReadFile(res.Replaced + "-wal"); err != nil || string(b) != "stale" {
		t.Errorf("the old WAL was not kept beside the old database: %q, %v", b, err)
	}
	if _, err := os.Stat(restored + "-wal"); err == nil {
		t.Error("a stale WAL is left beside the restored database")
	}

	r := openAt(t, restored, ring)
	for _, id := range ids {
		if _, err := r.GetMessage(t.Context(), appID, id); err != nil {
			t.Fatalf("message %s missing after restore: %v", id, err)
		}
	}
}

func TestRestoreRefusesBadBackups(t *testing.T) {
	dir := t.TempDir()
	s, src := newStore(t)
	seed(t, s, 3)
	good := filepath.Join(dir, "good.db")
	if _, err := sqlite.Backup(t.Context(), src, good, false); err != nil {
		t.Fatal(err)
	}
	latest, _ := sqlite.LatestVersion()

	corrupt := filepath.Join(dir, "corrupt.db")
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	// Overwrite the second page (a b-tree page) with garbage.
	for i := 4096; i < 8192 && i < len(b); i++ {
		b[i] = 0xA5
	}
	if err := os.WriteFile(corrupt, b, 0o600); err != nil {
		t.Fatal(err)
	}

	newer := filepath.Join(dir, "newer.db")
	if _, err := sqlite.Backup(t.Context(), src, newer, false); err != nil {
		t.Fatal(err)
	}
	if _, err := rawDB(t, newer).Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'from_the_future.sql', 0)`, latest+1); err != nil {
		t.Fatal(err)
	}

	notHerald := filepath.Join(dir, "other.db")
	if _, err := rawDB(t, notHerald).Exec(`CREATE TABLE t (x)`); err != nil {
		t.Fatal(err)
	}
	text := filepath.Join(dir, "text.db")
	if err := os.WriteFile(text, []byte(strings.Repeat("not a database\n", 400)), 0o600); err != nil {
		t.Fatal(err)
	}

	for name, tc := range map[string]struct{ src, want string }{
		"corrupt":      {corrupt, "check"},
		"newer":        {newer, "newer Herald"},
		"not Herald":   {notHerald, "not a Herald database"},
		"not SQLite":   {text, "not a readable SQLite database"},
		"live":         {src, "live database"},
		"missing file": {filepath.Join(dir, "missing.db"), "no such file"},
	} {
		t.Run(name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "herald.db")
			_, err := sqlite.Restore(t.Context(), tc.src, dst, sqlite.RestoreOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Restore = %v, want an error containing %q", err, tc.want)
			}
			if entries, _ := os.ReadDir(filepath.Dir(dst)); len(entries) != 0 {
				t.Errorf("a refused restore left files: %v", entries)
			}
		})
	}
}

// TestBackupWhileWriting: a backup taken while another connection keeps
// committing holds every message committed before it began, and is a
// consistent database.
func TestBackupWhileWriting(t *testing.T) {
	s, src, ring := newStoreWithKeyring(t)
	f := newFixture(t, s, randomKey(t))
	var (
		mu        sync.Mutex
		committed []string
		stop      atomic.Bool
		wg        sync.WaitGroup
	)
	wg.Go(func() {
		for !stop.Load() {
			id, err := createMessage(context.Background(), s, f.app.ID)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			committed = append(committed, id)
			mu.Unlock()
		}
	})
	for {
		mu.Lock()
		n := len(committed)
		mu.Unlock()
		if n >= 50 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	mu.Lock()
	before := append([]string(nil), committed...)
	mu.Unlock()
	dst := filepath.Join(t.TempDir(), "backup.db")
	_, err := sqlite.Backup(t.Context(), src, dst, false)
	stop.Store(true)
	wg.Wait()
	if err != nil {
		t.Fatalf("Backup while writing: %v", err)
	}
	restored := filepath.Join(t.TempDir(), "herald.db")
	if _, err := sqlite.Restore(t.Context(), dst, restored, sqlite.RestoreOptions{}); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	r := openAt(t, restored, ring)
	for _, id := range before {
		if _, err := r.GetMessage(t.Context(), f.app.ID, id); err != nil {
			t.Fatalf("message %s, committed before the backup began, is missing: %v", id, err)
		}
	}
}
