package dispatch

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxRateWait is the longest a worker waits for a rate limit's token; a
// delivery that would wait longer is deferred instead, so rate-limited
// endpoints do not hold workers for long.
const maxRateWait = time.Second

// limiters enforces applications' and endpoints' rateLimit (deliveries per
// second, burst of one second's worth) within this node.
type limiters struct {
	mu sync.Mutex
	m  map[string]*rate.Limiter // by application or endpoint ID
}

func newLimiters() *limiters { return &limiters{m: make(map[string]*rate.Limiter)} }

// reserve takes a token from the limiter of id at perSecond, creating or
// adjusting it; nil means unlimited.
func (l *limiters) reserve(id string, perSecond *uint16, now time.Time) *rate.Reservation {
	if perSecond == nil || *perSecond == 0 {
		return nil
	}
	limit := rate.Limit(*perSecond)
	l.mu.Lock()
	lim := l.m[id]
	if lim == nil {
		lim = rate.NewLimiter(limit, int(*perSecond))
		l.m[id] = lim
	} else if lim.Limit() != limit {
		lim.SetLimitAt(now, limit)
		lim.SetBurstAt(now, int(*perSecond))
	}
	l.mu.Unlock()
	return lim.ReserveN(now, 1)
}

// wait reserves a token from every given limiter (application, endpoint)
// and returns how long to wait before sending. ok is false when that is
// longer than maxRateWait: the tokens are given back and the delivery
// should be deferred by delay.
func (l *limiters) wait(now time.Time, keys []string, rates []*uint16) (delay time.Duration, ok bool) {
	var taken []*rate.Reservation
	for i, key := range keys {
		r := l.reserve(key, rates[i], now)
		if r == nil {
			continue
		}
		taken = append(taken, r)
		delay = max(delay, r.DelayFrom(now))
	}
	if delay <= maxRateWait {
		return delay, true
	}
	for _, r := range taken {
		r.CancelAt(now)
	}
	return delay, false
}
