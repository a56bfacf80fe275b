package httpapi

import (
	"net/http"
	"testing"

	"github.com/svix/svix-webhooks/go/models"
)

// TestMessageAppCache: message posts reuse the application they read, yet
// see a change made through this node at once and a deletion made
// elsewhere (another node, straight in the store) on their first failure.
func TestMessageAppCache(t *testing.T) {
	ts := newTestServer(t)
	var app models.ApplicationOut
	ts.mustCall(t, http.StatusCreated, &app, "POST", "/api/v1/app", `{"name":"A","uid":"cached"}`)
	const msg = `{"eventType":"a.b","payload":{}}`
	ts.mustCall(t, http.StatusAccepted, nil, "POST", "/api/v1/app/cached/msg", msg)

	// Deleted and created again with the same uid behind this node's back:
	// the post reads the uid again and goes to the new application.
	if err := ts.Store.DeleteApplication(t.Context(), app.Id); err != nil {
		t.Fatal(err)
	}
	var again models.ApplicationOut
	ts.mustCall(t, http.StatusCreated, &again, "POST", "/api/v1/app", `{"name":"A again","uid":"cached"}`)
	var out models.MessageOut
	ts.mustCall(t, http.StatusAccepted, &out, "POST", "/api/v1/app/cached/msg", msg)
	if _, err := ts.Store.GetMessage(t.Context(), again.Id, out.Id); err != nil {
		t.Fatalf("message not stored in the new application: %v", err)
	}

	// A uid changed through this node no longer resolves.
	ts.mustCall(t, http.StatusOK, nil, "PATCH", "/api/v1/app/cached", `{"uid":"renamed"}`)
	if res := ts.call(t, "POST", "/api/v1/app/cached/msg", msg); res.Status != http.StatusNotFound {
		t.Fatalf("post to the old uid: status %d, want 404; body %s", res.Status, res.Body)
	}
	ts.mustCall(t, http.StatusAccepted, nil, "POST", "/api/v1/app/renamed/msg", msg)

	// Deleted through this node: gone at once.
	ts.mustCall(t, http.StatusNoContent, nil, "DELETE", "/api/v1/app/renamed", "")
	if res := ts.call(t, "POST", "/api/v1/app/renamed/msg", msg); res.Status != http.StatusNotFound {
		t.Fatalf("post to a deleted application: status %d, want 404; body %s", res.Status, res.Body)
	}
}
