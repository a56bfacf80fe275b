package sqlite_test

import (
	"log/slog"
	"os"
	"path/filepath"
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
