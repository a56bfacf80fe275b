// Package herald holds Herald's domain: the resources a sender manages
// (applications, event types, endpoints, messages), the delivery rows the
// dispatcher works through, the Store interface every database engine
// implements, and the one Error type the rest of the code maps to HTTP.
package herald

import (
	"crypto/rand"
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
type idSequence struct {
	mu     sync.Mutex
	second int64
	seq    *ksuid.Sequence
}

var idSource idSequence

// NewID returns a new time-sortable ID with the given prefix.
func NewID(prefix string) string { return NewIDAt(prefix, time.Now()) }

// NewIDAt returns a new ID whose time component is t (to the second). IDs
// made for the same second count up from that second's random seed.
func NewIDAt(prefix string, t time.Time) string {
	idSource.mu.Lock()
	defer idSource.mu.Unlock()
	if idSource.seq == nil || idSource.second != t.Unix() {
		idSource.reseed(t)
	}
	id, err := idSource.seq.Next()
	if err != nil { // 65,536 IDs in one second: start another run
		idSource.reseed(t)
		id, _ = idSource.seq.Next()
	}
	return prefix + id.String()
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

// reseed starts a new run of IDs at time now; the caller holds mu.
func (s *idSequence) reseed(now time.Time) {
	var payload [16]byte
	_, _ = rand.Read(payload[:])
	seed, _ := ksuid.FromParts(now, payload[:])
	s.second = now.Unix()
	s.seq = &ksuid.Sequence{Seed: seed}
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
