package herald

import "time"

// DeliveryStatus is the state of one message's delivery to one endpoint.
type DeliveryStatus string

const (
	DeliveryPending   DeliveryStatus = "pending"   // due at NextAttemptAt
	DeliverySending   DeliveryStatus = "sending"   // leased by a dispatcher
	DeliverySucceeded DeliveryStatus = "succeeded" // an endpoint answered 2xx
	DeliveryFailed    DeliveryStatus = "failed"    // every try failed (dead letter)
	DeliveryCanceled  DeliveryStatus = "canceled"  // the endpoint was disabled or gone
)

// Delivery is a message × endpoint row: the unit of work of the dispatcher.
type Delivery struct {
	ID            string
	AppID         string
	MessageID     string
	EndpointID    string
	Status        DeliveryStatus
	NextAttemptAt time.Time
	Attempts      int
	// LeaseOwner and LeaseExpiresAt are set while a dispatcher holds the
	// delivery; an expired lease returns it to the queue.
	LeaseOwner     string
	LeaseExpiresAt time.Time
	// Trigger is why the next attempt is made: TriggerManual after a
	// resend or recover, TriggerScheduled otherwise.
	Trigger   TriggerType
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Lease hands the deliveries a CreateMessages call creates straight to one
// dispatcher: they are stored as DeliverySending, owned by Owner until
// Until, so no other node claims them and, if the owner dies, they return to
// the queue when the lease expires. The zero Lease stores them pending.
type Lease struct {
	Owner string
	Until time.Time
}

// Held reports whether the lease hands deliveries to a dispatcher: it names
// an owner. The zero Lease does not.
func (l Lease) Held() bool { return l.Owner != "" }

// EndpointStats counts an endpoint's deliveries by status.
type EndpointStats struct {
	Success int
	Pending int
	Sending int
	Fail    int
}

// EndpointMessage is a message as one endpoint sees it: the message and its
// delivery to that endpoint.
type EndpointMessage struct {
	Message  *Message
	Delivery *Delivery
}

// DeliveryListOptions select a page of an endpoint's deliveries (with their
// messages), ordered by message ID.
type DeliveryListOptions struct {
	ListOptions
	// Status, when set, keeps deliveries in this state only.
	Status DeliveryStatus
	// EventTypes and Channel filter on the message, as in
	// MessageListOptions; Before and After bound the message's creation time
	// (exclusive).
	EventTypes []string
	Channel    string
	Before     time.Time
	After      time.Time
	// Tag, when set, keeps messages carrying this tag only.
	Tag string
}

// Claim is a delivery leased to a dispatcher, with its message. Claims of
// the same message in one batch share one *Message.
type Claim struct {
	Delivery *Delivery
	Message  *Message
}

// AttemptOutcome is what the dispatcher records after one attempt: the
// attempt row and the delivery's next state, written together and only if
// the dispatcher still holds the lease.
type AttemptOutcome struct {
	// DeliveryID is the delivery this outcome is for.
	DeliveryID string
	// Attempt is the attempt row to insert; nil when no request was made
	// (a delivery canceled because its endpoint was disabled).
	Attempt *Attempt
	// LeaseOwner must still hold the delivery, or the outcome is dropped
	// (another node took the delivery over after the lease expired).
	LeaseOwner string
	// LeaseUntil, when not zero, is the expiry of the claim the outcome
	// is for (the Delivery.LeaseExpiresAt it was claimed with), which must
	// still be the delivery's: a delivery whose lease expired, was rescued
	// and was claimed again has a new expiry, even when the same owner
	// claimed it again, so a late outcome of the old claim is dropped
	// instead of being applied to the new one.
	LeaseUntil time.Time
	// Status is DeliverySucceeded, DeliveryFailed (no try left),
	// DeliveryCanceled, or DeliveryPending with NextAttemptAt for a retry.
	Status        DeliveryStatus
	NextAttemptAt time.Time
	// DisableEndpoint disables the endpoint and cancels its pending
	// deliveries (the endpoint answered 410 Gone).
	DisableEndpoint bool
	// DisableAfter, when positive, disables the endpoint automatically if
	// this outcome's attempt failed and the endpoint has failed every
	// attempt since at least DisableAfter before this one (its
	// FailingSince); its pending deliveries then become failed, so that
	// recovering the endpoint queues them again.
	DisableAfter time.Duration
}

// LeaseRef names one claim of a delivery: its ID and the lease expiry it
// was claimed with (the Delivery.LeaseExpiresAt of the claim). A zero
// Until names any lease the owner holds.
type LeaseRef struct {
	DeliveryID string
	Until      time.Time
}

// ClaimOptions select and lease due deliveries.
type ClaimOptions struct {
	// Owner names the dispatcher (node) taking the lease.
	Owner string
	// Now is the claim time: deliveries pending with NextAttemptAt <= Now
	// are due.
	Now time.Time
	// LeaseUntil is when the lease expires if the owner neither records an
	// outcome nor releases the delivery (a crashed node).
	LeaseUntil time.Time
	// Limit is the most deliveries claimed.
	Limit int
	// SkipEndpoints are endpoints the dispatcher has enough work for.
	SkipEndpoints []string
	// Window, when positive, bounds the claim's cost whatever the backlog:
	// only the first Window due deliveries in due order are considered,
	// before SkipEndpoints and PerEndpoint are applied, so a claim behind a
	// large backlog of skipped endpoints may come back empty. Zero
	// considers every due delivery.
	Window int
	// PerEndpoint, when positive and Window is set, is the most deliveries
	// of one endpoint the claim takes.
	PerEndpoint int
	// PerApp, when positive, makes applications take turns: the claim
	// takes the oldest due delivery of every application, then the second
	// of every one, and so on, at most PerApp of one application, Limit in
	// all. It finds each application's due deliveries with an index seek of
	// its own, so a backlog of one application, however long, neither
	// hides another's deliveries nor lengthens the claim. Window then
	// bounds what is considered of each application, and SkipEndpoints and
	// PerEndpoint apply within it. Zero claims oldest due first whatever
	// the application.
	PerApp int
	// SkipApps, with PerApp, are applications the dispatcher has enough
	// work for: none of their deliveries is claimed, and each costs the
	// claim one index seek whatever its backlog.
	SkipApps []string
}
