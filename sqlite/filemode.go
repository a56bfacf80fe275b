package sqlite

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
)

// privateMode is the mode of the database and of its -wal and -shm files:
// they hold payloads, endpoint URLs and headers, so only Herald's user
// may read them.
const privateMode fs.FileMode = 0o600

// privateFiles makes the database file at path private before SQLite opens
// it: a new one is created empty with mode 0600 whatever the umask (SQLite
// gives the -wal and -shm files it creates the database file's mode), and
// an existing database, -wal or -shm file that group or others may read is
// tightened to 0600, which is logged.
func privateFiles(path string, logger *slog.Logger) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, privateMode)
	switch {
	case err == nil:
		// The umask can only take bits away from 0600; Chmod makes it
		// exactly 0600 even under an odd umask such as 0277.
		err = errors.Join(f.Chmod(privateMode), f.Close())
		if err != nil {
			return fmt.Errorf("create database file: %w", err)
		}
	case !errors.Is(err, fs.ErrExist):
		return fmt.Errorf("create database file: %w", err)
	}
	for _, name := range []string{path, path + "-wal", path + "-shm"} {
		info, err := os.Stat(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			return err
		}
		if !info.Mode().IsRegular() || info.Mode().Perm()&0o077 == 0 {
			continue
		}
		if err := os.Chmod(name, info.Mode().Perm()&^0o077); err != nil {
			return fmt.Errorf("make %s private: %w", name, err)
		}
		logger.Warn("the database file was readable by other users; made it private",
			"file", name, "was", fmt.Sprintf("%04o", info.Mode().Perm()), "now", fmt.Sprintf("%04o", info.Mode().Perm()&^0o077))
	}
	return nil
}
