package dispatch

import (
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// The outcomes as the tests write them.
const (
	ok       = outcomeSucceeded
	answered = outcomeAnswered
	stalled  = outcomeStalled
)

// TestBreakerOpensOnConsecutiveFailuresAndProbes: with a round of one
// probe, the breaker behaves as it did before probe rounds: stalled
// attempts in a row open it, one probe at a time, a failed probe doubles
// the open period, a good one closes it and the concurrency ramps up.
func TestBreakerOpensOnConsecutiveFailuresAndProbes(t *testing.T) {
	c := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	bs := newBreakers(BreakerConfig{ConsecutiveFailures: 3, OpenFor: 10 * time.Second, MaxOpenFor: 30 * time.Second, Probes: 1}, 8, c.now)
	for i := range 2 {
		if bs.record("ep", stalled, 0) {
			t.Fatalf("opened after %d failures, want 3", i+1)
		}
	}
	if !bs.record("ep", stalled, 0) || bs.State("ep") != BreakerOpen {
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
	allowed, _, probe := bs.allow("ep")
	if !allowed || probe == 0 {
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
	if bs.record("ep", stalled, 0) || bs.State("ep") != BreakerHalfOpen {
		t.Fatalf("a late outcome moved the half-open breaker to %s", bs.State("ep"))
	}
	// A failed probe reopens for twice as long.
	if !bs.record("ep", stalled, probe) {
		t.Fatal("a failed probe did not reopen the breaker")
	}
	if _, until, _ := bs.allow("ep"); !until.Equal(c.t.Add(20 * time.Second)) {
		t.Fatalf("reopened until %v, want 20s (doubled)", until.Sub(c.t))
	}
	c.t = c.t.Add(20 * time.Second)
	allowed, _, probe = bs.allow("ep")
	if !allowed {
		t.Fatal("second probe not allowed")
	}
	// A successful probe closes it and ramps the concurrency back up.
	if bs.record("ep", ok, probe) || bs.State("ep") != BreakerClosed {
		t.Fatalf("after a good probe: %s", bs.State("ep"))
	}
	var caps []int
	for range 4 {
		caps = append(caps, bs.capFor("ep"))
		bs.record("ep", ok, 0)
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
	for i := range 10 { // stall, succeed, stall, succeed…: never 100 in a row
		o := ok
		if i%2 == 0 {
			o = stalled
		}
		opened = bs.record("ep", o, 0)
		if opened && i < 9 {
			t.Fatalf("opened after %d outcomes, before the window was full", i+1)
		}
	}
	if !opened {
		t.Fatal("5 stalled attempts in a window of 10 did not open the breaker")
	}
	if bs.State("other") != BreakerClosed || bs.capFor("other") != 8 {
		t.Fatal("an unknown endpoint is not closed with the normal cap")
	}
}

func TestBreakerDisabled(t *testing.T) {
	bs := newBreakers(BreakerConfig{Disabled: true, ConsecutiveFailures: 1}, 8, time.Now)
	for range 10 {
		if bs.record("ep", stalled, 0) {
			t.Fatal("a disabled breaker opened")
		}
	}
	if ok, _, _ := bs.allow("ep"); !ok {
		t.Fatal("a disabled breaker deferred a delivery")
	}
	if bs.State("ep") != BreakerClosed || bs.capFor("ep") != 8 || bs.openCount() != 0 {
		t.Fatal("a disabled breaker keeps state")
	}
}

// TestBreakerAnsweredFailuresCutConcurrency: an endpoint that answers fast
// but fails two of every three attempts is never opened (its failures are
// retried on their schedule); its concurrency is cut to what its share of
// successes earns, and grows back as it heals. Only failed answers twice
// the threshold in a row open the breaker.
func TestBreakerAnsweredFailuresCutConcurrency(t *testing.T) {
	c := &fakeClock{t: time.Now()}
	bs := newBreakers(BreakerConfig{ConsecutiveFailures: 5}, 9, c.now)
	for i := range 300 {
		o := answered
		if i%3 == 2 {
			o = ok
		}
		if bs.record("ep", o, 0) {
			t.Fatalf("outcome %d opened the breaker of an endpoint failing two of three fast", i+1)
		}
		if ok, _, _ := bs.allow("ep"); !ok {
			t.Fatalf("outcome %d: a delivery was deferred", i+1)
		}
	}
	// 13 or 14 of the last 20 failed: 9 - 9*13/20 = 4, 9 - 9*14/20 = 3.
	if got := bs.capFor("ep"); got < 3 || got > 4 {
		t.Fatalf("cap of an endpoint failing two of three = %d, want about a third of 9", got)
	}
	for range 20 {
		bs.record("ep", ok, 0)
	}
	if got := bs.capFor("ep"); got != 9 || len(bs.m) != 0 {
		t.Fatalf("after 20 successes the cap is %d and the state kept: %v", got, len(bs.m) != 0)
	}

	// Failed answers only, 2 × 5 in a row: the endpoint accepts nothing.
	for i := range 10 {
		if bs.record("ep", answered, 0) != (i == 9) {
			t.Fatalf("failed answer %d: open = %s, want open at the 10th", i+1, bs.State("ep"))
		}
	}
	// A stalled run counts a failed answer as an answer: four stalls, an
	// answer, four stalls do not open at 5; the 10 failures in a row do.
	bs2 := newBreakers(BreakerConfig{ConsecutiveFailures: 5}, 8, c.now)
	seq := []outcome{stalled, stalled, stalled, stalled, answered, stalled, stalled, stalled, stalled}
	for i, o := range seq {
		if bs2.record("ep", o, 0) {
			t.Fatalf("opened at outcome %d of %v", i+1, seq)
		}
	}
	if !bs2.record("ep", stalled, 0) {
		t.Fatal("5 stalls in a row did not open the breaker")
	}
}

// TestBreakerProbeRound: the half-open breaker lets a round of probes
// through (at most the endpoint's concurrency at once) and judges them by
// ratio; probes of an earlier round do not count in a later one.
func TestBreakerProbeRound(t *testing.T) {
	c := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	bs := newBreakers(BreakerConfig{ConsecutiveFailures: 2, FailureRatio: 0.5, Probes: 5, OpenFor: 10 * time.Second}, 8, c.now)
	openFor := func() time.Duration {
		_, until, _ := bs.allow("ep")
		return until.Sub(c.t)
	}
	round := func() []int {
		t.Helper()
		c.t = c.t.Add(time.Hour)
		var ps []int
		for range 5 {
			allowed, _, p := bs.allow("ep")
			if !allowed || p == 0 {
				t.Fatal("a probe of the round was not allowed")
			}
			ps = append(ps, p)
		}
		if allowed, until, _ := bs.allow("ep"); allowed || !until.Equal(c.t.Add(10*time.Second)) {
			t.Fatalf("a sixth delivery: allowed %v, deferred to %v; want deferred by the first open period", allowed, until.Sub(c.t))
		}
		if got := bs.capFor("ep"); got != 5 {
			t.Fatalf("cap while half-open = %d, want the round's 5", got)
		}
		return ps
	}
	bs.record("ep", stalled, 0)
	if !bs.record("ep", stalled, 0) {
		t.Fatal("not open")
	}

	// Three of five probes stall: reopened at the third, for twice as long.
	ps := round()
	for i, p := range ps[:3] {
		if bs.record("ep", stalled, p) != (i == 2) {
			t.Fatalf("stalled probe %d: state %s", i+1, bs.State("ep"))
		}
	}
	if d := openFor(); d != 20*time.Second {
		t.Fatalf("reopened for %v, want 20s", d)
	}
	// Every probe answers with a failure: reopened when the round is in.
	old := ps[3]
	ps = round()
	if bs.record("ep", ok, old) || bs.State("ep") != BreakerHalfOpen {
		t.Fatal("a probe of the earlier round counted in this one")
	}
	for i, p := range ps {
		if bs.record("ep", answered, p) != (i == 4) {
			t.Fatalf("failed answer %d of the round: state %s", i+1, bs.State("ep"))
		}
	}
	if d := openFor(); d != 40*time.Second {
		t.Fatalf("reopened for %v, want 40s", d)
	}
	// One success and two failed answers: the other two cannot stall
	// three, so it closes at the third outcome and ramps from 5.
	ps = round()
	for i, o := range []outcome{answered, ok, answered} {
		bs.record("ep", o, ps[i])
	}
	if s := bs.State("ep"); s != BreakerClosed {
		t.Fatalf("after 1 success and 2 failed answers of 5 probes: %s, want closed", s)
	}
	if got := bs.capFor("ep"); got != 5 {
		t.Fatalf("cap after closing = %d, want the ramp's 5", got)
	}
	// The round's late probes count as ordinary outcomes once closed.
	bs.record("ep", ok, ps[3])
	bs.record("ep", ok, ps[4])
	bs.record("ep", stalled, 0)
	if allowed, _, p := bs.allow("ep"); !allowed || p != 0 || bs.State("ep") != BreakerClosed {
		t.Fatalf("after the late probes and one stall: %s", bs.State("ep"))
	}
	// Closing reset the open period: the next opening is 10 s again.
	if !bs.record("ep", stalled, 0) {
		t.Fatal("two stalls in a row did not reopen")
	}
	if d := openFor(); d != 10*time.Second {
		t.Fatalf("open for %v after a close, want the initial 10s", d)
	}
}

// TestBreakerClassify: fast answers of any status are answers; timeouts,
// connection failures and slow failed answers are stalls.
func TestBreakerClassify(t *testing.T) {
	bs := newBreakers(BreakerConfig{SlowAnswer: 5 * time.Second}, 8, time.Now)
	for _, c := range []struct {
		res  Result
		want outcome
	}{
		{Result{StatusCode: http.StatusNoContent, Duration: 9 * time.Second}, ok},
		{Result{StatusCode: http.StatusInternalServerError, Duration: time.Millisecond}, answered},
		{Result{StatusCode: http.StatusTooManyRequests, Duration: 4 * time.Second}, answered},
		{Result{StatusCode: http.StatusBadGateway, Duration: 5 * time.Second}, stalled},
		{Result{Err: errors.New("connection refused"), Duration: time.Millisecond}, stalled},
		{Result{Err: errors.New("timeout"), Duration: 10 * time.Second}, stalled},
	} {
		if got := bs.classify(c.res); got != c.want {
			t.Errorf("classify(%d, %v, %v) = %d, want %d", c.res.StatusCode, c.res.Err, c.res.Duration, got, c.want)
		}
	}
}
