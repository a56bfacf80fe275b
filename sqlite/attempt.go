package sqlite

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/herald-webhooks/herald"
)

const attemptColumns = `id, delivery_id, message_id, endpoint_id, app_id, url, response_status, response_body, duration_us, status, trigger, error, created_at`

var errAttemptNotFound = herald.Errorf(herald.ENOTFOUND, "Message attempt not found.")

// ListAttempts returns a page of application appID's attempts ordered by
// attempt ID, filtered by opts. With a MessageID it walks attempt_message,
// else with an EndpointID attempt_endpoint; the message filters join the
// message by its primary key.
func (s *Store) ListAttempts(ctx context.Context, appID string, opts herald.AttemptListOptions) ([]*herald.Attempt, error) {
	q, args := attemptListQuery(appID, opts)
	rows, err := s.r.QueryContext(ctx, q, args...)
	out, err := collect(rows, err, scanAttempt)
	if err != nil {
		return nil, s.fail("list attempts", err)
	}
	return out, nil
}

// attemptListQuery returns the query of one ListAttempts page and its
// arguments.
func attemptListQuery(appID string, opts herald.AttemptListOptions) (string, []any) {
	var q strings.Builder
	args := make([]any, 0, 10+len(opts.EventTypes))
	q.WriteString(`SELECT ` + prefixed("a.", attemptColumns) + ` FROM attempt a`)
	if len(opts.EventTypes) > 0 || opts.Channel != "" {
		q.WriteString(` JOIN message m ON m.id = a.message_id`)
	}
	q.WriteString(` WHERE a.app_id = ?`)
	args = append(args, appID)
	if opts.MessageID != "" {
		q.WriteString(` AND a.message_id = ?`)
		args = append(args, opts.MessageID)
	}
	if opts.EndpointID != "" {
		q.WriteString(` AND a.endpoint_id = ?`)
		args = append(args, opts.EndpointID)
	}
	cond, order := pageClause("a.id", opts.ListOptions)
	q.WriteString(cond)
	if opts.Cursor != "" {
		args = append(args, opts.Cursor)
	}
	if opts.Status != nil {
		q.WriteString(` AND a.status = ?`)
		args = append(args, int(*opts.Status))
	}
	switch c := opts.StatusCodeClass; {
	case c == -1:
		q.WriteString(` AND a.response_status = 0`)
	case c != 0:
		q.WriteString(` AND a.response_status >= ? AND a.response_status < ?`)
		args = append(args, c, c+100)
	}
	args = messageFilter{msg: "m.", timeColumn: "a.created_at", eventTypes: opts.EventTypes,
		channel: opts.Channel, before: opts.Before, after: opts.After}.appendTo(&q, args)
	q.WriteString(order + ` LIMIT ?`)
	args = append(args, limit(opts.ListOptions))
	return q.String(), args
}

// GetAttempt returns the attempt attemptID of message msgID.
func (s *Store) GetAttempt(ctx context.Context, appID, msgID, attemptID string) (*herald.Attempt, error) {
	a, err := scanAttempt(s.r.QueryRowContext(ctx, `SELECT `+attemptColumns+` FROM attempt
		WHERE id = ? AND app_id = ? AND message_id = ?`, attemptID, appID, msgID))
	if err != nil {
		return nil, s.fail("get attempt", notFound(err, errAttemptNotFound))
	}
	return a, nil
}

// ExpungeAttemptContent sets the attempt's response body to NULL.
func (s *Store) ExpungeAttemptContent(ctx context.Context, appID, msgID, attemptID string) error {
	err := s.change(ctx, &auditTarget{"attempt.content.expunge", herald.AuditAttempt, attemptID, appID}, func(ctx context.Context, db execer) error {
		res, err := db.ExecContext(ctx, `UPDATE attempt SET response_body = NULL
			WHERE id = ? AND app_id = ? AND message_id = ?`, attemptID, appID, msgID)
		if err != nil {
			return err
		}
		return mustAffect(res, errAttemptNotFound)
	})
	if err != nil {
		return s.fail("expunge attempt content", err)
	}
	return nil
}

func scanAttempt(row scanner) (*herald.Attempt, error) {
	var (
		a                     herald.Attempt
		errText               sql.NullString
		durationUS, createdAt int64
	)
	err := row.Scan(&a.ID, &a.DeliveryID, &a.MessageID, &a.EndpointID, &a.AppID, &a.URL, &a.ResponseStatus,
		&a.Response, &durationUS, &a.Status, &a.Trigger, &errText, &createdAt)
	if err != nil {
		return nil, err
	}
	a.Duration = time.Duration(durationUS) * time.Microsecond
	a.Error = errText.String
	a.CreatedAt = fromMicros(createdAt)
	return &a, nil
}

// prefixed returns a comma-separated column list with each column
// qualified by prefix ("a." turns "id, url" into "a.id, a.url").
func prefixed(prefix, columns string) string {
	cols := strings.Split(columns, ", ")
	for i, c := range cols {
		cols[i] = prefix + c
	}
	return strings.Join(cols, ", ")
}
