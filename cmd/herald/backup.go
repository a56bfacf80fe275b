package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/herald-webhooks/herald/sqlite"
)

// errPostgresBackup answers backup and restore on a PostgreSQL URL.
var errPostgresBackup = errors.New("--db is a PostgreSQL URL: herald backup and restore handle SQLite; back up PostgreSQL with pg_dump or point-in-time recovery (see docs/postgresql.md)")

// BackupCmd makes a consistent copy of the SQLite database while Herald
// keeps serving it.
type BackupCmd struct {
	File  string `arg:"" name:"file" help:"Where to write the backup."`
	DB    string `name:"db" env:"HERALD_DB" default:"./herald-data/herald.db" help:"The SQLite database to back up; Herald may be serving it."`
	Force bool   `name:"force" help:"Replace the file if it exists."`
}

// Run copies the database with VACUUM INTO: one snapshot holding every
// transaction committed before the copy began, written to a temporary file,
// fsynced, then renamed to the file.
func (c *BackupCmd) Run(env *Env) error {
	if isPostgresURL(c.DB) {
		return errPostgresBackup
	}
	if err := checkFolder(filepath.Dir(c.File)); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	start := time.Now()
	version, err := sqlite.Backup(env.Ctx, c.DB, c.File, c.Force)
	if errors.Is(err, sqlite.ErrExists) {
		return fmt.Errorf("backup: %w: pass --force to replace it", err)
	} else if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	size := int64(0)
	if info, err := os.Stat(c.File); err == nil {
		size = info.Size()
	}
	fmt.Fprintf(env.Stdout, "backed up %s to %s: schema version %d, %d bytes, in %s\n",
		c.DB, c.File, version, size, time.Since(start).Round(time.Millisecond))
	fmt.Fprintln(env.Stdout, keyReminder(filepath.Dir(c.DB)))
	if token := filepath.Join(filepath.Dir(c.DB), "admin-token"); fileExists(token) {
		fmt.Fprintf(env.Stdout, "Nor does it hold the admin token: keep a copy of %s too, or its clients need a new one after a restore (API keys are in the backup).\n", token)
	}
	return nil
}

// checkFolder says plainly when the folder a file is to be written into
// is missing or is not a folder, rather than the "no such file or
// directory" of the temporary file's creation.
func checkFolder(dir string) error {
	info, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("the folder %s does not exist: create it first (mkdir -p %s)", dir, dir)
	case err != nil:
		return fmt.Errorf("the folder %s: %w", dir, err)
	case !info.IsDir():
		return fmt.Errorf("%s is not a folder", dir)
	}
	return nil
}

// fileExists reports whether path names something that can be stat'ed.
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// keyReminder says that a backup is useless without its encryption key.
func keyReminder(dataDir string) string {
	key := filepath.Join(dataDir, "encryption-key")
	if _, err := os.Stat(key); err == nil {
		return "The backup does not hold the encryption key that seals endpoint secrets: keep a copy of " + key + " with it."
	}
	return "The backup does not hold the encryption key that seals endpoint secrets: keep the --encryption-key (HERALD_ENCRYPTION_KEY) value with it."
}

// isPostgresURL reports whether db names a PostgreSQL database, as --db of
// serve reads it.
func isPostgresURL(db string) bool {
	return (&DBFlags{DB: db}).postgres()
}
