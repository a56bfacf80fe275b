// Package dispatch delivers messages: it claims due deliveries under a
// lease, sends them through a fair per-endpoint scheduler, records every
// attempt, schedules retries and returns the deliveries of crashed nodes to
// the queue.
package dispatch

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/herald-webhooks/herald"
	"github.com/herald-webhooks/herald/backoff"
	"github.com/herald-webhooks/herald/destination"
	"github.com/herald-webhooks/herald/internal/ttlcache"
	"github.com/herald-webhooks/herald/telemetry"
)

// Store is what the dispatcher needs of the database.
type Store interface {
	// ClaimDue leases due deliveries with their messages: oldest due
	// first, or with PerApp (as the dispatcher claims) applications in
	// turns.
	ClaimDue(ctx context.Context, opts herald.ClaimOptions) ([]herald.Claim, error)
	// RecordAttempts writes attempts and the deliveries' next states in one
	// transaction, skipping deliveries whose lease the owner lost.
	RecordAttempts(ctx context.Context, outcomes []herald.AttemptOutcome) error
	// ReleaseDeliveries returns leased deliveries to pending, due at now,
	// without counting an attempt.
	ReleaseDeliveries(ctx context.Context, owner string, claims []herald.LeaseRef, now time.Time) error
	// RescueExpired returns up to limit deliveries whose lease expired
	// before now to pending, and reports how many.
	RescueExpired(ctx context.Context, now time.Time, limit int) (int, error)
	GetEndpoint(ctx context.Context, appID, ref string) (*herald.Endpoint, error)
	GetApplication(ctx context.Context, ref string) (*herald.Application, error)
}

// Config configures a Dispatcher. Zero values take the defaults.
type Config struct {
	Store  Store
	Sender *Sender
	// Publishers publish to the endpoints whose URL is a broker's (nats,
	// redis …); their attempts fail when nil. The caller closes them after
	// Run returns.
	Publishers *destination.Publishers
	// Policy is the retry schedule; DefaultSchedule with ±20% jitter when
	// its Schedule is empty.
	Policy backoff.Policy
	// Owner names this node in leases; a random name by default.
	Owner string
	// Workers is the most deliveries in flight at once (default 256).
	Workers int
	// PerEndpoint is the most deliveries in flight to one endpoint
	// (default 8). An endpoint whose attempts time out or fail to connect
	// gets less, down to 1, and wins it back one success at a time.
	PerEndpoint int
	// AppWorkerShare is the share of Workers the endpoints of one
	// application may hold at once (default 0.5; at least PerEndpoint
	// workers): the others stay free for other applications whatever one
	// application's endpoints do. 1 turns the cap off.
	AppWorkerShare float64
	// ClaimBatch is the most deliveries claimed per query (default 512).
	ClaimBatch int
	// RequestTimeout is the sender's timeout; it sizes the lease.
	RequestTimeout time.Duration
	// Lease is how long a claimed delivery stays with this node without
	// news (default 4 × RequestTimeout + 30 s).
	Lease time.Duration
	// PollInterval is how often the database is polled for due retries
	// when nothing wakes the dispatcher (default 500 ms).
	PollInterval time.Duration
	// ShutdownTimeout bounds how long Run waits for sends in flight after
	// its context ends (default 10 s).
	ShutdownTimeout time.Duration
	// Breaker configures the per-endpoint circuit breakers.
	Breaker BreakerConfig
	// DisableAfter disables an endpoint whose every attempt has failed for
	// this long (its FailingSince); 0 never does. herald serve defaults it
	// to 5 days (--disable-after).
	DisableAfter time.Duration
	Logger       *slog.Logger
	Now          func() time.Time
	// Metrics receive the delivery metrics; discarded when nil.
	Metrics *telemetry.Metrics
	// Tracer starts a span for each attempt, a child of the message's
	// stored traceparent; a no-op tracer when nil.
	Tracer trace.Tracer
	// SharedRateLimits, when set, holds applications' and endpoints'
	// rateLimit across every node on the database: each node takes tokens
	// from it in chunks of about 100 ms worth. Nil (SQLite, one node):
	// the Store's when it is a TokenStore, else local buckets.
	SharedRateLimits TokenStore

	// Nodes, when set (PostgreSQL), is where this node registers under
	// Owner (with Node's version, host, PID and start time), renews its
	// heartbeat every NodeHeartbeat (default 3 s) and takes over nodes
	// whose heartbeat is older than NodeTimeout (default 15 s); see
	// liveness.go. Nil: one process owns the database (SQLite).
	Nodes         herald.NodeStore
	Node          herald.Node
	NodeHeartbeat time.Duration
	NodeTimeout   time.Duration
}

// Dispatcher delivers pending deliveries. Create it with New and run it
// with Run.
type Dispatcher struct {
	cfg      Config
	sched    *scheduler
	breakers *breakers
	adaptive *adaptive
	wake     chan struct{}
	// fresh is set when deliveries were stored pending or became
	// claimable since the claimer last looked (NotifyQueued), so that a
	// claim is worth trying although the last one found nothing.
	fresh    atomic.Bool
	outcomes chan herald.AttemptOutcome
	log      *slog.Logger
	running  atomic.Bool

	endpoints *ttlcache.Cache[*herald.Endpoint] // changes reach the dispatcher within cacheTTL
	apps      *ttlcache.Cache[*herald.Application]
	limits    *limiters
	fifo      fifoWaits     // outcomes of FIFO deliveries not yet written
	linger    time.Duration // recordLinger; tests lengthen it
	live      *liveness

	leaseMu   sync.Mutex
	lastLease time.Time // the latest lease expiry handed out (see leaseUntil)

	// unreleased holds claims whose release failed because the store was
	// unavailable; releaseLoop tries them again (see release).
	unreleasedMu sync.Mutex
	unreleased   []herald.Claim
}

// New checks cfg, fills defaults and returns a dispatcher.
func New(cfg Config) (*Dispatcher, error) {
	if cfg.Store == nil || cfg.Sender == nil {
		return nil, errors.New("dispatch: Store and Sender are required")
	}
	if cfg.Policy.Schedule == nil {
		cfg.Policy.Schedule = backoff.DefaultSchedule
		cfg.Policy.Jitter = 0.2
	}
	if cfg.Owner == "" {
		cfg.Owner = defaultOwner()
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 256
	}
	if cfg.PerEndpoint <= 0 {
		cfg.PerEndpoint = 8
	}
	if cfg.AppWorkerShare <= 0 || cfg.AppWorkerShare > 1 {
		cfg.AppWorkerShare = DefaultAppWorkerShare
	}
	if cfg.ClaimBatch <= 0 {
		cfg.ClaimBatch = 512
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 15 * time.Second
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 4*cfg.RequestTimeout + 30*time.Second
	}
	if cfg.Lease < cfg.RequestTimeout+leaseMargin+time.Second {
		// A shorter lease would expire before a claimed delivery could be
		// sent: workers would release every claim.
		return nil, fmt.Errorf("dispatch: lease %v must exceed the request timeout %v by more than %v", cfg.Lease, cfg.RequestTimeout, leaseMargin)
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 500 * time.Millisecond
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Metrics == nil {
		cfg.Metrics = telemetry.Discard()
	}
	if cfg.Tracer == nil {
		cfg.Tracer = noop.NewTracerProvider().Tracer("")
	}
	if ts, ok := cfg.Store.(TokenStore); ok && cfg.SharedRateLimits == nil {
		cfg.SharedRateLimits = ts
	}
	if cfg.Breaker.SlowAnswer <= 0 {
		cfg.Breaker.SlowAnswer = cfg.RequestTimeout / 2
	}
	if cfg.NodeHeartbeat <= 0 {
		cfg.NodeHeartbeat = DefaultNodeHeartbeat
	}
	if cfg.NodeTimeout <= 0 {
		cfg.NodeTimeout = DefaultNodeTimeout
	}
	if cfg.NodeTimeout < 3*cfg.NodeHeartbeat || cfg.NodeTimeout < 2*livenessMargin {
		return nil, fmt.Errorf("dispatch: node timeout %v must be at least 3 heartbeats (%v) and at least %v", cfg.NodeTimeout, cfg.NodeHeartbeat, 2*livenessMargin)
	}
	bs := newBreakers(cfg.Breaker, cfg.PerEndpoint, cfg.Now)
	cfg.Metrics.ObserveOpenBreakers(bs.openCount)
	ad := newAdaptive(cfg.PerEndpoint)
	sched := newScheduler(cfg.PerEndpoint, cfg.Workers, func(id string) int { return min(bs.capFor(id), ad.get(id)) })
	sched.appCap = appCap(cfg.Workers, cfg.PerEndpoint, cfg.AppWorkerShare)
	sched.appBacklog = cmp.Or(sched.appCap, cfg.Workers)
	log := cfg.Logger.With("component", "dispatch", "owner", cfg.Owner)
	return &Dispatcher{
		cfg:       cfg,
		breakers:  bs,
		adaptive:  ad,
		sched:     sched,
		wake:      make(chan struct{}, 1),
		outcomes:  make(chan herald.AttemptOutcome, cfg.Workers),
		linger:    recordLinger,
		live:      newLiveness(cfg.Nodes == nil),
		log:       log,
		endpoints: &ttlcache.Cache[*herald.Endpoint]{TTL: cacheTTL},
		apps:      &ttlcache.Cache[*herald.Application]{TTL: cacheTTL},
		limits: newLimiters(cfg.SharedRateLimits, func(key string, err error) {
			log.Warn("take shared rate-limit tokens; deferring", "key", key, "err", err)
		}),
	}, nil
}

// DefaultAppWorkerShare is the share of the workers one application's
// endpoints may hold at once unless Config.AppWorkerShare says otherwise.
const DefaultAppWorkerShare = 0.5

// appCap is the most deliveries of one application in flight at once:
// share of the workers, at least one endpoint's concurrency (so a small
// pool still serves one endpoint at full speed) and at most all of them;
// 0 (no cap) when that is every worker.
func appCap(workers, perEndpoint int, share float64) int {
	n := min(max(int(float64(workers)*share), perEndpoint, 1), workers)
	if n >= workers {
		return 0
	}
	return n
}

func defaultOwner() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// EndpointState returns the circuit breaker state of an endpoint as this
// node sees it: BreakerClosed, BreakerOpen or BreakerHalfOpen.
func (d *Dispatcher) EndpointState(endpointID string) string { return d.breakers.State(endpointID) }

// Owner returns the name this dispatcher leases deliveries under.
func (d *Dispatcher) Owner() string { return d.cfg.Owner }

// Running reports whether Run is delivering: false before it starts and
// from the moment its context ends (the readiness check "dispatcher").
func (d *Dispatcher) Running() bool { return d.running.Load() }

// Notify tells the dispatcher that new deliveries were committed, so it
// claims them now instead of at the next poll. It never blocks.
func (d *Dispatcher) Notify() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Lease returns the lease under which ingest stores new deliveries so they
// come straight to this dispatcher (see Enqueue), or the zero lease when the
// dispatcher is not running or already has two rounds of work queued: then
// the deliveries are stored pending and claimed from the database when
// there is room.
func (d *Dispatcher) Lease() herald.Lease {
	if !d.running.Load() || d.sched.len() >= 2*d.cfg.Workers {
		return herald.Lease{}
	}
	return herald.Lease{Owner: d.cfg.Owner, Until: d.leaseUntil(d.cfg.Now())}
}

// leaseUntil returns the expiry of a lease taken at now: now + Lease, in
// whole microseconds (as both stores keep it), and always later than every
// expiry this dispatcher handed out before. The expiry is the claim's
// token (herald.LeaseRef): two claims of one delivery by this owner thus
// never share it, even when the clock stands still or steps back, and a
// late outcome or release of the first never applies to the second.
func (d *Dispatcher) leaseUntil(now time.Time) time.Time {
	d.leaseMu.Lock()
	defer d.leaseMu.Unlock()
	u := now.Add(d.cfg.Lease).Truncate(time.Microsecond)
	if !u.After(d.lastLease) {
		u = d.lastLease.Add(time.Microsecond)
	}
	d.lastLease = u
	return u
}

// NotifyQueued is Notify for news of deliveries stored pending or made
// due (ingest's unleased commits, resend, recover, replay, rescued leases,
// another node's work): the dispatcher claims even if its last claim,
// skipping the same endpoints and applications, found nothing, since a
// claim in applications' turns finds another application's new
// deliveries whatever the skipped ones' backlog. Wake-ups without such
// news (Notify: the workers running low, released overflow of skipped
// endpoints) do not claim again behind the same skips. It never blocks.
func (d *Dispatcher) NotifyQueued() {
	d.fresh.Store(true)
	d.Notify()
}

// Enqueue takes the results of a committed ingest batch: deliveries leased
// to this dispatcher go to the workers at once, without a database round
// trip; if any were stored unleased, the claimer is woken for them.
func (d *Dispatcher) Enqueue(results []herald.MessageResult) {
	var claims []herald.Claim
	unleased := false
	for _, res := range results {
		for _, dl := range res.Deliveries {
			if dl.Status == herald.DeliverySending && dl.LeaseOwner == d.cfg.Owner {
				claims = append(claims, herald.Claim{Delivery: dl, Message: res.Message})
			} else {
				unleased = true
			}
		}
	}
	// Deliveries beyond their endpoint's share, or for an endpoint whose
	// breaker is open, go back to the database for later.
	if overflow := d.sched.push(claims, d.breakers.isOpen); len(overflow) > 0 {
		d.release(overflow)
		d.Notify()
	}
	if unleased {
		d.NotifyQueued()
	}
}

// Run delivers until ctx ends. Then it stops claiming, lets sends in flight
// finish within ShutdownTimeout, records their outcomes, releases the
// deliveries it claimed but did not start, and returns.
//
// With Nodes it first registers the node (an error if it cannot), and
// deregisters it at the end. If other nodes take this one over, it stops
// at once: it cuts the sends in flight, records no outcome, releases
// nothing (none of it is this node's any more) and returns ErrTakenOver.
func (d *Dispatcher) Run(ctx context.Context) error {
	// Sends get their own context so that shutdown lets them finish; it is
	// cancelled only at the shutdown deadline.
	sendCtx, cancelSends := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSends()

	if d.cfg.Nodes != nil {
		if err := d.register(ctx); err != nil {
			return err
		}
	}
	ctx, stopRun := context.WithCancel(ctx)
	defer stopRun()

	d.running.Store(true)
	defer d.running.Store(false)

	var workers sync.WaitGroup
	for range d.cfg.Workers {
		workers.Go(func() { d.work(sendCtx) })
	}
	recorderDone := make(chan struct{})
	go func() {
		defer close(recorderDone)
		d.record()
	}()
	var loops sync.WaitGroup
	loops.Go(func() { d.claimLoop(ctx) })
	loops.Go(func() { d.rescueLoop(ctx) })
	loops.Go(func() { d.releaseLoop(ctx) })
	if d.cfg.Nodes != nil {
		loops.Go(func() {
			d.heartbeatLoop(ctx, func() {
				d.running.Store(false) // ingest leases nothing more to this node
				cancelSends()
				stopRun()
			})
		})
	}

	<-ctx.Done()
	d.running.Store(false)
	loops.Wait()
	left := d.sched.close()
	gone := d.live.isGone()
	if !gone {
		d.release(left)
	}

	finished := make(chan struct{})
	go func() {
		workers.Wait()
		close(finished)
	}()
	timer := time.NewTimer(d.cfg.ShutdownTimeout)
	defer timer.Stop()
	select {
	case <-finished:
	case <-timer.C:
		d.log.Warn("sends still in flight at the shutdown deadline were cut; their deliveries are returned to the queue without counting an attempt")
		cancelSends()
		<-finished
	}
	close(d.outcomes)
	<-recorderDone
	if gone {
		return ErrTakenOver
	}
	if d.cfg.Nodes != nil {
		d.deregister()
	}
	return nil
}

// release returns unstarted claims to the queue for any node to take.
// While the dispatcher runs, a release that fails because the store is
// unavailable (an outage, a failover, a partition) is tried again every
// storeRetryMax until it succeeds or the claims' leases expire, so the
// deliveries come back when the database does, not after their whole
// lease (90 s by default).
func (d *Dispatcher) release(claims []herald.Claim) {
	if len(claims) == 0 {
		return
	}
	err := d.releaseNow(claims)
	switch {
	case err == nil:
	case herald.ErrorCode(err) == herald.EUNAVAILABLE && d.running.Load():
		d.log.Warn("release unstarted deliveries; retrying until the database is back or their leases expire", "count", len(claims), "err", err)
		d.unreleasedMu.Lock()
		d.unreleased = append(d.unreleased, claims...)
		d.unreleasedMu.Unlock()
	default:
		d.log.Warn("release unstarted deliveries; they return when their lease expires", "count", len(claims), "err", err)
	}
}

// releaseNow returns claims to the queue in one store call.
func (d *Dispatcher) releaseNow(claims []herald.Claim) error {
	refs := make([]herald.LeaseRef, len(claims))
	for i, c := range claims {
		refs[i] = herald.LeaseRef{DeliveryID: c.Delivery.ID, Until: c.Delivery.LeaseExpiresAt}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return d.cfg.Store.ReleaseDeliveries(ctx, d.cfg.Owner, refs, d.cfg.Now())
}

// releaseLoop tries the releases that failed again every storeRetryMax
// until ctx ends.
func (d *Dispatcher) releaseLoop(ctx context.Context) {
	ticker := time.NewTicker(storeRetryMax)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		d.unreleasedMu.Lock()
		claims := d.unreleased
		d.unreleased = nil
		d.unreleasedMu.Unlock()
		if len(claims) == 0 || d.live.isGone() {
			continue // taken over: the claims are other nodes' now
		}
		// Past its lease a claim is the rescuer's: the release, which
		// names the claim, would change nothing.
		now := d.cfg.Now()
		claims = slices.DeleteFunc(claims, func(c herald.Claim) bool { return !c.Delivery.LeaseExpiresAt.After(now) })
		if len(claims) == 0 {
			continue
		}
		if err := d.releaseNow(claims); err != nil {
			if herald.ErrorCode(err) != herald.EUNAVAILABLE {
				d.log.Warn("release unstarted deliveries; they return when their lease expires", "count", len(claims), "err", err)
				continue
			}
			d.unreleasedMu.Lock()
			d.unreleased = append(d.unreleased, claims...)
			d.unreleasedMu.Unlock()
			continue
		}
		d.log.Info("released deliveries after the database came back", "count", len(claims))
		d.NotifyQueued()
	}
}

// claimLoop claims due deliveries whenever it is woken or polls, keeping
// the scheduler's queue about two rounds of the workers deep.
func (d *Dispatcher) claimLoop(ctx context.Context) {
	ticker := time.NewTicker(d.cfg.PollInterval)
	defer ticker.Stop()
	highWater := 2 * d.cfg.Workers
	failures := 0
	var lastShort time.Time // when a claim last came back with less than it asked for
	// blocked is what a claim that came back empty skipped.
	var blocked queueDepth
	for {
		full := false
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
			// Workers wake the claimer whenever the queue runs low; after a
			// claim that found less than it asked for, more wake-ups in
			// quick succession would find nothing new either.
			if wait := claimGap - time.Since(lastShort); wait > 0 {
				sleep(ctx, wait)
			}
		case <-ticker.C:
			full = true
		}
		for ctx.Err() == nil {
			fresh := d.fresh.Swap(false)
			q := d.sched.depth(1000)
			saturated := append(q.endpoints, d.breakers.openEndpoints(1000)...)
			slices.Sort(saturated)
			// The saturated applications' queued jobs take no room:
			// the claim leaves those applications, and their backlog
			// must not keep the others' deliveries in the database.
			room := min(d.cfg.ClaimBatch, highWater-(q.queued-q.held))
			if room <= 0 || !d.live.alive() {
				// Full, or this node's heartbeat is overdue: what it
				// claimed now might be another node's by the time it
				// could be sent.
				break
			}
			if !full && !fresh && (len(saturated) > 0 || len(q.apps) > 0) &&
				slices.Equal(saturated, blocked.endpoints) && slices.Equal(q.apps, blocked.apps) {
				// The last claim skipped these endpoints and
				// applications and found nothing else; nothing was
				// stored since and they are still skipped, so it would
				// come back empty again. Wait until one of them has room,
				// for news of work, or for the next poll.
				break
			}
			now := d.cfg.Now()
			opts := herald.ClaimOptions{
				Owner: d.cfg.Owner, Now: now, LeaseUntil: d.leaseUntil(now),
				Limit: room, SkipEndpoints: saturated,
				// Applications take turns, and those with a round of
				// their workers queued here already are left alone: one
				// application's backlog, however long, delays another's
				// deliveries by a claim at most.
				PerApp: room, SkipApps: q.apps,
			}
			if !full {
				// Between polls a claim reads a bounded window of each
				// application's due deliveries, so its cost does not grow
				// with a backlog of skipped endpoints; each poll reads
				// all that is due, so nothing waits behind such a backlog
				// longer than a poll interval.
				opts.Window = room // nothing skipped: the head is all claimable
				if len(saturated) > 0 {
					opts.Window = max(claimWindowFactor*room, minClaimWindow)
				}
				opts.PerEndpoint = d.sched.maxShare / 2
			}
			full = false
			claims, err := d.cfg.Store.ClaimDue(ctx, opts)
			blocked = queueDepth{}
			if err == nil && len(claims) == 0 {
				blocked = queueDepth{endpoints: saturated, apps: q.apps}
			}
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				failures++
				d.log.Warn("claim deliveries", "err", err, "failures", failures)
				sleep(ctx, min(time.Duration(failures)*200*time.Millisecond, 5*time.Second))
				break
			}
			failures = 0
			if overflow := d.sched.push(claims, d.breakers.isOpen); len(overflow) > 0 {
				// One endpoint's rows filled the batch beyond its share:
				// give them back; the next claim skips that endpoint.
				d.release(overflow)
				if ctx.Err() != nil || d.sched.isClosed() {
					return
				}
			}
			if len(claims) < room {
				lastShort = time.Now()
				break
			}
		}
	}
}

// Claim pacing: claimGap is the least time between wake-up claims after a
// claim came back short; a windowed claim that skips endpoints reads
// claimWindowFactor times the rows it may take, and at least
// minClaimWindow (one that skips none reads as many as it may take).
const (
	claimGap          = 5 * time.Millisecond
	claimWindowFactor = 4
	minClaimWindow    = 256
)

// rescueLoop returns deliveries of crashed nodes (expired leases) to the
// queue.
func (d *Dispatcher) rescueLoop(ctx context.Context) {
	interval := min(d.cfg.Lease/4, 30*time.Second)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		n, err := d.cfg.Store.RescueExpired(ctx, d.cfg.Now(), 1000)
		if err != nil {
			if ctx.Err() == nil {
				d.log.Warn("rescue expired leases", "err", err)
			}
			continue
		}
		if n > 0 {
			d.log.Info("returned deliveries with expired leases to the queue", "count", n)
			d.NotifyQueued()
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
