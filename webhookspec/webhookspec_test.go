package webhookspec

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// doc is a Svix-style document: refs to components, an example on the
// media type, named examples (one by $ref), a deprecated webhook with a
// feature flag and one without a body.
const doc = `{
  "openapi": "3.1.0",
  "info": {"title": "Shop", "version": "1"},
  "webhooks": {
    "invoice.paid": {
      "post": {
        "summary": "An invoice was paid",
        "requestBody": {"$ref": "#/components/requestBodies/Invoice"}
      }
    },
    "user.created": {
      "post": {
        "summary": "ignored when there is a description",
        "description": "A user signed up",
        "deprecated": true,
        "x-svix-feature-flag": "beta",
        "requestBody": {"content": {"application/json": {
          "schema": {"$ref": "#/components/schemas/User", "description": "the new user"},
          "examples": {
            "b": {"value": {"id": "u_2"}},
            "a": {"$ref": "#/components/examples/UserA"}
          }
        }}}
      }
    },
    "ping": {"post": {"description": "no body"}}
  },
  "components": {
    "requestBodies": {"Invoice": {"content": {"application/json": {
      "schema": {"$ref": "#/components/schemas/Invoice"},
      "example": {"id": "in_1", "amount": 12.50}
    }}}},
    "schemas": {
      "Money": {"type": "number", "minimum": 0},
      "Invoice": {"type": "object", "properties": {"id": {"type": "string"}, "amount": {"$ref": "#/components/schemas/Money"}}},
      "User": {"type": "object", "properties": {"id": {"type": "string"}}, "examples": [{"id": "u_0"}]}
    },
    "examples": {"UserA": {"value": {"id": "u_1"}}}
  }
}`

// asJSON writes v as JSON text, for comparisons that ignore number types.
func asJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestEventTypes(t *testing.T) {
	d, err := Decode([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	got, err := EventTypes(d)
	if err != nil {
		t.Fatal(err)
	}
	type flat struct {
		Name, Description string
		Deprecated        bool
		FeatureFlag       string
		Schema            string
	}
	var flats []flat
	for _, et := range got {
		schema := ""
		if et.Schema != nil {
			schema = asJSON(t, et.Schema)
		}
		flats = append(flats, flat{et.Name, et.Description, et.Deprecated, et.FeatureFlag, schema})
	}
	want := []flat{
		{"invoice.paid", "An invoice was paid", false, "",
			`{"examples":[{"amount":12.50,"id":"in_1"}],"properties":{"amount":{"minimum":0,"type":"number"},"id":{"type":"string"}},"type":"object"}`},
		{"ping", "no body", false, "", ""},
		{"user.created", "A user signed up", true, "beta",
			`{"description":"the new user","examples":[{"id":"u_0"},{"id":"u_1"},{"id":"u_2"}],"properties":{"id":{"type":"string"}},"type":"object"}`},
	}
	if diff := cmp.Diff(want, flats); diff != "" {
		t.Fatalf("event types (-want +got):\n%s", diff)
	}
	// The document itself is left as it was: a schema used twice is
	// written out twice, not shared.
	if s := asJSON(t, d["components"].(map[string]any)["schemas"].(map[string]any)["User"]); s != `{"examples":[{"id":"u_0"}],"properties":{"id":{"type":"string"}},"type":"object"}` {
		t.Fatalf("components changed: %s", s)
	}
}

// The same document in YAML, with x-webhooks (OpenAPI 3.0) and a YAML
// anchor, reads the same way.
func TestEventTypesFromYAML(t *testing.T) {
	const y = `
openapi: 3.0.3
info: {title: Shop, version: "1"}
x-webhooks:
  order.shipped:
    post:
      summary: An order shipped
      requestBody:
        content:
          application/vnd.shop+json:
            schema: &order
              type: object
              properties:
                id: {type: string}
                at: {type: string, format: date-time}
            example: {id: o_1, at: 2024-01-02T03:04:05Z}
  order.returned:
    post:
      requestBody:
        content:
          application/json:
            schema: *order
`
	d, err := Decode([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	got, err := EventTypes(d)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Name != "order.returned" || got[1].Name != "order.shipped" {
		t.Fatalf("event types %+v", got)
	}
	if s := asJSON(t, got[1].Schema); s != `{"examples":[{"at":"2024-01-02 03:04:05 +0000 UTC","id":"o_1"}],"properties":{"at":{"format":"date-time","type":"string"},"id":{"type":"string"}},"type":"object"}` {
		t.Fatalf("order.shipped schema %s", s)
	}
	if got[1].Description != "An order shipped" || asJSON(t, got[0].Schema) != `{"properties":{"at":{"format":"date-time","type":"string"},"id":{"type":"string"}},"type":"object"}` {
		t.Fatalf("order.returned %+v", got[0])
	}
}

// wrap returns a document whose one webhook hook.x has the given post
// operation and components.
func wrap(post, components string) string {
	return `{"openapi":"3.1.0","webhooks":{"hook.x":{"post":` + post + `}},"components":` + components + `}`
}

// body returns a post operation whose JSON body has the given schema.
func body(schema string) string {
	return `{"requestBody":{"content":{"application/json":{"schema":` + schema + `}}}}`
}

// bomb returns components where schema s0 refers to s1 twice, s1 to s2
// twice, and so on: n steps write out 2^n copies of the last.
func bomb(n int, leaf string) string {
	var b strings.Builder
	b.WriteString(`{"schemas":{`)
	for i := range n {
		fmt.Fprintf(&b, `"s%d":{"allOf":[{"$ref":"#/components/schemas/s%d"},{"$ref":"#/components/schemas/s%d"}]},`, i, i+1, i+1)
	}
	fmt.Fprintf(&b, `"s%d":%s}}`, n, leaf)
	return b.String()
}

// Every problem names where it is in the document.
func TestEventTypesProblems(t *testing.T) {
	deep := `{"type":"object"}`
	for range MaxDepth + 1 {
		deep = `{"items":` + deep + `}`
	}
	cases := []struct {
		name, doc, want string
	}{
		{"NotJSON", `{"openapi":`, "#/: not a valid JSON document"},
		{"NotObject", `[1]`, "#/: the document is not an object"},
		{"YAMLScalar", `just text`, "#/: the document is not an object"},
		{"TrailingData", `{"openapi":"3.1.0"} {}`, "#/: not a valid JSON document: data after the document"},
		{"NoVersion", `{"webhooks":{}}`, "#/openapi: an OpenAPI 3 document is needed"},
		{"Swagger", `{"openapi":"2.0"}`, "#/openapi: an OpenAPI 3 document is needed"},
		{"NoWebhooks", `{"openapi":"3.1.0","paths":{}}`, "#/webhooks: the document defines no webhooks"},
		{"WebhooksNotObject", `{"openapi":"3.1.0","webhooks":[]}`, "#/webhooks: must be an object"},
		{"TooMany", manyHooks(MaxEventTypes + 1), "#/webhooks: the document defines 1001 webhooks, more than 1000"},
		{"Both", `{"openapi":"3.1.0","webhooks":{"a":{"post":{}}},"x-webhooks":{"a":{"post":{}}}}`, "#/x-webhooks/a: is in webhooks too"},
		{"NoPost", `{"openapi":"3.1.0","webhooks":{"a":{"put":{}}}}`, "#/webhooks/a: a webhook needs a post operation"},
		{"PathItemNotObject", `{"openapi":"3.1.0","webhooks":{"a":"x"}}`, "#/webhooks/a: must be an object"},
		{"DescriptionNotString", wrap(`{"description":3}`, `{}`), "#/webhooks/hook.x/post/description: must be a string"},
		{"DeprecatedNotBool", wrap(`{"deprecated":"yes"}`, `{}`), "#/webhooks/hook.x/post/deprecated: must be a boolean"},
		{"FlagNotString", wrap(`{"x-svix-feature-flag":true}`, `{}`), "#/webhooks/hook.x/post/x-svix-feature-flag: must be a string"},
		{"ContentMissing", wrap(`{"requestBody":{}}`, `{}`), "#/webhooks/hook.x/post/requestBody/content: must be an object"},
		{"SchemaNotObject", wrap(body(`true`), `{}`), "#/webhooks/hook.x/post/requestBody/content/application~1json/schema: must be an object"},
		{"ExternalRef", wrap(body(`{"$ref":"other.yaml#/X"}`), `{}`), `#/webhooks/hook.x/post/requestBody/content/application~1json/schema/$ref: "other.yaml#/X": only references inside the document`},
		{"MissingRef", wrap(body(`{"$ref":"#/components/schemas/Nope"}`), `{}`), `schema/$ref: "#/components/schemas/Nope" names nothing in the document`},
		{"RefNotString", wrap(body(`{"$ref":1}`), `{}`), `schema/$ref: must be a string`},
		{"RefNotPointer", wrap(body(`{"$ref":"#x"}`), `{}`), `schema/$ref: "#x" is not a JSON pointer`},
		{"Recursive", wrap(body(`{"$ref":"#/components/schemas/Node"}`),
			`{"schemas":{"Node":{"type":"object","properties":{"next":{"$ref":"#/components/schemas/Node"}}}}}`),
			`#/components/schemas/Node/properties/next/$ref: "#/components/schemas/Node" refers to itself`},
		{"RefLoop", wrap(`{"requestBody":{"$ref":"#/components/requestBodies/A"}}`,
			`{"requestBodies":{"A":{"$ref":"#/components/requestBodies/B"},"B":{"$ref":"#/components/requestBodies/A"}}}`),
			"more than 64 references in a row"},
		{"TooDeep", wrap(body(deep), `{}`), "nested more than 64 deep"},
		{"ValueBomb", wrap(body(`{"$ref":"#/components/schemas/s0"}`), bomb(20, `{"type":"string"}`)),
			"the document expands to more than 200000 values"},
		{"TextBomb", wrap(body(`{"$ref":"#/components/schemas/s0"}`), bomb(10, `{"description":"`+strings.Repeat("x", 20000)+`"}`)),
			"the document expands to more than 8388608 bytes of text"},
		{"SiblingsOnNonObject", wrap(body(`{"$ref":"#/components/schemas/N","description":"d"}`), `{"schemas":{"N":[1]}}`),
			"schema: a $ref with other keywords must name an object"},
		{"ExamplesNotObject", wrap(`{"requestBody":{"content":{"application/json":{"schema":{},"examples":[1]}}}}`, `{}`),
			"application~1json/examples: must be an object"},
		{"YAMLKeys", "openapi: 3.1.0\nwebhooks:\n  a:\n    post:\n      x-map: {1: one}\n", "#/webhooks/a/post/x-map: an object's keys must be strings"},
		{"YAMLTextBomb", "openapi: 3.1.0\ns: &s " + strings.Repeat("x", 100000) + "\nl: [" + strings.Repeat("*s, ", 100) + "*s]\n",
			": the document expands to more than 8388608 bytes of text"},
		{"YAMLAliasBomb", yamlBomb(), "#/: not a valid YAML or JSON document: yaml: document contains excessive aliasing"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := Decode([]byte(c.doc))
			if err == nil {
				_, err = EventTypes(d)
			}
			e, ok := AsError(err)
			if !ok {
				t.Fatalf("error %v, want an *Error", err)
			}
			if !strings.Contains(e.Error(), c.want) {
				t.Fatalf("error %q, want it to contain %q", e.Error(), c.want)
			}
		})
	}
}

// yamlBomb is the billion laughs in YAML: each anchor repeats the one
// before ten times.
func yamlBomb() string {
	var b strings.Builder
	b.WriteString("openapi: 3.1.0\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i < 9; i++ {
		fmt.Fprintf(&b, "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	return b.String()
}

// An escaped JSON pointer (~1 for /, ~0 for ~) is followed.
func TestEscapedPointer(t *testing.T) {
	d, err := Decode([]byte(wrap(body(`{"$ref":"#/components/schemas/a~1b~0c"}`), `{"schemas":{"a/b~c":{"type":"object"}}}`)))
	if err != nil {
		t.Fatal(err)
	}
	got, err := EventTypes(d)
	if err != nil {
		t.Fatal(err)
	}
	if s := asJSON(t, got[0].Schema); s != `{"type":"object"}` {
		t.Fatalf("schema %s", s)
	}
}

// FuzzEventTypes: any input either reads or fails with an *Error, never
// panics, and what it reads marshals as JSON.
func FuzzEventTypes(f *testing.F) {
	f.Add([]byte(doc))
	f.Add([]byte(wrap(body(`{"$ref":"#/components/schemas/s0"}`), bomb(3, `{}`))))
	f.Add([]byte("openapi: 3.1.0\nwebhooks: {a: {post: {requestBody: {content: {application/json: {schema: {$ref: '#/webhooks'}}}}}}}\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		d, err := Decode(raw)
		if err == nil {
			var ets []EventType
			ets, err = EventTypes(d)
			for _, et := range ets {
				if _, merr := json.Marshal(et.Schema); merr != nil {
					t.Fatalf("schema of %s does not marshal: %v", et.Name, merr)
				}
			}
		}
		if err != nil {
			if _, ok := AsError(err); !ok {
				t.Fatalf("error %v is not an *Error", err)
			}
		}
	})
}

// manyHooks returns a document with n webhooks.
func manyHooks(n int) string {
	hooks := make([]string, n)
	for i := range hooks {
		hooks[i] = fmt.Sprintf(`"e%d":{"post":{}}`, i)
	}
	return `{"openapi":"3.1.0","webhooks":{` + strings.Join(hooks, ",") + `}}`
}

// A document at the bound reads.
func TestMaxEventTypes(t *testing.T) {
	d, err := Decode([]byte(manyHooks(MaxEventTypes)))
	if err != nil {
		t.Fatal(err)
	}
	got, err := EventTypes(d)
	if err != nil || len(got) != MaxEventTypes {
		t.Fatalf("%d event types, %v", len(got), err)
	}
}
