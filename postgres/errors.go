package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"

	"github.com/herald-webhooks/herald"
)

// conflictMessages names what is taken for each unique constraint, keyed by
// the name of its index; the texts are the SQLite store's.
var conflictMessages = map[string]string{
	"application_pkey":     "An application with this id already exists.",
	"application_uid":      "An application with this uid already exists.",
	"event_type_pkey":      "An event type with this name already exists.",
	"endpoint_pkey":        "An endpoint with this id already exists.",
	"endpoint_uid":         "An endpoint with this uid already exists.",
	"message_pkey":         "A message with this id already exists.",
	"message_event_id":     "A message with this eventId already exists.",
	"idempotency_key_pkey": "This idempotency key is in use.",
}

// SQLSTATE codes the store acts on.
const (
	codeUniqueViolation     = "23505"
	codeForeignKeyViolation = "23503"
	codeQueryCanceled       = "57014" // statement_timeout, or a cancel request
)

// mapError turns a driver error into a herald error where one applies:
// unique violations become ECONFLICT; a failed connection, a closed pool, a
// deadline hit while waiting for the pool or the server, a server shutting
// down (57P01–57P03), a statement timeout, a connection exception (08xxx)
// and insufficient resources (53xxx) become EUNAVAILABLE wrapping the cause.
// Other errors are returned as they are. Messages name the constraint,
// never a value.
func mapError(err error) error {
	if err == nil {
		return nil
	}
	var herr *herald.Error
	if errors.As(err, &herr) {
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == codeUniqueViolation:
			msg := "The resource already exists."
			if m, ok := conflictMessages[pgErr.ConstraintName]; ok {
				msg = m
			}
			return herald.Errorf(herald.ECONFLICT, "%s", msg)
		case strings.HasPrefix(pgErr.Code, "08"), strings.HasPrefix(pgErr.Code, "53"),
			strings.HasPrefix(pgErr.Code, "57P"), pgErr.Code == codeQueryCanceled:
			return unavailable(err)
		}
		return err
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	switch {
	case errors.As(err, &connectErr), errors.As(err, &netErr),
		errors.Is(err, puddle.ErrClosedPool), errors.Is(err, context.DeadlineExceeded),
		pgconn.Timeout(err), pgconn.SafeToRetry(err), isClosedConn(err):
		return unavailable(err)
	}
	return err
}

// isClosedConn reports whether err says the connection was closed under a
// call (the server went away mid-statement).
func isClosedConn(err error) bool {
	return strings.Contains(err.Error(), "conn closed") || strings.Contains(err.Error(), "unexpected EOF")
}

// unavailable returns an EUNAVAILABLE error that wraps cause.
func unavailable(cause error) error {
	return fmt.Errorf("%w: %w", herald.Errorf(herald.EUNAVAILABLE, "The database is unavailable."), cause)
}

// isForeignKey reports whether err is a foreign key violation.
func isForeignKey(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == codeForeignKeyViolation
}

// Not-found errors, one per resource.
var (
	errAppNotFound         = herald.Errorf(herald.ENOTFOUND, "Application not found.")
	errEventTypeNotFound   = herald.Errorf(herald.ENOTFOUND, "Event type not found.")
	errEndpointNotFound    = herald.Errorf(herald.ENOTFOUND, "Endpoint not found.")
	errMessageNotFound     = herald.Errorf(herald.ENOTFOUND, "Message not found.")
	errAttemptNotFound     = herald.Errorf(herald.ENOTFOUND, "Message attempt not found.")
	errIdempotencyNotFound = herald.Errorf(herald.ENOTFOUND, "Idempotency key not found.")
)

// notFound returns nf when err is pgx.ErrNoRows and err otherwise.
func notFound(err, nf error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return nf
	}
	return err
}

// mustAffect returns nf unless tag reports at least one changed row.
func mustAffect(tag pgconn.CommandTag, nf error) error {
	if tag.RowsAffected() == 0 {
		return nf
	}
	return nil
}
