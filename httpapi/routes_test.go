package httpapi

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/herald-webhooks/herald"
)

// fillPath replaces the path parameters of a route pattern with plausible
// values.
func fillPath(pattern string) string {
	return strings.NewReplacer(
		"{app_id}", "app_2VZ7Qm3k4wQpXxYz1",
		"{endpoint_id}", "ep_2VZ7Qm3k4wQpXxYz1",
		"{msg_id}", "msg_2VZ7Qm3k4wQpXxYz1",
		"{attempt_id}", "atmpt_2VZ7Qm3k4wQpXxYz1",
		"{event_type_name}", "user.signup",
		"{key_id}", "tok_2VZ7Qm3k4wQpXxYz1",
	).Replace(pattern)
}

func TestRouteTableAuth(t *testing.T) {
	ts := newTestServer(t, withMetrics(prometheus.NewRegistry()))
	routes := ts.API.Routes()
	if len(routes) == 0 {
		t.Fatal("empty route table")
	}

	var public []string
	for _, rt := range routes {
		path := fillPath(rt.Pattern)
		if rt.Public {
			public = append(public, rt.Method+" "+rt.Pattern)
			res := ts.call(t, rt.Method, path, "", "Authorization", "")
			if res.Status >= 400 {
				t.Errorf("public %s %s without a token: %d", rt.Method, path, res.Status)
			}
			continue
		}
		body := ""
		if rt.Method != http.MethodGet && rt.Method != http.MethodDelete {
			body = "{}"
		}
		for _, auth := range []string{"", "Bearer wrong-token", "Bearer " + ts.Token + "x", "Basic " + ts.Token, ts.Token} {
			res := ts.call(t, rt.Method, path, body, "Authorization", auth)
			if res.Status != http.StatusUnauthorized {
				t.Errorf("%s %s with Authorization %q: %d, want 401", rt.Method, path, auth, res.Status)
				continue
			}
			if e := errorOut(t, res); e.Code != herald.EUNAUTHORIZED {
				t.Errorf("%s %s: code %q, want %q", rt.Method, path, e.Code, herald.EUNAUTHORIZED)
			}
		}
		// With the right token the route exists (whatever the outcome).
		res := ts.call(t, rt.Method, path, body)
		if res.Status == http.StatusUnauthorized || res.Status == http.StatusMethodNotAllowed {
			t.Errorf("%s %s with the token: %d %s", rt.Method, path, res.Status, res.Body)
		}
	}
	wantPublic := []string{
		"GET /api/v1/health", "GET /api/v1/health/ping", "GET /healthz", "GET /readyz",
	}
	slices.Sort(public)
	if !slices.Equal(public, wantPublic) {
		t.Errorf("public routes %v, want exactly %v", public, wantPublic)
	}
}

// TestDeliveryRoutesServed checks that every delivery route of the contract
// is in the table (the auth test then covers each of them).
func TestDeliveryRoutesServed(t *testing.T) {
	ts := newTestServer(t)
	have := map[string]bool{}
	for _, rt := range ts.API.Routes() {
		have[rt.Method+" "+rt.Pattern] = !rt.Public
	}
	for _, want := range []string{
		"GET /api/v1/app/{app_id}/attempt/msg/{msg_id}",
		"GET /api/v1/app/{app_id}/attempt/endpoint/{endpoint_id}",
		"GET /api/v1/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}",
		"DELETE /api/v1/app/{app_id}/msg/{msg_id}/attempt/{attempt_id}/content",
		"GET /api/v1/app/{app_id}/msg/{msg_id}/endpoint",
		"POST /api/v1/app/{app_id}/msg/{msg_id}/endpoint/{endpoint_id}/resend",
		"GET /api/v1/app/{app_id}/endpoint/{endpoint_id}/msg",
		"POST /api/v1/app/{app_id}/endpoint/{endpoint_id}/recover",
		"POST /api/v1/app/{app_id}/endpoint/{endpoint_id}/replay-missing",
		"GET /api/v1/app/{app_id}/endpoint/{endpoint_id}/stats",
		"POST /api/v1/app/{app_id}/endpoint/{endpoint_id}/send-example",
	} {
		if authed, ok := have[want]; !ok || !authed {
			t.Errorf("route %s: served %v, authenticated %v", want, ok, authed)
		}
	}
}
