package dispatch

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/herald-webhooks/herald/netguard"
)

// TestAdaptiveConcurrency: failures that hold a worker (timeouts,
// connection failures) halve an endpoint's concurrency down to 1; each
// success wins one back, up to the configured limit; other endpoints keep
// theirs.
func TestAdaptiveConcurrency(t *testing.T) {
	a := newAdaptive(8)
	var got []int
	for range 5 {
		a.cut("ep")
		got = append(got, a.get("ep"))
	}
	for range 8 {
		a.grow("ep")
		got = append(got, a.get("ep"))
	}
	want := []int{4, 2, 1, 1, 1, 2, 3, 4, 5, 6, 7, 8, 8}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("limits after 5 cuts and 8 successes (-want +got):\n%s", diff)
	}
	if n := a.get("other"); n != 8 {
		t.Fatalf("another endpoint's limit = %d, want 8", n)
	}
	if len(a.limit) != 0 {
		t.Fatalf("an endpoint back at its limit is still tracked: %v", a.limit)
	}
}

// TestAdaptClassifiesResults: a timeout or a connection failure cuts the
// endpoint's concurrency; a fast HTTP error answer does not (the endpoint
// answers); a refused address says nothing about the endpoint; a success
// grows it back.
func TestAdaptClassifiesResults(t *testing.T) {
	d := &Dispatcher{adaptive: newAdaptive(8)}
	steps := []struct {
		name string
		res  Result
		want int
	}{
		{"timeout", Result{Err: fmt.Errorf("post: %w", context.DeadlineExceeded)}, 4},
		{"connection refused", Result{Err: errors.New("dial tcp 127.0.0.1:1: connect: connection refused")}, 2},
		{"500 answer", Result{StatusCode: 500}, 2},
		{"429 answer", Result{StatusCode: 429}, 2},
		{"refused address", Result{Err: &netguard.BlockedError{Reason: netguard.ReasonPrivate}}, 2},
		{"success", Result{StatusCode: 204}, 3},
		{"answer whose body failed", Result{StatusCode: 500, Err: errors.New("read body: unexpected EOF")}, 3},
	}
	for _, s := range steps {
		d.adapt("ep", s.res)
		if got := d.adaptive.get("ep"); got != s.want {
			t.Fatalf("after %s: limit %d, want %d", s.name, got, s.want)
		}
	}
}

// TestSchedulerFollowsAdaptiveLimit: an endpoint cut to 1 has one job in
// flight at a time while another endpoint keeps its full concurrency.
func TestSchedulerFollowsAdaptiveLimit(t *testing.T) {
	a := newAdaptive(4)
	s := newScheduler(4, 0, a.get)
	a.cut("hanging")
	a.cut("hanging")
	s.push(claimsFor("hanging", 4), nil)
	s.push(claimsFor("healthy", 4), nil)
	count := map[string]int{}
	for range 5 {
		j, _ := s.next()
		count[j.claim.Delivery.EndpointID]++
	}
	if want := map[string]int{"hanging": 1, "healthy": 4}; !cmp.Equal(count, want) {
		t.Fatalf("in flight = %v, want %v", count, want)
	}
	s.close()
}
