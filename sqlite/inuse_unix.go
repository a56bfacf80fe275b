//go:build linux || darwin

package sqlite

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// checkNotInUse returns ErrInUse when another process holds a lock on the
// database at path or on its shared-memory file. SQLite's POSIX locks say
// who has it open: in WAL mode every connection keeps a read lock on the
// -shm file for as long as it is open, and a connection reading or writing
// holds one on the database file.
func checkNotInUse(path string) error {
	for _, file := range []string{path, path + "-shm"} {
		pid, err := lockHolder(file)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("check whether %s is in use: %w", file, err)
		}
		if pid != 0 {
			return fmt.Errorf("%w: process %d holds %s", ErrInUse, pid, file)
		}
	}
	return nil
}

// lockHolder returns the ID of a process holding a POSIX lock on any byte
// of file, or 0 when none does. Locks of this process do not count.
func lockHolder(file string) (int, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: io.SeekStart, Start: 0, Len: 0} // Len 0: to the end, however far
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_GETLK, &lk); err != nil {
		return 0, err
	}
	if lk.Type == syscall.F_UNLCK {
		return 0, nil
	}
	return int(lk.Pid), nil
}
