// Package sqlite implements herald.Store on an embedded SQLite database
// (modernc.org/sqlite, pure Go). It keeps one writer connection, whose
// transactions begin IMMEDIATE so they never deadlock on a lock upgrade, and
// a separate pool of read-only connections; the database runs in WAL mode so
// readers never wait for the writer.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/keyring"
)

var _ herald.Store = (*Store)(nil)

// Config configures Open.
type Config struct {
	// Path is the database file; its directory must exist.
	Path string
	// Synchronous is "FULL" (the default: a commit survives power loss) or
	// "NORMAL" (a commit may be lost on power loss, never corrupted).
	Synchronous string
	// Keyring seals endpoint secrets; required.
	Keyring *keyring.Keyring
	// ReadConnections is the size of the reader pool; 4 by default.
	ReadConnections int
	// BusyTimeout is how long a connection waits for a lock held by another
	// process before failing; 5s by default.
	BusyTimeout time.Duration
	// Now is the clock for the times a verb is not given (a delivery's
	// UpdatedAt in RecordAttempts, an endpoint disabled by it); time.Now by
	// default.
	Now func() time.Time
	// Logger receives the WAL checkpointer's messages (a failure, the
	// recovery); slog.Default() by default.
	Logger *slog.Logger
	// Exclusive makes the store the database's one owner: Open takes an
	// exclusive lock on LockPath(Path) (flock) and fails with ErrInUse,
	// naming the holder, while another store holds it; Close releases it.
	// A server opens its store so, for it alone leases deliveries (see
	// ReleaseAllLeases); readers and short writers (backup, keys) do not.
	Exclusive bool
	// FanOutInlineMax is the most deliveries a message gets inside its
	// ingest batch; one routed to more is stored with a fan-out marker
	// and FanOut creates its deliveries (see herald.DefersFanOut). 0,
	// the default, keeps every fan-out inline: only a process that runs a
	// fan-out worker may set it.
	FanOutInlineMax int

	// checkpointInterval and walResetFrames tune the checkpointer, and
	// walSizeLimit the size the WAL file is cut back to (see
	// checkpoint.go); tests shorten them.
	checkpointInterval time.Duration
	walResetFrames     int
	walSizeLimit       int64
}

// withDefaults returns cfg with its zero fields set to their defaults.
func (cfg Config) withDefaults() Config {
	if cfg.Synchronous == "" {
		cfg.Synchronous = "FULL"
	}
	cfg.Synchronous = strings.ToUpper(cfg.Synchronous)
	if cfg.ReadConnections <= 0 {
		cfg.ReadConnections = 4
	}
	if cfg.BusyTimeout <= 0 {
		cfg.BusyTimeout = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.checkpointInterval <= 0 {
		cfg.checkpointInterval = defaultCheckpointInterval
	}
	if cfg.walResetFrames <= 0 {
		cfg.walResetFrames = defaultWALResetFrames
	}
	if cfg.walSizeLimit <= 0 {
		cfg.walSizeLimit = defaultWALSizeLimit
	}
	return cfg
}

// Validate reports the first invalid field of a defaulted config.
func (cfg Config) Validate() error {
	switch {
	case cfg.Path == "":
		return errors.New("sqlite: no database path")
	case cfg.Keyring == nil:
		return errors.New("sqlite: no keyring")
	case cfg.Synchronous != "FULL" && cfg.Synchronous != "NORMAL":
		return fmt.Errorf("sqlite: synchronous %q, want FULL or NORMAL", cfg.Synchronous)
	case cfg.FanOutInlineMax < 0:
		return fmt.Errorf("sqlite: fan-out inline maximum %d, want 0 (always inline) or more", cfg.FanOutInlineMax)
	}
	return nil
}

// Store is a herald.Store on one SQLite file. It is safe for concurrent use.
type Store struct {
	w       *sql.DB // the one writer connection
	r       *sql.DB // read-only connections
	keyring *keyring.Keyring
	batch   batchStmts    // CreateMessages statements, prepared on w
	routes  routeCache    // applications' routes; the writer goroutine's
	engine  engineStmts   // dispatcher statements, prepared on w
	group   *groupWriter  // the writer goroutine (see group.go)
	ckpt    *checkpointer // the WAL checkpoint goroutine (see checkpoint.go)
	now     func() time.Time
	path    string // the database file
	owner   *owner // the lock file's lock, with Config.Exclusive
	closed  atomic.Bool
	// fanOutMax is Config.FanOutInlineMax.
	fanOutMax int
}

// Open opens (creating if needed) the database at cfg.Path, applies pending
// migrations and returns a ready store. Concurrent opens of the same file
// are safe: the write lock serialises their migrations. With cfg.Exclusive
// it first takes the database's lock file, before touching the database.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if !cfg.Exclusive {
		return open(ctx, cfg, nil)
	}
	o, err := acquireOwner(cfg.Path, cfg.Now())
	if err != nil {
		return nil, err
	}
	s, err := open(ctx, cfg, o)
	if err != nil {
		o.release()
		return nil, err
	}
	return s, nil
}

// open is Open of a defaulted, valid config; the store keeps o, released
// by Close.
func open(ctx context.Context, cfg Config, o *owner) (*Store, error) {
	if err := privateFiles(cfg.Path, cfg.Logger); err != nil {
		return nil, err
	}
	w, err := sql.Open("sqlite", dsn(cfg, writerConn))
	if err != nil {
		return nil, fmt.Errorf("open sqlite writer: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	s := &Store{w: w, keyring: cfg.Keyring, now: cfg.Now, path: cfg.Path, owner: o, fanOutMax: cfg.FanOutInlineMax}
	s.startWriter()
	if err := s.migrate(ctx, cfg.BusyTimeout); err != nil {
		s.stopWriter()
		w.Close()
		return nil, mapError(err)
	}
	if err := s.prepareBatchStmts(ctx); err != nil {
		s.stopWriter()
		s.batch.close()
		w.Close()
		return nil, mapError(err)
	}
	if err := s.prepareEngineStmts(ctx); err != nil {
		s.stopWriter()
		s.batch.close()
		s.engine.close()
		w.Close()
		return nil, mapError(err)
	}
	// Readers open after the writer has switched the file to WAL and
	// created the schema, so they never race the first write.
	r, err := sql.Open("sqlite", dsn(cfg, readerConn))
	if err != nil {
		s.stopWriter()
		w.Close()
		return nil, fmt.Errorf("open sqlite readers: %w", err)
	}
	r.SetMaxOpenConns(cfg.ReadConnections)
	r.SetMaxIdleConns(cfg.ReadConnections)
	r.SetConnMaxLifetime(0)
	r.SetConnMaxIdleTime(0)
	s.r = r
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	if err := s.startCheckpointer(ctx, cfg); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// connRole is what a connection is opened for; dsn sets it up to match.
type connRole int

const (
	writerConn       connRole = iota // the one writer connection
	readerConn                       // a read-only pool connection
	checkpointerConn                 // the WAL checkpointer's (see checkpoint.go)
)

// dsn returns the driver's data source name for a connection of role.
// Every connection has the writer's durability: a checkpoint syncs the
// database file according to its own connection's synchronous setting.
func dsn(cfg Config, role connRole) string {
	q := url.Values{}
	q.Set("_busy_timeout", strconv.FormatInt(cfg.BusyTimeout.Milliseconds(), 10))
	q.Set("_foreign_keys", "1")
	q.Set("_synchronous", cfg.Synchronous)
	switch role {
	case readerConn:
		q.Set("_query_only", "1")
	case checkpointerConn:
		// Not read-only: a checkpoint writes the database file. It commits
		// nothing, so it never checkpoints automatically either.
		q.Add("_pragma", "wal_autocheckpoint(0)")
	case writerConn:
		q.Set("_journal_mode", "WAL")
		q.Set("_txlock", "immediate")
		// A multi-row insert keeps a statement journal; in memory it costs
		// no file writes.
		q.Add("_pragma", "temp_store(MEMORY)")
		// A 16 MiB page cache keeps the hot index pages of the write path.
		q.Add("_pragma", "cache_size(-16384)")
		// No automatic checkpoint inside the writer's commits: the
		// checkpointer copies the WAL into the database beside the writer
		// (see checkpoint.go).
		q.Add("_pragma", "wal_autocheckpoint(0)")
		// The commit that starts the WAL over cuts a larger file back.
		q.Add("_pragma", "journal_size_limit("+strconv.FormatInt(cfg.walSizeLimit, 10)+")")
	}
	return "file:" + (&url.URL{Path: cfg.Path}).EscapedPath() + "?" + q.Encode()
}

// Ping reports whether both the writer and the readers answer.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.w.PingContext(ctx); err != nil {
		return s.fail("ping writer", err)
	}
	if err := s.r.PingContext(ctx); err != nil {
		return s.fail("ping readers", err)
	}
	return nil
}

// Close closes every connection, then releases the lock file of an
// Exclusive store. Later calls fail with EUNAVAILABLE.
func (s *Store) Close() error {
	s.closed.Store(true)
	cerr := s.stopCheckpointer()
	s.stopWriter()
	s.batch.close()
	s.engine.close()
	var rerr error
	if s.r != nil {
		rerr = s.r.Close()
	}
	return errors.Join(cerr, s.w.Close(), rerr, s.owner.release())
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
