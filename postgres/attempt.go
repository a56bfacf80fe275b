package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-webhooks/herald"
)

const attemptColumns = `id, delivery_id, message_id, endpoint_id, app_id, url, response_status, response_body, duration_us, status, trigger_type, error, created_at`

// ListAttempts returns a page of application appID's attempts ordered by
// attempt ID, filtered by opts. With a MessageID it walks attempt_message,
// with an EndpointID attempt_endpoint, else attempt_app; the message
// filters join the message by its primary key.
func (s *Store) ListAttempts(ctx context.Context, appID string, opts herald.AttemptListOptions) ([]*herald.Attempt, error) {
	var q query
	q.add(`SELECT ` + prefixed("a.", attemptColumns) + ` FROM attempt a`)
	if len(opts.EventTypes) > 0 || opts.Channel != "" {
		q.add(` JOIN message m ON m.id = a.message_id`)
	}
	q.add(` WHERE a.app_id = ` + q.arg(appID))
	if opts.MessageID != "" {
		q.add(` AND a.message_id = ` + q.arg(opts.MessageID))
	}
	if opts.EndpointID != "" {
		q.add(` AND a.endpoint_id = ` + q.arg(opts.EndpointID))
	}
	if opts.Status != nil {
		q.add(` AND a.status = ` + q.arg(int16(*opts.Status)))
	}
	switch c := opts.StatusCodeClass; {
	case c == -1:
		q.add(` AND a.response_status = 0`)
	case c != 0:
		q.add(` AND a.response_status >= ` + q.arg(c) + ` AND a.response_status < ` + q.arg(c+100))
	}
	messageFilter{msg: "m.", timeColumn: "a.created_at", eventTypes: opts.EventTypes,
		channel: opts.Channel, before: opts.Before, after: opts.After}.addTo(&q)
	q.add(q.page("a.id", opts.ListOptions))
	rows, err := s.pool.Query(ctx, q.String(), q.args...)
	out, err := collect(rows, err, scanAttempt)
	if err != nil {
		return nil, s.fail("list attempts", err)
	}
	return out, nil
}

// GetAttempt returns the attempt attemptID of message msgID.
func (s *Store) GetAttempt(ctx context.Context, appID, msgID, attemptID string) (*herald.Attempt, error) {
	a, err := scanAttempt(s.pool.QueryRow(ctx, `SELECT `+attemptColumns+` FROM attempt
		WHERE id = $1 AND app_id = $2 AND message_id = $3`, attemptID, appID, msgID))
	if err != nil {
		return nil, s.fail("get attempt", notFound(err, errAttemptNotFound))
	}
	return a, nil
}

// ExpungeAttemptContent sets the attempt's response body to NULL.
func (s *Store) ExpungeAttemptContent(ctx context.Context, appID, msgID, attemptID string) error {
	err := s.change(ctx, &auditTarget{"attempt.content.expunge", herald.AuditAttempt, attemptID, appID}, func(db execer) error {
		tag, err := db.Exec(ctx, `UPDATE attempt SET response_body = NULL
			WHERE id = $1 AND app_id = $2 AND message_id = $3`, attemptID, appID, msgID)
		if err != nil {
			return err
		}
		return mustAffect(tag, errAttemptNotFound)
	})
	if err != nil {
		return s.fail("expunge attempt content", err)
	}
	return nil
}

func scanAttempt(row pgx.Row) (*herald.Attempt, error) {
	var (
		a               herald.Attempt
		status, trigger int16
		errText         *string
		durationUS      int64
		createdAt       time.Time
	)
	err := row.Scan(&a.ID, &a.DeliveryID, &a.MessageID, &a.EndpointID, &a.AppID, &a.URL, &a.ResponseStatus,
		&a.Response, &durationUS, &status, &trigger, &errText, &createdAt)
	if err != nil {
		return nil, err
	}
	a.Status = herald.AttemptStatus(status)
	a.Trigger = herald.TriggerType(trigger)
	a.Duration = time.Duration(durationUS) * time.Microsecond
	a.Error = fromNullString(errText)
	a.CreatedAt = createdAt.UTC()
	return &a, nil
}
