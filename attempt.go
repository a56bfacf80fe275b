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
