package main

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeEndpointURLHosts: `herald serve` refuses endpoint URLs whose
// host is a loopback or private address as written unless started with
// --allow-private-targets, and refuses cloud metadata addresses even then.
func TestServeEndpointURLHosts(t *testing.T) {
	for _, allow := range []bool{false, true} {
		dir := t.TempDir()
		args := []string{"--db", filepath.Join(dir, "herald.db")}
		if allow {
			args = append(args, "--allow-private-targets")
		}
		p := startHerald(t, args...)
		token := readToken(t, dir)
		if code, body := request(t, "POST", p.url+"/api/v1/app", token, map[string]any{"name": "A", "uid": "acme"}); code != http.StatusCreated {
			t.Fatalf("create app: %d %s", code, body)
		}
		for target, refusedWithFlag := range map[string]bool{
			"http://127.0.0.1:9/hook":       false,
			"http://localhost:9/hook":       false,
			"http://10.1.2.3/hook":          false,
			"http://169.254.169.254/latest": true,
		} {
			code, body := request(t, "POST", p.url+"/api/v1/app/acme/endpoint", token, map[string]any{"url": target})
			wantRefused := !allow || refusedWithFlag
			if wantRefused && (code != http.StatusUnprocessableEntity || !strings.Contains(string(body), `"url"`)) {
				t.Errorf("allow-private-targets %v: POST endpoint %s = %d %s, want a 422 naming url", allow, target, code, body)
			}
			if !wantRefused && code != http.StatusCreated {
				t.Errorf("allow-private-targets %v: POST endpoint %s = %d %s, want 201", allow, target, code, body)
			}
		}
	}
}
