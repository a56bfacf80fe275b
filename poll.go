package herald

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// PollerURL is the URL of a polling endpoint (Svix's "sink" of the
// messagePoller API), Herald's extension of the endpoint API: an endpoint
// created with it gets no deliveries; its consumers pull the application's
// messages that it accepts (filter types, channels) with an iterator.
const PollerURL = "poller://"

// IsPoller reports whether the endpoint is a polling endpoint: its URL is
// PollerURL, or a store read its routing data with Poller set.
func (e *Endpoint) IsPoller() bool {
	return e.Poller || e.URL == PollerURL
}

// PollPosition is a place in an application's poll order: the messages
// after it are those whose (Seq, MessageID) is greater. Seq is a number the
// store assigns so that a message never lands behind a position a reader
// already passed (SQLite: a counter bumped by each write transaction under
// the single writer; PostgreSQL: the ID of the writing transaction, read
// only below the oldest transaction still running). MessageID orders the
// messages of one Seq; "" is before them all.
type PollPosition struct {
	Seq       int64
	MessageID string
}

// pollIteratorPrefix starts every poll iterator.
const pollIteratorPrefix = "it_"

// String is the position as the API's iterator: "it_<seq>" or
// "it_<seq>_<message ID>".
func (p PollPosition) String() string {
	s := pollIteratorPrefix + strconv.FormatInt(p.Seq, 10)
	if p.MessageID != "" {
		s += "_" + p.MessageID
	}
	return s
}

// ParsePollPosition reads an iterator written by PollPosition.String;
// validID checks the message ID part.
func ParsePollPosition(s string, validID func(string) bool) (PollPosition, error) {
	rest, ok := strings.CutPrefix(s, pollIteratorPrefix)
	if !ok {
		return PollPosition{}, fmt.Errorf("poll iterator %q: no %q prefix", s, pollIteratorPrefix)
	}
	num, id, hasID := strings.Cut(rest, "_")
	seq, err := strconv.ParseInt(num, 10, 64)
	if err != nil || seq < 0 || strconv.FormatInt(seq, 10) != num {
		return PollPosition{}, fmt.Errorf("poll iterator %q: bad sequence number", s)
	}
	if hasID && !validID(id) {
		return PollPosition{}, fmt.Errorf("poll iterator %q: bad message ID", s)
	}
	return PollPosition{Seq: seq, MessageID: id}, nil
}

// PollFilter is what a poll keeps: the messages a polling endpoint accepts
// (FilterTypes, Channels, as Endpoint.Accepts), narrowed by the request's
// optional EventType, Channel and After (creation strictly after).
type PollFilter struct {
	FilterTypes []string
	Channels    []string
	EventType   string
	Channel     string
	After       time.Time
}

// Keeps reports whether a message of this event type, channels and
// creation time passes the filter.
func (f PollFilter) Keeps(eventType string, channels []string, createdAt time.Time) bool {
	if len(f.FilterTypes) > 0 && !slices.Contains(f.FilterTypes, eventType) {
		return false
	}
	if f.EventType != "" && f.EventType != eventType {
		return false
	}
	if f.Channel != "" && !slices.Contains(channels, f.Channel) {
		return false
	}
	if !f.After.IsZero() && !createdAt.After(f.After) {
		return false
	}
	if len(f.Channels) == 0 {
		return true
	}
	for _, c := range channels {
		if slices.Contains(f.Channels, c) {
			return true
		}
	}
	return false
}

// PollOptions selects one page of PollMessages.
type PollOptions struct {
	// From is the position to read after.
	From PollPosition
	// Limit is the most messages returned.
	Limit int
	// Window is the most rows read past From, kept or not: it bounds a
	// page's cost whatever the filter drops. Zero is DefaultPollWindow.
	Window int
	Filter PollFilter
}

// DefaultPollWindow is PollOptions.Window when zero.
const DefaultPollWindow = 1000

// PollPage is one page of PollMessages.
type PollPage struct {
	// Messages are those the filter kept, in poll order, with payloads.
	Messages []*Message
	// Next is the position after the last row read (kept or not): From
	// when nothing was read.
	Next PollPosition
	// Done is set when the page reached the end of what is readable now.
	Done bool
}

// InOrder returns the messages of msgs whose IDs are in ids, in the order
// of ids: a poll page's payloads are fetched by ID in one query, in no
// particular order, and handed out in poll order. An ID without its
// message (deleted meanwhile) is left out.
func InOrder(ids []string, msgs []*Message) []*Message {
	byID := make(map[string]*Message, len(msgs))
	for _, m := range msgs {
		byID[m.ID] = m
	}
	out := make([]*Message, 0, len(ids))
	for _, id := range ids {
		if m, ok := byID[id]; ok {
			out = append(out, m)
		}
	}
	return out
}

// PollConsumer is the stored position of one consumer of a polling
// endpoint (messagePoller's consumer_id).
type PollConsumer struct {
	AppID      string
	EndpointID string
	ConsumerID string
	Position   PollPosition
	UpdatedAt  time.Time
}

// PollStore reads applications' messages in poll order for polling
// endpoints and keeps their consumers' positions.
type PollStore interface {
	// PollMessages reads up to opts.Window rows of application appID's
	// messages after opts.From in poll order (only those committed for
	// good: a message still being written can never land behind Next),
	// and returns the first opts.Limit that opts.Filter keeps, with Next
	// after the last row it looked at.
	PollMessages(ctx context.Context, appID string, opts PollOptions) (PollPage, error)
	// PollStart returns the position just before application appID's
	// first message (in poll order) created at or after at, within the
	// first DefaultPollWindow messages created from at; with no such
	// message, or a zero at, the position after every message readable
	// now. It may place earlier messages after it, never skip a later one.
	PollStart(ctx context.Context, appID string, at time.Time) (PollPosition, error)
	// GetPollConsumer returns the consumer's stored position (ENOTFOUND
	// when it has none).
	GetPollConsumer(ctx context.Context, endpointID, consumerID string) (*PollConsumer, error)
	// SetPollConsumer stores the consumer's position (creating it), and an
	// audit record "endpoint.poller.seek" when the context carries an
	// actor. The endpoint must exist (ENOTFOUND).
	SetPollConsumer(ctx context.Context, c *PollConsumer) error
}
