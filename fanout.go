package herald

// DefaultFanOutInlineMax is the most deliveries a message gets inside the
// ingest group commit by default (herald serve's --fanout-inline-max):
// a message routed to more endpoints is committed with a fan-out marker
// instead, and its deliveries are created after the commit in chunks
// (Store.FanOut), so the other messages of its batch do not wait for them.
const DefaultFanOutInlineMax = 64

// Route appends to dels the delivery of m to every endpoint of eps that m
// routes to (RoutesTo), in the order of eps, as NewDelivery makes it under
// lease; deliveries to FIFO endpoints are always pending, for ClaimDue to
// take in order. Both stores route with it, at ingest and in FanOut.
func Route(dels []Delivery, m *Message, eps []Endpoint, lease Lease) []Delivery {
	for i := range eps {
		ep := &eps[i]
		if !m.RoutesTo(ep) {
			continue
		}
		l := lease
		if ep.Ordering == OrderingFIFO {
			l = Lease{}
		}
		dels = append(dels, NewDelivery(m, ep.ID, l))
	}
	return dels
}

// DefersFanOut reports whether m, routed over eps, gets more than
// inlineMax deliveries, so that CreateMessages stores a fan-out marker for
// it instead of its deliveries. An inlineMax of 0 or less never defers.
func DefersFanOut(m *Message, eps []Endpoint, inlineMax int) bool {
	if inlineMax <= 0 || len(eps) <= inlineMax {
		return false
	}
	n := 0
	for i := range eps {
		if m.RoutesTo(&eps[i]) {
			if n++; n > inlineMax {
				return true
			}
		}
	}
	return false
}

// FanOutChunk is what one Store.FanOut call did: the deliveries it created
// for one deferred fan-out's message.
type FanOutChunk struct {
	// Message is the fan-out's message, payload included; nil when no
	// fan-out was waiting.
	Message *Message
	// Deliveries are the rows this chunk created, ordered by endpoint ID:
	// sending under the call's lease, or pending (FIFO endpoints, or no
	// lease).
	Deliveries []*Delivery
	// Done reports that the chunk was the fan-out's last: every endpoint
	// has been routed and the marker is gone.
	Done bool
}
