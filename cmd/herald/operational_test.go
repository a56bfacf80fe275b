package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	svix "github.com/svix/svix-webhooks/go"
	"github.com/svix/svix-webhooks/go/models"
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

// opReceiver is a loopback receiver of operational webhooks that keeps
// what it got.
type opReceiver struct {
	srv   *httptest.Server
	mu    sync.Mutex
	got   [][]byte
	heads []http.Header
}

func newOpReceiver(t *testing.T, status int) *opReceiver {
	r := &opReceiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got, r.heads = append(r.got, b), append(r.heads, req.Header.Clone())
		r.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// types returns the set of event types received, after verifying every
// body's signature with secret (the Standard Webhooks library).
func (r *opReceiver) types(t *testing.T, secret string) map[string]bool {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]bool{}
	for i, b := range r.got {
		if err := wh.Verify(b, r.heads[i]); err != nil {
			t.Fatalf("%s: operational webhook %s does not verify: %v", r.srv.URL, b, err)
		}
		var ev struct{ Type string }
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Fatal(err)
		}
		out[ev.Type] = true
	}
	return out
}

// TestServeOperationalEndpointsByAPI runs the real binary with
// --operational-webhook-url and two operational endpoints created through
// the official Svix Go SDK, each with its filter types, on loopback
// receivers: each receives only the types it asked for, the flag's URL
// receives every type, and every webhook verifies with its endpoint's
// secret. On SQLite with one node, and on PostgreSQL with two: the
// endpoints are created through one node, the events caused through the
// other.
func TestServeOperationalEndpointsByAPI(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		flag := newOpReceiver(t, http.StatusNoContent)
		dir := t.TempDir()
		p := startHerald(t, "--db", filepath.Join(dir, "herald.db"), "--allow-private-targets",
			"--operational-webhook-url", flag.srv.URL+"/herald-events")
		raw, err := os.ReadFile(filepath.Join(dir, "operational-webhook-secret"))
		if err != nil {
			t.Fatal(err)
		}
		testOperationalEndpointsByAPI(t, p, p, readToken(t, dir), flag, strings.TrimSpace(string(raw)))
	})
	t.Run("postgres", func(t *testing.T) {
		dbURL, _ := pgFreshSchema(t)
		flag := newOpReceiver(t, http.StatusNoContent)
		const token, secret = "opendpoints-admin-token-0123456789", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
		args := []string{"--db", dbURL, "--encryption-key", newEncryptionKey(t), "--admin-token", token, "--allow-private-targets",
			"--operational-webhook-url", flag.srv.URL + "/herald-events", "--operational-webhook-secret", secret, "--pg-max-conns", "4"}
		testOperationalEndpointsByAPI(t, startHerald(t, args...), startHerald(t, args...), token, flag, secret)
	})
}

// testOperationalEndpointsByAPI creates the operational endpoints through
// node a and causes the events through node b.
func testOperationalEndpointsByAPI(t *testing.T, a, b *process, token string, flag *opReceiver, flagSecret string) {
	onlyDisabled, enabledOrFailing := newOpReceiver(t, http.StatusNoContent), newOpReceiver(t, http.StatusNoContent)
	failing := newOpReceiver(t, http.StatusInternalServerError)
	sdk := func(p *process) *svix.Svix {
		u, err := url.Parse(p.url)
		if err != nil {
			t.Fatal(err)
		}
		client, err := svix.New(token, &svix.SvixOptions{ServerUrl: u})
		if err != nil {
			t.Fatal(err)
		}
		return client
	}
	client, other := sdk(a), sdk(b)
	ctx := t.Context()
	create := func(r *opReceiver, types ...string) string {
		t.Helper()
		ep, err := client.OperationalWebhookEndpoint.Create(ctx, models.OperationalWebhookEndpointIn{Url: r.srv.URL + "/ops", FilterTypes: types}, nil)
		if err != nil {
			t.Fatalf("create operational endpoint: %v", err)
		}
		sec, err := client.OperationalWebhookEndpoint.GetSecret(ctx, ep.Id)
		if err != nil {
			t.Fatalf("get operational endpoint secret: %v", err)
		}
		return sec.Key
	}
	secretA := create(onlyDisabled, "endpoint.disabled")
	secretB := create(enabledOrFailing, "endpoint.enabled", "message.attempt.failing")

	if _, err := other.Application.Create(ctx, models.ApplicationIn{Name: "Acme", Uid: ptr("acme")}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Endpoint.Create(ctx, "acme", models.EndpointIn{Url: failing.srv.URL + "/hook", Uid: ptr("primary")}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Message.Create(ctx, "acme", models.MessageIn{EventType: "user.created", Payload: map[string]any{"id": 1}}, nil); err != nil {
		t.Fatal(err)
	}
	waitTypes := func(r *opReceiver, secret string, want ...string) map[string]bool {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			got := r.types(t, secret)
			all := true
			for _, w := range want {
				all = all && got[w]
			}
			if all {
				return got
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s received %v, want %v:\n%s\n%s", r.srv.URL, got, want, a.stderr, b.stderr)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitTypes(flag, flagSecret, "message.attempt.failing")
	for _, disabled := range []bool{true, false} {
		if _, err := other.Endpoint.Patch(ctx, "acme", "primary", models.EndpointPatch{Disabled: &disabled}); err != nil {
			t.Fatal(err)
		}
	}
	waitTypes(flag, flagSecret, "message.attempt.failing", "endpoint.disabled", "endpoint.enabled")
	gotA := waitTypes(onlyDisabled, secretA, "endpoint.disabled")
	gotB := waitTypes(enabledOrFailing, secretB, "endpoint.enabled", "message.attempt.failing")
	if len(gotA) != 1 {
		t.Fatalf("the endpoint filtering endpoint.disabled received %v", gotA)
	}
	if len(gotB) != 2 {
		t.Fatalf("the endpoint filtering endpoint.enabled and message.attempt.failing received %v", gotB)
	}
	// The secrets differ: a webhook of one endpoint does not verify with
	// another's secret.
	if secretA == secretB || secretA == flagSecret {
		t.Fatal("operational endpoints share a secret")
	}
}

// TestJSSDKOperationalEndpoints drives every operational-endpoint
// operation through the official Svix JS SDK against the real binary (see
// testdata/jssdk/opwebhook.mjs). It skips when Node.js or the SDK is
// missing.
func TestJSSDKOperationalEndpoints(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("the JS SDK test needs Node.js")
	}
	if _, err := os.Stat(filepath.Join(jsSDKDir, "node_modules", "svix")); err != nil {
		t.Skipf("the JS SDK test needs the Svix JS SDK: npm ci --prefix cmd/herald/%s (.ci/run does)", jsSDKDir)
	}
	dir := t.TempDir()
	p := startHerald(t, "--db", filepath.Join(dir, "herald.db"))
	token := readToken(t, dir)
	cmd := exec.CommandContext(t.Context(), node, "opwebhook.mjs", p.url, token)
	cmd.Dir = jsSDKDir
	raw, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("node opwebhook.mjs: %v\n%s", err, stderr)
	}
	type epOut struct {
		ID          string            `json:"id"`
		UID         string            `json:"uid"`
		URL         string            `json:"url"`
		Description string            `json:"description"`
		Disabled    bool              `json:"disabled"`
		FilterTypes []string          `json:"filterTypes"`
		RateLimit   int               `json:"rateLimit"`
		Metadata    map[string]string `json:"metadata"`
		CreatedAt   string            `json:"createdAt"`
	}
	var out struct {
		Created, Got, Updated epOut
		List                  struct {
			Data []epOut
			Done bool
		}
		Headers struct {
			Headers   map[string]string
			Sensitive []string
		}
		Secret      struct{ Key string }
		AfterDelete int
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
	c := out.Created
	if !strings.HasPrefix(c.ID, "ep_") || c.UID != "js-ops" || c.URL != "https://example.com/js-ops" || c.Description != "from JS" ||
		c.Disabled || len(c.FilterTypes) != 1 || c.FilterTypes[0] != "endpoint.disabled" || c.RateLimit != 4 || c.Metadata["team"] != "sre" || c.CreatedAt == "" {
		t.Fatalf("created %+v", c)
	}
	if out.Got.ID != c.ID || len(out.List.Data) != 1 || out.List.Data[0].ID != c.ID || !out.List.Done {
		t.Fatalf("get %+v, list %+v", out.Got, out.List)
	}
	u := out.Updated
	if u.URL != "https://example.com/js-ops-2" || !u.Disabled || len(u.FilterTypes) != 1 || u.FilterTypes[0] != "endpoint.enabled" {
		t.Fatalf("updated %+v", u)
	}
	if out.Headers.Headers["X-Team"] != "sre" || len(out.Headers.Sensitive) != 1 || out.Headers.Sensitive[0] != "Authorization" {
		t.Fatalf("headers %+v", out.Headers)
	}
	if out.Secret.Key != "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD" {
		t.Fatalf("secret after rotate %q", out.Secret.Key)
	}
	if out.AfterDelete != http.StatusNotFound {
		t.Fatalf("get after delete: %d, want 404", out.AfterDelete)
	}
}
