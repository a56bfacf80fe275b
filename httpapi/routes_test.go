package httpapi

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/herald-webhooks/herald"
)

// fillPath replaces the path parameters of a route pattern with plausible
// values.
func fillPath(pattern string) string {
	return strings.NewReplacer(
		"{app_id}", "app_2VZ7Qm3k4wQpXxYz1",
		"{endpoint_id}", "ep_2VZ7Qm3k4wQpXxYz1",
		"{msg_id}", "msg_2VZ7Qm3k4wQpXxYz1",
		"{event_type_name}", "user.signup",
	).Replace(pattern)
}

func TestRouteTableAuth(t *testing.T) {
	ts := newTestServer(t)
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

// TestNoRoutesOfTheNextIssue checks that routes planned for later are not
// served as placeholders.
func TestNoRoutesOfTheNextIssue(t *testing.T) {
	ts := newTestServer(t)
	for _, rt := range ts.API.Routes() {
		for _, word := range []string{"attempt", "resend", "recover", "replay", "stats", "send-example", "/auth/", "/endpoint/{endpoint_id}/msg", "/msg/{msg_id}/endpoint"} {
			if strings.Contains(rt.Pattern, word) {
				t.Errorf("route %s %s belongs to a later issue", rt.Method, rt.Pattern)
			}
		}
	}
	for _, path := range []string{
		"/api/v1/app/a/attempt/msg/m", "/api/v1/app/a/endpoint/e/stats", "/api/v1/app/a/msg/m/endpoint",
	} {
		if res := ts.call(t, "GET", path, ""); res.Status != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, res.Status)
		}
	}
	for _, path := range []string{"/api/v1/auth/logout", "/api/v1/app/a/endpoint/e/recover", "/api/v1/app/a/msg/m/endpoint/e/resend"} {
		if res := ts.call(t, "POST", path, "{}"); res.Status != http.StatusNotFound {
			t.Errorf("POST %s: %d, want 404", path, res.Status)
		}
	}
}
