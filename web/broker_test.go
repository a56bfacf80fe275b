package web

import (
	"net/http"
	"net/url"
	"testing"
)

// TestBrokerURLMaskedInPages: the console and the portal show a broker
// endpoint's URL with its password masked (endpoint list, endpoint page,
// edit form, messages filter), never the password; saving the edit form,
// which holds the masked URL, keeps the stored password.
func TestBrokerURLMaskedInPages(t *testing.T) {
	const password = "pw-web-3e8b71"
	full := "nats://herald:" + password + "@nats.example.com:4222/orders"
	masked := "nats://herald:xxxxx@nats.example.com:4222/orders"
	e := newEnv(t)
	appID, epID := e.newApp("Brokers", full)
	b := e.browser()
	b.login("/console", adminToken)
	appHref := "/console/apps/" + appID
	epHref := appHref + "/endpoints/" + epID
	for _, page := range []string{appHref, epHref, epHref + "/edit", appHref + "/messages"} {
		res := b.get(page)
		want(t, res, http.StatusOK, masked)
		wantNot(t, res, password)
	}
	res := b.post(epHref+"/edit", url.Values{"url": {masked}, "description": {"renamed"}, "ordering": {"none"}})
	if res.Code != http.StatusSeeOther {
		t.Fatalf("edit endpoint: %d %s", res.Code, res.body)
	}
	ep, err := e.store.GetEndpoint(t.Context(), appID, epID)
	if err != nil {
		t.Fatal(err)
	}
	if ep.URL != full || ep.Description != "renamed" {
		t.Fatalf("after saving the form: URL %q, description %q; want the stored password kept", ep.URL, ep.Description)
	}

	p := e.browser()
	p.loginPortal(e.portalToken(appID, false))
	for _, page := range []string{"/portal/", "/portal/endpoints/" + epID, "/portal/endpoints/" + epID + "/edit"} {
		res := p.get(page)
		want(t, res, http.StatusOK, masked)
		wantNot(t, res, password)
	}
}
