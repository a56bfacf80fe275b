package dispatch

import (
	"sync"
	"time"
)

// BreakerConfig configures the per-endpoint circuit breakers. Zero values
// take the defaults.
type BreakerConfig struct {
	// ConsecutiveFailures opens the breaker after this many failed attempts
	// in a row (default 10).
	ConsecutiveFailures int
	// FailureRatio opens the breaker when at least this share of the last
	// Window attempts failed (default 0.5 over 20).
	FailureRatio float64
	Window       int
	// OpenFor is how long the breaker stays open the first time; each
	// failed probe doubles it, up to MaxOpenFor (defaults 10 s and 5 min).
	OpenFor    time.Duration
	MaxOpenFor time.Duration
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
	return c
}

// Breaker states, as the API and logs name them.
const (
	BreakerClosed   = "closed"
	BreakerOpen     = "open"
	BreakerHalfOpen = "half-open"
)

// breaker is one endpoint's circuit breaker.
type breaker struct {
	state       string
	consecutive int    // failures in a row
	window      []bool // last outcomes, true = failed; a ring of size Window
	next        int    // where the next outcome goes in window
	filled      int
	failed      int // failures in window
	openFor     time.Duration
	openUntil   time.Time
	probing     bool // a half-open probe is in flight
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
		b = &breaker{state: BreakerClosed, window: make([]bool, bs.cfg.Window), openFor: bs.cfg.OpenFor}
		bs.m[id] = b
	}
	return b
}

// allow reports whether a delivery to the endpoint may be sent now. When it
// may not, deferUntil is when the delivery should be due again. In the
// half-open state exactly one delivery, the probe, is allowed; probe says
// that this is it, and its outcome must be recorded with probe set.
func (bs *breakers) allow(id string) (ok bool, deferUntil time.Time, probe bool) {
	if bs.cfg.Disabled {
		return true, time.Time{}, false
	}
	bs.mu.Lock()
	defer bs.mu.Unlock()
	b := bs.m[id]
	if b == nil {
		return true, time.Time{}, false
	}
	now := bs.now()
	switch b.state {
	case BreakerOpen:
		if now.Before(b.openUntil) {
			return false, b.openUntil, false
		}
		b.state = BreakerHalfOpen
		b.probing = false
		fallthrough
	case BreakerHalfOpen:
		if b.probing {
			return false, now.Add(b.openFor), false
		}
		b.probing = true
		return true, time.Time{}, true
	}
	return true, time.Time{}, false
}

// record notes an attempt's outcome and reports whether it opened the
// breaker. Only the probe's outcome moves a half-open breaker; outcomes of
// attempts that started before the breaker opened are ignored while it is
// open or half-open.
func (bs *breakers) record(id string, failed, probe bool) (opened bool) {
	if bs.cfg.Disabled {
		return false
	}
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if !failed && bs.m[id] == nil {
		return false // healthy endpoints need no state
	}
	b := bs.get(id)
	if b.state == BreakerHalfOpen {
		if !probe {
			return false // a late outcome of an attempt from before the breaker opened
		}
		b.probing = false
		if failed {
			b.openFor = min(2*b.openFor, bs.cfg.MaxOpenFor)
			bs.open(b)
			return true
		}
		b.state = BreakerClosed
		b.reset(bs.cfg.OpenFor)
		b.ramp = 1
		return false
	}
	if b.state == BreakerOpen {
		return false // an attempt that started before the breaker opened
	}
	if b.filled == len(b.window) && b.window[b.next] {
		b.failed--
	}
	b.window[b.next] = failed
	b.next = (b.next + 1) % len(b.window)
	b.filled = min(b.filled+1, len(b.window))
	if failed {
		b.failed++
		b.consecutive++
	} else {
		b.consecutive = 0
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
	}
	if b.consecutive >= bs.cfg.ConsecutiveFailures ||
		(b.filled == len(b.window) && float64(b.failed) >= bs.cfg.FailureRatio*float64(len(b.window))) {
		bs.open(b)
		return true
	}
	return false
}

func (bs *breakers) open(b *breaker) {
	b.state = BreakerOpen
	b.openUntil = bs.now().Add(b.openFor)
	b.ramp = 0
	b.consecutive = 0
	clear(b.window)
	b.filled, b.failed, b.next = 0, 0, 0
}

func (b *breaker) reset(openFor time.Duration) {
	b.consecutive = 0
	clear(b.window)
	b.filled, b.failed, b.next = 0, 0, 0
	b.openFor = openFor
}

// capFor is the endpoint's concurrency cap now: the normal cap, the ramp
// after a recovery, or one while half-open.
func (bs *breakers) capFor(id string) int {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	b := bs.m[id]
	switch {
	case b == nil:
		return bs.perEndpoint
	case b.state != BreakerClosed:
		return 1
	case b.ramp > 0:
		return b.ramp
	}
	return bs.perEndpoint
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
