package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// LockPath is the lock file of the database at path, which a store opened
// with Config.Exclusive holds for as long as it is open.
func LockPath(path string) string { return path + ".lock" }

// owner is the exclusive lock on a database's lock file. The kernel drops
// it when the holding process ends, however it ends, so a kill -9 leaves
// no stale lock behind; the file itself stays, holding the last owner's
// ID until the next owner overwrites it.
type owner struct {
	once sync.Once
	f    *os.File
}

// ownerWait bounds how long acquireOwner waits for a new holder to write
// its ID (it locks first, then writes).
const ownerWait = 200 * time.Millisecond

// acquireOwner takes the exclusive lock on the lock file of the database
// at path, creating the file with mode 0600, and writes this process's ID,
// host and start time into it. When another process holds the lock it
// returns ErrInUse naming that process as the file names it.
func acquireOwner(path string, now time.Time) (*owner, error) {
	name := LockPath(path)
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, privateMode)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	held, err := lockFile(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	if held {
		holder := readHolder(f)
		f.Close()
		return nil, fmt.Errorf("%w: %s holds its lock file %s", ErrInUse, holder, name)
	}
	if info, err := f.Stat(); err == nil && info.Mode().Perm()&0o077 != 0 {
		_ = f.Chmod(privateMode) // best effort: the file holds only an ID
	}
	host, _ := os.Hostname()
	line := fmt.Sprintf("pid=%d host=%s started=%s\n", os.Getpid(), strings.Join(strings.Fields(host), "_"), now.UTC().Format(time.RFC3339))
	if err := f.Truncate(0); err != nil {
		f.Close()
		return nil, fmt.Errorf("write lock file %s: %w", name, err)
	}
	if _, err := f.WriteAt([]byte(line), 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("write lock file %s: %w", name, err)
	}
	return &owner{f: f}, nil
}

// readHolder describes the process that holds the lock on f from what it
// wrote there: "process 1234 on host h (since 2026-…)". A holder that has
// just taken the lock may not have written yet; it waits briefly for that.
func readHolder(f *os.File) string {
	deadline := time.Now().Add(ownerWait)
	for {
		b := make([]byte, 512)
		n, _ := f.ReadAt(b, 0)
		fields := map[string]string{}
		for _, kv := range strings.Fields(string(b[:n])) {
			if k, v, ok := strings.Cut(kv, "="); ok {
				fields[k] = v
			}
		}
		if pid, err := strconv.Atoi(fields["pid"]); err == nil && pid > 0 {
			text := "process " + strconv.Itoa(pid)
			if fields["host"] != "" {
				text += " on host " + fields["host"]
			}
			if fields["started"] != "" {
				text += " (since " + fields["started"] + ")"
			}
			return text
		}
		if time.Now().After(deadline) {
			return "another process (it wrote no process ID)"
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// release empties the lock file and drops the lock, once; a nil owner
// has none. Emptying first means no one reads this process's ID once it
// is gone.
func (o *owner) release() error {
	if o == nil {
		return nil
	}
	var err error
	o.once.Do(func() { err = errors.Join(o.f.Truncate(0), o.f.Close()) })
	return err
}

// releaseAllSQL is rescueSQL for every leased delivery, whatever its
// lease's expiry.
const releaseAllSQL = `UPDATE delivery SET status = 'pending', next_attempt_at = ?,
	lease_owner = NULL, lease_expires_at = NULL, updated_at = ?
	WHERE status = 'sending'`

// ReleaseAllLeases returns every delivery leased (sending) to pending, due
// at now, without counting an attempt, and reports how many. A server
// calls it at start, before it claims anything: as the database's only
// owner it knows that no live process holds those leases, so the
// deliveries a killed process held go out again at once rather than when
// their leases expire. Only an Exclusive store may do this; on PostgreSQL,
// other nodes own leases and the rescuer waits for them.
func (s *Store) ReleaseAllLeases(ctx context.Context, now time.Time) (int, error) {
	if s.owner == nil {
		return 0, errors.New("release all leases: the store was not opened with Exclusive, so another process may hold them")
	}
	var n int64
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, releaseAllSQL, micros(now), micros(now))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, s.fail("release all leases", err)
	}
	return int(n), nil
}
