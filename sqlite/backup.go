package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/herald-webhooks/herald/migration"
)

// LatestVersion returns the highest schema version this binary's
// migrations reach.
func LatestVersion() (int, error) {
	migrations, err := loadMigrations()
	if err != nil {
		return 0, err
	}
	return migration.Latest(migrations), nil
}

// Backup writes a consistent copy of the database at src to dst while other
// processes (a running Herald) keep reading and writing it. The copy is made
// with VACUUM INTO on a connection of its own: one read transaction, so it
// holds exactly the transactions committed before it began, and writers are
// never blocked (WAL). It is written to a temporary file beside dst, fsynced,
// then renamed over dst and the directory fsynced, so dst is either the old
// file or the complete new one. Backup refuses an existing dst unless
// overwrite is set, and returns the copy's schema version.
func Backup(ctx context.Context, src, dst string, overwrite bool) (version int, err error) {
	if _, err := os.Stat(src); err != nil {
		return 0, fmt.Errorf("database: %w", err)
	}
	if !overwrite {
		if _, err := os.Lstat(dst); err == nil {
			return 0, fmt.Errorf("%w: %s", ErrExists, dst)
		}
	}
	db, err := sql.Open("sqlite", backupDSN(src))
	if err != nil {
		return 0, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)

	tmp, err := tempName(dst)
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			os.Remove(tmp)
		}
	}()
	// The copy holds payloads and endpoint headers, so only the owner may
	// read it, from its first byte: VACUUM INTO would create the file
	// 0644, so it gets an empty 0600 file to write into (which it allows).
	if err := privateFiles(tmp, slog.New(slog.DiscardHandler)); err != nil {
		return 0, err
	}
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, tmp); err != nil {
		return 0, fmt.Errorf("copy %s: %w", src, err)
	}
	if version, err = fileSchemaVersion(ctx, tmp); err != nil {
		return 0, fmt.Errorf("%s: %w", src, err)
	}
	if err := syncFile(tmp); err != nil {
		return 0, err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return 0, err
	}
	return version, syncDir(filepath.Dir(dst))
}

// RestoreOptions tune Restore.
type RestoreOptions struct {
	// Overwrite replaces an existing database; the old one is kept beside
	// it, renamed with the suffix Restore returns.
	Overwrite bool
	// Now names the kept database; time.Now by default.
	Now func() time.Time
}

// RestoreResult says what Restore did.
type RestoreResult struct {
	Version  int    // the restored database's schema version
	Latest   int    // the highest version this binary knows
	Replaced string // where the replaced database was moved, if any
}

// Errors of Backup and Restore.
var (
	// ErrInUse: another process has the target database open, or holds
	// its lock file (an Exclusive store, see Config).
	ErrInUse = errors.New("another process has the database open")
	// ErrExists: the target file exists and overwriting was not asked for
	// (Backup and Restore).
	ErrExists = errors.New("file exists")
)

// Restore installs the backup src as the database dst. It copies src to a
// temporary file beside dst and checks the copy: SQLite's integrity_check
// and foreign_key_check pass, it is a Herald database, and its schema
// version is not newer than this binary knows (older is fine: Herald
// migrates it at start). Then it fsyncs the copy and renames it to dst.
// Restore refuses while another process has dst open (a running Herald)
// or holds its lock file (held by Restore itself for the switch, as an
// Exclusive store holds it), and refuses an existing dst unless opts.Overwrite, in which case dst and
// its -wal and -shm files are moved aside, not deleted: a stale WAL left
// beside the new file would be replayed into it.
func Restore(ctx context.Context, src, dst string, opts RestoreOptions) (res RestoreResult, err error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if info, err := os.Stat(src + "-wal"); err == nil && info.Size() > 0 {
		return res, fmt.Errorf("%s has a write-ahead log beside it (%s-wal): it is a live database, not a backup; make a backup of it with herald backup first", src, src)
	}
	if res.Latest, err = LatestVersion(); err != nil {
		return res, err
	}
	if err := checkNotInUse(dst); err != nil {
		return res, err
	}
	exists := false
	if _, err := os.Lstat(dst); err == nil {
		exists = true
		if !opts.Overwrite {
			return res, fmt.Errorf("%w: %s", ErrExists, dst)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return res, err
	}

	tmp, err := tempName(dst)
	if err != nil {
		return res, err
	}
	defer func() {
		if err != nil {
			os.Remove(tmp)
			os.Remove(tmp + "-wal")
			os.Remove(tmp + "-shm")
		}
	}()
	if err := copyFile(src, tmp); err != nil {
		return res, err
	}
	if res.Version, err = check(ctx, tmp); err != nil {
		return res, fmt.Errorf("%s: %w", src, err)
	}
	if res.Version > res.Latest {
		return res, fmt.Errorf("%s comes from a newer Herald: its schema version is %d, this Herald knows versions up to %d; restore it with that version", src, res.Version, res.Latest)
	}
	if err := syncFile(tmp); err != nil {
		return res, err
	}
	// Own the database for the switch, so that no Herald server starts on
	// it half way (the lock file beside dst stays for the next owner), and
	// check again: a Herald may have started meanwhile.
	o, err := acquireOwner(dst, opts.Now())
	if err != nil {
		return res, err
	}
	defer o.release()
	if err := checkNotInUse(dst); err != nil {
		return res, err
	}
	if exists {
		res.Replaced = dst + ".replaced-" + opts.Now().UTC().Format("20060102T150405Z")
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if err := os.Rename(dst+suffix, res.Replaced+suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return res, fmt.Errorf("move the old database aside: %w", err)
			}
		}
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := os.Remove(dst + suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return res, err
		}
	}
	if err := os.Rename(tmp, dst); err != nil {
		return res, err
	}
	return res, syncDir(filepath.Dir(dst))
}

// privateConn opens a connection to the existing database file at path,
// which no other process uses (a backup, a copy being restored).
func privateConn(ctx context.Context, path string) (*sql.DB, *sql.Conn, error) {
	q := url.Values{}
	q.Set("mode", "rw") // never create: the file must be there
	q.Add("_pragma", "busy_timeout(5000)")
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?"+q.Encode())
	if err != nil {
		return nil, nil, err
	}
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, conn, nil
}

// fileSchemaVersion returns the schema version of the database file at
// path, which no other process uses.
func fileSchemaVersion(ctx context.Context, path string) (int, error) {
	db, conn, err := privateConn(ctx, path)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	defer conn.Close()
	return schemaVersion(ctx, conn)
}

// check verifies the database file at path, which no other process uses,
// and returns its schema version.
func check(ctx context.Context, path string) (int, error) {
	db, conn, err := privateConn(ctx, path)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	defer conn.Close()
	rows, err := conn.QueryContext(ctx, `PRAGMA integrity_check`)
	if err != nil {
		return 0, fmt.Errorf("not a readable SQLite database: %w", err)
	}
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			rows.Close()
			return 0, err
		}
		if line != "ok" {
			problems = append(problems, line)
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return 0, fmt.Errorf("integrity check: %w", err)
	}
	if len(problems) > 0 {
		if len(problems) > 5 {
			problems = append(problems[:5], "…")
		}
		return 0, fmt.Errorf("integrity check failed: %s", strings.Join(problems, "; "))
	}
	var table, rowid, parent, fkid sql.NullString
	err = conn.QueryRowContext(ctx, `PRAGMA foreign_key_check`).Scan(&table, &rowid, &parent, &fkid)
	if err == nil {
		return 0, fmt.Errorf("foreign key check failed: a row of %s refers to a missing row of %s", table.String, parent.String)
	} else if !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("foreign key check: %w", err)
	}
	return schemaVersion(ctx, conn)
}

// schemaVersion reads the highest applied migration of a Herald database.
func schemaVersion(ctx context.Context, conn *sql.Conn) (int, error) {
	var tables int
	if err := conn.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&tables); err != nil {
		return 0, fmt.Errorf("not a readable SQLite database: %w", err)
	}
	if tables == 0 {
		return 0, errors.New("not a Herald database (no schema_migrations table)")
	}
	var v int
	if err := conn.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// backupDSN opens an existing database, never creating it. The
// connection only runs VACUUM INTO, which reads; query_only cannot be set
// because SQLite counts writing the copy against it.
func backupDSN(path string) string {
	q := url.Values{}
	q.Set("mode", "rw") // rw, not ro: a WAL reader may need to create the -shm file
	q.Add("_pragma", "busy_timeout(5000)")
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

// tempName returns an unused name beside path for a file that is renamed to
// path once complete.
func tempName(path string) (string, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return path + ".tmp-" + hex.EncodeToString(b[:]), nil
}

// copyFile copies src to a new file dst (mode 0600).
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Close()
}

// syncFile flushes a file's content to stable storage.
func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("fsync %s: %w", path, err)
	}
	return f.Close()
}

// syncDir flushes a directory, so a rename in it survives power loss.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}
