package herald

import "time"

// AttemptStatus is the outcome of one attempt, numbered as Svix numbers
// MessageStatus.
type AttemptStatus int

const (
	AttemptSucceeded AttemptStatus = 0
	AttemptPending   AttemptStatus = 1
	AttemptFailed    AttemptStatus = 2
	AttemptSending   AttemptStatus = 3
)

// TriggerType says why an attempt was made, numbered as Svix numbers
// MessageAttemptTriggerType.
type TriggerType int

const (
	TriggerScheduled TriggerType = 0 // the first try or a retry on schedule
	TriggerManual    TriggerType = 1 // a resend or recover asked for by a user
)

// MaxResponseBody is how much of an endpoint's response an attempt keeps.
const MaxResponseBody = 4 << 10

// Attempt is one try of a delivery: what was sent where, and what came back.
type Attempt struct {
	ID         string
	DeliveryID string
	AppID      string
	MessageID  string
	EndpointID string
	URL        string
	// ResponseStatus is the endpoint's HTTP status, 0 when none came back.
	ResponseStatus int
	// Response is the start of the response body, at most MaxResponseBody.
	Response []byte
	Duration time.Duration
	Status   AttemptStatus
	Trigger  TriggerType
	// Error says why an attempt failed without a response (timeout,
	// refused connection, blocked address); "" otherwise.
	Error     string
	CreatedAt time.Time
}

// AttemptListOptions select a page of an application's attempts, ordered by
// attempt ID. MessageID or EndpointID (or both) narrow it down.
type AttemptListOptions struct {
	ListOptions
	MessageID  string
	EndpointID string
	// Status, when not nil, keeps attempts with this status only.
	Status *AttemptStatus
	// StatusCodeClass, when not zero, keeps attempts whose response status
	// is in this class: 100, 200, 300, 400 or 500 for 1xx–5xx, and -1 for
	// attempts that got no response at all.
	StatusCodeClass int
	// EventTypes and Channel filter on the attempt's message.
	EventTypes []string
	Channel    string
	// Before and After bound the attempt's time (exclusive).
	Before time.Time
	After  time.Time
}
