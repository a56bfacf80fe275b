package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	svix "github.com/svix/svix-webhooks/go"
	"github.com/svix/svix-webhooks/go/models"

	"github.com/herald-webhooks/herald"
)

// shopSpec is an OpenAPI 3.1 document with two webhooks: invoice.paid's
// schema by $ref with a named example, user.created deprecated behind a
// feature flag with an inline schema and example.
const shopSpec = `{
  "openapi": "3.1.0",
  "info": {"title": "Shop", "version": "1"},
  "webhooks": {
    "invoice.paid": {"post": {
      "summary": "An invoice was paid",
      "requestBody": {"content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Invoice"},
        "examples": {"small": {"value": {"id": "in_1", "amount": 5}}, "large": {"value": {"id": "in_2", "amount": 5000}}}
      }}}
    }},
    "user.created": {"post": {
      "description": "A user signed up",
      "deprecated": true,
      "x-svix-feature-flag": "beta",
      "requestBody": {"content": {"application/json": {
        "schema": {"type": "object", "properties": {"email": {"type": "string"}}},
        "example": {"email": "a@example.com"}
      }}}
    }}
  },
  "components": {"schemas": {"Invoice": {"type": "object", "properties": {"id": {"type": "string"}, "amount": {"type": "integer"}}}}}
}`

// shopYAML is a smaller document in YAML, as specRaw may be.
const shopYAML = `openapi: 3.1.0
info: {title: Shop, version: "2"}
webhooks:
  invoice.paid:
    post:
      summary: An invoice was paid (v2)
      requestBody:
        content:
          application/json:
            schema: {type: object}
            example: {id: in_3}
`

// TestSDKImportOpenAPI imports event types through the official Svix Go
// SDK: a dry run writes nothing, an import creates the event types with
// their schemas (version "1", examples included), send-example sends an
// imported example, a second import from YAML replaces and unarchives,
// and replaceAll archives what the document leaves out.
func TestSDKImportOpenAPI(t *testing.T) {
	onEachEngine(t, func(t *testing.T, ts *testServer) {
		client := ts.sdk(t, ts.Token)
		ctx := t.Context()
		var spec map[string]any
		if err := json.Unmarshal([]byte(shopSpec), &spec); err != nil {
			t.Fatal(err)
		}
		_, err := client.EventType.Create(ctx, models.EventTypeIn{Name: "old.event", Description: "before"}, nil)
		mustNoErr(t, "create old.event", err)

		dry, err := client.EventType.ImportOpenapi(ctx, models.EventTypeImportOpenApiIn{Spec: &spec, DryRun: ptr(true), ReplaceAll: ptr(true)}, nil)
		mustNoErr(t, "dry run", err)
		if len(dry.Data.Modified) != 0 || len(dry.Data.ToModify) != 2 {
			t.Fatalf("dry run %+v", dry.Data)
		}
		user := dry.Data.ToModify[1]
		wantUserSchemas := map[string]any{"1": map[string]any{
			"type": "object", "properties": map[string]any{"email": map[string]any{"type": "string"}},
			"examples": []any{map[string]any{"email": "a@example.com"}},
		}}
		if user.Name != "user.created" || user.Description != "A user signed up" || !user.Deprecated ||
			user.FeatureFlag == nil || *user.FeatureFlag != "beta" || !cmp.Equal(wantUserSchemas, *user.Schemas) {
			t.Fatalf("dry run user.created %+v", user)
		}
		list, err := client.EventType.List(ctx, nil)
		mustNoErr(t, "list after dry run", err)
		if len(list.Data) != 1 || list.Data[0].Name != "old.event" {
			t.Fatalf("a dry run wrote: %+v", list.Data)
		}

		out, err := client.EventType.ImportOpenapi(ctx, models.EventTypeImportOpenApiIn{Spec: &spec}, nil)
		mustNoErr(t, "import", err)
		if diff := cmp.Diff([]string{"invoice.paid", "user.created"}, out.Data.Modified); diff != "" || out.Data.ToModify != nil {
			t.Fatalf("import modified (-want +got):\n%s; to_modify %+v", diff, out.Data.ToModify)
		}
		invoice, err := client.EventType.Get(ctx, "invoice.paid")
		mustNoErr(t, "get invoice.paid", err)
		wantInvoiceSchemas := map[string]any{"1": map[string]any{
			"type": "object", "properties": map[string]any{"id": map[string]any{"type": "string"}, "amount": map[string]any{"type": "integer"}},
			// Named examples in name order.
			"examples": []any{map[string]any{"id": "in_2", "amount": float64(5000)}, map[string]any{"id": "in_1", "amount": float64(5)}},
		}}
		if invoice.Description != "An invoice was paid" || invoice.Deprecated || invoice.Schemas == nil {
			t.Fatalf("invoice.paid %+v", invoice)
		}
		if diff := cmp.Diff(wantInvoiceSchemas, *invoice.Schemas); diff != "" {
			t.Fatalf("invoice.paid schemas (-want +got):\n%s", diff)
		}
		got, err := client.EventType.Get(ctx, "user.created")
		mustNoErr(t, "get user.created", err)
		if !got.Deprecated || got.FeatureFlag == nil || *got.FeatureFlag != "beta" || !cmp.Equal(wantUserSchemas, *got.Schemas) {
			t.Fatalf("user.created %+v", got)
		}

		// send-example sends an imported example.
		app, err := client.Application.Create(ctx, models.ApplicationIn{Name: "shop", Uid: ptr("shop")}, nil)
		mustNoErr(t, "create app", err)
		ep, err := client.Endpoint.Create(ctx, app.Id, models.EndpointIn{Url: "https://example.com/hook"}, nil)
		mustNoErr(t, "create endpoint", err)
		m, err := client.Endpoint.SendExample(ctx, app.Id, ep.Id, models.EventExampleIn{EventType: "invoice.paid", ExampleIndex: ptr(uint64(1))}, nil)
		mustNoErr(t, "send example", err)
		if diff := cmp.Diff(map[string]any{"id": "in_1", "amount": float64(5)}, m.Payload); diff != "" {
			t.Fatalf("example payload (-want +got):\n%s", diff)
		}

		// Archived event types come back when a document names them.
		mustNoErr(t, "archive invoice.paid", client.EventType.Delete(ctx, "invoice.paid", nil))
		out, err = client.EventType.ImportOpenapi(ctx, models.EventTypeImportOpenApiIn{SpecRaw: ptr(shopYAML), ReplaceAll: ptr(true)}, nil)
		mustNoErr(t, "import YAML", err)
		if diff := cmp.Diff([]string{"invoice.paid", "old.event", "user.created"}, out.Data.Modified); diff != "" {
			t.Fatalf("replaceAll modified (-want +got):\n%s", diff)
		}
		invoice, err = client.EventType.Get(ctx, "invoice.paid")
		mustNoErr(t, "get invoice.paid again", err)
		if invoice.Archived == nil || *invoice.Archived || invoice.Description != "An invoice was paid (v2)" ||
			!cmp.Equal(map[string]any{"1": map[string]any{"type": "object", "examples": []any{map[string]any{"id": "in_3"}}}}, *invoice.Schemas) {
			t.Fatalf("invoice.paid after the YAML import %+v", invoice)
		}
		list, err = client.EventType.List(ctx, nil)
		mustNoErr(t, "list after replaceAll", err)
		if len(list.Data) != 1 || list.Data[0].Name != "invoice.paid" {
			t.Fatalf("after replaceAll: %+v", list.Data)
		}
		all, err := client.EventType.List(ctx, &svix.EventTypeListOptions{IncludeArchived: ptr(true)})
		mustNoErr(t, "list archived", err)
		if len(all.Data) != 3 {
			t.Fatalf("with archived: %+v", all.Data)
		}
	})
}

// A bad request or document is a 422 naming the field, or the place in the
// document, and writes nothing.
func TestImportOpenAPIRefused(t *testing.T) {
	ts := newTestServer(t)
	ts.mustCall(t, http.StatusCreated, nil, "POST", "/api/v1/event-type", `{"name":"kept","description":"d"}`)
	hook := func(post string) string {
		return `{"openapi":"3.1.0","webhooks":{"a.b":{"post":` + post + `}}}`
	}
	bomb := `{"openapi":"3.1.0","webhooks":{"a":{"post":{"requestBody":{"content":{"application/json":{"schema":{"$ref":"#/components/schemas/s0"}}}}}}},"components":{"schemas":{`
	for i := range 20 {
		bomb += `"s` + strconv.Itoa(i) + `":{"allOf":[{"$ref":"#/components/schemas/s` + strconv.Itoa(i+1) + `"},{"$ref":"#/components/schemas/s` + strconv.Itoa(i+1) + `"}]},`
	}
	bomb += `"s20":{"type":"string"}}}}`
	for _, tc := range []struct {
		name, body string
		loc        []string
	}{
		{"Neither", `{"dryRun":true}`, []string{"body", "spec"}},
		{"Both", `{"spec":` + hook(`{}`) + `,"specRaw":"openapi: 3.1.0"}`, []string{"body", "specRaw"}},
		{"SpecNotObject", `{"spec":[1]}`, []string{"body", "spec"}},
		{"NotOpenAPI3", `{"spec":{"swagger":"2.0"}}`, []string{"body", "spec", "openapi"}},
		{"NoWebhooks", `{"spec":{"openapi":"3.1.0"},"replaceAll":true}`, []string{"body", "spec", "webhooks"}},
		{"BadName", `{"spec":{"openapi":"3.1.0","webhooks":{"a b":{"post":{}}}}}`, []string{"body", "spec", "webhooks", "a b"}},
		{"BadNameIn30", `{"spec":{"openapi":"3.0.3","x-webhooks":{"a/b":{"post":{}}}}}`, []string{"body", "spec", "x-webhooks", "a/b"}},
		{"BadFlag", `{"spec":` + hook(`{"x-svix-feature-flag":"no flag"}`) + `}`, []string{"body", "spec", "webhooks", "a.b", "post", "x-svix-feature-flag"}},
		{"MissingRef", `{"spec":` + hook(`{"requestBody":{"$ref":"#/components/requestBodies/X"}}`) + `}`,
			[]string{"body", "spec", "webhooks", "a.b", "post", "requestBody", "$ref"}},
		{"BadYAML", `{"specRaw":"openapi: [3.1"}`, []string{"body", "specRaw"}},
		{"YAMLNoPost", `{"specRaw":"openapi: 3.1.0\nwebhooks:\n  a.b:\n    get: {}\n"}`, []string{"body", "specRaw", "webhooks", "a.b"}},
		{"Expands", `{"spec":` + bomb + `}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			items := validationOut(t, ts.call(t, "POST", "/api/v1/event-type/import/openapi", tc.body))
			if len(items) != 1 || (tc.loc != nil && !cmp.Equal(items[0].Loc, tc.loc)) {
				t.Fatalf("%+v, want one item at %v", items, tc.loc)
			}
			if tc.loc == nil && !strings.Contains(items[0].Msg, "expands to more than") {
				t.Fatalf("%+v, want the expansion bound", items)
			}
		})
	}
	list, err := ts.Store.ListEventTypes(t.Context(), herald.EventTypeListOptions{ListOptions: herald.ListOptions{Limit: 10}, IncludeArchived: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Name != "kept" || list[0].Archived {
		t.Fatalf("refused imports wrote: %+v", list)
	}
	// A document over the body limit is refused before it is read.
	big := `{"spec":{"openapi":"3.1.0","x":"` + strings.Repeat("x", DefaultMaxBodyBytes) + `"}}`
	if res := ts.call(t, "POST", "/api/v1/event-type/import/openapi", big); res.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d for a document over the body limit, want 413", res.Status)
	}
}
