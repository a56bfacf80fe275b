package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/herald-webhooks/herald"
)

// errorBody is the shape of every non-validation error: Svix's HttpErrorOut.
type errorBody struct {
	Code   string `json:"code"`
	Detail string `json:"detail"`
}

// statusByCode is the one table that maps domain error codes to HTTP
// statuses. Codes not in it are internal errors (500).
var statusByCode = map[string]int{
	herald.ENOTFOUND:     http.StatusNotFound,
	herald.ECONFLICT:     http.StatusConflict,
	herald.EINVALID:      http.StatusUnprocessableEntity,
	herald.EUNAVAILABLE:  http.StatusServiceUnavailable,
	herald.EUNAUTHORIZED: http.StatusUnauthorized,
	herald.EFORBIDDEN:    http.StatusForbidden,
	herald.ETOOLARGE:     http.StatusRequestEntityTooLarge,
	herald.ERATELIMIT:    http.StatusTooManyRequests,
	herald.EBADREQUEST:   http.StatusBadRequest,
}

// retryAfterSeconds is the Retry-After sent with 503 and 429 answers.
const retryAfterSeconds = "5"

// writeJSON writes v as a JSON body with the given status. Only values built
// by this package are encoded, so a failure is a bug; it is returned before
// anything is written, for the caller to answer with a 500.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	writeRaw(w, status, body)
	return nil
}

// writeErrorBody writes Svix's {"code", "detail"} error shape; two strings
// always encode, so there is no error to return.
func writeErrorBody(w http.ResponseWriter, status int, code, detail string) {
	_ = writeJSON(w, status, errorBody{Code: code, Detail: detail})
}

// writeRaw writes an already encoded JSON body with the given status.
func writeRaw(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeError answers with the status and body for err. Internal errors are
// logged with their real text and answered with a generic detail.
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if verrs, ok := asValidation(err); ok {
		_ = writeJSON(w, http.StatusUnprocessableEntity, validationBody{Detail: verrs}) // strings only
		return
	}
	var media *unsupportedMediaType
	if errors.As(err, &media) {
		writeErrorBody(w, http.StatusUnsupportedMediaType, "unsupported_media_type",
			"Request body must be JSON (Content-Type: application/json).")
		return
	}
	code := herald.ErrorCode(err)
	status, known := statusByCode[code]
	if !known {
		a.log(r.Context()).LogAttrs(r.Context(), slog.LevelError, "request failed",
			slog.String("error", err.Error()))
		writeErrorBody(w, http.StatusInternalServerError, herald.EINTERNAL, "Internal error.")
		return
	}
	if status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", retryAfterSeconds)
	}
	if status == http.StatusServiceUnavailable {
		a.log(r.Context()).LogAttrs(r.Context(), slog.LevelWarn, "store unavailable",
			slog.String("error", err.Error()))
	}
	writeErrorBody(w, status, code, herald.ErrorMessage(err))
}

// log returns the request's logger (with its request_id) or the API's.
func (a *API) log(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	return a.logger
}

// fieldError is one item of a 422 answer: where the problem is and what it is.
type fieldError struct {
	Loc  []string `json:"loc"`
	Msg  string   `json:"msg"`
	Type string   `json:"type"`
}

// validationBody is Svix's HTTPValidationError.
type validationBody struct {
	Detail []fieldError `json:"detail"`
}

// validation collects the problems of one request; its err is nil when
// there are none.
type validation struct {
	items []fieldError
}

// add records a problem at loc (e.g. "body", "url").
func (v *validation) add(msg string, loc ...string) {
	v.items = append(v.items, fieldError{Loc: loc, Msg: msg, Type: "value_error"})
}

// err returns the collected problems as an error, or nil.
func (v *validation) err() error {
	if len(v.items) == 0 {
		return nil
	}
	return &validationError{items: v.items}
}

// validationError carries 422 items through the error return of helpers.
type validationError struct {
	items []fieldError
}

func (e *validationError) Error() string {
	return "validation failed: " + e.items[0].Msg
}

func asValidation(err error) ([]fieldError, bool) {
	ve, ok := err.(*validationError)
	if !ok {
		return nil, false
	}
	return ve.items, true
}

// invalid returns a one-item validation error.
func invalid(msg string, loc ...string) error {
	var v validation
	v.add(msg, loc...)
	return v.err()
}
