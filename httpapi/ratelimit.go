package httpapi

import (
	"context"
	"crypto/sha256"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/access"
	"github.com/herald-webhooks/herald/telemetry"
)

// TokenTaker is a token bucket shared by every node on one database
// (PostgreSQL's rate_bucket; the dispatcher's TokenStore is the same
// verb). With one, the API's per-credential rate limit holds across the
// cluster.
type TokenTaker interface {
	// TakeTokens takes up to want tokens from the bucket of key, refilled
	// at perSecond up to burst, and returns how many it got (0 to want).
	TakeTokens(ctx context.Context, key string, perSecond, burst float64, want int, now time.Time) (granted int, err error)
}

// BucketSweeper deletes the shared token buckets of a key prefix that
// nobody has taken from since before (PostgreSQL's rate_bucket rows).
type BucketSweeper interface {
	DeleteIdleRateBuckets(ctx context.Context, prefix string, before time.Time) (int, error)
}

// API rate limits.
const (
	// DefaultAPIRateLimit is --api-rate-limit's default, in requests per
	// second per credential: above what one node ingests (the benchmarks
	// top out at a few thousand messages a second per node on two cores),
	// so an upgrade never throttles a legitimate sender; it bounds what one
	// credential takes from a cluster. Operators who hand out portal tokens
	// set a lower one.
	DefaultAPIRateLimit = 10000
	// DefaultAPIRateBurstSeconds is the burst when Config.APIRateBurst is
	// 0: this many seconds' worth of the rate, so a client may catch up
	// after a pause without being refused.
	DefaultAPIRateBurstSeconds = 2

	// apiSharedChunk is how much of a credential's rate a node takes from
	// the shared bucket at once (the dispatcher takes the same). A node
	// holds at most 1.5 chunks in hand, so the cluster's total stays
	// within the rate and burst plus 150 ms worth per node.
	apiSharedChunk = 100 * time.Millisecond
	// apiStoreDown is how long a credential's bucket is kept on this node
	// alone after the shared bucket could not be read.
	apiStoreDown = time.Second
	// apiTakeTimeout bounds a background take from the shared bucket.
	apiTakeTimeout = 5 * time.Second
	// maxKeyBuckets bounds the per-credential table of a node.
	maxKeyBuckets = 100_000
	// sharedKeyPrefix names the API's rows in the shared table, apart
	// from the dispatcher's (application and endpoint IDs).
	sharedKeyPrefix = "api:"
	// apiSweepEvery is how often a node deletes the shared buckets idle
	// for apiSweepIdle or longer (and at least long enough to refill):
	// one row per credential ever used would stay otherwise.
	apiSweepEvery = time.Hour
	apiSweepIdle  = time.Hour

	// DefaultAuthFailureBurst is --api-auth-failure-burst's default.
	DefaultAuthFailureBurst = 20
	// Failed authentications per client address: a burst (Config's
	// AuthFailureBurst), then one per authFailEvery. An address past it
	// gets 429 without its token being looked up, except for tokens that
	// authenticated on this node in the last goodTokenTTL (many customers
	// behind one NAT: failures are limited, not successes).
	authFailEvery = time.Second
	maxFailAddrs  = 10_000
	goodTokenTTL  = 10 * time.Minute
	maxGoodTokens = 10_000
)

// keyLimits are the token buckets of the credentials that call the API:
// on this node alone (local), or, with a TokenTaker, the cluster's shared
// buckets, taken in chunks into a hand spent locally so that most
// requests cost no database round trip.
type keyLimits struct {
	perSecond float64
	burst     int
	chunk     int // tokens taken from the shared bucket at once
	low       int // below this many in hand, the next chunk is taken in the background
	shared    TokenTaker
	sweeper   BucketSweeper // nil: no sweeping
	onError   func(error)
	fetches   sync.WaitGroup

	mu    sync.Mutex
	m     map[string]*keyBucket
	swept time.Time // the last sweep of idle shared buckets
}

// keyBucket is one credential's bucket on this node.
type keyBucket struct {
	mu    sync.Mutex
	local *rate.Limiter // the bucket without a TokenTaker; with one, while the store is down
	last  time.Time     // last request, for eviction
	// The shared bucket's part in this node's hand.
	hand     int
	fetching bool
	fetched  chan struct{} // closed when the take in flight lands
	// dryUntil: the shared bucket gave less than asked; once the hand is
	// spent, refuse until then without asking it again.
	dryUntil  time.Time
	localTill time.Time // the store failed: the local bucket decides until then
}

func newKeyLimits(perSecond float64, burst int, shared TokenTaker, onError func(error)) *keyLimits {
	chunk := max(1, int(math.Ceil(perSecond*apiSharedChunk.Seconds())))
	return &keyLimits{perSecond: perSecond, burst: burst, chunk: chunk, low: chunk / 2,
		shared: shared, onError: onError, m: make(map[string]*keyBucket)}
}

// allow takes one token of key's bucket at now; without one it returns how
// long until one may be there.
func (l *keyLimits) allow(ctx context.Context, key string, now time.Time) (time.Duration, bool) {
	b := l.bucket(key, now)
	if l.shared == nil {
		return l.allowLocal(b, now)
	}
	return l.allowShared(ctx, b, key, now)
}

func (l *keyLimits) allowLocal(b *keyBucket, now time.Time) (time.Duration, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.last = now
	if b.local.AllowN(now, 1) {
		return 0, true
	}
	missing := 1 - b.local.TokensAt(now)
	return time.Duration(missing / l.perSecond * float64(time.Second)), false
}

// allowShared spends a token from the hand, taking the next chunk in the
// background when the hand runs low and waiting for a take only when it is
// empty.
func (l *keyLimits) allowShared(ctx context.Context, b *keyBucket, key string, now time.Time) (time.Duration, bool) {
	b.mu.Lock()
	b.last = now
	if now.Before(b.localTill) {
		b.mu.Unlock()
		return l.allowLocal(b, now)
	}
	for range 2 { // a second round after a take landed
		if b.hand > 0 {
			b.hand--
			if b.hand < l.low && !b.fetching && !now.Before(b.dryUntil) {
				l.fetch(b, key, now)
			}
			b.mu.Unlock()
			return 0, true
		}
		if now.Before(b.dryUntil) {
			d := b.dryUntil.Sub(now)
			b.mu.Unlock()
			return d, false
		}
		if !b.fetching {
			l.fetch(b, key, now)
		}
		ch := b.fetched
		b.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return apiSharedChunk, false
		}
		b.mu.Lock()
		if now.Before(b.localTill) {
			b.mu.Unlock()
			return l.allowLocal(b, now)
		}
	}
	b.mu.Unlock()
	return apiSharedChunk, false
}

// fetch takes a chunk from the shared bucket in the background; b.mu is
// held. The take lands in the hand and closes b.fetched.
func (l *keyLimits) fetch(b *keyBucket, key string, now time.Time) {
	b.fetching = true
	ch := make(chan struct{})
	b.fetched = ch
	l.fetches.Add(1)
	go func() {
		defer l.fetches.Done()
		ctx, cancel := context.WithTimeout(context.Background(), apiTakeTimeout)
		granted, err := l.shared.TakeTokens(ctx, sharedKeyPrefix+key, l.perSecond, float64(l.burst), l.chunk, now)
		cancel()
		b.mu.Lock()
		b.fetching = false
		b.hand += granted
		switch {
		case err != nil:
			// The limit is kept on this node alone meanwhile: a database
			// outage neither opens the API wide nor closes it.
			b.localTill = now.Add(apiStoreDown)
		case granted < l.chunk:
			tick := time.Duration(float64(time.Second) / l.perSecond)
			b.dryUntil = now.Add(max(tick, apiSharedChunk))
		}
		b.mu.Unlock()
		close(ch)
		if err != nil && l.onError != nil {
			l.onError(err)
		}
		if err == nil {
			l.sweep(now)
		}
	}()
}

// sweep deletes the shared buckets idle long enough to have refilled, at
// most once per apiSweepEvery; it runs in a take's goroutine.
func (l *keyLimits) sweep(now time.Time) {
	if l.sweeper == nil {
		return
	}
	l.mu.Lock()
	due := l.swept.IsZero() || now.Sub(l.swept) >= apiSweepEvery
	if due {
		l.swept = now
	}
	l.mu.Unlock()
	if !due {
		return
	}
	refill := time.Duration(float64(l.burst)/l.perSecond*float64(time.Second)) + time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), apiTakeTimeout)
	defer cancel()
	if _, err := l.sweeper.DeleteIdleRateBuckets(ctx, sharedKeyPrefix, now.Add(-max(apiSweepIdle, refill))); err != nil && l.onError != nil {
		l.onError(err)
	}
}

// bucket returns key's bucket, creating it. A full table first forgets
// the buckets idle for a while (a new bucket starts full, so an idle one
// holds nothing worth keeping), then, if that is not enough, any tenth.
func (l *keyLimits) bucket(key string, now time.Time) *keyBucket {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b := l.m[key]; b != nil {
		return b
	}
	if len(l.m) >= maxKeyBuckets {
		idle := now.Add(-time.Duration(float64(l.burst)/l.perSecond*float64(time.Second)) - time.Minute)
		for k, b := range l.m {
			b.mu.Lock()
			if !b.fetching && b.last.Before(idle) {
				delete(l.m, k)
			}
			b.mu.Unlock()
		}
		for k := range l.m {
			if len(l.m) < maxKeyBuckets*9/10 {
				break
			}
			delete(l.m, k)
		}
	}
	b := &keyBucket{local: rate.NewLimiter(rate.Limit(l.perSecond), l.burst), last: now}
	l.m[key] = b
	return b
}

// size is how many credentials the table holds.
func (l *keyLimits) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// limitKey is the bucket a principal's requests count against: its
// token's; a console or portal session's parent token's; the bootstrap
// admin token's (and its console sessions') one bucket, "admin".
func limitKey(p access.Principal) string {
	id := p.TokenID
	if p.Kind == herald.TokenSession {
		id = p.Parent
	}
	if id == "" {
		return "admin"
	}
	return id
}

// failLimits limit failed authentications per client address, in a
// bounded table, and remember (by hash) the tokens that authenticated
// lately, which an address past its limit may still use.
type failLimits struct {
	burst   int
	tracked atomic.Int64 // len(addrs): the hot path skips all of this while 0

	mu     sync.Mutex
	addrs  map[string]*rate.Limiter
	good   map[[32]byte]time.Time // token hash → last success
	pruned time.Time              // the last pass that dropped refilled addresses
}

func newFailLimits(burst int) *failLimits {
	return &failLimits{burst: burst, addrs: make(map[string]*rate.Limiter), good: make(map[[32]byte]time.Time)}
}

// active reports whether any address has failed lately.
func (f *failLimits) active() bool { return f.tracked.Load() > 0 }

// blocked reports whether addr is past its limit at now, and for how long.
// Once a minute it also drops the addresses whose bucket has refilled, so
// that the table empties, and the hot path skips it again, once failures
// stop.
func (f *failLimits) blocked(addr string, now time.Time) (time.Duration, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if now.Sub(f.pruned) >= time.Minute {
		f.pruned = now
		f.dropRefilled(now)
	}
	lim := f.addrs[addr]
	if lim == nil {
		return 0, false
	}
	tokens := lim.TokensAt(now)
	if tokens >= 1 {
		return 0, false
	}
	return time.Duration((1 - tokens) * float64(authFailEvery)), true
}

// failed counts one failed authentication of addr at now.
func (f *failLimits) failed(addr string, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	lim := f.addrs[addr]
	if lim == nil {
		if len(f.addrs) >= maxFailAddrs {
			f.evict(now)
		}
		lim = rate.NewLimiter(rate.Every(authFailEvery), f.burst)
		f.addrs[addr] = lim
		f.tracked.Store(int64(len(f.addrs)))
	}
	lim.AllowN(now, 1)
}

// evict makes room in a full address table: addresses whose bucket has
// refilled go first (they hold nothing), then any, down to nine tenths;
// f.mu is held.
func (f *failLimits) evict(now time.Time) {
	f.dropRefilled(now)
	for k := range f.addrs {
		if len(f.addrs) < maxFailAddrs*9/10 {
			break
		}
		delete(f.addrs, k)
	}
	f.tracked.Store(int64(len(f.addrs)))
}

// dropRefilled forgets the addresses whose bucket has refilled: they
// hold nothing a new bucket would not; f.mu is held.
func (f *failLimits) dropRefilled(now time.Time) {
	for k, lim := range f.addrs {
		if lim.TokensAt(now) >= float64(f.burst) {
			delete(f.addrs, k)
		}
	}
	f.tracked.Store(int64(len(f.addrs)))
}

// succeeded remembers that the token of hash authenticated from addr, if
// addr has failures on record (only then may it be needed).
func (f *failLimits) succeeded(addr string, hash [32]byte, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.addrs[addr] == nil {
		return
	}
	if _, ok := f.good[hash]; !ok && len(f.good) >= maxGoodTokens {
		// Full: the expired go, then any, down to nine tenths.
		for k, at := range f.good {
			if now.Sub(at) >= goodTokenTTL {
				delete(f.good, k)
			}
		}
		for k := range f.good {
			if len(f.good) < maxGoodTokens*9/10 {
				break
			}
			delete(f.good, k)
		}
	}
	f.good[hash] = now
}

// trusted reports whether the token of hash authenticated lately.
func (f *failLimits) trusted(hash [32]byte, now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	at, ok := f.good[hash]
	return ok && now.Sub(at) < goodTokenTTL
}

// sizes are the address and good-token tables' lengths.
func (f *failLimits) sizes() (addrs, good int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.addrs), len(f.good)
}

// limitAddr is the failure limit's key of a client address: the address,
// or an IPv6 address's /64 (one host can hold a whole /64).
func limitAddr(client string) string {
	addr, err := netip.ParseAddr(client)
	if err != nil || !addr.Is6() || addr.Is4In6() {
		return client
	}
	p, _ := addr.Prefix(64)
	return p.String()
}

// retryAfter is a Retry-After value for d: whole seconds, at least 1.
func retryAfter(d time.Duration) string {
	return strconv.FormatInt(max(1, int64(math.Ceil(d.Seconds()))), 10)
}

// refuse answers 429 for limit l with Retry-After d: the handler is not
// called.
func (a *API) refuse(w http.ResponseWriter, l telemetry.APILimit, d time.Duration) {
	a.metrics.APIRateLimited(l)
	w.Header().Set("Retry-After", retryAfter(d))
	detail := "Too many requests with this token; retry later."
	if l == telemetry.APILimitAuthFailures {
		detail = "Too many failed authentications from this address; retry later."
	}
	writeErrorBody(w, http.StatusTooManyRequests, herald.ERATELIMIT, detail)
}

// tokenHash is the hash failLimits remember tokens by.
func tokenHash(token string) [32]byte { return sha256.Sum256([]byte(token)) }
