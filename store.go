package herald

import (
	"context"
	"time"
)

// Store is Herald's persistence: one implementation per database engine
// (sqlite, postgres), each with its own SQL, all held to the same behaviour
// by the storetest conformance suite.
//
// Lookups by "ref" accept either the resource's ID or its client-chosen
// UID/eventId. Not-found lookups return an *Error with code ENOTFOUND;
// taken UIDs, eventIds and names return ECONFLICT.
type Store interface {
	// Ping reports whether the database answers.
	Ping(ctx context.Context) error
	// Close releases the database.
	Close() error

	CreateApplication(ctx context.Context, app *Application) error
	GetApplication(ctx context.Context, ref string) (*Application, error)
	ListApplications(ctx context.Context, opts ListOptions) ([]*Application, error)
	// UpdateApplication replaces every mutable field of the application
	// with the given ID.
	UpdateApplication(ctx context.Context, app *Application) error
	// UpdateApplicationFunc changes the application whose ID, or else UID,
	// is ref in one write transaction: it reads the row, calls update with
	// it and stores what update left (as UpdateApplication; ID and
	// CreatedAt are kept), so concurrent changes of different fields all
	// take effect. An error from update changes nothing and is returned as
	// is. update runs inside the store's transaction (on SQLite's single
	// writer): it must be quick and must not call the store. It returns the
	// application as stored.
	UpdateApplicationFunc(ctx context.Context, ref string, update func(*Application) error) (*Application, error)
	// DeleteApplication deletes the application with everything it owns.
	DeleteApplication(ctx context.Context, id string) error

	CreateEventType(ctx context.Context, et *EventType) error
	GetEventType(ctx context.Context, name string) (*EventType, error)
	ListEventTypes(ctx context.Context, opts EventTypeListOptions) ([]*EventType, error)
	UpdateEventType(ctx context.Context, et *EventType) error
	// UpdateEventTypeFunc is UpdateApplicationFunc for the event type
	// called name (its Name and CreatedAt are kept).
	UpdateEventTypeFunc(ctx context.Context, name string, update func(*EventType) error) (*EventType, error)
	DeleteEventType(ctx context.Context, name string) error
	// ImportEventTypes writes types in one transaction: each is created,
	// or replaces the description, deprecated, feature flag and schemas of
	// the one of its name (keeping its CreatedAt) and unarchives it. With
	// archiveOthers it also archives every other event type, at now, and
	// returns their names. Nothing is written when any write fails.
	ImportEventTypes(ctx context.Context, types []*EventType, archiveOthers bool, now time.Time) (archived []string, err error)

	CreateEndpoint(ctx context.Context, ep *Endpoint) error
	GetEndpoint(ctx context.Context, appID, ref string) (*Endpoint, error)
	ListEndpoints(ctx context.Context, appID string, opts ListOptions) ([]*Endpoint, error)
	// UpdateEndpoint replaces every mutable field of the endpoint, its
	// headers, secrets and ordering included (not FailingSince). When it
	// disables an enabled endpoint, or enables a disabled one (which also
	// clears FailingSince), it queues the operational event
	// endpoint.disabled (manual) or endpoint.enabled in the same
	// transaction (see OperationalEvent).
	UpdateEndpoint(ctx context.Context, ep *Endpoint) error
	// UpdateEndpointKeepDisabled is UpdateEndpoint except that it keeps the
	// stored Disabled, whatever ep.Disabled says, and sets ep.Disabled to
	// it; so it queues no event. It is for a change that does not set
	// Disabled: a read-modify-write with UpdateEndpoint would re-enable an
	// endpoint the dispatcher disabled after the read.
	UpdateEndpointKeepDisabled(ctx context.Context, ep *Endpoint) error
	// UpdateEndpointFunc changes the endpoint of application appID whose
	// ID, or else UID, is ref in one write transaction: it reads the row
	// (headers and secrets opened), calls update with it and stores what
	// update left as UpdateEndpoint does, operational events and audit
	// record included; ID, AppID, CreatedAt and FailingSince are kept. So
	// concurrent changes of different fields (or different headers) all
	// take effect, and a change that leaves Disabled alone keeps the
	// stored value, never undoing an automatic disable. An error from
	// update changes nothing and is returned as is. update runs inside the
	// store's transaction (on SQLite's single writer): it must be quick and
	// must not call the store. It returns the endpoint as stored.
	UpdateEndpointFunc(ctx context.Context, appID, ref string, update func(*Endpoint) error) (*Endpoint, error)
	// DeleteEndpoint deletes the endpoint with its deliveries and attempts.
	DeleteEndpoint(ctx context.Context, appID, id string) error
	// RotateEndpointSecret makes next (its key and type; its ExpiresAt is
	// ignored) the current secret; the previous current secret keeps
	// signing until graceUntil, whatever the kinds of the two. Secrets
	// whose grace period ended are dropped.
	RotateEndpointSecret(ctx context.Context, appID, id string, next SigningSecret, graceUntil, now time.Time) error

	// CreateMessages stores a batch of messages and, for each, one delivery
	// per endpoint of its application that accepts it (or only to
	// OnlyEndpointID when set), all in one transaction (group commit). The
	// deliveries are pending and due at the message's DueAt (its CreatedAt,
	// or its DeliverAt when scheduled), or, with a non-zero lease, sending
	// and leased to lease.Owner; deliveries to FIFO endpoints and of
	// scheduled messages are always stored pending, for ClaimDue. It returns one
	// result per message in order; a message's own failure is in its result
	// and does not stop the others. The error is for the batch as a whole
	// (nothing committed).
	//
	// A message routed to more endpoints than the store's fan-out
	// threshold (see DefersFanOut; off unless configured) is stored with
	// a fan-out marker instead of its deliveries, in the same transaction:
	// its result has FanOut set and no deliveries, and FanOut creates them
	// later, so the batch's other messages do not wait for them.
	CreateMessages(ctx context.Context, msgs []*Message, lease Lease) ([]MessageResult, error)
	// FanOut continues the oldest deferred fan-out (see CreateMessages)
	// that no other caller is continuing, in one short write transaction:
	// it reads the next limit endpoints of the message's application after
	// the marker's cursor, in ID order, among those created no later than
	// the message (later ones get nothing), creates a delivery to each
	// that the message routes to today (Route: a disabled or deleted
	// endpoint is skipped, filters and channels apply) under lease as
	// CreateMessages would, moves the cursor past them, and deletes the
	// marker once no endpoint is left. A delivery that already exists
	// (resend, replay-missing) is left as it is. It returns a zero chunk
	// when no fan-out waits.
	FanOut(ctx context.Context, limit int, lease Lease) (FanOutChunk, error)
	GetMessage(ctx context.Context, appID, ref string) (*Message, error)
	ListMessages(ctx context.Context, appID string, opts MessageListOptions) ([]*Message, error)
	// ExpungeMessageContent deletes a message's payload, keeping the rest.
	ExpungeMessageContent(ctx context.Context, appID, id string) error
	// DeleteMessage deletes a message with its tags, deliveries and
	// attempts: a scheduled message is cancelled, and a delivery being
	// sent right now records nothing (its lease is gone with it).
	DeleteMessage(ctx context.Context, appID, id string) error
	// ListMessageDeliveries returns a message's deliveries, one per endpoint
	// it was routed to, ordered by endpoint ID.
	ListMessageDeliveries(ctx context.Context, appID, msgID string) ([]*Delivery, error)
	// ListEndpointMessages returns a page of the messages routed to one
	// endpoint, each with its delivery, ordered by message ID.
	ListEndpointMessages(ctx context.Context, appID, endpointID string, opts DeliveryListOptions) ([]EndpointMessage, error)

	// ClaimDue leases up to opts.Limit due deliveries (pending, with
	// NextAttemptAt <= opts.Now, not of opts.SkipEndpoints), oldest due
	// first, or with opts.PerApp applications in turns: they become
	// sending, owned by opts.Owner until opts.LeaseUntil.
	// Each claim carries its message. Of a FIFO endpoint only the head is
	// ever claimed: its pending delivery with the lowest message ID, when
	// due and when no delivery of the endpoint is being sent, so that across
	// every node at most one delivery of a FIFO endpoint is in flight.
	ClaimDue(ctx context.Context, opts ClaimOptions) ([]Claim, error)
	// RecordAttempts writes each outcome in one transaction: the attempt row
	// (when not nil) and the delivery's new status, NextAttemptAt, attempt
	// count (+1 when an attempt was made) and Trigger (reset to scheduled
	// when an attempt was made, kept otherwise), with its lease cleared; DisableEndpoint also disables the endpoint and
	// cancels its pending deliveries. An outcome whose delivery is no
	// longer leased to its LeaseOwner is skipped whole.
	//
	// An attempt also moves its endpoint's FailingSince (set by the first
	// failure after a success, cleared by a success) and may disable the
	// endpoint (DisableAfter). In the same transaction it queues the
	// operational events these changes call for: message.attempt.failing
	// (FailingSince set), message.attempt.exhausted (a delivery failed for
	// good after an attempt), endpoint.disabled (automatic). Attempts to the
	// operational endpoint itself move nothing and queue nothing.
	RecordAttempts(ctx context.Context, outcomes []AttemptOutcome) error
	// ReleaseDeliveries returns the claimed deliveries still leased to
	// owner under the claims named (see LeaseRef) to pending, due at now,
	// without counting an attempt. A claim that expired, was rescued and
	// was claimed again is another claim: it is not released.
	ReleaseDeliveries(ctx context.Context, owner string, claims []LeaseRef, now time.Time) error
	// RescueExpired returns up to limit deliveries whose lease expired
	// before now to pending, due at now, and reports how many.
	RescueExpired(ctx context.Context, now time.Time, limit int) (int, error)

	// ListAttempts returns a page of an application's attempts.
	ListAttempts(ctx context.Context, appID string, opts AttemptListOptions) ([]*Attempt, error)
	// GetAttempt returns one attempt of a message.
	GetAttempt(ctx context.Context, appID, msgID, attemptID string) (*Attempt, error)
	// ExpungeAttemptContent deletes an attempt's stored response body.
	ExpungeAttemptContent(ctx context.Context, appID, msgID, attemptID string) error
	// ResendDelivery queues the message for the endpoint now, as a manual
	// attempt: the existing delivery goes back to pending, or a delivery is
	// created if the message was never routed to the endpoint. A delivery
	// being sent right now gives ECONFLICT.
	ResendDelivery(ctx context.Context, appID, msgID, endpointID string, now time.Time) error
	// RecoverEndpoint queues every failed delivery of the endpoint whose
	// message was created in [since, until) again, now, as manual attempts,
	// and reports how many. A zero until means no upper bound.
	RecoverEndpoint(ctx context.Context, appID, endpointID string, since, until, now time.Time) (int, error)
	// ReplayMissing creates a pending delivery, due now and manual, for every
	// message of the application created in [since, until) that the
	// endpoint accepts today but was never routed to, and reports how many.
	ReplayMissing(ctx context.Context, appID, endpointID string, since, until, now time.Time) (int, error)
	// GetEndpointStats counts the endpoint's deliveries by status, of
	// messages created in [since, until) (zero bounds are open).
	GetEndpointStats(ctx context.Context, appID, endpointID string, since, until time.Time) (EndpointStats, error)
	// QueueStats counts pending and sending deliveries and disabled
	// endpoints, and finds the oldest due delivery (pending, with
	// NextAttemptAt <= now). Monitoring calls it every few seconds.
	QueueStats(ctx context.Context, now time.Time) (QueueStats, error)

	// DeleteExpiredAttempts deletes up to limit attempts created before
	// before, oldest first, and reports how many.
	DeleteExpiredAttempts(ctx context.Context, before time.Time, limit int) (int, error)
	// ExpirePayloads drops the payload of up to limit messages whose
	// PayloadExpiresAt is not after now, and reports how many. A message
	// with a delivery still pending or being sent, or a fan-out still to
	// create deliveries (see FanOut), keeps its payload until they finish.
	ExpirePayloads(ctx context.Context, now time.Time, limit int) (int, error)
	// DeleteExpiredMessages deletes up to limit messages created before
	// before, oldest first, with their deliveries and attempts, and reports
	// how many. A message with a delivery still pending or being sent, or
	// a fan-out still to create deliveries, is kept: retention never drops
	// undelivered work.
	DeleteExpiredMessages(ctx context.Context, before time.Time, limit int) (int, error)

	// BeginIdempotent records rec as in progress when no unexpired record
	// with its key exists, and returns nil. Otherwise it changes nothing and
	// returns the existing record.
	BeginIdempotent(ctx context.Context, rec *IdempotencyRecord) (*IdempotencyRecord, error)
	// CompleteIdempotent stores the response of an in-progress record.
	CompleteIdempotent(ctx context.Context, key string, statusCode int, body []byte) error
	// AbandonIdempotent forgets the in-progress record of key begun at
	// createdAt, so the request can be retried. Any other record (completed,
	// or begun again by someone else) is kept and the call is ENOTFOUND:
	// two retries taking over one abandoned key cannot both win.
	AbandonIdempotent(ctx context.Context, key string, createdAt time.Time) error
	// DeleteExpiredIdempotent forgets up to limit records expired at now and
	// returns how many it deleted.
	DeleteExpiredIdempotent(ctx context.Context, now time.Time, limit int) (int, error)

	TokenStore
	SealStore
	AuditStore
	TaskStore
	PollStore
}
