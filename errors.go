package herald

import (
	"errors"
	"fmt"
)

// Error codes. The HTTP layer maps each to one status in one table; the codes
// themselves are what Svix clients see in the "code" field.
const (
	ECONFLICT     = "conflict"              // a unique uid, eventId or name is taken
	EINVALID      = "validation"            // the input breaks a rule of the domain
	ENOTFOUND     = "not_found"             // the resource does not exist
	EUNAVAILABLE  = "service_unavailable"   // the store cannot be reached right now
	EINTERNAL     = "internal"              // a bug or an unexpected failure
	EUNAUTHORIZED = "authentication_failed" // no or wrong credentials
	EFORBIDDEN    = "forbidden"             // credentials lack access to the resource
	ETOOLARGE     = "payload_too_large"     // the request body is over the limit
	ERATELIMIT    = "rate_limited"          // the caller sent too many requests
	EBADREQUEST   = "bad_request"           // the request cannot be parsed
)

// Error is a domain error with a code from the list above and a message that
// is safe to show to API clients.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("herald error: code=%s message=%s", e.Code, e.Message)
}

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other non-nil error and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the message of the first *Error in err's chain, or a
// generic text for any other error so internals never reach a client.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error."
}
