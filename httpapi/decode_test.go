package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/herald-webhooks/herald"
)

// benchMessageBody is a typical message create body around benchPayload.
const benchMessageBody = `{"eventType":"invoice.paid","eventId":"evt_2aB3cD4eF5gH6iJ7kL8mN9oP","payload":` + benchPayload + `,"channels":["billing","eu-west-1"]}`

// decodeBodies are bodies for the message create route, good and bad in
// every way decoding can tell apart.
var decodeBodies = []string{
	benchMessageBody,
	`{"eventType":"a","payload":{}}`,
	` {"eventType":"a","payload":{"n":1e400}} `,
	`{}`,
	"\n\t{}\r\n",
	`null`,
	` null `,
	`[]`,
	`[{"eventType":"a"}]`,
	`"text"`,
	`12`,
	`-1e400`,
	`true`,
	`false`,
	`{"eventType":"a",`,
	`{"eventType":"a"}}`,
	`{"eventType":"a"} {}`,
	`nul`,
	`[1,`,
	`"unterminated`,
	`{"eventType":5,"payload":{}}`,
	`{"eventType":"a","payload":{},"channels":"c"}`,
	`{"eventType":"a","payload":{},"channels":[1,2]}`,
	`{"eventType":"a","payload":{},"tags":{"a":1}}`,
	`{"eventType":"a","payload":{},"payloadRetentionPeriod":1.5}`,
	`{"eventType":"a","payload":{},"payloadRetentionPeriod":99999999999999999999}`,
	`{"eventType":"a","payload":{},"payloadRetentionHours":"1"}`,
	`{"eventType":"a","payload":{},"application":[]}`,
	`{"eventType":"a","payload":{},"application":{"name":1,"rateLimit":-1,"metadata":{"k":2}}}`,
	`{"eventType":"a","payload":{},"transformationsParams":[]}`,
	`{"eventType":null,"eventId":null,"payload":null,"channels":null}`,
	`{"EVENTTYPE":"a","payload":{}}`,
	`{"eventType":"a","eventType":"b","payload":{}}`,
	`{"eventType":"a","payload":{},"channels":["a"],"channels":7}`,
	`{"\u0065ventType":"a","payload":{}}`,
	`{"eventType":"a","payload":{"deep":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}}`,
	// Keys differing from a field's name only in case are ignored.
	`{"eventType":"a","EventType":"b","payload":{}}`,
	`{"EVENTTYPE":"b", "eventType":"a" ,"Payload":[1],"payload":{"Payload":2}}`,
	`{"eventType":"a","payload":{},"application":{"name":"n","NAME":"m","uid":"u","Uid":"v"}}`,
	`{"eventType":"a","payload":{},"application":{"NAME":"m"},"Application":{"name":"x"}}`,
	`{"eventType":"a","EventType":tru,"payload":{}}`,
	`{"eventType":"a","EventType":"b","payload":{},}`,
	`{"\u0045ventType":"b","eventType":"a","payload":{}}`,
	`{"eventType":"a","payload":{},"ſtags":["x"]}`,
}

// decodeResult is what a decode gives, in a form cmp can compare.
type decodeResult struct {
	In     messageIn
	Code   string
	Detail string
	Items  []fieldError
}

func decodeWith(t *testing.T, decode func(*http.Request, any) error, body string) decodeResult {
	t.Helper()
	r, err := http.NewRequestWithContext(t.Context(), "POST", "/api/v1/app/app/msg/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/json")
	var res decodeResult
	err = decode(r, &res.In)
	if items, ok := asValidation(err); ok {
		res.Items = items
	} else if err != nil {
		res.Code, res.Detail = herald.ErrorCode(err), herald.ErrorMessage(err)
	}
	return res
}

// checkSameDecode fails unless decodeObject reads body exactly as
// decodeJSON does: the same value, or the same error.
func checkSameDecode(t *testing.T, body string) {
	t.Helper()
	want := decodeWith(t, func(r *http.Request, v any) error { _, err := decodeJSON(r, v, false); return err }, body)
	got := decodeWith(t, func(r *http.Request, v any) error { return decodeObject(r, v, false) }, body)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("body %.80q: decodeObject differs from decodeJSON (-want +got):\n%s", body, diff)
	}
}

// TestDecodeObject holds the one-pass decode of the message create route
// to the two-pass decodeJSON that the other routes use.
func TestDecodeObject(t *testing.T) {
	for _, body := range decodeBodies {
		checkSameDecode(t, body)
	}
}

func FuzzDecodeObject(f *testing.F) {
	for _, body := range decodeBodies {
		f.Add(body)
	}
	f.Fuzz(func(t *testing.T, body string) {
		checkSameDecode(t, body)
	})
}

// BenchmarkDecodeMessage measures what the message create handler does to
// its body before it commits: read, decode and validate.
func BenchmarkDecodeMessage(b *testing.B) {
	body := []byte(benchMessageBody)
	reader := bytes.NewReader(body)
	r := &http.Request{Method: "POST", Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(reader)}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		reader.Reset(body)
		var v validation
		if _, _, err := decodeMessage(r, &v, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}

// TestExactKeys: keys match field names exactly, as Svix (serde) matches
// them; a key that differs only in case is ignored like any unknown key,
// in nested objects too, and the payload keeps its bytes.
func TestExactKeys(t *testing.T) {
	str := func(s string) *string { return &s }
	for _, tc := range []struct {
		body string
		want messageIn
	}{
		{`{"eventType":"a","EVENTTYPE":"b","payload":{"K": 1}}`,
			messageIn{EventType: str("a"), Payload: json.RawMessage(`{"K": 1}`)}},
		{`{"EVENTTYPE":"b","eventType":"a","payload":{"K": 1}}`,
			messageIn{EventType: str("a"), Payload: json.RawMessage(`{"K": 1}`)}},
		{`{"EventType":"b","Payload":{}}`, messageIn{}},
		{`{"eventType":"a","Tags":["t"],"application":{"name":"n","NAME":"m","uid":"u","UID":"v"}}`,
			messageIn{EventType: str("a"), Application: &applicationIn{Name: str("n"), UID: str("u")}}},
		{`{"\u0065ventType":"a","\u0045ventType":"b"}`, messageIn{EventType: str("a")}},
		// Folding beyond ASCII: ſ is s to encoding/json.
		{`{"eventType":"a","ſtags":["x"],"channels":["c"]}`,
			messageIn{EventType: str("a"), Channels: []string{"c"}}},
	} {
		for name, decode := range map[string]func(*http.Request, any) error{
			"decodeJSON":   func(r *http.Request, v any) error { _, err := decodeJSON(r, v, false); return err },
			"decodeObject": func(r *http.Request, v any) error { return decodeObject(r, v, false) },
		} {
			got := decodeWith(t, decode, tc.body)
			if diff := cmp.Diff(decodeResult{In: tc.want}, got); diff != "" {
				t.Errorf("%s(%s) (-want +got):\n%s", name, tc.body, diff)
			}
		}
	}
	// The top-level fields a PATCH reads are exact too.
	r, _ := http.NewRequestWithContext(t.Context(), "PATCH", "/", strings.NewReader(`{"UID":null,"name":"n"}`))
	var in applicationPatch
	fields, err := decodeJSON(r, &in, false)
	if err != nil || present(fields, "uid") || present(fields, "UID") || in.UID != nil {
		t.Errorf("PATCH {\"UID\":null}: fields %v, uid %v, err %v; want the key ignored", fields, in.UID, err)
	}
}

// TestExactKeysAPI: through the API, a second key in other case does not
// override the first, and a key in other case alone sets nothing.
func TestExactKeysAPI(t *testing.T) {
	ts := newTestServer(t)
	var app applicationOut
	ts.mustCall(t, http.StatusCreated, &app, "POST", "/api/v1/app", `{"name":"first","NAME":"second","uid":"lower","UID":"upper"}`)
	if app.Name != "first" || app.UID == nil || *app.UID != "lower" {
		t.Errorf("application = name %q, uid %v; want first, lower", app.Name, app.UID)
	}
	res := ts.call(t, "POST", "/api/v1/app", `{"NAME":"x"}`)
	if res.Status != http.StatusUnprocessableEntity {
		t.Errorf(`POST {"NAME":"x"}: %d %s, want 422 (name required)`, res.Status, res.Body)
	}
}

// FuzzExactKeys: the pre-pass never makes invalid JSON valid or valid JSON
// invalid, changes nothing in a body without a case-folded key, and is
// idempotent.
func FuzzExactKeys(f *testing.F) {
	for _, body := range decodeBodies {
		f.Add(body)
	}
	f.Fuzz(func(t *testing.T, body string) {
		var in messageIn
		out := exactKeys([]byte(body), &in)
		if json.Valid([]byte(body)) != json.Valid(out) {
			t.Fatalf("exactKeys(%q) = %q: validity changed", body, out)
		}
		if again := exactKeys(out, &in); !bytes.Equal(again, out) {
			t.Fatalf("exactKeys not idempotent: %q, then %q", out, again)
		}
		if !strings.ContainsAny(strings.ToLower(body), "ſk\\") && !hasFoldedKey(body) && string(out) != body {
			t.Fatalf("exactKeys(%q) = %q without a case-folded key", body, out)
		}
	})
}

// hasFoldedKey reports whether body names a field of messageIn or
// applicationIn in other case than the field's own.
func hasFoldedKey(body string) bool {
	for _, name := range []string{"eventType", "eventId", "payload", "channels", "tags", "application", "deliverAt",
		"payloadRetentionPeriod", "payloadRetentionHours", "transformationsParams", "name", "uid", "rateLimit", "throttleRate", "metadata"} {
		lower := strings.ToLower(body)
		for i := strings.Index(lower, `"`+strings.ToLower(name)+`"`); i >= 0; {
			if body[i:i+len(name)+2] != `"`+name+`"` {
				return true
			}
			next := strings.Index(lower[i+1:], `"`+strings.ToLower(name)+`"`)
			if next < 0 {
				break
			}
			i += 1 + next
		}
	}
	return false
}

// BenchmarkExactKeys measures the exact-key pre-pass alone on the message
// create body BenchmarkDecodeMessage decodes (which includes it).
func BenchmarkExactKeys(b *testing.B) {
	body := []byte(benchMessageBody)
	var in messageIn
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if out := exactKeys(body, &in); len(out) != len(body) {
			b.Fatal("the body changed")
		}
	}
}
