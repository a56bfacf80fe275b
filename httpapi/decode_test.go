package httpapi

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

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
		if _, err := decodeMessage(r, &v); err != nil {
			b.Fatal(err)
		}
	}
}
