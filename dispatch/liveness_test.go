package dispatch

import (
	"context"
	"testing"
	"time"
)

// TestLivenessGate: with a node store, sends may start only while the
// latest heartbeat keeps the node safe from a takeover; a waiting send
// starts at the next renewal, and never once the node was taken over.
// Without a node store (SQLite) the gate is always open.
func TestLivenessGate(t *testing.T) {
	if l := newLiveness(true); !l.alive() || !l.await(t.Context()) {
		t.Fatal("without a node store the gate is shut")
	}
	l := newLiveness(false)
	if l.alive() {
		t.Fatal("alive before the first heartbeat")
	}
	// A heartbeat sent longer ago than the timeout (less the margin)
	// keeps nothing open: the node may be taken over already.
	l.renew(time.Now().Add(-DefaultNodeTimeout), DefaultNodeTimeout)
	if l.alive() {
		t.Fatal("alive on a heartbeat older than the node timeout")
	}
	waited := make(chan bool, 1)
	go func() { waited <- l.await(context.Background()) }()
	l.renew(time.Now(), DefaultNodeTimeout)
	if !<-waited || !l.alive() {
		t.Fatal("a send waiting for a heartbeat did not start after it")
	}
	// An older heartbeat arriving late does not shorten the window.
	l.renew(time.Now().Add(-time.Hour), DefaultNodeTimeout)
	if !l.alive() {
		t.Fatal("a late, older heartbeat closed the gate")
	}

	stale := newLiveness(false)
	go func() { waited <- stale.await(context.Background()) }()
	stale.end()
	if <-waited || stale.alive() || !stale.isGone() {
		t.Fatal("a node taken over may still send")
	}
	stale.renew(time.Now(), DefaultNodeTimeout)
	if stale.alive() || stale.await(t.Context()) {
		t.Fatal("a heartbeat after the takeover reopened the gate")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if newLiveness(false).await(ctx) {
		t.Fatal("await on an ended context and no heartbeat returned true")
	}
}

// TestLeaseUntilUnique: the lease expiry is a claim's token, so one
// dispatcher never hands out the same expiry twice, even when its clock
// stands still or steps back; expiries are whole microseconds, as both
// stores keep them.
func TestLeaseUntilUnique(t *testing.T) {
	d := &Dispatcher{cfg: Config{Lease: time.Minute}}
	now := time.Date(2026, 12, 6, 12, 0, 0, 123456789, time.UTC)
	first := d.leaseUntil(now)
	if want := now.Add(time.Minute).Truncate(time.Microsecond); !first.Equal(want) {
		t.Fatalf("first lease until %v, want %v", first, want)
	}
	second := d.leaseUntil(now)
	third := d.leaseUntil(now.Add(-time.Hour))
	if !second.After(first) || !third.After(second) || second.Sub(first) != time.Microsecond || third.Sub(second) != time.Microsecond {
		t.Fatalf("leases %v, %v, %v at a standing and a backward clock; want each one microsecond after the last", first, second, third)
	}
	if later := d.leaseUntil(now.Add(time.Second)); !later.Equal(now.Add(time.Minute + time.Second).Truncate(time.Microsecond)) {
		t.Fatalf("lease after the clock moved on: %v", later)
	}
}
