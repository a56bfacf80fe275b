package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/herald-webhooks/herald"
)

const messageColumns = `id, app_id, event_id, event_type, payload, content_type, channels, tags, created_at`

// messageReadColumns are the columns a message is read with:
// messageColumns, the traceparent its deliveries carry on and the due time
// of a scheduled message.
// messageInsertColumns are the columns a new message is written with:
// messageReadColumns and the write-only payload_expires_at, which only the
// cleaner reads.
const (
	messageReadColumns   = messageColumns + `, traceparent, deliver_at`
	messageInsertColumns = messageReadColumns + `, payload_expires_at`
	messageInsertArgs    = 12
)

// GetMessage returns the message of application appID whose ID, or else
// eventId, is ref.
func (s *Store) GetMessage(ctx context.Context, appID, ref string) (*herald.Message, error) {
	m, err := scanMessage(s.pool.QueryRow(ctx, `SELECT `+messageReadColumns+` FROM message
		WHERE app_id = $1 AND (id = $2 OR event_id = $2) ORDER BY id = $2 DESC LIMIT 1`, appID, ref))
	if err != nil {
		return nil, s.fail("get message", notFound(err, errMessageNotFound))
	}
	return m, nil
}

// ListMessages returns a page of application appID's messages ordered by
// ID, filtered by opts.
//
// With a tag it walks message_tag's primary key (app_id, tag, message_id)
// in message order and joins each entry to its message, so a rare tag
// among a million messages costs its own rows, not a scan.
func (s *Store) ListMessages(ctx context.Context, appID string, opts herald.MessageListOptions) ([]*herald.Message, error) {
	q, args := messagesQuery(appID, opts)
	rows, err := s.pool.Query(ctx, q, args...)
	out, err := collect(rows, err, scanMessage)
	if err != nil {
		return nil, s.fail("list messages", err)
	}
	return out, nil
}

// messagesQuery returns the statement of one ListMessages page and its
// arguments, planned for their values when they matter (customPlan).
func messagesQuery(appID string, opts herald.MessageListOptions) (string, []any) {
	var q query
	f := messageFilter{msg: "message.", timeColumn: "created_at", idColumn: "id", idPrefix: herald.PrefixMessage, eventTypes: opts.EventTypes,
		channel: opts.Channel, before: opts.Before, after: opts.After}
	if opts.Tag == "" {
		q.add(`SELECT ` + messageReadColumns + ` FROM message WHERE app_id = ` + q.arg(appID))
	} else {
		// The LATERAL subqueries with OFFSET 0 (which PostgreSQL does not
		// flatten) keep the plan a walk of the tag's entries in message
		// order with one lookup per entry, as SQLite's CROSS JOIN does:
		// on a small table the planner would rather hash-join a scan of
		// message and sort.
		q.add(`SELECT ` + prefixed("m.", messageReadColumns) + ` FROM message_tag t
			CROSS JOIN LATERAL (SELECT ` + messageReadColumns + ` FROM message WHERE id = t.message_id OFFSET 0) m
			WHERE t.app_id = ` + q.arg(appID) + ` AND t.tag = ` + q.arg(opts.Tag))
		f.msg, f.timeColumn, f.idColumn = "m.", "m.created_at", "t.message_id"
	}
	f.addTo(&q)
	return q.endMessagePage(f, opts.Tag, opts.ListOptions)
}

// ExpungeMessageContent sets the message's payload to NULL.
func (s *Store) ExpungeMessageContent(ctx context.Context, appID, id string) error {
	err := s.change(ctx, &auditTarget{"message.content.expunge", herald.AuditMessage, id, appID}, func(db execer) error {
		tag, err := db.Exec(ctx, `UPDATE message SET payload = NULL WHERE app_id = $1 AND id = $2`, appID, id)
		if err != nil {
			return err
		}
		return mustAffect(tag, errMessageNotFound)
	})
	if err != nil {
		return s.fail("expunge message content", err)
	}
	return nil
}

// DeleteMessage deletes the message; its tags, deliveries and attempts go
// with it (foreign keys).
func (s *Store) DeleteMessage(ctx context.Context, appID, id string) error {
	err := s.change(ctx, &auditTarget{"message.delete", herald.AuditMessage, id, appID}, func(db execer) error {
		tag, err := db.Exec(ctx, `DELETE FROM message WHERE app_id = $1 AND id = $2`, appID, id)
		if err != nil {
			return err
		}
		return mustAffect(tag, errMessageNotFound)
	})
	if err != nil {
		return s.fail("delete message", err)
	}
	return nil
}

const deliveryColumns = `id, app_id, message_id, endpoint_id, status, next_attempt_at, attempts, lease_owner, lease_expires_at, trigger_type, created_at, updated_at`

// ListMessageDeliveries returns the deliveries of message msgID ordered by
// endpoint ID; an unknown message is ENOTFOUND. One statement reads the
// message and its deliveries, so the existence check and the list agree:
// the LEFT JOIN gives one row of NULLs for a message without deliveries
// and no row for a missing message.
func (s *Store) ListMessageDeliveries(ctx context.Context, appID, msgID string) ([]*herald.Delivery, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+prefixed("d.", deliveryColumns)+`
		FROM message m LEFT JOIN delivery d ON d.message_id = m.id AND d.app_id = m.app_id
		WHERE m.app_id = $1 AND m.id = $2 ORDER BY d.endpoint_id`, appID, msgID)
	if err != nil {
		return nil, s.fail("list message deliveries", err)
	}
	defer rows.Close()
	found := false
	var out []*herald.Delivery
	for rows.Next() {
		found = true
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, s.fail("list message deliveries", err)
		}
		if d != nil {
			out = append(out, d)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail("list message deliveries", err)
	}
	if !found {
		return nil, s.fail("list message deliveries", errMessageNotFound)
	}
	return out, nil
}

func scanMessage(row pgx.Row) (*herald.Message, error) {
	var (
		m                    herald.Message
		eventID, traceParent *string
		createdAt            time.Time
		deliverAt            pgtype.Timestamptz
	)
	err := row.Scan(&m.ID, &m.AppID, &eventID, &m.EventType, &m.Payload, &m.ContentType, &m.Channels, &m.Tags, &createdAt, &traceParent, &deliverAt)
	if err != nil {
		return nil, err
	}
	m.EventID = fromNullString(eventID)
	m.TraceParent = fromNullString(traceParent)
	m.CreatedAt = createdAt.UTC()
	m.DeliverAt = fromNullTime(deliverAt)
	return &m, nil
}

// deliveryRow holds a delivery's columns as scanned, NULLs included.
type deliveryRow struct {
	id, appID, messageID, endpointID, status *string
	nextAttemptAt, createdAt, updatedAt      pgtype.Timestamptz
	attempts                                 *int32
	leaseOwner                               *string
	leaseExpiresAt                           pgtype.Timestamptz
	trigger                                  *int16
}

// dest returns the scan destinations of deliveryColumns.
func (r *deliveryRow) dest() []any {
	return []any{&r.id, &r.appID, &r.messageID, &r.endpointID, &r.status, &r.nextAttemptAt, &r.attempts,
		&r.leaseOwner, &r.leaseExpiresAt, &r.trigger, &r.createdAt, &r.updatedAt}
}

// delivery returns the scanned delivery, or nil for a row of NULLs (an
// outer join that matched nothing).
func (r *deliveryRow) delivery() *herald.Delivery {
	if r.id == nil {
		return nil
	}
	d := &herald.Delivery{
		ID:             *r.id,
		AppID:          *r.appID,
		MessageID:      *r.messageID,
		EndpointID:     *r.endpointID,
		Status:         herald.DeliveryStatus(*r.status),
		NextAttemptAt:  fromNullTime(r.nextAttemptAt),
		Attempts:       int(*r.attempts),
		LeaseOwner:     fromNullString(r.leaseOwner),
		LeaseExpiresAt: fromNullTime(r.leaseExpiresAt),
		Trigger:        herald.TriggerType(*r.trigger),
		CreatedAt:      fromNullTime(r.createdAt),
		UpdatedAt:      fromNullTime(r.updatedAt),
	}
	return d
}

// scanDelivery scans deliveryColumns; it returns nil for a row of NULLs.
func scanDelivery(row pgx.Row) (*herald.Delivery, error) {
	var r deliveryRow
	if err := row.Scan(r.dest()...); err != nil {
		return nil, err
	}
	return r.delivery(), nil
}
