//go:build unix

package sqlite_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/sqlite"
)

// TestFilesPrivate: under the usual umask 0022 and in a data directory
// that already exists and that anyone may list, the database, its -wal and
// -shm files and a backup are created 0600; a database left 0644 by an
// older Herald is tightened at the next open, and that is logged. (Not
// parallel: the umask is the process's.)
func TestFilesPrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	t.Cleanup(func() { syscall.Umask(old) })
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "herald.db")
	ring := testKeyring(t)
	now := time.Now().UTC()
	app := &herald.Application{ID: herald.NewIDAt(herald.PrefixApplication, now), Name: "private", CreatedAt: now, UpdatedAt: now}

	wantPrivate := func(when string, names ...string) {
		t.Helper()
		for _, name := range names {
			info, err := os.Stat(name)
			if err != nil {
				t.Errorf("%s: %v", when, err)
				continue
			}
			if perm := info.Mode().Perm(); perm != 0o600 {
				t.Errorf("%s: %s has mode %04o, want 0600", when, filepath.Base(name), perm)
			}
		}
	}

	s, err := sqlite.Open(t.Context(), sqlite.Config{Path: path, Keyring: ring})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateApplication(t.Context(), app); err != nil {
		t.Fatal(err)
	}
	// Open and written: the WAL and its index exist.
	wantPrivate("new database", path, path+"-wal", path+"-shm")
	backup := filepath.Join(dir, "backup.db")
	if _, err := sqlite.Backup(t.Context(), path, backup, false); err != nil {
		t.Fatal(err)
	}
	wantPrivate("backup", backup)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// As an older Herald left it.
	for _, name := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(name, 0o644); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	var logs bytes.Buffer
	s, err = sqlite.Open(t.Context(), sqlite.Config{Path: path, Keyring: ring, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.GetApplication(t.Context(), app.ID); err != nil {
		t.Fatalf("the application after reopening: %v", err)
	}
	if err := s.CreateApplication(t.Context(), &herald.Application{ID: herald.NewIDAt(herald.PrefixApplication, now.Add(time.Millisecond)), Name: "second", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	wantPrivate("reopened", path, path+"-wal", path+"-shm")
	if !strings.Contains(logs.String(), "made it private") || !strings.Contains(logs.String(), "was=0644") {
		t.Errorf("tightening the database file was not logged:\n%s", logs.String())
	}
}
