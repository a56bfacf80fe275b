package httpapi

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// update rewrites the generated section of docs/api.md:
// go test ./httpapi -run TestAPIReferenceUpToDate -update (go generate
// ./httpapi runs it).
var update = flag.Bool("update", false, "rewrite the generated route reference in docs/api.md")

// The markers around the generated section of docs/api.md.
const (
	refBegin = "<!-- BEGIN GENERATED ROUTE REFERENCE: go generate ./httpapi; do not edit by hand -->"
	refEnd   = "<!-- END GENERATED ROUTE REFERENCE -->"
)

// TestAPIReferenceUpToDate: docs/api.md's route reference is what the
// served OpenAPI document says, as routeReference writes it.
func TestAPIReferenceUpToDate(t *testing.T) {
	ts := newTestServer(t, withMetrics(prometheus.NewRegistry()), withNodes)
	want, err := routeReference(fetchOpenAPI(t, ts))
	if err != nil {
		t.Fatal(err)
	}
	const path = "../docs/api.md"
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	before, rest, ok := bytes.Cut(doc, []byte(refBegin))
	_, after, ok2 := bytes.Cut(rest, []byte(refEnd))
	if !ok || !ok2 {
		t.Fatalf("docs/api.md lacks the markers %q and %q", refBegin, refEnd)
	}
	got := string(rest[:len(rest)-len(after)-len(refEnd)])
	if got == want {
		return
	}
	if *update {
		out := slices.Concat(before, []byte(refBegin), []byte(want), []byte(refEnd), after)
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("docs/api.md's route reference is not what the OpenAPI document says: run go generate ./httpapi\n--- got\n%s\n--- want\n%s", got, want)
}

// refDoc is the part of the OpenAPI document the reference shows.
type refDoc struct {
	Paths map[string]map[string]struct {
		OperationID string   `json:"operationId"`
		Summary     string   `json:"summary"`
		Tags        []string `json:"tags"`
		Extension   bool     `json:"x-herald-extension"`
		Access      string   `json:"x-herald-access"`
		Parameters  []struct {
			Name string `json:"name"`
			In   string `json:"in"`
		} `json:"parameters"`
		RequestBody *struct {
			Content map[string]struct {
				Schema map[string]any `json:"schema"`
			} `json:"content"`
		} `json:"requestBody"`
		Responses map[string]struct {
			Content map[string]struct {
				Schema map[string]any `json:"schema"`
			} `json:"content"`
		} `json:"responses"`
	} `json:"paths"`
}

// routeReference writes the Markdown route reference of an OpenAPI
// document: one table per tag, routes in path order.
func routeReference(spec []byte) (string, error) {
	var doc refDoc
	if err := json.Unmarshal(spec, &doc); err != nil {
		return "", err
	}
	type row struct{ tag, path, method, line string }
	var rows []row
	methods := []string{"get", "post", "put", "patch", "delete"}
	for path, item := range doc.Paths {
		for method, o := range item {
			var query []string
			for _, p := range o.Parameters {
				if p.In == "query" {
					query = append(query, "`"+p.Name+"`")
				}
			}
			body := "–"
			if o.RequestBody != nil {
				body = schemaName(o.RequestBody.Content["application/json"].Schema)
			}
			var answers []string
			for status, r := range o.Responses {
				if status[0] != '2' {
					continue
				}
				a := status
				if c, ok := r.Content["application/json"]; ok {
					a += " " + schemaName(c.Schema)
				} else if _, ok := r.Content["text/plain"]; ok {
					a += " text"
				}
				answers = append(answers, a)
			}
			slices.Sort(answers)
			summary := o.Summary
			if o.Extension {
				summary += " *(Herald)*"
			}
			rows = append(rows, row{tag: o.Tags[0], path: path, method: method, line: fmt.Sprintf("| `%s %s` | `%s` | %s | %s | %s | %s | %s |",
				strings.ToUpper(method), path, o.OperationID, summary, o.Access, orDash(strings.Join(query, " ")), body, strings.Join(answers, ", "))})
		}
	}
	slices.SortFunc(rows, func(a, b row) int {
		if c := strings.Compare(a.tag, b.tag); c != 0 {
			return c
		}
		if c := strings.Compare(a.path, b.path); c != 0 {
			return c
		}
		return slices.Index(methods, a.method) - slices.Index(methods, b.method)
	})
	var b strings.Builder
	b.WriteString("\n\nGenerated from the OpenAPI document the server serves at `GET /api/v1/openapi.json`. *(Herald)* marks Herald's extensions; access is the route table's (`public`, `probe`, `admin`, `app`, `any`, as in [Authentication](#authentication)). Every route also answers the errors of [Errors](#errors): the document lists each route's.\n")
	tag := ""
	for _, r := range rows {
		if r.tag != tag {
			tag = r.tag
			fmt.Fprintf(&b, "\n### %s\n\n| route | operationId | summary | access | query | body | answer |\n|---|---|---|---|---|---|---|\n", tag)
		}
		b.WriteString(r.line + "\n")
	}
	b.WriteString("\n")
	return b.String(), nil
}

// schemaName is a schema's component name, or its type.
func schemaName(s map[string]any) string {
	if ref, ok := s["$ref"].(string); ok {
		return "`" + ref[strings.LastIndex(ref, "/")+1:] + "`"
	}
	if t, ok := s["type"].(string); ok {
		return t
	}
	return "JSON"
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}
