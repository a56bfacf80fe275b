package httpapi

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	svix "github.com/svix/svix-webhooks/go"

	"github.com/herald-webhooks/herald"
)

// listFixture makes one of everything the list routes list, and returns
// the path parameters that name them.
func listFixture(t *testing.T, ts *testServer) *strings.Replacer {
	t.Helper()
	app := createApp(t, ts, `{"name":"Acme","uid":"acme"}`)
	ts.mustCall(t, http.StatusCreated, nil, "POST", "/api/v1/event-type", `{"name":"invoice.paid","description":"d"}`)
	var ep endpointOut
	ts.mustCall(t, http.StatusCreated, &ep, "POST", "/api/v1/app/"+app+"/endpoint", `{"url":"https://example.com/hook"}`)
	var msg messageOut
	ts.mustCall(t, http.StatusAccepted, &msg, "POST", "/api/v1/app/"+app+"/msg", `{"eventType":"invoice.paid","payload":{}}`)
	key := createKey(t, ts, `{"name":"k","scope":"admin"}`)
	ts.mustCall(t, http.StatusCreated, nil, "POST", "/api/v1/operational-webhook/endpoint", `{"url":"https://example.com/ops"}`)
	ts.mustCall(t, http.StatusAccepted, nil, "POST", "/api/v1/app/"+app+"/endpoint/"+ep.ID+"/recover", `{"since":"2020-01-01T00:00:00Z"}`)
	return strings.NewReplacer(
		"{app_id}", app, "{endpoint_id}", ep.ID, "{msg_id}", msg.ID,
		"{event_type_name}", "invoice.paid", "{key_id}", key.ID,
		"{attempt_id}", herald.NewID(herald.PrefixAttempt),
	)
}

// TestListRoutesRefuseInvalidIterator walks the route table: every GET
// route that answers a list page refuses an iterator that cannot be one of
// its own with a 422 naming query.iterator, instead of an empty page that
// reads as the end of the list; the iterators it hands out still work,
// and those of the other lists (another kind of ID) are refused too.
func TestListRoutesRefuseInvalidIterator(t *testing.T) {
	ts := newTestServer(t)
	fill := listFixture(t, ts)

	type list struct{ path, iterator string }
	var lists []list
	for _, rt := range ts.API.Routes() {
		if rt.Method != http.MethodGet {
			continue
		}
		path := fill.Replace(rt.Pattern)
		res := ts.call(t, "GET", path, "")
		var page map[string]json.RawMessage
		if res.Status != http.StatusOK || json.Unmarshal(res.Body, &page) != nil || page["data"] == nil || page["done"] == nil {
			continue
		}
		var it struct{ Iterator *string }
		if err := json.Unmarshal(res.Body, &it); err != nil {
			t.Fatal(err)
		}
		l := list{path: path}
		if it.Iterator != nil {
			l.iterator = *it.Iterator
		}
		lists = append(lists, l)
	}
	// Applications, event types, API keys, the audit log, background
	// tasks, operational endpoints, endpoints, an endpoint's messages,
	// messages, a message's endpoints, and the two attempt lists.
	if len(lists) != 12 {
		t.Fatalf("found %d list routes, want 12: %v", len(lists), lists)
	}

	for _, l := range lists {
		bad := []string{"not an iterator!", "-", "%00", "'; DROP TABLE message;--", strings.Repeat("a", 300)}
		names := l.path == "/api/v1/event-type" // any other list's ID is a valid name
		if !names {
			bad = append(bad, "--", "app_", "msg_tooShort", "page-2")
		}
		for _, bad := range bad {
			res := ts.call(t, "GET", l.path+"?iterator="+url.QueryEscape(bad), "")
			if res.Status != http.StatusUnprocessableEntity {
				t.Errorf("GET %s?iterator=%q: %d %s, want 422", l.path, bad, res.Status, res.Body)
				continue
			}
			items := validationOut(t, res)
			if len(items) != 1 || !cmp.Equal(items[0].Loc, []string{"query", "iterator"}) || !strings.Contains(items[0].Msg, "iterator") {
				t.Errorf("GET %s?iterator=%q: %+v, want one item at query.iterator", l.path, bad, items)
			}
		}
		if l.iterator == "" {
			continue // an empty list hands out no iterator
		}
		for _, it := range []string{l.iterator, "-" + l.iterator} {
			ts.mustCall(t, http.StatusOK, nil, "GET", l.path+"?limit=1&iterator="+url.QueryEscape(it), "")
		}
		if names {
			continue
		}
		kind, _, _ := strings.Cut(l.iterator, "_")
		for _, other := range lists {
			if other.iterator == "" || strings.HasPrefix(other.iterator, kind+"_") {
				continue
			}
			res := ts.call(t, "GET", l.path+"?iterator="+url.QueryEscape(other.iterator), "")
			if res.Status != http.StatusUnprocessableEntity {
				t.Errorf("GET %s with the iterator of %s: %d %s, want 422", l.path, other.path, res.Status, res.Body)
			}
		}
	}
}

// TestIteratorThroughSDK: the official SDK's list call with a made-up
// iterator gets the 422, not an empty page.
func TestIteratorThroughSDK(t *testing.T) {
	ts := newTestServer(t)
	client := ts.sdk(t, ts.Token)
	createApp(t, ts, `{"name":"Acme","uid":"acme"}`)
	_, err := client.Application.List(t.Context(), &svix.ApplicationListOptions{Iterator: ptr("page-2")})
	wantSDKError(t, "list applications with a made-up iterator", err, http.StatusUnprocessableEntity, "")
	out, err := client.Application.List(t.Context(), nil)
	if err != nil || len(out.Data) != 1 {
		t.Fatalf("list applications: %v %+v", err, out)
	}
}

func TestCursors(t *testing.T) {
	app, msg := herald.NewID(herald.PrefixApplication), herald.NewID(herald.PrefixMessage)
	for _, tc := range []struct {
		c    cursor
		s    string
		want bool
	}{
		{appCursor, app, true},
		{appCursor, msg, false},
		{appCursor, "app_", false},
		{appCursor, app[:len(app)-1], false},
		{appCursor, app + "x", false},
		{appCursor, strings.ToUpper(app[:4]) + app[4:], false},
		{appCursor, "app_" + strings.Repeat("!", 27), false},
		{messageCursor, msg, true},
		{auditCursor, herald.NewID(herald.PrefixAudit), true},
		{tokenCursor, herald.NewID(herald.PrefixToken), true},
		{attemptCursor, herald.NewID(herald.PrefixAttempt), true},
		{endpointCursor, herald.NewID(herald.PrefixEndpoint), true},
		{endpointCursor, app, false},
		{eventTypeCursor, "invoice.paid", true},
		{eventTypeCursor, "a-b_c.d", true},
		{eventTypeCursor, "", false},
		{eventTypeCursor, "has space", false},
		{eventTypeCursor, strings.Repeat("a", maxNameLen), true},
		{eventTypeCursor, strings.Repeat("a", maxNameLen+1), false},
	} {
		if got := tc.c.valid(tc.s); got != tc.want {
			t.Errorf("%s cursor valid(%q) = %v, want %v", tc.c.what, tc.s, got, tc.want)
		}
	}
}

// TestUnknownRoute: an unknown path says there is no such route (not the
// "… not found." of a missing entity on a known route), a known path with
// another method says which methods it takes, and neither is told to a
// caller without a valid token, who gets the 401 of every authenticated
// route; a public path's 405 is anyone's.
func TestUnknownRoute(t *testing.T) {
	ts := newTestServer(t)
	createApp(t, ts, `{"name":"Acme","uid":"acme"}`)
	portal := createKey(t, ts, `{"name":"support","scope":"app:acme","readOnly":true}`).Key

	for _, token := range []string{ts.Token, portal} {
		res := ts.call(t, "GET", "/api/v1/nope", "", "Authorization", "Bearer "+token)
		if res.Status != http.StatusNotFound {
			t.Fatalf("unknown route: %d %s", res.Status, res.Body)
		}
		if e := errorOut(t, res); e != (errorBody{Code: herald.ENOTFOUND, Detail: "No such route: GET /api/v1/nope."}) {
			t.Errorf("unknown route body %+v", e)
		}
		res = ts.call(t, "DELETE", "/api/v1/app", "", "Authorization", "Bearer "+token)
		if e := errorOut(t, res); res.Status != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "GET, POST" ||
			e != (errorBody{Code: "method_not_allowed", Detail: "Method not allowed: DELETE /api/v1/app accepts GET, POST."}) {
			t.Errorf("wrong method: %d %v %+v", res.Status, res.Header, e)
		}
	}
	res := ts.call(t, "GET", "/api/v1/app/missing", "")
	if e := errorOut(t, res); res.Status != http.StatusNotFound || e.Code != herald.ENOTFOUND || strings.Contains(e.Detail, "route") {
		t.Errorf("missing application on a known route: %d %+v", res.Status, e)
	}

	for _, auth := range []string{"", "Bearer wrong-token-0123456789"} {
		for _, req := range [][2]string{{"GET", "/api/v1/nope"}, {"GET", "/nope"}, {"DELETE", "/api/v1/app"}, {"POST", "/readyz/x"}} {
			res := ts.call(t, req[0], req[1], "", "Authorization", auth)
			if res.Status != http.StatusUnauthorized || errorOut(t, res).Code != herald.EUNAUTHORIZED || res.Header.Get("Allow") != "" {
				t.Errorf("%s %s with Authorization %q: %d %v %s, want 401", req[0], req[1], auth, res.Status, res.Header, res.Body)
			}
		}
	}
	for _, path := range []string{"/api/v1/health", "/healthz", "/readyz"} {
		res := ts.call(t, "POST", path, "", "Authorization", "")
		if res.Status != http.StatusMethodNotAllowed || !slices.Contains(strings.Split(res.Header.Get("Allow"), ", "), "GET") {
			t.Errorf("POST %s without a token: %d %v, want 405", path, res.Status, res.Header)
		}
	}
}
