package sqlite

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/herald-webhooks/herald"
)

// conflictMessages names what is taken for each unique constraint, keyed by
// the column list SQLite reports ("UNIQUE constraint failed: <columns>").
var conflictMessages = map[string]string{
	"application.id":                   "An application with this id already exists.",
	"application.uid":                  "An application with this uid already exists.",
	"event_type.name":                  "An event type with this name already exists.",
	"endpoint.id":                      "An endpoint with this id already exists.",
	"endpoint.app_id, endpoint.uid":    "An endpoint with this uid already exists.",
	"message.id":                       "A message with this id already exists.",
	"message.app_id, message.event_id": "A message with this eventId already exists.",
	"idempotency_key.key":              "This idempotency key is in use.",
}

// errDBClosed is the text database/sql gives a call on a closed *sql.DB; the
// error itself is not exported.
const errDBClosed = "sql: database is closed"

// mapError turns a driver error into a herald error where one applies:
// unique violations become ECONFLICT; a full disk, an I/O error, a lock still
// held after the busy timeout, a read-only or unopenable file and a closed
// database become EUNAVAILABLE wrapping the cause. Other errors are returned
// as they are. Messages name the constraint, never a value.
func mapError(err error) error {
	if err == nil {
		return nil
	}
	var herr *herald.Error
	if errors.As(err, &herr) {
		return err
	}
	if errors.Is(err, sql.ErrConnDone) || strings.Contains(err.Error(), errDBClosed) {
		return unavailable(err)
	}
	var serr *sqlite.Error
	if !errors.As(err, &serr) {
		return err
	}
	switch serr.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		msg := "The resource already exists."
		if m, ok := conflictMessages[constraintColumns(serr.Error())]; ok {
			msg = m
		}
		return herald.Errorf(herald.ECONFLICT, "%s", msg)
	}
	switch serr.Code() & 0xff {
	case sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED,
		sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_PROTOCOL:
		return unavailable(err)
	}
	return err
}

// constraintColumns returns the column list of a constraint error's text,
// "...: UNIQUE constraint failed: app.a, app.b (2067)" → "app.a, app.b".
func constraintColumns(text string) string {
	const marker = "constraint failed: "
	i := strings.LastIndex(text, marker)
	if i < 0 {
		return ""
	}
	cols, _, _ := strings.Cut(text[i+len(marker):], " (")
	return strings.TrimSpace(cols)
}

// unavailable returns an EUNAVAILABLE error that wraps cause.
func unavailable(cause error) error {
	return fmt.Errorf("%w: %w", herald.Errorf(herald.EUNAVAILABLE, "The database is unavailable."), cause)
}

// isBusy reports whether err is SQLITE_BUSY (any extended code).
func isBusy(err error) bool {
	var serr *sqlite.Error
	return errors.As(err, &serr) && serr.Code()&0xff == sqlite3.SQLITE_BUSY
}

// isForeignKey reports whether err is a foreign key violation.
func isForeignKey(err error) bool {
	var serr *sqlite.Error
	return errors.As(err, &serr) && serr.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}

// Not-found errors, one per resource.
var (
	errAppNotFound         = herald.Errorf(herald.ENOTFOUND, "Application not found.")
	errEventTypeNotFound   = herald.Errorf(herald.ENOTFOUND, "Event type not found.")
	errEndpointNotFound    = herald.Errorf(herald.ENOTFOUND, "Endpoint not found.")
	errMessageNotFound     = herald.Errorf(herald.ENOTFOUND, "Message not found.")
	errIdempotencyNotFound = herald.Errorf(herald.ENOTFOUND, "Idempotency key not found.")
)

// notFound returns nf when err is sql.ErrNoRows and err otherwise.
func notFound(err, nf error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return nf
	}
	return err
}

// mustAffect returns nf unless res reports at least one changed row.
func mustAffect(res sql.Result, nf error) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return nf
	}
	return nil
}
