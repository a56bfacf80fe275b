package dispatch

import (
	"slices"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestBreakerOpensOnConsecutiveFailuresAndProbes(t *testing.T) {
	c := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	bs := newBreakers(BreakerConfig{ConsecutiveFailures: 3, OpenFor: 10 * time.Second, MaxOpenFor: 30 * time.Second}, 8, c.now)
	for i := range 2 {
		if bs.record("ep", true, false) {
			t.Fatalf("opened after %d failures, want 3", i+1)
		}
	}
	if !bs.record("ep", true, false) || bs.State("ep") != BreakerOpen {
		t.Fatalf("not open after 3 consecutive failures: %s", bs.State("ep"))
	}
	if ok, until, _ := bs.allow("ep"); ok || !until.Equal(c.t.Add(10*time.Second)) {
		t.Fatalf("allow while open = %v until %v, want deferred 10s", ok, until)
	}
	if got := bs.openEndpoints(10); len(got) != 1 || got[0] != "ep" {
		t.Fatalf("openEndpoints = %v", got)
	}

	// After the open period: one probe, the rest deferred.
	c.t = c.t.Add(10 * time.Second)
	if ok, _, probe := bs.allow("ep"); !ok || !probe {
		t.Fatal("the probe was not allowed")
	}
	if ok, _, _ := bs.allow("ep"); ok {
		t.Fatal("a second delivery was allowed while the probe is in flight")
	}
	if bs.capFor("ep") != 1 {
		t.Fatalf("cap while half-open = %d, want 1", bs.capFor("ep"))
	}
	// A late failure of an attempt from before the breaker opened does
	// not count as the probe's result.
	if bs.record("ep", true, false) || bs.State("ep") != BreakerHalfOpen {
		t.Fatalf("a late outcome moved the half-open breaker to %s", bs.State("ep"))
	}
	// A failed probe reopens for twice as long.
	if !bs.record("ep", true, true) {
		t.Fatal("a failed probe did not reopen the breaker")
	}
	if _, until, _ := bs.allow("ep"); !until.Equal(c.t.Add(20 * time.Second)) {
		t.Fatalf("reopened until %v, want 20s (doubled)", until.Sub(c.t))
	}
	c.t = c.t.Add(20 * time.Second)
	if ok, _, _ := bs.allow("ep"); !ok {
		t.Fatal("second probe not allowed")
	}
	// A successful probe closes it and ramps the concurrency back up.
	if bs.record("ep", false, true) || bs.State("ep") != BreakerClosed {
		t.Fatalf("after a good probe: %s", bs.State("ep"))
	}
	var caps []int
	for range 4 {
		caps = append(caps, bs.capFor("ep"))
		bs.record("ep", false, false)
	}
	if want := []int{1, 2, 4, 8}; !slices.Equal(caps, want) {
		t.Fatalf("ramp caps = %v, want %v", caps, want)
	}
	if len(bs.m) != 0 {
		t.Fatal("a healthy endpoint's breaker was kept")
	}
}

func TestBreakerOpensOnFailureRatio(t *testing.T) {
	c := &fakeClock{t: time.Now()}
	bs := newBreakers(BreakerConfig{ConsecutiveFailures: 100, FailureRatio: 0.5, Window: 10}, 8, c.now)
	opened := false
	for i := range 10 { // fail, succeed, fail, succeed…: never 100 in a row
		opened = bs.record("ep", i%2 == 0, false)
		if opened && i < 9 {
			t.Fatalf("opened after %d outcomes, before the window was full", i+1)
		}
	}
	if !opened {
		t.Fatal("5 failures in a window of 10 did not open the breaker")
	}
	if bs.State("other") != BreakerClosed || bs.capFor("other") != 8 {
		t.Fatal("an unknown endpoint is not closed with the normal cap")
	}
}

func TestBreakerDisabled(t *testing.T) {
	bs := newBreakers(BreakerConfig{Disabled: true, ConsecutiveFailures: 1}, 8, time.Now)
	if bs.record("ep", true, false) {
		t.Fatal("a disabled breaker opened")
	}
	if ok, _, _ := bs.allow("ep"); !ok {
		t.Fatal("a disabled breaker deferred a delivery")
	}
}
