package httpapi

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/herald-webhooks/herald"
)

// hostileCase is one hostile request and exactly what the API must answer.
type hostileCase struct {
	name   string
	method string
	path   string // {ep} is the fixture endpoint's ID
	body   string
	// headers are name/value pairs added to the request.
	headers []string
	// direct serves the request through API.ServeHTTP, for headers the Go
	// client refuses to send.
	direct bool

	status int
	code   string   // the error code, for errors other than 422
	loc    []string // the location of the only 422 item
	// check inspects an accepted request's effect.
	check func(t *testing.T, ts *testServer, res response)
}

// Hostile values.
var (
	deepArrays  = strings.Repeat("[", 10000) + strings.Repeat("]", 10000)
	deepObjects = strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000)
	sqlString   = `'; DROP TABLE message;--`
	// sqlJSON is sqlString as a JSON string.
	sqlJSON = `"'; DROP TABLE message;--"`
)

// jsonList returns a JSON array of n distinct strings prefix0, prefix1, …
func jsonList(prefix string, n int) string {
	items := make([]string, n)
	for i := range items {
		items[i] = fmt.Sprintf("%q", fmt.Sprint(prefix, i))
	}
	return "[" + strings.Join(items, ",") + "]"
}

// jsonHeaders returns a JSON object of n custom headers.
func jsonHeaders(n int) string {
	items := make([]string, n)
	for i := range items {
		items[i] = fmt.Sprintf(`"X-H%d":"v"`, i)
	}
	return "{" + strings.Join(items, ",") + "}"
}

func hostileCases() []hostileCase {
	const (
		apps      = "/api/v1/app"
		endpoints = "/api/v1/app/hostile/endpoint"
		msgs      = "/api/v1/app/hostile/msg"
		rotate    = "/api/v1/app/hostile/endpoint/{ep}/secret/rotate"
		headers   = "/api/v1/app/hostile/endpoint/{ep}/headers"
	)
	bad := func(name, method, path, body, code string, status int) hostileCase {
		return hostileCase{name: name, method: method, path: path, body: body, status: status, code: code}
	}
	refused := func(name, method, path, body string, loc ...string) hostileCase {
		return hostileCase{name: name, method: method, path: path, body: body, status: http.StatusUnprocessableEntity, loc: loc}
	}
	return []hostileCase{
		// Nesting beyond encoding/json's 10,000 levels is a syntax error.
		bad("arrays 10000 deep", "POST", apps, `{"name":"A","x":`+deepArrays+`}`, herald.EBADREQUEST, 400),
		bad("objects 10000 deep", "POST", apps, `{"name":"A","x":`+deepObjects+`}`, herald.EBADREQUEST, 400),
		bad("payload arrays 10000 deep", "POST", msgs, `{"eventType":"a","payload":{"x":`+deepArrays+`}}`, herald.EBADREQUEST, 400),
		bad("payload objects 10000 deep", "POST", msgs, `{"eventType":"a","payload":`+deepObjects+`}`, herald.EBADREQUEST, 400),
		bad("10 MB body", "POST", msgs, `{"eventType":"a","payload":{"s":"`+strings.Repeat("a", 10<<20)+`"}}`, herald.ETOOLARGE, 413),

		bad("invalid UTF-8 in a name", "POST", apps, "{\"name\":\"bad \xff\"}", herald.EBADREQUEST, 400),
		bad("invalid UTF-8 in a payload", "POST", msgs, "{\"eventType\":\"a\",\"payload\":{\"s\":\"\xc3\x28\"}}", herald.EBADREQUEST, 400),
		// A raw NUL byte inside a JSON string is not JSON; an escaped one is.
		bad("raw NUL byte in a string", "POST", apps, "{\"name\":\"a\x00b\"}", herald.EBADREQUEST, 400),
		refused("NUL in a uid", "POST", apps, `{"name":"A","uid":"a\u0000b"}`, "body", "uid"),
		refused("NUL in an event type", "POST", msgs, `{"eventType":"a\u0000b","payload":{}}`, "body", "eventType"),
		refused("NUL in a URL", "POST", endpoints, `{"url":"https://example.com/\u0000"}`, "body", "url"),
		refused("NUL in a header value", "POST", endpoints, `{"url":"https://example.com","headers":{"X-A":"a\u0000b"}}`, "body", "headers", "X-A"),
		refused("NUL in a header name", "POST", endpoints, `{"url":"https://example.com","headers":{"X-\u0000":"a"}}`, "body", "headers", "X-\x00"),
		refused("NUL in a path uid", "PUT", "/api/v1/app/a%00b", `{"name":"A"}`, "path", "app_id"),
		{name: "NUL in a name is kept", method: "POST", path: apps, body: `{"name":"a\u0000b"}`, status: 201,
			check: func(t *testing.T, ts *testServer, res response) { checkAppName(t, ts, res, "a\x00b") }},
		{name: "NUL in a payload is kept", method: "POST", path: msgs, body: `{"eventType":"a","payload":{"s":"a\u0000b"}}`, status: 202,
			check: func(t *testing.T, ts *testServer, res response) { checkPayload(t, ts, res, `{"s":"a\u0000b"}`) }},

		refused("limit=1000000", "GET", apps+"?limit=1000000", "", "query", "limit"),
		refused("limit=-1", "GET", apps+"?limit=-1", "", "query", "limit"),
		refused("limit=abc", "GET", apps+"?limit=abc", "", "query", "limit"),
		refused("negative grace period", "POST", rotate, `{"gracePeriodSeconds":-1}`, "body", "gracePeriodSeconds"),
		refused("throttleRate -1", "POST", apps, `{"name":"A","throttleRate":-1}`, "body", "throttleRate"),
		refused("throttleRate 70000", "POST", endpoints, `{"url":"https://example.com","throttleRate":70000}`, "body", "throttleRate"),

		refused("SQL in a uid", "POST", apps, `{"name":"A","uid":`+sqlJSON+`}`, "body", "uid"),
		refused("SQL in an event type", "POST", msgs, `{"eventType":`+sqlJSON+`,"payload":{}}`, "body", "eventType"),
		refused("SQL in an event type name", "POST", "/api/v1/event-type", `{"name":`+sqlJSON+`,"description":"d"}`, "body", "name"),
		refused("SQL in a filter type", "POST", endpoints, `{"url":"https://example.com","filterTypes":[`+sqlJSON+`]}`, "body", "filterTypes", "0"),
		{name: "SQL in a name is kept", method: "POST", path: apps, body: `{"name":` + sqlJSON + `}`, status: 201,
			check: func(t *testing.T, ts *testServer, res response) { checkAppName(t, ts, res, sqlString) }},
		{name: "SQL in a payload is kept", method: "POST", path: msgs, body: `{"eventType":"a","payload": {"q" : ` + sqlJSON + `} }`, status: 202,
			check: func(t *testing.T, ts *testServer, res response) { checkPayload(t, ts, res, `{"q" : `+sqlJSON+`}`) }},
		refused("SQL in an iterator", "GET", apps+"?iterator=%27%3B%20DROP%20TABLE%20message%3B--", "", "query", "iterator"),

		refused("10000 channels", "POST", endpoints, `{"url":"https://example.com","channels":`+jsonList("c", 10000)+`}`, "body", "channels"),
		refused("10000 message channels", "POST", msgs, `{"eventType":"a","payload":{},"channels":`+jsonList("c", 10000)+`}`, "body", "channels"),
		{name: "10000 filter types are kept", method: "POST", path: endpoints,
			body: `{"url":"https://example.com","filterTypes":` + jsonList("t", 10000) + `}`, status: 201,
			check: func(t *testing.T, ts *testServer, res response) {
				var out endpointOut
				decodeInto(t, res, &out)
				ep, err := ts.Store.GetEndpoint(t.Context(), hostileAppID(t, ts), out.ID)
				if err != nil || len(ep.FilterTypes) != 10000 {
					t.Fatalf("stored endpoint: %v, %d filter types", err, len(ep.FilterTypes))
				}
			}},
		refused("10000 headers", "POST", endpoints, `{"url":"https://example.com","headers":`+jsonHeaders(10000)+`}`, "body", "headers"),
		refused("10000 headers by PUT", "PUT", headers, `{"headers":`+jsonHeaders(10000)+`}`, "body", "headers"),
		refused("101 headers by PATCH", "PATCH", headers, `{"headers":`+jsonHeaders(100)+`}`, "body", "headers"),
		refused("header injection in a header value", "POST", endpoints,
			`{"url":"https://example.com","headers":{"X-A":"b\r\nX-Injected: c"}}`, "body", "headers", "X-A"),
		// Control characters Go's client refuses to send made every
		// delivery fail; names differing in case were both stored and one
		// sent at random.
		refused("SOH in a header value", "POST", endpoints, `{"url":"https://example.com","headers":{"X-A":"a\u0001b"}}`, "body", "headers", "X-A"),
		refused("DEL in a header value", "POST", endpoints, `{"url":"https://example.com","headers":{"X-A":"a\u007fb"}}`, "body", "headers", "X-A"),
		refused("VT in a header value", "POST", endpoints, `{"url":"https://example.com","headers":{"X-A":"a\u000bb"}}`, "body", "headers", "X-A"),
		refused("SOH in a header value by PUT", "PUT", headers, `{"headers":{"X-A":"a\u0001b"}}`, "body", "headers", "X-A"),
		refused("DEL in a header value by PATCH", "PATCH", headers, `{"headers":{"X-A":"a\u007fb"}}`, "body", "headers", "X-A"),
		refused("header names differing in case", "POST", endpoints, `{"url":"https://example.com","headers":{"X-Foo":"1","x-foo":"2"}}`, "body", "headers", "x-foo"),
		refused("header names differing in case by PUT", "PUT", headers, `{"headers":{"X-Foo":"1","X-FOO":"2"}}`, "body", "headers", "X-Foo"),
		refused("header names differing in case by PATCH", "PATCH", headers, `{"headers":{"x-foo":null,"X-Foo":"2"}}`, "body", "headers", "x-foo"),
		{name: "tab and non-ASCII in a header value are kept", method: "PATCH", path: headers, body: `{"headers":{"X-Tab":"a\tb é"}}`, status: 204,
			check: func(t *testing.T, ts *testServer, res response) {
				ep, err := ts.Store.GetEndpoint(t.Context(), hostileAppID(t, ts), "hostile-ep")
				if err != nil || ep.Headers["X-Tab"] != "a\tb é" {
					t.Fatalf("stored headers %v, %v", ep.Headers, err)
				}
			}},
		{name: "a URL key in other case is ignored", method: "POST", path: endpoints,
			body: `{"url":"https://example.com/hook","URL":"https://evil.example/","Url":"x"}`, status: 201,
			check: func(t *testing.T, ts *testServer, res response) {
				var out endpointOut
				decodeInto(t, res, &out)
				if out.URL != "https://example.com/hook" {
					t.Fatalf("url %q, want the exactly named key's", out.URL)
				}
			}},
		refused("header injection in a URL", "POST", endpoints, `{"url":"https://example.com/\r\nHost: evil"}`, "body", "url"),
		refused("credentials in a URL", "POST", endpoints, `{"url":"https://user:pass@example.com"}`, "body", "url"),
		refused("credentials in a patched URL", "PATCH", "/api/v1/app/hostile/endpoint/{ep}", `{"url":"https://user@example.com"}`, "body", "url"),
		refused("javascript: URL", "POST", endpoints, `{"url":"javascript:alert(1)"}`, "body", "url"),
		refused("file: URL", "POST", endpoints, `{"url":"file:///etc/passwd"}`, "body", "url"),
		refused("space in a URL", "POST", endpoints, `{"url":"https://example.com/a b"}`, "body", "url"),
		refused("70000-character URL", "POST", endpoints, `{"url":"https://example.com/`+strings.Repeat("a", 70000)+`"}`, "body", "url"),

		// Duplicate keys: the last one wins, as in encoding/json and most
		// parsers; the same rule applies to the fields seen by PATCH.
		{name: "duplicate keys", method: "POST", path: apps, body: `{"name":"first","name":"second"}`, status: 201,
			check: func(t *testing.T, ts *testServer, res response) { checkAppName(t, ts, res, "second") }},
		refused("top-level array", "POST", apps, `[{"name":"A"}]`, "body"),
		refused("null body", "POST", apps, `null`, "body"),
		refused("null PATCH body", "PATCH", "/api/v1/app/hostile/endpoint/{ep}", `null`, "body"),
		bad("empty body", "POST", apps, "", herald.EBADREQUEST, 400),
		bad("blank body", "POST", apps, " \n\t ", herald.EBADREQUEST, 400),
		bad("trailing garbage", "POST", apps, `{"name":"A"} {"name":"B"}`, herald.EBADREQUEST, 400),
		refused("1e400 version", "POST", endpoints, `{"url":"https://example.com","version":1e400}`, "body", "version"),
		refused("1e400 in a payload", "POST", msgs, `{"eventType":"a","payload":{"n":1e400}}`, "body", "payload"),
		{name: "control characters in idempotency-key", method: "POST", path: apps, body: `{"name":"A"}`,
			headers: []string{"idempotency-key", "key\x01\x7f"}, direct: true,
			status: http.StatusUnprocessableEntity, loc: []string{"header", "idempotency-key"}},
		{name: "CR LF in idempotency-key", method: "POST", path: apps, body: `{"name":"A"}`,
			headers: []string{"idempotency-key", "key\r\nX-Injected: c"}, direct: true,
			status: http.StatusUnprocessableEntity, loc: []string{"header", "idempotency-key"}},
	}
}

func TestHostileInput(t *testing.T) {
	ts := newTestServer(t)
	createApp(t, ts, `{"name":"Hostile","uid":"hostile"}`)
	var ep endpointOut
	ts.mustCall(t, http.StatusCreated, &ep, "POST", "/api/v1/app/hostile/endpoint",
		`{"url":"https://example.com/hook","uid":"hostile-ep","headers":{"X-Fixture":"1"}}`)
	// The PATCH row adds 100 headers to the one the endpoint has.
	for _, tc := range hostileCases() {
		t.Run(tc.name, func(t *testing.T) {
			before := dumpStore(t, ts.Store)
			path := strings.ReplaceAll(tc.path, "{ep}", ep.ID)
			res := hostileCall(t, ts, tc, path)
			if res.Status != tc.status {
				t.Fatalf("status %d, want %d; body %.500s", res.Status, tc.status, res.Body)
			}
			switch {
			case tc.status == http.StatusUnprocessableEntity:
				items := validationOut(t, res)
				if len(items) != 1 || !cmp.Equal(items[0].Loc, tc.loc) {
					t.Fatalf("422 items %+v, want one at %q", items, tc.loc)
				}
			case tc.status >= 400:
				if e := errorOut(t, res); e.Code != tc.code || e.Detail == "" {
					t.Fatalf("error %+v, want code %q", e, tc.code)
				}
			}
			if tc.status >= 400 {
				checkUnchanged(t, ts.Store, before, tc.name)
			} else if tc.check != nil {
				tc.check(t, ts, res)
			}
			// The server still answers normal requests.
			ts.mustCall(t, http.StatusOK, nil, "GET", "/api/v1/app/hostile/endpoint/"+ep.ID, "")
			ts.mustCall(t, http.StatusAccepted, nil, "POST", "/api/v1/app/hostile/msg", `{"eventType":"after","payload":{"ok":true}}`)
		})
	}
}

// hostileCall sends tc over HTTP, or through API.ServeHTTP when tc.direct.
func hostileCall(t *testing.T, ts *testServer, tc hostileCase, path string) response {
	t.Helper()
	if !tc.direct {
		return ts.call(t, tc.method, path, tc.body, tc.headers...)
	}
	req := httptest.NewRequestWithContext(t.Context(), tc.method, path, bytes.NewReader([]byte(tc.body)))
	req.Header.Set("Authorization", "Bearer "+ts.Token)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(tc.headers); i += 2 {
		req.Header.Set(tc.headers[i], tc.headers[i+1])
	}
	rec := httptest.NewRecorder()
	ts.API.ServeHTTP(rec, req)
	return response{Status: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
}

// hostileAppID returns the ID of the application with uid "hostile".
func hostileAppID(t *testing.T, ts *testServer) string {
	t.Helper()
	app, err := ts.Store.GetApplication(t.Context(), "hostile")
	if err != nil {
		t.Fatal(err)
	}
	return app.ID
}

// decodeInto decodes an answer's body into out.
func decodeInto(t *testing.T, res response, out any) {
	t.Helper()
	if err := json.Unmarshal(res.Body, out); err != nil {
		t.Fatalf("decode %s: %v", res.Body, err)
	}
}

// checkAppName checks the created application's name, as answered and as
// stored.
func checkAppName(t *testing.T, ts *testServer, res response, want string) {
	t.Helper()
	var out applicationOut
	decodeInto(t, res, &out)
	app, err := ts.Store.GetApplication(t.Context(), out.ID)
	if err != nil {
		t.Fatal(err)
	}
	if out.Name != want || app.Name != want {
		t.Fatalf("name answered %q, stored %q, want %q", out.Name, app.Name, want)
	}
}

// checkPayload checks the created message's payload is stored and answered
// byte for byte as sent.
func checkPayload(t *testing.T, ts *testServer, res response, want string) {
	t.Helper()
	var out messageOut
	decodeInto(t, res, &out)
	m, err := ts.Store.GetMessage(t.Context(), hostileAppID(t, ts), out.ID)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Payload) != want || string(out.Payload) != want {
		t.Fatalf("payload stored %q, answered %q, want %q", m.Payload, out.Payload, want)
	}
}

// TestControlCharactersOnTheWire sends what the Go client refuses to: an
// idempotency-key and a custom header with control characters, over a raw
// connection. net/http answers 400 itself before any handler runs, and
// nothing is stored.
func TestControlCharactersOnTheWire(t *testing.T) {
	ts := newTestServer(t)
	before := dumpStore(t, ts.Store)
	for _, header := range []string{"idempotency-key: a\x01b", "idempotency-key: a\x00b", "X-Other: a\x7fb"} {
		body := `{"name":"A"}`
		req := "POST /api/v1/app HTTP/1.1\r\nHost: herald\r\nAuthorization: Bearer " + ts.Token + "\r\n" +
			header + "\r\nContent-Type: application/json\r\nContent-Length: " + fmt.Sprint(len(body)) +
			"\r\nConnection: close\r\n\r\n" + body
		conn, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		_ = conn.Close()
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("%q: status %d, want 400", header, res.StatusCode)
		}
	}
	checkUnchanged(t, ts.Store, before, "control characters in headers")
	ts.mustCall(t, http.StatusCreated, nil, "POST", "/api/v1/app", `{"name":"after"}`)
}
