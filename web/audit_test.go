package web

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/herald-webhooks/herald"
)

// TestPageChangesAudited: a change made in the console is in the audit
// log with the browser's client address and the page's request ID (the
// API requests a page makes carry its origin), and an X-Forwarded-For from
// a connection that is not a trusted proxy is not believed.
func TestPageChangesAudited(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login("/console", adminToken)
	res := b.post("/console/apps/new", url.Values{"name": {"Acme Inc."}, "uid": {"acme"}}, "X-Forwarded-For", "198.51.100.7")
	if res.Code != http.StatusSeeOther {
		t.Fatalf("create application: %d %s", res.Code, res.body)
	}
	recs, err := e.store.ListAuditRecords(t.Context(), herald.AuditListOptions{ListOptions: herald.ListOptions{Limit: 10}})
	if err != nil {
		t.Fatal(err)
	}
	var created *herald.AuditRecord
	for _, r := range recs {
		if r.Action == "application.create" {
			created = r
		}
	}
	if created == nil {
		t.Fatalf("no application.create record in %d records", len(recs))
	}
	// 192.0.2.1 is the browser's connection; no proxy is trusted here, so
	// the X-Forwarded-For it sent is not believed.
	if created.Actor.ClientAddr != "192.0.2.1" {
		t.Errorf("client address %q, want the browser's 192.0.2.1", created.Actor.ClientAddr)
	}
	if id := res.Header().Get("x-request-id"); id == "" || created.Actor.RequestID != id {
		t.Errorf("request ID %q, the page answered %q", created.Actor.RequestID, id)
	}
	if created.Actor.TokenKind != herald.TokenSession || created.Actor.TokenName != "admin-token" {
		t.Errorf("actor %+v, want the console session of the admin token", created.Actor)
	}
}
