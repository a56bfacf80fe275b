package herald

import "time"

// IdempotencyRecord remembers one request made with an idempotency-key so
// that a retry gets the first answer instead of doing the work twice.
type IdempotencyRecord struct {
	// Key is scoped by the caller: credentials, method and path go into it.
	Key string
	// RequestHash is a hash of the request body; a retry with a different
	// body is refused.
	RequestHash []byte
	// Completed is false while the first request is still running.
	Completed bool
	// StatusCode and Body are the stored response once Completed.
	StatusCode int
	Body       []byte
	CreatedAt  time.Time
	// ExpiresAt is when the record may be forgotten.
	ExpiresAt time.Time
}
