package sqlite_test

import (
	"database/sql"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/sqlite"
)

// openWithCheckpoints opens a store on a fresh file whose checkpointer
// runs every interval and rewinds the WAL from resetFrames frames.
func openWithCheckpoints(t *testing.T, dir string, interval time.Duration, resetFrames int, logger *slog.Logger) (*sqlite.Store, string) {
	t.Helper()
	path := filepath.Join(dir, "herald.db")
	cfg := sqlite.WithCheckpoints(sqlite.Config{Path: path, Keyring: testKeyring(t), Logger: logger}, interval, resetFrames)
	s, err := sqlite.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// createEach stores n messages, one commit each, and returns their IDs.
func createEach(t *testing.T, s *sqlite.Store, appID string, from, n int) []string {
	t.Helper()
	var ids []string
	for i := from; i < from+n; i++ {
		m := newMsg(appID, i, "")
		if _, err := s.CreateMessages(t.Context(), []*herald.Message{m}, herald.Lease{}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
	}
	return ids
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Size()
}

// TestCheckpointRewindsWAL: once the WAL holds the reset size, a
// checkpoint copies it into the database and the next write starts the WAL
// over instead of growing it.
func TestCheckpointRewindsWAL(t *testing.T) {
	ctx := t.Context()
	s, path := openWithCheckpoints(t, t.TempDir(), time.Hour, 8, nil)
	f := newFixture(t, s, randomKey(t))
	ids := createEach(t, s, f.app.ID, 0, 40)
	dbSize := fileSize(t, path)
	if err := sqlite.Checkpoint(ctx, s); err != nil {
		t.Fatal(err)
	}
	if got := fileSize(t, path); got <= dbSize {
		t.Errorf("database file did not grow (%d then %d bytes): nothing was checkpointed", dbSize, got)
	}
	walSize := fileSize(t, path+"-wal")
	// Fewer commits than the WAL holds: rewound, they fit in it.
	ids = append(ids, createEach(t, s, f.app.ID, 40, 10)...)
	if got := fileSize(t, path+"-wal"); got != walSize {
		t.Errorf("WAL grew from %d to %d bytes after a checkpoint: it was not rewound", walSize, got)
	}
	for _, id := range ids {
		if _, err := s.GetMessage(ctx, f.app.ID, id); err != nil {
			t.Fatalf("message %s: %v", id, err)
		}
	}
}

// TestCheckpointerKeepsWALBounded: the checkpointer's own goroutine copies
// the WAL into the database and rewinds it while writes go on. Beside a
// writer that commits without pause, a checkpoint hardly ever ends with
// every frame copied when a write begins, and the WAL would never be
// rewound (it grew by all 400 commits, 19 MB, until the checkpointer
// finished each copy on the writer's connection).
func TestCheckpointerKeepsWALBounded(t *testing.T) {
	s, path := openWithCheckpoints(t, t.TempDir(), time.Millisecond, 16, nil)
	f := newFixture(t, s, randomKey(t))
	before := fileSize(t, path+"-wal")
	const n = 400
	createEach(t, s, f.app.ID, 0, n)
	// Every commit adds several pages (the message, the delivery and their
	// indexes): never rewound, the WAL would hold all of them.
	if wal := fileSize(t, path+"-wal"); wal-before > n*4096*2 {
		t.Errorf("WAL grew by %d bytes over %d commits: not rewound", wal-before, n)
	}
	if db := fileSize(t, path); db < 64<<10 {
		t.Errorf("database file is %d bytes: the checkpointer copied nothing", db)
	}
}

func walStats(t *testing.T, s *sqlite.Store) sqlite.WALStats {
	t.Helper()
	st, err := s.WALStats()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestWALStats: WALStats reports the WAL file's and the database file's
// sizes and counts the checkpoints, those on the writer's connection apart.
func TestWALStats(t *testing.T) {
	ctx := t.Context()
	s, path := openWithCheckpoints(t, t.TempDir(), time.Hour, 8, nil)
	f := newFixture(t, s, randomKey(t))
	if st := walStats(t, s); st.Checkpoints != 0 || st.WriterCheckpoints != 0 || st.Failures != 0 {
		t.Fatalf("WALStats of a new store: %+v", st)
	}
	createEach(t, s, f.app.ID, 0, 40)
	if err := sqlite.Checkpoint(ctx, s); err != nil {
		t.Fatal(err)
	}
	st := walStats(t, s)
	if st.Bytes != fileSize(t, path+"-wal") || st.Bytes == 0 {
		t.Errorf("WALStats says %d bytes, the WAL file has %d", st.Bytes, fileSize(t, path+"-wal"))
	}
	if st.DatabaseBytes != fileSize(t, path) || st.DatabaseBytes == 0 {
		t.Errorf("WALStats says the database has %d bytes, its file %d", st.DatabaseBytes, fileSize(t, path))
	}
	// 40 commits hold more than the 8 frames from which the WAL is
	// rewound: a checkpoint on the checkpointer's connection, then one on
	// the writer's.
	if st.Checkpoints != 1 || st.WriterCheckpoints != 1 || st.Failures != 0 || st.UncopiedFrames != 0 {
		t.Errorf("WALStats after one checkpoint of a full WAL: %+v", st)
	}
	// Nothing committed since: the next round checkpoints nothing.
	if err := sqlite.Checkpoint(ctx, s); err != nil {
		t.Fatal(err)
	}
	if got := walStats(t, s); got.Checkpoints != 1 {
		t.Errorf("a round without commits checkpointed: %+v", got)
	}
}

// TestWALStatsDatabaseGone: a database file that cannot be sized (removed
// under the running store) is an error naming it, not a size of 0.
func TestWALStatsDatabaseGone(t *testing.T) {
	s, path := openWithCheckpoints(t, t.TempDir(), time.Hour, 8, nil)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WALStats(); err == nil || !strings.Contains(err.Error(), "size of the database") {
		t.Errorf("WALStats of a removed database file: error %v, want one about the database's size", err)
	}
}

// heldBack opens a store whose checkpointer runs only by hand, commits
// five messages and checkpoints them, then starts a reader's snapshot (as
// a backup or Litestream would), commits five more and checkpoints: the
// WAL keeps frames the reader still needs, counted as uncopied. It returns
// the store, its path, its fixture and the reader's transaction.
func heldBack(t *testing.T) (*sqlite.Store, string, fixture, *sql.Tx) {
	t.Helper()
	ctx := t.Context()
	s, path := openWithCheckpoints(t, t.TempDir(), time.Hour, 1<<30, nil)
	f := newFixture(t, s, randomKey(t))
	createEach(t, s, f.app.ID, 0, 5)
	if err := sqlite.Checkpoint(ctx, s); err != nil {
		t.Fatal(err)
	}
	reader, messages := holdSnapshot(t, path)
	if messages != 5 {
		t.Fatalf("reader sees %d messages, want 5", messages)
	}
	createEach(t, s, f.app.ID, 5, 5)
	if err := sqlite.Checkpoint(ctx, s); err != nil {
		t.Fatal(err)
	}
	if st := walStats(t, s); st.UncopiedFrames == 0 {
		t.Fatalf("a checkpoint beside a reader's older snapshot copied everything: %+v", st)
	}
	return s, path, f, reader
}

// TestCheckpointHeldBackByReader: frames a reader's snapshot still needs
// stay in the WAL and are counted as uncopied; once the reader ends, the
// next round copies them even though nothing was committed meanwhile.
func TestCheckpointHeldBackByReader(t *testing.T) {
	ctx := t.Context()
	s, _, _, reader := heldBack(t)
	if err := reader.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := sqlite.Checkpoint(ctx, s); err != nil {
		t.Fatal(err)
	}
	if st := walStats(t, s); st.UncopiedFrames != 0 {
		t.Errorf("after the reader ended, the next round left %d frames uncopied: %+v", st.UncopiedFrames, st)
	}
}

// TestBusyCheckpointKeepsStats: while another connection runs a checkpoint
// (as Litestream does), the checkpointer's PASSIVE one reports busy and
// copies nothing; the round is neither counted as a checkpoint nor as a
// failure, and the uncopied-frames gauge keeps the last checkpoint's count
// (a busy checkpoint reports -1 frames, which read as 0 would hide a
// reader that still holds frames back).
func TestBusyCheckpointKeepsStats(t *testing.T) {
	ctx := t.Context()
	s, path, f, reader := heldBack(t)
	before := walStats(t, s)          // frames held back by the reader
	createEach(t, s, f.app.ID, 10, 1) // something new to copy

	// Another connection takes the checkpoint lock and keeps it: a FULL
	// checkpoint holds it while it waits for a writer to finish.
	open := func() *sql.DB {
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
		if err != nil {
			t.Fatal(err)
		}
		db.SetMaxOpenConns(1)
		t.Cleanup(func() { db.Close() })
		return db
	}
	writer, err := open().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { writer.Rollback() })
	if _, err := writer.ExecContext(ctx, `UPDATE route_version SET v = v`); err != nil {
		t.Fatal(err)
	}
	full := make(chan error, 1)
	other := open()
	go func() {
		// While the probe below holds the lock for a moment, the FULL
		// checkpoint finds it taken and returns at once (log -1): try again.
		for {
			var busy, frames, copied int
			err := other.QueryRowContext(ctx, `PRAGMA wal_checkpoint(FULL)`).Scan(&busy, &frames, &copied)
			if err != nil || frames != -1 || ctx.Err() != nil {
				full <- err
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	probe := open()
	for deadline := time.Now().Add(10 * time.Second); ; {
		var busy, frames, copied int
		if err := probe.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied); err != nil {
			t.Fatal(err)
		}
		if busy != 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the other connection's checkpoint never held the lock")
		}
		time.Sleep(5 * time.Millisecond)
	}

	sqlite.CheckpointRound(s)
	if got := walStats(t, s); got.Checkpoints != before.Checkpoints || got.Failures != before.Failures ||
		got.UncopiedFrames != before.UncopiedFrames {
		t.Errorf("after a busy checkpoint: %+v, want the counters and gauge of before: %+v", got, before)
	}

	// The FULL checkpoint goes on once the writer is done, and ends once
	// the reader is too.
	if err := writer.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := reader.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := <-full; err != nil {
		t.Fatal(err)
	}
	sqlite.CheckpointRound(s)
	if got := walStats(t, s); got.Checkpoints != before.Checkpoints+1 || got.UncopiedFrames != 0 {
		t.Errorf("once the lock is free the next round runs and finds nothing left uncopied: %+v (before: %+v)", got, before)
	}
}

// TestWALFileCutBack: a WAL file that grew while a reader held checkpoints
// back is cut back to the size limit when the WAL starts over, so the disk
// space (and the WAL size metric, which alerts read) comes back without a
// restart.
func TestWALFileCutBack(t *testing.T) {
	ctx := t.Context()
	const limit = 64 << 10
	path := filepath.Join(t.TempDir(), "herald.db")
	cfg := sqlite.WithCheckpoints(sqlite.Config{Path: path, Keyring: testKeyring(t)}, time.Hour, 8)
	s, err := sqlite.Open(ctx, sqlite.WithWALSizeLimit(cfg, limit))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	f := newFixture(t, s, randomKey(t))
	reader, _ := holdSnapshot(t, path)
	createEach(t, s, f.app.ID, 0, 100)
	if err := sqlite.Checkpoint(ctx, s); err != nil {
		t.Fatal(err)
	}
	grown := walStats(t, s).Bytes
	if grown <= 4*limit {
		t.Fatalf("the WAL grew to %d bytes only beside the reader; the test needs more", grown)
	}
	if err := reader.Rollback(); err != nil {
		t.Fatal(err)
	}
	if err := sqlite.Checkpoint(ctx, s); err != nil { // copies it all, then on the writer's connection
		t.Fatal(err)
	}
	createEach(t, s, f.app.ID, 100, 1) // starts the WAL over
	if got := walStats(t, s).Bytes; got > limit {
		t.Errorf("the WAL file is %d bytes after starting over (it had grown to %d), want at most %d", got, grown, limit)
	}
}

// holdSnapshot opens a read transaction of its own on the database at path
// and reads from it, so that it holds a snapshot until it ends (rolled back
// when the test ends at the latest); it returns the transaction and the
// number of messages it sees.
func holdSnapshot(t *testing.T, path string) (*sql.Tx, int) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	tx, err := db.BeginTx(t.Context(), &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback() })
	var n int
	if err := tx.QueryRowContext(t.Context(), `SELECT count(*) FROM message`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return tx, n
}
