package herald

import "time"

// Message is one event a sender posted for an application. Its payload is
// stored once, however many endpoints receive it.
type Message struct {
	ID        string
	AppID     string
	EventID   string // the client's own unique identifier; "" when unset
	EventType string
	// Payload is the body delivered to endpoints: a JSON object, or the raw
	// bytes of a raw-payload message. Nil once the content was expunged.
	Payload []byte
	// ContentType is "" for JSON payloads and the given content type for a
	// raw payload.
	ContentType string
	Channels    []string
	Tags        []string
	CreatedAt   time.Time
	// DeliverAt, when not zero, is when a scheduled message (Svix's
	// deliverAt) is first sent: its deliveries are stored pending and due
	// at DeliverAt, never leased at ingest. It is the one place the due
	// time of a message's first attempt lives; see DueAt.
	DeliverAt time.Time
	// TraceParent is the W3C traceparent of the request that created the
	// message ("" when it had none): every delivery carries it on, so the
	// sender's trace continues into its customers' systems.
	TraceParent string
	// PayloadExpiresAt, when not zero, is when the cleaner may drop the
	// payload (payloadRetentionPeriod/Hours); it waits while a delivery of
	// the message is still pending or being sent. Write-only: stores do
	// not read it back.
	PayloadExpiresAt time.Time
	// OnlyEndpointID, when set, routes the message to this one endpoint of
	// its application, whatever its filters (send-example). It is not
	// stored.
	OnlyEndpointID string
	// Audit, when set, is who created the message through a route that is
	// audited (send-example): CreateMessages writes its audit record in
	// the batch's transaction. Nil on the ingest path (POST msg), which
	// the message log itself records.
	Audit *AuditActor
}

// MessageListOptions selects a page of an application's messages.
type MessageListOptions struct {
	ListOptions
	// EventTypes, when not empty, keeps messages of these types only.
	EventTypes []string
	// Channel, when set, keeps messages posted to this channel only.
	Channel string
	// Before and After, when not zero, bound the creation time (exclusive).
	Before time.Time
	After  time.Time
	// Tag, when set, keeps messages carrying this tag only.
	Tag string
}

// MessageResult is the outcome of one message in a CreateMessages batch.
type MessageResult struct {
	// Message is the stored message; nil when Err is set.
	Message *Message
	// Deliveries are the rows queued for every endpoint that accepts the
	// message, created in the same transaction.
	Deliveries []*Delivery
	// FanOut reports that the message was routed to more endpoints than
	// the store's fan-out threshold: it was committed with a fan-out
	// marker instead of its deliveries (Deliveries is empty), and
	// Store.FanOut creates them after the commit.
	FanOut bool
	// Err is this message's own failure (ENOTFOUND when its application is
	// gone, ECONFLICT when its eventId is taken). Other messages of the
	// batch are committed regardless.
	Err error
}

// RoutesTo reports whether the message gets a delivery to ep: ep accepts it
// (see Endpoint.Accepts), or the message names ep as its only endpoint
// (send-example: whatever ep's filters, even when disabled).
func (m *Message) RoutesTo(ep *Endpoint) bool {
	if m.OnlyEndpointID != "" {
		return ep.ID == m.OnlyEndpointID && !ep.IsPoller()
	}
	return ep.Accepts(m.EventType, m.Channels)
}

// Scheduled reports whether m is sent later than it was created
// (deliverAt).
func (m *Message) Scheduled() bool {
	return m.DeliverAt.After(m.CreatedAt)
}

// DueAt is when the first attempt of every delivery of m is due: its
// DeliverAt when scheduled, else its creation. Code that creates a
// message's deliveries after ingest reads it here.
func (m *Message) DueAt() time.Time {
	if m.Scheduled() {
		return m.DeliverAt
	}
	return m.CreatedAt
}

// NewDelivery returns the delivery of m to endpointID as CreateMessages
// stores it: due at m.DueAt(), pending, or sending under lease when the
// lease names an owner and m is not scheduled (a scheduled message must
// wait in the database for its time, across restarts). Its ID comes from
// NewID, so a batch's deliveries are adjacent in every index keyed by ID.
func NewDelivery(m *Message, endpointID string, lease Lease) Delivery {
	d := Delivery{
		ID:            NewID(PrefixDelivery),
		AppID:         m.AppID,
		MessageID:     m.ID,
		EndpointID:    endpointID,
		Status:        DeliveryPending,
		NextAttemptAt: m.DueAt(),
		CreatedAt:     m.CreatedAt,
		UpdatedAt:     m.CreatedAt,
	}
	if lease.Held() && !m.Scheduled() {
		d.Status = DeliverySending
		d.LeaseOwner = lease.Owner
		d.LeaseExpiresAt = lease.Until
	}
	return d
}
