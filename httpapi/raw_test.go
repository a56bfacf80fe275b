package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/signature"
)

// createApp creates an application over HTTP and returns its ID.
func createApp(t *testing.T, ts *testServer, body string) string {
	t.Helper()
	var out applicationOut
	ts.mustCall(t, http.StatusCreated, &out, "POST", "/api/v1/app", body)
	return out.ID
}

func TestHealthAndReadiness(t *testing.T) {
	ts := newTestServer(t)
	for _, path := range []string{"/api/v1/health", "/api/v1/health/ping"} {
		ts.mustCall(t, http.StatusNoContent, nil, "GET", path, "", "Authorization", "")
	}
	ts.mustCall(t, http.StatusOK, nil, "GET", "/healthz", "", "Authorization", "")
	ts.mustCall(t, http.StatusOK, nil, "GET", "/readyz", "", "Authorization", "")

	// A closed database makes the server not ready.
	if err := ts.Store.Close(); err != nil {
		t.Fatal(err)
	}
	res := ts.call(t, "GET", "/readyz", "", "Authorization", "")
	if res.Status != http.StatusServiceUnavailable || errorOut(t, res).Code != herald.EUNAVAILABLE || res.Header.Get("Retry-After") == "" {
		t.Fatalf("readyz on a closed store: %d %s %v", res.Status, res.Body, res.Header)
	}
}

func TestErrorShapes(t *testing.T) {
	ts := newTestServer(t)

	res := ts.call(t, "GET", "/api/v1/app/missing", "")
	if res.Status != http.StatusNotFound || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("missing app: %d %v", res.Status, res.Header)
	}
	if e := errorOut(t, res); e.Code != herald.ENOTFOUND || e.Detail == "" {
		t.Fatalf("missing app body %+v", e)
	}

	res = ts.call(t, "GET", "/api/v1/no-such-route", "")
	if res.Status != http.StatusNotFound || errorOut(t, res).Code != herald.ENOTFOUND {
		t.Fatalf("unknown route: %d %s", res.Status, res.Body)
	}
	res = ts.call(t, "DELETE", "/api/v1/app", "")
	if res.Status != http.StatusMethodNotAllowed || errorOut(t, res).Code != "method_not_allowed" ||
		res.Header.Get("Allow") != "GET, POST" {
		t.Fatalf("wrong method: %d %s %v", res.Status, res.Body, res.Header)
	}

	res = ts.call(t, "POST", "/api/v1/app", `{"name": "x",`)
	if res.Status != http.StatusBadRequest || errorOut(t, res).Code != herald.EBADREQUEST {
		t.Fatalf("malformed JSON: %d %s", res.Status, res.Body)
	}
	res = ts.call(t, "POST", "/api/v1/app", "name=x", "Content-Type", "application/x-www-form-urlencoded")
	if res.Status != http.StatusUnsupportedMediaType || errorOut(t, res).Code != "unsupported_media_type" {
		t.Fatalf("form body: %d %s", res.Status, res.Body)
	}
	res = ts.call(t, "POST", "/api/v1/app", "{\"name\": \"bad \xff\"}")
	if res.Status != http.StatusBadRequest {
		t.Fatalf("invalid UTF-8: %d %s", res.Status, res.Body)
	}
	// A missing content type is accepted.
	ts.mustCall(t, http.StatusCreated, nil, "POST", "/api/v1/app", `{"name":"no type"}`, "Content-Type", "")
	// Unknown fields are ignored.
	ts.mustCall(t, http.StatusCreated, nil, "POST", "/api/v1/app", `{"name":"extra","color":"blue","nested":{"a":1}}`)
}

func TestValidationLocations(t *testing.T) {
	ts := newTestServer(t)
	appID := createApp(t, ts, `{"name":"App"}`)

	tests := []struct {
		name, method, path, body string
		want                     [][]string
	}{
		{"app without name", "POST", "/api/v1/app", `{"uid":"ok"}`, [][]string{{"body", "name"}}},
		{"app with bad uid", "POST", "/api/v1/app", `{"name":"A","uid":"has space"}`, [][]string{{"body", "uid"}}},
		{"wrong type", "POST", "/api/v1/app", `{"name":5}`, [][]string{{"body", "name"}}},
		{"metadata not strings", "POST", "/api/v1/app", `{"name":"A","metadata":{"a":1}}`, [][]string{{"body", "metadata"}}},
		{"rate out of range", "POST", "/api/v1/app", `{"name":"A","throttleRate":70000}`, [][]string{{"body", "throttleRate"}}},
		{"endpoint fields", "POST", "/api/v1/app/" + appID + "/endpoint",
			`{"url":"ftp://x","uid":"","channels":["a","a"],"secret":"whsec_short","filterTypes":["bad type"],"headers":{"Svix-Id":"x","X-Ok":"a\nb"}}`,
			[][]string{{"body", "url"}, {"body", "uid"}, {"body", "filterTypes", "0"}, {"body", "channels"},
				{"body", "headers", "Svix-Id"}, {"body", "headers", "X-Ok"}, {"body", "secret"}}},
		{"endpoint url without host", "POST", "/api/v1/app/" + appID + "/endpoint", `{"url":"https://"}`, [][]string{{"body", "url"}}},
		{"too many channels", "POST", "/api/v1/app/" + appID + "/endpoint",
			`{"url":"https://example.com","channels":["1","2","3","4","5","6","7","8","9","10","11"]}`, [][]string{{"body", "channels"}}},
		{"message fields", "POST", "/api/v1/app/" + appID + "/msg",
			`{"eventType":"bad type","eventId":"","payload":[1]}`,
			[][]string{{"body", "eventType"}, {"body", "eventId"}, {"body", "payload"}}},
		{"message without payload", "POST", "/api/v1/app/" + appID + "/msg", `{"eventType":"a"}`, [][]string{{"body", "payload"}}},
		{"raw payload", "POST", "/api/v1/app/" + appID + "/msg",
			`{"eventType":"a","payload":{},"transformationsParams":{"rawPayload":5,"rawpayload":"<x/>","headers":{"content-type":"not a type","x-other":"1"}}}`,
			[][]string{{"body", "transformationsParams", "headers", "content-type"}, {"body", "transformationsParams", "headers", "x-other"},
				{"body", "transformationsParams", "rawPayload"}, {"body", "transformationsParams", "rawpayload"}}},
		{"scheduled message", "POST", "/api/v1/app/" + appID + "/msg",
			`{"eventType":"a","payload":{},"deliverAt":"2030-01-01T00:00:00Z"}`, [][]string{{"body", "deliverAt"}}},
		{"payload retention out of range", "POST", "/api/v1/app/" + appID + "/msg",
			`{"eventType":"a","payload":{},"payloadRetentionPeriod":4,"payloadRetentionHours":2161}`,
			[][]string{{"body", "payloadRetentionPeriod"}, {"body", "payloadRetentionHours"}}},
		{"nested application", "POST", "/api/v1/app/" + appID + "/msg",
			`{"eventType":"a","payload":{},"application":{"name":""}}`, [][]string{{"body", "application", "name"}}},
		{"event type name", "POST", "/api/v1/event-type", `{"name":"a/b","description":"x"}`, [][]string{{"body", "name"}}},
		{"rotate grace", "POST", "/api/v1/app/" + appID + "/endpoint/x/secret/rotate", `{"gracePeriodSeconds":604801}`,
			[][]string{{"body", "gracePeriodSeconds"}}},
		{"long idempotency key", "POST", "/api/v1/app", `{"name":"A"}`, [][]string{{"header", "idempotency-key"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var headers []string
			if tt.name == "long idempotency key" {
				headers = []string{"idempotency-key", strings.Repeat("k", 257)}
			}
			items := validationOut(t, ts.call(t, tt.method, tt.path, tt.body, headers...))
			var got [][]string
			for _, item := range items {
				if item.Msg == "" || item.Type != "value_error" {
					t.Errorf("item %+v lacks a message or type", item)
				}
				got = append(got, item.Loc)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("locations (-want +got):\n%s", diff)
			}
		})
	}
	// None of the refused requests stored anything.
	apps, err := ts.Store.ListApplications(t.Context(), herald.ListOptions{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(apps) != 1 {
		t.Fatalf("%d applications stored, want 1", len(apps))
	}
	eps, err := ts.Store.ListEndpoints(t.Context(), appID, herald.ListOptions{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(eps) != 0 || countMessages(t, ts.Store, appID) != 0 {
		t.Fatalf("refused requests stored %d endpoints and %d messages", len(eps), countMessages(t, ts.Store, appID))
	}
}

func TestBodyLimit(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.MaxBodyBytes = 1024 })
	appID := createApp(t, ts, `{"name":"App"}`)
	big := fmt.Sprintf(`{"eventType":"a","payload":{"data":%q}}`, strings.Repeat("x", 2048))
	for _, headers := range [][]string{nil, {"idempotency-key", "big-1"}} {
		res := ts.call(t, "POST", "/api/v1/app/"+appID+"/msg", big, headers...)
		if res.Status != http.StatusRequestEntityTooLarge || errorOut(t, res).Code != herald.ETOOLARGE {
			t.Fatalf("oversized body (headers %v): %d %s", headers, res.Status, res.Body)
		}
	}
	if n := countMessages(t, ts.Store, appID); n != 0 {
		t.Fatalf("%d messages stored, want 0", n)
	}
}

func TestUnicodeAndExactPayload(t *testing.T) {
	ts := newTestServer(t)
	var app applicationOut
	ts.mustCall(t, http.StatusCreated, &app, "POST", "/api/v1/app", `{"name":"Ünïcødé 日本 🚀","metadata":{"région":"éu"}}`)
	if app.Name != "Ünïcødé 日本 🚀" || app.Metadata["région"] != "éu" {
		t.Fatalf("unicode app %+v", app)
	}
	// The payload comes back byte for byte: spacing, key order, escapes.
	payload := `{"z": 1,  "a": ["ü", "\u00fc", 1.50e3], "emoji": "🚀"}`
	var created messageOut
	ts.mustCall(t, http.StatusAccepted, &created, "POST", "/api/v1/app/"+app.ID+"/msg",
		`{"eventType":"unicode.test","payload":`+payload+`}`)
	if string(created.Payload) != payload {
		t.Fatalf("create answered payload %s, want %s", created.Payload, payload)
	}
	res := ts.mustCall(t, http.StatusOK, nil, "GET", "/api/v1/app/"+app.ID+"/msg/"+created.ID, "")
	if !strings.Contains(string(res.Body), `"payload":`+payload) {
		t.Fatalf("get body %s does not hold the exact payload %s", res.Body, payload)
	}
	stored, err := ts.Store.GetMessage(t.Context(), app.ID, created.ID)
	if err != nil {
		t.Fatal(err)
	}
	if string(stored.Payload) != payload {
		t.Fatalf("stored payload %s, want %s", stored.Payload, payload)
	}
	// with_content=false leaves the payload out.
	var bare messageOut
	ts.mustCall(t, http.StatusOK, &bare, "GET", "/api/v1/app/"+app.ID+"/msg/"+created.ID+"?with_content=false", "")
	if string(bare.Payload) != "{}" {
		t.Fatalf("payload without content %s", bare.Payload)
	}
}

func TestListLimits(t *testing.T) {
	ts := newTestServer(t)
	for _, limit := range []string{"0", "251", "-1", "abc"} {
		items := validationOut(t, ts.call(t, "GET", "/api/v1/app?limit="+limit, ""))
		if len(items) != 1 || !cmp.Equal(items[0].Loc, []string{"query", "limit"}) {
			t.Fatalf("limit=%s: %+v", limit, items)
		}
	}
	for _, limit := range []string{"1", "250"} {
		ts.mustCall(t, http.StatusOK, nil, "GET", "/api/v1/app?limit="+limit, "")
	}
	items := validationOut(t, ts.call(t, "GET", "/api/v1/app?order=sideways", ""))
	if !cmp.Equal(items[0].Loc, []string{"query", "order"}) {
		t.Fatalf("order: %+v", items)
	}
}

// pageOf fetches one page of IDs from a list path.
func pageOf(t *testing.T, ts *testServer, path string) (ids []string, resp listResponse[json.RawMessage]) {
	t.Helper()
	ts.mustCall(t, http.StatusOK, &resp, "GET", path, "")
	for _, raw := range resp.Data {
		var item struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(raw, &item); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, item.ID)
	}
	return ids, resp
}

func TestPagination(t *testing.T) {
	ts := newTestServer(t)
	var apps []string
	for i := range 5 {
		ts.Clock.Add(time.Second) // IDs sort by their second
		apps = append(apps, createApp(t, ts, fmt.Sprintf(`{"name":"App %d"}`, i)))
	}

	// Forwards, ascending.
	ids, p1 := pageOf(t, ts, "/api/v1/app?limit=2")
	if !cmp.Equal(ids, apps[0:2]) || p1.Done || *p1.Iterator != apps[1] || *p1.PrevIterator != "-"+apps[0] {
		t.Fatalf("page 1: %v %+v", ids, p1)
	}
	ids, p2 := pageOf(t, ts, "/api/v1/app?limit=2&iterator="+*p1.Iterator)
	if !cmp.Equal(ids, apps[2:4]) || p2.Done {
		t.Fatalf("page 2: %v %+v", ids, p2)
	}
	ids, p3 := pageOf(t, ts, "/api/v1/app?limit=2&iterator="+*p2.Iterator)
	if !cmp.Equal(ids, apps[4:5]) || !p3.Done {
		t.Fatalf("page 3: %v %+v", ids, p3)
	}
	// Backwards from page 3 gives page 2, from page 2 gives page 1.
	ids, back2 := pageOf(t, ts, "/api/v1/app?limit=2&iterator="+*p3.PrevIterator)
	if !cmp.Equal(ids, apps[2:4]) || back2.Done {
		t.Fatalf("back to page 2: %v %+v", ids, back2)
	}
	ids, back1 := pageOf(t, ts, "/api/v1/app?limit=2&iterator="+*back2.PrevIterator)
	if !cmp.Equal(ids, apps[0:2]) || !back1.Done {
		t.Fatalf("back to page 1: %v %+v", ids, back1)
	}
	// Descending.
	ids, _ = pageOf(t, ts, "/api/v1/app?limit=3&order=descending")
	if !cmp.Equal(ids, []string{apps[4], apps[3], apps[2]}) {
		t.Fatalf("descending: %v", ids)
	}

	// Messages list newest first by default and page the same way.
	var msgs []string
	for i := range 3 {
		ts.Clock.Add(time.Second)
		var m messageOut
		ts.mustCall(t, http.StatusAccepted, &m, "POST", "/api/v1/app/"+apps[0]+"/msg",
			fmt.Sprintf(`{"eventType":"e.%d","payload":{"i":%d}}`, i, i))
		msgs = append(msgs, m.ID)
	}
	ids, m1 := pageOf(t, ts, "/api/v1/app/"+apps[0]+"/msg?limit=2")
	if !cmp.Equal(ids, []string{msgs[2], msgs[1]}) || m1.Done {
		t.Fatalf("messages page 1: %v %+v", ids, m1)
	}
	ids, m2 := pageOf(t, ts, "/api/v1/app/"+apps[0]+"/msg?limit=2&iterator="+*m1.Iterator)
	if !cmp.Equal(ids, []string{msgs[0]}) || !m2.Done {
		t.Fatalf("messages page 2: %v %+v", ids, m2)
	}
	ids, _ = pageOf(t, ts, "/api/v1/app/"+apps[0]+"/msg?event_types=e.0,e.2&event_types=e.9")
	if !cmp.Equal(ids, []string{msgs[2], msgs[0]}) {
		t.Fatalf("messages by event type: %v", ids)
	}
}

func TestRequestID(t *testing.T) {
	ts := newTestServer(t)
	res := ts.call(t, "GET", "/api/v1/app", "", "x-request-id", "client-id.1_2-3")
	if got := res.Header.Get("x-request-id"); got != "client-id.1_2-3" {
		t.Fatalf("echoed request id %q", got)
	}
	// Generated when absent or unacceptable, on errors and 404s too.
	seen := map[string]bool{}
	for _, tc := range []struct{ path, header string }{
		{"/api/v1/app", ""},
		{"/api/v1/app", "bad id with spaces"},
		{"/api/v1/app", strings.Repeat("a", 129)},
		{"/no-such-route", ""},
		{"/api/v1/app/missing", ""},
	} {
		res := ts.call(t, "GET", tc.path, "", "x-request-id", tc.header)
		id := res.Header.Get("x-request-id")
		if !validRequestID(id) || id == tc.header || seen[id] {
			t.Fatalf("%s with %q: request id %q", tc.path, tc.header, id)
		}
		seen[id] = true
	}
	res = ts.call(t, "GET", "/api/v1/app", "", "Authorization", "Bearer wrong", "x-request-id", "unauth-1")
	if res.Status != http.StatusUnauthorized || res.Header.Get("x-request-id") != "unauth-1" {
		t.Fatalf("401: %d %v", res.Status, res.Header)
	}

	// Every access log line carries the request ID and route; no secret
	// or body reaches the log.
	ts.mustCall(t, http.StatusCreated, nil, "POST", "/api/v1/app", `{"name":"logged-body-marker"}`, "x-request-id", "logged-1")
	logs := ts.logs.String()
	if strings.Contains(logs, ts.Token) || strings.Contains(logs, "logged-body-marker") || strings.Contains(logs, "Bearer") {
		t.Fatalf("logs leak the token or a body:\n%s", logs)
	}
	var found bool
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if entry["request_id"] == nil || entry["request_id"] == "" {
			t.Fatalf("log line without request_id: %s", line)
		}
		if entry["request_id"] == "logged-1" && entry["msg"] == "request" {
			found = entry["route"] == "POST /api/v1/app" && entry["status"] == float64(201) && entry["method"] == "POST"
		}
	}
	if !found {
		t.Fatalf("no access log line for logged-1 with route and status:\n%s", logs)
	}
}

func TestIdempotency(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.Messages = faultyCreator{next: c.Messages} })
	appID := createApp(t, ts, `{"name":"App"}`)
	path := "/api/v1/app/" + appID + "/msg"
	body := `{"eventType":"order.paid","payload":{"n":1}}`

	first := ts.mustCall(t, http.StatusAccepted, nil, "POST", path, body, "idempotency-key", "k1")
	replay := ts.mustCall(t, http.StatusAccepted, nil, "POST", path, body, "idempotency-key", "k1")
	if string(first.Body) != string(replay.Body) {
		t.Fatalf("replay %s, want %s", replay.Body, first.Body)
	}
	res := ts.call(t, "POST", path, `{"eventType":"order.paid","payload":{"n":2}}`, "idempotency-key", "k1")
	if e := errorOut(t, res); res.Status != http.StatusConflict || e.Detail != "idempotency key already used with a different request" {
		t.Fatalf("different body: %d %s", res.Status, res.Body)
	}
	// The same key on another path is another request.
	ts.mustCall(t, http.StatusCreated, nil, "POST", "/api/v1/app", `{"name":"Other"}`, "idempotency-key", "k1")
	if n := countMessages(t, ts.Store, appID); n != 1 {
		t.Fatalf("%d messages, want 1", n)
	}

	// A 5xx forgets the key so the retry runs again; a panic is a 500 JSON.
	for _, eventType := range []string{"fault.error", "fault.panic"} {
		res = ts.call(t, "POST", path, `{"eventType":"`+eventType+`","payload":{}}`, "idempotency-key", "k-"+eventType)
		if res.Status != http.StatusInternalServerError || errorOut(t, res).Code != herald.EINTERNAL {
			t.Fatalf("%s: %d %s", eventType, res.Status, res.Body)
		}
		if strings.Contains(string(res.Body), "injected") || strings.Contains(string(res.Body), "EOF") {
			t.Fatalf("%s: internal error leaked: %s", eventType, res.Body)
		}
		rec := ts.API.idempotencyRecord(mustRequest(t, "POST", path), "k-"+eventType, nil)
		existing, err := ts.Store.BeginIdempotent(t.Context(), rec)
		if err != nil || existing != nil {
			t.Fatalf("%s: key still held after a 500: %+v %v", eventType, existing, err)
		}
	}

	// A request still in progress blocks a retry for a minute, then the
	// retry takes it over.
	a := ts.API
	rec := a.idempotencyRecord(mustRequest(t, "POST", path), "k-busy", []byte(body))
	if existing, err := ts.Store.BeginIdempotent(t.Context(), rec); err != nil || existing != nil {
		t.Fatalf("begin: %+v %v", existing, err)
	}
	res = ts.call(t, "POST", path, body, "idempotency-key", "k-busy")
	if res.Status != http.StatusConflict {
		t.Fatalf("in progress: %d %s", res.Status, res.Body)
	}
	ts.Clock.Add(2 * time.Minute)
	ts.mustCall(t, http.StatusAccepted, nil, "POST", path, body, "idempotency-key", "k-busy")
	if n := countMessages(t, ts.Store, appID); n != 2 {
		t.Fatalf("%d messages, want 2", n)
	}
}

func TestFailedRequestsChangeNothing(t *testing.T) {
	ts := newTestServer(t)
	appID := createApp(t, ts, `{"name":"App","uid":"app-1"}`)

	// A 422 with an application to create creates neither.
	validationOut(t, ts.call(t, "POST", "/api/v1/app/new-app/msg",
		`{"eventType":"bad type","payload":{},"application":{"name":"New"}}`))
	res := ts.call(t, "GET", "/api/v1/app/new-app", "")
	if res.Status != http.StatusNotFound {
		t.Fatalf("application created by a refused message: %d", res.Status)
	}
	// Without the application object, an unknown app is a 404.
	res = ts.call(t, "POST", "/api/v1/app/new-app/msg", `{"eventType":"a","payload":{}}`)
	if res.Status != http.StatusNotFound {
		t.Fatalf("message to a missing app: %d %s", res.Status, res.Body)
	}
	// With it, the app is created with the path's uid.
	var m messageOut
	ts.mustCall(t, http.StatusAccepted, &m, "POST", "/api/v1/app/new-app/msg",
		`{"eventType":"a","payload":{},"application":{"name":"New"}}`)
	var created applicationOut
	ts.mustCall(t, http.StatusOK, &created, "GET", "/api/v1/app/new-app", "")
	if created.Name != "New" || created.UID == nil || *created.UID != "new-app" {
		t.Fatalf("auto-created app %+v", created)
	}

	// A duplicate eventId is a 409 and leaves one message.
	ts.mustCall(t, http.StatusAccepted, nil, "POST", "/api/v1/app/app-1/msg", `{"eventType":"a","eventId":"evt-1","payload":{}}`)
	res = ts.call(t, "POST", "/api/v1/app/app-1/msg", `{"eventType":"a","eventId":"evt-1","payload":{"x":1}}`)
	if res.Status != http.StatusConflict || errorOut(t, res).Code != herald.ECONFLICT {
		t.Fatalf("duplicate eventId: %d %s", res.Status, res.Body)
	}
	if n := countMessages(t, ts.Store, appID); n != 1 {
		t.Fatalf("%d messages after a duplicate, want 1", n)
	}
	// A duplicate endpoint uid is a 409 and leaves one endpoint.
	ts.mustCall(t, http.StatusCreated, nil, "POST", "/api/v1/app/app-1/endpoint", `{"url":"https://example.com","uid":"ep"}`)
	res = ts.call(t, "POST", "/api/v1/app/app-1/endpoint", `{"url":"https://example.org","uid":"ep"}`)
	if res.Status != http.StatusConflict {
		t.Fatalf("duplicate endpoint uid: %d %s", res.Status, res.Body)
	}
	eps, err := ts.Store.ListEndpoints(t.Context(), appID, herald.ListOptions{Limit: 10})
	if err != nil || len(eps) != 1 || eps[0].URL != "https://example.com" {
		t.Fatalf("endpoints after a duplicate: %v %v", eps, err)
	}
}

func TestEndpointSecretGeneratedAndHeaderRules(t *testing.T) {
	ts := newTestServer(t)
	createApp(t, ts, `{"name":"App","uid":"app-1"}`)
	var ep endpointOut
	ts.mustCall(t, http.StatusCreated, &ep, "POST", "/api/v1/app/app-1/endpoint",
		`{"url":"http://example.com/hook","eventTypes":["a.b"],"rateLimit":3}`)
	if !cmp.Equal(ep.FilterTypes, []string{"a.b"}) || !cmp.Equal(ep.EventTypes, []string{"a.b"}) ||
		*ep.RateLimit != 3 || *ep.ThrottleRate != 3 || ep.Version != 1 {
		t.Fatalf("endpoint %+v", ep)
	}
	var sec endpointSecretOut
	ts.mustCall(t, http.StatusOK, &sec, "GET", "/api/v1/app/app-1/endpoint/"+ep.ID+"/secret", "")
	key, perr := signature.ParseSecret(sec.Key)
	ok := perr == nil
	if !ok || len(key) != 24 {
		t.Fatalf("generated secret %q", sec.Key)
	}
	// Rotation without a body generates a key; the old one keeps a day.
	ts.mustCall(t, http.StatusNoContent, nil, "POST", "/api/v1/app/app-1/endpoint/"+ep.ID+"/secret/rotate", "")
	stored, err := ts.Store.GetEndpoint(t.Context(), appIDOf(t, ts, "app-1"), ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(stored.Secrets) != 2 || string(stored.Secrets[1].Key) != string(key) ||
		!stored.Secrets[1].ExpiresAt.Equal(ts.Clock.Now().Add(24*time.Hour)) {
		t.Fatalf("secrets after rotate %+v", stored.Secrets)
	}
	for _, name := range []string{"Content-Type", "webhook-id", "Host", "Bad Name"} {
		items := validationOut(t, ts.call(t, "PUT", "/api/v1/app/app-1/endpoint/"+ep.ID+"/headers",
			fmt.Sprintf(`{"headers":{%q:"v"}}`, name)))
		if !cmp.Equal(items[0].Loc, []string{"body", "headers", name}) {
			t.Fatalf("header %q: %+v", name, items)
		}
	}
}

// appIDOf resolves an application ref to its ID through the store.
func appIDOf(t *testing.T, ts *testServer, ref string) string {
	t.Helper()
	app, err := ts.Store.GetApplication(t.Context(), ref)
	if err != nil {
		t.Fatal(err)
	}
	return app.ID
}

// mustRequest builds a request for computing idempotency records.
func mustRequest(t *testing.T, method, path string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestPutCreatesThenReplaces(t *testing.T) {
	ts := newTestServer(t)
	createApp(t, ts, `{"name":"App","uid":"app-1"}`)
	var ep endpointOut
	ts.mustCall(t, http.StatusCreated, &ep, "PUT", "/api/v1/app/app-1/endpoint/my-ep", `{"url":"https://example.com/a"}`)
	if ep.UID == nil || *ep.UID != "my-ep" || ep.URL != "https://example.com/a" {
		t.Fatalf("PUT-created endpoint %+v", ep)
	}
	var again endpointOut
	ts.mustCall(t, http.StatusOK, &again, "PUT", "/api/v1/app/app-1/endpoint/my-ep", `{"url":"https://example.com/b","channels":["c"]}`)
	if again.ID != ep.ID || again.URL != "https://example.com/b" || !cmp.Equal(again.Channels, []string{"c"}) {
		t.Fatalf("PUT-replaced endpoint %+v", again)
	}
	// A PUT path that cannot be a uid is refused rather than stored.
	items := validationOut(t, ts.call(t, "PUT", "/api/v1/app/app-1/endpoint/bad%20uid", `{"url":"https://example.com"}`))
	if !cmp.Equal(items[0].Loc, []string{"path", "endpoint_id"}) {
		t.Fatalf("bad PUT uid: %+v", items)
	}

	// Event types: with_content=false leaves schemas out of the list.
	ts.mustCall(t, http.StatusCreated, nil, "POST", "/api/v1/event-type",
		`{"name":"a.b","description":"d","schemas":{"1":{"type":"object"}}}`)
	var list listResponse[eventTypeOut]
	ts.mustCall(t, http.StatusOK, &list, "GET", "/api/v1/event-type?with_content=false", "")
	if len(list.Data) != 1 || list.Data[0].Schemas != nil {
		t.Fatalf("list without content %+v", list.Data)
	}
	ts.mustCall(t, http.StatusOK, &list, "GET", "/api/v1/event-type", "")
	if len(list.Data) != 1 || string(list.Data[0].Schemas) != `{"1":{"type":"object"}}` {
		t.Fatalf("list with content %+v", list.Data)
	}
	items = validationOut(t, ts.call(t, "POST", "/api/v1/event-type", `{"name":"x","schemas":{"1":5}}`))
	if !cmp.Equal(items[0].Loc, []string{"body", "schemas", "1"}) {
		t.Fatalf("bad schema: %+v", items)
	}

	// Messages: before and after bound the creation time.
	var ids []string
	for i := range 3 {
		ts.Clock.Add(time.Minute)
		var m messageOut
		ts.mustCall(t, http.StatusAccepted, &m, "POST", "/api/v1/app/app-1/msg", fmt.Sprintf(`{"eventType":"e","payload":{"i":%d},"channels":["ch-%d"]}`, i, i))
		ids = append(ids, m.ID)
	}
	start := ts.Clock.Now().Add(-3 * time.Minute)
	after := start.Add(90 * time.Second).Format(time.RFC3339)
	got, _ := pageOf(t, ts, "/api/v1/app/app-1/msg?after="+after)
	if !cmp.Equal(got, []string{ids[2], ids[1]}) {
		t.Fatalf("after %s: %v, want %v", after, got, []string{ids[2], ids[1]})
	}
	before := start.Add(150 * time.Second).Format(time.RFC3339)
	got, _ = pageOf(t, ts, "/api/v1/app/app-1/msg?before="+before+"&after="+after)
	if !cmp.Equal(got, []string{ids[1]}) {
		t.Fatalf("between: %v, want %v", got, ids[1:2])
	}
	got, _ = pageOf(t, ts, "/api/v1/app/app-1/msg?channel=ch-0")
	if !cmp.Equal(got, ids[:1]) {
		t.Fatalf("channel: %v", got)
	}
	items = validationOut(t, ts.call(t, "GET", "/api/v1/app/app-1/msg?before=yesterday", ""))
	if !cmp.Equal(items[0].Loc, []string{"query", "before"}) {
		t.Fatalf("bad before: %+v", items)
	}
}

// TestDatabaseUnavailable: when the database cannot be used, writes answer
// 503 with Retry-After (never a 202), with or without an idempotency key.
func TestDatabaseUnavailable(t *testing.T) {
	ts := newTestServer(t)
	appID := createApp(t, ts, `{"name":"App"}`)
	if err := ts.Store.Close(); err != nil {
		t.Fatal(err)
	}
	for _, headers := range [][]string{nil, {"idempotency-key", "k1"}} {
		res := ts.call(t, "POST", "/api/v1/app/"+appID+"/msg", `{"eventType":"a.b","payload":{}}`, headers...)
		if res.Status != http.StatusServiceUnavailable || errorOut(t, res).Code != herald.EUNAVAILABLE || res.Header.Get("Retry-After") == "" {
			t.Fatalf("create message with headers %v on a closed store: %d %s", headers, res.Status, res.Body)
		}
	}
}

// slowCreator commits through next after a pause, like a commit stalled on
// a slow disk; it ignores nothing: the context it gets is what the API
// passes.
type slowCreator struct {
	next  MessageCreator
	pause time.Duration
}

func (s slowCreator) CreateMessage(ctx context.Context, m *herald.Message) (herald.MessageResult, error) {
	time.Sleep(s.pause)
	return s.next.CreateMessage(ctx, m)
}

// TestIdempotentRetryAfterClientTimeout: a client that gives up while its
// message is still being committed, then retries with the same
// idempotency key, ends up with exactly one message.
func TestIdempotentRetryAfterClientTimeout(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.Messages = slowCreator{next: c.Messages, pause: 300 * time.Millisecond} })
	appID := createApp(t, ts, `{"name":"App"}`)
	body := `{"eventType":"a.b","payload":{"n":1}}`
	send := func(timeout time.Duration) (*http.Response, error) {
		req, _ := http.NewRequest("POST", ts.URL+"/api/v1/app/"+appID+"/msg", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+ts.Token)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("idempotency-key", "retry-me")
		return (&http.Client{Timeout: timeout}).Do(req)
	}
	if resp, err := send(50 * time.Millisecond); err == nil {
		resp.Body.Close()
		t.Fatalf("the first request did not time out: %d", resp.StatusCode)
	}
	time.Sleep(500 * time.Millisecond) // the abandoned request commits meanwhile
	resp, err := send(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retry = %d (replayed %q), want the first request's stored 202", resp.StatusCode, resp.Header.Get("Idempotent-Replayed"))
	}
	if n := countMessages(t, ts.Store, appID); n != 1 {
		t.Fatalf("%d messages after a timed-out request and its retry, want 1", n)
	}
}
