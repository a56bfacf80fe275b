package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// logLines returns the JSON log lines of a herald process whose msg
// starts with prefix.
func logLines(t *testing.T, p *process, prefix string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(p.stderr.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil {
			if msg, _ := rec["msg"].(string); strings.HasPrefix(msg, prefix) {
				out = append(out, rec)
			}
		}
	}
	return out
}

// TestBackupIntoMissingFolder: herald backup says that the folder is
// missing (or is a file), exits non-zero and writes nothing.
func TestBackupIntoMissingFolder(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "herald.db")
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"migrate", "--db", db}, &out, &errOut); code != 0 {
		t.Fatalf("migrate = %d: %s", code, errOut.String())
	}
	missing := filepath.Join(dir, "no-such-folder")
	notDir := filepath.Join(dir, "a-file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ file, want string }{
		{filepath.Join(missing, "b.db"), "backup: the folder " + missing + " does not exist: create it first"},
		{filepath.Join(notDir, "b.db"), "backup: " + notDir + " is not a folder"},
	} {
		out.Reset()
		errOut.Reset()
		code := run(context.Background(), []string{"backup", "--db", db, c.file}, &out, &errOut)
		if code != 1 || !strings.Contains(errOut.String(), c.want) || strings.Contains(errOut.String(), "no such file") {
			t.Errorf("backup to %s = %d: %q, want %q", c.file, code, errOut.String(), c.want)
		}
		if out.Len() != 0 {
			t.Errorf("backup to %s printed %q", c.file, out.String())
		}
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("the missing folder was created")
	}
}

// TestRestoreTellsOfTheAdminToken: the admin token is not in a backup.
// herald backup and herald restore say so, and herald serve warns when it
// generates a new token beside a database that already holds
// applications; on a fresh database it only says where the token is.
func TestRestoreTellsOfTheAdminToken(t *testing.T) {
	if testing.Short() {
		t.Skip("starts herald processes")
	}
	dir := t.TempDir()
	p := startHerald(t, "--db", filepath.Join(dir, "herald.db"))
	if got := logLines(t, p, "generated "); len(got) != 2 || got[1]["msg"] != "generated an admin token" ||
		got[1]["level"] != "INFO" || got[1]["file"] != filepath.Join(dir, "admin-token") {
		t.Fatalf("first start logged %v\n%s", got, p.stderr)
	}
	token := readToken(t, dir)
	if code, body := request(t, "POST", p.url+"/api/v1/app", token, map[string]any{"name": "Acme", "uid": "acme"}); code != http.StatusCreated {
		t.Fatalf("create app = %d %s", code, body)
	}
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-p.done

	backup := filepath.Join(t.TempDir(), "b.db")
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"backup", "--db", filepath.Join(dir, "herald.db"), backup}, &out, &errOut); code != 0 {
		t.Fatalf("backup = %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "Nor does it hold the admin token: keep a copy of "+filepath.Join(dir, "admin-token")) {
		t.Errorf("backup does not remind of the admin token:\n%s", out.String())
	}

	// Restored without the token file: restore says serve will make one,
	// and serve warns as it does.
	dir2 := t.TempDir()
	out.Reset()
	if code := run(context.Background(), []string{"restore", "--data-dir", dir2, backup}, &out, &errOut); code != 0 {
		t.Fatalf("restore = %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "The backup does not hold the admin token: copy the old admin-token file to "+filepath.Join(dir2, "admin-token")) ||
		!strings.Contains(out.String(), "herald serve generates a new token into") {
		t.Errorf("restore without a token file says:\n%s", out.String())
	}
	key, err := os.ReadFile(filepath.Join(dir, "encryption-key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir2, "encryption-key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	p2 := startHerald(t, "--db", filepath.Join(dir2, "herald.db"))
	got := logLines(t, p2, "generated ")
	if len(got) != 1 || got[0]["level"] != "WARN" || !strings.Contains(got[0]["msg"].(string), "restored from a backup?") ||
		got[0]["file"] != filepath.Join(dir2, "admin-token") {
		t.Errorf("start on the restored database logged %v\n%s", got, p2.stderr)
	}
	token2 := readToken(t, dir2)
	if code, _ := request(t, "GET", p2.url+"/api/v1/app/acme", token, nil); code != http.StatusUnauthorized {
		t.Errorf("the old admin token on the restored Herald = %d", code)
	}
	if code, body := request(t, "GET", p2.url+"/api/v1/app/acme", token2, nil); code != http.StatusOK {
		t.Errorf("the new admin token = %d %s", code, body)
	}

	// Restored beside the old token file: restore says it is used.
	dir3 := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir3, "admin-token"), []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if code := run(context.Background(), []string{"restore", "--data-dir", dir3, backup}, &out, &errOut); code != 0 {
		t.Fatalf("restore = %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "Herald will accept the one in "+filepath.Join(dir3, "admin-token")) {
		t.Errorf("restore beside a token file says:\n%s", out.String())
	}
}
