package httpapi

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/herald-webhooks/herald"
)

func TestSchemaExamples(t *testing.T) {
	for _, tc := range []struct {
		schemas string
		want    []string
	}{
		{``, nil},
		{`not json`, nil},
		{`{"1":{"type":"object"}}`, nil},
		{`{"1":{"examples":[{"a":1},{"a":2}]},"0":{"examples":[{"z":0}]}}`, []string{`{"a":1}`, `{"a":2}`}},
		{`{"1":{"type":"object"},"3":{"example":{"c":3}},"2":{"examples":[{"b":2}]}}`, []string{`{"b":2}`}},
		{`{"1":{"example":{"a":1}},"2":{"examples":[{"b":2}]}}`, []string{`{"a":1}`}},
		{`{"2":{"example":null}}`, nil},
	} {
		var got []string
		for _, ex := range schemaExamples([]byte(tc.schemas)) {
			got = append(got, string(ex))
		}
		if !cmp.Equal(got, tc.want) {
			t.Errorf("schemaExamples(%s) = %v, want %v", tc.schemas, got, tc.want)
		}
	}
}

func TestPageInMemory(t *testing.T) {
	rows := []string{"a", "b", "c", "d", "e"}
	id := func(s string) string { return s }
	letters := cursor{what: "letters", valid: func(s string) bool { return len(s) == 1 }}
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"limit=2", []string{"a", "b", "c"}},
		{"limit=2&iterator=b", []string{"c", "d", "e"}},
		{"limit=2&iterator=d", []string{"e"}},
		{"limit=2&iterator=-d", []string{"c", "b", "a"}},
		{"limit=2&order=descending", []string{"e", "d", "c"}},
		{"limit=2&order=descending&iterator=c", []string{"b", "a"}},
		{"limit=10&iterator=e", []string{}},
	} {
		q, _ := url.ParseQuery(tc.query)
		p, v := parsePage(q, herald.Ascending, letters)
		if err := v.err(); err != nil {
			t.Fatal(err)
		}
		if got := pageInMemory(p, rows, id); !cmp.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.query, got, tc.want)
		}
	}
}

func TestSpliceField(t *testing.T) {
	for _, tc := range []struct{ obj, raw, want string }{
		{`{"id":"x"}`, `{"a": 1}`, `{"payload":{"a": 1},"id":"x"}`},
		{`{}`, `[]`, `{"payload":[]}`},
	} {
		got := string(spliceField([]byte(tc.obj), "payload", []byte(tc.raw)))
		if got != tc.want || !json.Valid([]byte(got)) {
			t.Errorf("splice %s into %s: %s, want %s", tc.raw, tc.obj, got, tc.want)
		}
	}
	// An endpoint message is the message plus the delivery state, the
	// payload untouched.
	em := endpointMessageOut{
		msg:   messageOut{ID: "msg_1", EventType: "e", Payload: json.RawMessage(`{"b":  2}`), Timestamp: "t"},
		state: deliveryState{Status: statusFail, StatusText: "fail"},
	}
	b, err := em.encode()
	if err != nil || !json.Valid(b) || !strings.Contains(string(b), `"payload":{"b":  2}`) || !strings.HasSuffix(string(b), `"status":2,"statusText":"fail"}`) {
		t.Fatalf("endpoint message %s: %v", b, err)
	}
}
