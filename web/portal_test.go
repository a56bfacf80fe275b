package web

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

func TestPortalLogin(t *testing.T) {
	e := newEnv(t)
	appID, _ := e.newApp("A", "https://a.example.com/hook")
	token := e.portalToken(appID, false)

	b := e.browser()
	page := b.get("/portal/login")
	want(t, page, http.StatusOK, "<h1>Sign in to the webhook portal</h1>", "data-portal-login", `<label for="token">`)
	b.loginPortal(token)
	c := b.cookies["herald_portal"]
	if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/portal" || c.Partitioned {
		t.Fatalf("portal cookie %+v", c)
	}
	want(t, b.get("/portal/"), http.StatusOK, "<h1>Endpoints of ", "https://a.example.com/hook")
	// A signed-in browser still gets the login page: a new link's script
	// must run.
	want(t, b.get("/portal/login"), http.StatusOK, "data-portal-login")

	// Without JavaScript the form posts and is redirected.
	b2 := e.browser()
	res := b2.tryLogin("/portal", token)
	if res.Code != http.StatusSeeOther || res.Header().Get("Location") != "/portal/" {
		t.Errorf("form login: %d %s", res.Code, res.Header().Get("Location"))
	}
	// The admin token, an API key or a session secret do not open the
	// portal.
	for _, tok := range []string{adminToken, e.apiKey(false), c.Value} {
		b3 := e.browser()
		b3.remote = "203.0.113.5:1"
		want(t, b3.tryLogin("/portal", tok), http.StatusUnauthorized, "Invalid token.")
	}
	// Logout ends the session.
	res = b.post("/portal/logout", nil)
	if res.Code != http.StatusSeeOther || !strings.HasPrefix(res.Header().Get("Location"), "/portal/login") {
		t.Fatalf("logout: %d %s", res.Code, res.Header().Get("Location"))
	}
	b.cookies["herald_portal"] = c
	if res := b.get("/portal/"); res.Code != http.StatusSeeOther {
		t.Errorf("after logout: %d", res.Code)
	}
}

func TestPortalEmbedded(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.PortalFrameAncestors = "https://app.example.com" })
	appID, _ := e.newApp("A", "https://a.example.com/hook")
	b := e.browser()
	b.loginPortal(e.portalToken(appID, false))
	c := b.cookies["herald_portal"]
	if c.SameSite != http.SameSiteNoneMode || !c.Secure || !c.Partitioned {
		t.Errorf("embedded portal cookie %+v: want SameSite=None; Secure; Partitioned", c)
	}
	if lc := b.cookies["herald_login_csrf"]; lc == nil || lc.SameSite != http.SameSiteNoneMode || !lc.Secure {
		t.Errorf("embedded login CSRF cookie %+v", lc)
	}
}

func TestPortalTheme(t *testing.T) {
	e := newEnv(t)
	appID, _ := e.newApp("A", "https://a.example.com/hook")
	b := e.browser()
	link := "/portal/login?accent=%23FF8800&logo=https%3A%2F%2Fcdn.example.com%2Flogo.png&theme=dark"
	res := b.get(link)
	want(t, res, http.StatusOK, `class="dark"`, `href="/portal/theme.css?accent=%23ff8800"`, `src="https://cdn.example.com/logo.png"`)
	b.loginPortalFrom(link, e.portalToken(appID, false))
	want(t, b.get("/portal/"), http.StatusOK, `class="dark"`, "theme.css?accent=%23ff8800", "cdn.example.com/logo.png")
	css := b.get("/portal/theme.css?accent=%23ff8800")
	want(t, css, http.StatusOK, ":root{--accent:#ff8800}")
	if css.Header().Get("Content-Type") != "text/css; charset=utf-8" {
		t.Errorf("theme.css type %q", css.Header().Get("Content-Type"))
	}
	want(t, b.get("/portal/theme.css?accent=red;}body{x"), http.StatusNotFound)

	bad := e.browser()
	res = bad.get("/portal/login?accent=red&logo=javascript:alert(1)&theme=neon")
	wantNot(t, res, "javascript:", "theme.css", `class="neon"`, `name="accent"`, `name="logo"`, `name="theme"`)
	// Invalid options posted with a good token are dropped too.
	res = bad.do("POST", "/portal/login", url.Values{
		"_csrf": hiddenFields(res.body)["_csrf"], "token": {e.portalToken(appID, false)},
		"accent": {"red"}, "logo": {"javascript:alert(1)"}, "theme": {"neon"},
	}, "X-Herald-Fetch", "1")
	want(t, res, http.StatusNoContent)
	if _, ok := bad.cookies[themeCookie]; ok {
		t.Error("invalid theme options were remembered")
	}
	for _, logo := range []string{"http://x.example.com/l.png", "https://user:pw@x.example.com/", "//x.example.com/l.png", "https://x.example.com/\"onerror=\""} {
		if validLogo(logo) {
			t.Errorf("logo %q accepted", logo)
		}
	}
	for _, a := range []string{"#abc", "#A0B1C2"} {
		if !validAccent(a) {
			t.Errorf("accent %q refused", a)
		}
	}
	for _, a := range []string{"abc", "#abcd", "#ggg", "#abc;", ""} {
		if validAccent(a) {
			t.Errorf("accent %q accepted", a)
		}
	}
}

// TestPortalThemeOnlyOnLogin checks that a link's theme options are
// remembered only by a sign-in that worked: a link without a token (or with
// a bad one) must not dress the victim's own portal.
func TestPortalThemeOnlyOnLogin(t *testing.T) {
	e := newEnv(t)
	appID, _ := e.newApp("A", "https://a.example.com/hook")
	const evil = "/portal/login?logo=https%3A%2F%2Fattacker.example%2Fx.png&theme=dark&accent=%23ff0000"

	b := e.browser()
	page := b.get(evil)
	// The login page itself shows the options and carries them to its post.
	want(t, page, http.StatusOK, `class="dark"`,
		`<input type="hidden" name="accent" value="#ff0000">`,
		`<input type="hidden" name="logo" value="https://attacker.example/x.png">`,
		`<input type="hidden" name="theme" value="dark">`)
	if c, ok := b.cookies[themeCookie]; ok {
		t.Fatalf("the login page's GET set the theme cookie %q", c.Value)
	}
	// A post with a bad token remembers nothing, and its page keeps the
	// options for the next try.
	res := b.tryLoginPortal(evil, "appsk_not-a-real-token")
	want(t, res, http.StatusUnauthorized, `<input type="hidden" name="theme" value="dark">`)
	if c, ok := b.cookies[themeCookie]; ok {
		t.Fatalf("a failed sign-in set the theme cookie %q", c.Value)
	}
	// The victim's real portal link, without options, is not dressed.
	b.loginPortal(e.portalToken(appID, false))
	portal := b.get("/portal/")
	want(t, portal, http.StatusOK, "<h1>Endpoints of A</h1>")
	wantNot(t, portal, "attacker.example", `class="dark"`, "theme.css")

	// A sign-in with the options remembers them for the session's pages.
	b.loginPortalFrom(evil, e.portalToken(appID, false))
	if _, ok := b.cookies[themeCookie]; !ok {
		t.Fatal("a sign-in with theme options did not remember them")
	}
	want(t, b.get("/portal/"), http.StatusOK, `class="dark"`, "attacker.example/x.png", "theme.css?accent=%23ff0000")
	// The next link's options replace them; a link without any clears them.
	b.loginPortalFrom("/portal/login?theme=light", e.portalToken(appID, false))
	portal = b.get("/portal/")
	want(t, portal, http.StatusOK, `class="light"`)
	wantNot(t, portal, "attacker.example", "theme.css")
	b.loginPortal(e.portalToken(appID, false))
	if c, ok := b.cookies[themeCookie]; ok {
		t.Errorf("a sign-in without options kept the theme cookie %q", c.Value)
	}
}

// TestPortalScope checks that a portal session for application A reaches
// nothing of application B, whatever IDs the URL names.
func TestPortalScope(t *testing.T) {
	e := newEnv(t)
	e.call("POST", "/api/v1/event-type", map[string]any{"name": "a.b"}, nil)
	appA, epA := e.newApp("Alpha", "https://alpha.example.com/hook")
	appB, epB := e.newApp("Bravo", "https://bravo.example.com/hook")
	msgA := e.send(appA, "a.b", map[string]any{"app": "alpha"})
	msgB := e.send(appB, "a.b", map[string]any{"app": "bravo-secret-payload"})
	e.attempt(200, "bravo-response")

	b := e.browser()
	b.loginPortal(e.portalToken(appA, false))
	page := b.get("/portal/")
	want(t, page, http.StatusOK, "alpha.example.com", "Message log")
	wantNot(t, page, "bravo", "Applications", "Overview", "Edit application")
	want(t, b.get("/portal/messages"), http.StatusOK, msgA)
	want(t, b.get("/portal/messages/"+msgA), http.StatusOK, "alpha")
	want(t, b.get("/portal/endpoints/"+epA), http.StatusOK, "alpha.example.com", "Reveal secret")
	want(t, b.get("/portal/event-types"), http.StatusOK, "a.b")
	wantNot(t, b.get("/portal/event-types"), "New event type", "Archive")

	reads := []string{
		"/portal/endpoints/" + epB, "/portal/endpoints/" + epB + "/edit", "/portal/endpoints/" + epB + "/delete",
		"/portal/messages/" + msgB, "/portal/messages?endpoint=" + epB, "/portal/messages?ref=" + msgB,
		"/portal/apps/" + appB, "/portal/apps", "/portal/event-types/new", "/portal/event-types/a.b/edit",
		"/portal/endpoints/" + epB + "?app=" + appB, "/portal/" + appB,
	}
	for _, path := range reads {
		res := b.get(path)
		if res.Code == http.StatusOK && !strings.Contains(path, "?app=") && !strings.Contains(path, "ref=") {
			t.Errorf("GET %s: 200", path)
		}
		wantNot(t, res, "bravo", appB)
	}
	for _, path := range []string{
		"/portal/endpoints/" + epB + "/disable", "/portal/endpoints/" + epB + "/rotate", "/portal/endpoints/" + epB + "/secret",
		"/portal/endpoints/" + epB + "/delete", "/portal/messages/" + msgB + "/resend",
		"/portal/endpoints/" + epB + "/edit", "/portal/event-types/a.b/archive",
	} {
		res := b.post(path, url.Values{"endpoint": {epB}, "url": {"https://evil.example.com/"}})
		if res.Code < 400 {
			t.Errorf("POST %s: %d", path, res.Code)
		}
		wantNot(t, res, "bravo", "whsec_")
	}
	// Resending A's message to B's endpoint is refused too.
	if res := b.post("/portal/messages/"+msgA+"/resend", url.Values{"endpoint": {epB}}); res.Code < 400 {
		t.Errorf("resend to another application's endpoint: %d", res.Code)
	}
	var ep endpointOut
	e.call("GET", "/api/v1/app/"+appB+"/endpoint/"+epB, nil, &ep)
	if ep.Disabled || ep.URL != "https://bravo.example.com/hook" {
		t.Errorf("B's endpoint changed: %+v", ep)
	}
	// A console session cookie is no portal session, and a portal session
	// no console one.
	cb := e.browser()
	cb.login("/console", adminToken)
	cb.cookies["herald_portal"] = &http.Cookie{Name: "herald_portal", Value: cb.cookies["herald_console"].Value, Path: "/portal"}
	if res := cb.get("/portal/"); res.Code != http.StatusSeeOther {
		t.Errorf("console session on the portal: %d", res.Code)
	}
	b.cookies["herald_console"] = &http.Cookie{Name: "herald_console", Value: b.cookies["herald_portal"].Value, Path: "/console"}
	if res := b.get("/console/apps"); res.Code != http.StatusSeeOther {
		t.Errorf("portal session on the console: %d", res.Code)
	}

	// The portal's own forms work on A.
	res := b.post("/portal/endpoints/new", url.Values{"url": {"https://alpha2.example.com/hook"}})
	if res.Code != http.StatusSeeOther || !strings.HasPrefix(res.Header().Get("Location"), "/portal/endpoints/ep_") {
		t.Fatalf("portal create endpoint: %d %s %s", res.Code, res.Header().Get("Location"), res.body)
	}
	res = b.post("/portal/endpoints/"+epA+"/secret", nil, "X-Herald-Fetch", "1")
	want(t, res, http.StatusOK, "whsec_")
	res = b.post("/portal/messages/"+msgA+"/resend", url.Values{"endpoint": {epA}})
	if res.Code != http.StatusSeeOther {
		t.Errorf("portal resend: %d %s", res.Code, res.body)
	}
}

var changeForm = regexp.MustCompile(`<form method="post" action="([^"]+)"`)

func TestPortalReadOnly(t *testing.T) {
	e := newEnv(t)
	appID, epID := e.newApp("A", "https://a.example.com/hook")
	msgID := e.send(appID, "x.y", map[string]any{"a": 1})
	b := e.browser()
	b.loginPortal(e.portalToken(appID, true))
	for _, path := range []string{"/portal/", "/portal/endpoints/" + epID, "/portal/messages", "/portal/messages/" + msgID, "/portal/event-types"} {
		res := b.get(path)
		want(t, res, http.StatusOK, "read-only")
		for _, m := range changeForm.FindAllStringSubmatch(res.body, -1) {
			if action := m[1]; action != "/portal/logout" && !strings.HasSuffix(action, "/secret") {
				t.Errorf("%s: a read-only session is offered the form %s", path, action)
			}
		}
		wantNot(t, res, "New endpoint", ">Edit<", "Resend", "Rotate")
	}
	for _, path := range []string{"/portal/endpoints/new", "/portal/endpoints/" + epID + "/edit"} {
		want(t, b.get(path), http.StatusForbidden)
	}
	for _, path := range []string{
		"/portal/endpoints/new", "/portal/endpoints/" + epID + "/disable", "/portal/endpoints/" + epID + "/rotate",
		"/portal/endpoints/" + epID + "/delete", "/portal/messages/" + msgID + "/resend",
	} {
		if res := b.post(path, url.Values{"url": {"https://b.example.com"}, "endpoint": {epID}}); res.Code != http.StatusForbidden {
			t.Errorf("POST %s: %d, want 403", path, res.Code)
		}
	}
	var ep endpointOut
	e.call("GET", "/api/v1/app/"+appID+"/endpoint/"+epID, nil, &ep)
	if ep.Disabled {
		t.Error("a read-only session disabled the endpoint")
	}
}

// TestConsoleReadOnlyKey checks a read-only admin key: pages without
// forms, and the API's refusal of a change that gets past the pages.
func TestConsoleReadOnlyKey(t *testing.T) {
	e := newEnv(t)
	appID, _ := e.newApp("A", "https://a.example.com/hook")
	b := e.browser()
	b.login("/console", e.apiKey(true))
	res := b.get("/console/apps/" + appID)
	want(t, res, http.StatusOK, "read-only")
	wantNot(t, res, "New endpoint", "Delete application")
	// The API refuses what the pages would not offer.
	rc := &reqCtx{site: e.srv.console, p: mustSession(t, e, b)}
	err := e.srv.api(t.Context(), rc.p, "POST", "/app", nil, map[string]any{"name": "x"}, nil)
	if ae, ok := err.(*apiError); !ok || ae.Status != http.StatusForbidden {
		t.Errorf("read-only create through the API: %v", err)
	}
}

func mustSession(t *testing.T, e *env, b *browser) accessPrincipal {
	t.Helper()
	p, err := e.auth.Session(t.Context(), b.cookies["herald_console"].Value)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
