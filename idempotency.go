package herald

import (
	"fmt"
	"time"
)

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

// SealResponse seals a stored idempotent response body, bound to its
// record's key: a response can hold a credential (an app-portal token's
// link, say), and the database keeps no usable credential in clear.
func SealResponse(s Sealer, key string, body []byte) ([]byte, error) {
	if body == nil {
		return nil, nil
	}
	sealed, err := s.Seal(body, []byte("idempotency:"+key))
	if err != nil {
		return nil, fmt.Errorf("seal idempotent response: %w", err)
	}
	return sealed, nil
}

// OpenResponse is the inverse of SealResponse. A body stored in clear by
// a Herald from before sealing (a JSON document, so its first byte is
// never a sealed value's version byte) is returned as it is.
func OpenResponse(s Sealer, key string, stored []byte) ([]byte, error) {
	if len(stored) == 0 || stored[0] == '{' || stored[0] == '[' {
		return stored, nil
	}
	body, err := s.Open(stored, []byte("idempotency:"+key))
	if err != nil {
		return nil, fmt.Errorf("open idempotent response: %w", err)
	}
	return body, nil
}
