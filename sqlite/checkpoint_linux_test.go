package sqlite_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herald-webhooks/herald/sqlite"
)

// TestCheckpointerLogsFailures: a checkpoint that cannot write the
// database (a genuinely full disk) fails without harm: the failure is
// logged once however often it repeats, reads go on, and once space is
// back the next round copies the WAL, says so, and writes go on.
func TestCheckpointerLogsFailures(t *testing.T) {
	ctx := t.Context()
	dir := mountTmpfs(t, fullFSSize)
	var logs bytes.Buffer // written by this goroutine only: the store's own checkpointer never runs
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	s, path := openWithCheckpoints(t, dir, time.Hour, 1<<30, logger)
	f := newFixture(t, s, randomKey(t))
	m := newMsg(f.app.ID, 0, "")
	m.Payload = bytes.Repeat([]byte("a"), 256<<10) // a checkpoint must grow the database by this much
	mustCreate(t, s, m)
	fillUp(t, filepath.Join(dir, "filler"))
	sqlite.CheckpointRound(s)
	sqlite.CheckpointRound(s)
	out := logs.String()
	if !strings.Contains(out, "sqlite checkpoint failed") || !strings.Contains(out, "full") {
		t.Fatalf("no checkpoint failure logged on a full disk; logs:\n%s", out)
	}
	if n := strings.Count(out, "sqlite checkpoint failed"); n != 1 {
		t.Errorf("two failed rounds in a row logged %d warnings, want 1:\n%s", n, out)
	}
	if st := walStats(t, s); st.Failures != 2 {
		t.Errorf("WALStats after two failed rounds: %+v, want 2 failures", st)
	}
	if _, err := s.GetMessage(ctx, f.app.ID, m.ID); err != nil {
		t.Fatalf("read after a failed checkpoint: %v", err)
	}
	if err := os.Remove(filepath.Join(dir, "filler")); err != nil {
		t.Fatal(err)
	}
	logs.Reset()
	sqlite.CheckpointRound(s)
	if out := logs.String(); !strings.Contains(out, "sqlite checkpoints succeed again") || strings.Contains(out, "failed;") {
		t.Errorf("the round after space came back logged:\n%s", out)
	}
	if db := fileSize(t, path); db < 256<<10 {
		t.Errorf("database file is %d bytes after the checkpoint: the payload was not copied", db)
	}
	mustCreate(t, s, newMsg(f.app.ID, 1, ""))
}
