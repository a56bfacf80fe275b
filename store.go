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
	// DeleteApplication deletes the application with everything it owns.
	DeleteApplication(ctx context.Context, id string) error

	CreateEventType(ctx context.Context, et *EventType) error
	GetEventType(ctx context.Context, name string) (*EventType, error)
	ListEventTypes(ctx context.Context, opts EventTypeListOptions) ([]*EventType, error)
	UpdateEventType(ctx context.Context, et *EventType) error
	DeleteEventType(ctx context.Context, name string) error

	CreateEndpoint(ctx context.Context, ep *Endpoint) error
	GetEndpoint(ctx context.Context, appID, ref string) (*Endpoint, error)
	ListEndpoints(ctx context.Context, appID string, opts ListOptions) ([]*Endpoint, error)
	// UpdateEndpoint replaces every mutable field of the endpoint, its
	// headers and secrets included.
	UpdateEndpoint(ctx context.Context, ep *Endpoint) error
	// DeleteEndpoint deletes the endpoint with its deliveries and attempts.
	DeleteEndpoint(ctx context.Context, appID, id string) error
	// RotateEndpointSecret makes next the current secret; the previous
	// current secret keeps signing until graceUntil. Secrets whose grace
	// period ended are dropped.
	RotateEndpointSecret(ctx context.Context, appID, id string, next []byte, graceUntil, now time.Time) error

	// CreateMessages stores a batch of messages and, for each, one pending
	// delivery per endpoint of its application that accepts it, all in one
	// transaction (group commit). It returns one result per message in
	// order; a message's own failure is in its result and does not stop the
	// others. The error is for the batch as a whole (nothing committed).
	CreateMessages(ctx context.Context, msgs []*Message) ([]MessageResult, error)
	GetMessage(ctx context.Context, appID, ref string) (*Message, error)
	ListMessages(ctx context.Context, appID string, opts MessageListOptions) ([]*Message, error)
	// ExpungeMessageContent deletes a message's payload, keeping the rest.
	ExpungeMessageContent(ctx context.Context, appID, id string) error
	// ListMessageDeliveries returns a message's deliveries, one per endpoint
	// it was routed to, ordered by endpoint ID.
	ListMessageDeliveries(ctx context.Context, appID, msgID string) ([]*Delivery, error)

	// BeginIdempotent records rec as in progress when no unexpired record
	// with its key exists, and returns nil. Otherwise it changes nothing and
	// returns the existing record.
	BeginIdempotent(ctx context.Context, rec *IdempotencyRecord) (*IdempotencyRecord, error)
	// CompleteIdempotent stores the response of an in-progress record.
	CompleteIdempotent(ctx context.Context, key string, statusCode int, body []byte) error
	// AbandonIdempotent forgets a record, so the request can be retried.
	AbandonIdempotent(ctx context.Context, key string) error
	// DeleteExpiredIdempotent forgets up to limit records expired at now and
	// returns how many it deleted.
	DeleteExpiredIdempotent(ctx context.Context, now time.Time, limit int) (int, error)
}
