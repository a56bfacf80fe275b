package dispatch

import (
	"slices"
	"sync"
	"time"

	"github.com/herald-webhooks/herald"
)

// job is one claimed delivery waiting for a worker.
type job struct {
	claim herald.Claim
	queue *endpointQueue
}

// endpointQueue holds one endpoint's claimed deliveries in claim order.
type endpointQueue struct {
	id       string
	app      *appShare
	jobs     []job
	inflight int
	inReady  bool
	// inParked: it has work and capacity but its application holds its
	// whole share of the workers; it waits in app.parked.
	inParked bool
	// pace is a moving average of how long one of its attempts took
	// (zero until the first finishes); it sizes the endpoint's share.
	pace time.Duration
}

// appShare is one application's hold on the workers: how many of its
// deliveries are in flight, and its endpoints that wait for one of them to
// finish because the application is at its cap.
type appShare struct {
	id       string
	inflight int
	queued   int // its jobs waiting for a worker
	queues   int // its endpoints in scheduler.queues
	parked   []*endpointQueue
}

// shareDrain is how long an endpoint's share should take to send at its
// recent pace: a fast endpoint keeps a deep queue on this node (fewer
// claims and releases), a slow one a shallow one (its deliveries stay in
// the database, leased by nobody, until it can take them).
const shareDrain = time.Second

// scheduler hands claimed deliveries to workers fairly: endpoints take turns
// (round robin over the endpoints that have work), and no endpoint has more
// than perEndpoint deliveries in flight, so a slow endpoint only ever holds
// its own share of the workers.
type scheduler struct {
	mu          sync.Mutex
	cond        *sync.Cond
	queues      map[string]*endpointQueue
	ready       []*endpointQueue // endpoints with queued work and spare capacity
	queued      int
	perEndpoint int
	// maxShare is the most one endpoint may hold however fast it is, so
	// a single endpoint never fills the node's queue.
	maxShare int
	// capFor, when set, is an endpoint's concurrency cap now (lower while
	// its circuit breaker probes or ramps up); perEndpoint otherwise.
	capFor func(endpointID string) int
	// appCap, when positive, is the most deliveries of one application in
	// flight at once (--app-worker-share of the workers), so the endpoints
	// of one application never hold every worker and another application
	// always finds one free.
	appCap int
	// apps are the applications with queued or in-flight jobs.
	apps map[string]*appShare
	// appBacklog is how many queued jobs make an application saturated
	// (see depth): a round of what it may have in flight, appCap or,
	// without a cap, every worker.
	appBacklog int
	// waiting is how many workers wait in next for a job; wakeups counts
	// how often one woke (tests read it).
	waiting int
	wakeups int
	closed  bool
}

func newScheduler(perEndpoint, maxShare int, capFor func(string) int) *scheduler {
	s := &scheduler{queues: make(map[string]*endpointQueue), apps: make(map[string]*appShare), perEndpoint: perEndpoint,
		maxShare: max(maxShare, 2*perEndpoint), capFor: capFor}
	s.cond = sync.NewCond(&s.mu)
	return s
}

// cap returns the endpoint's concurrency cap now.
func (s *scheduler) cap(id string) int {
	if s.capFor == nil {
		return s.perEndpoint
	}
	return s.capFor(id)
}

// share is how many deliveries endpoint q (nil: one with nothing on this
// node) may have queued or in flight here: what it sends in shareDrain at
// its recent pace and concurrency cap, at least two rounds of its
// concurrency and at most maxShare. Beyond it, deliveries stay in (or go
// back to) the database, so one busy endpoint cannot fill the queue that
// every endpoint shares, and a slow one holds no lease it cannot use soon.
func (s *scheduler) share(q *endpointQueue) int {
	least := 2 * s.perEndpoint
	if q == nil || q.pace <= 0 {
		return least
	}
	n := int(int64(s.cap(q.id)) * int64(shareDrain) / int64(q.pace))
	return min(max(n, least), s.maxShare)
}

// push queues claims within each endpoint's share and returns the claims
// that did not fit (all of them once the scheduler is closed), for the
// caller to release.
func (s *scheduler) push(claims []herald.Claim, skip func(endpointID string) bool) (overflow []herald.Claim) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return claims
	}
	startable := 0
	for _, c := range claims {
		q := s.queues[c.Delivery.EndpointID]
		if (q != nil && len(q.jobs)+q.inflight >= s.share(q)) || (skip != nil && skip(c.Delivery.EndpointID)) {
			overflow = append(overflow, c)
			continue
		}
		if q == nil {
			q = &endpointQueue{id: c.Delivery.EndpointID, app: s.app(c.Delivery.AppID)}
			q.app.queues++
			s.queues[q.id] = q
		}
		q.jobs = append(q.jobs, job{claim: c, queue: q})
		s.queued++
		q.app.queued++
		s.markReady(q)
		if len(q.jobs) <= s.cap(q.id)-q.inflight && s.appRoom(q.app) {
			startable++ // within the endpoint's and the application's caps
		}
	}
	s.wake(startable)
	return overflow
}

// wake wakes up to n waiting workers, one per job that can start now.
// Waking every idle worker for each push (a broadcast) woke all 256 of
// them for an ingest batch of a few messages, and hundreds of runnable
// goroutines made the writer and the ingest committer wait for a
// processor (go tool trace put 90 % of the time goroutines spent runnable
// at that broadcast). Jobs that become startable without a wake-up (an
// endpoint's cap rose as its circuit breaker ramped up) are passed on by
// next: a worker that takes a job wakes another while startable work and
// idle workers remain.
func (s *scheduler) wake(n int) {
	for range min(n, s.waiting) {
		s.cond.Signal()
	}
}

// app returns the share of application id, creating it.
func (s *scheduler) app(id string) *appShare {
	a := s.apps[id]
	if a == nil {
		a = &appShare{id: id}
		s.apps[id] = a
	}
	return a
}

// appRoom reports whether application a may start one more delivery.
func (s *scheduler) appRoom(a *appShare) bool {
	return s.appCap <= 0 || a.inflight < s.appCap
}

// markReady puts q on the ready list if it has work and capacity, or on
// its application's parked list when only the application is at its cap.
func (s *scheduler) markReady(q *endpointQueue) {
	if q.inReady || q.inParked || len(q.jobs) == 0 || q.inflight >= s.cap(q.id) {
		return
	}
	if !s.appRoom(q.app) {
		s.park(q)
		return
	}
	q.inReady = true
	s.ready = append(s.ready, q)
}

// park puts q on its application's parked list: it waits there, not on
// the ready list, until one of the application's deliveries finishes, so
// workers do not pass over it again and again.
func (s *scheduler) park(q *endpointQueue) {
	q.inParked = true
	q.app.parked = append(q.app.parked, q)
}

// unpark moves the first of a's parked endpoints back to the ready list:
// one of a's deliveries finished, so a may start one more. Endpoints take
// turns, as on the ready list. While a job of a is in flight, its done
// unparks one more, so parked endpoints are never left behind: the last
// one to finish unparks an endpoint that then starts.
func (s *scheduler) unpark(a *appShare) {
	for len(a.parked) > 0 {
		q := a.parked[0]
		a.parked[0] = nil
		a.parked = a.parked[1:]
		q.inParked = false
		if len(q.jobs) > 0 && q.inflight < s.cap(q.id) {
			q.inReady = true
			s.ready = append(s.ready, q)
			return
		}
	}
}

// drop deletes q, which has nothing queued or in flight, and its
// application's share once that has no endpoint left.
func (s *scheduler) drop(q *endpointQueue) {
	delete(s.queues, q.id)
	q.app.queues--
	if q.app.queues == 0 {
		delete(s.apps, q.app.id)
	}
}

// next blocks until a job is available and returns it, or returns false
// once the scheduler is closed.
func (s *scheduler) next() (job, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var q *endpointQueue
	for q == nil {
		for len(s.ready) == 0 && !s.closed {
			s.waiting++
			s.cond.Wait()
			s.waiting--
			s.wakeups++
		}
		if s.closed {
			return job{}, false
		}
		q = s.ready[0]
		s.ready[0] = nil
		s.ready = s.ready[1:]
		q.inReady = false
		if !s.appRoom(q.app) {
			// Its application reached its cap since q became ready.
			s.park(q)
			q = nil
		}
	}
	j := q.jobs[0]
	q.jobs[0] = job{}
	q.jobs = q.jobs[1:]
	q.inflight++
	q.app.inflight++
	q.app.queued--
	s.queued--
	s.markReady(q) // back of the line: endpoints take turns
	if len(s.ready) > 0 {
		s.wake(1) // more can start: pass the wake-up on
	}
	return j, true
}

// done marks a job finished after took, freeing its endpoint's slot.
func (s *scheduler) done(j job, took time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := j.queue
	q.inflight--
	a := q.app
	a.inflight--
	if s.appCap > 0 {
		// The slot this job freed goes to one of the application's parked
		// endpoints, if any. Each finished job unparks one: unparking only
		// when the application came down from its cap left the others
		// parked when two jobs finished before the next one started, and
		// once nothing was in flight nothing unparked them.
		s.unpark(a)
	}
	if q.pace == 0 {
		q.pace = max(took, time.Microsecond)
	} else {
		q.pace += (took - q.pace) / 8
		q.pace = max(q.pace, time.Microsecond)
	}
	if len(q.jobs) == 0 && q.inflight == 0 {
		s.drop(q)
		return
	}
	// No wake-up: the worker calling done goes on to next, takes the job
	// this may have made startable, and passes the wake-up on if more can
	// start.
	s.markReady(q)
}

// len returns how many jobs wait for a worker.
func (s *scheduler) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queued
}

// queueDepth is what the claimer needs to know of the scheduler's queue.
type queueDepth struct {
	// queued is how many jobs wait for a worker, held how many of those
	// are the saturated applications'.
	queued, held int
	// endpoints are the saturated endpoints (half their share or more
	// queued or in flight), apps the saturated applications (appBacklog
	// jobs or more queued), both sorted: the claimer leaves their
	// deliveries in the database for now. An endpoint is claimed for
	// again once it has room for a good batch, not one delivery at a time;
	// an application once less than a round of its workers waits.
	endpoints, apps []string
}

// depth returns the queue's depth, with at most maxSaturated endpoints
// and as many applications.
func (s *scheduler) depth(maxSaturated int) queueDepth {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := queueDepth{queued: s.queued}
	for id, q := range s.queues {
		if len(d.endpoints) >= maxSaturated {
			break
		}
		if 2*(len(q.jobs)+q.inflight) >= s.share(q) {
			d.endpoints = append(d.endpoints, id)
		}
	}
	if s.appBacklog > 0 {
		for id, a := range s.apps {
			if len(d.apps) >= maxSaturated {
				break
			}
			if a.queued >= s.appBacklog {
				d.apps = append(d.apps, id)
				d.held += a.queued
			}
		}
	}
	slices.Sort(d.endpoints)
	slices.Sort(d.apps)
	return d
}

// take removes and returns the jobs queued for one endpoint (its breaker
// opened: they are deferred in one write instead of one by one).
func (s *scheduler) take(endpointID string) []herald.Claim {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queues[endpointID]
	if q == nil || len(q.jobs) == 0 {
		return nil
	}
	out := make([]herald.Claim, len(q.jobs))
	for i, j := range q.jobs {
		out[i] = j.claim
	}
	s.queued -= len(q.jobs)
	q.app.queued -= len(q.jobs)
	q.jobs = nil
	if q.inReady {
		q.inReady = false
		s.ready = slices.DeleteFunc(s.ready, func(r *endpointQueue) bool { return r == q })
	}
	if q.inParked {
		q.inParked = false
		q.app.parked = slices.DeleteFunc(q.app.parked, func(r *endpointQueue) bool { return r == q })
	}
	if q.inflight == 0 {
		s.drop(q)
	}
	return out
}

// isClosed reports whether close was called.
func (s *scheduler) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// close wakes every waiting worker and returns the jobs nobody started.
func (s *scheduler) close() []herald.Claim {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	var left []herald.Claim
	for _, q := range s.queues {
		for _, j := range q.jobs {
			left = append(left, j.claim)
		}
		q.jobs = nil
		q.inReady, q.inParked = false, false
	}
	for _, a := range s.apps {
		a.parked = nil
		a.queued = 0
	}
	s.ready = nil
	s.queued = 0
	s.cond.Broadcast()
	return left
}
