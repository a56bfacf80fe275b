package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// WAL checkpoints. SQLite's automatic checkpoint runs inside the commit
// that crosses its threshold, on the committing connection: here the
// writer's. Every 10,000 WAL frames, one commit spent 5–8 ms more copying
// pages into the database file and syncing it, and every ingest batch,
// outcome batch and claim queued behind it waited as long: at 3,600
// messages/s one to one, once every 250 ms (BENCHMARKS.md).
//
// So the writer connection runs with the automatic checkpoint off, and a
// goroutine with a connection of its own checkpoints instead: PASSIVE
// checkpoints, which copy the committed frames into the database while the
// writer goes on appending new ones, never taking the write lock. A WAL
// file is only rewound, its next frames written from its start again,
// when a write transaction begins with every frame copied, and beside a
// busy writer a checkpoint hardly ever ends at such a moment. So once the
// WAL holds 4,096 frames (16 MiB), the checkpointer runs one more PASSIVE
// checkpoint on the writer connection itself, between two of the writer's
// transactions: it copies only what was committed since the last one, and
// the next write rewinds the WAL. Before that, the checkpointer syncs the
// database file itself, so that the writer's checkpoint, which is the one
// to sync it, finds little to flush. The WAL file keeps to that size plus
// what is committed in one checkpoint interval, unless a long read (a
// backup, Litestream) holds the copy back.

const (
	// defaultCheckpointInterval is how often the checkpointer copies what
	// was committed since its last checkpoint. A page rewritten by many
	// commits in between (an index's last page) is copied once.
	defaultCheckpointInterval = 250 * time.Millisecond
	// defaultWALResetFrames is the WAL size, in frames (pages), from which
	// the checkpointer rewinds the WAL: 16 MiB of 4 KiB pages. The file
	// grows beyond it by what is committed in one interval.
	defaultWALResetFrames = 4096
	// defaultWALSizeLimit is the size the writer cuts the WAL file back to
	// when the WAL starts over (journal_size_limit): a file that grew while
	// a reader held checkpoints back gives the space back, while one that
	// keeps to its usual size is never truncated and regrown.
	defaultWALSizeLimit = 64 << 20
)

// checkpointer owns the checkpoint goroutine and its connection.
type checkpointer struct {
	db          *sql.DB
	path        string // the database file
	log         *slog.Logger
	ctx         context.Context // ends at stopCheckpointer, cutting a checkpoint short
	cancel      context.CancelFunc
	stop        sync.Once
	wg          sync.WaitGroup
	resetFrames int
	// failingSince is when checkpoints began to fail (zero while they
	// succeed) and warned when that was last logged; the goroutine's own.
	failingSince, warned time.Time
	// lastVersion is PRAGMA data_version at the last checkpoint that
	// copied every frame; it changes when another connection commits, and
	// while it does not there is nothing to copy. The goroutine's own.
	lastVersion int64
	// What WALStats reports; written by whoever runs a checkpoint.
	checkpoints, writerCheckpoints, failures atomic.Uint64
	uncopied                                 atomic.Int64
}

// WALStats is the state of the write-ahead log and of its checkpoints, for
// monitoring: a WAL that keeps growing means checkpoints fail (Failures)
// or a reader holds them back (UncopiedFrames).
type WALStats struct {
	// Bytes is the size of the WAL file; 0 when there is none.
	Bytes int64
	// DatabaseBytes is the size of the database file (without the WAL).
	DatabaseBytes int64
	// Checkpoints counts the checkpointer's checkpoints that ran (not those
	// another checkpoint kept busy), WriterCheckpoints those it ran on the
	// writer connection so the WAL could start over.
	Checkpoints, WriterCheckpoints uint64
	// Failures counts the checkpointer's rounds that failed.
	Failures uint64
	// UncopiedFrames is what the last checkpoint that ran left in the WAL:
	// frames a reader's snapshot (a backup, Litestream, a long query) still
	// needed.
	UncopiedFrames int64
}

// WALStats returns the WAL's size and the checkpointer's counters. It
// stats the WAL file and queries nothing.
func (s *Store) WALStats() (WALStats, error) {
	var st WALStats
	if c := s.ckpt; c != nil {
		st.Checkpoints = c.checkpoints.Load()
		st.WriterCheckpoints = c.writerCheckpoints.Load()
		st.Failures = c.failures.Load()
		st.UncopiedFrames = c.uncopied.Load()
	}
	info, err := os.Stat(s.path + "-wal")
	switch {
	case err == nil:
		st.Bytes = info.Size()
	case !errors.Is(err, fs.ErrNotExist):
		return st, fmt.Errorf("size of the WAL: %w", err)
	}
	if info, err = os.Stat(s.path); err != nil {
		return st, fmt.Errorf("size of the database: %w", err)
	}
	st.DatabaseBytes = info.Size()
	return st, nil
}

// checkpointStats is one PRAGMA wal_checkpoint's result.
type checkpointStats struct {
	busy   bool // another checkpoint was running, or the WAL could not be rewound
	frames int  // frames in the WAL
	copied int  // frames copied into the database, this time or before
}

// startCheckpointer opens the checkpointer's connection and starts its
// goroutine; stopCheckpointer ends it.
func (s *Store) startCheckpointer(ctx context.Context, cfg Config) error {
	db, err := sql.Open("sqlite", dsn(cfg, checkpointerConn))
	if err != nil {
		return fmt.Errorf("open sqlite checkpointer: %w", err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return fmt.Errorf("open sqlite checkpointer: %w", err)
	}
	c := &checkpointer{db: db, path: cfg.Path, log: cfg.Logger, resetFrames: cfg.walResetFrames, lastVersion: -1}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	s.ckpt = c
	c.wg.Go(func() {
		t := time.NewTicker(cfg.checkpointInterval)
		defer t.Stop()
		for {
			select {
			case <-c.ctx.Done():
				return
			case <-t.C:
			}
			s.checkpointRound(c)
		}
	})
	return nil
}

// checkpointWarnEvery is how often a checkpoint failure that lasts is
// logged again.
const checkpointWarnEvery = time.Minute

// checkpointRound runs one checkpoint. A failure costs only disk space: the
// WAL grows until a later checkpoint succeeds, and nothing committed is at
// risk. It is logged when checkpoints start failing, again every minute
// while they keep failing (a full disk would otherwise warn four times a
// second), and once they succeed again.
func (s *Store) checkpointRound(c *checkpointer) {
	err := s.checkpoint(c.ctx, c)
	if c.ctx.Err() != nil || s.closed.Load() {
		return
	}
	if err != nil {
		c.failures.Add(1)
	}
	now := time.Now()
	switch {
	case err != nil && (c.failingSince.IsZero() || now.Sub(c.warned) >= checkpointWarnEvery):
		if c.failingSince.IsZero() {
			c.failingSince = now
		}
		c.warned = now
		c.log.Warn("sqlite checkpoint failed; the write-ahead log grows until one succeeds",
			"err", err, "failing_since", c.failingSince)
	case err == nil && !c.failingSince.IsZero():
		c.log.Info("sqlite checkpoints succeed again", "failed_for", now.Sub(c.failingSince).Round(time.Second))
		c.failingSince = time.Time{}
	}
}

// stopCheckpointer stops the checkpoint goroutine and closes its
// connection.
func (s *Store) stopCheckpointer() error {
	c := s.ckpt
	if c == nil {
		return nil
	}
	var err error
	c.stop.Do(func() {
		c.cancel()
		c.wg.Wait()
		err = c.db.Close()
	})
	return err
}

// checkpoint copies what was committed since the last checkpoint into the
// database and, once the WAL has grown to resetFrames frames and nothing
// held the copy back, finishes it on the writer connection so that the
// next write rewinds the WAL.
func (s *Store) checkpoint(ctx context.Context, c *checkpointer) error {
	var version int64
	if err := c.db.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&version); err != nil {
		return fmt.Errorf("read data version: %w", err)
	}
	if version == c.lastVersion {
		return nil
	}
	st, err := walCheckpoint(ctx, c.db)
	if err != nil {
		return err
	}
	if !st.busy && st.frames >= 0 {
		// A busy checkpoint (another one, such as Litestream's, held the
		// lock) ran nothing and reports no frames: keep the last count.
		c.checkpoints.Add(1)
		c.uncopied.Store(int64(st.frames - st.copied))
	}
	if st.busy || st.copied < st.frames {
		// Another checkpoint ran, or a reader's snapshot held frames back:
		// try again at the next tick even if nothing is committed meanwhile.
		return nil
	}
	c.lastVersion = version
	if st.frames < c.resetFrames {
		return nil
	}
	// SQLite syncs the database file only when a checkpoint reaches the
	// end of the WAL, which beside a busy writer the one above seldom
	// does: the one below would then flush every page copied since the
	// last sync, megabytes, on the writer's path. Flushing them here first
	// leaves it only the pages it copies itself.
	if err := syncFile(c.path); err != nil {
		return fmt.Errorf("sync the database file: %w", err)
	}
	// On the writer's one connection, so between two of its transactions:
	// no frame is added while this copies the last ones and syncs the
	// database file.
	if _, err := walCheckpoint(ctx, s.w); err != nil {
		return err
	}
	c.writerCheckpoints.Add(1)
	return nil
}

// walCheckpoint runs a PASSIVE checkpoint on one of db's connections.
func walCheckpoint(ctx context.Context, db *sql.DB) (checkpointStats, error) {
	var (
		st   checkpointStats
		busy int
	)
	err := db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &st.frames, &st.copied)
	if err != nil {
		return checkpointStats{}, fmt.Errorf("checkpoint: %w", mapError(err))
	}
	st.busy = busy != 0
	return st, nil
}
