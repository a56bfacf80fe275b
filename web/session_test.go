package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/herald-webhooks/herald/access"
)

func TestConsoleLoginCookie(t *testing.T) {
	for _, tc := range []struct {
		name       string
		trust      bool
		tls        bool
		forwarded  string
		wantSecure bool
	}{
		{name: "plain http"},
		{name: "tls", tls: true, wantSecure: true},
		{name: "trusted proxy", trust: true, forwarded: "https", wantSecure: true},
		{name: "untrusted proxy", forwarded: "https"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) {
				if tc.trust {
					// The in-memory requests come from 192.0.2.1.
					c.Proxies, _ = access.ParseProxies("192.0.2.0/24")
				}
			})
			b := e.browser()
			b.tls = tc.tls
			page := b.get("/console/login")
			want(t, page, http.StatusOK, "<title>", "<h1>", `<label for="token">`)
			m := csrfField.FindStringSubmatch(page.body)
			var hdr []string
			if tc.forwarded != "" {
				hdr = []string{"X-Forwarded-Proto", tc.forwarded}
			}
			res := b.do("POST", "/console/login", url.Values{"_csrf": {m[1]}, "token": {adminToken}}, hdr...)
			if res.Code != http.StatusSeeOther || res.Header().Get("Location") != "/console/" {
				t.Fatalf("login: %d %s", res.Code, res.Header().Get("Location"))
			}
			if strings.Contains(res.body, adminToken) || strings.Contains(res.Header().Get("Location"), adminToken) {
				t.Error("the token is in the answer")
			}
			c := b.cookies["herald_console"]
			if c == nil {
				t.Fatal("no session cookie")
			}
			if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/console" || c.Secure != tc.wantSecure {
				t.Errorf("cookie %+v: want HttpOnly, SameSite=Strict, Path=/console, Secure=%v", c, tc.wantSecure)
			}
			if !strings.HasPrefix(c.Value, "hsess_") {
				t.Errorf("cookie value %q is not a session secret", c.Value)
			}
			want(t, b.get("/console/"), http.StatusOK, "Overview")
		})
	}
}

func TestConsoleLoginRefusals(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	res := b.tryLogin("/console", "not-the-token")
	want(t, res, http.StatusUnauthorized, "Invalid token.")
	if _, ok := b.cookies["herald_console"]; ok {
		t.Error("a wrong token got a session")
	}
	// A login post without the double-submit value is refused.
	res = b.do("POST", "/console/login", url.Values{"token": {adminToken}})
	want(t, res, http.StatusForbidden)
	// A portal token does not open the console.
	appID, _ := e.newApp("A", "https://a.example.com/hook")
	portal := e.portalToken(appID, false)
	want(t, b.tryLogin("/console", portal), http.StatusUnauthorized, "Invalid token.")
	// An admin API key does.
	key := e.apiKey(false)
	b2 := e.browser()
	b2.remote = "192.0.2.9:1"
	b2.login("/console", key)
}

func TestLoginRateLimit(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	for i := range loginBurst {
		if res := b.tryLogin("/console", "wrong"); res.Code != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i, res.Code)
		}
	}
	res := b.tryLogin("/console", adminToken)
	want(t, res, http.StatusTooManyRequests, "Too many sign-in attempts")
	if res.Header().Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	// Another address is not limited; the first one may try again later.
	other := e.browser()
	other.remote = "198.51.100.7:4000"
	other.login("/console", adminToken)
	e.clock.Add(loginEvery)
	b.login("/console", adminToken)
}

func TestLimiterIsBounded(t *testing.T) {
	l := newLimiter(loginRate, 1, 3)
	now := time.Now()
	for i := range 10 {
		l.allow(string(rune('a'+i)), now)
		if len(l.m) > 3 {
			t.Fatalf("%d limiters, want at most 3", len(l.m))
		}
	}
}

func TestLogout(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login("/console", adminToken)
	old := b.cookies["herald_console"].Value
	res := b.post("/console/logout", nil)
	if res.Code != http.StatusSeeOther || !strings.HasPrefix(res.Header().Get("Location"), "/console/login") {
		t.Fatalf("logout: %d %s", res.Code, res.Header().Get("Location"))
	}
	if _, ok := b.cookies["herald_console"]; ok {
		t.Error("the cookie was not cleared")
	}
	// The old cookie no longer works: GET goes to the login page, POST is
	// 401.
	b.cookies["herald_console"] = &http.Cookie{Name: "herald_console", Value: old, Path: "/console"}
	res = b.get("/console/apps")
	if res.Code != http.StatusSeeOther || res.Header().Get("Location") != "/console/login" {
		t.Errorf("GET with a revoked session: %d %s", res.Code, res.Header().Get("Location"))
	}
	want(t, b.post("/console/apps/new", url.Values{"name": {"x"}}), http.StatusUnauthorized)
	want(t, b.get("/console/apps", "X-Herald-Fetch", "1"), http.StatusUnauthorized)
}

func TestExpiredSession(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login("/console", adminToken)
	want(t, b.get("/console/apps"), http.StatusOK)
	e.clock.Add(consoleSessionTTL + time.Second)
	res := b.get("/console/apps")
	if res.Code != http.StatusSeeOther || res.Header().Get("Location") != "/console/login" {
		t.Errorf("expired session: %d %s", res.Code, res.Header().Get("Location"))
	}
}

func TestCSRF(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login("/console", adminToken)
	form := func() url.Values { return url.Values{"name": {"CSRF app"}} }
	bad := form()
	bad.Set("_csrf", "wrong")
	for name, res := range map[string]response{
		"no token":         b.do("POST", "/console/apps/new", form()),
		"wrong token":      b.do("POST", "/console/apps/new", bad),
		"foreign origin":   b.post("/console/apps/new", form(), "Origin", "https://evil.example"),
		"null origin":      b.post("/console/apps/new", form(), "Origin", "null"),
		"null, same-site":  b.post("/console/apps/new", form(), "Origin", "null", "Sec-Fetch-Site", "same-site"),
		"cross-site fetch": b.post("/console/apps/new", form(), "Sec-Fetch-Site", "cross-site"),
		"logout, no token": b.do("POST", "/console/logout", url.Values{}),
	} {
		if res.Code != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", name, res.Code)
		}
	}
	var list listOut[appOut]
	e.call("GET", "/api/v1/app", nil, &list)
	if len(list.Data) != 0 {
		t.Fatalf("a refused post created %d applications", len(list.Data))
	}
	// The token in the header, and a same-origin Origin, are accepted.
	res := b.do("POST", "/console/apps/new", form(), "X-CSRF-Token", b.csrf("/console"), "Origin", "http://example.com", "Sec-Fetch-Site", "same-origin")
	if res.Code != http.StatusSeeOther {
		t.Fatalf("a good post: %d %s", res.Code, res.body)
	}
	// Chromium's form post under Referrer-Policy: no-referrer.
	res = b.post("/console/apps/new", form(), "Origin", "null", "Sec-Fetch-Site", "same-origin")
	if res.Code != http.StatusSeeOther {
		t.Fatalf("a form post with Origin: null: %d %s", res.Code, res.body)
	}
}

func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.PortalFrameAncestors = "https://app.example.com" })
	appID, _ := e.newApp("A", "https://a.example.com/hook")
	b := e.browser()
	b.login("/console", adminToken)
	p := e.browser()
	p.loginPortal(e.portalToken(appID, false))
	console := map[string]response{
		"page":     b.get("/console/apps"),
		"redirect": b.get("/console"),
		"root":     b.get("/"),
		"login":    e.browser().get("/console/login"),
		"asset":    b.get(e.srv.assets.url("/console", "app.css")),
		"missing":  b.get("/console/nothing-here"),
		"error":    b.get("/console/apps/app_nope"),
	}
	for name, res := range console {
		h := res.Header()
		if got := h.Get("Content-Security-Policy"); got != "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'" {
			t.Errorf("console %s: CSP %q", name, got)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" || h.Get("X-Frame-Options") != "DENY" {
			t.Errorf("console %s: headers %v", name, h)
		}
		if name != "asset" && h.Get("Cache-Control") != "no-store" {
			t.Errorf("console %s: Cache-Control %q", name, h.Get("Cache-Control"))
		}
	}
	if cc := console["asset"].Header().Get("Cache-Control"); !strings.Contains(cc, "immutable") {
		t.Errorf("asset Cache-Control %q", cc)
	}
	want(t, console["error"], http.StatusNotFound)
	portal := map[string]response{
		"page":     p.get("/portal/"),
		"redirect": p.get("/portal"),
		"login":    e.browser().get("/portal/login"),
		"asset":    p.get(e.srv.assets.url("/portal", "app.js")),
		"theme":    p.get("/portal/theme.css?accent=%23abc"),
	}
	for name, res := range portal {
		h := res.Header()
		csp := h.Get("Content-Security-Policy")
		if !strings.Contains(csp, "img-src 'self' data: https:;") || !strings.HasSuffix(csp, "frame-ancestors https://app.example.com") || !strings.Contains(csp, "script-src 'self';") {
			t.Errorf("portal %s: CSP %q", name, csp)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" || h.Get("X-Frame-Options") != "" {
			t.Errorf("portal %s: headers %v", name, h)
		}
	}
}
