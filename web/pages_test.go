package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/herald-webhooks/herald/telemetry"
)

// TestConsolePages walks every console page with real data made through
// the API and through the pages' own forms.
func TestConsolePages(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login("/console", adminToken)

	e.call("POST", "/api/v1/event-type", map[string]any{
		"name": "invoice.paid", "description": "An invoice was paid",
		"schemas": map[string]any{"1": map[string]any{
			"type": "object", "required": []string{"amount"},
			"properties": map[string]any{"amount": map[string]any{"type": "integer", "description": "In cents"}},
			"examples":   []any{map[string]any{"amount": 4200}},
		}},
	}, nil)

	// Applications: create through the form.
	want(t, b.get("/console/apps/new"), http.StatusOK, `<label for="name">`, `<h1>New application</h1>`)
	res := b.post("/console/apps/new", url.Values{"name": {"Acme Inc."}, "uid": {"acme"}, "rateLimit": {"20"}, "metadata": {"plan=gold\n"}})
	if res.Code != http.StatusSeeOther {
		t.Fatalf("create app: %d %s", res.Code, res.body)
	}
	appHref := res.Header().Get("Location")
	appHref = appHref[:strings.Index(appHref, "?")]
	var app appOut
	e.call("GET", "/api/v1/app/acme", nil, &app)
	if app.Name != "Acme Inc." || app.Metadata["plan"] != "gold" || app.RateLimit == nil || *app.RateLimit != 20 {
		t.Fatalf("created app %+v", app)
	}
	if appHref != "/console/apps/"+app.ID {
		t.Fatalf("redirected to %s", appHref)
	}
	want(t, b.get(appHref+"?flash=app-created"), http.StatusOK, "Application created.", "Acme Inc.", "No endpoints yet.")
	want(t, b.get("/console/apps"), http.StatusOK, "Acme Inc.", app.ID, "<h1>Applications</h1>")
	want(t, b.get("/console/apps?q=acme"), http.StatusOK, "Acme Inc.")
	res = b.get("/console/apps?q=zzz")
	want(t, res, http.StatusOK, "The filter hides 1")
	res = b.get("/console/apps?go=acme")
	if res.Code != http.StatusSeeOther || res.Header().Get("Location") != appHref {
		t.Errorf("go to acme: %d %s", res.Code, res.Header().Get("Location"))
	}
	want(t, b.get("/console/apps?go=nobody"), http.StatusOK, "No application has the ID or UID nobody.")
	want(t, b.get(appHref+"/edit"), http.StatusOK, `value="Acme Inc."`, "plan=gold")
	res = b.post(appHref+"/edit", url.Values{"name": {"Acme"}, "uid": {"acme"}, "metadata": {""}})
	if res.Code != http.StatusSeeOther {
		t.Fatalf("edit app: %d %s", res.Code, res.body)
	}
	app = appOut{}
	e.call("GET", "/api/v1/app/acme", nil, &app)
	if app.Name != "Acme" || app.RateLimit != nil || len(app.Metadata) != 0 {
		t.Errorf("edited app %+v", app)
	}

	// Endpoints: create through the form, with a filter and a header.
	res = b.get(appHref + "/endpoints/new")
	want(t, res, http.StatusOK, `value="invoice.paid"`, `<label for="url">`)
	res = b.post(appHref+"/endpoints/new", url.Values{
		"url": {"https://hooks.example.com/in"}, "description": {"Main"}, "filterTypes": {"invoice.paid"},
		"channels": {"eu, us"}, "rateLimit": {""}, "ordering": {"fifo"}, "headers": {"X-Team: billing\nX-Api-Key: s3cret"},
	})
	if res.Code != http.StatusSeeOther {
		t.Fatalf("create endpoint: %d %s", res.Code, res.body)
	}
	epHref := strings.Split(res.Header().Get("Location"), "?")[0]
	epID := epHref[strings.LastIndex(epHref, "/")+1:]
	var ep endpointOut
	e.call("GET", "/api/v1/app/acme/endpoint/"+epID, nil, &ep)
	if ep.URL != "https://hooks.example.com/in" || ep.Ordering != "fifo" || len(ep.FilterTypes) != 1 || len(ep.Channels) != 2 {
		t.Fatalf("created endpoint %+v", ep)
	}
	page := b.get(epHref)
	want(t, page, http.StatusOK, "https://hooks.example.com/in", "X-Team: billing", "X-Api-Key: (hidden)", "Reveal secret", "invoice.paid")
	wantNot(t, page, "s3cret", "whsec_")
	want(t, b.get(appHref), http.StatusOK, "https://hooks.example.com/in", "Main")

	// Reveal the secret: JSON for the script, the page without it.
	res = b.post(epHref+"/secret", nil, "X-Herald-Fetch", "1", "Accept", "application/json")
	want(t, res, http.StatusOK, `"key":"whsec_`)
	want(t, b.post(epHref+"/secret", nil), http.StatusOK, "whsec_")

	// Edit: drop the filter, change a header, keep the sensitive one.
	page = b.get(epHref + "/edit")
	want(t, page, http.StatusOK, "X-Team: billing", "Set, with values hidden", "X-Api-Key")
	res = b.post(epHref+"/edit", url.Values{"url": {"https://hooks.example.com/v2"}, "ordering": {"none"}, "headers": {"X-Region: eu"}, "rateLimit": {"5"}})
	if res.Code != http.StatusSeeOther {
		t.Fatalf("edit endpoint: %d %s", res.Code, res.body)
	}
	var hs headersOut
	e.call("GET", "/api/v1/app/acme/endpoint/"+epID+"/headers", nil, &hs)
	if hs.Headers["X-Region"] != "eu" || hs.Headers["X-Team"] != "" || len(hs.Sensitive) != 1 {
		t.Errorf("headers after edit: %+v", hs)
	}
	ep = endpointOut{}
	e.call("GET", "/api/v1/app/acme/endpoint/"+epID, nil, &ep)
	if ep.URL != "https://hooks.example.com/v2" || len(ep.FilterTypes) != 0 || ep.RateLimit == nil || *ep.RateLimit != 5 {
		t.Errorf("edited endpoint %+v", ep)
	}

	// Actions.
	for _, a := range []struct{ action, flash string }{{"disable", "ep-disabled"}, {"enable", "ep-enabled"}, {"rotate", "secret-rotated"}} {
		res = b.post(epHref+"/"+a.action, nil)
		if res.Code != http.StatusSeeOther || !strings.Contains(res.Header().Get("Location"), a.flash) {
			t.Errorf("%s: %d %s %s", a.action, res.Code, res.Header().Get("Location"), res.body)
		}
	}
	res = b.post(epHref+"/send-example", url.Values{"eventType": {"invoice.paid"}})
	if res.Code != http.StatusSeeOther || !strings.Contains(res.Header().Get("Location"), "/messages/msg_") {
		t.Fatalf("send example: %d %s %s", res.Code, res.Header().Get("Location"), res.body)
	}
	exampleHref := strings.Split(res.Header().Get("Location"), "?")[0]
	want(t, b.get(exampleHref), http.StatusOK, `&#34;amount&#34;: 4200`, "https://hooks.example.com/v2")
	res = b.post(epHref+"/recover", url.Values{"since": {"2025-03-01T00:00"}})
	if res.Code != http.StatusSeeOther {
		t.Errorf("recover: %d %s", res.Code, res.body)
	}
	// A recover with a bad time names the field next to its form.
	res = b.post(epHref+"/recover", url.Values{"since": {"yesterday"}})
	want(t, res, http.StatusUnprocessableEntity, `id="since-error"`, "since: enter a date")

	// Messages.
	msgID := e.send("acme", "invoice.paid", map[string]any{"amount": 990})
	var m messageOut
	e.call("POST", "/api/v1/app/acme/msg", map[string]any{"eventType": "invoice.paid", "eventId": "inv-77", "payload": map[string]any{"a": 1}, "channels": []string{"eu"}}, &m)
	e.attempt(500, "upstream broke")
	msgs := appHref + "/messages"
	want(t, b.get(msgs), http.StatusOK, msgID, m.ID, "inv-77", `<label for="event_type">`, "data-live=")
	// A channel or event type without a time range searches the last day:
	// the page sends the browser to that range, in the form for all to see.
	res = b.get(msgs + "?channel=eu")
	if loc := res.Header().Get("Location"); res.Code != http.StatusSeeOther || !strings.Contains(loc, "after=2025-02-28T12%3A00") || !strings.Contains(loc, "channel=eu") {
		t.Fatalf("channel without a range: %d %q", res.Code, loc)
	}
	byChannel := b.get(res.Header().Get("Location"))
	want(t, byChannel, http.StatusOK, m.ID, `value="2025-02-28T12:00"`, "the last 24 hours unless you choose one")
	wantNot(t, byChannel, msgID)
	want(t, b.get(msgs+"?endpoint="+epID+"&status=2"), http.StatusOK, "s-fail")
	want(t, b.get(msgs+"?after=2025-03-01T11:00&before=2025-03-01T13:00"), http.StatusOK, msgID)
	want(t, b.get(msgs+"?after=noon"), http.StatusUnprocessableEntity, `id="after-error"`)
	frag := b.get(msgs + "?fragment=1")
	want(t, frag, http.StatusOK, msgID)
	wantNot(t, frag, "<html", "<h1>")
	res = b.get(msgs + "?ref=inv-77")
	if res.Code != http.StatusSeeOther || !strings.HasSuffix(res.Header().Get("Location"), "/messages/"+m.ID) {
		t.Errorf("look-up by eventId: %d %s", res.Code, res.Header().Get("Location"))
	}
	want(t, b.get(msgs+"?ref=nope"), http.StatusOK, "No message with that ID")
	page = b.get(msgs + "/" + msgID)
	want(t, page, http.StatusOK, "&#34;amount&#34;: 990", "upstream broke", "500", "12 ms", "Resend", "s-fail")
	res = b.post(msgs+"/"+msgID+"/resend", url.Values{"endpoint": {epID}})
	if res.Code != http.StatusSeeOther || !strings.Contains(res.Header().Get("Location"), "flash=resent") {
		t.Errorf("resend: %d %s %s", res.Code, res.Header().Get("Location"), res.body)
	}
	// A raw payload that is not JSON shows as it was sent.
	var rawMsg messageOut
	e.call("POST", "/api/v1/app/acme/msg", map[string]any{"eventType": "invoice.paid", "payload": map[string]any{},
		"transformationsParams": map[string]any{"rawPayload": "<invoice id=\"42\">Straße</invoice>", "headers": map[string]string{"content-type": "application/xml"}}}, &rawMsg)
	want(t, b.get(msgs+"/"+rawMsg.ID), http.StatusOK, "&lt;invoice id=&#34;42&#34;&gt;Straße&lt;/invoice&gt;")
	// An expunged payload is said to be gone.
	e.call("DELETE", "/api/v1/app/acme/msg/"+msgID+"/content", nil, nil)
	want(t, b.get(msgs+"/"+msgID), http.StatusOK, "The payload is empty")

	// Event types.
	page = b.get("/console/event-types")
	want(t, page, http.StatusOK, "invoice.paid", "An invoice was paid", "<code>amount</code>", "In cents", "integer", "Archive")
	want(t, b.get("/console/event-types/new"), http.StatusOK, `<label for="schemas">`)
	res = b.post("/console/event-types/new", url.Values{"name": {"user.created"}, "description": {"A user"}, "schemas": {`{"1": {"type": "object"}}`}})
	if res.Code != http.StatusSeeOther {
		t.Fatalf("create event type: %d %s", res.Code, res.body)
	}
	want(t, b.get("/console/event-types/user.created/edit"), http.StatusOK, `value="A user"`)
	res = b.post("/console/event-types/user.created/edit", url.Values{"description": {"A new user"}, "schemas": {"not json"}})
	want(t, res, http.StatusUnprocessableEntity, `id="schemas-error"`)
	res = b.post("/console/event-types/user.created/edit", url.Values{"description": {"A new user"}, "deprecated": {"1"}})
	if res.Code != http.StatusSeeOther {
		t.Fatalf("edit event type: %d %s", res.Code, res.body)
	}
	res = b.post("/console/event-types/user.created/archive", url.Values{"archived": {"true"}})
	if res.Code != http.StatusSeeOther {
		t.Fatalf("archive: %d %s", res.Code, res.body)
	}
	wantNot(t, b.get("/console/event-types"), "user.created")
	want(t, b.get("/console/event-types?archived=1"), http.StatusOK, "user.created", "archived", "deprecated", "Restore")

	// Overview, with samples of real metrics.
	e.metrics.MessagesCommitted(1, 3)
	e.srv.sampler.take(t.Context())
	e.clock.Add(sampleEvery)
	e.metrics.MessagesCommitted(1, 7)
	e.metrics.DeliveryOutcome(telemetry.OutcomeSucceeded, "")
	e.metrics.DeliveryOutcome(telemetry.OutcomeRetrying, "")
	e.srv.sampler.take(t.Context())
	page = b.get("/console/")
	want(t, page, http.StatusOK, "<h1>Overview</h1>", "this node", "<polyline", "Messages accepted per second", "0.7/s", "50 %", "test-1.2.3")

	// Delete the endpoint and the application, through their confirmation
	// pages.
	want(t, b.get(epHref+"/delete"), http.StatusOK, "Delete the endpoint", `action="`+epHref+`/delete"`)
	if res = b.post(epHref+"/delete", nil); res.Code != http.StatusSeeOther {
		t.Fatalf("delete endpoint: %d %s", res.Code, res.body)
	}
	want(t, b.get(epHref), http.StatusNotFound)
	want(t, b.get(appHref+"/delete"), http.StatusOK, "Delete the application Acme")
	if res = b.post(appHref+"/delete", nil); res.Code != http.StatusSeeOther {
		t.Fatalf("delete app: %d %s", res.Code, res.body)
	}
	want(t, b.get(appHref), http.StatusNotFound)
}

// TestValidationErrors shows the API's 422 next to the field it names.
func TestValidationErrors(t *testing.T) {
	e := newEnv(t)
	appID, _ := e.newApp("A", "https://a.example.com/hook")
	b := e.browser()
	b.login("/console", adminToken)
	res := b.post("/console/apps/"+appID+"/endpoints/new", url.Values{"url": {"ftp://files.example.com"}, "description": {"kept"}})
	want(t, res, http.StatusUnprocessableEntity, `<p class="field-error" id="url-error">url: `, `aria-describedby="url-error"`, `value="kept"`)
	res = b.post("/console/apps/new", url.Values{"name": {""}})
	want(t, res, http.StatusUnprocessableEntity, `id="name-error">name: `)
	res = b.post("/console/apps/new", url.Values{"name": {"x"}, "metadata": {"no equals sign"}})
	want(t, res, http.StatusUnprocessableEntity, `id="metadata-error">metadata: line 1`)
	res = b.post("/console/apps/new", url.Values{"name": {"x"}, "rateLimit": {"fast"}})
	want(t, res, http.StatusUnprocessableEntity, `id="rateLimit-error"`)
	// A conflict is not a field's: it is shown above the form.
	e.call("POST", "/api/v1/app", map[string]any{"name": "B", "uid": "taken"}, nil)
	res = b.post("/console/apps/new", url.Values{"name": {"C"}, "uid": {"taken"}})
	want(t, res, http.StatusConflict, `class="flash error"`)
	// send-example of a type without an example names the field.
	e.call("POST", "/api/v1/event-type", map[string]any{"name": "bare.type"}, nil)
	var eps listOut[endpointOut]
	e.call("GET", "/api/v1/app/"+appID+"/endpoint", nil, &eps)
	res = b.post("/console/apps/"+appID+"/endpoints/"+eps.Data[0].ID+"/send-example", url.Values{"eventType": {"bare.type"}})
	want(t, res, http.StatusUnprocessableEntity, `id="eventType-error">eventType: `)
}

// TestEscaping puts markup in everything a user controls and checks it
// comes out as text.
func TestEscaping(t *testing.T) {
	const xss = "<script>alert(1)</script>"
	e := newEnv(t)
	var app appOut
	e.call("POST", "/api/v1/app", map[string]any{"name": xss, "metadata": map[string]string{"k": xss}}, &app)
	var ep endpointOut
	e.call("POST", "/api/v1/app/"+app.ID+"/endpoint", map[string]any{
		"url": "https://x.example.com/?q=\"><script>alert(1)</script>", "description": xss,
		"headers": map[string]string{"X-Evil": xss},
	}, &ep)
	e.call("POST", "/api/v1/event-type", map[string]any{"name": "evil.type", "description": xss,
		"schemas": map[string]any{"1": map[string]any{"properties": map[string]any{"p": map[string]any{"description": xss}}}}}, nil)
	msgID := e.send(app.ID, "evil.type", map[string]any{"html": xss})
	e.attempt(200, xss)
	b := e.browser()
	b.login("/console", adminToken)
	base := "/console/apps/" + app.ID
	for _, path := range []string{
		"/console/apps", base, base + "/edit", base + "/delete", base + "/endpoints/" + ep.ID,
		base + "/endpoints/" + ep.ID + "/edit", base + "/endpoints/" + ep.ID + "/delete",
		base + "/messages", base + "/messages/" + msgID, "/console/event-types",
	} {
		res := b.get(path)
		want(t, res, http.StatusOK, "&lt;script&gt;alert(1)&lt;/script&gt;")
		if strings.Contains(res.body, "<script>alert") {
			t.Errorf("%s: unescaped markup", path)
		}
		if n := strings.Count(res.body, "<script"); n != 1 {
			t.Errorf("%s: %d script elements, want 1 (our own)", path, n)
		}
		for _, bad := range []string{" style=", " onclick=", " onload=", " onerror="} {
			if strings.Contains(res.body, bad) {
				t.Errorf("%s: has %q", path, bad)
			}
		}
	}
}

// TestPageSize keeps the long pages small: 50 endpoints, 50 messages.
func TestPageSize(t *testing.T) {
	e := newEnv(t)
	var app appOut
	e.call("POST", "/api/v1/app", map[string]any{"name": "Big"}, &app)
	for i := range 50 {
		e.call("POST", "/api/v1/app/"+app.ID+"/endpoint", map[string]any{
			"url": fmt.Sprintf("https://customer-%02d.example.com/webhooks/herald/endpoint", i), "description": "A customer endpoint with a description",
		}, nil)
	}
	e.call("POST", "/api/v1/event-type", map[string]any{"name": "invoice.paid"}, nil)
	for i := range 60 {
		e.send(app.ID, "invoice.paid", map[string]any{"invoice": fmt.Sprintf("inv-%d", i), "padding": strings.Repeat("x", 2000)})
	}
	e.attempt(200, strings.Repeat("ok ", 100))
	b := e.browser()
	b.login("/console", adminToken)
	base := "/console/apps/" + app.ID
	var eps listOut[endpointOut]
	e.call("GET", "/api/v1/app/"+app.ID+"/endpoint?limit=1", nil, &eps)
	for _, path := range []string{base, base + "/messages", base + "/messages?endpoint=" + eps.Data[0].ID, base + "/endpoints/new"} {
		res := b.get(path)
		want(t, res, http.StatusOK)
		if n := len(res.body); n > 64<<10 {
			t.Errorf("%s: %d bytes, want at most 64 KiB", path, n)
		}
		if path == base && strings.Count(res.body, "customer-") != 50 {
			t.Errorf("%s: not 50 endpoints", path)
		}
	}
	// Paging is by iterator.
	res := b.get(base + "/messages")
	if strings.Count(res.body, `class="mono">msg_`) != 50 {
		t.Errorf("the first page has %d messages", strings.Count(res.body, `class="mono">msg_`))
	}
	next := regexp.MustCompile(`href="([^"]+)" rel="next"`).FindStringSubmatch(res.body)
	if next == nil || !strings.Contains(next[1], "iterator=") {
		t.Fatalf("no next link: %v", next)
	}
	res = b.get(htmlUnescape(next[1]))
	want(t, res, http.StatusOK, `rel="prev"`)
}

// htmlUnescape undoes the escaping of & in an href.
func htmlUnescape(s string) string { return strings.ReplaceAll(s, "&amp;", "&") }

func TestOverviewRates(t *testing.T) {
	e := newEnv(t)
	e.srv.sampler.take(t.Context())
	for range 3 {
		e.clock.Add(sampleEvery)
		e.metrics.MessagesCommitted(1, 20)
		e.metrics.DeliveryOutcome(telemetry.OutcomeSucceeded, "")
		e.srv.sampler.take(t.Context())
	}
	samples := e.srv.sampler.samples()
	if len(samples) != 4 || samples[3].Messages != 60 || samples[3].Succeeded != 3 {
		t.Fatalf("samples %+v", samples)
	}
	b := e.browser()
	b.login("/console", adminToken)
	want(t, b.get("/console/"), http.StatusOK, "<strong>2/s</strong>", "<strong>100 %</strong>")
	// The ring keeps the last hour only.
	for range maxSamples + 5 {
		e.clock.Add(sampleEvery)
		e.srv.sampler.take(t.Context())
	}
	if n := len(e.srv.sampler.samples()); n != maxSamples {
		t.Fatalf("%d samples, want %d", n, maxSamples)
	}
}

func TestRunStops(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := contextWithTimeout(t, time.Second)
	done := make(chan struct{})
	go func() { e.srv.Run(ctx); close(done) }()
	cancel()
	<-done
	if len(e.srv.sampler.samples()) == 0 {
		t.Error("Run took no sample")
	}
}

func TestChart(t *testing.T) {
	end := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	pts := []point{{end.Add(-50 * time.Minute), 1}, {end.Add(-40 * time.Minute), 3}, {end.Add(-30 * time.Minute), nan()}, {end.Add(-20 * time.Minute), 2}}
	c := newChart("x", "X", pts, end, time.Hour, 0, formatNumber)
	if len(c.Lines) != 1 || len(c.Dots) != 1 || c.Latest != "2" || c.Grid[2].Text != "5" {
		t.Errorf("chart %+v", c)
	}
	if got := []string{c.XLabels[0].Text, c.XLabels[1].Text}; got[0] != "−1h" || got[1] != "−30m" {
		t.Errorf("x labels %v", got)
	}
	for _, tc := range []struct{ in, want float64 }{{0, 1}, {0.3, 0.5}, {7, 10}, {12, 20}, {100, 100}} {
		if got := niceCeil(tc.in); got != tc.want {
			t.Errorf("niceCeil(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
	b, _ := json.Marshal(c)
	if strings.Contains(string(b), "NaN") {
		t.Error("a NaN reached the chart")
	}
}

// TestAPIAnswerNot2xx4xx5xx checks that an API answer that is neither a
// success nor an error (a redirect of a path the API cleans, say) becomes
// a 404 page, never a redirect without a Location.
func TestAPIAnswerNot2xx4xx5xx(t *testing.T) {
	e := newEnv(t)
	appID, epID := e.newApp("A", "https://a.example.com/hook")
	msgID := e.send(appID, "x.y", map[string]any{"a": 1})
	pb := e.browser()
	pb.loginPortal(e.portalToken(appID, false))
	cb := e.browser()
	cb.login("/console", adminToken)
	base := "/console/apps/" + appID
	for _, tc := range []struct {
		b      *browser
		method string
		path   string
	}{
		{pb, "GET", "/portal/endpoints/%2E%2E"},
		{pb, "GET", "/portal/endpoints/%2E"},
		{pb, "GET", "/portal/endpoints/%2E%2E/edit"},
		{pb, "GET", "/portal/messages/%2E%2E"},
		{pb, "POST", "/portal/endpoints/%2E%2E/disable"},
		{pb, "POST", "/portal/messages/" + msgID + "/resend"},
		{cb, "GET", "/console/apps/%2E%2E"},
		{cb, "GET", base + "/endpoints/%2E%2E"},
		{cb, "GET", base + "/messages/%2E%2E"},
		{cb, "POST", base + "/endpoints/%2E%2E/rotate"},
	} {
		var res response
		if tc.method == "POST" {
			form := url.Values{}
			if strings.HasSuffix(tc.path, "/resend") {
				form.Set("endpoint", "..")
			}
			res = tc.b.post(tc.path, form)
		} else {
			res = tc.b.get(tc.path)
		}
		if res.Code != http.StatusNotFound {
			t.Errorf("%s %s: %d (Location %q), want 404", tc.method, tc.path, res.Code, res.Header().Get("Location"))
		}
	}
	want(t, cb.get(base+"/endpoints/"+epID), http.StatusOK)

	// Whatever the handler answers outside 2xx, 4xx and 5xx is a 404.
	for _, code := range []int{http.StatusSwitchingProtocols, http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusNotModified, 600, 999} {
		srv := &Server{handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Location", "/elsewhere")
			w.WriteHeader(code)
		})}
		err := srv.api(t.Context(), accessPrincipal{}, "GET", "/app/x", nil, nil, nil)
		var ae *apiError
		if !errors.As(err, &ae) || ae.Status != http.StatusNotFound {
			t.Errorf("an API answer %d: %v, want a 404 apiError", code, err)
		}
	}
}

// TestChartOnePoint draws a lone value as a dot: a series of one point (a
// rate after the second sample) is data, not "no data yet".
func TestChartOnePoint(t *testing.T) {
	end := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	c := newChart("x", "X", []point{{end.Add(-time.Minute), 4}}, end, time.Hour, 0, formatNumber)
	if c.Empty || c.Latest != "4" || len(c.Lines) != 0 || len(c.Dots) != 1 {
		t.Fatalf("one point: %+v", c)
	}
	if d := c.Dots[0]; d.X != "583.1" || d.Y != "33.6" {
		t.Errorf("the dot is at %s,%s", d.X, d.Y)
	}
	// A point alone between gaps is a dot too; runs stay lines.
	pts := []point{{end.Add(-50 * time.Minute), 1}, {end.Add(-40 * time.Minute), nan()}, {end.Add(-30 * time.Minute), 2}, {end.Add(-20 * time.Minute), nan()},
		{end.Add(-10 * time.Minute), 1}, {end.Add(-5 * time.Minute), 3}}
	c = newChart("x", "X", pts, end, time.Hour, 0, formatNumber)
	if c.Empty || len(c.Lines) != 1 || len(c.Dots) != 2 {
		t.Errorf("runs of 1, 1 and 2 points: %+v", c)
	}
	for _, pts := range [][]point{nil, {{end.Add(-time.Minute), nan()}}, {{end.Add(-2 * time.Hour), 5}}} {
		c = newChart("x", "X", pts, end, time.Hour, 0, formatNumber)
		if !c.Empty || c.Latest != "no data yet" || len(c.Lines)+len(c.Dots) != 0 {
			t.Errorf("%v: %+v, want empty", pts, c)
		}
	}

	// On the overview: two samples make one rate each, drawn as a dot.
	e := newEnv(t)
	e.srv.sampler.take(t.Context())
	e.clock.Add(sampleEvery)
	e.metrics.MessagesCommitted(1, 5)
	e.srv.sampler.take(t.Context())
	b := e.browser()
	b.login("/console", adminToken)
	page := b.get("/console/")
	want(t, page, http.StatusOK, "<strong>0.5/s</strong>", "Messages accepted per second, last hour; latest 0.5/s", `<circle cx="592.0" cy="8.0" r="3" class="dot"/>`)
	wantNot(t, page, "Messages accepted per second, last hour: no data yet", " style=")
	e2 := newEnv(t)
	b2 := e2.browser()
	b2.login("/console", adminToken)
	page = b2.get("/console/")
	want(t, page, http.StatusOK, "Messages accepted per second, last hour: no data yet")
	wantNot(t, page, "<circle", "<polyline")
}

// attemptsTable is the attempts table of a page, or "".
func attemptsTable(body string) string {
	i := strings.Index(body, `<table class="attempts">`)
	if i < 0 {
		return ""
	}
	j := strings.Index(body[i:], "</table>")
	return body[i : i+j]
}

// TestAttemptTables checks what each attempt row names: on a message's
// page the endpoint by its URL (not the message's own ID again), on an
// endpoint's page the message by its event type and ID (not the endpoint's
// ID again); every cell is labelled for the narrow layout.
func TestAttemptTables(t *testing.T) {
	e := newEnv(t)
	var app appOut
	e.call("POST", "/api/v1/app", map[string]any{"name": "A"}, &app)
	const evilURL = `https://x.example.com/in?q="><b>bold</b>`
	var ep1, ep2 endpointOut
	e.call("POST", "/api/v1/app/"+app.ID+"/endpoint", map[string]any{"url": evilURL}, &ep1)
	e.call("POST", "/api/v1/app/"+app.ID+"/endpoint", map[string]any{"url": "https://y.example.com/in"}, &ep2)
	msgID := e.send(app.ID, "invoice.paid", map[string]any{"a": 1})
	e.attempt(500, "no")
	b := e.browser()
	b.login("/console", adminToken)
	base := "/console/apps/" + app.ID

	table := attemptsTable(b.get(base + "/messages/" + msgID).body)
	if table == "" {
		t.Fatal("the message page has no attempts table")
	}
	for _, s := range []string{
		`<th scope="col">Endpoint</th>`,
		`<a href="` + base + `/endpoints/` + ep1.ID + `" class="url">https://x.example.com/in?q=&#34;&gt;&lt;b&gt;bold&lt;/b&gt;</a>`,
		`<a href="` + base + `/endpoints/` + ep2.ID + `" class="url">https://y.example.com/in</a>`,
		`data-label="Status"`, `data-label="HTTP"`, `data-label="Time"`, `data-label="Response"`,
	} {
		if !strings.Contains(table, s) {
			t.Errorf("the message page's attempts lack %s:\n%s", s, table)
		}
	}
	for _, s := range []string{msgID, "<b>", `<th scope="col">Message</th>`, ep1.ID + "</a>"} {
		if strings.Contains(table, s) {
			t.Errorf("the message page's attempts have %s:\n%s", s, table)
		}
	}
	rows, cells, labels := strings.Count(table, "<tr>")-1, strings.Count(table, "<td"), strings.Count(table, "<td data-label=")
	if rows != 2 || cells != 7*rows || labels != cells {
		t.Errorf("%d rows, %d cells, %d of them labelled; want 2, 14, 14", rows, cells, labels)
	}

	table = attemptsTable(b.get(base + "/endpoints/" + ep2.ID).body)
	for _, s := range []string{
		`<th scope="col">Message</th>`,
		`<a href="` + base + `/messages/` + msgID + `"><code>invoice.paid</code></a>`,
		msgID,
	} {
		if !strings.Contains(table, s) {
			t.Errorf("the endpoint page's attempts lack %s:\n%s", s, table)
		}
	}
	for _, s := range []string{ep2.ID, `<th scope="col">Endpoint</th>`} {
		if strings.Contains(table, s) {
			t.Errorf("the endpoint page's attempts have %s:\n%s", s, table)
		}
	}
}

// TestRotateFlash says when the new secret signs: the dispatcher reads an
// endpoint again within a few seconds, and the old secret keeps signing.
func TestRotateFlash(t *testing.T) {
	e := newEnv(t)
	appID, epID := e.newApp("A", "https://a.example.com/hook")
	b := e.browser()
	b.login("/console", adminToken)
	href := "/console/apps/" + appID + "/endpoints/" + epID
	res := b.post(href+"/rotate", nil)
	if res.Code != http.StatusSeeOther {
		t.Fatalf("rotate: %d %s", res.Code, res.body)
	}
	want(t, b.get(res.Header().Get("Location")), http.StatusOK,
		`<p class="flash" role="status">Secret rotated. The new secret signs deliveries within a few seconds; the old one keeps signing beside it for 24 hours.</p>`)
}

// TestFormatAge: the oldest-delivery axis labels say what they mean; the
// half of a three-minute scale is not "1m".
func TestFormatAge(t *testing.T) {
	for v, want := range map[float64]string{0: "0s", 1.5: "1.5s", 60: "1m", 90: "1m30s", 180: "3m", 5400: "1.5h"} {
		if got := formatAge(v); got != want {
			t.Errorf("formatAge(%v) = %q, want %q", v, got, want)
		}
	}
}

// TestFramedByOthers: only a source list naming another site turns the
// portal's cookies into third-party ones; 'none', 'self' and stray spaces
// keep them Strict.
func TestFramedByOthers(t *testing.T) {
	for list, want := range map[string]bool{
		"'self'": false, " 'self' ": false, "'none'": false, "'self' 'none'": false,
		"'self' https://app.example.com": true, "https://app.example.com": true, "*": true,
	} {
		if got := framedByOthers(list); got != want {
			t.Errorf("framedByOthers(%q) = %v, want %v", list, got, want)
		}
	}
}

// TestLongResponseCutOnACharacter: a response body over what the pages
// show is cut before a character, never inside one.
func TestLongResponseCutOnACharacter(t *testing.T) {
	s := &Server{}
	body := strings.Repeat("a", 4095) + "é" + strings.Repeat("b", 10) // "é" spans bytes 4095 and 4096
	row := s.toAttemptRow(&reqCtx{site: &site{base: "/console"}}, "app_1", attemptOut{MsgID: "msg_1", Response: body})
	if !row.Truncated || row.Response != strings.Repeat("a", 4095) || !utf8.ValidString(row.Response) {
		t.Errorf("cut to %d bytes (valid %v, truncated %v)", len(row.Response), utf8.ValidString(row.Response), row.Truncated)
	}
}
