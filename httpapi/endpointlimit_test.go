package httpapi

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestMaxEndpointsPerApp: an application at --max-endpoints-per-app gets
// 422 naming body.url and the limit for one more endpoint, by POST and by
// PUT's create, and nothing is created; another application is not
// affected; after a delete there is room for one again.
func TestMaxEndpointsPerApp(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.MaxEndpointsPerApp = 3 })
	ts.mustCall(t, http.StatusCreated, nil, "POST", "/api/v1/app", `{"name":"a","uid":"app-a"}`)
	ts.mustCall(t, http.StatusCreated, nil, "POST", "/api/v1/app", `{"name":"b","uid":"app-b"}`)
	var ids []string
	for i := range 3 {
		var out struct {
			ID string `json:"id"`
		}
		ts.mustCall(t, http.StatusCreated, &out, "POST", "/api/v1/app/app-a/endpoint", fmt.Sprintf(`{"url":"https://example.com/%d"}`, i))
		ids = append(ids, out.ID)
	}
	for _, req := range []struct{ method, path string }{
		{"POST", "/api/v1/app/app-a/endpoint"},
		{"PUT", "/api/v1/app/app-a/endpoint/ep-four"},
	} {
		items := validationOut(t, ts.call(t, req.method, req.path, `{"url":"https://example.com/4"}`))
		if len(items) != 1 || strings.Join(items[0].Loc, ".") != "body.url" || !strings.Contains(items[0].Msg, "limit of 3 endpoints") {
			t.Fatalf("%s %s at the limit: %+v, want one item at body.url naming the limit of 3", req.method, req.path, items)
		}
	}
	var list struct {
		Data []any `json:"data"`
	}
	ts.mustCall(t, http.StatusOK, &list, "GET", "/api/v1/app/app-a/endpoint", "")
	if len(list.Data) != 3 {
		t.Fatalf("app-a has %d endpoints after the refusals, want 3", len(list.Data))
	}
	ts.mustCall(t, http.StatusCreated, nil, "POST", "/api/v1/app/app-b/endpoint", `{"url":"https://example.com/b"}`)
	ts.mustCall(t, http.StatusNoContent, nil, "DELETE", "/api/v1/app/app-a/endpoint/"+ids[0], "")
	ts.mustCall(t, http.StatusCreated, nil, "POST", "/api/v1/app/app-a/endpoint", `{"url":"https://example.com/5"}`)
}
