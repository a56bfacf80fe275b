package web

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"html"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/access"
	"github.com/herald-webhooks/herald/httpapi"
	"github.com/herald-webhooks/herald/ingest"
	"github.com/herald-webhooks/herald/internal/testclock"
	"github.com/herald-webhooks/herald/internal/testkeys"
	"github.com/herald-webhooks/herald/sqlite"
	"github.com/herald-webhooks/herald/telemetry"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// adminToken is the bootstrap admin token of every test environment.
const adminToken = "web-test-admin-token-0123456789"

// env is a real SQLite store, the real API and authenticator, and the
// pages' Server on top.
type env struct {
	t       *testing.T
	store   *sqlite.Store
	api     *httpapi.API
	auth    *access.Authenticator
	srv     *Server
	clock   *testclock.Clock
	reg     *prometheus.Registry
	metrics *telemetry.Metrics
}

func newEnv(t *testing.T, opts ...func(*Config)) *env {
	t.Helper()
	store, err := sqlite.Open(t.Context(), sqlite.Config{
		Path: filepath.Join(t.TempDir(), "herald.db"), Keyring: testkeys.Ring(t), Synchronous: "NORMAL",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	c := ingest.New(store, ingest.Config{})
	t.Cleanup(func() { _ = c.Close() })
	clk := testclock.New(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	hash := sha256.Sum256([]byte(adminToken))
	auth := access.NewAuthenticator(store, hash, clk.Now)
	reg := prometheus.NewRegistry()
	metrics := telemetry.NewMetrics(reg, telemetry.MetricsOptions{})
	api, err := httpapi.New(httpapi.Config{
		Store: store, Messages: c, AdminTokenHash: hash, Auth: auth, Now: clk.Now, Version: "test",
		CircuitState: func(string) string { return "closed" },
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{API: api, Auth: auth, Store: store, Gatherer: reg, Now: clk.Now, Version: "test-1.2.3"}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, store: store, api: api, auth: auth, srv: srv, clock: clk, reg: reg, metrics: metrics}
}

// call sends a request to the API with the admin token and decodes a 2xx
// answer into out.
func (e *env) call(method, path string, body any, out any) {
	e.t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		r = strings.NewReader(string(b))
	}
	req := httptest.NewRequestWithContext(e.t.Context(), method, path, r)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	e.api.ServeHTTP(rec, req)
	if rec.Code/100 != 2 {
		e.t.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body)
	}
	if out != nil {
		if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
			e.t.Fatalf("%s %s: decode: %v", method, path, err)
		}
	}
}

// newApp creates an application with an endpoint and returns their IDs.
func (e *env) newApp(name, url string) (appID, epID string) {
	e.t.Helper()
	var app appOut
	e.call("POST", "/api/v1/app", map[string]any{"name": name}, &app)
	var ep endpointOut
	e.call("POST", "/api/v1/app/"+app.ID+"/endpoint", map[string]any{"url": url, "description": name + " endpoint"}, &ep)
	return app.ID, ep.ID
}

// send posts a message and returns its ID.
func (e *env) send(appID, eventType string, payload any) string {
	e.t.Helper()
	var m messageOut
	e.call("POST", "/api/v1/app/"+appID+"/msg", map[string]any{"eventType": eventType, "payload": payload}, &m)
	return m.ID
}

// attempt claims the due deliveries and records an attempt for each, as
// the dispatcher would (to the endpoint's URL), with the given answer.
func (e *env) attempt(status int, response string) {
	e.t.Helper()
	ctx := e.t.Context()
	now := e.clock.Now()
	claims, err := e.store.ClaimDue(ctx, herald.ClaimOptions{Owner: "test", Now: now, LeaseUntil: now.Add(time.Minute), Limit: 100})
	if err != nil {
		e.t.Fatal(err)
	}
	var outs []herald.AttemptOutcome
	for _, c := range claims {
		d := c.Delivery
		ep, err := e.store.GetEndpoint(ctx, d.AppID, d.EndpointID)
		if err != nil {
			e.t.Fatal(err)
		}
		st, ast := herald.DeliverySucceeded, herald.AttemptSucceeded
		if status/100 != 2 {
			st, ast = herald.DeliveryFailed, herald.AttemptFailed
		}
		outs = append(outs, herald.AttemptOutcome{
			DeliveryID: d.ID, LeaseOwner: "test", LeaseUntil: d.LeaseExpiresAt, Status: st,
			Attempt: &herald.Attempt{
				ID: herald.NewIDAt("atmpt_", now), DeliveryID: d.ID, AppID: d.AppID, MessageID: d.MessageID,
				EndpointID: d.EndpointID, URL: ep.URL, ResponseStatus: status,
				Response: []byte(response), Duration: 12 * time.Millisecond, Status: ast, CreatedAt: now,
			},
		})
	}
	if err := e.store.RecordAttempts(ctx, outs); err != nil {
		e.t.Fatal(err)
	}
}

// browser is a cookie-keeping client of the Server, called in-process.
type browser struct {
	t       *testing.T
	e       *env
	cookies map[string]*http.Cookie
	// tls marks requests as made over HTTPS.
	tls    bool
	remote string
}

func (e *env) browser() *browser {
	return &browser{t: e.t, e: e, cookies: map[string]*http.Cookie{}, remote: "192.0.2.1:5555"}
}

// response is an answer with its body read.
type response struct {
	*httptest.ResponseRecorder
	body string
}

// do sends a request with the cookies whose path fits and keeps the ones
// the answer sets. headers are name/value pairs.
func (b *browser) do(method, target string, form url.Values, headers ...string) response {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req := httptest.NewRequestWithContext(b.t.Context(), method, target, body)
	req.RemoteAddr = b.remote
	if b.tls {
		req.TLS = &tls.ConnectionState{}
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	for _, c := range b.cookies {
		if strings.HasPrefix(req.URL.Path, c.Path) {
			req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
		}
	}
	rec := httptest.NewRecorder()
	b.e.srv.ServeHTTP(rec, req)
	for _, c := range rec.Result().Cookies() {
		if c.MaxAge < 0 || c.Value == "" {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c
		}
	}
	return response{rec, rec.Body.String()}
}

func (b *browser) get(target string, headers ...string) response {
	b.t.Helper()
	return b.do("GET", target, nil, headers...)
}

// post sends a form with the page's CSRF token added.
func (b *browser) post(target string, form url.Values, headers ...string) response {
	b.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if form.Get("_csrf") == "" {
		form.Set("_csrf", b.csrf(target))
	}
	return b.do("POST", target, form, headers...)
}

// csrf is the CSRF token of the session the browser holds for target's
// site.
func (b *browser) csrf(target string) string {
	name := "herald_console"
	if strings.HasPrefix(target, "/portal") {
		name = "herald_portal"
	}
	c, ok := b.cookies[name]
	if !ok {
		return "none"
	}
	return csrfToken(c.Value)
}

var csrfField = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

// login signs in to a site with token and fails the test unless it works.
func (b *browser) login(site, token string) {
	b.t.Helper()
	if res := b.tryLogin(site, token); res.Code != http.StatusSeeOther {
		b.t.Fatalf("login: %d %s", res.Code, res.body)
	}
}

// tryLogin fetches the login form and posts token with its CSRF value.
func (b *browser) tryLogin(site, token string) response {
	b.t.Helper()
	page := b.get(site + "/login")
	m := csrfField.FindStringSubmatch(page.body)
	if m == nil {
		b.t.Fatalf("no _csrf in the login page: %s", page.body)
	}
	return b.do("POST", site+"/login", url.Values{"_csrf": {m[1]}, "token": {token}})
}

// want fails the test unless res has the status and every string.
func want(t *testing.T, res response, status int, contains ...string) {
	t.Helper()
	if res.Code != status {
		t.Fatalf("status %d, want %d; body:\n%s", res.Code, status, res.body)
	}
	for _, s := range contains {
		if !strings.Contains(res.body, s) {
			t.Errorf("the page lacks %q; body:\n%s", s, res.body)
		}
	}
}

// wantNot fails the test if res has any of the strings.
func wantNot(t *testing.T, res response, absent ...string) {
	t.Helper()
	for _, s := range absent {
		if strings.Contains(res.body, s) {
			t.Errorf("the page has %q", s)
		}
	}
}

// portalToken issues an app-portal token for the application.
func (e *env) portalToken(appID string, readOnly bool) string {
	e.t.Helper()
	secret, err := e.auth.Issue(e.t.Context(), &herald.Token{
		Kind: herald.TokenPortal, Name: "test portal", AppID: appID, ReadOnly: readOnly,
		ExpiresAt: e.clock.Now().Add(24 * time.Hour),
	}, access.PrefixPortal)
	if err != nil {
		e.t.Fatal(err)
	}
	return secret
}

// apiKey issues an admin-scope API key.
func (e *env) apiKey(readOnly bool) string {
	e.t.Helper()
	secret, err := e.auth.Issue(e.t.Context(), &herald.Token{
		Kind: herald.TokenKey, Name: "test key", ReadOnly: readOnly, ExpiresAt: e.clock.Now().Add(365 * 24 * time.Hour),
	}, access.PrefixKey)
	if err != nil {
		e.t.Fatal(err)
	}
	return secret
}

// loginPortal signs in to the portal as its script does: the login page's
// CSRF value and the token, posted by fetch.
func (b *browser) loginPortal(token string) {
	b.t.Helper()
	b.loginPortalFrom("/portal/login", token)
}

// loginPortalFrom opens the portal's login page at target (a link's path
// and query) and posts the token with the form's hidden fields, as the
// page's script does.
func (b *browser) loginPortalFrom(target, token string) {
	b.t.Helper()
	if res := b.tryLoginPortal(target, token); res.Code != http.StatusNoContent {
		b.t.Fatalf("portal login: %d %s", res.Code, res.body)
	}
}

// tryLoginPortal is loginPortalFrom's post, whatever its answer.
func (b *browser) tryLoginPortal(target, token string) response {
	b.t.Helper()
	page := b.get(target)
	form := hiddenFields(page.body)
	if form.Get("_csrf") == "" {
		b.t.Fatalf("no _csrf in the portal login page: %s", page.body)
	}
	form.Set("token", token)
	return b.do("POST", "/portal/login", form, "X-Herald-Fetch", "1")
}

var hiddenField = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

// hiddenFields are a page's hidden inputs, their values unescaped.
func hiddenFields(body string) url.Values {
	form := url.Values{}
	for _, m := range hiddenField.FindAllStringSubmatch(body, -1) {
		form.Add(m[1], html.UnescapeString(m[2]))
	}
	return form
}

func nan() float64 { return math.NaN() }

func contextWithTimeout(t *testing.T, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), d)
}

type accessPrincipal = access.Principal
