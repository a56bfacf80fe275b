package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herald-webhooks/herald/sqlite"
)

// runHerald runs the herald binary (this test binary standing in) with
// args to its end and returns its exit code and combined output.
func runHerald(t *testing.T, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), "HERALD_TEST_MAIN=1")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &exit):
		return exit.ExitCode(), string(out)
	default:
		t.Fatalf("herald %v: %v\n%s", args, err, out)
		return 0, ""
	}
}

// TestSecondServerRefused: while one herald serve owns a SQLite database,
// a second herald serve on the same file exits non-zero without listening,
// naming the owner's process ID, and so does herald migrate; herald backup
// works beside it. Once the owner has stopped, the next server starts.
func TestSecondServerRefused(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "herald.db")
	p := startHerald(t, "--db", db)
	token := readToken(t, dir)
	if code, body := request(t, "POST", p.url+"/api/v1/app", token, map[string]any{"name": "Acme", "uid": "acme"}); code != http.StatusCreated {
		t.Fatalf("create app: %d %s", code, body)
	}
	holder := fmt.Sprintf("process %d on host", p.cmd.Process.Pid)
	if b, err := os.ReadFile(sqlite.LockPath(db)); err != nil || !strings.Contains(string(b), fmt.Sprintf("pid=%d ", p.cmd.Process.Pid)) {
		t.Errorf("lock file holds %q (%v), want the server's process ID", b, err)
	}

	code, out := runHerald(t, "serve", "--listen", "127.0.0.1:0", "--db", db)
	t.Logf("second herald serve exited with %d:\n%s", code, out)
	if code == 0 || !strings.Contains(out, holder) || !strings.Contains(out, "one Herald server alone") {
		t.Errorf("second herald serve = exit %d, want non-zero with a message naming %q", code, holder)
	}
	if strings.Contains(out, "Herald is listening") {
		t.Error("the second herald serve listened")
	}
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"migrate", "--db", db}, &stdout, &stderr); code == 0 || !strings.Contains(stderr.String(), holder) {
		t.Errorf("herald migrate beside the server = exit %d, %q; want a refusal naming %q", code, stderr.String(), holder)
	}

	backup := filepath.Join(t.TempDir(), "backup.db")
	if code, out := runHerald(t, "backup", "--db", db, backup); code != 0 {
		t.Fatalf("herald backup while serving = exit %d:\n%s", code, out)
	}
	copied := openDataDir(t, dir, backup)
	if _, err := copied.GetApplication(context.Background(), "acme"); err != nil {
		t.Errorf("the backup taken while serving lacks the application: %v", err)
	}
	copied.Close()
	// The server still serves after the refused start.
	if code, _ := request(t, "GET", p.url+"/api/v1/app/acme", token, nil); code != http.StatusOK {
		t.Errorf("get app after the refused second start = %d, want 200", code)
	}

	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := <-p.done; err != nil {
		t.Fatalf("herald exited with %v after SIGINT:\n%s", err, p.stderr)
	}
	startHerald(t, "--db", db) // the lock went with the first server
}
