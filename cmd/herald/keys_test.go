package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// keys runs `herald keys args…` on db and returns its exit code and output.
func keys(t *testing.T, db string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), append(append([]string{"keys"}, args...), "--db", db, "--log-format", "text"), &out, &errOut)
	return code, out.String(), errOut.String()
}

var keyID = regexp.MustCompile(`tok_[0-9A-Za-z]+`)

// TestKeysCommands: herald keys create, list and revoke work on the
// database of a running server, as an operator locked out of the API would
// use them: the printed key works against the server at once, within its
// scope, and a revocation by the command ends it at its next request.
func TestKeysCommands(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "herald.db")
	p := startHerald(t, "--db", db)
	token := readToken(t, dir)
	code, body := request(t, "POST", p.url+"/api/v1/app", token, map[string]any{"name": "Acme", "uid": "acme"})
	if code != http.StatusCreated {
		t.Fatalf("create app = %d %s", code, body)
	}
	var app struct{ ID string }
	if err := json.Unmarshal(body, &app); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := keys(t, db, "create", "--name", "break glass", "--scope", "admin")
	if code != 0 {
		t.Fatalf("keys create = %d: %s", code, errOut)
	}
	admin := strings.TrimSpace(out)
	adminID := keyID.FindString(errOut)
	if !strings.HasPrefix(admin, "hkey_") || strings.Contains(out, "\n\n") || adminID == "" || !strings.Contains(errOut, "Authorization: Bearer") {
		t.Fatalf("keys create printed %q on stdout and %q on stderr: want the key alone, and its ID and use", out, errOut)
	}
	if strings.Contains(errOut, admin) {
		t.Error("the key is printed on stderr too")
	}
	if code, body := request(t, "GET", p.url+"/api/v1/app", admin, nil); code != http.StatusOK {
		t.Fatalf("the created admin key against the server: %d %s", code, body)
	}

	code, out, errOut = keys(t, db, "create", "--name", "support", "--scope", "app:acme", "--read-only", "--expires-in", "720h")
	if code != 0 {
		t.Fatalf("keys create app key = %d: %s", code, errOut)
	}
	support := strings.TrimSpace(out)
	supportID := keyID.FindString(errOut)
	if !strings.Contains(errOut, "app:"+app.ID) || !strings.Contains(errOut, "read-only") || !strings.Contains(errOut, "expires ") {
		t.Errorf("keys create app key said %q", errOut)
	}
	for _, c := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/api/v1/app/acme/endpoint", http.StatusOK},
		{"POST", "/api/v1/app/acme/endpoint", http.StatusForbidden},
		{"GET", "/api/v1/app", http.StatusForbidden},
		{"GET", "/api/v1/auth/api-key", http.StatusForbidden},
	} {
		var in any
		if c.method == "POST" {
			in = map[string]any{"url": "https://example.com/hook"}
		}
		if code, body := request(t, c.method, p.url+c.path, support, in); code != c.want {
			t.Errorf("support key %s %s = %d %s, want %d", c.method, c.path, code, body, c.want)
		}
	}

	code, out, errOut = keys(t, db, "list")
	if code != 0 {
		t.Fatalf("keys list = %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "ID") || !strings.HasPrefix(lines[1], supportID) || !strings.HasPrefix(lines[2], adminID) {
		t.Fatalf("keys list, newest first:\n%s", out)
	}
	for _, want := range []string{"break glass", "support", "app:" + app.ID, "read-only", "read-write", "never"} {
		if !strings.Contains(out, want) {
			t.Errorf("keys list does not show %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, admin) || strings.Contains(out, support) {
		t.Errorf("keys list shows a secret:\n%s", out)
	}

	// Revoked by the command, in another process than the server: the
	// server refuses the key at its next request.
	code, out, errOut = keys(t, db, "revoke", adminID)
	if code != 0 || !strings.Contains(out, adminID) {
		t.Fatalf("keys revoke = %d %q %q", code, out, errOut)
	}
	if code, body := request(t, "GET", p.url+"/api/v1/app", admin, nil); code != http.StatusUnauthorized {
		t.Fatalf("revoked key: %d %s, want 401", code, body)
	}
	if code, _ := request(t, "GET", p.url+"/api/v1/app/acme/endpoint", support, nil); code != http.StatusOK {
		t.Errorf("revoking one key ended another: %d", code)
	}
	_, out, _ = keys(t, db, "list")
	if strings.Contains(out, adminID) {
		t.Errorf("keys list shows the revoked key:\n%s", out)
	}
	_, out, _ = keys(t, db, "list", "--all")
	if !strings.Contains(out, adminID) || strings.Count(out, "\n") != 3 {
		t.Errorf("keys list --all does not show the revoked key:\n%s", out)
	}

	// A key the API made is the command's to list and revoke too.
	var made struct{ ID, Key string }
	code, body = request(t, "POST", p.url+"/api/v1/auth/api-key", token, map[string]any{"name": "from the API", "scope": "admin"})
	if code != http.StatusCreated || json.Unmarshal(body, &made) != nil {
		t.Fatalf("create a key through the API: %d %s", code, body)
	}
	if code, out, errOut := keys(t, db, "revoke", made.ID); code != 0 {
		t.Fatalf("keys revoke of an API-made key = %d %q %q", code, out, errOut)
	}
	if code, _ := request(t, "GET", p.url+"/api/v1/app", made.Key, nil); code != http.StatusUnauthorized {
		t.Errorf("API-made key revoked by the command: %d, want 401", code)
	}

	// The commands' changes are in the audit log, as the operating-system
	// user who ran them, beside the API's.
	code, body = request(t, "GET", p.url+"/api/v1/audit-log?limit=50", token, nil)
	var audit struct {
		Data []struct{ Action, ResourceID, TokenKind, TokenName, Route string }
	}
	if code != http.StatusOK || json.Unmarshal(body, &audit) != nil {
		t.Fatalf("audit log: %d %s", code, body)
	}
	var cli []string
	for _, r := range audit.Data {
		if r.TokenKind == "cli" && strings.HasPrefix(r.TokenName, "cli:") {
			cli = append(cli, r.Route+" "+r.Action+" "+r.ResourceID)
		}
	}
	want := []string{"keys revoke token.revoke " + made.ID, "keys revoke token.revoke " + adminID,
		"keys create token.create " + supportID, "keys create token.create " + adminID}
	if !slices.Equal(cli, want) {
		t.Errorf("audit records of the commands, newest first:\n%q\nwant\n%q", cli, want)
	}
}

// TestKeysCommandErrors: an unknown ID, a bad scope or name, and a
// database that does not exist are clear errors that change nothing.
func TestKeysCommandErrors(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "herald.db")
	if code, _, errOut := keys(t, db, "list"); code == 0 || !strings.Contains(errOut, "does not exist") {
		t.Errorf("keys list on a missing database = %d %q", code, errOut)
	}
	if _, err := os.Stat(db); !os.IsNotExist(err) {
		t.Fatalf("keys list created the database: %v", err)
	}
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"migrate", "--db", db, "--log-format", "text"}, &out, &errOut); code != 0 {
		t.Fatalf("migrate = %d: %s", code, errOut.String())
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"revoke", "tok_2VZ7Qm3k4wQpXxYz1"}, `no API key has ID "tok_2VZ7Qm3k4wQpXxYz1"`},
		{[]string{"create", "--name", "x", "--scope", "app:nope"}, "no application"},
		{[]string{"create", "--name", "x", "--scope", "root"}, "--scope"},
		{[]string{"create", "--name", "x", "--scope", "app:app_:operational"}, "no application"},
		{[]string{"create", "--name", "", "--scope", "admin"}, "--name"},
		{[]string{"create", "--name", "a\tb", "--scope", "admin"}, "--name"},
		{[]string{"create", "--name", "x", "--scope", "admin", "--expires-in", "-1h"}, "--expires-in"},
		{[]string{"create", "--scope", "admin"}, "--name"},
	} {
		code, stdout, stderr := keys(t, db, c.args...)
		if code == 0 || !strings.Contains(stderr, c.want) || stdout != "" {
			t.Errorf("keys %v = %d, stdout %q, stderr %q: want a failure naming %q", c.args, code, stdout, stderr, c.want)
		}
	}
	if _, out, _ := keys(t, db, "list", "--all"); strings.Count(out, "\n") != 1 {
		t.Errorf("failed commands made keys:\n%s", out)
	}
}
