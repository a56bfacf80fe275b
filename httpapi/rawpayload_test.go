package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	svix "github.com/svix/svix-webhooks/go"
	"github.com/svix/svix-webhooks/go/models"

	"github.com/google/go-cmp/cmp"

	"github.com/herald-webhooks/herald"
)

// Raw payloads the tests send: text that is not JSON (with the characters
// the Go SDK escapes as \u003c, \u003e and \u0026), and JSON whose spacing,
// key order and escapes a re-encode would change.
const (
	rawXMLText  = "<?xml version=\"1.0\"?>\n<invoice id=\"42\">Straße &amp; Co — 日本 🚀</invoice>\r\n"
	rawJSONText = "{ \"z\" : 1,\n\t\"a\":[1.50e3, \"\\u00e9\"],  \"<b>\": \"&\" }  "
)

// TestSDKRawPayload: messages built with the official SDK's NewMessageInRaw
// are stored as the exact bytes of the raw string with the content type
// given (application/json when none is), on SQLite and PostgreSQL; the
// message answers show a raw payload that is a JSON object byte for byte
// and {} for any other (as for content that is not there), so the SDK
// reads every answer.
func TestSDKRawPayload(t *testing.T) {
	onEachEngine(t, testSDKRawPayload)
}

func testSDKRawPayload(t *testing.T, ts *testServer) {
	client, app, _ := sdkAppWithEndpoint(t, ts)
	ctx := t.Context()
	xmlType := "application/xml; charset=utf-8"
	for _, tc := range []struct {
		name, raw   string
		contentType *string
		wantType    string
		shown       map[string]any // the payload the SDK reads back
	}{
		{"xml", rawXMLText, &xmlType, xmlType, map[string]any{}},
		{"plain text", "not json at all: {", ptr("text/plain"), "text/plain", map[string]any{}},
		{"json", rawJSONText, nil, "application/json", map[string]any{"z": 1.0, "a": []any{1500.0, "é"}, "<b>": "&"}},
		{"json array", "[1, 2]", ptr("application/json"), "application/json", map[string]any{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts.Clock.Add(time.Second) // the newest message lists first
			created, err := client.Message.Create(ctx, app.Id, *svix.NewMessageInRaw("raw.sent", tc.raw, tc.contentType), nil)
			mustNoErr(t, "create", err)
			stored, err := ts.Store.GetMessage(ctx, app.Id, created.Id)
			mustNoErr(t, "get stored", err)
			if string(stored.Payload) != tc.raw || stored.ContentType != tc.wantType {
				t.Fatalf("stored %q as %q, want %q as %q", stored.Payload, stored.ContentType, tc.raw, tc.wantType)
			}
			got, err := client.Message.Get(ctx, app.Id, created.Id, nil)
			mustNoErr(t, "get", err)
			// The SDK's create asks with_content=false and puts back the
			// payload it sent, {}.
			if len(created.Payload) != 0 {
				t.Errorf("create answered payload %v, want {}", created.Payload)
			}
			if !cmp.Equal(got.Payload, tc.shown) {
				t.Errorf("get answered payload %v, want %v", got.Payload, tc.shown)
			}
			list, err := client.Message.List(ctx, app.Id, nil)
			mustNoErr(t, "list", err)
			if len(list.Data) == 0 || list.Data[0].Id != created.Id || !cmp.Equal(list.Data[0].Payload, tc.shown) {
				t.Fatalf("list: %+v, want %s first with payload %v", list.Data, created.Id, tc.shown)
			}
			// A JSON object is answered byte for byte, never re-encoded.
			res := ts.mustCall(t, http.StatusOK, nil, "GET", "/api/v1/app/"+app.Id+"/msg/"+created.Id, "")
			want := `"payload":{}`
			if tc.name == "json" {
				want = `"payload":` + rawJSONText
			}
			if !strings.Contains(string(res.Body), want) {
				t.Fatalf("GET answered %s, want it to hold %s", res.Body, want)
			}
			// So does the create answer when asked with content.
			res = ts.mustCall(t, http.StatusAccepted, nil, "POST", "/api/v1/app/"+app.Id+"/msg",
				fmt.Sprintf(`{"eventType":"raw.sent","payload":{},"transformationsParams":{"rawPayload":%s}}`, mustJSON(t, tc.raw)))
			if !strings.Contains(string(res.Body), want) {
				t.Fatalf("POST answered %s, want it to hold %s", res.Body, want)
			}
			// …/raw answers the exact body, whatever it is.
			var raw messageRawOut
			ts.mustCall(t, http.StatusOK, &raw, "GET", "/api/v1/app/"+app.Id+"/msg/"+created.Id+"/raw", "")
			if raw.Payload != tc.raw {
				t.Fatalf("GET …/raw: %q, want %q", raw.Payload, tc.raw)
			}
			bare, err := client.Message.Get(ctx, app.Id, created.Id, &svix.MessageGetOptions{WithContent: ptr(false)})
			mustNoErr(t, "get without content", err)
			if len(bare.Payload) != 0 {
				t.Fatalf("with_content=false: payload %v", bare.Payload)
			}
		})
	}

	// Expunged, the body is {}, as an attempt would send it; an unknown
	// message is a 404.
	list, err := client.Message.List(ctx, app.Id, nil)
	mustNoErr(t, "list", err)
	mustNoErr(t, "expunge", client.Message.ExpungeContent(ctx, app.Id, list.Data[0].Id))
	var raw messageRawOut
	ts.mustCall(t, http.StatusOK, &raw, "GET", "/api/v1/app/"+app.Id+"/msg/"+list.Data[0].Id+"/raw", "")
	if raw.Payload != "{}" {
		t.Fatalf("GET …/raw after expunging: %q", raw.Payload)
	}
	ts.mustCall(t, http.StatusNotFound, nil, "GET", "/api/v1/app/"+app.Id+"/msg/msg_2VZ7Qm3k4wQpXxYz1nothere/raw", "")

	// rawPayload null is no raw payload: the JSON payload is the body.
	var m messageOut
	ts.mustCall(t, http.StatusAccepted, &m, "POST", "/api/v1/app/"+app.Id+"/msg",
		`{"eventType":"a","payload":{"k": 1},"transformationsParams":{"rawPayload":null,"headers":null}}`)
	stored, err := ts.Store.GetMessage(ctx, app.Id, m.ID)
	mustNoErr(t, "get stored", err)
	if string(stored.Payload) != `{"k": 1}` || stored.ContentType != "" {
		t.Fatalf("stored %q as %q, want the JSON payload", stored.Payload, stored.ContentType)
	}
	// headers alone label the JSON payload, which answers as before.
	res := ts.mustCall(t, http.StatusAccepted, &m, "POST", "/api/v1/app/"+app.Id+"/msg",
		`{"eventType":"a","payload":{"k":  2},"transformationsParams":{"headers":{"Content-Type":"application/vnd.api+json"}}}`)
	stored, err = ts.Store.GetMessage(ctx, app.Id, m.ID)
	mustNoErr(t, "get stored", err)
	if string(stored.Payload) != `{"k":  2}` || stored.ContentType != "application/vnd.api+json" || !strings.Contains(string(res.Body), `"payload":{"k":  2}`) {
		t.Fatalf("stored %q as %q, answered %s", stored.Payload, stored.ContentType, res.Body)
	}
}

// mustJSON is v as JSON text.
func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	mustNoErr(t, "encode", err)
	return string(b)
}

// TestRawPayloadRefused: a transformationsParams Herald cannot honour
// exactly is a 422 naming the field, and stores nothing.
func TestRawPayloadRefused(t *testing.T) {
	ts := newTestServer(t)
	appID := createApp(t, ts, `{"name":"App"}`)
	tp := []string{"body", "transformationsParams"}
	for _, tc := range []struct {
		params string
		loc    []string
	}{
		{`{"rawPayload":5}`, at(tp, "rawPayload")},
		{`{"rawPayload":{"a":1}}`, at(tp, "rawPayload")},
		{`{"rawPayload":true}`, at(tp, "rawPayload")},
		{`{"rawPayload":""}`, at(tp, "rawPayload")},
		{`{"rawPayload":"x","headers":"text/plain"}`, at(tp, "headers")},
		{`{"rawPayload":"x","headers":{"content-type":7}}`, at(tp, "headers", "content-type")},
		{`{"rawPayload":"x","headers":{"content-type":"plain"}}`, at(tp, "headers", "content-type")},
		{`{"rawPayload":"x","headers":{"content-type":"text/plain\r\nX-Evil: 1"}}`, at(tp, "headers", "content-type")},
		{`{"rawPayload":"x","headers":{"content-type":"text/` + strings.Repeat("p", 256) + `"}}`, at(tp, "headers", "content-type")},
		{`{"rawPayload":"x","headers":{"content-type":"text/plain","Content-Type":"text/html"}}`, at(tp, "headers", "content-type")},
		{`{"rawPayload":"x","headers":{"x-custom":"1"}}`, at(tp, "headers", "x-custom")},
		{`{"rawPayload":"x","RawPayload":"y"}`, at(tp, "RawPayload")},
		{`{"template":"x"}`, at(tp, "template")},
	} {
		body := `{"eventType":"a","payload":{},"transformationsParams":` + tc.params + `}`
		items := validationOut(t, ts.call(t, "POST", "/api/v1/app/"+appID+"/msg", body))
		if len(items) != 1 || !cmp.Equal(items[0].Loc, tc.loc) || items[0].Msg == "" {
			t.Errorf("%s: %+v, want one problem at %v", tc.params, items, tc.loc)
		}
	}
	// transformationsParams of the wrong type is refused like any field.
	items := validationOut(t, ts.call(t, "POST", "/api/v1/app/"+appID+"/msg", `{"eventType":"a","payload":{},"transformationsParams":"raw"}`))
	if len(items) != 1 || !cmp.Equal(items[0].Loc, tp) {
		t.Errorf("transformationsParams a string: %+v", items)
	}
	// payload stays required, as Svix has it, beside a raw payload.
	items = validationOut(t, ts.call(t, "POST", "/api/v1/app/"+appID+"/msg", `{"eventType":"a","transformationsParams":{"rawPayload":"x"}}`))
	if len(items) != 1 || !cmp.Equal(items[0].Loc, []string{"body", "payload"}) {
		t.Errorf("raw payload without payload: %+v", items)
	}
	if n := countMessages(t, ts.Store, appID); n != 0 {
		t.Fatalf("refused requests stored %d messages", n)
	}
}

// TestRawPayloadBodyLimit: a raw payload counts against the request body
// limit as a JSON payload does, in its JSON-escaped form (the Go SDK sends
// each <, > and & as six bytes); over it the answer is 413 and nothing is
// stored.
func TestRawPayloadBodyLimit(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.MaxBodyBytes = 1024 })
	client := ts.sdk(t, ts.Token)
	app, err := client.Application.Create(t.Context(), models.ApplicationIn{Name: "App"}, nil)
	mustNoErr(t, "create app", err)
	// 200 bytes of raw text that the SDK sends as 1,200.
	_, err = client.Message.Create(t.Context(), app.Id, *svix.NewMessageInRaw("a", strings.Repeat("<", 200), ptr("text/plain")), nil)
	var svixErr *svix.Error
	if !errors.As(err, &svixErr) || svixErr.Status() != http.StatusRequestEntityTooLarge {
		t.Fatalf("escaped raw payload over the limit: %v, want 413", err)
	}
	res := ts.call(t, "POST", "/api/v1/app/"+app.Id+"/msg",
		fmt.Sprintf(`{"eventType":"a","payload":{},"transformationsParams":{"rawPayload":%q}}`, strings.Repeat("x", 1024)))
	if res.Status != http.StatusRequestEntityTooLarge || errorOut(t, res).Code != herald.ETOOLARGE {
		t.Fatalf("raw payload over the limit: %d %s", res.Status, res.Body)
	}
	if n := countMessages(t, ts.Store, app.Id); n != 0 {
		t.Fatalf("%d messages stored, want 0", n)
	}
	// Under the limit it is accepted.
	if _, err := client.Message.Create(t.Context(), app.Id, *svix.NewMessageInRaw("a", strings.Repeat("<", 100), ptr("text/plain")), nil); err != nil {
		t.Fatalf("raw payload under the limit: %v", err)
	}
}
