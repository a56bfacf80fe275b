package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/keyring"
	"github.com/herald-webhooks/herald/postgres"
	"github.com/herald-webhooks/herald/sqlite"
)

// DBFlags choose and open the database; serve and migrate share them.
type DBFlags struct {
	DB                 string        `name:"db" env:"HERALD_DB" default:"./herald-data/herald.db" help:"SQLite database file (created with its directory on first start), or a postgres:// URL for PostgreSQL (any number of nodes may share one)."`
	EncryptionKey      string        `name:"encryption-key" env:"HERALD_ENCRYPTION_KEY" help:"Keys that encrypt endpoint secrets and headers at rest: comma-separated 32-byte keys in base64 or hex, the first encrypts. Default on SQLite: the file encryption-key beside the database, generated on first start. Required on PostgreSQL (every node needs the same keys)."`
	SQLiteSynchronous  string        `name:"sqlite-synchronous" env:"HERALD_SQLITE_SYNCHRONOUS" default:"FULL" enum:"FULL,NORMAL" help:"SQLite durability: FULL survives power loss (default); NORMAL may lose the last commits on power loss, never on a crash of Herald."`
	PGMaxConns         int32         `name:"pg-max-conns" env:"HERALD_PG_MAX_CONNS" default:"16" help:"PostgreSQL: connections in this node's pool."`
	PGStatementTimeout time.Duration `name:"pg-statement-timeout" env:"HERALD_PG_STATEMENT_TIMEOUT" default:"30s" help:"PostgreSQL: statement_timeout of every connection."`

	// fanOutInlineMax is the store's FanOutInlineMax: serve sets it from
	// --fanout-inline-max, since serve runs the fan-out worker; 0 (every
	// other command) keeps fan-outs inline.
	fanOutInlineMax int `kong:"-"`
}

// store is what the commands need of either engine.
type store interface {
	herald.Store
	SchemaVersion(ctx context.Context) (int, error)
	// CheckSchema fails unless the schema is at the newest migration this
	// binary embeds (the readiness check "migrations").
	CheckSchema(ctx context.Context) error
}

// postgres reports whether --db names a PostgreSQL database.
func (f *DBFlags) postgres() bool {
	return strings.HasPrefix(f.DB, "postgres://") || strings.HasPrefix(f.DB, "postgresql://")
}

// dataDir is the directory holding the SQLite database and its generated
// files; PostgreSQL has none.
func (f *DBFlags) dataDir() string {
	if f.postgres() {
		return ""
	}
	return filepath.Dir(f.DB)
}

// open opens the store: PostgreSQL, or SQLite with its directory and
// encryption key created on first start. It does not own a SQLite
// database (see own): short writers such as herald keys work beside a
// running server through SQLite's own locks.
func (f *DBFlags) open(ctx context.Context, logger *slog.Logger) (store, error) {
	return f.openStore(ctx, logger, false)
}

// own is open for the commands that must be a SQLite database's only
// user, serve and migrate: it takes the lock file beside the database
// (sqlite.LockPath) for as long as the store is open and fails, naming
// the holder, while another process has it. On PostgreSQL it is open:
// any number of nodes share one database.
func (f *DBFlags) own(ctx context.Context, logger *slog.Logger) (store, error) {
	return f.openStore(ctx, logger, true)
}

// openStore is open and own.
func (f *DBFlags) openStore(ctx context.Context, logger *slog.Logger, exclusive bool) (store, error) {
	if f.postgres() {
		if f.EncryptionKey == "" {
			return nil, errors.New("--encryption-key (or HERALD_ENCRYPTION_KEY) is required with PostgreSQL: every node must seal and open endpoint secrets with the same keys")
		}
		ring, err := keyring.Parse(f.EncryptionKey)
		if err != nil {
			return nil, fmt.Errorf("--encryption-key: %w", err)
		}
		s, err := postgres.Open(ctx, postgres.Config{URL: f.DB, Keyring: ring, MaxConns: f.PGMaxConns, StatementTimeout: f.PGStatementTimeout, Logger: logger,
			FanOutInlineMax: f.fanOutInlineMax})
		if err != nil {
			return nil, fmt.Errorf("open PostgreSQL database: %w", err)
		}
		return s, nil
	}
	if err := os.MkdirAll(f.dataDir(), 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	ring, err := f.keyring(logger)
	if err != nil {
		return nil, err
	}
	store, err := sqlite.Open(ctx, sqlite.Config{Path: f.DB, Synchronous: f.SQLiteSynchronous, Keyring: ring, Logger: logger, Exclusive: exclusive,
		FanOutInlineMax: f.fanOutInlineMax})
	if exclusive && errors.Is(err, sqlite.ErrInUse) {
		return nil, fmt.Errorf("open database %s: %w: one Herald server alone may use a SQLite database (stop that one first, or use PostgreSQL for several nodes)", f.DB, err)
	} else if err != nil {
		return nil, fmt.Errorf("open database %s: %w", f.DB, err)
	}
	return store, nil
}

// leaseReleaser is a store that its process owns alone (SQLite opened by
// own), which can return at once the deliveries a previous process held.
type leaseReleaser interface {
	ReleaseAllLeases(ctx context.Context, now time.Time) (int, error)
}

// releaseDeadLeases returns to the queue, due now and without counting an
// attempt, the deliveries that a previous server on this SQLite database
// had leased when it stopped or was killed: this process owns the file,
// so no live process holds them, and waiting for their leases to expire
// (--delivery-lease) would only delay them. PostgreSQL leases belong to
// other nodes too; its rescuer waits for them.
func releaseDeadLeases(ctx context.Context, s store, logger *slog.Logger) error {
	r, ok := s.(leaseReleaser)
	if !ok {
		return nil
	}
	n, err := r.ReleaseAllLeases(ctx, time.Now())
	if err != nil {
		return err
	}
	if n > 0 {
		logger.Info("returned the deliveries a previous process had leased to the queue: they are sent again now", "deliveries", n)
	}
	return nil
}

// keyring returns the keyring from --encryption-key, or from the key file
// beside the database, generating that file for a new database.
func (f *DBFlags) keyring(logger *slog.Logger) (*keyring.Keyring, error) {
	if f.EncryptionKey != "" {
		ring, err := keyring.Parse(f.EncryptionKey)
		if err != nil {
			return nil, fmt.Errorf("--encryption-key: %w", err)
		}
		return ring, nil
	}
	path := filepath.Join(f.dataDir(), "encryption-key")
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if _, statErr := os.Stat(f.DB); statErr == nil {
			return nil, fmt.Errorf("database %s exists but its encryption key %s does not: pass --encryption-key or restore the key file", f.DB, path)
		}
		key, err := keyring.NewKey()
		if err != nil {
			return nil, err
		}
		if err := writeSecretFile(path, key); err != nil {
			return nil, fmt.Errorf("save encryption key: %w", err)
		}
		logger.Info("generated an encryption key for endpoint secrets; back it up with the database", "file", path)
		b = []byte(key)
	} else if err != nil {
		return nil, fmt.Errorf("read encryption key: %w", err)
	}
	ring, err := keyring.Parse(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("encryption key file %s: %w", path, err)
	}
	return ring, nil
}

// writeSecretFile creates path with mode 0600, refusing to overwrite.
func writeSecretFile(path, content string) error {
	file, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := file.WriteString(content + "\n"); err != nil {
		file.Close()
		return err
	}
	if err := file.Sync(); err != nil {
		file.Close()
		return err
	}
	return file.Close()
}
