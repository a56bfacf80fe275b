// Package herald holds Herald's domain: the resources a sender manages
// (applications, event types, endpoints, messages), the delivery rows the
// dispatcher works through, the Store interface every database engine
// implements, and the one Error type the rest of the code maps to HTTP.
package herald

import (
	"crypto/rand"
	"math"
	"sync"
	"time"

	"github.com/segmentio/ksuid"
)

// ID prefixes. Every ID is a prefix plus a KSUID, so IDs sort by creation
// time (to the second) and say what they name.
const (
	PrefixApplication = "app_"
	PrefixEndpoint    = "ep_"
	PrefixMessage     = "msg_"
	PrefixDelivery    = "dlv_"
	PrefixAttempt     = "atmpt_"
)

// idSource makes KSUIDs that increase within a second: each second gets a
// fresh random seed and IDs count up from it. Rows created together then
// land next to each other in every index keyed by ID, which keeps a batch
// commit to a few pages instead of one page per row.
//
// The current run only ever moves forward in time, so that NewID's IDs
// keep increasing: FIFO delivery orders by message ID. An ID for an
// earlier second (an operational event dated by the attempt it reports, a
// test's fixed clock) comes from a separate run, past, which never
// touches the current one.
type idSequence struct {
	mu      sync.Mutex
	current idRun
	past    idRun
}

// idRun is a run of KSUIDs counting up from one second's random seed.
type idRun struct {
	second int64
	seq    *ksuid.Sequence
}

var idSource idSequence

// NewID returns a new time-sortable ID with the given prefix. Successive
// calls return increasing IDs while the clock does not step back (and no
// caller asks NewIDAt for a later second than now).
func NewID(prefix string) string { return NewIDAt(prefix, time.Now()) }

// NewIDAt returns a new ID whose time component is t (to the second).
// Successive IDs made for the same second count up from that second's
// random seed. A second earlier than the latest one asked for is served
// from its own run, so it never moves NewID's run backwards.
func NewIDAt(prefix string, t time.Time) string {
	idSource.mu.Lock()
	defer idSource.mu.Unlock()
	run := &idSource.current
	if run.seq != nil && t.Unix() < run.second {
		run = &idSource.past
	}
	return prefix + run.next(t).String()
}

// MinIDAt returns the lowest ID NewIDAt can make for t's second: every ID
// made in an earlier second sorts below it. Stores bound scans of
// time-ordered tables by it, so a range over the primary key replaces an
// index on the creation time.
func MinIDAt(prefix string, t time.Time) string {
	var zero [16]byte
	id, _ := ksuid.FromParts(t, zero[:])
	return prefix + id.String()
}

// ksuidEpoch is the first second a KSUID can hold (2014-05-13).
const ksuidEpoch = 1_400_000_000

// MinIDAtBound is MinIDAt for a time used as a bound of a range of IDs,
// and false for a time whose second no KSUID can hold (before 2014-05-13
// or after 2150): no ID lies beyond it, so no bound is needed there.
func MinIDAtBound(prefix string, t time.Time) (string, bool) {
	if s := t.Unix(); s < ksuidEpoch || s-ksuidEpoch > math.MaxUint32 {
		return "", false
	}
	return MinIDAt(prefix, t), true
}

// IDRange returns the IDs [lo, hi) with the given prefix made for times in
// [since, until) (zero bounds are open), and false unless every bound given
// is a whole second a KSUID can hold: only then is the range exact, since
// IDs sort by their second. Stores count or list a window of creation
// times as this range of the primary key.
func IDRange(prefix string, since, until time.Time) (lo, hi string, ok bool) {
	lo, hi = prefix, prefix+"~" // '~' sorts above every KSUID character
	for _, b := range []struct {
		t  time.Time
		id *string
	}{{since, &lo}, {until, &hi}} {
		if b.t.IsZero() {
			continue
		}
		id, ok := MinIDAtBound(prefix, b.t)
		if !ok || b.t.Nanosecond() != 0 {
			return "", "", false
		}
		*b.id = id
	}
	return lo, hi, true
}

// next returns the run's next ID for t's second, starting a new run when
// t is in another second or the run is used up; the caller holds mu.
func (r *idRun) next(t time.Time) ksuid.KSUID {
	if r.seq == nil || r.second != t.Unix() {
		r.reseed(t)
	}
	id, err := r.seq.Next()
	if err != nil { // 65,536 IDs in one second: continue above this run
		r.continueRun(t)
		id, _ = r.seq.Next()
	}
	return id
}

// continueRun starts the next run of the same second from the used-up
// run's seed plus one (ahead of the counter in its last two bytes), so
// that the IDs keep increasing; a seed that cannot grow gets a fresh one.
func (r *idRun) continueRun(t time.Time) {
	seed := r.seq.Seed
	for i := len(seed) - 3; i >= 4; i-- { // the payload after the timestamp
		seed[i]++
		if seed[i] != 0 {
			r.seq = &ksuid.Sequence{Seed: seed}
			return
		}
	}
	r.reseed(t)
}

// reseed starts a new run of IDs at time now.
func (r *idRun) reseed(now time.Time) {
	var payload [16]byte
	_, _ = rand.Read(payload[:])
	seed, _ := ksuid.FromParts(now, payload[:])
	r.second = now.Unix()
	r.seq = &ksuid.Sequence{Seed: seed}
}

// Order is the direction of a listing.
type Order int

const (
	// Ascending lists oldest (or lowest) first.
	Ascending Order = iota
	// Descending lists newest (or highest) first.
	Descending
)

// ListOptions selects one page of a listing ordered by ID (or name, for
// event types).
type ListOptions struct {
	// Limit is the most rows returned. Stores treat values below 1 as 1.
	Limit int
	// Cursor, when set, is exclusive: the page starts after it in Order.
	Cursor string
	// Order is the direction of the listing.
	Order Order
}
