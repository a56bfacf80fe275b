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

// ApplyUpdate runs update on app, the application as stored, and puts back
// what no update may change (ID, creation time). It returns the
// application as it was stored. Both stores' UpdateApplicationFunc use it
// inside their write transaction.
func (app *Application) ApplyUpdate(update func(*Application) error) (stored Application, err error) {
	stored = *app
	if err := update(app); err != nil {
		return stored, err
	}
	app.ID, app.CreatedAt = stored.ID, stored.CreatedAt
	return stored, nil
}

// ApplyUpdate runs update on et, the event type as stored, and puts back
// what no update may change (name, creation time). It returns the event
// type as it was stored. Both stores' UpdateEventTypeFunc use it inside
// their write transaction.
func (et *EventType) ApplyUpdate(update func(*EventType) error) (stored EventType, err error) {
	stored = *et
	if err := update(et); err != nil {
		return stored, err
	}
	et.Name, et.CreatedAt = stored.Name, stored.CreatedAt
	return stored, nil
}
