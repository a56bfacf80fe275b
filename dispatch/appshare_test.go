package dispatch

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/herald-webhooks/herald"
)

func claimsForApp(app, endpoint string, n int) []herald.Claim {
	out := claimsFor(endpoint, n)
	for _, c := range out {
		c.Delivery.AppID = app
	}
	return out
}

// TestSchedulerAppShare: the endpoints of one application together never
// have more than the application's cap in flight, however many of them
// have work; another application's work starts at once; when one of the
// first application's deliveries finishes, one more of its own starts.
func TestSchedulerAppShare(t *testing.T) {
	s := newScheduler(4, 0, nil)
	s.appCap = 6
	for i := range 4 {
		s.push(claimsForApp("A", fmt.Sprint("a", i), 4), nil)
	}
	var running []job
	for range 6 {
		j, _ := s.next()
		if j.claim.Delivery.AppID != "A" {
			t.Fatalf("job of %s, want A's", j.claim.Delivery.AppID)
		}
		running = append(running, j)
	}
	// A is at its cap: B's job comes next, although A's endpoints were
	// ready first and each is below its own cap.
	s.push(claimsForApp("B", "b0", 2), nil)
	for range 2 {
		j, _ := s.next()
		if j.claim.Delivery.AppID != "B" {
			t.Fatalf("with A at its cap, next = %s of %s, want B's", j.claim.Delivery.ID, j.claim.Delivery.AppID)
		}
		s.done(j, 0)
	}
	if n := s.apps["A"].inflight; n != 6 {
		t.Fatalf("A in flight = %d, want 6", n)
	}
	// One of A's finishes: exactly one more of A's may start.
	s.done(running[0], 0)
	j, _ := s.next()
	if j.claim.Delivery.AppID != "A" {
		t.Fatalf("after one of A's finished, next = %s, want one of A's", j.claim.Delivery.ID)
	}
	if n := s.apps["A"].inflight; n != 6 {
		t.Fatalf("A in flight = %d, want 6 (its cap)", n)
	}
	s.push(claimsForApp("B", "b1", 1), nil)
	if j, _ := s.next(); j.claim.Delivery.EndpointID != "b1" {
		t.Fatalf("next = %s, want b1's: A is at its cap again", j.claim.Delivery.ID)
	}
	// A's queued jobs that never started come back at close.
	if left := s.close(); len(left) != 16-7 {
		t.Fatalf("close returned %d jobs, want the 9 of A's that never started", len(left))
	}
}

// TestSchedulerAppShareTake: taking a parked endpoint's jobs (its breaker
// opened) drops it from its application's parked list, and the
// application's share is forgotten once it has nothing left.
func TestSchedulerAppShareTake(t *testing.T) {
	s := newScheduler(2, 0, nil)
	s.appCap = 2
	s.push(claimsForApp("A", "a0", 2), nil)
	s.push(claimsForApp("A", "a1", 2), nil)
	j1, _ := s.next()
	j2, _ := s.next()
	if got := len(s.apps["A"].parked); got == 0 {
		t.Fatal("no endpoint of A parked at its cap")
	}
	parked := s.apps["A"].parked[0].id
	if taken := s.take(parked); len(taken) == 0 {
		t.Fatalf("take(%s) returned nothing", parked)
	}
	for _, q := range s.apps["A"].parked {
		if q.id == parked {
			t.Fatalf("%s still parked after take", parked)
		}
	}
	for _, id := range []string{"a0", "a1"} {
		s.take(id)
	}
	s.done(j1, 0)
	s.done(j2, 0)
	if len(s.apps) != 0 || len(s.queues) != 0 {
		t.Fatalf("after everything finished: %d apps, %d queues left", len(s.apps), len(s.queues))
	}
	if s.len() != 0 {
		t.Fatalf("queued = %d, want 0", s.len())
	}
	s.close()
}

// TestAppCap: the cap is the share of the workers, at least one
// endpoint's concurrency, and none when that is every worker.
func TestAppCap(t *testing.T) {
	for _, tt := range []struct {
		workers, perEndpoint int
		share                float64
		want                 int
	}{
		{256, 8, 0.5, 128},
		{256, 8, 1, 0},
		{10, 8, 0.5, 8},
		{8, 8, 0.5, 0},
		{1, 1, 0.5, 0},
		{100, 2, 0.01, 2},
	} {
		if got := appCap(tt.workers, tt.perEndpoint, tt.share); got != tt.want {
			t.Errorf("appCap(%d, %d, %v) = %d, want %d", tt.workers, tt.perEndpoint, tt.share, got, tt.want)
		}
	}
}

// TestSchedulerAppShareUnparksEveryFreedSlot: when several of an
// application's deliveries finish before the next starts, each freed slot
// brings one parked endpoint back; the endpoints parked at the cap never
// stay parked once nothing of the application is in flight (a bug that
// stopped all delivery of an application with many endpoints).
func TestSchedulerAppShareUnparksEveryFreedSlot(t *testing.T) {
	s := newScheduler(1, 0, nil)
	s.appCap = 2
	for i := range 2 {
		s.push(claimsForApp("A", fmt.Sprint("a", i), 1), nil)
	}
	j1, _ := s.next()
	j2, _ := s.next()
	for i := 2; i < 5; i++ {
		s.push(claimsForApp("A", fmt.Sprint("a", i), 1), nil) // parked: A is at its cap
	}
	if len(s.apps["A"].parked) != 3 {
		t.Fatalf("%d endpoints parked, want 3", len(s.apps["A"].parked))
	}
	s.done(j1, 0)
	s.done(j2, 0)
	if len(s.ready) != 2 {
		t.Fatalf("after two of A's jobs finished, %d endpoints ready, want 2 (two free slots)", len(s.ready))
	}
	started := 2
	for started < 5 {
		j, _ := s.next()
		started++
		if started < 5 && len(s.ready) == 0 {
			t.Fatalf("after %d jobs started, nothing ready", started)
		}
		s.done(j, 0)
	}
	if s.len() != 0 || len(s.apps) != 0 {
		t.Fatalf("queued %d, apps %d after all five ran; want none", s.len(), len(s.apps))
	}
	s.close()
}

// TestSchedulerSaturatedApps: an application with appBacklog jobs or more
// waiting is saturated, and its waiting jobs are counted apart, so the
// claimer leaves it and does not count its backlog against the others'
// room; it is saturated no longer once its jobs start, and its count
// forgets the jobs taken from it.
func TestSchedulerSaturatedApps(t *testing.T) {
	s := newScheduler(4, 1000, nil)
	s.appCap, s.appBacklog = 2, 2
	for i := range 3 {
		s.push(claimsForApp("A", fmt.Sprint("a", i), 1), nil)
	}
	s.push(claimsForApp("B", "b0", 1), nil)
	if q := s.depth(10); q.queued != 4 || q.held != 3 || !cmp.Equal(q.apps, []string{"A"}) {
		t.Fatalf("depth = %+v, want 4 queued, A saturated holding 3", q)
	}
	// A's first two start (its cap): one waits, fewer than its backlog.
	var started []job
	for range 3 {
		j, _ := s.next()
		started = append(started, j)
	}
	if q := s.depth(10); q.queued != 1 || q.held != 0 || len(q.apps) != 0 {
		t.Fatalf("after three started, depth = %+v, want one queued and no saturated application", q)
	}
	if n := s.apps["A"].queued; n != 1 {
		t.Fatalf("A queued = %d, want 1", n)
	}
	// Taking an endpoint's jobs (its breaker opened) counts them out.
	s.push(claimsForApp("A", "a9", 3), nil)
	if q := s.depth(10); q.held != 4 {
		t.Fatalf("depth = %+v, want A holding 4", q)
	}
	if got := s.take("a9"); len(got) != 3 {
		t.Fatalf("took %d jobs of a9, want 3", len(got))
	}
	if n := s.apps["A"].queued; n != 1 {
		t.Fatalf("after the take, A queued = %d, want 1", n)
	}
	for _, j := range started {
		s.done(j, time.Millisecond)
	}
	if left := s.close(); len(left) != 1 {
		t.Fatalf("close returned %d jobs, want A's one left", len(left))
	}
}
