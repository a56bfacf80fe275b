package dispatch_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/dispatch"
	"github.com/herald-webhooks/herald/internal/testclock"
	"github.com/herald-webhooks/herald/signature"
)

// TestEndToEndFanOut: 1,000 messages to three endpoints with different
// filters arrive exactly where they should, once each, with signatures the
// Standard Webhooks library accepts.
func TestEndToEndFanOut(t *testing.T) {
	e := newEnv(t, envOptions{})
	all := newReceiver(t, nil)
	orders := newReceiver(t, nil)
	eu := newReceiver(t, nil)
	epAll := e.endpoint(t, all, nil, nil)
	epOrders := e.endpoint(t, orders, []string{"order.paid"}, nil)
	epEU := e.endpoint(t, eu, nil, []string{"eu"})

	const n = 1000
	want := map[*receiver]map[string]int{all: {}, orders: {}, eu: {}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				eventType := "user.created"
				if i%2 == 0 {
					eventType = "order.paid"
				}
				var channels []string
				switch i % 3 {
				case 0:
					channels = []string{"eu"}
				case 1:
					channels = []string{"us"}
				}
				m := e.send(t, eventType, channels)
				mu.Lock()
				want[all][m.ID] = 1
				if eventType == "order.paid" {
					want[orders][m.ID] = 1
				}
				if i%3 == 0 {
					want[eu][m.ID] = 1
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for r, name := range map[*receiver]string{all: "all", orders: "orders", eu: "eu"} {
		eventually(t, name+" deliveries", func() bool { got, _ := r.received(); return len(got) >= len(want[r]) })
		got, bad := r.received()
		if bad != 0 {
			t.Errorf("%s: %d deliveries failed signature verification", name, bad)
		}
		if diff := cmp.Diff(want[r], got); diff != "" {
			t.Errorf("%s received (-want +got):\n%s", name, diff)
		}
	}
	for ep, wantN := range map[*herald.Endpoint]int{epAll: n, epOrders: n / 2, epEU: (n + 2) / 3} {
		eventually(t, "recorded outcomes", func() bool {
			st, err := e.store.GetEndpointStats(t.Context(), e.app.ID, ep.ID, time.Time{}, time.Time{})
			return err == nil && st.Success == wantN
		})
	}
	t.Logf("delivered %d + %d + %d messages, all verified", len(want[all]), len(want[orders]), len(want[eu]))
}

// TestRetryScheduleAndTriggers: an endpoint that fails twice and then
// succeeds shows three attempts, due exactly on the schedule (jitter off,
// clock injected); a resend adds a manual attempt.
func TestRetryScheduleAndTriggers(t *testing.T) {
	c := testclock.New(time.Now().UTC().Truncate(time.Second))
	t0 := c.Now()
	e := newEnv(t, envOptions{clock: c, schedule: []time.Duration{5 * time.Second, 30 * time.Second, time.Minute}})
	r := newReceiver(t, func(n int, w http.ResponseWriter) {
		if n <= 2 {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte("boom"))
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	ep := e.endpoint(t, r, nil, nil)
	m := e.send(t, "user.created", nil)

	waitAttempts := func(n int) {
		eventually(t, fmt.Sprintf("%d attempts", n), func() bool {
			d := e.delivery(t, m.ID, ep.ID)
			return len(e.attempts(t, m.ID)) == n && d.Status != herald.DeliverySending
		})
	}
	waitAttempts(1)
	if d := e.delivery(t, m.ID, ep.ID); d.Status != herald.DeliveryPending || !d.NextAttemptAt.Equal(t0.Add(5*time.Second)) {
		t.Fatalf("after the first failure: %s due %v, want pending due %v", d.Status, d.NextAttemptAt, t0.Add(5*time.Second))
	}
	c.Add(4 * time.Second)
	e.dispatcher.Notify()
	time.Sleep(100 * time.Millisecond)
	if n := len(e.attempts(t, m.ID)); n != 1 {
		t.Fatalf("a retry ran %d attempts before it was due", n)
	}
	c.Add(time.Second)
	e.dispatcher.Notify()
	waitAttempts(2)
	if d := e.delivery(t, m.ID, ep.ID); !d.NextAttemptAt.Equal(t0.Add(35 * time.Second)) {
		t.Fatalf("after the second failure due %v, want %v", d.NextAttemptAt, t0.Add(35*time.Second))
	}
	c.Add(30 * time.Second)
	e.dispatcher.Notify()
	waitAttempts(3)
	d := e.delivery(t, m.ID, ep.ID)
	if d.Status != herald.DeliverySucceeded || d.Attempts != 3 {
		t.Fatalf("delivery = %s after %d attempts, want succeeded after 3", d.Status, d.Attempts)
	}
	type row struct {
		Status  herald.AttemptStatus
		Code    int
		Trigger herald.TriggerType
		Body    string
	}
	var got []row
	for _, a := range e.attempts(t, m.ID) {
		got = append(got, row{a.Status, a.ResponseStatus, a.Trigger, string(a.Response)})
		if a.URL != ep.URL || a.EndpointID != ep.ID || a.DeliveryID != d.ID {
			t.Errorf("attempt %s: url %s endpoint %s delivery %s", a.ID, a.URL, a.EndpointID, a.DeliveryID)
		}
	}
	want := []row{
		{herald.AttemptFailed, 500, herald.TriggerScheduled, "boom"},
		{herald.AttemptFailed, 500, herald.TriggerScheduled, "boom"},
		{herald.AttemptSucceeded, 200, herald.TriggerScheduled, ""},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("attempts (-want +got):\n%s", diff)
	}

	// A manual resend of a delivered message makes a fourth, manual attempt.
	if err := e.store.ResendDelivery(t.Context(), e.app.ID, m.ID, ep.ID, c.Now()); err != nil {
		t.Fatal(err)
	}
	e.dispatcher.Notify()
	waitAttempts(4)
	as := e.attempts(t, m.ID)
	if last := as[len(as)-1]; last.Trigger != herald.TriggerManual || last.Status != herald.AttemptSucceeded {
		t.Fatalf("resend attempt: trigger %d status %d, want manual success", last.Trigger, last.Status)
	}
	if got, _ := r.received(); got[m.ID] != 4 {
		t.Fatalf("receiver got the message %d times, want 4", got[m.ID])
	}
}

// TestRetryAfter: 429/502/503/504 honour Retry-After, capped at twice the
// scheduled step.
func TestRetryAfter(t *testing.T) {
	c := testclock.New(time.Now().UTC().Truncate(time.Second))
	t0 := c.Now()
	e := newEnv(t, envOptions{clock: c, schedule: []time.Duration{5 * time.Second, time.Minute}})
	for _, tc := range []struct {
		status     int
		retryAfter string
		want       time.Duration
	}{
		{http.StatusServiceUnavailable, "7", 7 * time.Second},
		{http.StatusTooManyRequests, "3600", 10 * time.Second}, // capped at 2 × 5 s
		{http.StatusInternalServerError, "7", 5 * time.Second}, // not a status that carries Retry-After
	} {
		r := newReceiver(t, func(n int, w http.ResponseWriter) {
			w.Header().Set("Retry-After", tc.retryAfter)
			w.WriteHeader(tc.status)
		})
		ep := e.endpoint(t, r, []string{fmt.Sprint("t", tc.status)}, nil)
		m := e.send(t, fmt.Sprint("t", tc.status), nil)
		eventually(t, "first attempt", func() bool {
			return len(e.attempts(t, m.ID)) == 1 && e.delivery(t, m.ID, ep.ID).Status == herald.DeliveryPending
		})
		if d := e.delivery(t, m.ID, ep.ID); !d.NextAttemptAt.Equal(t0.Add(tc.want)) {
			t.Errorf("%d with Retry-After %s: due %v, want %v", tc.status, tc.retryAfter, d.NextAttemptAt.Sub(t0), tc.want)
		}
	}
}

// TestGoneDisablesEndpoint: 410 fails the delivery, disables the endpoint
// and cancels its other pending deliveries.
func TestGoneDisablesEndpoint(t *testing.T) {
	c := testclock.New(time.Now().UTC().Truncate(time.Second))
	e := newEnv(t, envOptions{clock: c, schedule: []time.Duration{5 * time.Second}})
	r := newReceiver(t, func(n int, w http.ResponseWriter) { w.WriteHeader(http.StatusGone) })
	ep := e.endpoint(t, r, nil, nil)
	// A message due in an hour: pending when the 410 comes.
	later := &herald.Message{ID: herald.NewID(herald.PrefixMessage), AppID: e.app.ID, EventType: "a",
		Payload: []byte(`{}`), CreatedAt: c.Now().Add(time.Hour)}
	if _, err := e.store.CreateMessages(t.Context(), []*herald.Message{later}, herald.Lease{}); err != nil {
		t.Fatal(err)
	}
	m := e.send(t, "a", nil)
	eventually(t, "the 410 recorded", func() bool { return e.delivery(t, m.ID, ep.ID).Status == herald.DeliveryFailed })
	got, err := e.store.GetEndpoint(t.Context(), e.app.ID, ep.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Disabled {
		t.Error("endpoint not disabled after 410")
	}
	if d := e.delivery(t, later.ID, ep.ID); d.Status != herald.DeliveryCanceled {
		t.Errorf("pending delivery after 410: %s, want canceled", d.Status)
	}
}

// TestExhaustedDeliveryFails: after the last scheduled retry the delivery is
// failed for good and stays visible.
func TestExhaustedDeliveryFails(t *testing.T) {
	c := testclock.New(time.Now().UTC().Truncate(time.Second))
	e := newEnv(t, envOptions{clock: c, schedule: []time.Duration{5 * time.Second}})
	r := newReceiver(t, func(n int, w http.ResponseWriter) { w.WriteHeader(http.StatusBadRequest) })
	ep := e.endpoint(t, r, nil, nil)
	m := e.send(t, "a", nil)
	eventually(t, "first attempt", func() bool {
		return e.delivery(t, m.ID, ep.ID).Status == herald.DeliveryPending && len(e.attempts(t, m.ID)) == 1
	})
	c.Add(5 * time.Second)
	e.dispatcher.Notify()
	eventually(t, "failed for good", func() bool { return e.delivery(t, m.ID, ep.ID).Status == herald.DeliveryFailed })
	if d := e.delivery(t, m.ID, ep.ID); d.Attempts != 2 {
		t.Errorf("attempts = %d, want 2", d.Attempts)
	}
}

// TestGracefulShutdownLosesNothing: stopping the dispatcher with deliveries
// in flight lets them finish and records them; what was not started goes
// back to pending for the next start. Nothing stays leased.
func TestGracefulShutdownLosesNothing(t *testing.T) {
	e := newEnv(t, envOptions{})
	release := make(chan struct{})
	r := newReceiver(t, func(n int, w http.ResponseWriter) {
		<-release
		w.WriteHeader(http.StatusNoContent)
	})
	ep := e.endpoint(t, r, nil, nil)
	var msgs []*herald.Message
	for range 20 {
		msgs = append(msgs, e.send(t, "a", nil))
	}
	eventually(t, "requests in flight", func() bool { r.mu.Lock(); defer r.mu.Unlock(); return r.calls >= 8 })
	stopped := make(chan struct{})
	go func() { e.stop(); close(stopped) }()
	time.Sleep(50 * time.Millisecond)
	close(release) // the in-flight requests finish during shutdown
	<-stopped

	got, _ := r.received()
	for _, m := range msgs {
		d := e.delivery(t, m.ID, ep.ID)
		switch {
		case got[m.ID] > 0 && d.Status != herald.DeliverySucceeded:
			t.Errorf("message %s was delivered but its delivery is %s", m.ID, d.Status)
		case got[m.ID] == 0 && d.Status != herald.DeliveryPending:
			t.Errorf("message %s was not sent but its delivery is %s, want pending", m.ID, d.Status)
		}
	}
	if len(got) == 0 || len(got) == len(msgs) {
		t.Logf("delivered %d of %d before stopping", len(got), len(msgs))
	}
}

// TestRescueExpiredLease: deliveries leased by a node that died come back
// after the lease expires and are delivered by another node.
func TestRescueExpiredLease(t *testing.T) {
	e := newEnv(t, envOptions{lease: 7 * time.Second, timeout: time.Second})
	r := newReceiver(t, nil)
	ep := e.endpoint(t, r, nil, nil)
	m := &herald.Message{ID: herald.NewID(herald.PrefixMessage), AppID: e.app.ID, EventType: "a",
		Payload: []byte(`{}`), CreatedAt: time.Now()}
	// Committed by a node that crashed before sending: leased to it briefly.
	res, err := e.store.CreateMessages(t.Context(), []*herald.Message{m}, herald.Lease{Owner: "dead-node", Until: time.Now().Add(200 * time.Millisecond)})
	if err != nil || res[0].Err != nil {
		t.Fatal(err, res[0].Err)
	}
	if d := e.delivery(t, m.ID, ep.ID); d.Status != herald.DeliverySending || d.LeaseOwner != "dead-node" {
		t.Fatalf("setup: delivery %s owned by %q", d.Status, d.LeaseOwner)
	}
	eventually(t, "the rescued delivery", func() bool { got, _ := r.received(); return got[m.ID] == 1 })
	eventually(t, "its outcome", func() bool { return e.delivery(t, m.ID, ep.ID).Status == herald.DeliverySucceeded })
}

// TestCircuitBreakerDefersAndRecovers: after consecutive failures the
// endpoint's breaker opens (fast failed answers, as here, need twice the
// threshold in a row: 6); its other deliveries are deferred without an
// attempt; after the open period a round of probes goes out, and when they
// succeed the backlog is delivered.
func TestCircuitBreakerDefersAndRecovers(t *testing.T) {
	c := testclock.New(time.Now().UTC().Truncate(time.Second))
	t0 := c.Now()
	e := newEnv(t, envOptions{clock: c, perEndpoint: 1, schedule: []time.Duration{20 * time.Second},
		breaker: dispatch.BreakerConfig{ConsecutiveFailures: 3, OpenFor: 10 * time.Second}})
	var healthy atomic.Bool
	r := newReceiver(t, func(n int, w http.ResponseWriter) {
		if !healthy.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	ep := e.endpoint(t, r, nil, nil)
	var msgs []*herald.Message
	for range 10 {
		msgs = append(msgs, e.send(t, "a", nil))
	}
	countAttempts := func() int {
		as, err := e.store.ListAttempts(t.Context(), e.app.ID, herald.AttemptListOptions{ListOptions: herald.ListOptions{Limit: 100}, EndpointID: ep.ID})
		if err != nil {
			t.Fatal(err)
		}
		return len(as)
	}
	eventually(t, "the breaker to open and the rest to be deferred", func() bool {
		st, err := e.store.GetEndpointStats(t.Context(), e.app.ID, ep.ID, time.Time{}, time.Time{})
		return err == nil && st.Pending == 10 && st.Sending == 0
	})
	if n := countAttempts(); n != 6 {
		t.Fatalf("%d attempts before the breaker opened, want 6", n)
	}
	if s := e.dispatcher.EndpointState(ep.ID); s != dispatch.BreakerOpen {
		t.Fatalf("breaker state = %s, want open", s)
	}
	deferred := 0
	for _, m := range msgs {
		d := e.delivery(t, m.ID, ep.ID)
		if d.Attempts == 0 {
			// Deferred by the breaker (due when it closes) or never taken
			// from the database (due already, but not claimed while the
			// breaker is open): either way no attempt was spent.
			deferred++
			if d.Status != herald.DeliveryPending || d.NextAttemptAt.After(t0.Add(10*time.Second)) {
				t.Errorf("waiting delivery %s due %v, want pending, due by the end of the open period", d.Status, d.NextAttemptAt.Sub(t0))
			}
		}
	}
	if deferred != 4 {
		t.Fatalf("%d deliveries deferred without an attempt, want 4", deferred)
	}

	// The endpoint recovers; after the open period a probe closes the
	// breaker and, over the following periods, everything is delivered.
	healthy.Store(true)
	c.Add(10 * time.Second)
	e.dispatcher.Notify()
	eventually(t, "a successful probe to close the breaker", func() bool {
		return e.dispatcher.EndpointState(ep.ID) == dispatch.BreakerClosed
	})
	c.Add(20 * time.Second) // the six failed ones retry on the schedule; the deferred ones are due
	// (The clock stays within the receivers' 5-minute signature tolerance.)
	for range 5 {
		e.dispatcher.Notify()
		time.Sleep(20 * time.Millisecond)
		c.Add(10 * time.Second)
	}
	eventually(t, "every delivery", func() bool {
		st, err := e.store.GetEndpointStats(t.Context(), e.app.ID, ep.ID, time.Time{}, time.Time{})
		if err == nil && st.Success < 10 {
			e.dispatcher.Notify()
		}
		return err == nil && st.Success == 10
	})
	if got, _ := r.received(); len(got) != 10 {
		t.Fatalf("receiver got %d messages, want 10", len(got))
	}
}

// TestRateLimits: an application's rateLimit holds across its endpoints,
// and an endpoint's holds for it alone: a token bucket with a burst of one
// second's worth, so any one-second window sees at most twice the rate.
func TestRateLimits(t *testing.T) {
	e := newEnv(t, envOptions{})
	var mu sync.Mutex
	var appTimes, epTimes []time.Time
	stamp := func(times *[]time.Time) func(int, http.ResponseWriter) {
		return func(_ int, w http.ResponseWriter) {
			mu.Lock()
			*times = append(*times, time.Now())
			mu.Unlock()
			w.WriteHeader(http.StatusNoContent)
		}
	}
	// The environment's application is limited to 10/s over two endpoints.
	ten := uint16(10)
	e.app.RateLimit = &ten
	if err := e.store.UpdateApplication(t.Context(), e.app); err != nil {
		t.Fatal(err)
	}
	e.endpoint(t, newReceiver(t, stamp(&appTimes)), []string{"app"}, nil)
	e.endpoint(t, newReceiver(t, stamp(&appTimes)), []string{"app"}, nil)
	// One endpoint of another application is limited to 5/s.
	other := &herald.Application{ID: herald.NewID(herald.PrefixApplication), Name: "other", CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if err := e.store.CreateApplication(t.Context(), other); err != nil {
		t.Fatal(err)
	}
	five := uint16(5)
	r := newReceiver(t, stamp(&epTimes))
	key, _ := signature.ParseSecret(r.secret)
	limited := &herald.Endpoint{ID: herald.NewID(herald.PrefixEndpoint), AppID: other.ID, URL: r.srv.URL, Version: 1,
		RateLimit: &five, Secrets: []herald.SigningSecret{{Key: key}}, CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if err := e.store.CreateEndpoint(t.Context(), limited); err != nil {
		t.Fatal(err)
	}
	for range 15 {
		e.send(t, "app", nil)
		m := &herald.Message{ID: herald.NewID(herald.PrefixMessage), AppID: other.ID, EventType: "x", Payload: []byte(`{}`), CreatedAt: time.Now()}
		if res, err := e.committer.CreateMessage(t.Context(), m); err != nil || res.Err != nil {
			t.Fatal(err, res.Err)
		}
	}
	eventually(t, "all deliveries", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(appTimes) == 30 && len(epTimes) == 15
	})
	mu.Lock()
	defer mu.Unlock()
	for name, tc := range map[string]struct {
		times []time.Time
		rate  int
	}{"application 10/s": {appTimes, 10}, "endpoint 5/s": {epTimes, 5}} {
		slices.SortFunc(tc.times, func(a, b time.Time) int { return a.Compare(b) })
		window := 2 * tc.rate // burst + one second's tokens
		for i := 0; i+window < len(tc.times); i++ {
			// 50 ms of slack for the trip from the sender's token to the
			// receiver's clock; the bound only gets easier on a slow machine.
			if d := tc.times[i+window].Sub(tc.times[i]); d < 950*time.Millisecond {
				t.Fatalf("%s: %d deliveries within %v", name, window+1, d)
			}
		}
	}
}

// TestBacklogDoesNotDelayOthers: with 100,000 deliveries due for one
// endpoint, a new message for another endpoint is delivered while that
// backlog is still nearly all waiting: the backlog holds only its own
// endpoint's share of the workers.
func TestBacklogDoesNotDelayOthers(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a 100,000-delivery backlog")
	}
	e := newEnv(t, envOptions{})
	busy := newReceiver(t, func(int, http.ResponseWriter) { time.Sleep(5 * time.Millisecond) })
	quiet := newReceiver(t, nil)
	e.endpoint(t, busy, []string{"bulk"}, nil)
	e.endpoint(t, quiet, []string{"urgent"}, nil)

	// The backlog goes straight into the store, due now, as if a receiver
	// had been down for a while.
	const backlog = 100_000
	e.storePending(t, backlog, "bulk")
	e.dispatcher.Notify()
	eventually(t, "the backlog to start draining", func() bool { got, _ := busy.received(); return len(got) > 0 })

	m := e.send(t, "urgent", nil)
	eventually(t, "the urgent message", func() bool { got, _ := quiet.received(); return got[m.ID] == 1 })
	got, _ := busy.received()
	if len(got) > backlog/10 {
		t.Fatalf("the urgent message arrived only after %d of the %d backlog deliveries", len(got), backlog)
	}
	t.Logf("urgent message delivered while %d of %d backlog deliveries had been sent", len(got), backlog)
}

// TestSendCutAtShutdownDeadlineIsNotAnAttempt: a send still running at the
// shutdown deadline is cut; that is Herald's doing, not the endpoint's, so
// the delivery goes back to pending with no attempt counted.
func TestSendCutAtShutdownDeadlineIsNotAnAttempt(t *testing.T) {
	e := newEnv(t, envOptions{timeout: 5 * time.Second, shutdown: 200 * time.Millisecond, schedule: []time.Duration{}})
	started := make(chan struct{}, 1)
	r := newReceiver(t, func(int, http.ResponseWriter) {
		started <- struct{}{}
		time.Sleep(2 * time.Second)
	})
	ep := e.endpoint(t, r, nil, nil)
	m := e.send(t, "a", nil)
	<-started
	e.stop()
	d := e.delivery(t, m.ID, ep.ID)
	if d.Status != herald.DeliveryPending || d.Attempts != 0 || len(e.attempts(t, m.ID)) != 0 {
		t.Fatalf("after a cut send: %s with %d attempts and %d attempt rows, want pending with none",
			d.Status, d.Attempts, len(e.attempts(t, m.ID)))
	}
}

// TestFloodToSlowEndpointDoesNotStarveOthers: messages committed for one
// slow endpoint faster than it can take them do not fill the queue that
// all endpoints share: a message for another endpoint still goes out at
// once.
func TestFloodToSlowEndpointDoesNotStarveOthers(t *testing.T) {
	e := newEnv(t, envOptions{})
	slow := newReceiver(t, func(int, http.ResponseWriter) { time.Sleep(200 * time.Millisecond) })
	quiet := newReceiver(t, nil)
	e.endpoint(t, slow, []string{"bulk"}, nil)
	e.endpoint(t, quiet, []string{"urgent"}, nil)
	var wg sync.WaitGroup
	for w := range 10 {
		wg.Go(func() {
			for range 30 {
				e.send(t, "bulk", []string{fmt.Sprint(w)})
			}
		})
	}
	wg.Wait()
	// Count the slow deliveries made while the urgent message waited, not
	// those made while the 300 were being posted (more on a loaded
	// machine). Starved, it would wait for most of the backlog: about 250
	// at 40 a second.
	before, _ := slow.received()
	m := e.send(t, "urgent", nil)
	eventually(t, "the urgent message", func() bool { got, _ := quiet.received(); return got[m.ID] == 1 })
	after, _ := slow.received()
	if waited := len(after) - len(before); waited > 100 {
		t.Fatalf("the urgent message waited while %d slow deliveries were sent (%d of 300 before it was posted)", waited, len(before))
	}
	t.Logf("urgent message delivered while %d slow deliveries were sent (%d of 300 before it was posted)", len(after)-len(before), len(before))
}

// claimCounter counts the dispatcher's windowed claims.
type claimCounter struct {
	herald.Store
	windowed     atomic.Int64 // claims with a Window
	emptySkipped atomic.Int64 // claims that skipped endpoints and found nothing
}

func (c *claimCounter) ClaimDue(ctx context.Context, opts herald.ClaimOptions) ([]herald.Claim, error) {
	claims, err := c.Store.ClaimDue(ctx, opts)
	if opts.Window > 0 {
		c.windowed.Add(1)
	}
	if err == nil && len(claims) == 0 && len(opts.SkipEndpoints) > 0 {
		c.emptySkipped.Add(1)
	}
	return claims, err
}

// TestNoRepeatedEmptyClaims: while the only endpoint with due deliveries is
// busy (skipped by the claim), wake-ups do not read the queue's head again
// and again: after a claim found nothing beside it, windowed claims wait
// until it has room.
func TestNoRepeatedEmptyClaims(t *testing.T) {
	counter := &claimCounter{}
	e := newEnv(t, envOptions{perEndpoint: 1, wrap: func(s herald.Store) herald.Store {
		counter.Store = s
		return counter
	}})
	release := make(chan struct{})
	var calls atomic.Int64
	slow := newReceiver(t, func(_ int, w http.ResponseWriter) {
		calls.Add(1)
		<-release
		w.WriteHeader(http.StatusNoContent)
	})
	t.Cleanup(func() { close(release) }) // before the receiver's server closes
	e.endpoint(t, slow, nil, nil)
	e.storePending(t, 50, "bulk")
	e.dispatcher.Notify()
	eventually(t, "the endpoint to be busy", func() bool { return calls.Load() >= 1 })
	// A claim (a poll, every 20 ms here) finds nothing beside it.
	eventually(t, "a claim skipping the busy endpoint to find nothing", func() bool { return counter.emptySkipped.Load() >= 1 })
	before := counter.windowed.Load()
	for range 20 {
		e.dispatcher.Notify()
		time.Sleep(10 * time.Millisecond)
	}
	if n := counter.windowed.Load() - before; n > 0 {
		t.Fatalf("%d windowed claims while the only endpoint with due work was busy, want none", n)
	}
}

// leaseRecorder remembers the lease expiry of every delivery claimed
// through it and the outcomes written through it.
type leaseRecorder struct {
	herald.Store
	mu       sync.Mutex
	claimed  map[string][]time.Time // delivery ID → lease expiries of its claims
	outcomes []herald.AttemptOutcome
}

func (r *leaseRecorder) ClaimDue(ctx context.Context, opts herald.ClaimOptions) ([]herald.Claim, error) {
	claims, err := r.Store.ClaimDue(ctx, opts)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range claims {
		r.claimed[c.Delivery.ID] = append(r.claimed[c.Delivery.ID], c.Delivery.LeaseExpiresAt)
	}
	return claims, err
}

func (r *leaseRecorder) RecordAttempts(ctx context.Context, outcomes []herald.AttemptOutcome) error {
	r.mu.Lock()
	r.outcomes = append(r.outcomes, outcomes...)
	r.mu.Unlock()
	return r.Store.RecordAttempts(ctx, outcomes)
}

// TestOutcomesNameTheirClaim: every outcome the dispatcher writes carries
// the lease expiry of the claim it is for, so that a store drops it once
// that claim is gone, even when the same node claimed the delivery again.
// Deliveries come both ways: claimed from the database and handed over by
// ingest (leased when stored).
func TestOutcomesNameTheirClaim(t *testing.T) {
	rec := &leaseRecorder{claimed: map[string][]time.Time{}}
	e := newEnv(t, envOptions{schedule: []time.Duration{time.Millisecond}, wrap: func(s herald.Store) herald.Store {
		rec.Store = s
		return rec
	}})
	ok := newReceiver(t, nil)
	failing := newReceiver(t, func(_ int, w http.ResponseWriter) { w.WriteHeader(http.StatusInternalServerError) })
	e.endpoint(t, ok, []string{"ok"}, nil)
	e.endpoint(t, failing, []string{"fail"}, nil)
	e.storePending(t, 5, "ok")
	e.dispatcher.Notify()
	eventually(t, "the dispatcher to run", e.dispatcher.Running)
	e.send(t, "ok", nil) // handed over: the dispatcher runs and its queue has room
	e.send(t, "fail", nil)
	eventually(t, "every delivery to be finished", func() bool {
		got, _ := ok.received()
		rec.mu.Lock()
		defer rec.mu.Unlock()
		failed := 0
		for _, o := range rec.outcomes {
			if o.Status == herald.DeliveryFailed {
				failed++
			}
		}
		return len(got) == 6 && failed == 1
	})
	e.stop()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	viaIngest := 0
	for _, o := range rec.outcomes {
		if o.LeaseUntil.IsZero() {
			t.Errorf("outcome %s of delivery %s names no lease expiry", o.Status, o.DeliveryID)
			continue
		}
		if !slices.ContainsFunc(rec.claimed[o.DeliveryID], o.LeaseUntil.Equal) {
			viaIngest++ // not the expiry of any claim: the lease given at insert
		}
	}
	// The first attempts of the two messages sent through ingest; every
	// other outcome names the expiry of one of its delivery's claims.
	if viaIngest != 2 {
		t.Errorf("%d outcomes name a lease expiry no claim gave, want 2 (the deliveries handed over by ingest)", viaIngest)
	}
}
