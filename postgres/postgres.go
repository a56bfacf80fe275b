// Package postgres implements herald.Store on PostgreSQL with pgx (pure Go).
// Any number of Herald nodes may share one database: claims take rows with
// FOR UPDATE SKIP LOCKED so two nodes never lease the same delivery, every
// verb that writes several rows runs in one transaction, and migrations run
// under an advisory lock so nodes starting together apply each one once.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/keyring"
)

var _ herald.Store = (*Store)(nil)

// Config configures Open.
type Config struct {
	// URL is the postgres:// connection URL (or a key=value DSN).
	URL string
	// Keyring seals endpoint secrets; required.
	Keyring *keyring.Keyring
	// Schema, when set, is the schema Herald's tables live in: created if
	// missing and put first on every connection's search_path. "" keeps the
	// URL's default.
	Schema string
	// MaxConns is the size of the connection pool; 16 by default.
	MaxConns int32
	// StatementTimeout bounds every statement on every connection; 30s by
	// default.
	StatementTimeout time.Duration
	// IdleInTransactionTimeout ends a session that holds a transaction open
	// without sending anything for this long (PostgreSQL's
	// idle_in_transaction_session_timeout); 5s by default. Herald's
	// transactions are short, so a session idle that long belongs to a
	// process that stopped mid-transaction (paused, frozen, cut off): its
	// row locks would otherwise block the node that takes its deliveries
	// over for as long as it stays stopped.
	IdleInTransactionTimeout time.Duration
	// Now is the clock for the times a verb is not given (a delivery's
	// UpdatedAt in RecordAttempts, an endpoint disabled by it); time.Now by
	// default.
	Now func() time.Time
	// Logger receives what Listen has to say about its connection (lost,
	// reconnected); discarded by default.
	Logger *slog.Logger
	// FanOutInlineMax is the most deliveries a message gets inside its
	// ingest batch; one routed to more is stored with a fan-out marker
	// and FanOut creates its deliveries (see herald.DefersFanOut). 0,
	// the default, keeps every fan-out inline: only a process that runs a
	// fan-out worker may set it (any node may continue a marker).
	FanOutInlineMax int
}

// withDefaults returns cfg with its zero fields set to their defaults.
func (cfg Config) withDefaults() Config {
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 16
	}
	if cfg.StatementTimeout <= 0 {
		cfg.StatementTimeout = 30 * time.Second
	}
	if cfg.IdleInTransactionTimeout <= 0 {
		cfg.IdleInTransactionTimeout = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg
}

// Validate reports the first invalid field of a defaulted config.
func (cfg Config) Validate() error {
	switch {
	case cfg.URL == "":
		return errors.New("postgres: no database URL")
	case cfg.Keyring == nil:
		return errors.New("postgres: no keyring")
	case cfg.FanOutInlineMax < 0:
		return fmt.Errorf("postgres: fan-out inline maximum %d, want 0 (always inline) or more", cfg.FanOutInlineMax)
	}
	return nil
}

// Store is a herald.Store on one PostgreSQL database. It is safe for
// concurrent use, and several Stores (in one process or many) may share a
// database and schema.
type Store struct {
	pool    *pgxpool.Pool
	keyring *keyring.Keyring
	schema  string
	now     func() time.Time
	log     *slog.Logger
	closed  atomic.Bool
	fifo    fifoPresence // whether any endpoint is FIFO (see ClaimDue)
	// fanOutMax is Config.FanOutInlineMax.
	fanOutMax int
}

// Open connects a pool to cfg.URL, applies pending migrations and returns a
// ready store. Opens of the same schema from many processes at once are
// safe: migrations run under a database-wide advisory lock.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pcfg, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		// pgconn redacts the password in its parse errors.
		return nil, fmt.Errorf("postgres: parse database URL: %w", err)
	}
	pcfg.MaxConns = cfg.MaxConns
	params := pcfg.ConnConfig.RuntimeParams
	params["statement_timeout"] = strconv.FormatInt(cfg.StatementTimeout.Milliseconds(), 10)
	params["idle_in_transaction_session_timeout"] = strconv.FormatInt(cfg.IdleInTransactionTimeout.Milliseconds(), 10)
	if cfg.Schema != "" {
		params["search_path"] = pgx.Identifier{cfg.Schema}.Sanitize()
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: create pool: %w", mapError(err))
	}
	s := &Store{pool: pool, keyring: cfg.Keyring, schema: cfg.Schema, now: cfg.Now, log: cfg.Logger, fanOutMax: cfg.FanOutInlineMax}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: %w", mapError(err))
	}
	return s, nil
}

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return s.fail("ping", err)
	}
	return nil
}

// Close closes every connection of the pool, waiting for connections in
// use to be returned. Later calls fail with EUNAVAILABLE.
func (s *Store) Close() error {
	s.closed.Store(true)
	s.pool.Close()
	return nil
}

// inTx runs fn in one transaction and commits it when fn returns nil.
func (s *Store) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, fn)
}

// fail wraps err with what was being done, mapping it to a herald error
// first. Domain errors pass through unwrapped so their messages stay clean.
func (s *Store) fail(what string, err error) error {
	var herr *herald.Error
	if errors.As(err, &herr) {
		return err
	}
	if s.closed.Load() {
		return fmt.Errorf("%s: %w: %w", what, herald.Errorf(herald.EUNAVAILABLE, "The database is closed."), err)
	}
	return fmt.Errorf("%s: %w", what, mapError(err))
}
