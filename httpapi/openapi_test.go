package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/svix/svix-webhooks/go/models"

	"github.com/herald-webhooks/herald"
)

// withNodes serves GET /api/v1/node with no nodes.
func withNodes(cfg *Config) {
	cfg.Nodes = func(ctx context.Context) ([]*herald.Node, time.Time, error) { return nil, time.Now(), nil }
}

// fetchOpenAPI gets the document from ts with the admin token.
func fetchOpenAPI(t *testing.T, ts *testServer) []byte {
	t.Helper()
	res := ts.mustCall(t, http.StatusOK, nil, "GET", "/api/v1/openapi.json", "")
	if ct := res.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	return res.Body
}

// TestOpenAPIRoutesBothWays: every route the server serves (its table, and
// the mux it built from it) is in the document with its documentation row,
// and every documented path and method is served.
func TestOpenAPIRoutesBothWays(t *testing.T) {
	ts := newTestServer(t, withMetrics(prometheus.NewRegistry()), withNodes)
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID  string `json:"operationId"`
			Undocumented bool   `json:"x-herald-undocumented"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(fetchOpenAPI(t, ts), &doc); err != nil {
		t.Fatal(err)
	}

	served := map[string]bool{}
	for _, rt := range ts.API.Routes() {
		key := rt.Method + " " + rt.Pattern
		served[key] = true
		if _, ok := openapiOps[key]; !ok {
			t.Errorf("route %q has no OpenAPI documentation: add a row %q: {id: …, summary: …, query: …, in: …, status: …, out: …} to openapiOps in httpapi/openapi_ops.go (ext: true when Svix has no such operation)", key, key)
		}
		o, ok := doc.Paths[rt.Pattern][strings.ToLower(rt.Method)]
		if !ok {
			t.Errorf("route %q is served but not in the document", key)
		} else if ok && o.Undocumented && openapiOps[key].id != "" {
			t.Errorf("route %q is documented yet marked x-herald-undocumented", key)
		}
		// The mux serves the route's pattern at a path filled in.
		req, err := http.NewRequest(rt.Method, "http://herald"+fillPath(rt.Pattern), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, pattern := ts.API.mux.Handler(req); pattern != key {
			t.Errorf("mux serves %s %s with %q, want %q", rt.Method, fillPath(rt.Pattern), pattern, key)
		}
	}

	ids := map[string]string{}
	for path, item := range doc.Paths {
		for method, o := range item {
			key := strings.ToUpper(method) + " " + path
			if !served[key] {
				t.Errorf("the document has %q, which the server does not serve", key)
			}
			if other, dup := ids[o.OperationID]; dup {
				t.Errorf("operationId %q of %q is also %q's", o.OperationID, key, other)
			}
			ids[o.OperationID] = key
			if o.OperationID == "" {
				t.Errorf("%q has no operationId", key)
			}
		}
	}
	for key := range openapiOps {
		if !served[key] {
			t.Errorf("openapiOps documents %q, which the route table does not have: remove the row or serve the route", key)
		}
	}
}

// TestOpenAPIUndocumentedRoute: a route without a row is still in the
// document (path parameters, generic answers), flagged, so the document
// never lies by omission; the two-way test then names what to add.
func TestOpenAPIUndocumentedRoute(t *testing.T) {
	ts := newTestServer(t)
	a := ts.API
	a.routes = append(slices.Clone(a.routes), Route{Method: "POST", Pattern: "/api/v1/app/{app_id}/widget/{widget_id}", Access: App, Write: true})
	doc := a.OpenAPI()
	o := doc["paths"].(map[string]map[string]any)["/api/v1/app/{app_id}/widget/{widget_id}"]["post"].(map[string]any)
	if o["x-herald-undocumented"] != true {
		t.Errorf("undocumented route not flagged: %v", o)
	}
	var names []string
	for _, p := range o["parameters"].([]any) {
		names = append(names, p.(map[string]any)["name"].(string))
	}
	if want := []string{"app_id", "widget_id", "idempotency-key"}; !slices.Equal(names, want) {
		t.Errorf("parameters %v, want %v", names, want)
	}
}

// TestOpenAPIValidates: the document is valid OpenAPI 3.1 as libopenapi
// reads it and libopenapi-validator checks it against the 3.1 schema.
func TestOpenAPIValidates(t *testing.T) {
	ts := newTestServer(t, withMetrics(prometheus.NewRegistry()), withNodes)
	v := newDocValidator(t, fetchOpenAPI(t, ts))
	if ok, errs := v.ValidateDocument(); !ok {
		for _, e := range errs {
			t.Errorf("document: %s: %s", e.Message, e.Reason)
			for _, se := range e.SchemaValidationErrors {
				t.Errorf("  at %s: %s", se.FieldPath+" "+se.KeywordLocation, se.Reason)
			}
		}
	}
}

// newDocValidator reads spec with libopenapi as OpenAPI 3.1.
func newDocValidator(t *testing.T, spec []byte) validator.Validator {
	t.Helper()
	doc, err := libopenapi.NewDocument(spec)
	if err != nil {
		t.Fatal(err)
	}
	if v := doc.GetVersion(); v != "3.1.0" {
		t.Fatalf("openapi version %q", v)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("validator: %v", errs)
	}
	return v
}

// validatingTransport checks every request a client sends and every answer
// it gets against the document.
type validatingTransport struct {
	t    *testing.T
	next http.RoundTripper
	v    validator.Validator
	api  *API
	mu   sync.Mutex
	seen map[string]bool // "METHOD pattern status" checked
}

func (vt *validatingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		reqBody = b
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	res, err := vt.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resBody, err := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if err != nil {
		return nil, err
	}
	res.Body = io.NopCloser(bytes.NewReader(resBody))
	check := req.Clone(req.Context())
	check.Body = io.NopCloser(bytes.NewReader(reqBody))
	checkRes := *res
	checkRes.Body = io.NopCloser(bytes.NewReader(resBody))
	vt.mu.Lock()
	defer vt.mu.Unlock()
	// Every answer matches the document; so does every request the server
	// accepted (the failures sent on purpose are, of course, not valid).
	ok, errs := vt.v.ValidateHttpResponse(check, &checkRes)
	if res.StatusCode < 300 {
		check.Body = io.NopCloser(bytes.NewReader(reqBody))
		reqOK, reqErrs := vt.v.ValidateHttpRequest(check)
		ok, errs = ok && reqOK, append(errs, reqErrs...)
	}
	if !ok {
		for _, e := range errs {
			vt.t.Errorf("%s %s → %d %s: %s: %s", req.Method, req.URL.RequestURI(), res.StatusCode, resBody, e.Message, e.Reason)
			for _, se := range e.SchemaValidationErrors {
				vt.t.Errorf("  at %s: %s", se.FieldPath+" "+se.KeywordLocation, se.Reason)
			}
		}
	}
	_, pattern := vt.patternOf(req)
	vt.seen[pattern+" "+http.StatusText(res.StatusCode)] = true
	return res, nil
}

func (vt *validatingTransport) patternOf(req *http.Request) (*http.Request, string) {
	probe := &http.Request{Method: req.Method, URL: req.URL, Host: req.Host, Header: http.Header{}}
	_, pattern := vt.api.mux.Handler(probe)
	return probe, pattern
}

// TestOpenAPIResponsesMatch drives every route of the table with real
// requests, successes and failures (404, 422, 401, 409), the Svix Go SDK
// sending some of them, and checks each request and answer against the
// document served: the schemas say what the server really reads and
// writes.
func TestOpenAPIResponsesMatch(t *testing.T) {
	// App "acme", endpoints ep-one and ep-two, two messages with attempts.
	f := newDeliveryFixtureOn(t, 2, func(opts ...func(*Config)) *testServer {
		return newTestServer(t, append(opts, withMetrics(prometheus.NewRegistry()), withNodes)...)
	})
	ts := f.ts
	vt := &validatingTransport{t: t, next: ts.Client.Transport, api: ts.API, seen: map[string]bool{}}
	vt.v = newDocValidator(t, fetchOpenAPI(t, ts))
	ts.Client = &http.Client{Transport: vt}
	msgID, attemptID := f.msgs[0].ID, f.attempts[f.msgs[0].ID][0].ID

	call := func(want int, method, path, body string, headers ...string) response {
		t.Helper()
		return ts.mustCall(t, want, nil, method, path, body, headers...)
	}
	// Applications, event types, endpoints.
	call(201, "POST", "/api/v1/app", `{"name":"Shop","uid":"shop","metadata":{"k":"v"},"rateLimit":10}`)
	call(200, "POST", "/api/v1/app?get_if_exists=true", `{"name":"Shop","uid":"shop"}`)
	call(200, "GET", "/api/v1/app?limit=1", "")
	call(200, "GET", "/api/v1/app/shop", "")
	call(201, "PUT", "/api/v1/app/other", `{"name":"Other"}`)
	call(200, "PUT", "/api/v1/app/other", `{"name":"Other 2"}`)
	call(200, "PATCH", "/api/v1/app/other", `{"name":"Other 3","rateLimit":null}`)
	call(204, "DELETE", "/api/v1/app/other", "")
	call(404, "GET", "/api/v1/app/other", "")
	call(422, "POST", "/api/v1/app", `{"name":""}`)
	call(400, "POST", "/api/v1/app", `{`)

	call(201, "POST", "/api/v1/event-type", `{"name":"user.signup","description":"A sign-up","schemas":{"1":{"type":"object","examples":[{"user":"a"}]}}}`)
	call(200, "GET", "/api/v1/event-type?include_archived=true", "")
	call(200, "GET", "/api/v1/event-type/user.signup", "")
	call(201, "PUT", "/api/v1/event-type/user.deleted", `{"description":"Gone"}`)
	call(200, "PATCH", "/api/v1/event-type/user.deleted", `{"deprecated":true}`)
	call(204, "DELETE", "/api/v1/event-type/user.deleted", "")
	call(200, "POST", "/api/v1/event-type/import/openapi", `{"dryRun":true,"spec":{"openapi":"3.1.0","info":{"title":"t","version":"1"},"webhooks":{"order.paid":{"post":{"description":"Paid","requestBody":{"content":{"application/json":{"schema":{"type":"object"}}}}}}}}}`)

	call(201, "POST", "/api/v1/app/shop/endpoint", `{"url":"https://shop.example/hook","uid":"main","filterTypes":["user.signup"],"metadata":{},"headers":{"X-Team":"a"}}`)
	call(200, "GET", "/api/v1/app/shop/endpoint", "")
	call(200, "GET", "/api/v1/app/shop/endpoint/main", "")
	call(200, "PUT", "/api/v1/app/shop/endpoint/main", `{"url":"https://shop.example/hook2","description":"Main"}`)
	call(200, "PATCH", "/api/v1/app/shop/endpoint/main", `{"disabled":false,"channels":null}`)
	call(200, "GET", "/api/v1/app/shop/endpoint/main/secret", "")
	call(204, "POST", "/api/v1/app/shop/endpoint/main/secret/rotate", `{}`)
	call(200, "GET", "/api/v1/app/shop/endpoint/main/headers", "")
	call(204, "PUT", "/api/v1/app/shop/endpoint/main/headers", `{"headers":{"X-Team":"b","Authorization":"Bearer x"}}`)
	call(204, "PATCH", "/api/v1/app/shop/endpoint/main/headers", `{"headers":{"X-Other":"c"},"deleteHeaders":["X-Team"]}`)
	call(200, "GET", "/api/v1/app/shop/endpoint/main/headers", "")
	call(422, "POST", "/api/v1/app/shop/endpoint", `{"url":"ftp://x"}`)

	// Messages, through the Svix Go SDK too.
	client := ts.sdk(t, ts.Token)
	if _, err := client.Message.Create(t.Context(), "shop", models.MessageIn{EventType: "user.signup", Payload: map[string]any{"user": "a"}}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Message.List(t.Context(), "acme", nil); err != nil {
		t.Fatal(err)
	}
	call(202, "POST", "/api/v1/app/shop/msg?with_content=false", `{"eventType":"user.signup","eventId":"evt-1","payload":{"n":1},"channels":["eu"],"tags":["t1"]}`)
	call(200, "GET", "/api/v1/app/shop/msg?tag=t1&event_types=user.signup&with_content=true", "")
	call(200, "GET", "/api/v1/app/acme/msg/"+msgID, "")
	call(200, "GET", "/api/v1/app/acme/msg/"+msgID+"/raw", "")
	call(200, "GET", "/api/v1/app/acme/msg/"+msgID+"/endpoint", "")
	call(200, "GET", "/api/v1/app/acme/endpoint/ep-one/msg?status=1", "")
	call(200, "POST", "/api/v1/app/shop/msg/precheck/active", `{"eventType":"user.signup","channels":["eu"]}`)
	call(422, "GET", "/api/v1/app/shop/msg?iterator=nope", "")
	call(422, "POST", "/api/v1/app/shop/msg", `{"eventType":"user.signup"}`)

	call(200, "GET", "/api/v1/app/acme/attempt/msg/"+msgID+"?with_msg=true", "")
	call(200, "GET", "/api/v1/app/acme/attempt/endpoint/ep-two?status_code_class=200&with_msg=true", "")
	call(200, "GET", "/api/v1/app/acme/msg/"+msgID+"/attempt/"+attemptID, "")
	call(204, "DELETE", "/api/v1/app/acme/msg/"+msgID+"/attempt/"+attemptID+"/content", "")
	call(202, "POST", "/api/v1/app/acme/msg/"+msgID+"/endpoint/ep-one/resend", "")
	call(200, "GET", "/api/v1/app/acme/endpoint/ep-one/stats", "")
	call(200, "POST", "/api/v1/app/shop/endpoint/main/send-example", `{"eventType":"user.signup"}`)

	// Background tasks.
	var task taskOut
	ts.mustCall(t, 202, &task, "POST", "/api/v1/app/shop/endpoint/main/recover", `{"since":"2025-01-01T00:00:00Z"}`)
	call(202, "POST", "/api/v1/app/shop/endpoint/main/replay-missing", `{"since":"2025-01-01T00:00:00Z","until":"2026-01-01T00:00:00Z"}`)
	call(202, "POST", "/api/v1/app/shop/endpoint/main/bulk-replay", `{"since":"2025-01-01T00:00:00Z","status":2,"eventTypes":["user.signup"]}`)
	call(202, "POST", "/api/v1/app/shop/msg/expunge-all-contents", "")
	call(200, "GET", "/api/v1/background-task?status=running", "")
	call(200, "GET", "/api/v1/background-task/"+task.ID, "")
	call(422, "GET", "/api/v1/background-task?task=nope", "")

	// Statistics: both background tasks.
	var stats appUsageStatsOut
	ts.mustCall(t, 202, &stats, "POST", "/api/v1/stats/usage/app", `{"since":"2025-01-01T00:00:00Z","until":"2030-01-01T00:00:00Z","appIds":["acme","nope"]}`)
	if !slices.Equal(stats.UnresolvedAppIDs, []string{"nope"}) {
		t.Errorf("unresolvedAppIds %v", stats.UnresolvedAppIDs)
	}
	call(202, "POST", "/api/v1/stats/usage/app", `{"since":"2025-01-01T00:00:00Z","until":"2030-01-01T00:00:00Z"}`)
	call(422, "POST", "/api/v1/stats/usage/app", `{"since":"2025-01-01T00:00:00Z"}`)
	call(202, "PUT", "/api/v1/stats/usage/event-types", "")
	call(202, "PUT", "/api/v1/stats/usage/event-types", `{}`)
	call(400, "PUT", "/api/v1/stats/usage/event-types", `{`)
	if _, err := client.Statistics.AggregateEventTypes(t.Context()); err != nil {
		t.Fatal(err)
	}

	// Polling: a poller:// endpoint of acme, polled, a consumer's polls
	// and seek.
	call(201, "POST", "/api/v1/app/acme/endpoint", `{"url":"poller://","uid":"sink"}`)
	var page struct {
		Data     []json.RawMessage `json:"data"`
		Iterator string            `json:"iterator"`
	}
	ts.mustCall(t, 200, &page, "GET", "/api/v1/app/acme/poller/sink?limit=1&after=2020-01-01T00:00:00Z", "")
	if len(page.Data) != 1 || page.Iterator == "" {
		t.Errorf("poll: %d messages, iterator %q", len(page.Data), page.Iterator)
	}
	call(200, "GET", "/api/v1/app/acme/poller/sink?iterator="+page.Iterator+"&event_type=order.paid&channel=eu", "")
	call(422, "GET", "/api/v1/app/acme/poller/sink?iterator=nope", "")
	if _, err := client.Message.Poller.Poll(t.Context(), "acme", "sink", nil); err != nil {
		t.Fatal(err)
	}
	call(404, "GET", "/api/v1/app/acme/poller/ep-one", "")
	call(200, "POST", "/api/v1/app/acme/poller/sink/consumer/c1/seek", `{"after":"2020-01-01T00:00:00Z"}`)
	call(422, "POST", "/api/v1/app/acme/poller/sink/consumer/c1/seek", `{}`)
	ts.mustCall(t, 200, &page, "GET", "/api/v1/app/acme/poller/sink/consumer/c1?limit=1", "")
	if len(page.Data) != 1 {
		t.Errorf("consumer poll: %d messages", len(page.Data))
	}
	call(200, "GET", "/api/v1/app/acme/poller/sink/consumer/c1?iterator="+page.Iterator, "")
	call(422, "GET", "/api/v1/app/acme/poller/sink/consumer/c1?limit=0", "")

	// Operational-webhook endpoints.
	call(201, "POST", "/api/v1/operational-webhook/endpoint", `{"url":"https://ops.example/hook","uid":"ops","description":"SRE","filterTypes":["endpoint.disabled"],"rateLimit":5,"metadata":{"team":"sre"},"secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}`)
	call(200, "GET", "/api/v1/operational-webhook/endpoint?limit=10", "")
	call(200, "GET", "/api/v1/operational-webhook/endpoint/ops", "")
	call(200, "PUT", "/api/v1/operational-webhook/endpoint/ops", `{"url":"https://ops.example/hook2","disabled":false}`)
	call(204, "PUT", "/api/v1/operational-webhook/endpoint/ops/headers", `{"headers":{"X-Team":"sre","Authorization":"Bearer x"}}`)
	call(200, "GET", "/api/v1/operational-webhook/endpoint/ops/headers", "")
	if _, err := client.OperationalWebhookEndpoint.GetHeaders(t.Context(), "ops"); err != nil {
		t.Fatal(err)
	}
	call(200, "GET", "/api/v1/operational-webhook/endpoint/ops/secret", "")
	call(204, "POST", "/api/v1/operational-webhook/endpoint/ops/secret/rotate", `{}`)
	call(422, "POST", "/api/v1/operational-webhook/endpoint", `{"url":"ftp://x"}`)
	call(204, "DELETE", "/api/v1/operational-webhook/endpoint/ops", "")
	call(404, "GET", "/api/v1/operational-webhook/endpoint/ops", "")

	call(204, "DELETE", "/api/v1/app/acme/msg/"+msgID+"/content", "")
	call(204, "DELETE", "/api/v1/app/acme/msg/"+msgID, "")
	call(404, "GET", "/api/v1/app/acme/msg/"+msgID, "")

	// Access and operations.
	var key apiKeyCreatedOut
	ts.mustCall(t, 201, &key, "POST", "/api/v1/auth/api-key", `{"name":"ci","scope":"admin","readOnly":true}`)
	call(200, "GET", "/api/v1/auth/api-key?include_revoked=true", "")
	call(200, "GET", "/api/v1/auth/api-key/"+key.ID, "")
	call(204, "DELETE", "/api/v1/auth/api-key/"+key.ID, "")
	var portal appPortalAccessOut
	ts.mustCall(t, 200, &portal, "POST", "/api/v1/auth/app-portal-access/shop", `{"sessionId":"s1","expiry":3600}`)
	ts.mustCall(t, 204, nil, "POST", "/api/v1/auth/logout", "", "Authorization", "Bearer "+portal.Token)
	call(204, "POST", "/api/v1/auth/app/shop/expire-all", `{"expiry":0}`)
	call(401, "GET", "/api/v1/app", "", "Authorization", "Bearer wrong")
	call(200, "GET", "/api/v1/audit-log?since=2025-01-01T00:00:00Z", "")
	call(200, "GET", "/api/v1/node", "")
	call(200, "GET", "/api/v1/openapi.json", "")
	call(200, "GET", "/metrics", "")
	call(204, "GET", "/api/v1/health", "")
	call(204, "GET", "/api/v1/health/ping", "")
	call(200, "GET", "/healthz", "")
	call(200, "GET", "/readyz", "")
	call(204, "DELETE", "/api/v1/app/shop/endpoint/main", "")
	call(204, "DELETE", "/api/v1/app/shop", "")

	// Every route of the table was exercised and checked.
	for _, rt := range ts.API.Routes() {
		key := rt.Method + " " + rt.Pattern
		exercised := false
		for s := range vt.seen {
			exercised = exercised || strings.HasPrefix(s, key+" ")
		}
		if !exercised {
			t.Errorf("route %q was not exercised: add a call to TestOpenAPIResponsesMatch", key)
		}
	}
}

// TestOpenAPIValidatorRejects: the checks of TestOpenAPIResponsesMatch can
// fail: an answer unlike its schema (a missing required field, a wrong
// type), an undocumented status and a request body of the wrong shape are
// each refused.
func TestOpenAPIValidatorRejects(t *testing.T) {
	ts := newTestServer(t)
	v := newDocValidator(t, fetchOpenAPI(t, ts))
	for _, tc := range []struct {
		name, method, path, reqBody string
		status                      int
		resBody                     string
	}{
		{"missing field", "GET", "/api/v1/app/app_1", "", 200, `{"id":"app_1","metadata":{},"createdAt":"x","updatedAt":"x"}`},
		{"wrong type", "GET", "/api/v1/app/app_1", "", 200, `{"id":"app_1","name":7,"metadata":{},"createdAt":"x","updatedAt":"x"}`},
		{"error shape", "GET", "/api/v1/app/app_1", "", 404, `{"message":"gone"}`},
		{"validation shape", "POST", "/api/v1/app", `{"name":"a"}`, 422, `{"code":"x","detail":"y"}`},
		{"status", "GET", "/api/v1/app/app_1", "", 201, `{}`},
	} {
		req, err := http.NewRequest(tc.method, ts.URL+tc.path, strings.NewReader(tc.reqBody))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		res := &http.Response{StatusCode: tc.status, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(strings.NewReader(tc.resBody)), Request: req}
		if ok, _ := v.ValidateHttpResponse(req, res); ok {
			t.Errorf("%s: %d %s accepted", tc.name, tc.status, tc.resBody)
		}
	}
	req, err := http.NewRequest("POST", ts.URL+"/api/v1/app", strings.NewReader(`{"name":["not","a","string"]}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if ok, _ := v.ValidateHttpRequest(req); ok {
		t.Error("a request body with a list for name was accepted")
	}
}

// TestOpenAPIExtensionsMarked: Herald's extensions, operations and fields,
// carry x-herald-extension; Svix's operations do not.
func TestOpenAPIExtensionsMarked(t *testing.T) {
	ts := newTestServer(t, withMetrics(prometheus.NewRegistry()), withNodes)
	var doc struct {
		Paths map[string]map[string]struct {
			Extension bool `json:"x-herald-extension"`
		} `json:"paths"`
		Components struct {
			Schemas map[string]struct {
				Properties map[string]struct {
					Extension bool `json:"x-herald-extension"`
				} `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(fetchOpenAPI(t, ts), &doc); err != nil {
		t.Fatal(err)
	}
	for key, ext := range map[string]bool{
		"GET /api/v1/audit-log": true, "GET /api/v1/node": true, "POST /api/v1/auth/api-key": true,
		"DELETE /api/v1/app/{app_id}/msg/{msg_id}": true, "GET /api/v1/openapi.json": true,
		"GET /metrics": true, "GET /healthz": true, "GET /readyz": true,
		"POST /api/v1/app/{app_id}/msg": false, "GET /api/v1/background-task": false, "GET /api/v1/health": false,
	} {
		method, path, _ := strings.Cut(key, " ")
		if got := doc.Paths[path][strings.ToLower(method)].Extension; got != ext {
			t.Errorf("%s: x-herald-extension %v, want %v", key, got, ext)
		}
	}
	for _, f := range []struct{ schema, field string }{
		{"EndpointStatsOut", "circuit"}, {"EndpointOut", "ordering"}, {"EndpointIn", "ordering"}, {"SecretRotateIn", "keyType"},
	} {
		if !doc.Components.Schemas[f.schema].Properties[f.field].Extension {
			t.Errorf("%s.%s is not marked x-herald-extension", f.schema, f.field)
		}
	}
	if doc.Components.Schemas["EndpointOut"].Properties["url"].Extension {
		t.Error("EndpointOut.url, Svix's, is marked an extension")
	}
}
