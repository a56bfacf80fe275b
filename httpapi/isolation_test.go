package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-webhooks/herald"
)

// TestEndpointOrdering: "ordering" is Herald's extra field on endpoints:
// "none" unless set, "fifo" on create, kept by a PUT that does not name it
// (Svix clients do not know it), changed by PATCH (null is none), and
// anything else is a 422.
func TestEndpointOrdering(t *testing.T) {
	ts := newTestServer(t)
	ts.mustCall(t, http.StatusCreated, nil, "POST", "/api/v1/app", `{"name":"Acme","uid":"acme"}`)
	var ep endpointOut
	ts.mustCall(t, http.StatusCreated, &ep, "POST", "/api/v1/app/acme/endpoint",
		`{"url":"https://example.com/hook","uid":"ordered","ordering":"fifo"}`)
	if ep.Ordering != "fifo" {
		t.Fatalf("created with ordering %q, want fifo", ep.Ordering)
	}
	get := func() endpointOut {
		t.Helper()
		var out endpointOut
		ts.mustCall(t, http.StatusOK, &out, "GET", "/api/v1/app/acme/endpoint/ordered", "")
		return out
	}
	if got := get().Ordering; got != "fifo" {
		t.Fatalf("GET: ordering %q, want fifo", got)
	}
	stored, err := ts.Store.GetEndpoint(t.Context(), mustAppID(t, ts, "acme"), ep.ID)
	if err != nil || stored.Ordering != herald.OrderingFIFO {
		t.Fatalf("stored ordering %q (%v), want fifo", stored.Ordering, err)
	}
	ts.mustCall(t, http.StatusOK, nil, "PUT", "/api/v1/app/acme/endpoint/ordered", `{"url":"https://example.com/other"}`)
	if got := get().Ordering; got != "fifo" {
		t.Fatalf("after a PUT without ordering: %q, want fifo", got)
	}
	ts.mustCall(t, http.StatusOK, nil, "PATCH", "/api/v1/app/acme/endpoint/ordered", `{"ordering":"none"}`)
	if got := get().Ordering; got != "none" {
		t.Fatalf("after PATCH none: %q", got)
	}
	ts.mustCall(t, http.StatusOK, nil, "PATCH", "/api/v1/app/acme/endpoint/ordered", `{"ordering":"fifo"}`)
	ts.mustCall(t, http.StatusOK, nil, "PATCH", "/api/v1/app/acme/endpoint/ordered", `{"description":"kept"}`)
	if got := get().Ordering; got != "fifo" {
		t.Fatalf("after a PATCH without ordering: %q, want fifo", got)
	}
	ts.mustCall(t, http.StatusOK, nil, "PATCH", "/api/v1/app/acme/endpoint/ordered", `{"ordering":null}`)
	if got := get().Ordering; got != "none" {
		t.Fatalf("after PATCH null: %q, want none", got)
	}
	var plain endpointOut
	ts.mustCall(t, http.StatusCreated, &plain, "POST", "/api/v1/app/acme/endpoint", `{"url":"https://example.com/plain"}`)
	if plain.Ordering != "none" {
		t.Fatalf("created without ordering: %q, want none", plain.Ordering)
	}
	for _, body := range []string{`{"url":"https://example.com/x","ordering":"lifo"}`, `{"url":"https://example.com/x","ordering":1}`} {
		res := ts.call(t, "POST", "/api/v1/app/acme/endpoint", body)
		if d := validationOut(t, res); len(d) != 1 || d[0].Loc[len(d[0].Loc)-1] != "ordering" {
			t.Fatalf("%s: %s", body, res.Body)
		}
	}
}

func mustAppID(t *testing.T, ts *testServer, ref string) string {
	t.Helper()
	app, err := ts.Store.GetApplication(t.Context(), ref)
	if err != nil {
		t.Fatal(err)
	}
	return app.ID
}

// TestOperationalAppHidden: the internal application of operational
// webhooks is neither listed nor served, whatever the route.
func TestOperationalAppHidden(t *testing.T) {
	ts := newTestServer(t)
	for _, name := range []string{"a", "b", "c"} {
		ts.mustCall(t, http.StatusCreated, nil, "POST", "/api/v1/app", `{"name":"`+name+`"}`)
	}
	now := ts.Clock.Now()
	if err := ts.Store.CreateApplication(t.Context(), &herald.Application{ID: herald.OperationalAppID, Name: "ops",
		CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := ts.Store.CreateEndpoint(t.Context(), &herald.Endpoint{ID: herald.OperationalEndpointID, AppID: herald.OperationalAppID,
		URL: "https://ops.example.com", Version: 1, Secrets: []herald.SigningSecret{{Key: make([]byte, 24)}},
		CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	// Every page size: three applications listed, never the operational one.
	for limit := 1; limit <= 4; limit++ {
		var ids []string
		iterator := ""
		for range 10 {
			var page listResponse[applicationOut]
			q := url.Values{"limit": {string(rune('0' + limit))}}
			if iterator != "" {
				q.Set("iterator", iterator)
			}
			ts.mustCall(t, http.StatusOK, &page, "GET", "/api/v1/app?"+q.Encode(), "")
			for _, app := range page.Data {
				ids = append(ids, app.ID)
			}
			if page.Done {
				break
			}
			iterator = *page.Iterator
		}
		if len(ids) != 3 {
			t.Fatalf("limit %d: listed %v, want the three applications", limit, ids)
		}
		for _, id := range ids {
			if id == herald.OperationalAppID {
				t.Fatalf("limit %d: the operational application is listed", limit)
			}
		}
	}
	app := url.PathEscape(herald.OperationalAppID)
	for _, rt := range []struct{ method, path, body string }{
		{"GET", "/api/v1/app/" + app, ""},
		{"PUT", "/api/v1/app/" + app, `{"name":"taken"}`},
		{"PATCH", "/api/v1/app/" + app, `{"name":"taken"}`},
		{"DELETE", "/api/v1/app/" + app, ""},
		{"GET", "/api/v1/app/" + app + "/endpoint", ""},
		{"GET", "/api/v1/app/" + app + "/endpoint/" + url.PathEscape(herald.OperationalEndpointID), ""},
		{"PATCH", "/api/v1/app/" + app + "/endpoint/" + url.PathEscape(herald.OperationalEndpointID), `{"url":"https://evil.example.com"}`},
		{"GET", "/api/v1/app/" + app + "/endpoint/" + url.PathEscape(herald.OperationalEndpointID) + "/secret", ""},
		{"POST", "/api/v1/app/" + app + "/msg", `{"eventType":"endpoint.disabled","payload":{}}`},
		{"GET", "/api/v1/app/" + app + "/msg", ""},
	} {
		res := ts.call(t, rt.method, rt.path, rt.body)
		if res.Status != http.StatusNotFound && rt.method != "PUT" {
			t.Errorf("%s %s: %d %s, want 404", rt.method, rt.path, res.Status, res.Body)
		}
		if rt.method == "PUT" && res.Status != http.StatusUnprocessableEntity && res.Status != http.StatusNotFound {
			// PUT on a missing application creates one with the path as
			// its uid; the operational ID is not a valid uid.
			t.Errorf("%s %s: %d %s, want 422", rt.method, rt.path, res.Status, res.Body)
		}
	}
	got, err := ts.Store.GetApplication(t.Context(), herald.OperationalAppID)
	if err != nil || got.Name != "ops" {
		t.Fatalf("operational application after the attempts: %+v, %v", got, err)
	}
	ep, err := ts.Store.GetEndpoint(t.Context(), herald.OperationalAppID, herald.OperationalEndpointID)
	if err != nil || ep.URL != "https://ops.example.com" {
		t.Fatalf("operational endpoint after the attempts: %+v, %v", ep, err)
	}
	if n := countMessages(t, ts.Store, herald.OperationalAppID); n != 0 {
		t.Fatalf("%d messages posted to the operational application", n)
	}
}

// TestToggleWakesDispatcher: disabling or enabling an endpoint queues an
// operational event, so the API tells the dispatcher, as it does for
// resends, whenever a request sets disabled (only the store knows whether
// the state changed); other changes do not.
func TestToggleWakesDispatcher(t *testing.T) {
	var woken atomic.Int32
	ts := newTestServer(t, func(c *Config) { c.OnQueued = func() { woken.Add(1) } })
	ts.mustCall(t, http.StatusCreated, nil, "POST", "/api/v1/app", `{"name":"Acme","uid":"acme"}`)
	ts.mustCall(t, http.StatusCreated, nil, "POST", "/api/v1/app/acme/endpoint", `{"url":"https://example.com/hook","uid":"e"}`)
	for _, step := range []struct {
		method, body string
		want         int32
	}{
		{"PATCH", `{"description":"x"}`, 0},
		{"PATCH", `{"disabled":true}`, 1},
		{"PUT", `{"url":"https://example.com/hook"}`, 1}, // a PUT without disabled keeps it
		{"PUT", `{"url":"https://example.com/hook","disabled":false}`, 2},
	} {
		ts.mustCall(t, http.StatusOK, nil, step.method, "/api/v1/app/acme/endpoint/e", step.body)
		if got := woken.Load(); got != step.want {
			t.Fatalf("after %s %s: woken %d times, want %d", step.method, step.body, got, step.want)
		}
	}
}

// goneAfterRead is a store that, once armed, has a worker fail the
// endpoint's due delivery with 410 Gone right after the API's next read of
// an endpoint, or right before its next UpdateEndpointFunc: the dispatcher
// disables the endpoint between a handler's read and its write, or while
// the handler prepares its write (handlers that change an endpoint read
// and write it in one UpdateEndpointFunc transaction, which nothing can
// come between).
type goneAfterRead struct {
	herald.Store
	now   func() time.Time
	armed atomic.Bool
}

func (s *goneAfterRead) GetEndpoint(ctx context.Context, appID, ref string) (*herald.Endpoint, error) {
	ep, err := s.Store.GetEndpoint(ctx, appID, ref)
	if err != nil || !s.armed.Swap(false) {
		return ep, err
	}
	return ep, s.gone(ctx, ep.ID)
}

func (s *goneAfterRead) UpdateEndpointFunc(ctx context.Context, appID, ref string, update func(*herald.Endpoint) error) (*herald.Endpoint, error) {
	if s.armed.Swap(false) {
		ep, err := s.Store.GetEndpoint(ctx, appID, ref)
		if err != nil {
			return nil, err
		}
		if err := s.gone(ctx, ep.ID); err != nil {
			return nil, err
		}
	}
	return s.Store.UpdateEndpointFunc(ctx, appID, ref, update)
}

// gone claims the due deliveries and records 410 Gone for the one to
// endpoint epID, which disables it.
func (s *goneAfterRead) gone(ctx context.Context, epID string) error {
	now := s.now()
	claims, err := s.ClaimDue(ctx, herald.ClaimOptions{Owner: "worker", Now: now, LeaseUntil: now.Add(time.Minute), Limit: 100})
	if err != nil {
		return err
	}
	for _, c := range claims {
		if c.Delivery.EndpointID != epID {
			continue
		}
		at := &herald.Attempt{ID: herald.NewIDAt(herald.PrefixAttempt, now), DeliveryID: c.Delivery.ID,
			AppID: c.Delivery.AppID, MessageID: c.Delivery.MessageID, EndpointID: epID, URL: "https://example.com/hook",
			ResponseStatus: http.StatusGone, Status: herald.AttemptFailed, Trigger: c.Delivery.Trigger, CreatedAt: now}
		return s.RecordAttempts(ctx, []herald.AttemptOutcome{{DeliveryID: c.Delivery.ID, LeaseOwner: "worker",
			Status: herald.DeliveryFailed, DisableEndpoint: true, Attempt: at}})
	}
	return errors.New("no due delivery to endpoint " + epID)
}

// TestUpdateKeepsAutoDisable: PUT and PATCH of an endpoint or its headers
// change the endpoint as stored at the write. When the dispatcher disables
// it after the request arrived, a body without disabled leaves it disabled; one with
// disabled: false enables it, clearing failing_since and queuing
// endpoint.enabled.
func TestUpdateKeepsAutoDisable(t *testing.T) {
	var store *goneAfterRead
	var woken atomic.Int32
	ts := newTestServer(t, func(c *Config) {
		store = &goneAfterRead{Store: c.Store, now: c.Now}
		c.Store = store
		c.OnQueued = func() { woken.Add(1) }
	})
	ctx := t.Context()
	now := ts.Clock.Now()
	if err := ts.Store.CreateApplication(ctx, &herald.Application{ID: herald.OperationalAppID, Name: "ops",
		CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := ts.Store.CreateEndpoint(ctx, &herald.Endpoint{ID: herald.OperationalEndpointID, AppID: herald.OperationalAppID,
		URL: "https://ops.example.com", Version: 1, Secrets: []herald.SigningSecret{{Key: make([]byte, 24)}},
		CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	enabledEvents := func() int {
		t.Helper()
		msgs, err := ts.Store.ListMessages(ctx, herald.OperationalAppID, herald.MessageListOptions{ListOptions: herald.ListOptions{Limit: 100}})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, m := range msgs {
			if m.EventType == herald.EventEndpointEnabled {
				n++
			}
		}
		return n
	}
	appID := createApp(t, ts, `{"name":"Acme","uid":"acme"}`)
	var created endpointOut
	ts.mustCall(t, http.StatusCreated, &created, "POST", "/api/v1/app/acme/endpoint", `{"url":"https://example.com/hook","uid":"e"}`)
	const path = "/api/v1/app/acme/endpoint/e"
	for _, step := range []struct {
		method, path, body string
		status             int
		wantDisabled       bool
	}{
		{"PATCH", path, `{"description":"renamed"}`, http.StatusOK, true},
		{"PUT", path, `{"url":"https://example.com/hook"}`, http.StatusOK, true},
		{"PUT", path + "/headers", `{"headers":{"X-A":"1"}}`, http.StatusNoContent, true},
		{"PATCH", path + "/headers", `{"headers":{"X-B":"2"}}`, http.StatusNoContent, true},
		{"PATCH", path, `{"disabled":false}`, http.StatusOK, false},
		{"PUT", path, `{"url":"https://example.com/hook","disabled":false}`, http.StatusOK, false},
	} {
		name := step.method + " " + step.path + " " + step.body
		// Start enabled, with a delivery for the worker to fail.
		ts.mustCall(t, http.StatusOK, nil, "PATCH", path, `{"disabled":false}`)
		ts.Clock.Add(time.Second)
		ts.mustCall(t, http.StatusAccepted, nil, "POST", "/api/v1/app/acme/msg", `{"eventType":"order.created","payload":{}}`)
		events, wakes := enabledEvents(), woken.Load()

		store.armed.Store(true)
		var out endpointOut
		res := ts.mustCall(t, step.status, nil, step.method, step.path, step.body)
		if store.armed.Load() {
			t.Fatalf("%s: the endpoint was neither read nor updated", name)
		}
		if step.status == http.StatusOK {
			if err := json.Unmarshal(res.Body, &out); err != nil {
				t.Fatal(err)
			}
			if out.Disabled != step.wantDisabled {
				t.Errorf("%s: answered disabled %v, want %v", name, out.Disabled, step.wantDisabled)
			}
		}
		got, err := ts.Store.GetEndpoint(ctx, appID, created.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Disabled != step.wantDisabled {
			t.Fatalf("%s: stored disabled %v, want %v", name, got.Disabled, step.wantDisabled)
		}
		wantEvents, wantWakes := events, wakes
		if !step.wantDisabled {
			wantEvents, wantWakes = events+1, wakes+1
			if !got.FailingSince.IsZero() {
				t.Errorf("%s: failing since %v after enabling, want zero", name, got.FailingSince)
			}
		}
		if n := enabledEvents(); n != wantEvents {
			t.Errorf("%s: %d endpoint.enabled events, want %d", name, n, wantEvents)
		}
		if n := woken.Load(); n != wantWakes {
			t.Errorf("%s: woken %d times, want %d", name, n, wantWakes)
		}
	}
}
