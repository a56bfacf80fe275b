package dispatch

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/herald-webhooks/herald"
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

// flakyNodes is a node store whose heartbeats fail while down is set; it
// records when takeovers were asked for.
type flakyNodes struct {
	mu        sync.Mutex
	down      bool
	takeovers []time.Time
}

func (f *flakyNodes) RegisterNode(context.Context, *herald.Node) error { return nil }
func (f *flakyNodes) HeartbeatNode(context.Context, string) (time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return time.Time{}, herald.Errorf(herald.EUNAVAILABLE, "database down")
	}
	return time.Now(), nil
}
func (f *flakyNodes) TakeOverDeadNodes(context.Context, string, time.Duration) ([]*herald.Node, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.takeovers = append(f.takeovers, time.Now())
	return nil, 0, nil
}
func (f *flakyNodes) ListNodes(context.Context) ([]*herald.Node, time.Time, error) {
	return nil, time.Now(), nil
}
func (f *flakyNodes) DeregisterNode(context.Context, string) error { return nil }

func (f *flakyNodes) set(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
}

func (f *flakyNodes) takeoversAfter(t time.Time) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, at := range f.takeovers {
		if at.After(t) {
			n++
		}
	}
	return n
}

// TestNoTakeoverRightAfterOutage: after the database was unreachable for
// longer than the node timeout, every node's heartbeat is old; the first
// node back must not take the others over before they had a whole node
// timeout to heartbeat again, else one outage would end every node but
// one. A node takes others over only after a node timeout of unbroken
// heartbeats (so also not in its first node timeout after it starts).
func TestNoTakeoverRightAfterOutage(t *testing.T) {
	nodes := &flakyNodes{}
	const heartbeat, timeout = 50 * time.Millisecond, 2 * time.Second
	d := &Dispatcher{cfg: Config{Nodes: nodes, Owner: "n1", NodeHeartbeat: heartbeat, NodeTimeout: timeout},
		live: newLiveness(false), log: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	start := time.Now()
	go func() { defer close(done); d.heartbeatLoop(ctx, func() {}) }()
	defer func() { cancel(); <-done }()

	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(heartbeat) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 30 s", what)
			}
		}
	}
	waitFor("first takeover round", func() bool { return nodes.takeoversAfter(start) > 0 })
	nodes.mu.Lock()
	first := nodes.takeovers[0]
	nodes.mu.Unlock()
	if first.Sub(start) < timeout {
		t.Errorf("took others over %v after starting: before a node timeout (%v) of its own heartbeats", first.Sub(start), timeout)
	}
	nodes.set(true)
	time.Sleep(timeout + 5*heartbeat) // an outage longer than the node timeout
	back := time.Now()
	nodes.set(false)
	waitFor("takeover round after the outage", func() bool { return nodes.takeoversAfter(back) > 0 })
	var after time.Time
	nodes.mu.Lock()
	for _, at := range nodes.takeovers {
		if at.After(back) {
			after = at
			break
		}
	}
	nodes.mu.Unlock()
	if after.Sub(back) < timeout {
		t.Errorf("took others over %v after the database came back: before they had a node timeout (%v) to heartbeat again", after.Sub(back), timeout)
	}
	if !d.live.alive() {
		t.Error("not alive after heartbeats resumed")
	}
}
