// Package herald holds Herald's domain: the resources a sender manages
// (applications, event types, endpoints, messages), the delivery rows the
// dispatcher works through, the Store interface every database engine
// implements, and the one Error type the rest of the code maps to HTTP.
package herald

import (
	"crypto/rand"
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

// NewID returns a new time-sortable ID with the given prefix.
func NewID(prefix string) string {
	return prefix + ksuid.New().String()
}

// NewIDAt returns a new ID whose time component is t; tests and imports use
// it to create IDs for a given moment.
func NewIDAt(prefix string, t time.Time) string {
	var payload [16]byte
	_, _ = rand.Read(payload[:])
	id, err := ksuid.FromParts(t, payload[:])
	if err != nil {
		return NewID(prefix)
	}
	return prefix + id.String()
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
