package httpapi

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/access"
	"github.com/herald-webhooks/herald/internal/pgtest"
	"github.com/herald-webhooks/herald/internal/testclock"
	"github.com/herald-webhooks/herald/internal/testkeys"
	"github.com/herald-webhooks/herald/postgres"
	"github.com/herald-webhooks/herald/sqlite"
)

// auditIDs returns the IDs of every audit record of the store.
func auditIDs(t *testing.T, s herald.Store) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	for _, r := range auditRecords(t, s) {
		ids[r.ID] = true
	}
	return ids
}

// newAuditRecords returns the records of the store not in before. (IDs
// made for one second of a test's fixed clock need not sort in the order
// they were made: the order of records is by time.)
func newAuditRecords(t *testing.T, s herald.Store, before map[string]bool) []*herald.AuditRecord {
	t.Helper()
	var out []*herald.AuditRecord
	for _, r := range auditRecords(t, s) {
		if !before[r.ID] {
			out = append(out, r)
		}
	}
	return out
}

// auditRecords returns every audit record of the store, oldest first.
func auditRecords(t *testing.T, s herald.Store) []*herald.AuditRecord {
	t.Helper()
	recs, err := s.ListAuditRecords(t.Context(), herald.AuditListOptions{ListOptions: herald.ListOptions{Limit: 10_000}})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// auditFixture is application A (uid tenant-a) with endpoint E, event type
// audit.test, a message M routed to E and one attempt AT of it, and an
// admin API key named "ci".
type auditFixture struct {
	appA, epE, msgM, attempt string
	key, keyID               string
}

func newAuditFixture(t *testing.T, ts *testServer) auditFixture {
	t.Helper()
	var f auditFixture
	var app applicationOut
	ts.mustCall(t, http.StatusCreated, &app, "POST", "/api/v1/app", `{"name":"A","uid":"tenant-a"}`)
	f.appA = app.ID
	var ep endpointOut
	ts.mustCall(t, http.StatusCreated, &ep, "POST", "/api/v1/app/tenant-a/endpoint", `{"url":"https://example.com/e"}`)
	f.epE = ep.ID
	ts.mustCall(t, http.StatusCreated, nil, "POST", "/api/v1/event-type", `{"name":"audit.test","description":"d"}`)
	var msg messageOut
	ts.mustCall(t, http.StatusAccepted, &msg, "POST", "/api/v1/app/tenant-a/msg", `{"eventType":"audit.test","payload":{"a":1}}`)
	f.msgM = msg.ID
	now := ts.Clock.Now()
	claims, err := ts.Store.ClaimDue(t.Context(), herald.ClaimOptions{Owner: "t", Now: now.Add(time.Second), LeaseUntil: now.Add(time.Minute), Limit: 10})
	if err != nil || len(claims) != 1 {
		t.Fatalf("claim: %v, %d claims", err, len(claims))
	}
	d := claims[0].Delivery
	f.attempt = herald.NewIDAt(herald.PrefixAttempt, now)
	err = ts.Store.RecordAttempts(t.Context(), []herald.AttemptOutcome{{DeliveryID: d.ID, LeaseOwner: "t", Status: herald.DeliveryFailed,
		Attempt: &herald.Attempt{ID: f.attempt, DeliveryID: d.ID, AppID: d.AppID, MessageID: d.MessageID, EndpointID: d.EndpointID,
			URL: "https://example.com/e", ResponseStatus: 500, Response: []byte("oops"), Status: herald.AttemptFailed, CreatedAt: now}}})
	if err != nil {
		t.Fatal(err)
	}
	f.key = issue(t, ts, herald.Token{Kind: herald.TokenKey, Name: "ci", ExpiresAt: now.Add(time.Hour)}, access.PrefixKey)
	tok, err := ts.Store.GetTokenByHash(t.Context(), access.Hash(f.key))
	if err != nil {
		t.Fatal(err)
	}
	f.keyID = tok.ID
	return f
}

// TestAuditEveryWriteRoute walks the route table: every route that writes
// and is not marked noAudit, called once by a principal with access, leaves
// exactly one audit record naming that principal (token ID, kind, name),
// its route, request ID, client address, the resource changed and its
// application. A route marked noAudit (message creation) leaves none.
func TestAuditEveryWriteRoute(t *testing.T) {
	ts := newTestServer(t)
	f := newAuditFixture(t, ts)
	later := ts.Clock.Now().Add(time.Hour)
	portal := issue(t, ts, herald.Token{Kind: herald.TokenPortal, Name: "app-portal s1", AppID: f.appA, ExpiresAt: later}, access.PrefixPortal)
	portalTok, err := ts.Store.GetTokenByHash(t.Context(), access.Hash(portal))
	if err != nil {
		t.Fatal(err)
	}
	since := ts.Clock.Now().Add(-time.Hour).Format(time.RFC3339)
	fromID := func(body []byte) string {
		var out struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(body, &out); err != nil || out.ID == "" {
			t.Fatalf("no id in %s", body)
		}
		return out.ID
	}
	var appC, newEp, newKey, opEp, sink string
	const (
		app      = "/api/v1/app/{app_id}"
		endpoint = app + "/endpoint/{endpoint_id}"
		msg      = app + "/msg/{msg_id}"
		eventTyp = "/api/v1/event-type/{event_type_name}"
		opEps    = "/api/v1/operational-webhook/endpoint"
		opEp1    = opEps + "/{endpoint_id}"
	)
	opApp := func([]byte) string { return herald.OperationalAppID }
	E := "/api/v1/app/tenant-a/endpoint/" + f.epE
	M := "/api/v1/app/tenant-a/msg/" + f.msgM
	cases := []struct {
		method, pattern, path, body string
		token                       string // the admin key when ""
		action, resType             string
		resID, appID                func(body []byte) string
	}{
		{"POST", "/api/v1/app", "/api/v1/app", `{"name":"C","uid":"tenant-c"}`, "", "application.create", herald.AuditApplication,
			func(b []byte) string { appC = fromID(b); return appC }, func([]byte) string { return appC }},
		{"PUT", app, "/api/v1/app/tenant-c", `{"name":"C2"}`, "", "application.update", herald.AuditApplication,
			func([]byte) string { return appC }, func([]byte) string { return appC }},
		{"PATCH", app, "/api/v1/app/tenant-c", `{"name":"C3"}`, "", "application.update", herald.AuditApplication,
			func([]byte) string { return appC }, func([]byte) string { return appC }},
		{"POST", "/api/v1/event-type", "/api/v1/event-type", `{"name":"audit.two","description":"d"}`, "", "event_type.create", herald.AuditEventType,
			func([]byte) string { return "audit.two" }, func([]byte) string { return "" }},
		{"POST", "/api/v1/event-type/import/openapi", "/api/v1/event-type/import/openapi",
			`{"spec":{"openapi":"3.1.0","webhooks":{"audit.three":{"post":{"summary":"s"}}}}}`, "", "event_type.import", herald.AuditEventType,
			func([]byte) string { return "audit.three" }, func([]byte) string { return "" }},
		{"PUT", eventTyp, "/api/v1/event-type/audit.two", `{"description":"e"}`, "", "event_type.update", herald.AuditEventType,
			func([]byte) string { return "audit.two" }, func([]byte) string { return "" }},
		{"PATCH", eventTyp, "/api/v1/event-type/audit.two", `{"description":"f"}`, "", "event_type.update", herald.AuditEventType,
			func([]byte) string { return "audit.two" }, func([]byte) string { return "" }},
		{"POST", "/api/v1/auth/app-portal-access/{app_id}", "/api/v1/auth/app-portal-access/tenant-a", `{}`, "", "token.create", herald.AuditToken,
			func(b []byte) string {
				var out appPortalAccessOut
				_ = json.Unmarshal(b, &out)
				tok, err := ts.Store.GetTokenByHash(t.Context(), access.Hash(out.Token))
				if err != nil {
					t.Fatal(err)
				}
				return tok.ID
			}, func([]byte) string { return f.appA }},
		{"POST", "/api/v1/auth/logout", "/api/v1/auth/logout", "", portal, "token.revoke", herald.AuditToken,
			func([]byte) string { return portalTok.ID }, func([]byte) string { return f.appA }},
		{"POST", "/api/v1/auth/app/{app_id}/expire-all", "/api/v1/auth/app/tenant-a/expire-all", `{}`, "", "application.tokens.expire", herald.AuditApplication,
			func([]byte) string { return f.appA }, func([]byte) string { return f.appA }},
		{"POST", "/api/v1/auth/api-key", "/api/v1/auth/api-key", `{"name":"deploy","scope":"app:tenant-a"}`, "", "token.create", herald.AuditToken,
			func(b []byte) string { newKey = fromID(b); return newKey }, func([]byte) string { return f.appA }},
		{"DELETE", "/api/v1/auth/api-key/{key_id}", "", "", "", "token.revoke", herald.AuditToken,
			func([]byte) string { return newKey }, func([]byte) string { return f.appA }},
		{"POST", app + "/endpoint", "/api/v1/app/tenant-a/endpoint", `{"url":"https://example.com/new"}`, "", "endpoint.create", herald.AuditEndpoint,
			func(b []byte) string { newEp = fromID(b); return newEp }, func([]byte) string { return f.appA }},
		{"PUT", endpoint, E, `{"url":"https://example.com/e2"}`, "", "endpoint.update", herald.AuditEndpoint,
			func([]byte) string { return f.epE }, func([]byte) string { return f.appA }},
		{"PATCH", endpoint, E, `{"description":"x"}`, "", "endpoint.update", herald.AuditEndpoint,
			func([]byte) string { return f.epE }, func([]byte) string { return f.appA }},
		{"POST", endpoint + "/secret/rotate", E + "/secret/rotate", `{}`, "", "endpoint.secret.rotate", herald.AuditEndpoint,
			func([]byte) string { return f.epE }, func([]byte) string { return f.appA }},
		{"PUT", endpoint + "/headers", E + "/headers", `{"headers":{"X-One":"1"}}`, "", "endpoint.update", herald.AuditEndpoint,
			func([]byte) string { return f.epE }, func([]byte) string { return f.appA }},
		{"PATCH", endpoint + "/headers", E + "/headers", `{"headers":{"X-Two":"2"}}`, "", "endpoint.update", herald.AuditEndpoint,
			func([]byte) string { return f.epE }, func([]byte) string { return f.appA }},
		{"POST", endpoint + "/recover", E + "/recover", `{"since":"` + since + `"}`, "", "endpoint.recover", herald.AuditEndpoint,
			func([]byte) string { return f.epE }, func([]byte) string { return f.appA }},
		{"POST", endpoint + "/replay-missing", E + "/replay-missing", `{"since":"` + since + `"}`, "", "endpoint.replay_missing", herald.AuditEndpoint,
			func([]byte) string { return f.epE }, func([]byte) string { return f.appA }},
		{"POST", endpoint + "/bulk-replay", E + "/bulk-replay", `{"since":"` + since + `"}`, "", "endpoint.bulk_replay", herald.AuditEndpoint,
			func([]byte) string { return f.epE }, func([]byte) string { return f.appA }},
		{"POST", app + "/msg/expunge-all-contents", "/api/v1/app/tenant-a/msg/expunge-all-contents", "", "", "message.content.expunge_all", herald.AuditApplication,
			func([]byte) string { return f.appA }, func([]byte) string { return f.appA }},
		{"POST", "/api/v1/stats/usage/app", "/api/v1/stats/usage/app", `{"since":"` + since + `","until":"2999-01-01T00:00:00Z"}`, "", "stats.usage.app", herald.AuditTask,
			fromID, func([]byte) string { return "" }},
		{"PUT", "/api/v1/stats/usage/event-types", "/api/v1/stats/usage/event-types", "", "", "stats.usage.event_types", herald.AuditTask,
			fromID, func([]byte) string { return "" }},
		{"POST", endpoint + "/send-example", E + "/send-example", `{"eventType":"svix.ping"}`, "", "message.create", herald.AuditMessage,
			fromID, func([]byte) string { return f.appA }},
		{"POST", app + "/endpoint", "/api/v1/app/tenant-a/endpoint", `{"url":"poller://","uid":"sink"}`, "", "endpoint.create", herald.AuditEndpoint,
			func(b []byte) string { sink = fromID(b); return sink }, func([]byte) string { return f.appA }},
		{"POST", app + "/poller/{sink_id}/consumer/{consumer_id}/seek", "/api/v1/app/tenant-a/poller/sink/consumer/c1/seek", `{"after":"` + since + `"}`, "",
			"endpoint.poller.seek", herald.AuditEndpoint, func([]byte) string { return sink }, func([]byte) string { return f.appA }},
		{"DELETE", msg + "/content", M + "/content", "", "", "message.content.expunge", herald.AuditMessage,
			func([]byte) string { return f.msgM }, func([]byte) string { return f.appA }},
		{"POST", msg + "/endpoint/{endpoint_id}/resend", M + "/endpoint/" + f.epE + "/resend", `{}`, "", "message.resend", herald.AuditMessage,
			func([]byte) string { return f.msgM }, func([]byte) string { return f.appA }},
		{"DELETE", msg + "/attempt/{attempt_id}/content", M + "/attempt/" + f.attempt + "/content", "", "", "attempt.content.expunge", herald.AuditAttempt,
			func([]byte) string { return f.attempt }, func([]byte) string { return f.appA }},
		// The first operational endpoint also creates the internal
		// application: Herald's doing, not recorded; the endpoint is.
		{"POST", opEps, opEps, `{"url":"https://example.com/ops","filterTypes":["endpoint.disabled"]}`, "", "endpoint.create", herald.AuditEndpoint,
			func(b []byte) string { opEp = fromID(b); return opEp }, opApp},
		{"PUT", opEp1, "", `{"url":"https://example.com/ops2"}`, "", "endpoint.update", herald.AuditEndpoint,
			func([]byte) string { return opEp }, opApp},
		{"PUT", opEp1 + "/headers", "", `{"headers":{"X-One":"1"}}`, "", "endpoint.update", herald.AuditEndpoint,
			func([]byte) string { return opEp }, opApp},
		{"POST", opEp1 + "/secret/rotate", "", `{}`, "", "endpoint.secret.rotate", herald.AuditEndpoint,
			func([]byte) string { return opEp }, opApp},
		{"DELETE", opEp1, "", "", "", "endpoint.delete", herald.AuditEndpoint,
			func([]byte) string { return opEp }, opApp},
		// After every other use of the message: it is gone afterwards.
		{"DELETE", msg, M, "", "", "message.delete", herald.AuditMessage,
			func([]byte) string { return f.msgM }, func([]byte) string { return f.appA }},
		{"DELETE", endpoint, "", "", "", "endpoint.delete", herald.AuditEndpoint,
			func([]byte) string { return newEp }, func([]byte) string { return f.appA }},
		// Without expunge a DELETE archives: an event_type.update.
		{"DELETE", eventTyp, "/api/v1/event-type/audit.two?expunge=true", "", "", "event_type.delete", herald.AuditEventType,
			func([]byte) string { return "audit.two" }, func([]byte) string { return "" }},
		{"DELETE", app, "/api/v1/app/tenant-c", "", "", "application.delete", herald.AuditApplication,
			func([]byte) string { return appC }, func([]byte) string { return appC }},
	}
	covered := map[string]bool{}
	for _, c := range cases {
		route := c.method + " " + c.pattern
		covered[route] = true
		path := c.path
		if path == "" { // the key or endpoint created above
			switch {
			case strings.HasPrefix(c.pattern, opEps):
				path = strings.Replace(c.pattern, "{endpoint_id}", opEp, 1)
			case c.action == "token.revoke":
				path = "/api/v1/auth/api-key/" + newKey
			default:
				path = "/api/v1/app/tenant-a/endpoint/" + newEp
			}
		}
		token, tokenID, kind, name := f.key, f.keyID, herald.TokenKey, "ci"
		if c.token == portal {
			token, tokenID, kind, name = portal, portalTok.ID, herald.TokenPortal, "app-portal s1"
		}
		before := auditIDs(t, ts.Store)
		res := ts.call(t, c.method, path, c.body, "Authorization", "Bearer "+token)
		if res.Status < 200 || res.Status > 299 {
			t.Fatalf("%s %s: %d %s", c.method, path, res.Status, res.Body)
		}
		recs := newAuditRecords(t, ts.Store, before)
		if len(recs) != 1 {
			t.Fatalf("%s: %d new audit records, want exactly one", route, len(recs))
		}
		got := recs[0]
		want := herald.AuditRecord{ID: got.ID, CreatedAt: ts.Clock.Now().UTC(),
			Actor: herald.AuditActor{TokenID: tokenID, TokenKind: kind, TokenName: name, Method: c.method, Route: route,
				RequestID: res.Header.Get("x-request-id"), ClientAddr: "127.0.0.1", At: ts.Clock.Now().UTC()},
			Action: c.action, ResourceType: c.resType, ResourceID: c.resID(res.Body), AppID: c.appID(res.Body)}
		if fmt.Sprintf("%+v", *got) != fmt.Sprintf("%+v", want) {
			t.Errorf("%s: record\n %+v\nwant\n %+v", route, *got, want)
		}
		if want.Actor.RequestID == "" {
			t.Errorf("%s: no request ID on the answer", route)
		}
	}
	// Every write route of the table is audited (and tested above), or
	// says why not; message creation writes no record.
	for _, rt := range ts.API.Routes() {
		route := rt.Method + " " + rt.Pattern
		switch {
		case rt.Method == http.MethodGet:
			if rt.Audited {
				t.Errorf("%s: a GET is audited", route)
			}
		case rt.Audited && !covered[route]:
			t.Errorf("%s: audited, but this test does not call it", route)
		case !rt.Audited && rt.NotAudited == "":
			t.Errorf("%s: writes, is not audited and says not why", route)
		case !rt.Audited && covered[route]:
			t.Errorf("%s: not audited (%s), but the test expects a record", route, rt.NotAudited)
		}
	}
	before := auditIDs(t, ts.Store)
	ts.mustCall(t, http.StatusAccepted, nil, "POST", "/api/v1/app/tenant-a/msg", `{"eventType":"audit.test","payload":{}}`, "Authorization", "Bearer "+f.key)
	if recs := newAuditRecords(t, ts.Store, before); len(recs) != 0 {
		t.Errorf("POST msg left %d audit records, want none (the message log is its record)", len(recs))
	}
	// The two routes whose one request may make two changes: each change
	// has its record. app-portal-access creating the application it names
	// (application.create, token.create), and a message post creating its
	// application (application.create; the message itself has none).
	for _, c := range []struct {
		path, body string
		actions    []string
	}{
		{"/api/v1/auth/app-portal-access/tenant-d", `{"application":{"name":"D"}}`, []string{"application.create", "token.create"}},
		{"/api/v1/app/tenant-e/msg", `{"eventType":"audit.test","payload":{},"application":{"name":"E"}}`, []string{"application.create"}},
	} {
		before := auditIDs(t, ts.Store)
		res := ts.call(t, "POST", c.path, c.body, "Authorization", "Bearer "+f.key)
		if res.Status != http.StatusOK && res.Status != http.StatusAccepted {
			t.Fatalf("POST %s: %d %s", c.path, res.Status, res.Body)
		}
		var actions []string
		for _, r := range newAuditRecords(t, ts.Store, before) {
			actions = append(actions, r.Action)
			if r.Actor.TokenID != f.keyID || r.Actor.Route != "POST "+strings.Replace(strings.Replace(c.path, "tenant-d", "{app_id}", 1), "tenant-e", "{app_id}", 1) {
				t.Errorf("POST %s: record %+v", c.path, *r)
			}
		}
		slices.Sort(actions)
		if !slices.Equal(actions, c.actions) {
			t.Errorf("POST %s: actions %v, want %v", c.path, actions, c.actions)
		}
	}
}

// TestAuditFailedChangeLeavesNone: a request refused (422, 404, 409, 403)
// leaves no audit record.
func TestAuditFailedChangeLeavesNone(t *testing.T) {
	ts := newTestServer(t)
	f := newAuditFixture(t, ts)
	readOnly := issue(t, ts, herald.Token{Kind: herald.TokenKey, Name: "ro", ReadOnly: true, ExpiresAt: ts.Clock.Now().Add(time.Hour)}, access.PrefixKey)
	before := auditIDs(t, ts.Store)
	E := "/api/v1/app/tenant-a/endpoint/" + f.epE
	for _, c := range []struct {
		want                int
		token, method, path string
		body                string
	}{
		{http.StatusUnprocessableEntity, f.key, "POST", "/api/v1/app/tenant-a/endpoint", `{"url":"not a url"}`},
		{http.StatusUnprocessableEntity, f.key, "PUT", E + "/headers", `{"headers":5}`},
		{http.StatusUnprocessableEntity, f.key, "PATCH", "/api/v1/app/tenant-a", `{"rateLimit":-1}`},
		{http.StatusNotFound, f.key, "PATCH", "/api/v1/app/tenant-a/endpoint/ep_2VZ7Qm3k4wQpXxYz1", `{"description":"x"}`},
		{http.StatusNotFound, f.key, "DELETE", "/api/v1/event-type/nope", ""},
		{http.StatusNotFound, f.key, "POST", "/api/v1/app/tenant-a/msg/msg_2VZ7Qm3k4wQpXxYz1/endpoint/" + f.epE + "/resend", `{}`},
		{http.StatusConflict, f.key, "POST", "/api/v1/app", `{"name":"again","uid":"tenant-a"}`},
		{http.StatusConflict, f.key, "POST", "/api/v1/event-type", `{"name":"audit.test","description":"d"}`},
		{http.StatusForbidden, readOnly, "PATCH", E, `{"description":"x"}`},
		{http.StatusUnauthorized, "hkey_nope", "DELETE", E, ""},
	} {
		res := ts.call(t, c.method, c.path, c.body, "Authorization", "Bearer "+c.token)
		if res.Status != c.want && !(c.want == http.StatusUnprocessableEntity && res.Status == http.StatusBadRequest) {
			t.Errorf("%s %s %s: %d %s, want %d", c.method, c.path, c.body, res.Status, res.Body, c.want)
		}
	}
	if recs := newAuditRecords(t, ts.Store, before); len(recs) != 0 {
		t.Fatalf("refused requests left %d audit records: %+v", len(recs), *recs[0])
	}
}

// TestAuditSessionActor: the console and the portal call the API
// in-process as their session's principal; the record names the session
// token, the token it was opened with, and that token's name.
func TestAuditSessionActor(t *testing.T) {
	ts := newTestServer(t)
	f := newAuditFixture(t, ts)
	auth := access.NewAuthenticator(ts.Store, sha256.Sum256([]byte(ts.Token)), ts.Clock.Now)
	portal := issue(t, ts, herald.Token{Kind: herald.TokenPortal, Name: "app-portal acme", AppID: f.appA, ExpiresAt: ts.Clock.Now().Add(time.Hour)}, access.PrefixPortal)
	pp, err := auth.Bearer(t.Context(), portal)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name       string
		from       access.Principal
		parentName string
	}{{"portal", pp, "app-portal acme"}, {"console of the admin token", access.Bootstrap, "admin-token"}} {
		secret, _, err := auth.OpenSession(t.Context(), c.from, "portal", ts.Clock.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		sp, err := auth.Session(t.Context(), secret)
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequestWithContext(access.WithPrincipal(t.Context(), sp), "PATCH",
			"/api/v1/app/tenant-a/endpoint/"+f.epE, strings.NewReader(`{"description":"from `+c.name+`"}`))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		before := auditIDs(t, ts.Store)
		ts.API.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", c.name, rec.Code, rec.Body)
		}
		recs := newAuditRecords(t, ts.Store, before)
		if len(recs) != 1 {
			t.Fatalf("%s: %d new audit records, want 1", c.name, len(recs))
		}
		got := recs[0].Actor
		if got.TokenID != sp.TokenID || got.TokenKind != herald.TokenSession || got.TokenName != c.parentName || got.ParentTokenID != c.from.TokenID {
			t.Errorf("%s: actor %+v, want session %s named %q opened with %q", c.name, got, sp.TokenID, c.parentName, c.from.TokenID)
		}
	}
}

// TestAuditLogList: GET /api/v1/audit-log lists newest first in the Svix
// list shape, filters by application (ID or uid), token and time, pages
// with iterators, and is an admin route a read-only admin key may read.
func TestAuditLogList(t *testing.T) {
	ts := newTestServer(t)
	f := newAuditFixture(t, ts)
	bearer := "Bearer " + f.key
	start := ts.Clock.Now()
	for i := range 5 {
		ts.Clock.Add(time.Minute)
		ts.mustCall(t, http.StatusOK, nil, "PATCH", "/api/v1/app/tenant-a/endpoint/"+f.epE, fmt.Sprintf(`{"description":"%d"}`, i), "Authorization", bearer)
	}
	type listOut struct {
		Data []struct {
			ID, Timestamp, Action, ResourceType, ResourceID, TokenKind, TokenName, Route, Method, RequestID, ClientAddr string
			AppID, TokenID                                                                                              *string
		} `json:"data"`
		Iterator     *string `json:"iterator"`
		PrevIterator *string `json:"prevIterator"`
		Done         bool    `json:"done"`
	}
	var all listOut
	ts.mustCall(t, http.StatusOK, &all, "GET", "/api/v1/audit-log?token_id="+f.keyID, "")
	if len(all.Data) != 5 || !all.Done {
		t.Fatalf("token filter: %d records, done %v; want the key's 5", len(all.Data), all.Done)
	}
	first := all.Data[0]
	if first.Action != "endpoint.update" || first.TokenName != "ci" || first.TokenKind != "key" || *first.TokenID != f.keyID ||
		*first.AppID != f.appA || first.ResourceID != f.epE || first.Route != "PATCH /api/v1/app/{app_id}/endpoint/{endpoint_id}" ||
		first.Timestamp != formatTime(start.Add(5*time.Minute)) {
		t.Errorf("newest record %+v", first)
	}
	// Paging: two at a time, newest first, through every record.
	var seen []string
	iter := ""
	for pages := 0; ; pages++ {
		var page listOut
		ts.mustCall(t, http.StatusOK, &page, "GET", "/api/v1/audit-log?app_id=tenant-a&limit=2&iterator="+iter, "")
		for _, r := range page.Data {
			seen = append(seen, r.ID)
		}
		if page.Done || pages > 10 {
			break
		}
		iter = *page.Iterator
	}
	// The fixture's application and endpoint creation, then the 5 updates.
	if len(seen) != 7 || seen[0] != all.Data[0].ID || seen[4] != all.Data[4].ID {
		t.Errorf("paged by app: %v; want the 7 records of tenant-a, newest first", seen)
	}
	var window listOut
	q := "since=" + start.Add(2*time.Minute).Format(time.RFC3339) + "&until=" + start.Add(4*time.Minute).Format(time.RFC3339)
	ts.mustCall(t, http.StatusOK, &window, "GET", "/api/v1/audit-log?"+q, "")
	if len(window.Data) != 2 || window.Data[0].ID != all.Data[2].ID || window.Data[1].ID != all.Data[3].ID {
		t.Errorf("window [2m, 4m): %+v", window.Data)
	}
	// Bad filters are a 422 naming the field.
	for _, bad := range []string{"since=yesterday", "until=2025-01-01", "limit=0", "since=2025-03-02T00:00:00Z&until=2025-03-01T00:00:00Z"} {
		res := ts.call(t, "GET", "/api/v1/audit-log?"+bad, "")
		if res.Status != http.StatusUnprocessableEntity {
			t.Errorf("%s: %d %s, want 422", bad, res.Status, res.Body)
		}
	}
	// Admin only; read-only admin keys may read it.
	ro := issue(t, ts, herald.Token{Kind: herald.TokenKey, Name: "auditor", ReadOnly: true, ExpiresAt: ts.Clock.Now().Add(time.Hour)}, access.PrefixKey)
	ts.mustCall(t, http.StatusOK, nil, "GET", "/api/v1/audit-log", "", "Authorization", "Bearer "+ro)
	appKey := issue(t, ts, herald.Token{Kind: herald.TokenKey, Name: "a", AppID: f.appA, ExpiresAt: ts.Clock.Now().Add(time.Hour)}, access.PrefixKey)
	ts.mustCall(t, http.StatusForbidden, nil, "GET", "/api/v1/audit-log?app_id=tenant-a", "", "Authorization", "Bearer "+appKey)
}

// TestAuditRecordsHoldNoSecrets runs, on SQLite and on PostgreSQL, the
// changes that handle secrets (endpoints with signing secrets and header
// values, secret rotation to a given key, portal tokens, API keys, message
// payloads and send-example) and then reads every column of every stored
// audit row: no secret, token, header value or payload appears.
func TestAuditRecordsHoldNoSecrets(t *testing.T) {
	t.Run("SQLite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "herald.db")
		store, err := sqlite.Open(t.Context(), sqlite.Config{Path: path, Keyring: testkeys.Ring(t), Synchronous: "NORMAL"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = store.Close() })
		ts := serveStore(t, store)
		secrets := runSecretScenario(t, ts, store)
		db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		rows, err := db.QueryContext(t.Context(), `SELECT * FROM audit_log`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		var text []string
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			text = append(text, fmt.Sprintf("%s", vals))
		}
		checkNoSecrets(t, text, secrets)
	})
	t.Run("PostgreSQL", func(t *testing.T) {
		url, schema := pgtest.FreshSchema(t)
		store, err := postgres.Open(t.Context(), postgres.Config{URL: url, Keyring: testkeys.Ring(t), Schema: schema, MaxConns: 4})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = store.Close() })
		ts := serveStore(t, store)
		secrets := runSecretScenario(t, ts, store)
		conn, err := pgx.Connect(t.Context(), url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.WithoutCancel(t.Context()))
		rows, err := conn.Query(t.Context(), `SELECT row_to_json(a)::text FROM `+pgx.Identifier{schema, "audit_log"}.Sanitize()+` a`)
		if err != nil {
			t.Fatal(err)
		}
		text, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		checkNoSecrets(t, text, secrets)
	})
}

// serveStore serves the API over store on a loopback HTTP server.
func serveStore(t *testing.T, store herald.Store) *testServer {
	t.Helper()
	clock := testclock.New(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	api, err := New(Config{Store: store, Messages: newCommitter(t, store), AdminTokenHash: sha256.Sum256([]byte(testToken)),
		Logger: slog.New(slog.DiscardHandler), Now: clock.Now, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return &testServer{URL: srv.URL, Token: testToken, Client: srv.Client(), Clock: clock, API: api}
}

// runSecretScenario makes the changes that handle secrets through the API
// and returns every secret value it used or was given.
func runSecretScenario(t *testing.T, ts *testServer, store herald.Store) []string {
	t.Helper()
	const (
		signing   = "whsec_c2VjcmV0LXNpZ25pbmcta2V5LTAxMjM0NTY3"
		rotated   = "whsec_cm90YXRlZC1zaWduaW5nLWtleS0wMTIzNDU2"
		headerVal = "Bearer header-value-s3cr3t"
		otherVal  = "patched-header-s3cr3t"
		payload   = "payload-marker-7f3a"
	)
	secrets := []string{signing, rotated, strings.TrimPrefix(signing, "whsec_"), strings.TrimPrefix(rotated, "whsec_"),
		headerVal, otherVal, payload, testToken, `"success"`}
	ts.mustCall(t, http.StatusCreated, nil, "POST", "/api/v1/app", `{"name":"S","uid":"tenant-s"}`)
	ts.mustCall(t, http.StatusCreated, nil, "POST", "/api/v1/event-type", `{"name":"s.event","description":"d"}`)
	var ep endpointOut
	ts.mustCall(t, http.StatusCreated, &ep, "POST", "/api/v1/app/tenant-s/endpoint",
		`{"url":"https://example.com/s","secret":"`+signing+`","headers":{"Authorization":"`+headerVal+`"}}`)
	E := "/api/v1/app/tenant-s/endpoint/" + ep.ID
	ts.mustCall(t, http.StatusNoContent, nil, "POST", E+"/secret/rotate", `{"key":"`+rotated+`"}`)
	ts.mustCall(t, http.StatusNoContent, nil, "PATCH", E+"/headers", `{"headers":{"X-Extra":"`+otherVal+`"}}`)
	ts.mustCall(t, http.StatusNoContent, nil, "PUT", E+"/headers", `{"headers":{"Authorization":"`+headerVal+`"}}`)
	var portal appPortalAccessOut
	ts.mustCall(t, http.StatusOK, &portal, "POST", "/api/v1/auth/app-portal-access/tenant-s", `{"sessionId":"sess-1"}`)
	secrets = append(secrets, portal.Token, strings.TrimPrefix(portal.Token, access.PrefixPortal))
	auth := access.NewAuthenticator(store, sha256.Sum256([]byte(testToken)), ts.Clock.Now)
	key, err := auth.Issue(herald.WithAuditActor(t.Context(), herald.AuditActor{TokenKind: herald.AuditKindCLI, TokenName: "cli:test", Method: "CLI", Route: "keys create"}),
		&herald.Token{Kind: herald.TokenKey, Name: "sender", ExpiresAt: ts.Clock.Now().Add(time.Hour)}, access.PrefixKey)
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, key, strings.TrimPrefix(key, access.PrefixKey))
	ts.mustCall(t, http.StatusAccepted, nil, "POST", "/api/v1/app/tenant-s/msg", `{"eventType":"s.event","payload":{"m":"`+payload+`"}}`,
		"Authorization", "Bearer "+key)
	ts.mustCall(t, http.StatusOK, nil, "POST", E+"/send-example", `{"eventType":"svix.ping"}`, "Authorization", "Bearer "+key)
	ts.mustCall(t, http.StatusOK, nil, "PATCH", E, `{"description":"by portal"}`, "Authorization", "Bearer "+portal.Token)
	ts.mustCall(t, http.StatusNoContent, nil, "POST", "/api/v1/auth/logout", "", "Authorization", "Bearer "+portal.Token)
	if n := len(auditRecords(t, store)); n != 11 {
		t.Fatalf("%d audit records, want 11 (every change but the message post)", n)
	}
	return secrets
}

// checkNoSecrets fails when any row's text holds any of secrets.
func checkNoSecrets(t *testing.T, rows, secrets []string) {
	t.Helper()
	if len(rows) == 0 {
		t.Fatal("no audit rows to check")
	}
	for _, row := range rows {
		for _, s := range secrets {
			if strings.Contains(row, s) {
				t.Errorf("audit row holds secret %q: %s", s, row)
			}
		}
	}
}
