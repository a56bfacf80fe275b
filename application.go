package herald

import "time"

// Application is one of the sender's customers: the scope that owns
// endpoints and messages.
type Application struct {
	ID   string
	UID  string // the client's own unique identifier; "" when unset
	Name string
	// RateLimit caps deliveries per second to the application's endpoints;
	// nil means unlimited.
	RateLimit *uint16
	Metadata  map[string]string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// EventType names a kind of message and documents its schema.
type EventType struct {
	Name        string
	Description string
	Archived    bool
	Deprecated  bool
	FeatureFlag string // "" when unset
	// Schemas is a JSON object of version → JSON schema, or nil.
	Schemas   []byte
	CreatedAt time.Time
	UpdatedAt time.Time
}

// EventTypeListOptions selects a page of event types, ordered by name.
type EventTypeListOptions struct {
	ListOptions
	IncludeArchived bool
}
