package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	svix "github.com/svix/svix-webhooks/go"
)

// TestServeOperationalWebhooks runs the real binary with
// --operational-webhook-url and no secret: the secret is generated into a
// 0600 file beside the database (and not logged), a PATCH that disables an
// endpoint reaches the URL as endpoint.disabled signed with that secret,
// and the internal application does not show in the API.
func TestServeOperationalWebhooks(t *testing.T) {
	var (
		mu     sync.Mutex
		bodies [][]byte
		heads  []http.Header
	)
	ops := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies, heads = append(bodies, b), append(heads, r.Header.Clone())
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer ops.Close()
	dir := t.TempDir()
	p := startHerald(t, "--db", filepath.Join(dir, "herald.db"), "--allow-private-targets",
		"--operational-webhook-url", ops.URL+"/herald-events")
	token := readToken(t, dir)
	secretFile := filepath.Join(dir, "operational-webhook-secret")
	info, err := os.Stat(secretFile)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("operational secret file: %v, %v; want mode 0600", info, err)
	}
	raw, err := os.ReadFile(secretFile)
	if err != nil {
		t.Fatal(err)
	}
	secret := strings.TrimSpace(string(raw))
	if !strings.HasPrefix(secret, "whsec_") || strings.Contains(p.stderr.String(), secret) {
		t.Fatalf("secret %q: want whsec_…, never in the log", secret)
	}

	if code, body := request(t, "POST", p.url+"/api/v1/app", token, map[string]any{"name": "Acme", "uid": "acme"}); code != http.StatusCreated {
		t.Fatalf("create app = %d %s", code, body)
	}
	if code, body := request(t, "POST", p.url+"/api/v1/app/acme/endpoint", token,
		map[string]any{"url": "https://example.com/hook", "uid": "primary"}); code != http.StatusCreated {
		t.Fatalf("create endpoint = %d %s", code, body)
	}
	if code, body := request(t, "PATCH", p.url+"/api/v1/app/acme/endpoint/primary", token, map[string]any{"disabled": true}); code != http.StatusOK {
		t.Fatalf("disable endpoint = %d %s", code, body)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(bodies)
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no operational webhook arrived:\n%s", p.stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	wh, err := svix.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	body, head := bodies[0], heads[0]
	mu.Unlock()
	if err := wh.Verify(body, head); err != nil {
		t.Fatalf("operational webhook does not verify with the generated secret: %v", err)
	}
	var ev svix.EndpointDisabledEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Type != "endpoint.disabled" || ev.Data.EndpointUid == nil || *ev.Data.EndpointUid != "primary" ||
		ev.Data.AppUid == nil || *ev.Data.AppUid != "acme" || ev.Data.Trigger == nil || string(*ev.Data.Trigger) != "manual" {
		t.Fatalf("operational webhook %s", body)
	}
	code, list := request(t, "GET", p.url+"/api/v1/app", token, nil)
	if code != http.StatusOK || strings.Contains(string(list), "operational") {
		t.Fatalf("list apps = %d %s: the internal application must not show", code, list)
	}
}
