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
		held, pid, err := lockHolder(file)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("check whether %s is in use: %w", file, err)
		}
		switch {
		case held && pid > 0:
			return fmt.Errorf("%w: process %d holds %s", ErrInUse, pid, file)
		case held:
			return fmt.Errorf("%w: a process (in another PID namespace, e.g. a container) holds %s", ErrInUse, file)
		}
	}
	return nil
}

// lockHolder reports whether another process holds a POSIX lock on any
// byte of file, and that process's ID when the kernel tells it: the ID is 0
// for a process in a PID namespace this one cannot see (another container),
// yet the lock is held all the same. Locks of this process do not count.
func lockHolder(file string) (held bool, pid int, err error) {
	f, err := os.Open(file)
	if err != nil {
		return false, 0, err
	}
	defer f.Close()
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: io.SeekStart, Start: 0, Len: 0} // Len 0: to the end, however far
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_GETLK, &lk); err != nil {
		return false, 0, err
	}
	if lk.Type == syscall.F_UNLCK {
		return false, 0, nil
	}
	return true, int(lk.Pid), nil
}
