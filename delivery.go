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
	CreatedAt      time.Time
	UpdatedAt      time.Time
}
