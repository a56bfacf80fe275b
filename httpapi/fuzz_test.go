package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/svix/svix-webhooks/go/models"

	"github.com/herald-webhooks/herald"
)

// The fuzz targets drive the real handlers (API.ServeHTTP on a real SQLite
// store, without a network hop) and check the invariants every answer must
// keep, whatever the input:
//   - no panic and no 5xx (the recover middleware turns a panic into 500);
//   - the status is one the API documents for the route;
//   - error bodies have the documented shape;
//   - a 4xx changed nothing in the store;
//   - a 2xx body decodes into the Svix SDK model of the answer.

// fuzzAppUID is the uid of the application every fuzz target works in.
const fuzzAppUID = "fuzzapp"

// fuzzEnv is one API and store shared by every input of a fuzz target.
type fuzzEnv struct {
	ts    *testServer
	appID string
	epID  string
	msgID string
}

// newFuzzEnv starts an API on a fresh database with one application, one
// endpoint and one message, so routes below an application have something
// to find.
func newFuzzEnv(tb testing.TB) *fuzzEnv {
	tb.Helper()
	e := &fuzzEnv{ts: newTestServer(tb)}
	e.reset(tb)
	return e
}

// reset deletes the fixture application (and with it everything below it)
// and creates it again, so the store stays small while a fuzzer creates
// rows.
func (e *fuzzEnv) reset(tb testing.TB) {
	tb.Helper()
	if e.appID != "" {
		if err := e.ts.Store.DeleteApplication(tb.Context(), e.appID); err != nil {
			tb.Fatal(err)
		}
	}
	var app models.ApplicationOut
	e.mustDo(tb, http.StatusCreated, &app, "POST", "/api/v1/app", `{"name":"Fuzz","uid":"`+fuzzAppUID+`"}`)
	var ep models.EndpointOut
	e.mustDo(tb, http.StatusCreated, &ep, "POST", "/api/v1/app/"+fuzzAppUID+"/endpoint",
		`{"url":"https://example.com/hook","uid":"fuzzep","headers":{"X-Fixture":"1"}}`)
	var msg models.MessageOut
	e.mustDo(tb, http.StatusAccepted, &msg, "POST", "/api/v1/app/"+fuzzAppUID+"/msg",
		`{"eventType":"fixture.created","payload":{"n":1}}`)
	e.appID, e.epID, e.msgID = app.Id, ep.Id, msg.Id
}

// do serves one request straight through API.ServeHTTP. The target's query
// is set raw, so any string can be sent.
func (e *fuzzEnv) do(method, path, rawQuery string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "/", bytes.NewReader(body))
	req.URL.Path = path
	req.URL.RawQuery = rawQuery
	req.RequestURI = ""
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	e.ts.API.ServeHTTP(rec, req)
	return rec
}

// mustDo is do that fails unless the status is want, decoding into out.
func (e *fuzzEnv) mustDo(tb testing.TB, want int, out any, method, path, body string) {
	tb.Helper()
	rec := e.do(method, path, "", []byte(body))
	if rec.Code != want {
		tb.Fatalf("%s %s: status %d, want %d; body %s", method, path, rec.Code, want, rec.Body)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
		tb.Fatalf("%s %s: decode %s: %v", method, path, rec.Body, err)
	}
}

// storeDump is everything the API can change, read through the store's
// list verbs, so two dumps can be compared.
type storeDump struct {
	Apps       []*herald.Application
	EventTypes []*herald.EventType
	Endpoints  map[string][]*herald.Endpoint
	Messages   map[string][]*herald.Message
	Deliveries map[string][]*herald.Delivery
}

// dumpStore reads the whole store.
func dumpStore(tb testing.TB, store herald.Store) storeDump {
	tb.Helper()
	ctx := tb.Context()
	all := herald.ListOptions{Limit: 1 << 20}
	d := storeDump{
		Endpoints:  map[string][]*herald.Endpoint{},
		Messages:   map[string][]*herald.Message{},
		Deliveries: map[string][]*herald.Delivery{},
	}
	var err error
	if d.Apps, err = store.ListApplications(ctx, all); err != nil {
		tb.Fatal(err)
	}
	if d.EventTypes, err = store.ListEventTypes(ctx, herald.EventTypeListOptions{ListOptions: all, IncludeArchived: true}); err != nil {
		tb.Fatal(err)
	}
	for _, app := range d.Apps {
		if d.Endpoints[app.ID], err = store.ListEndpoints(ctx, app.ID, all); err != nil {
			tb.Fatal(err)
		}
		if d.Messages[app.ID], err = store.ListMessages(ctx, app.ID, herald.MessageListOptions{ListOptions: all}); err != nil {
			tb.Fatal(err)
		}
		for _, m := range d.Messages[app.ID] {
			if d.Deliveries[m.ID], err = store.ListMessageDeliveries(ctx, app.ID, m.ID); err != nil {
				tb.Fatal(err)
			}
		}
	}
	return d
}

// checkUnchanged fails when the store differs from before.
func checkUnchanged(tb testing.TB, store herald.Store, before storeDump, what string) {
	tb.Helper()
	if diff := cmp.Diff(before, dumpStore(tb, store)); diff != "" {
		tb.Fatalf("%s changed the store (-before +after):\n%s", what, diff)
	}
}

// Documented answers of the API v1 routes.
var (
	writeStatuses = []int{200, 201, 202, 204, 400, 404, 409, 413, 415, 422}
	listStatuses  = []int{200, 400, 404, 422}
)

// checkAnswer checks the status is allowed and, for an error, that the body
// has the documented shape: {"code","detail"}, or for 422
// {"detail":[{"loc","msg","type"}]} with loc starting at body, query, path
// or header.
func checkAnswer(tb testing.TB, rec *httptest.ResponseRecorder, allowed []int, what string) {
	tb.Helper()
	if !slices.Contains(allowed, rec.Code) {
		tb.Fatalf("%s: status %d not in %v; body %s", what, rec.Code, allowed, rec.Body)
	}
	if rec.Code < 400 {
		return
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		tb.Fatalf("%s: error Content-Type %q", what, ct)
	}
	dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
	dec.DisallowUnknownFields()
	if rec.Code == http.StatusUnprocessableEntity {
		var v validationBody
		if err := dec.Decode(&v); err != nil || len(v.Detail) == 0 {
			tb.Fatalf("%s: 422 body %s: %v", what, rec.Body, err)
		}
		for _, item := range v.Detail {
			if len(item.Loc) == 0 || !slices.Contains([]string{"body", "query", "path", "header"}, item.Loc[0]) ||
				item.Msg == "" || item.Type == "" {
				tb.Fatalf("%s: 422 item %+v in %s", what, item, rec.Body)
			}
		}
		return
	}
	var e errorBody
	if err := dec.Decode(&e); err != nil || e.Code == "" || e.Detail == "" {
		tb.Fatalf("%s: error body %s: %v", what, rec.Body, err)
	}
}

// decodeModel fails unless body decodes into the SDK model out.
func decodeModel(tb testing.TB, body []byte, out any, what string) {
	tb.Helper()
	if err := json.Unmarshal(body, out); err != nil {
		tb.Fatalf("%s: answer %s does not decode into %T: %v", what, body, out, err)
	}
}

// fuzzWrite sends body to method path and checks the common invariants;
// it returns the answer for the target's own checks.
func (e *fuzzEnv) fuzzWrite(t *testing.T, method, path string, body []byte) *httptest.ResponseRecorder {
	t.Helper()
	before := dumpStore(t, e.ts.Store)
	rec := e.do(method, path, "", body)
	what := method + " " + path + " " + string(body)
	checkAnswer(t, rec, writeStatuses, what)
	if rec.Code >= 400 {
		checkUnchanged(t, e.ts.Store, before, what)
	}
	return rec
}

// Seed corpora: the request shapes the Svix SDKs send, and near misses.
var (
	applicationSeeds = []string{
		`{"name":"My app"}`,
		`{"name":"My app","uid":"unique-identifier","rateLimit":10,"metadata":{"property1":"string"}}`,
		`{"name":"A","throttleRate":65535}`,
		`{"name":"A","throttleRate":0}`,
		`{"name":"A","uid":"'; DROP TABLE application;--"}`,
		`{"name":"\u0000","uid":"x"}`,
		`{"name":"A","name":"B"}`,
		`{"name":"A"} trailing`,
		`[{"name":"A"}]`,
		`null`,
		``,
		`{"name":"A","metadata":{"a":1}}`,
	}
	endpointSeeds = []string{
		`{"url":"https://example.com/webhook/"}`,
		`{"url":"https://example.com/webhook/","description":"An example endpoint","uid":"unique-ep","version":1,"disabled":false,` +
			`"filterTypes":["user.signup","user.deleted"],"channels":["project_123","group_2"],"rateLimit":10,` +
			`"metadata":{"a":"b"},"secret":"whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD","headers":{"X-Example":"123"}}`,
		`{"url":"http://127.0.0.1:8080/x","eventTypes":["a"],"throttleRate":1}`,
		`{"url":"javascript:alert(1)"}`,
		`{"url":"https://user:pass@example.com"}`,
		`{"url":"https://example.com/\r\nHost: evil"}`,
		`{"url":"https://example.com","headers":{"X-A":"b\r\nX-Injected: c"}}`,
		`{"url":"https://example.com","version":1e400}`,
		`{"url":"https://example.com","headers":{"Svix-Id":"x"}}`,
		`{"url":"https://example.com","channels":["a","a"]}`,
	}
	patchSeeds = []string{
		`{}`,
		`{"url":"https://example.org/new"}`,
		`{"description":"d","uid":null,"filterTypes":null,"channels":["c"],"throttleRate":null}`,
		`{"disabled":true,"version":2,"metadata":{"k":"v"}}`,
		`{"secret":"whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"}`,
		`{"url":null}`,
		`{"version":0}`,
		`{"uid":"fuzzep"}`,
		`{"rateLimit":-1}`,
	}
	messageSeeds = []string{
		`{"eventType":"user.signup","payload":{"email":"test@example.com","username":"test_user"}}`,
		`{"eventType":"user.signup","eventId":"evt_1","payload":{},"channels":["project_1"],"tags":["t#1"],` +
			`"payloadRetentionPeriod":90,"application":{"name":"x","uid":"fuzzapp"}}`,
		`{"eventType":"a","payload":{"sql":"'; DROP TABLE message;--","nul":"\u0000","deep":[[[[{}]]]]}}`,
		`{"eventType":"a","payload":{"n":1e400,"s":"\ud800"}}`,
		`{"eventType":"a","payload":  {"spaced" :  true }  }`,
		`{"eventType":"a","payload":[1]}`,
		`{"eventType":"a","payload":null}`,
		`{"eventType":"a","payload":{},"deliverAt":"2030-01-01T00:00:00Z"}`,
		`{"eventType":"a","payload":{},"payload":{"dup":1}}`,
	}
	querySeeds = []string{
		"", "limit=1", "limit=250", "limit=251", "limit=0", "limit=-1", "limit=abc", "limit=1000000",
		"order=ascending", "order=descending", "order=sideways", "iterator=-", "iterator=app_x&limit=2",
		"iterator=%00", "with_content=false", "with_content=maybe", "event_types=a&event_types=b",
		"channel=c", "before=2025-03-01T12:00:00Z", "after=yesterday", "status=0", "status=9",
		"status_code_class=200", "status_code_class=7", "include_archived=true", "tag=x",
		"limit=1&limit=2", "%zz", "a=b;c=d", "limit=+1", "limit=0x10", "limit=9223372036854775808",
	}
)

func FuzzCreateApplication(f *testing.F) {
	for _, s := range applicationSeeds {
		f.Add([]byte(s))
	}
	e := newFuzzEnv(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := e.fuzzWrite(t, "POST", "/api/v1/app", body)
		if rec.Code >= 300 {
			return
		}
		var out models.ApplicationOut
		decodeModel(t, rec.Body.Bytes(), &out, "create application")
		if rec.Code == http.StatusCreated {
			if err := e.ts.Store.DeleteApplication(t.Context(), out.Id); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func FuzzCreateEndpoint(f *testing.F) {
	for _, s := range endpointSeeds {
		f.Add([]byte(s))
	}
	e := newFuzzEnv(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := e.fuzzWrite(t, "POST", "/api/v1/app/"+fuzzAppUID+"/endpoint", body)
		if rec.Code >= 300 {
			return
		}
		var out models.EndpointOut
		decodeModel(t, rec.Body.Bytes(), &out, "create endpoint")
		checkStoredEndpoint(t, e.ts.Store, e.appID, out.Id)
		if err := e.ts.Store.DeleteEndpoint(t.Context(), e.appID, out.Id); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzPatchEndpoint(f *testing.F) {
	for _, s := range patchSeeds {
		f.Add([]byte(s))
	}
	e := newFuzzEnv(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := e.fuzzWrite(t, "PATCH", "/api/v1/app/"+fuzzAppUID+"/endpoint/"+e.epID, body)
		if rec.Code >= 300 {
			return
		}
		var out models.EndpointOut
		decodeModel(t, rec.Body.Bytes(), &out, "patch endpoint")
		checkStoredEndpoint(t, e.ts.Store, e.appID, e.epID)
	})
}

// checkStoredEndpoint checks what a 2xx stored can be delivered safely: a
// URL that is absolute http(s) without control characters, and custom
// headers that cannot inject other headers.
func checkStoredEndpoint(t *testing.T, store herald.Store, appID, epID string) {
	t.Helper()
	ep, err := store.GetEndpoint(t.Context(), appID, epID)
	if err != nil {
		t.Fatal(err)
	}
	var v validation
	v.checkURL(ep.URL, true, "url")
	for name, value := range ep.Headers {
		if !validHeaderName(name) || !validHeaderValue(value) {
			v.add("bad header", "headers", name)
		}
	}
	if strings.ContainsAny(ep.URL, "\x00\r\n\t ") {
		v.add("control character", "url")
	}
	if err := v.err(); err != nil {
		t.Fatalf("stored endpoint %+v: %v", ep, err)
	}
}

func FuzzCreateMessage(f *testing.F) {
	for _, s := range messageSeeds {
		f.Add([]byte(s))
	}
	e := newFuzzEnv(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := e.fuzzWrite(t, "POST", "/api/v1/app/"+fuzzAppUID+"/msg", body)
		if rec.Code >= 300 {
			return
		}
		var out models.MessageOut
		decodeModel(t, rec.Body.Bytes(), &out, "create message")
		// The payload is stored byte for byte as sent.
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(body, &fields); err != nil {
			t.Fatalf("accepted a body that is not a JSON object: %v", err)
		}
		m, err := e.ts.Store.GetMessage(t.Context(), e.appID, out.Id)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(m.Payload, fields["payload"]) {
			t.Fatalf("stored payload %q, sent %q", m.Payload, fields["payload"])
		}
		e.reset(t)
	})
}

// listRoutes are the list routes FuzzListQuery sends queries to; {ep} and
// {msg} are replaced by the fixture's IDs.
var listRoutes = []struct {
	path  string
	model func() any
}{
	{"/api/v1/app", func() any { return &models.ListResponseApplicationOut{} }},
	{"/api/v1/event-type", func() any { return &models.ListResponseEventTypeOut{} }},
	{"/api/v1/app/fuzzapp/endpoint", func() any { return &models.ListResponseEndpointOut{} }},
	{"/api/v1/app/fuzzapp/msg", func() any { return &models.ListResponseMessageOut{} }},
	{"/api/v1/app/fuzzapp/endpoint/{ep}/msg", func() any { return &models.ListResponseEndpointMessageOut{} }},
	{"/api/v1/app/fuzzapp/msg/{msg}/endpoint", func() any { return &models.ListResponseMessageEndpointOut{} }},
	{"/api/v1/app/fuzzapp/attempt/msg/{msg}", func() any { return &models.ListResponseMessageAttemptOut{} }},
	{"/api/v1/app/fuzzapp/attempt/endpoint/{ep}", func() any { return &models.ListResponseMessageAttemptOut{} }},
}

func FuzzListQuery(f *testing.F) {
	for i, q := range querySeeds {
		f.Add(uint8(i), q)
	}
	e := newFuzzEnv(f)
	before := dumpStore(f, e.ts.Store)
	f.Fuzz(func(t *testing.T, route uint8, query string) {
		rt := listRoutes[int(route)%len(listRoutes)]
		path := strings.NewReplacer("{ep}", e.epID, "{msg}", e.msgID).Replace(rt.path)
		rec := e.do("GET", path, query, nil)
		what := "GET " + path + "?" + query
		checkAnswer(t, rec, listStatuses, what)
		if rec.Code == http.StatusOK {
			decodeModel(t, rec.Body.Bytes(), rt.model(), what)
		}
		checkUnchanged(t, e.ts.Store, before, what)
	})
}
