package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"time"

	"github.com/herald-webhooks/herald/migration"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// loadMigrations returns the embedded migrations in version order.
func loadMigrations() ([]migration.Migration, error) {
	return migration.Load(migrationFiles, "migrations/*.sql")
}

// migrate applies every migration not yet recorded in schema_migrations, one
// write transaction each. Because each transaction begins IMMEDIATE and
// checks the record inside it, two processes opening the same new file
// apply each migration exactly once.
func (s *Store) migrate(ctx context.Context, busyTimeout time.Duration) error {
	migrations, err := loadMigrations()
	if err != nil {
		return err
	}
	if err := s.checkNotNewer(ctx, busyTimeout, migrations); err != nil {
		return err
	}
	sealedHeaders := 0
	for _, m := range migrations {
		err := retryBusy(ctx, busyTimeout, func() error {
			return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
				version    INTEGER NOT NULL PRIMARY KEY,
				name       TEXT    NOT NULL,
				applied_at INTEGER NOT NULL
			) STRICT`); err != nil {
					return err
				}
				var n int
				if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, m.Version).Scan(&n); err != nil {
					return err
				}
				if n > 0 {
					return nil
				}
				if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
					return err
				}
				if m.Version == sealedHeadersVersion {
					n, err := s.sealPlaintextHeaders(ctx, tx)
					if err != nil {
						return err
					}
					sealedHeaders = n
				}
				_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
					m.Version, m.Name, time.Now().UnixMicro())
				return err
			})
		})
		if err != nil {
			return fmt.Errorf("apply migration %s: %w", m.Name, err)
		}
	}
	if sealedHeaders > 0 {
		// The WAL still holds page images with the plaintext headers:
		// copy the zeroed pages into the file and empty the WAL, so no
		// plaintext is left on disk. Another process reading an older
		// snapshot can keep it busy; then the next checkpoints overwrite
		// it in time, so it is not a reason to refuse to start.
		var busy, logFrames, copied int
		err := s.w.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logFrames, &copied)
		if err != nil {
			return fmt.Errorf("checkpoint after sealing headers: %w", err)
		}
	}
	return nil
}

// checkNotNewer refuses a database that a newer Herald migrated: this
// binary would not know its schema, and migrations only go forward.
func (s *Store) checkNotNewer(ctx context.Context, busyTimeout time.Duration, migrations []migration.Migration) error {
	applied := 0
	err := retryBusy(ctx, busyTimeout, func() error {
		var tables int
		err := s.w.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&tables)
		if err != nil || tables == 0 {
			return err
		}
		return s.w.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&applied)
	})
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	return migration.CheckNotNewer(applied, migrations)
}

// retryBusy runs fn until it does not fail with SQLITE_BUSY or timeout has
// passed. SQLite skips the busy handler in a few cases, such as while
// another connection converts a new file to WAL, so a concurrent first open
// can see SQLITE_BUSY at once; waiting a little and trying again is the
// documented remedy.
func retryBusy(ctx context.Context, timeout time.Duration, fn func() error) error {
	deadline := time.Now().Add(timeout)
	wait := time.Millisecond
	for {
		err := fn()
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 50*time.Millisecond)
	}
}

// SchemaVersion returns the highest applied migration.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := s.r.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, s.fail("schema version", err)
	}
	return v, nil
}
