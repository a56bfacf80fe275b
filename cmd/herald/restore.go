package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/sqlite"
)

// RestoreCmd installs a backup as the SQLite database, after checking it.
type RestoreCmd struct {
	File    string `arg:"" name:"file" help:"The backup to restore: a file written by herald backup, or by litestream restore."`
	DB      string `name:"db" env:"HERALD_DB" default:"./herald-data/herald.db" help:"The SQLite database to create from the backup."`
	DataDir string `name:"data-dir" help:"Restore into this data directory instead: the database becomes DIR/herald.db."`
	Force   bool   `name:"force" help:"Replace an existing database; the old one is kept beside it as <db>.replaced-<time>."`
}

// Run checks the backup (integrity, a Herald schema not newer than this
// binary's) and installs it, refusing while a process has the database open.
func (c *RestoreCmd) Run(env *Env) error {
	db := c.DB
	if c.DataDir != "" {
		db = filepath.Join(c.DataDir, "herald.db")
	}
	if isPostgresURL(db) {
		return errPostgresBackup
	}
	dir := filepath.Dir(db)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	res, err := sqlite.Restore(env.Ctx, c.File, db, sqlite.RestoreOptions{Overwrite: c.Force})
	if errors.Is(err, sqlite.ErrExists) {
		return fmt.Errorf("restore: %w: pass --force to replace it (the old database is kept beside it)", err)
	} else if errors.Is(err, sqlite.ErrInUse) {
		return fmt.Errorf("restore: %w: stop the Herald serving %s before restoring", err, db)
	} else if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	fmt.Fprintf(env.Stdout, "restored %s to %s: integrity checked, schema version %d", c.File, db, res.Version)
	if res.Version < res.Latest {
		fmt.Fprintf(env.Stdout, " (Herald migrates it to version %d at start)", res.Latest)
	}
	fmt.Fprintln(env.Stdout)
	if res.Replaced != "" {
		fmt.Fprintf(env.Stdout, "The database it replaced is kept as %s.\n", res.Replaced)
	}
	fmt.Fprintln(env.Stdout, restoredTokenNote(dir))
	key := filepath.Join(dir, "encryption-key")
	if _, err := os.Stat(key); err == nil {
		fmt.Fprintf(env.Stdout, "Herald will open it with %s: that must be the key in use when the backup was taken.\n", key)
	} else {
		fmt.Fprintf(env.Stdout, "Now put the encryption key in use when the backup was taken into %s (mode 0600), or pass it with --encryption-key: Herald refuses to start without it.\n", key)
	}
	return nil
}

// restoredTokenNote tells the operator what becomes of the admin token: a
// backup holds the database alone, and without an admin-token file beside
// it herald serve would make a new token, which the clients of the backed
// up Herald do not have.
func restoredTokenNote(dir string) string {
	file := filepath.Join(dir, "admin-token")
	if fileExists(file) {
		return "The backup does not hold the admin token: Herald will accept the one in " + file +
			" (unless given --admin-token or --admin-token-file). API keys are in the backup and keep working."
	}
	return "The backup does not hold the admin token: copy the old admin-token file to " + file +
		" (mode 0600) or start with --admin-token-file, or herald serve generates a new token into " + file +
		" at its next start. API keys are in the backup and keep working."
}

// reportGeneratedToken logs that serve generated an admin token into file.
// On a database that already holds applications it is a warning: the
// database came from elsewhere (herald restore, a copied file) without
// its admin token, so the token its clients had does not work here.
func reportGeneratedToken(ctx context.Context, s herald.Store, file string, logger *slog.Logger) {
	apps, err := s.ListApplications(ctx, herald.ListOptions{Limit: 1})
	if err == nil && len(apps) > 0 {
		logger.Warn("generated a new admin token, as no admin-token file was beside a database that already holds applications (restored from a backup?): the admin token used with it before does not work here; its API keys do",
			"file", file)
		return
	}
	logger.Info("generated an admin token", "file", file)
}
