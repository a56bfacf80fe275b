package dispatch

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/herald-webhooks/herald"
)

func claimsFor(endpoint string, n int) []herald.Claim {
	out := make([]herald.Claim, n)
	for i := range out {
		out[i] = herald.Claim{Delivery: &herald.Delivery{ID: fmt.Sprintf("%s-%d", endpoint, i), EndpointID: endpoint}}
	}
	return out
}

// TestSchedulerRoundRobin: a backlog of one endpoint does not delay another
// endpoint's work; endpoints take turns.
func TestSchedulerRoundRobin(t *testing.T) {
	s := newScheduler(100, 0, nil)
	s.push(claimsFor("busy", 5), nil)
	s.push(claimsFor("quiet", 2), nil)
	var got []string
	for range 7 {
		j, ok := s.next()
		if !ok {
			t.Fatal("scheduler closed early")
		}
		got = append(got, j.claim.Delivery.ID)
		s.done(j, 0)
	}
	want := []string{"busy-0", "quiet-0", "busy-1", "quiet-1", "busy-2", "busy-3", "busy-4"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("order (-want +got):\n%s", diff)
	}
}

// TestSchedulerPerEndpointCap: an endpoint never has more than its cap in
// flight, while other endpoints keep getting work.
func TestSchedulerPerEndpointCap(t *testing.T) {
	s := newScheduler(2, 0, nil)
	// Its share is two rounds of its cap: 4 of the 10 are queued, the rest
	// are handed back for the database.
	if overflow := s.push(claimsFor("slow", 10), nil); len(overflow) != 6 || overflow[0].Delivery.ID != "slow-4" {
		t.Fatalf("overflow = %d claims, want the last 6", len(overflow))
	}
	a, _ := s.next()
	b, _ := s.next()
	if a.claim.Delivery.EndpointID != "slow" || b.claim.Delivery.EndpointID != "slow" {
		t.Fatal("first two jobs are not the slow endpoint's")
	}
	s.push(claimsFor("fast", 1), nil)
	c, _ := s.next()
	if c.claim.Delivery.EndpointID != "fast" {
		t.Fatalf("third job = %s, want the fast endpoint's: the slow one is at its cap", c.claim.Delivery.ID)
	}
	if q := s.depth(10); q.queued != 2 || !cmp.Equal(q.endpoints, []string{"slow"}) {
		t.Fatalf("depth = %d %v, want 2 [slow]", q.queued, q.endpoints)
	}
	if overflow := s.push(claimsFor("slow", 1), nil); len(overflow) != 1 {
		t.Fatal("a saturated endpoint took one more job")
	}
	s.done(a, time.Second)
	d, _ := s.next()
	if d.claim.Delivery.ID != "slow-2" {
		t.Fatalf("after one slow job finished, next = %s, want slow-2", d.claim.Delivery.ID)
	}
	s.done(b, time.Second)
	s.done(c, time.Second)
	s.done(d, time.Second)
	left := s.close()
	if len(left) != 1 {
		t.Fatalf("close returned %d unstarted jobs, want 1", len(left))
	}
	if _, ok := s.next(); ok {
		t.Fatal("next after close returned a job")
	}
	if overflow := s.push(claimsFor("late", 1), nil); len(overflow) != 1 {
		t.Fatal("push after close queued a job")
	}
}

// TestSchedulerShareFollowsPace: a fast endpoint may hold a deep queue (up
// to the most one endpoint may hold), a slow one two rounds of its cap.
func TestSchedulerShareFollowsPace(t *testing.T) {
	for _, tc := range []struct {
		endpoint string
		took     time.Duration
		want     int
	}{
		{"fast", time.Millisecond, 100},        // 4 per ms for a second, capped at 100
		{"medium", 100 * time.Millisecond, 40}, // 4 per 100 ms for a second
		{"slow", 15 * time.Second, 8},          // two rounds of 4
	} {
		s := newScheduler(4, 100, nil)
		s.push(claimsFor(tc.endpoint, 1), nil)
		j, _ := s.next()
		// Keep one job queued so the endpoint's queue (and its pace) stays.
		s.push([]herald.Claim{{Delivery: &herald.Delivery{ID: tc.endpoint + "-keep", EndpointID: tc.endpoint}}}, nil)
		s.done(j, tc.took)
		overflow := s.push(claimsFor(tc.endpoint, 200), nil)
		if got := 1 + 200 - len(overflow); got != tc.want {
			t.Errorf("%s endpoint holds %d, want %d", tc.endpoint, got, tc.want)
		}
	}
}

// TestSchedulerWakesOneWorkerPerJob: a push of k jobs wakes k of the idle
// workers, not all of them (a broadcast woke every idle worker for each
// ingest batch, and hundreds of runnable goroutines delayed the writer),
// and every job still reaches a worker.
func TestSchedulerWakesOneWorkerPerJob(t *testing.T) {
	const workers = 32
	s := newScheduler(100, 0, nil)
	got := make(chan job)
	startWorkers(s, workers, got)
	state := func() (waiting, wakeups int) {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.waiting, s.wakeups
	}
	waitFor := func(n int) { t.Helper(); waitForWaiting(t, s, n) }
	waitFor(workers)

	s.push(claimsFor("a", 2), nil)
	seen := map[string]bool{}
	for range 2 {
		j := <-got
		seen[j.claim.Delivery.ID] = true
		s.done(j, time.Millisecond)
	}
	if !seen["a-0"] || !seen["a-1"] {
		t.Fatalf("jobs taken = %v, want a-0 and a-1", seen)
	}
	waitFor(workers)
	// Give any other woken worker time to run and count its wake-up. The
	// two done calls may each wake one more worker (a slot freed).
	time.Sleep(50 * time.Millisecond)
	if _, wakeups := state(); wakeups > 4 {
		t.Fatalf("%d wake-ups for 2 jobs and %d idle workers, want at most 4", wakeups, workers)
	}
	s.close()
}

// TestSchedulerPassesWakeUpsOn: jobs that become startable without a push
// (an endpoint's cap rose, as when its circuit breaker ramps up) reach the
// idle workers: the worker that takes one wakes another while more can
// start.
func TestSchedulerPassesWakeUpsOn(t *testing.T) {
	var mu sync.Mutex
	limit := 1
	s := newScheduler(8, 0, func(string) int {
		mu.Lock()
		defer mu.Unlock()
		return limit
	})
	got := make(chan job, 8)
	startWorkers(s, 4, got) // what they take stays in flight until done
	waitFor := func(n int) { t.Helper(); waitForWaiting(t, s, n) }
	waitFor(4)
	s.push(claimsFor("a", 5), nil)
	first := <-got // the cap lets one start
	waitFor(4)     // its worker is idle again: the endpoint is at its cap
	mu.Lock()
	limit = 4
	mu.Unlock()
	// The worker that sent first finishes it and asks for its next job.
	s.done(first, time.Millisecond)
	if _, ok := s.next(); !ok {
		t.Fatal("scheduler closed")
	}
	// Three more fit under the new cap; idle workers must take them.
	for i := range 3 {
		select {
		case <-got:
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of 3 newly startable jobs reached the idle workers", i)
		}
	}
	s.close()
}

// waitForWaiting waits until n workers wait in s.next.
func waitForWaiting(t *testing.T, s *scheduler, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		w := s.waiting
		s.mu.Unlock()
		if w == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d workers waiting, want %d", w, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// startWorkers starts n workers that hand every job they take to got,
// until s closes.
func startWorkers(s *scheduler, n int, got chan<- job) {
	for range n {
		go func() {
			for {
				j, ok := s.next()
				if !ok {
					return
				}
				got <- j
			}
		}()
	}
}
