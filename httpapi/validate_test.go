package httpapi

import (
	"encoding/json"
	"strings"
	"testing"
)

// benchPayload is a 512-byte webhook payload, shaped like a billing event.
const benchPayload = `{"type":"invoice.paid","id":"evt_2aB3cD4eF5gH6iJ7kL8mN9oP","created":1717171717,"livemode":false,"data":{"object":{"id":"in_1PQ2rS3tU4vW5xY6zA7bC8dE","customer":"cus_Q1w2E3r4T5y6U7","amount_due":129900,"amount_paid":129900,"currency":"eur","status":"paid","period":{"start":1714579200,"end":1717257600},"lines":[{"price":"price_basic_monthly","quantity":3,"unit_amount":43300,"description":"Basic plan \u00d7 3 seats"}],"tax_rate":0.19,"discount":null,"metadata":{"order_id":"A-100","note":"paid \"on time\""}}}}`

func BenchmarkCheckPayload(b *testing.B) {
	raw := json.RawMessage(benchPayload)
	loc := []string{"body", "payload"}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		var v validation
		v.checkPayload(raw, loc...)
		if len(v.items) != 0 {
			b.Fatalf("payload refused: %+v", v.items)
		}
	}
}

// TestNumbersFitFloat64 holds numbersFitFloat64 to what it replaces:
// decoding the payload into an any, which fails only on a number that
// overflows a float64.
func TestNumbersFitFloat64(t *testing.T) {
	long := strings.Repeat("9", 308)
	tests := []struct {
		json string
		fits bool
	}{
		{`{}`, true},
		{`{"n":0}`, true},
		{`{"n":-0}`, true},
		{`{"n":1e400}`, false},
		{`{"n":1E400}`, false},
		{`{"n":1e+400}`, false},
		{`{"n":-1e309}`, false},
		{`{"n":1.7976931348623157e308}`, true},
		{`{"n":1.7976931348623159e308}`, false}, // rounds to +Inf
		{`{"n":1e-400}`, true},                  // underflows to zero: no error
		{`{"n":-1e-400}`, true},
		{`{"n":4.9e-324}`, true},
		{`{"n":2e-324}`, true},
		{`{"n":123456789012345678901234567890}`, true},
		{`{"n":` + long + `}`, true},
		{`{"n":` + long + `9}`, false},
		{`{"n":-` + long + `9}`, false},
		{`{"n":` + long + `.5}`, true},
		{`{"n":0.` + long + long + `}`, true},
		{`{"n":0.` + long + `e309}`, false},
		{`{"n":` + long + `e-1}`, true},
		{`{"n":1e308,"m":1e309}`, false},
		{`{"s":"1e400"}`, true},
		{`{"1e400":1}`, true},
		{`{"s":"\"1e400\""}`, true},
		{`{"s":"\\","n":1e400}`, false},
		{`{"s":"\\\"1e400","n":1}`, true},
		{`{"s":"\\\\\"1e400\\\\","n":1}`, true},
		{`{"s":"a\"b","n":1e400}`, false},
		{`{"s":"\u00221e400\u0022"}`, true},
		{`{"s":"\u0022","n":-1e400}`, false},
		{`{"s":"","n":1e400}`, false},
		{`{"a":[1,2,[3,[4,1e999]]]}`, false},
		{`{"a":[1,2,[3,[4,1e99]]],"b":{"c":{"d":-2.5E-3}}}`, true},
		{`{"a":[true,false,null,"x",{"y":[1e400]}]}`, false},
		{` { "n" : 1e400 } `, false},
		{"{\n\t\"n\":\n1e308\n}", true},
		{`[1e400]`, false},
		{`1e400`, false},
		{`-1e400`, false},
		{`"1e400"`, true},
		{`1e-400`, true},
		{`null`, true},
		{benchPayload, true},
	}
	for _, tt := range tests {
		if !json.Valid([]byte(tt.json)) {
			t.Fatalf("test input %.40q is not valid JSON", tt.json)
		}
		want := json.Unmarshal([]byte(tt.json), new(any)) == nil
		if want != tt.fits {
			t.Errorf("encoding/json decodes %.60q: %v, the table says %v", tt.json, want, tt.fits)
		}
		if got := numbersFitFloat64([]byte(tt.json)); got != want {
			t.Errorf("numbersFitFloat64(%.60q) = %v, encoding/json says %v", tt.json, got, want)
		}
	}
}

// TestCheckPayload checks the problems reported for a payload.
func TestCheckPayload(t *testing.T) {
	tests := []struct {
		raw  string
		want string
	}{
		{``, "field required"},
		{`  `, "field required"},
		{`[]`, "value is not a valid JSON object"},
		{`"x"`, "value is not a valid JSON object"},
		{`{"n":1e400}`, "payload numbers must fit in a 64-bit float"},
		{` {"n":[-1e309]} `, "payload numbers must fit in a 64-bit float"},
		{`{"n":1e-400,"s":"1e400"}`, ""},
		{benchPayload, ""},
	}
	for _, tt := range tests {
		var v validation
		v.checkPayload(json.RawMessage(tt.raw), "body", "payload")
		var got string
		if len(v.items) > 0 {
			got = v.items[0].Msg
		}
		if got != tt.want || len(v.items) > 1 {
			t.Errorf("checkPayload(%.40q) = %+v, want %q", tt.raw, v.items, tt.want)
		}
	}
}

// FuzzNumbersFitFloat64 compares numbersFitFloat64 with decoding into an
// any on valid JSON, the only input it is given.
func FuzzNumbersFitFloat64(f *testing.F) {
	for _, seed := range []string{`{"n":1e400}`, `{"s":"\"1e400\\\\","n":[1,-2.5e-3]}`, `[1e-400,"\u0022"]`, benchPayload} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) {
			return
		}
		want := json.Unmarshal(b, new(any)) == nil
		if got := numbersFitFloat64(b); got != want {
			t.Fatalf("numbersFitFloat64(%q) = %v, encoding/json says %v", b, got, want)
		}
	})
}
