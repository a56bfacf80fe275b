//go:build linux

package sqlite_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/herald-webhooks/herald/sqlite"
)

// Environment of the helper process of TestRestoreRefusesLiveDatabase.
const (
	restoreHelperSrc = "HERALD_TEST_RESTORE_SRC"
	restoreHelperDst = "HERALD_TEST_RESTORE_DST"
)

// TestRestoreRefusesLiveDatabase: a restore over a database that another
// process has open is refused with ErrInUse, also when that process is in
// another PID namespace (a container sharing the volume), whose lock the
// kernel reports without a process ID.
func TestRestoreRefusesLiveDatabase(t *testing.T) {
	s, path := newStore(t) // this process keeps its locks while the store is open
	if err := s.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(t.TempDir(), "backup.db")
	if _, err := sqlite.Backup(t.Context(), path, backup, false); err != nil {
		t.Fatalf("Backup: %v", err)
	}
	for _, tc := range []struct {
		name string
		attr *syscall.SysProcAttr
	}{
		{"same PID namespace", nil},
		// The restoring process is PID 1 of a new namespace, where this
		// process has no ID: F_GETLK reports the lock with l_pid 0.
		{"other PID namespace", &syscall.SysProcAttr{
			Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWPID,
			UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
			GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestRestoreHelper$", "-test.v")
			cmd.Env = append(os.Environ(), restoreHelperSrc+"="+backup, restoreHelperDst+"="+path)
			cmd.SysProcAttr = tc.attr
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			switch {
			case err != nil && !errors.As(err, &exit) && tc.attr != nil:
				t.Skipf("cannot start a process in a new PID namespace here: %v", err)
			case err != nil:
				t.Fatalf("restore in a helper process: %v\n%s", err, out)
			}
			t.Logf("helper process:\n%s", out)
		})
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("the live store after the refused restores: %v", err)
	}
}

// TestRestoreHelper is the helper process of TestRestoreRefusesLiveDatabase:
// it restores over the live database and expects ErrInUse.
func TestRestoreHelper(t *testing.T) {
	src, dst := os.Getenv(restoreHelperSrc), os.Getenv(restoreHelperDst)
	if src == "" || dst == "" {
		t.Skip("the helper process of TestRestoreRefusesLiveDatabase")
	}
	_, err := sqlite.Restore(context.Background(), src, dst, sqlite.RestoreOptions{Overwrite: true})
	if !errors.Is(err, sqlite.ErrInUse) {
		t.Fatalf("Restore over a database another process has open = %v, want ErrInUse", err)
	}
	t.Log(err)
}
