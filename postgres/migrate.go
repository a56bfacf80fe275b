package postgres

import (
	"context"
	"embed"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-webhooks/herald/migration"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationLock is the key of the session advisory lock migrations run
// under ("herald" in ASCII). It is database-wide: nodes migrating different
// schemas of one database wait for each other, which costs a few
// milliseconds once per start.
const migrationLock int64 = 0x68_65_72_61_6c_64

// loadMigrations returns the embedded migrations in version order.
func loadMigrations() ([]migration.Migration, error) {
	return migration.Load(migrationFiles, "migrations/*.sql")
}

// migrate creates the schema if needed and applies every migration not yet
// recorded in schema_migrations, one transaction each, all on one
// connection holding the advisory lock: a node that starts while another
// migrates waits, then finds the work done. The connection is taken out of
// the pool and closed afterwards, so its session settings (no statement
// timeout: a migration may rewrite a large table) and, whatever happens,
// its lock end with it.
func (s *Store) migrate(ctx context.Context) error {
	migrations, err := loadMigrations()
	if err != nil {
		return err
	}
	pooled, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire connection for migrations: %w", err)
	}
	conn := pooled.Hijack()
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = conn.Close(closeCtx)
	}()
	if _, err := conn.Exec(ctx, `SET statement_timeout = 0`); err != nil {
		return fmt.Errorf("prepare migration connection: %w", err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
		return fmt.Errorf("take migration lock: %w", err)
	}
	if err := s.migrateLocked(ctx, conn, migrations); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, migrationLock); err != nil {
		return fmt.Errorf("release migration lock: %w", err)
	}
	return nil
}

// migrateLocked does the work of migrate once the lock is held.
func (s *Store) migrateLocked(ctx context.Context, conn *pgx.Conn, migrations []migration.Migration) error {
	if s.schema != "" {
		// Look before creating: CREATE SCHEMA IF NOT EXISTS needs the
		// CREATE privilege on the database even when the schema exists.
		var exists bool
		err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, s.schema).Scan(&exists)
		if err != nil {
			return fmt.Errorf("look up schema: %w", err)
		}
		if !exists {
			if _, err := conn.Exec(ctx, `CREATE SCHEMA `+pgx.Identifier{s.schema}.Sanitize()); err != nil {
				return fmt.Errorf("create schema: %w", err)
			}
		}
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    integer     NOT NULL PRIMARY KEY,
		name       text        NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	rows, _ := conn.Query(ctx, `SELECT version FROM schema_migrations`) // the error comes back from CollectRows
	applied, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return fmt.Errorf("read schema_migrations: %w", err)
	}
	done := make(map[int]bool, len(applied))
	newest := 0
	for _, v := range applied {
		done[int(v)] = true
		newest = max(newest, int(v))
	}
	// A database a newer Herald migrated has a schema this binary does not
	// know; migrations only go forward, so refuse rather than guess.
	if err := migration.CheckNotNewer(newest, migrations); err != nil {
		return err
	}
	sealedHeaders := 0
	for _, m := range migrations {
		if done[m.Version] {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			if m.Version == sealedHeadersVersion {
				n, err := s.sealPlaintextHeaders(ctx, tx)
				if err != nil {
					return err
				}
				sealedHeaders = n
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name)
			return err
		})
		if err != nil {
			return fmt.Errorf("apply migration %s: %w", m.Name, err)
		}
	}
	if sealedHeaders > 0 {
		// The rows' old versions, with the plaintext headers, stay in the
		// table's pages until they are reused: rewrite the table (small: one
		// row per endpoint) so none is left in it.
		if _, err := conn.Exec(ctx, `VACUUM FULL endpoint`); err != nil {
			return fmt.Errorf("vacuum endpoint after sealing headers: %w", err)
		}
	}
	return nil
}

// SchemaVersion returns the highest applied migration.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := s.pool.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, s.fail("schema version", err)
	}
	return v, nil
}
