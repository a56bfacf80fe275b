package dispatch_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	svix "github.com/svix/svix-webhooks/go"
	"github.com/svix/svix-webhooks/go/models"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/dispatch"
	"github.com/herald-webhooks/herald/internal/testclock"
	"github.com/herald-webhooks/herald/signature"
)

// opReceiver is the operator's URL for operational webhooks: it verifies
// each request with the Svix library and keeps the events, in arrival
// order. Its first request fails, so operational deliveries are seen to be
// retried.
type opReceiver struct {
	srv    *httptest.Server
	secret []byte
	mu     sync.Mutex
	calls  int
	bad    int
	ids    map[string]bool // webhook-ids accepted
	events []json.RawMessage
}

func newOpReceiver(t *testing.T) *opReceiver {
	t.Helper()
	key, err := signature.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	wh, err := svix.NewWebhook(signature.FormatSecret(key))
	if err != nil {
		t.Fatal(err)
	}
	o := &opReceiver{secret: key, ids: map[string]bool{}}
	o.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		o.mu.Lock()
		defer o.mu.Unlock()
		o.calls++
		if err := wh.Verify(body, r.Header); err != nil {
			o.bad++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if o.calls == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if id := r.Header.Get("webhook-id"); !o.ids[id] {
			o.ids[id] = true
			o.events = append(o.events, body)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(o.srv.Close)
	return o
}

// received returns the events received so far and how many requests failed
// verification.
func (o *opReceiver) received() ([]json.RawMessage, int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]json.RawMessage(nil), o.events...), o.bad
}

// eventType reads the type of an operational payload.
func eventType(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var ev struct{ Type string }
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatalf("operational payload %s: %v", raw, err)
	}
	return ev.Type
}

// TestOperationalWebhooks drives one endpoint through every operational
// event on an injected clock and checks that each arrives at the operator's
// URL, verified with the Svix library and decoded into the Svix SDK's
// types: message.attempt.failing (the first failure after a success),
// message.attempt.exhausted (the last try failed), endpoint.disabled
// (automatic, after failing for --disable-after), endpoint.enabled and
// endpoint.disabled (manual). The first operational request fails and is
// retried like any delivery; no event reports on the operational endpoint.
func TestOperationalWebhooks(t *testing.T) {
	c := testclock.New(time.Now().UTC().Truncate(time.Second))
	t0 := c.Now()
	e := newEnv(t, envOptions{clock: c, schedule: []time.Duration{time.Minute, time.Minute},
		breaker: dispatch.BreakerConfig{Disabled: true}, disableAfter: 3 * time.Minute})
	ops := newOpReceiver(t)
	if err := dispatch.ConfigureOperational(t.Context(), e.store, ops.srv.URL, ops.secret, t0); err != nil {
		t.Fatal(err)
	}
	var (
		mu     sync.Mutex
		status = http.StatusNoContent
	)
	r := newReceiver(t, func(_ int, w http.ResponseWriter) {
		mu.Lock()
		defer mu.Unlock()
		w.WriteHeader(status)
	})
	ep := e.endpoint(t, r, nil, nil)
	attempts := func(m *herald.Message, n int) func() bool {
		return func() bool { return len(e.attempts(t, m.ID)) == n }
	}

	// A success, then failures: the first failure reports failing.
	m1 := e.send(t, "a", nil)
	eventually(t, "m1 delivered", func() bool { return e.delivery(t, m1.ID, ep.ID).Status == herald.DeliverySucceeded })
	mu.Lock()
	status = http.StatusInternalServerError
	mu.Unlock()
	m2 := e.send(t, "a", nil)
	eventually(t, "m2's first attempt", attempts(m2, 1))
	// Its two retries fail too: exhausted.
	c.Add(time.Minute)
	eventually(t, "m2's second attempt", attempts(m2, 2))
	c.Add(time.Minute)
	eventually(t, "m2 failed for good", func() bool { return e.delivery(t, m2.ID, ep.ID).Status == herald.DeliveryFailed })
	// m3 fails at t0+2m and again at t0+3m: failing for --disable-after.
	m3 := e.send(t, "a", nil)
	eventually(t, "m3's first attempt", attempts(m3, 1))
	c.Add(time.Minute)
	eventually(t, "endpoint disabled", func() bool {
		got, err := e.store.GetEndpoint(t.Context(), e.app.ID, ep.ID)
		return err == nil && got.Disabled
	})
	if d := e.delivery(t, m3.ID, ep.ID); d.Status != herald.DeliveryFailed {
		t.Errorf("pending delivery of the auto-disabled endpoint: %s, want failed (recoverable)", d.Status)
	}
	// Enabled, then disabled by hand (as PATCH does).
	got, err := e.store.GetEndpoint(t.Context(), e.app.ID, ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	got.Disabled, got.UpdatedAt = false, c.Now()
	if err := e.store.UpdateEndpoint(t.Context(), got); err != nil {
		t.Fatal(err)
	}
	got.Disabled, got.UpdatedAt = true, c.Now()
	if err := e.store.UpdateEndpoint(t.Context(), got); err != nil {
		t.Fatal(err)
	}
	// The first operational request failed; its retry is due a minute on.
	c.Add(time.Minute)
	var events []json.RawMessage
	eventually(t, "five operational events", func() bool {
		events, _ = ops.received()
		return len(events) >= 5
	})
	time.Sleep(100 * time.Millisecond) // let anything extra arrive
	events, bad := ops.received()
	if bad != 0 {
		t.Errorf("%d operational requests failed verification", bad)
	}
	ops.mu.Lock()
	calls := ops.calls
	ops.mu.Unlock()
	if calls != len(events)+1 {
		t.Errorf("%d operational requests for %d events, want one more (the failed first one, retried)", calls, len(events))
	}
	var types []string
	for _, raw := range events {
		types = append(types, eventType(t, raw))
	}
	want := []string{herald.EventMessageAttemptFailing, herald.EventMessageAttemptExhausted, herald.EventEndpointDisabled,
		herald.EventEndpointEnabled, herald.EventEndpointDisabled}
	// The first event's first try failed, so it arrives after the others.
	if len(types) != len(want) {
		t.Fatalf("operational events %v, want %v in some order", types, want)
	}
	counts := map[string]int{}
	for _, ty := range types {
		counts[ty]++
	}
	if counts[herald.EventMessageAttemptFailing] != 1 || counts[herald.EventMessageAttemptExhausted] != 1 ||
		counts[herald.EventEndpointDisabled] != 2 || counts[herald.EventEndpointEnabled] != 1 {
		t.Fatalf("operational events %v, want %v in some order", types, want)
	}

	for _, raw := range events {
		switch eventType(t, raw) {
		case herald.EventMessageAttemptFailing:
			var ev svix.MessageAttemptFailingEvent
			mustDecode(t, raw, &ev)
			d := ev.Data
			if d.AppId != e.app.ID || d.EndpointId != ep.ID || d.MsgId != m2.ID || d.LastAttempt.ResponseStatusCode != 500 ||
				!d.LastAttempt.Timestamp.Equal(t0) || d.LastAttempt.Id != e.attempts(t, m2.ID)[0].ID {
				t.Errorf("message.attempt.failing: %+v", d)
			}
		case herald.EventMessageAttemptExhausted:
			var ev svix.MessageAttemptExhaustedEvent
			mustDecode(t, raw, &ev)
			d := ev.Data
			if d.AppId != e.app.ID || d.EndpointId != ep.ID || d.MsgId != m2.ID || d.LastAttempt.ResponseStatusCode != 500 ||
				!d.LastAttempt.Timestamp.Equal(t0.Add(2*time.Minute)) {
				t.Errorf("message.attempt.exhausted: %+v", d)
			}
		case herald.EventEndpointDisabled:
			var ev svix.EndpointDisabledEvent
			mustDecode(t, raw, &ev)
			d := ev.Data
			switch {
			case d.AppId != e.app.ID || d.EndpointId != ep.ID || d.Trigger == nil:
				t.Errorf("endpoint.disabled: %+v", d)
			case *d.Trigger == models.ENDPOINTDISABLEDTRIGGER_AUTOMATIC && (d.FailSince == nil || !d.FailSince.Equal(t0)):
				t.Errorf("endpoint.disabled (automatic): failSince %v, want %v", d.FailSince, t0)
			case *d.Trigger == models.ENDPOINTDISABLEDTRIGGER_MANUAL && d.FailSince != nil:
				// Enabling cleared the failing run.
				t.Errorf("endpoint.disabled (manual): failSince %v, want none", d.FailSince)
			}
		case herald.EventEndpointEnabled:
			var ev svix.EndpointEnabledEvent
			mustDecode(t, raw, &ev)
			if d := ev.Data; d.AppId != e.app.ID || d.EndpointId != ep.ID {
				t.Errorf("endpoint.enabled: %+v", d)
			}
		}
	}
	var triggers []string
	for _, raw := range events {
		if eventType(t, raw) == herald.EventEndpointDisabled {
			var ev svix.EndpointDisabledEvent
			mustDecode(t, raw, &ev)
			triggers = append(triggers, string(*ev.Data.Trigger))
		}
	}
	if len(triggers) != 2 || triggers[0] == triggers[1] {
		t.Errorf("endpoint.disabled triggers %v, want one automatic and one manual", triggers)
	}

	// Never recursive: the operational endpoint's own failed request moved
	// nothing.
	opEp, err := e.store.GetEndpoint(t.Context(), herald.OperationalAppID, herald.OperationalEndpointID)
	if err != nil {
		t.Fatal(err)
	}
	if !opEp.FailingSince.IsZero() || opEp.Disabled {
		t.Errorf("operational endpoint: failing since %v, disabled %v", opEp.FailingSince, opEp.Disabled)
	}
}

func mustDecode(t *testing.T, raw json.RawMessage, v any) {
	t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("decode %s: %v", raw, err)
	}
}

// TestConfigureOperational: configuring creates the internal application
// and endpoint, a new URL or secret updates them, and no URL disables the
// endpoint (and queues nothing about it).
func TestConfigureOperational(t *testing.T) {
	e := newEnv(t, envOptions{})
	now := time.Now()
	key1, _ := signature.NewSecret()
	key2, _ := signature.NewSecret()
	if err := dispatch.ConfigureOperational(t.Context(), e.store, "", key1, now); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.GetEndpoint(t.Context(), herald.OperationalAppID, herald.OperationalEndpointID); herald.ErrorCode(err) != herald.ENOTFOUND {
		t.Fatalf("without a URL: operational endpoint %v, want none", err)
	}
	check := func(url string, key []byte, disabled bool) {
		t.Helper()
		ep, err := e.store.GetEndpoint(t.Context(), herald.OperationalAppID, herald.OperationalEndpointID)
		if err != nil {
			t.Fatal(err)
		}
		if ep.URL != url || len(ep.Secrets) != 1 || string(ep.Secrets[0].Key) != string(key) || ep.Disabled != disabled {
			t.Fatalf("operational endpoint %s disabled %v, want %s disabled %v (and the given secret)", ep.URL, ep.Disabled, url, disabled)
		}
	}
	for _, step := range []struct {
		url      string
		key      []byte
		wantURL  string
		wantKey  []byte
		disabled bool
	}{
		{"https://ops.example.com/a", key1, "https://ops.example.com/a", key1, false},
		{"https://ops.example.com/a", key1, "https://ops.example.com/a", key1, false}, // again: no change
		{"https://ops.example.com/b", key2, "https://ops.example.com/b", key2, false},
		{"", nil, "https://ops.example.com/b", key2, true},
		{"https://ops.example.com/c", key2, "https://ops.example.com/c", key2, false},
	} {
		if err := dispatch.ConfigureOperational(t.Context(), e.store, step.url, step.key, now); err != nil {
			t.Fatal(err)
		}
		check(step.wantURL, step.wantKey, step.disabled)
	}
	msgs, err := e.store.ListMessages(t.Context(), herald.OperationalAppID, herald.MessageListOptions{ListOptions: herald.ListOptions{Limit: 10}})
	if err != nil || len(msgs) != 0 {
		t.Fatalf("configuring queued %d operational messages (%v), want none", len(msgs), err)
	}
}

// TestDisabledEndpointRecoverable: a delivery the dispatcher finds for a
// disabled endpoint fails without a request, and once the endpoint is
// enabled again, recover queues it and it is delivered.
func TestDisabledEndpointRecoverable(t *testing.T) {
	e := newEnv(t, envOptions{})
	r := newReceiver(t, nil)
	ep := e.endpoint(t, r, nil, nil)
	ep.Disabled, ep.UpdatedAt = true, time.Now()
	if err := e.store.UpdateEndpoint(t.Context(), ep); err != nil {
		t.Fatal(err)
	}
	m := e.send(t, "a", nil) // routed nowhere: the endpoint is disabled
	if err := e.store.ResendDelivery(t.Context(), e.app.ID, m.ID, ep.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	e.dispatcher.Notify()
	eventually(t, "the delivery to the disabled endpoint failed", func() bool {
		return e.delivery(t, m.ID, ep.ID).Status == herald.DeliveryFailed
	})
	if n := len(e.attempts(t, m.ID)); n != 0 {
		t.Fatalf("%d attempts to a disabled endpoint, want 0", n)
	}
	ep.Disabled, ep.UpdatedAt = false, time.Now()
	if err := e.store.UpdateEndpoint(t.Context(), ep); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2100 * time.Millisecond) // the dispatcher's endpoint cache (2 s) forgets the disabled state
	n, err := e.store.RecoverEndpoint(t.Context(), e.app.ID, ep.ID, m.CreatedAt, time.Time{}, time.Now())
	if err != nil || n != 1 {
		t.Fatalf("recover: %d, %v; want 1", n, err)
	}
	e.dispatcher.Notify()
	eventually(t, "recovered delivery sent", func() bool {
		got, _ := r.received()
		return got[m.ID] == 1
	})
}
