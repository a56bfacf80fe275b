package dispatch

import (
	"math"
	"sync"
	"time"
)

// BreakerConfig configures the per-endpoint circuit breakers. Zero values
// take the defaults.
//
// A breaker protects the workers and the receiver, it does not punish: an
// attempt that failed without an answer (a timeout, a connection failure,
// or a failed answer slower than SlowAnswer) holds a worker for up to the
// request timeout, so those open the breaker quickly; an endpoint that
// answers fast but fails some requests (one bad backend behind a load
// balancer) keeps receiving, its concurrency cut by the share of its
// recent attempts that failed, and its failed deliveries are retried on
// their schedule. Only an endpoint whose every attempt fails, 2 ×
// ConsecutiveFailures in a row, is opened for its failed answers.
type BreakerConfig struct {
	// ConsecutiveFailures opens the breaker after this many attempts in a
	// row that failed without an answer (default 10); twice as many failed
	// attempts of any kind in a row open it as well.
	ConsecutiveFailures int
	// FailureRatio opens the breaker when at least this share of the last
	// Window attempts failed without an answer (default 0.5 over 20). In
	// the half-open state it judges the probes: that share of stalled
	// probes reopens the breaker.
	FailureRatio float64
	Window       int
	// OpenFor is how long the breaker stays open the first time; each
	// failed round of probes doubles it, up to MaxOpenFor (defaults 10 s
	// and 5 min).
	OpenFor    time.Duration
	MaxOpenFor time.Duration
	// Probes is how many deliveries the half-open breaker lets through
	// (default 5, at most the endpoint's concurrency at once). It closes
	// once one of them succeeded and FailureRatio of them can no longer
	// stall; it reopens when that many stalled or none succeeded.
	Probes int
	// SlowAnswer is how long a failed answer may take and still count as
	// an answer; a slower one held its worker as a timeout does and counts
	// as a failure without an answer. The dispatcher's default is half its
	// RequestTimeout.
	SlowAnswer time.Duration
	// Disabled turns the breakers off.
	Disabled bool
}

func (c BreakerConfig) withDefaults() BreakerConfig {
	if c.ConsecutiveFailures <= 0 {
		c.ConsecutiveFailures = 10
	}
	if c.FailureRatio <= 0 || c.FailureRatio > 1 {
		c.FailureRatio = 0.5
	}
	if c.Window <= 0 {
		c.Window = 20
	}
	if c.OpenFor <= 0 {
		c.OpenFor = 10 * time.Second
	}
	if c.MaxOpenFor < c.OpenFor {
		c.MaxOpenFor = max(5*time.Minute, c.OpenFor)
	}
	if c.Probes <= 0 {
		c.Probes = 5
	}
	return c
}

// Breaker states, as the API and logs name them.
const (
	BreakerClosed   = "closed"
	BreakerOpen     = "open"
	BreakerHalfOpen = "half-open"
)

// outcome is an attempt's result as a breaker weighs it.
type outcome uint8

const (
	outcomeSucceeded outcome = iota
	// outcomeAnswered: the endpoint answered fast, with a failure status.
	outcomeAnswered
	// outcomeStalled: no answer (timeout, connection failure, refused
	// target) or a failed answer slower than SlowAnswer.
	outcomeStalled
)

// classify weighs one attempt's result.
func (bs *breakers) classify(res Result) outcome {
	switch {
	case res.Succeeded():
		return outcomeSucceeded
	case res.Err == nil && (bs.cfg.SlowAnswer <= 0 || res.Duration < bs.cfg.SlowAnswer):
		return outcomeAnswered
	}
	return outcomeStalled
}

// breaker is one endpoint's circuit breaker.
type breaker struct {
	state      string
	stalledRun int       // attempts in a row that failed without an answer
	failedRun  int       // failed attempts in a row, of any kind
	window     []outcome // last outcomes; a ring of size Window
	next       int       // where the next outcome goes in window
	filled     int
	failed     int // failures in window, of any kind
	stalled    int // failures without an answer in window
	openFor    time.Duration
	openUntil  time.Time
	// The half-open round: probes let through, and how those reported
	// came out.
	admitted, reported, probeOK, probeStalled int
	// round numbers the half-open rounds, so that a probe of an earlier
	// round, slower than the open period, does not count in this one.
	round int
	// ramp caps the endpoint's concurrency after the breaker closed again,
	// doubling with each success until the normal cap: the backlog resumes
	// at a controlled rate. 0 means no ramp.
	ramp int
}

// breakers holds the breakers of every endpoint this node has sent to.
type breakers struct {
	cfg         BreakerConfig
	perEndpoint int
	now         func() time.Time
	mu          sync.Mutex
	m           map[string]*breaker
}

func newBreakers(cfg BreakerConfig, perEndpoint int, now func() time.Time) *breakers {
	return &breakers{cfg: cfg.withDefaults(), perEndpoint: perEndpoint, now: now, m: make(map[string]*breaker)}
}

func (bs *breakers) get(id string) *breaker {
	b := bs.m[id]
	if b == nil {
		b = &breaker{state: BreakerClosed, window: make([]outcome, bs.cfg.Window), openFor: bs.cfg.OpenFor}
		bs.m[id] = b
	}
	return b
}

// allow reports whether a delivery to the endpoint may be sent now. When it
// may not, deferUntil is when the delivery should be due again. In the
// half-open state Probes deliveries are allowed; probe, not 0, says that
// this is one of them (it names the round), and its outcome must be
// recorded with it.
func (bs *breakers) allow(id string) (ok bool, deferUntil time.Time, probe int) {
	if bs.cfg.Disabled {
		return true, time.Time{}, 0
	}
	bs.mu.Lock()
	defer bs.mu.Unlock()
	b := bs.m[id]
	if b == nil {
		return true, time.Time{}, 0
	}
	now := bs.now()
	switch b.state {
	case BreakerOpen:
		if now.Before(b.openUntil) {
			return false, b.openUntil, 0
		}
		b.state = BreakerHalfOpen
		b.round++
		b.admitted, b.reported, b.probeOK, b.probeStalled = 0, 0, 0, 0
		fallthrough
	case BreakerHalfOpen:
		if b.admitted >= bs.cfg.Probes {
			// The round is out: the rest waits for its verdict, due again
			// after the shortest open period.
			return false, now.Add(bs.cfg.OpenFor), 0
		}
		b.admitted++
		return true, time.Time{}, b.round
	}
	return true, time.Time{}, 0
}

// probeStalls is how many stalled probes of a round reopen the breaker.
func (bs *breakers) probeStalls() int {
	return max(1, int(math.Ceil(bs.cfg.FailureRatio*float64(bs.cfg.Probes)-1e-9)))
}

// record notes an attempt's outcome and reports whether it opened the
// breaker. Only the outcomes of the current round's probes move a
// half-open breaker; outcomes of attempts that started before the breaker
// opened are ignored while it is open or half-open.
func (bs *breakers) record(id string, o outcome, probe int) (opened bool) {
	if bs.cfg.Disabled {
		return false
	}
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if o == outcomeSucceeded && bs.m[id] == nil {
		return false // healthy endpoints need no state
	}
	b := bs.get(id)
	if b.state == BreakerHalfOpen {
		if probe != b.round {
			return false // a late outcome of an attempt from before this round
		}
		b.reported++
		switch o {
		case outcomeSucceeded:
			b.probeOK++
		case outcomeStalled:
			b.probeStalled++
		}
		need := bs.probeStalls()
		switch {
		case b.probeStalled >= need:
			// Too many probes held a worker without an answer.
		case b.probeOK > 0 && b.probeStalled+bs.cfg.Probes-b.reported < need:
			// It answers and accepts, and the rest of the round cannot
			// stall enough to reopen it: close, and ramp back up from the
			// round's size.
			b.state = BreakerClosed
			b.reset(bs.cfg.OpenFor)
			b.ramp = min(bs.cfg.Probes, bs.perEndpoint)
			if b.ramp >= bs.perEndpoint {
				b.ramp = 0
			}
			return false
		case b.reported >= bs.cfg.Probes:
			// Every probe failed.
		default:
			return false // the round goes on
		}
		b.openFor = min(2*b.openFor, bs.cfg.MaxOpenFor)
		bs.open(b)
		return true
	}
	if b.state == BreakerOpen {
		return false // an attempt that started before the breaker opened
	}
	switch b.window[b.next] {
	case outcomeAnswered:
		if b.filled == len(b.window) {
			b.failed--
		}
	case outcomeStalled:
		if b.filled == len(b.window) {
			b.failed--
			b.stalled--
		}
	}
	b.window[b.next] = o
	b.next = (b.next + 1) % len(b.window)
	b.filled = min(b.filled+1, len(b.window))
	switch o {
	case outcomeSucceeded:
		b.stalledRun, b.failedRun = 0, 0
		if b.ramp > 0 {
			b.ramp *= 2
			if b.ramp >= bs.perEndpoint {
				b.ramp = 0
			}
		}
		if b.failed == 0 && b.ramp == 0 {
			delete(bs.m, id) // healthy again: forget it
			return false
		}
	case outcomeAnswered:
		b.failed++
		b.failedRun++
		b.stalledRun = 0 // it answered
	case outcomeStalled:
		b.failed++
		b.stalled++
		b.failedRun++
		b.stalledRun++
	}
	if b.stalledRun >= bs.cfg.ConsecutiveFailures || b.failedRun >= 2*bs.cfg.ConsecutiveFailures ||
		(b.filled == len(b.window) && float64(b.stalled) >= bs.cfg.FailureRatio*float64(len(b.window))) {
		bs.open(b)
		return true
	}
	return false
}

func (bs *breakers) open(b *breaker) {
	b.state = BreakerOpen
	b.openUntil = bs.now().Add(b.openFor)
	b.ramp = 0
	b.clearWindow()
}

func (b *breaker) reset(openFor time.Duration) {
	b.clearWindow()
	b.openFor = openFor
}

func (b *breaker) clearWindow() {
	b.stalledRun, b.failedRun = 0, 0
	clear(b.window)
	b.filled, b.failed, b.stalled, b.next = 0, 0, 0, 0
}

// capFor is the endpoint's concurrency cap now: the probe round's size
// while half-open; otherwise the normal cap less the share of the recent
// attempts that failed (an endpoint failing two of three gets a third of
// it, at least one), and at most the ramp after a recovery.
func (bs *breakers) capFor(id string) int {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	b := bs.m[id]
	switch {
	case b == nil:
		return bs.perEndpoint
	case b.state != BreakerClosed:
		return min(bs.cfg.Probes, bs.perEndpoint)
	}
	c := max(1, bs.perEndpoint-bs.perEndpoint*b.failed/len(b.window))
	if b.ramp > 0 {
		c = min(c, b.ramp)
	}
	return c
}

// openEndpoints lists endpoints whose breaker is open now, so the claimer
// leaves their deliveries in the database.
func (bs *breakers) openEndpoints(limit int) []string {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	now := bs.now()
	var out []string
	for id, b := range bs.m {
		if len(out) >= limit {
			break
		}
		if b.state == BreakerOpen && now.Before(b.openUntil) {
			out = append(out, id)
		}
	}
	return out
}

// openCount returns how many endpoints' breakers are not closed (open or
// half-open), for the metrics.
func (bs *breakers) openCount() int {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	n := 0
	for _, b := range bs.m {
		if b.state != BreakerClosed {
			n++
		}
	}
	return n
}

// isOpen reports whether the endpoint's breaker is open now.
func (bs *breakers) isOpen(id string) bool {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	b := bs.m[id]
	return b != nil && b.state == BreakerOpen && bs.now().Before(b.openUntil)
}

// State returns the endpoint's breaker state as this node sees it.
func (bs *breakers) State(id string) string {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if b := bs.m[id]; b != nil {
		if b.state == BreakerOpen && !bs.now().Before(b.openUntil) {
			return BreakerHalfOpen
		}
		return b.state
	}
	return BreakerClosed
}
