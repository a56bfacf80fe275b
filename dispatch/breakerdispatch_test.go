package dispatch_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/dispatch"
	"github.com/herald-webhooks/herald/internal/testclock"
	"github.com/herald-webhooks/herald/signature"
)

// settle waits until the dispatcher has dealt with everything due at the
// clock's time: nothing sending, nothing pending and due.
func (e *env) settle(t *testing.T) {
	t.Helper()
	eventually(t, "the due deliveries dealt with", func() bool {
		q, err := e.store.QueueStats(t.Context(), e.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		if q.Sending == 0 && !q.OldestDue.IsZero() {
			e.dispatcher.Notify()
		}
		return q.Sending == 0 && q.OldestDue.IsZero()
	})
}

// TestBreakerPartlyFailingEndpointGetsEverything: a receiver behind a load
// balancer with one bad backend answers 500 to two of every three
// requests, fast. With a retry schedule of one second, every message is
// delivered within 30 simulated seconds: its failures are retried on their
// schedule and the breaker never stops the endpoint (before probe rounds
// and weighed outcomes it opened, each single probe failed and doubled the
// wait, and 0 of 100 arrived in 35 s).
func TestBreakerPartlyFailingEndpointGetsEverything(t *testing.T) {
	c := testclock.New(time.Now().UTC().Truncate(time.Second))
	schedule := make([]time.Duration, 25)
	for i := range schedule {
		schedule[i] = time.Second
	}
	e := newEnv(t, envOptions{clock: c, schedule: schedule})
	r := newReceiver(t, func(n int, w http.ResponseWriter) {
		if n%3 != 0 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	ep := e.endpoint(t, r, nil, nil)
	const n = 100
	for range n {
		e.send(t, "a", nil)
	}
	stats := func() herald.EndpointStats {
		st, err := e.store.GetEndpointStats(t.Context(), e.app.ID, ep.ID, time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	elapsed := 0
	for ; elapsed < 30 && stats().Success < n; elapsed++ {
		e.settle(t)
		if s := e.dispatcher.EndpointState(ep.ID); s != dispatch.BreakerClosed {
			t.Fatalf("after %d s the breaker is %s", elapsed, s)
		}
		c.Add(time.Second)
		e.dispatcher.Notify()
	}
	e.settle(t)
	st := stats()
	got, bad := r.received()
	if st.Success != n || st.Fail != 0 || len(got) != n || bad != 0 {
		t.Fatalf("after %d simulated seconds: %d delivered, %d failed for good; the receiver saw %d messages (%d bad signatures); want all %d delivered",
			elapsed, st.Success, st.Fail, len(got), bad, n)
	}
	r.mu.Lock()
	t.Logf("%d messages delivered in %d simulated seconds, %d requests", n, elapsed, r.calls)
	r.mu.Unlock()
}

// hangingReceiver accepts requests and never answers; it counts them.
type hangingReceiver struct {
	*receiver
	requests, inflight atomic.Int32
}

func newHangingReceiver(t *testing.T) *hangingReceiver {
	t.Helper()
	key, err := signature.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	h := &hangingReceiver{receiver: &receiver{t: t, secret: signature.FormatSecret(key), got: map[string]int{}}}
	release := make(chan struct{})
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body) // then a closed connection cancels the context
		h.requests.Add(1)
		h.inflight.Add(1)
		defer h.inflight.Add(-1)
		select {
		case <-req.Context().Done(): // the sender gave up
		case <-release:
		}
	}))
	t.Cleanup(h.srv.Close)
	t.Cleanup(func() { close(release) }) // runs first
	return h
}

// TestBreakerHangingEndpointsSpareWorkers: four endpoints that accept and
// never answer could hold all 32 workers (8 each) for every attempt. Their
// timeouts trip their breakers after 3 in a row: each gets at most one
// round of its concurrency plus the attempts started before the third
// timeout came back, the rest of their deliveries wait without an
// attempt, and a healthy endpoint gets all of its messages. With the
// breakers off, a hanging endpoint gets a request for every delivery.
func TestBreakerHangingEndpointsSpareWorkers(t *testing.T) {
	const perEndpoint, threshold, msgs = 8, 3, 20
	for _, off := range []bool{false, true} {
		t.Run(map[bool]string{false: "on", true: "off"}[off], func(t *testing.T) {
			c := testclock.New(time.Now().UTC().Truncate(time.Second))
			e := newEnv(t, envOptions{clock: c, timeout: time.Second, schedule: []time.Duration{time.Hour},
				breaker: dispatch.BreakerConfig{ConsecutiveFailures: threshold, Disabled: off}})
			hanging := make([]*hangingReceiver, 4)
			eps := make([]*herald.Endpoint, len(hanging))
			if off {
				hanging = hanging[:1] // one is enough to show every delivery is tried
				eps = eps[:1]
			}
			for i := range hanging {
				hanging[i] = newHangingReceiver(t)
				eps[i] = e.endpoint(t, hanging[i].receiver, []string{"hang"}, nil)
			}
			healthy := newReceiver(t, nil)
			healthyEP := e.endpoint(t, healthy, []string{"ok"}, nil)
			for range msgs {
				e.send(t, "hang", nil)
			}
			if off {
				eventually(t, "an attempt of every delivery to the hanging endpoint", func() bool {
					st, err := e.store.GetEndpointStats(t.Context(), e.app.ID, eps[0].ID, time.Time{}, time.Time{})
					return err == nil && st.Sending == 0 && hanging[0].requests.Load() == msgs
				})
				if s := e.dispatcher.EndpointState(eps[0].ID); s != dispatch.BreakerClosed {
					t.Fatalf("a disabled breaker is %s", s)
				}
				return
			}
			eventually(t, "every hanging endpoint's breaker to open", func() bool {
				for _, ep := range eps {
					if e.dispatcher.EndpointState(ep.ID) != dispatch.BreakerOpen {
						return false
					}
				}
				return true
			})
			var sent []string
			for range msgs {
				sent = append(sent, e.send(t, "ok", nil).ID)
			}
			eventually(t, "the healthy endpoint's messages", func() bool {
				got, _ := healthy.received()
				return len(got) == msgs
			})
			eventually(t, "the hanging requests to time out", func() bool {
				for _, h := range hanging {
					if h.inflight.Load() != 0 {
						return false
					}
				}
				return true
			})
			// Settled: nothing sending. (The hanging endpoints' deliveries
			// left in the database are due, but not claimed while their
			// breakers are open.)
			eventually(t, "the timed-out attempts recorded", func() bool {
				q, err := e.store.QueueStats(t.Context(), c.Now())
				return err == nil && q.Sending == 0
			})
			for _, id := range sent {
				if d := e.delivery(t, id, healthyEP.ID); d.Status != herald.DeliverySucceeded {
					t.Fatalf("healthy delivery %s", d.Status)
				}
			}
			for i, h := range hanging {
				n := int(h.requests.Load())
				if n < threshold || n > perEndpoint+threshold-1 {
					t.Errorf("hanging endpoint %d got %d requests, want %d to %d", i, n, threshold, perEndpoint+threshold-1)
				}
				st, err := e.store.GetEndpointStats(t.Context(), e.app.ID, eps[i].ID, time.Time{}, time.Time{})
				if err != nil {
					t.Fatal(err)
				}
				if st.Pending != msgs || st.Sending != 0 {
					t.Errorf("hanging endpoint %d: %d pending, %d sending; want all %d pending (retries and deferrals)", i, st.Pending, st.Sending, msgs)
				}
				if s := e.dispatcher.EndpointState(eps[i].ID); s != dispatch.BreakerOpen {
					t.Errorf("hanging endpoint %d: breaker %s, want open", i, s)
				}
			}
		})
	}
}
