package main

import (
	"errors"
	"fmt"
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
	return nil
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
