//go:build linux || darwin

package sqlite_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/herald-webhooks/herald/sqlite"
)

// TestExclusiveOwner: an Exclusive store holds the database's lock file
// (mode 0600, naming this process) until it closes. Meanwhile a second
// Exclusive open and a restore are refused with ErrInUse naming the
// holder's process ID, while a backup and a store that does not ask for
// ownership (a keys command) work beside it.
func TestExclusiveOwner(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "herald.db")
	ring := testKeyring(t)
	cfg := sqlite.Config{Path: path, Keyring: ring, Exclusive: true}
	s, err := sqlite.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	lock := sqlite.LockPath(path)
	info, err := os.Stat(lock)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("lock file mode = %04o, want 0600", perm)
	}
	b, err := os.ReadFile(lock)
	if err != nil || !strings.HasPrefix(string(b), fmt.Sprintf("pid=%d ", os.Getpid())) {
		t.Errorf("lock file holds %q (%v), want this process's ID", b, err)
	}

	holder := fmt.Sprintf("process %d on host", os.Getpid())
	_, err = sqlite.Open(t.Context(), cfg)
	if !errors.Is(err, sqlite.ErrInUse) || !strings.Contains(err.Error(), holder) || !strings.Contains(err.Error(), lock) {
		t.Fatalf("second Exclusive Open = %v, want ErrInUse naming %q and %s", err, holder, lock)
	}
	backup := filepath.Join(dir, "backup.db")
	if _, err := sqlite.Backup(t.Context(), path, backup, false); err != nil {
		t.Fatalf("Backup beside the owner: %v", err)
	}
	_, err = sqlite.Restore(t.Context(), backup, path, sqlite.RestoreOptions{Overwrite: true})
	if !errors.Is(err, sqlite.ErrInUse) || !strings.Contains(err.Error(), holder) {
		t.Fatalf("Restore over an owned database = %v, want ErrInUse naming %q", err, holder)
	}
	reader := openAt(t, path, ring)
	if err := reader.Ping(t.Context()); err != nil {
		t.Fatalf("a store without Exclusive beside the owner: %v", err)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(lock); err != nil || len(b) != 0 {
		t.Errorf("lock file after Close holds %q (%v), want it empty", b, err)
	}
	s2, err := sqlite.Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Exclusive Open after the owner closed: %v", err)
	}
	s2.Close()
}
