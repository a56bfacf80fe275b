package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/access"
	"github.com/herald-webhooks/herald/telemetry"
	"github.com/herald-webhooks/herald/telemetry/telemetrytest"
)

// bearerTransport adds a bearer token to every request.
type bearerTransport struct {
	token string
	base  http.RoundTripper
}

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(r)
}

// withToken returns a client like c that sends token.
func withToken(c *http.Client, token string) *http.Client {
	return &http.Client{Transport: bearerTransport{token: token, base: c.Transport}}
}

// TestMetricsNeedAdmin: /metrics on the API answers admin-scope
// principals only (the bootstrap token, an admin API key, read-only
// included), not strangers nor application tokens; with MetricsPublic
// (--metrics-public) it answers anyone.
func TestMetricsNeedAdmin(t *testing.T) {
	ts := newTestServer(t, withMetrics(prometheus.NewRegistry()))
	var app applicationOut
	ts.mustCall(t, http.StatusCreated, &app, "POST", "/api/v1/app", `{"name":"a"}`)
	later := ts.Clock.Now().Add(time.Hour)
	adminKeyRO := issue(t, ts, herald.Token{Kind: herald.TokenKey, Name: "prometheus", ReadOnly: true, ExpiresAt: later}, access.PrefixKey)
	appKey := issue(t, ts, herald.Token{Kind: herald.TokenKey, AppID: app.ID, ExpiresAt: later}, access.PrefixKey)
	portal := issue(t, ts, herald.Token{Kind: herald.TokenPortal, AppID: app.ID, Capabilities: portalCapabilities, ExpiresAt: later}, access.PrefixPortal)
	for _, tc := range []struct {
		name, auth string
		want       int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"wrong token", "Bearer hk_not_the_token_0123456789", http.StatusUnauthorized},
		{"application key", "Bearer " + appKey, http.StatusForbidden},
		{"portal token", "Bearer " + portal, http.StatusForbidden},
		{"read-only admin key", "Bearer " + adminKeyRO, http.StatusOK},
		{"bootstrap admin token", "Bearer " + ts.Token, http.StatusOK},
	} {
		res := ts.call(t, "GET", "/metrics", "", "Authorization", tc.auth)
		if res.Status != tc.want {
			t.Errorf("%s: /metrics = %d %.200s, want %d", tc.name, res.Status, res.Body, tc.want)
			continue
		}
		if tc.want == http.StatusOK {
			if !strings.Contains(string(res.Body), "# TYPE herald_") {
				t.Errorf("%s: /metrics body is not the scrape: %.200s", tc.name, res.Body)
			}
		} else if e := errorOut(t, res); e.Code == "" || strings.Contains(string(res.Body), "herald_") {
			t.Errorf("%s: refusal %s", tc.name, res.Body)
		}
	}
	if got := telemetrytest.Scrape(t, withToken(ts.Client, adminKeyRO), ts.URL+"/metrics"); got[`herald_http_requests_total{code="401",route="GET /metrics"}`] != 2 {
		t.Errorf("refused scrapes counted %v, want 2", got[`herald_http_requests_total{code="401",route="GET /metrics"}`])
	}

	public := newTestServer(t, withMetrics(prometheus.NewRegistry()), func(cfg *Config) { cfg.MetricsPublic = true })
	if res := public.call(t, "GET", "/metrics", "", "Authorization", ""); res.Status != http.StatusOK || !strings.Contains(string(res.Body), "# TYPE herald_") {
		t.Errorf("--metrics-public: /metrics without a token = %d %.200s", res.Status, res.Body)
	}
}

// TestProbeDetails: /healthz and /readyz answer everyone with their status,
// but name the version and the checks only to a caller with a valid token
// (any kind) or on the loopback interface. A remote caller is simulated
// honestly: a trusted proxy on 127.0.0.1 (--trusted-proxies) forwarding
// for 203.0.113.7, as a reverse proxy on the host would; and a loopback
// peer Herald was not told is a proxy, sending X-Forwarded-For, is not
// taken for a local caller either.
func TestProbeDetails(t *testing.T) {
	broken := errors.New("dial tcp 10.0.0.7:5432: connection refused")
	up := true
	readiness := func(cfg *Config) {
		cfg.Readiness = telemetry.NewReadiness(
			telemetry.Check{Name: "store", Run: cfg.Store.Ping, Failure: "The database is not reachable."},
			telemetry.Check{Name: "dispatcher", Failure: "The dispatcher is not running.", Run: func(context.Context) error {
				if !up {
					return broken
				}
				return nil
			}},
		)
	}
	proxies, err := access.ParseProxies("127.0.0.1, ::1")
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, readiness, func(cfg *Config) { cfg.Proxies = proxies })
	untrusting := newTestServer(t, readiness)
	var app applicationOut
	ts.mustCall(t, http.StatusCreated, &app, "POST", "/api/v1/app", `{"name":"a"}`)
	portal := issue(t, ts, herald.Token{Kind: herald.TokenPortal, AppID: app.ID, ReadOnly: true, Capabilities: []string{capViewBase}, ExpiresAt: ts.Clock.Now().Add(time.Hour)}, access.PrefixPortal)
	remote := []string{"X-Forwarded-For", "203.0.113.7"}

	type probe struct {
		name     string
		srv      *testServer
		headers  []string
		detailed bool
	}
	probes := []probe{
		{"loopback, no token", ts, []string{"Authorization", ""}, true},
		{"remote, no token", ts, append([]string{"Authorization", ""}, remote...), false},
		{"remote, invalid token", ts, append([]string{"Authorization", "Bearer appsk_forged"}, remote...), false},
		{"remote, session secret", ts, append([]string{"Authorization", "Bearer hsess_forged"}, remote...), false},
		{"remote, admin token", ts, remote, true},
		{"remote, app-portal token", ts, append([]string{"Authorization", "Bearer " + portal}, remote...), true},
		{"untrusted loopback peer with X-Forwarded-For", untrusting, append([]string{"Authorization", ""}, remote...), false},
		{"trusted proxy forwarding for loopback", ts, []string{"Authorization", "", "X-Forwarded-For", "127.0.0.1"}, true},
	}
	for _, state := range []string{"ready", "not ready"} {
		up = state == "ready"
		for _, p := range probes {
			res := p.srv.call(t, "GET", "/healthz", "", p.headers...)
			var h map[string]string
			if res.Status != http.StatusOK || json.Unmarshal(res.Body, &h) != nil || h["status"] != "ok" {
				t.Errorf("%s: /healthz = %d %s", p.name, res.Status, res.Body)
			}
			if got := h["version"] == "test"; got != p.detailed {
				t.Errorf("%s: /healthz %s: version shown %v, want %v", p.name, res.Body, got, p.detailed)
			}

			res = p.srv.call(t, "GET", "/readyz", "", p.headers...)
			wantStatus := http.StatusOK
			if !up {
				wantStatus = http.StatusServiceUnavailable
			}
			var r readyBody
			if res.Status != wantStatus || json.Unmarshal(res.Body, &r) != nil {
				t.Errorf("%s, %s: /readyz = %d %s, want %d", p.name, state, res.Status, res.Body, wantStatus)
				continue
			}
			named := strings.Contains(string(res.Body), "dispatcher") || strings.Contains(string(res.Body), "store")
			if named != p.detailed || (len(r.Checks) == 2) != p.detailed {
				t.Errorf("%s, %s: /readyz %s: checks named %v, want %v", p.name, state, res.Body, named, p.detailed)
			}
			if !up && (r.Code != herald.EUNAVAILABLE || r.Detail == "" || res.Header.Get("Retry-After") == "") {
				t.Errorf("%s: not-ready answer %s %v lacks the error shape or Retry-After", p.name, res.Body, res.Header)
			}
			if strings.Contains(string(res.Body), "10.0.0.7") {
				t.Errorf("%s: /readyz shows the check's error: %s", p.name, res.Body)
			}
		}
	}
}
