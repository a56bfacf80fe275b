package dispatch

import (
	"context"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// TokenStore is a token bucket shared by every node on one database, which
// makes rateLimit hold across the cluster (PostgreSQL's rate_bucket).
type TokenStore interface {
	// TakeTokens takes up to want tokens from the bucket of key, refilled
	// at perSecond up to burst, and returns how many it got (0 to want).
	TakeTokens(ctx context.Context, key string, perSecond, burst float64, want int, now time.Time) (granted int, err error)
}

// sharedChunk is how much of a rate a node takes from the shared bucket at
// once: about 100 ms worth, at least one token. Tokens in hand are spent
// locally, so a rate-limited key costs one small UPDATE per chunk per node.
const sharedChunk = 100 * time.Millisecond

// maxRateWait is the longest a worker waits for a rate limit's token; a
// delivery that would wait longer is deferred instead, so rate-limited
// endpoints do not hold workers for long.
const maxRateWait = time.Second

// limiters enforces applications' and endpoints' rateLimit (deliveries per
// second, burst of one second's worth): within this node with local token
// buckets, or across every node with shared ones when a TokenStore is set.
type limiters struct {
	mu      sync.Mutex
	m       map[string]*rate.Limiter // by application or endpoint ID
	shared  TokenStore               // nil: local buckets only
	buckets map[string]*sharedBucket // by application or endpoint ID, with shared
	onError func(key string, err error)
}

// sharedBucket is what this node holds of a key's shared bucket.
type sharedBucket struct {
	mu   sync.Mutex // held across a take from the store: one at a time per key
	hand int        // tokens taken from the store and not yet spent
	// next spaces the deferrals of this key one token apart, so a backlog
	// comes back at the rate it can be sent rather than all at once.
	next time.Time
}

func newLimiters(shared TokenStore, onError func(key string, err error)) *limiters {
	return &limiters{m: make(map[string]*rate.Limiter), shared: shared,
		buckets: make(map[string]*sharedBucket), onError: onError}
}

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
func (l *limiters) wait(ctx context.Context, now time.Time, keys []string, rates []*uint16) (delay time.Duration, ok bool) {
	if l.shared != nil {
		return l.take(ctx, now, keys, rates)
	}
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

// take spends one shared token of every given key (application, endpoint),
// from this node's hand or from the store. When a key has none to give, the
// tokens already taken for the others go back to the hand and the delivery
// should be deferred by delay. A store error defers too: the limit is never
// exceeded for want of the database.
func (l *limiters) take(ctx context.Context, now time.Time, keys []string, rates []*uint16) (delay time.Duration, ok bool) {
	var taken []*sharedBucket
	for i, key := range keys {
		if rates[i] == nil || *rates[i] == 0 {
			continue
		}
		b := l.bucket(key)
		if d, ok := l.takeOne(ctx, b, key, float64(*rates[i]), now); !ok {
			for _, t := range taken {
				t.mu.Lock()
				t.hand++
				t.mu.Unlock()
			}
			return d, false
		}
		taken = append(taken, b)
	}
	return 0, true
}

// bucket returns this node's share of key's bucket, creating it.
func (l *limiters) bucket(key string) *sharedBucket {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		b = &sharedBucket{}
		l.buckets[key] = b
	}
	return b
}

// takeOne spends a token of b, taking a chunk from the store when the hand
// is empty; without one it returns how long to defer.
func (l *limiters) takeOne(ctx context.Context, b *sharedBucket, key string, perSecond float64, now time.Time) (time.Duration, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.hand == 0 {
		want := max(1, int(math.Ceil(perSecond*sharedChunk.Seconds())))
		granted, err := l.shared.TakeTokens(ctx, key, perSecond, perSecond, want, now)
		if err != nil && l.onError != nil {
			l.onError(key, err)
		}
		b.hand = granted
	}
	if b.hand > 0 {
		b.hand--
		return 0, true
	}
	// Come back once a token may have been refilled, and after the
	// deliveries of this key already deferred.
	tick := time.Duration(float64(time.Second) / perSecond)
	until := now.Add(max(tick, sharedChunk))
	if b.next.After(until) {
		until = b.next
	}
	b.next = until.Add(tick)
	return until.Sub(now), false
}
