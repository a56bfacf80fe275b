package dispatch_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/internal/testclock"
	"github.com/herald-webhooks/herald/internal/testkeys"
	"github.com/herald-webhooks/herald/sqlite"
)

// claimClock remembers the latest clock reading a finished claim ran
// with, so a test knows the dispatcher has looked at the queue as of a
// given time instead of sleeping and hoping it did.
type claimClock struct {
	herald.Store
	mu     sync.Mutex
	latest time.Time
}

func (c *claimClock) ClaimDue(ctx context.Context, opts herald.ClaimOptions) ([]herald.Claim, error) {
	claims, err := c.Store.ClaimDue(ctx, opts)
	if err == nil {
		c.mu.Lock()
		if opts.Now.After(c.latest) {
			c.latest = opts.Now
		}
		c.mu.Unlock()
	}
	return claims, err
}

// claimedAsOf reports whether a claim that ran at now or later finished.
func (c *claimClock) claimedAsOf(now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.latest.Before(now)
}

// TestScheduledMessage: a message with DeliverAt is stored at once with
// its delivery pending and due then, never handed to the dispatcher at
// ingest; the dispatcher's claims before that time (injected clock) find
// nothing; Herald stops, the time passes while it is down, and the
// restarted process (the store reopened from its file, a new dispatcher)
// sends it, once.
func TestScheduledMessage(t *testing.T) {
	c := testclock.New(time.Now().UTC().Truncate(time.Second))
	path := filepath.Join(t.TempDir(), "h.db")
	ring := testkeys.Ring(t)
	open := func() *sqlite.Store {
		s, err := sqlite.Open(t.Context(), sqlite.Config{Path: path, Keyring: ring})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	first := open()
	watch := &claimClock{}
	e := newEnv(t, envOptions{clock: c, store: first, wrap: func(s herald.Store) herald.Store {
		watch.Store = s
		return watch
	}})
	r := newReceiver(t, nil)
	ep := e.endpoint(t, r, nil, nil)
	deliverAt := c.Now().Add(2 * time.Minute)
	m := &herald.Message{ID: herald.NewIDAt(herald.PrefixMessage, c.Now()), AppID: e.app.ID, EventType: "invoice.due",
		Payload: []byte(`{"n":1}`), CreatedAt: c.Now(), DeliverAt: deliverAt}
	res, err := e.committer.CreateMessage(t.Context(), m)
	if err != nil || res.Err != nil {
		t.Fatalf("create message: %v %v", err, res.Err)
	}
	if len(res.Deliveries) != 1 || res.Deliveries[0].Status != herald.DeliveryPending || !res.Deliveries[0].NextAttemptAt.Equal(deliverAt) {
		t.Fatalf("deliveries at ingest %+v, want one pending and due at %v", res.Deliveries, deliverAt)
	}

	// A second before its time, a claim as of then finds nothing.
	c.Add(2*time.Minute - time.Second)
	e.dispatcher.Notify()
	eventually(t, "a claim as of a second before deliverAt", func() bool { return watch.claimedAsOf(c.Now()) })
	if got, _ := r.received(); len(got) != 0 {
		t.Fatalf("the receiver got %v before deliverAt", got)
	}
	if d := e.delivery(t, m.ID, ep.ID); d.Status != herald.DeliveryPending || d.Attempts != 0 {
		t.Fatalf("delivery before deliverAt: %s after %d attempts, want pending after none", d.Status, d.Attempts)
	}

	// Herald stops; deliverAt passes while it is down.
	e.stop()
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	c.Add(time.Minute)
	second := open()
	t.Cleanup(func() { second.Close() })
	e2 := newEnv(t, envOptions{clock: c, store: second})
	e2.app = e.app // the message's application, not the one newEnv made
	e2.dispatcher.Notify()
	eventually(t, "the scheduled message delivered after the restart", func() bool {
		got, _ := r.received()
		return got[m.ID] == 1
	})
	eventually(t, "the delivery recorded", func() bool { return e2.delivery(t, m.ID, ep.ID).Status == herald.DeliverySucceeded })
	as := e2.attempts(t, m.ID)
	if len(as) != 1 || as[0].Trigger != herald.TriggerScheduled || as[0].Status != herald.AttemptSucceeded {
		t.Fatalf("attempts %+v, want one scheduled success", as)
	}
	if got, bad := r.received(); got[m.ID] != 1 || bad != 0 {
		t.Fatalf("receiver got the message %d times (%d unverified), want once", got[m.ID], bad)
	}
}
