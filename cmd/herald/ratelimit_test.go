package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herald-webhooks/herald/backoff"
	"github.com/herald-webhooks/herald/dispatch"
	"github.com/herald-webhooks/herald/httpapi"
	"github.com/herald-webhooks/herald/sqlite"
	"github.com/herald-webhooks/herald/telemetry"
	"github.com/herald-webhooks/herald/telemetry/telemetrytest"
)

// TestServeRefusesBadRateLimitFlags: the API rate limit flags are checked
// before anything starts, each refusal naming its flag.
func TestServeRefusesBadRateLimitFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		flag string
	}{
		{[]string{"--api-rate-limit", "-1"}, "--api-rate-limit"},
		{[]string{"--api-rate-limit", "NaN"}, "--api-rate-limit"},
		{[]string{"--api-rate-limit", "+Inf"}, "--api-rate-limit"},
		{[]string{"--api-rate-burst", "-5"}, "--api-rate-burst"},
		{[]string{"--api-auth-failure-burst", "-1"}, "--api-auth-failure-burst"},
	} {
		var out, errOut bytes.Buffer
		args := append([]string{"serve", "--db", filepath.Join(t.TempDir(), "h.db")}, c.args...)
		if code := run(context.Background(), args, &out, &errOut); code == 0 || !strings.Contains(errOut.String(), c.flag) {
			t.Errorf("serve %v = %d, stderr %q: want a refusal naming %s", c.args, code, errOut.String(), c.flag)
		}
	}
}

// TestNodeAPIRateLimits: a node started as serve starts one applies the
// API's rate limits it is given: a credential past its rate and an address
// past its failed authentications get 429 with Retry-After, counted in
// herald_api_rate_limited_total. The rates are so low (one token per
// 1,000 s) that the wall clock cannot refill a bucket during the test.
func TestNodeAPIRateLimits(t *testing.T) {
	store, err := sqlite.Open(t.Context(), sqlite.Config{Path: filepath.Join(t.TempDir(), "herald.db"), Keyring: testRing(t)})
	if err != nil {
		t.Fatal(err)
	}
	token := "hk_test_" + strings.Repeat("r", 24)
	reg := telemetry.NewRegistry("test")
	n, err := startNode(context.Background(), nodeConfig{
		Store:  store,
		Logger: slog.New(slog.DiscardHandler),
		Sender: dispatch.SenderConfig{Timeout: 5 * time.Second, UserAgent: "Herald/test"},
		Dispatch: dispatch.Config{
			Policy:          backoff.Policy{Schedule: []time.Duration{time.Second}},
			RequestTimeout:  5 * time.Second,
			ShutdownTimeout: 5 * time.Second,
		},
		AdminTokenHash:   sha256.Sum256([]byte(token)),
		Registry:         reg,
		APIRateLimit:     0.001,
		APIRateBurst:     2,
		AuthFailureBurst: 1,
		MonitorInterval:  time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(n.handler)
	t.Cleanup(func() {
		srv.Close()
		n.stop()
		store.Close()
	})
	get := func(bearer string) (int, string) {
		req, err := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/api/v1/app", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+bearer)
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode, res.Header.Get("Retry-After")
	}
	for i, want := range []int{200, 200, 429} {
		if got, after := get(token); got != want || (want == 429 && after != "1000") {
			t.Errorf("admin request %d: %d (Retry-After %q), want %d", i, got, after, want)
		}
	}
	for i, want := range []int{401, 429} {
		if got, after := get("hkey_nobody"); got != want || (want == 429 && after != "1") {
			t.Errorf("bad token %d: %d (Retry-After %q), want %d", i, got, after, want)
		}
	}
	got := telemetrytest.Values(t, reg)
	for series, want := range map[string]float64{
		`herald_api_rate_limited_total{limit="key"}`:           1,
		`herald_api_rate_limited_total{limit="auth_failures"}`: 1,
	} {
		if got[series] != want {
			t.Errorf("%s = %v, want %v", series, got[series], want)
		}
	}
}

// TestServeRateLimitDefault: the flag's default is the one the API and the
// docs name.
func TestServeRateLimitDefault(t *testing.T) {
	cli, _, err := parseCLI([]string{"serve"})
	if err != nil {
		t.Fatal(err)
	}
	if cli.Serve.APIRateLimit != httpapi.DefaultAPIRateLimit {
		t.Errorf("--api-rate-limit defaults to %v, httpapi.DefaultAPIRateLimit is %v", cli.Serve.APIRateLimit, httpapi.DefaultAPIRateLimit)
	}
}
