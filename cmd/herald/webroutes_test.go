package main

import (
	"net/http"
	"strings"
	"testing"
)

// TestWebAndAPIShareTheListener: the console, the portal and GET / go to
// the web server (HTML, with its security headers); everything else to the
// API (JSON, its own 404 and 405, told only to a caller with a token).
func TestWebAndAPIShareTheListener(t *testing.T) {
	tn := startTestNode(t)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, c := range []struct {
		method, path string
		status       int
		contentType  string
		location     string
		token        bool
	}{
		{"GET", "/", http.StatusSeeOther, "", "/console/", false},
		{"GET", "/console/login", http.StatusOK, "text/html", "", false},
		{"GET", "/console/", http.StatusSeeOther, "", "/console/login", false},
		{"GET", "/portal/login", http.StatusOK, "text/html", "", false},
		{"GET", "/api/v1/app", http.StatusUnauthorized, "application/json", "", false},
		{"GET", "/nope", http.StatusUnauthorized, "application/json", "", false},
		{"GET", "/nope", http.StatusNotFound, "application/json", "", true},
		{"POST", "/", http.StatusUnauthorized, "application/json", "", false},
		{"POST", "/", http.StatusNotFound, "application/json", "", true},
		{"DELETE", "/api/v1/app", http.StatusUnauthorized, "application/json", "", false},
		{"DELETE", "/api/v1/app", http.StatusMethodNotAllowed, "application/json", "", true},
	} {
		req, err := http.NewRequestWithContext(t.Context(), c.method, tn.url+c.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.token {
			req.Header.Set("Authorization", "Bearer "+tn.token)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != c.status || !strings.HasPrefix(res.Header.Get("Content-Type"), c.contentType) ||
			(c.location != "" && !strings.HasPrefix(res.Header.Get("Location"), c.location)) {
			t.Errorf("%s %s: %d %q Location %q; want %d %q %q", c.method, c.path, res.StatusCode,
				res.Header.Get("Content-Type"), res.Header.Get("Location"), c.status, c.contentType, c.location)
		}
		web := strings.HasPrefix(c.path, "/console") || strings.HasPrefix(c.path, "/portal") || (c.path == "/" && c.method == "GET")
		if csp := res.Header.Get("Content-Security-Policy"); web != (csp != "") {
			t.Errorf("%s %s: Content-Security-Policy %q", c.method, c.path, csp)
		}
	}
}
