package postgres_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/postgres"
)

// wakeLog counts the wakes of a listener and lets a test wait for them.
type wakeLog struct {
	mu   sync.Mutex
	n    int
	cond chan struct{} // closed and replaced on every wake
}

func newWakeLog() *wakeLog { return &wakeLog{cond: make(chan struct{})} }

func (w *wakeLog) wake() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.n++
	close(w.cond)
	w.cond = make(chan struct{})
}

// waitFor waits until at least n wakes happened, failing the test after a
// generous bound (a lost notification would otherwise hang it).
func (w *wakeLog) waitFor(t *testing.T, n int, what string) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		w.mu.Lock()
		got, ch := w.n, w.cond
		w.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-ch:
		case <-timeout:
			t.Fatalf("%s: %d wakes, want %d", what, got, n)
		}
	}
}

func (w *wakeLog) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

// TestListenWakesOtherNodes runs a listener on one store and the verbs
// that make work due for any node on another store of the same schema:
// each wakes the listener once; verbs that make nothing due for others
// (messages created under a lease, a rescue that finds nothing) do not.
// PostgreSQL delivers notifications in commit order, so a notifying
// verb after a silent one proves the silent one sent nothing.
func TestListenWakesOtherNodes(t *testing.T) {
	schema := freshSchema(t)
	ring := testKeyring(t)
	a := openStore(t, schema, ring)
	b := openStore(t, schema, ring)
	ctx := t.Context()

	wakes := newWakeLog()
	listenCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- b.Listen(listenCtx, wakes.wake) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Listen returned %v", err)
		}
	}()
	// Listen wakes once when its connection is up: notifications from
	// then on reach it.
	wakes.waitFor(t, 1, "connect")
	expected := 1
	step := func(what string, notifies bool, fn func() error) {
		t.Helper()
		if err := fn(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if notifies {
			expected++
			wakes.waitFor(t, expected, what)
		}
	}
	// sentinel notifies on its own, so that after its wake every earlier
	// notification has arrived too and the count can be compared.
	sentinel := func(what string) {
		t.Helper()
		if _, err := postgres.QueryString(ctx, a, `SELECT pg_notify(left('herald_work:' || current_schema(), 63), '')::text`); err != nil {
			t.Fatal(err)
		}
		expected++
		wakes.waitFor(t, expected, "sentinel after "+what)
		if got := wakes.count(); got != expected {
			t.Fatalf("after %s: %d wakes, want %d (a silent verb notified)", what, got, expected)
		}
	}

	now := time.Now().UTC().Truncate(time.Millisecond)
	app := &herald.Application{ID: herald.NewID(herald.PrefixApplication), Name: "A", CreatedAt: now, UpdatedAt: now}
	ep := &herald.Endpoint{ID: herald.NewID(herald.PrefixEndpoint), AppID: app.ID, URL: "https://example.com/hook", Version: 1,
		Secrets: []herald.SigningSecret{{Key: make([]byte, 24)}}, CreatedAt: now, UpdatedAt: now}
	if err := a.CreateApplication(ctx, app); err != nil {
		t.Fatal(err)
	}
	if err := a.CreateEndpoint(ctx, ep); err != nil {
		t.Fatal(err)
	}
	msg := func() *herald.Message {
		return &herald.Message{ID: herald.NewID(herald.PrefixMessage), AppID: app.ID, EventType: "a.b", Payload: []byte(`{}`), CreatedAt: now}
	}
	create := func(lease herald.Lease) (*herald.Delivery, error) {
		res, err := a.CreateMessages(ctx, []*herald.Message{msg()}, lease)
		if err != nil {
			return nil, err
		}
		if res[0].Err != nil {
			return nil, res[0].Err
		}
		for _, d := range res[0].Deliveries {
			if d.EndpointID == ep.ID {
				return d, nil
			}
		}
		return nil, errors.New("no delivery to the first endpoint")
	}

	var leased, expired *herald.Delivery
	step("CreateMessages under a lease", false, func() (err error) {
		leased, err = create(herald.Lease{Owner: "node-a", Until: now.Add(time.Hour)})
		return err
	})
	step("CreateMessages under an expired lease", false, func() (err error) {
		expired, err = create(herald.Lease{Owner: "node-a", Until: now.Add(-time.Minute)})
		return err
	})
	sentinel("leased CreateMessages")

	step("CreateMessages without a lease", true, func() error { _, err := create(herald.Lease{}); return err })
	step("ReleaseDeliveries", true, func() error {
		return a.ReleaseDeliveries(ctx, "node-a", []herald.LeaseRef{{DeliveryID: leased.ID, Until: leased.LeaseExpiresAt}}, now)
	})
	step("ReleaseDeliveries of nothing held", false, func() error {
		return a.ReleaseDeliveries(ctx, "node-a", []herald.LeaseRef{{DeliveryID: leased.ID}}, now)
	})
	step("RescueExpired", true, func() error {
		n, err := a.RescueExpired(ctx, now, 10)
		if err == nil && n != 1 {
			err = errors.New("rescued a wrong number of deliveries")
		}
		return err
	})
	step("RescueExpired of nothing", false, func() error { _, err := a.RescueExpired(ctx, now, 10); return err })
	sentinel("silent release and rescue")

	step("ResendDelivery", true, func() error { return a.ResendDelivery(ctx, app.ID, expired.MessageID, ep.ID, now) })
	ep2 := &herald.Endpoint{ID: herald.NewID(herald.PrefixEndpoint), AppID: app.ID, URL: "https://example.com/hook2", Version: 1,
		Secrets: []herald.SigningSecret{{Key: make([]byte, 24)}}, CreatedAt: now, UpdatedAt: now}
	if err := a.CreateEndpoint(ctx, ep2); err != nil {
		t.Fatal(err)
	}
	step("ReplayMissing", true, func() error {
		n, err := a.ReplayMissing(ctx, app.ID, ep2.ID, time.Time{}, time.Time{}, now)
		if err == nil && n == 0 {
			err = errors.New("replayed nothing")
		}
		return err
	})
	step("RecoverEndpoint of nothing failed", false, func() error {
		_, err := a.RecoverEndpoint(ctx, app.ID, ep.ID, time.Time{}, time.Time{}, now)
		return err
	})
	var dead *herald.Delivery
	step("RecordAttempts failing a delivery for good", false, func() (err error) {
		if dead, err = create(herald.Lease{Owner: "node-a", Until: now.Add(time.Hour)}); err != nil {
			return err
		}
		return a.RecordAttempts(ctx, []herald.AttemptOutcome{{
			DeliveryID: dead.ID, LeaseOwner: "node-a", Status: herald.DeliveryFailed,
			Attempt: &herald.Attempt{DeliveryID: dead.ID, AppID: app.ID, MessageID: dead.MessageID, EndpointID: ep.ID,
				URL: ep.URL, ResponseStatus: 500, Status: herald.AttemptFailed, CreatedAt: now},
		}})
	})
	sentinel("silent verbs")
	step("RecoverEndpoint", true, func() error {
		n, err := a.RecoverEndpoint(ctx, app.ID, ep.ID, time.Time{}, time.Time{}, now)
		if err == nil && n != 1 {
			err = errors.New("recovered a wrong number of deliveries")
		}
		return err
	})
	sentinel("all verbs")
}
