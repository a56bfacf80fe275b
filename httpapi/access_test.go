package httpapi

import (
	"crypto/sha256"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/svix/svix-webhooks/go/models"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/access"
)

// principalCase is one kind of caller of the authorization matrix.
type principalCase struct {
	name  string
	token string
	// want returns the status class the route must answer with for this
	// caller: 401, 403, or 0 for "allowed" (anything but 401 and 403).
	want func(rt Route, pathApp string) int
}

// issue stores a token for the test server's store and returns its secret.
func issue(t *testing.T, ts *testServer, tok herald.Token, prefix string) string {
	t.Helper()
	auth := access.NewAuthenticator(ts.Store, sha256.Sum256([]byte(ts.Token)), ts.Clock.Now)
	secret, err := auth.Issue(t.Context(), &tok, prefix)
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

// TestAuthorizationMatrix walks the whole route table with every kind of
// principal: the bootstrap admin, admin API keys (one read-only), app A's
// portal tokens and keys (read-only or not), app B, and expired, revoked,
// malformed and session tokens. Each route's path names app A (by ID and
// by uid), app B, or an application that does not exist. It runs on
// SQLite and on PostgreSQL.
func TestAuthorizationMatrix(t *testing.T) {
	onEachEngine(t, testAuthorizationMatrix)
}

func testAuthorizationMatrix(t *testing.T, ts *testServer) {
	var appA, appB applicationOut
	ts.mustCall(t, http.StatusCreated, &appA, "POST", "/api/v1/app", `{"name":"A","uid":"tenant-a"}`)
	ts.mustCall(t, http.StatusCreated, &appB, "POST", "/api/v1/app", `{"name":"B","uid":"tenant-b"}`)
	later := ts.Clock.Now().Add(time.Hour)
	allCaps := slices.Clone(portalCapabilities)
	portal := func(appID string, readOnly bool, caps ...string) herald.Token {
		if caps == nil {
			caps = allCaps
		}
		return herald.Token{Kind: herald.TokenPortal, AppID: appID, ReadOnly: readOnly, Capabilities: caps, ExpiresAt: later}
	}
	adminKey := issue(t, ts, herald.Token{Kind: herald.TokenKey, Name: "ci", ExpiresAt: later}, access.PrefixKey)
	// Keys made as an operator makes them: through the API.
	newKey := func(body string) string {
		var out apiKeyCreatedOut
		ts.mustCall(t, http.StatusCreated, &out, "POST", "/api/v1/auth/api-key", body)
		return out.Key
	}
	adminKeyRO := newKey(`{"name":"auditor","scope":"admin","readOnly":true}`)
	keyAByUID := newKey(`{"name":"backend A","scope":"app:tenant-a"}`)
	keyARO := newKey(`{"name":"support A","scope":"app:` + appA.ID + `","readOnly":true}`)
	tokA := issue(t, ts, portal(appA.ID, false), access.PrefixPortal)
	tokARO := issue(t, ts, portal(appA.ID, true, capViewBase), access.PrefixPortal)
	tokASecret := issue(t, ts, portal(appA.ID, true, capViewBase, capViewSecret), access.PrefixPortal)
	tokAResend := issue(t, ts, portal(appA.ID, false, capViewBase, capCreateAttempts), access.PrefixPortal)
	// An application key (no capability limit): what scoped API keys will be.
	keyA := issue(t, ts, herald.Token{Kind: herald.TokenKey, AppID: appA.ID, ExpiresAt: later}, access.PrefixKey)
	tokB := issue(t, ts, portal(appB.ID, false), access.PrefixPortal)
	expired := issue(t, ts, herald.Token{Kind: herald.TokenPortal, AppID: appA.ID, ExpiresAt: ts.Clock.Now().Add(-time.Second)}, access.PrefixPortal)
	revoked := portal(appA.ID, false)
	revokedSecret := issue(t, ts, revoked, access.PrefixPortal)
	tokRevoked, err := ts.Store.GetTokenByHash(t.Context(), access.Hash(revokedSecret))
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.Store.RevokeToken(t.Context(), tokRevoked.ID, ts.Clock.Now()); err != nil {
		t.Fatal(err)
	}
	// A session secret is a cookie's, never a bearer token.
	session := issue(t, ts, herald.Token{Kind: herald.TokenSession, ExpiresAt: later}, access.PrefixSession)

	allowed := func(Route, string) int { return 0 }
	unauthorized := func(Route, string) int { return http.StatusUnauthorized }
	scoped := func(own string, readOnly bool, caps ...string) func(Route, string) int {
		p := access.Principal{Capabilities: caps}
		return func(rt Route, pathApp string) int {
			switch {
			case rt.Write && readOnly:
				return http.StatusForbidden
			case len(rt.Capabilities) > 0 && !p.Can(rt.Capabilities...):
				return http.StatusForbidden
			case rt.Access == Any:
				return 0
			case rt.Access == Admin:
				return http.StatusForbidden
			case pathApp != own:
				return http.StatusForbidden
			}
			return 0
		}
	}
	// The admins come last: their calls really delete applications.
	cases := []principalCase{
		{"app A", tokA, scoped("A", false, allCaps...)},
		{"app A read-only", tokARO, scoped("A", true, capViewBase)},
		{"app A read-only with secrets", tokASecret, scoped("A", true, capViewBase, capViewSecret)},
		{"app A resend only", tokAResend, scoped("A", false, capViewBase, capCreateAttempts)},
		{"app A key", keyA, scoped("A", false)},
		{"app A key by uid", keyAByUID, scoped("A", false)},
		{"app A key read-only", keyARO, scoped("A", true)},
		{"admin key read-only", adminKeyRO, func(rt Route, _ string) int {
			if rt.Write {
				return http.StatusForbidden
			}
			return 0
		}},
		{"app B", tokB, scoped("B", false, allCaps...)},
		{"expired", expired, unauthorized},
		{"revoked", revokedSecret, unauthorized},
		{"malformed", "appsk_" + strings.Repeat("x", 10), unauthorized},
		{"session secret", session, unauthorized},
		{"admin token, other case", strings.ToUpper(ts.Token), unauthorized},
		{"admin key", adminKey, allowed},
		{"bootstrap admin", ts.Token, allowed},
	}
	refs := map[string][]string{"A": {appA.ID, "tenant-a"}, "B": {appB.ID}, "none": {"app_2VZ7Qm3k4wQpXxYz1"}}
	checked := 0
	for i, pc := range cases {
		if pc.name == "admin key" {
			// No request of app A's token, nor of app B's, changed the
			// other's data.
			var list listResponse[endpointOut]
			ts.mustCall(t, http.StatusOK, &list, "GET", "/api/v1/app/"+appB.ID+"/endpoint", "")
			ts.mustCall(t, http.StatusOK, nil, "GET", "/api/v1/app/"+appA.ID, "")
			if len(list.Data) != 0 {
				t.Errorf("app B has endpoints after %v: %+v", cases[:i], list.Data)
			}
		}
		for _, rt := range ts.API.Routes() {
			if rt.Public {
				continue
			}
			for pathApp, ids := range refs {
				if !strings.Contains(rt.Pattern, "{app_id}") && pathApp != "A" {
					continue // the route names no application: once is enough
				}
				for _, id := range ids {
					path := strings.ReplaceAll(fillPath(strings.ReplaceAll(rt.Pattern, "{app_id}", "@")), "@", id)
					// Logging out would end the token under test: it has
					// its own test.
					if strings.HasSuffix(path, "/auth/logout") && pc.name != "expired" && pc.name != "revoked" && pc.name != "malformed" {
						continue
					}
					body := ""
					if rt.Method != http.MethodGet && rt.Method != http.MethodDelete {
						body = "{}"
					}
					res := ts.call(t, rt.Method, path, body, "Authorization", "Bearer "+pc.token)
					checked++
					want := pc.want(rt, pathApp)
					got := res.Status
					if want == 0 {
						if got == http.StatusUnauthorized || got == http.StatusForbidden {
							t.Errorf("%s: %s %s: %d %s, want access", pc.name, rt.Method, path, got, res.Body)
						}
					} else if got != want {
						t.Errorf("%s: %s %s: %d %s, want %d", pc.name, rt.Method, path, got, res.Body, want)
					}
				}
			}
		}
	}
	t.Logf("%d requests checked", checked)
}

// TestPortalTokenLifecycle: the app-portal-access route issues a token
// that works on its application's routes only, is stored hashed, and ends
// at logout and at expire-all.
func TestPortalTokenLifecycle(t *testing.T) {
	ts := newTestServer(t)
	var appA applicationOut
	ts.mustCall(t, http.StatusCreated, &appA, "POST", "/api/v1/app", `{"name":"A","uid":"tenant-a"}`)
	var out appPortalAccessOut
	ts.mustCall(t, http.StatusOK, &out, "POST", "/api/v1/auth/app-portal-access/tenant-a", `{"sessionId":"s1"}`)
	if !strings.HasPrefix(out.Token, access.PrefixPortal) {
		t.Fatalf("token %q", out.Token)
	}
	if want := ts.URL + "/portal/login#token=" + out.Token; out.URL != want {
		t.Errorf("url %q, want %q", out.URL, want)
	}
	tok, err := ts.Store.GetTokenByHash(t.Context(), access.Hash(out.Token))
	if err != nil {
		t.Fatal(err)
	}
	if tok.AppID != appA.ID || tok.ReadOnly || tok.SessionID != "s1" || !tok.ExpiresAt.Equal(ts.Clock.Now().Add(7*24*time.Hour)) {
		t.Errorf("stored token %+v", tok)
	}
	if !slices.Equal(tok.Capabilities, portalCapabilities) {
		t.Errorf("capabilities %v, want all of %v", tok.Capabilities, portalCapabilities)
	}
	bearer := "Bearer " + out.Token
	ts.mustCall(t, http.StatusOK, nil, "GET", "/api/v1/app/tenant-a/endpoint", "", "Authorization", bearer)
	ts.mustCall(t, http.StatusForbidden, nil, "GET", "/api/v1/app", "", "Authorization", bearer)
	// Logout revokes it; the admin token cannot be logged out.
	ts.mustCall(t, http.StatusForbidden, nil, "POST", "/api/v1/auth/logout", "")
	ts.mustCall(t, http.StatusNoContent, nil, "POST", "/api/v1/auth/logout", "", "Authorization", bearer)
	ts.mustCall(t, http.StatusUnauthorized, nil, "GET", "/api/v1/app/tenant-a/endpoint", "", "Authorization", bearer)

	// Expiry: the token ends when it says.
	ts.mustCall(t, http.StatusOK, &out, "POST", "/api/v1/auth/app-portal-access/tenant-a", `{"expiry":3600,"readOnly":true}`)
	bearer = "Bearer " + out.Token
	ts.mustCall(t, http.StatusOK, nil, "GET", "/api/v1/app/tenant-a/msg", "", "Authorization", bearer)
	ts.mustCall(t, http.StatusForbidden, nil, "POST", "/api/v1/app/tenant-a/msg", `{"eventType":"a","payload":{}}`, "Authorization", bearer)
	ts.Clock.Add(time.Hour)
	ts.mustCall(t, http.StatusUnauthorized, nil, "GET", "/api/v1/app/tenant-a/msg", "", "Authorization", bearer)

	// expire-all ends the chosen sessions' tokens only.
	var s1, s2 appPortalAccessOut
	ts.mustCall(t, http.StatusOK, &s1, "POST", "/api/v1/auth/app-portal-access/tenant-a", `{"sessionId":"one"}`)
	ts.mustCall(t, http.StatusOK, &s2, "POST", "/api/v1/auth/app-portal-access/tenant-a", `{"sessionId":"two"}`)
	ts.mustCall(t, http.StatusNoContent, nil, "POST", "/api/v1/auth/app/tenant-a/expire-all", `{"sessionIds":["one"]}`)
	ts.mustCall(t, http.StatusUnauthorized, nil, "GET", "/api/v1/app/tenant-a/msg", "", "Authorization", "Bearer "+s1.Token)
	ts.mustCall(t, http.StatusOK, nil, "GET", "/api/v1/app/tenant-a/msg", "", "Authorization", "Bearer "+s2.Token)
	ts.mustCall(t, http.StatusNoContent, nil, "POST", "/api/v1/auth/app/tenant-a/expire-all", `{}`)
	ts.mustCall(t, http.StatusUnauthorized, nil, "GET", "/api/v1/app/tenant-a/msg", "", "Authorization", "Bearer "+s2.Token)
}

// TestAppPortalAccessValidation: bad input is a 422 naming the field, and
// changes nothing; an unknown application is 404 unless the body brings one.
func TestAppPortalAccessValidation(t *testing.T) {
	ts := newTestServer(t)
	for body, loc := range map[string]string{
		`{"expiry":60}`:                   "expiry",
		`{"expiry":700000}`:               "expiry",
		`{"capabilities":["Everything"]}`: "capabilities",
		`{"sessionId":""}`:                "sessionId",
		`{"application":{"uid":"x"}}`:     "application",
	} {
		res := ts.call(t, "POST", "/api/v1/auth/app-portal-access/new-tenant", body)
		if res.Status != http.StatusUnprocessableEntity || !strings.Contains(string(res.Body), `"`+loc+`"`) {
			t.Errorf("%s: %d %s, want 422 naming %s", body, res.Status, res.Body, loc)
		}
	}
	ts.mustCall(t, http.StatusNotFound, nil, "POST", "/api/v1/auth/app-portal-access/new-tenant", `{}`)
	var out appPortalAccessOut
	ts.mustCall(t, http.StatusOK, &out, "POST", "/api/v1/auth/app-portal-access/new-tenant", `{"application":{"name":"New"},"capabilities":["ViewBase"]}`)
	var app applicationOut
	ts.mustCall(t, http.StatusOK, &app, "GET", "/api/v1/app/new-tenant", "")
	tok, err := ts.Store.GetTokenByHash(t.Context(), access.Hash(out.Token))
	if err != nil {
		t.Fatal(err)
	}
	if tok.AppID != app.ID || !tok.ReadOnly {
		t.Errorf("token %+v: want app %s, read-only (ViewBase only)", tok, app.ID)
	}
	// A list with a write capability is not read-only, and holds only what
	// it names (and ViewBase).
	ts.mustCall(t, http.StatusOK, &out, "POST", "/api/v1/auth/app-portal-access/new-tenant", `{"capabilities":["CreateAttempts"]}`)
	if tok, err = ts.Store.GetTokenByHash(t.Context(), access.Hash(out.Token)); err != nil {
		t.Fatal(err)
	}
	if tok.ReadOnly || !slices.Equal(tok.Capabilities, []string{"ViewBase", "CreateAttempts"}) {
		t.Errorf("token %+v: want writable, ViewBase and CreateAttempts only", tok)
	}
	bearer := "Bearer " + out.Token
	ts.mustCall(t, http.StatusForbidden, nil, "GET", "/api/v1/app/new-tenant/endpoint/x/secret", "", "Authorization", bearer)
	ts.mustCall(t, http.StatusForbidden, nil, "POST", "/api/v1/app/new-tenant/endpoint", `{"url":"https://example.com"}`, "Authorization", bearer)
}

// TestSDKAppPortalAccess drives the portal-token routes through the
// official Svix Go SDK: appPortalAccess, the token as the SDK's own
// credential (its application only), expireAll and logout.
func TestSDKAppPortalAccess(t *testing.T) {
	ts := newTestServer(t)
	ctx := t.Context()
	admin := ts.sdk(t, ts.Token)
	a, err := admin.Application.Create(ctx, models.ApplicationIn{Name: "A", Uid: ptr("sdk-a")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := admin.Application.Create(ctx, models.ApplicationIn{Name: "B"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := admin.Authentication.AppPortalAccess(ctx, "sdk-a", models.AppPortalAccessIn{SessionId: ptr("sdk")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.Url, ts.URL+"/portal/login#token=") {
		t.Errorf("url %q", out.Url)
	}
	portal := ts.sdk(t, out.Token)
	if _, err := portal.Endpoint.Create(ctx, a.Id, models.EndpointIn{Url: "https://example.com/hook"}, nil); err != nil {
		t.Fatalf("create endpoint with the portal token: %v", err)
	}
	if _, err := portal.Endpoint.List(ctx, "sdk-a", nil); err != nil {
		t.Fatalf("list by uid: %v", err)
	}
	_, err = portal.Endpoint.List(ctx, b.Id, nil)
	wantSDKError(t, "other application", err, http.StatusForbidden, herald.EFORBIDDEN)
	_, err = portal.Application.List(ctx, nil)
	wantSDKError(t, "list applications", err, http.StatusForbidden, herald.EFORBIDDEN)
	if _, err := portal.EventType.List(ctx, nil); err != nil {
		t.Errorf("the event catalog is readable with a portal token: %v", err)
	}

	if err := admin.Authentication.ExpireAll(ctx, "sdk-a", models.ApplicationTokenExpireIn{SessionIds: []string{"other"}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := portal.Endpoint.List(ctx, a.Id, nil); err != nil {
		t.Fatalf("a token of another session was expired: %v", err)
	}
	if err := portal.Authentication.Logout(ctx, nil); err != nil {
		t.Fatal(err)
	}
	_, err = portal.Endpoint.List(ctx, a.Id, nil)
	wantSDKError(t, "after logout", err, http.StatusUnauthorized, herald.EUNAUTHORIZED)
}

// TestPortalLinkBehindProxy: without --public-url, a link is https only
// when the request came over TLS, to Herald or to a trusted proxy that
// says so; an untrusted peer's X-Forwarded-Proto is ignored.
func TestPortalLinkBehindProxy(t *testing.T) {
	for _, c := range []struct {
		trust  string
		scheme string
	}{{"", "http://"}, {"127.0.0.1, ::1", "https://"}} {
		proxies, err := access.ParseProxies(c.trust)
		if err != nil {
			t.Fatal(err)
		}
		ts := newTestServer(t, func(cfg *Config) { cfg.Proxies = proxies })
		ts.mustCall(t, http.StatusCreated, nil, "POST", "/api/v1/app", `{"name":"A","uid":"a"}`)
		var out appPortalAccessOut
		ts.mustCall(t, http.StatusOK, &out, "POST", "/api/v1/auth/app-portal-access/a", `{}`, "X-Forwarded-Proto", "https")
		if !strings.HasPrefix(out.URL, c.scheme) {
			t.Errorf("trusting %q: link %q, want %s…", c.trust, out.URL, c.scheme)
		}
	}
	ts := newTestServer(t, func(cfg *Config) { cfg.PublicURL = "https://hooks.example.com/" })
	ts.mustCall(t, http.StatusCreated, nil, "POST", "/api/v1/app", `{"name":"A","uid":"a"}`)
	var out appPortalAccessOut
	ts.mustCall(t, http.StatusOK, &out, "POST", "/api/v1/auth/app-portal-access/a", `{}`)
	if !strings.HasPrefix(out.URL, "https://hooks.example.com/portal/login#token=appsk_") {
		t.Errorf("with a public URL: %q", out.URL)
	}
}

// TestTokenLookupStoreDown: when the token store cannot be read, a token
// is neither accepted nor called invalid: the caller gets 503 and may
// retry, while the admin token, checked in memory, still authenticates.
func TestTokenLookupStoreDown(t *testing.T) {
	ts := newTestServer(t)
	var app applicationOut
	ts.mustCall(t, http.StatusCreated, &app, "POST", "/api/v1/app", `{"name":"A"}`)
	secret := issue(t, ts, herald.Token{Kind: herald.TokenPortal, AppID: app.ID, ExpiresAt: ts.Clock.Now().Add(time.Hour)}, access.PrefixPortal)
	if err := ts.Store.Close(); err != nil {
		t.Fatal(err)
	}
	res := ts.call(t, "GET", "/api/v1/app/"+app.ID+"/endpoint", "", "Authorization", "Bearer "+secret)
	if res.Status != http.StatusServiceUnavailable {
		t.Errorf("portal token with the store down: %d %s, want 503", res.Status, res.Body)
	}
	// The admin token passes authentication; the route then fails on the
	// store, which is not an authentication failure either.
	if res := ts.call(t, "GET", "/api/v1/app/"+app.ID+"/endpoint", ""); res.Status == http.StatusUnauthorized || res.Status == http.StatusForbidden {
		t.Errorf("admin token with the store down: %d %s", res.Status, res.Body)
	}
}
