package sqlite

import (
	"context"
	"database/sql"
	"strings"

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
	m, err := scanMessage(s.r.QueryRowContext(ctx, `SELECT `+messageReadColumns+` FROM message WHERE app_id = ? AND id = ?`, appID, ref))
	if err == sql.ErrNoRows {
		m, err = scanMessage(s.r.QueryRowContext(ctx, `SELECT `+messageReadColumns+` FROM message WHERE app_id = ? AND event_id = ?`, appID, ref))
	}
	if err != nil {
		return nil, s.fail("get message", notFound(err, errMessageNotFound))
	}
	return m, nil
}

// ListMessages returns a page of application appID's messages ordered by
// ID, filtered by opts.
//
// With a tag it walks message_tag's (app_id, tag, message_id) in message
// order and joins each entry to its message, so a rare tag among a million
// messages costs its own rows, not a scan.
func (s *Store) ListMessages(ctx context.Context, appID string, opts herald.MessageListOptions) ([]*herald.Message, error) {
	q, args := messagesQuery(appID, opts)
	rows, err := s.r.QueryContext(ctx, q, args...)
	out, err := collect(rows, err, scanMessage)
	if err != nil {
		return nil, s.fail("list messages", err)
	}
	return out, nil
}

// messagesQuery returns the query of one ListMessages page and its
// arguments.
func messagesQuery(appID string, opts herald.MessageListOptions) (string, []any) {
	var q strings.Builder
	args := make([]any, 0, 7+len(opts.EventTypes))
	f := messageFilter{msg: "message.", timeColumn: "created_at", idColumn: "id", idPrefix: herald.PrefixMessage, eventTypes: opts.EventTypes,
		channel: opts.Channel, before: opts.Before, after: opts.After}
	if opts.Tag == "" {
		q.WriteString(`SELECT ` + messageReadColumns + ` FROM message WHERE app_id = ?`)
		args = append(args, appID)
	} else {
		// The tag entry's app_id bounds the walk; the message's is the
		// same by construction.
		q.WriteString(`SELECT ` + prefixed("m.", messageReadColumns) + ` FROM message_tag t JOIN message m ON m.id = t.message_id
			WHERE t.app_id = ? AND t.tag = ?`)
		args = append(args, appID, opts.Tag)
		f.msg, f.timeColumn, f.idColumn = "m.", "m.created_at", "t.message_id"
	}
	cond, order := pageClause(f.idColumn, opts.ListOptions)
	q.WriteString(cond)
	if opts.Cursor != "" {
		args = append(args, opts.Cursor)
	}
	args = f.appendTo(&q, args)
	q.WriteString(order + ` LIMIT ?`)
	args = append(args, limit(opts.ListOptions))
	return q.String(), args
}

// ExpungeMessageContent sets the message's payload to NULL.
func (s *Store) ExpungeMessageContent(ctx context.Context, appID, id string) error {
	err := s.change(ctx, &auditTarget{"message.content.expunge", herald.AuditMessage, id, appID}, func(ctx context.Context, db execer) error {
		res, err := db.ExecContext(ctx, `UPDATE message SET payload = NULL WHERE app_id = ? AND id = ?`, appID, id)
		if err != nil {
			return err
		}
		return mustAffect(res, errMessageNotFound)
	})
	if err != nil {
		return s.fail("expunge message content", err)
	}
	return nil
}

// DeleteMessage deletes the message; its tags, deliveries and attempts go
// with it (foreign keys).
func (s *Store) DeleteMessage(ctx context.Context, appID, id string) error {
	err := s.change(ctx, &auditTarget{"message.delete", herald.AuditMessage, id, appID}, func(ctx context.Context, db execer) error {
		res, err := db.ExecContext(ctx, `DELETE FROM message WHERE app_id = ? AND id = ?`, appID, id)
		if err != nil {
			return err
		}
		return mustAffect(res, errMessageNotFound)
	})
	if err != nil {
		return s.fail("delete message", err)
	}
	return nil
}

const deliveryColumns = `id, app_id, message_id, endpoint_id, status, next_attempt_at, attempts, lease_owner, lease_expires_at, trigger, created_at, updated_at`

// ListMessageDeliveries returns the deliveries of message msgID ordered by
// endpoint ID; an unknown message is ENOTFOUND.
func (s *Store) ListMessageDeliveries(ctx context.Context, appID, msgID string) ([]*herald.Delivery, error) {
	// One read transaction, so the existence check and the list agree.
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, s.fail("list message deliveries", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	var one int
	err = tx.QueryRowContext(ctx, `SELECT 1 FROM message WHERE app_id = ? AND id = ?`, appID, msgID).Scan(&one)
	if err != nil {
		return nil, s.fail("list message deliveries", notFound(err, errMessageNotFound))
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+deliveryColumns+` FROM delivery WHERE message_id = ? AND app_id = ? ORDER BY endpoint_id`, msgID, appID)
	out, err := collect(rows, err, scanDelivery)
	if err != nil {
		return nil, s.fail("list message deliveries", err)
	}
	return out, nil
}

func scanMessage(row scanner) (*herald.Message, error) {
	var (
		m                    herald.Message
		eventID, traceParent sql.NullString
		channels, tags       sql.NullString
		createdAt            int64
		deliverAt            sql.NullInt64
	)
	err := row.Scan(&m.ID, &m.AppID, &eventID, &m.EventType, &m.Payload, &m.ContentType, &channels, &tags, &createdAt, &traceParent, &deliverAt)
	if err != nil {
		return nil, err
	}
	m.EventID = eventID.String
	m.TraceParent = traceParent.String
	m.CreatedAt = fromMicros(createdAt)
	m.DeliverAt = fromNullMicros(deliverAt)
	if m.Channels, err = parseList(channels); err != nil {
		return nil, err
	}
	if m.Tags, err = parseList(tags); err != nil {
		return nil, err
	}
	return &m, nil
}

func scanDelivery(row scanner) (*herald.Delivery, error) {
	var (
		d                                   herald.Delivery
		status                              string
		leaseOwner                          sql.NullString
		leaseExpiresAt                      sql.NullInt64
		nextAttemptAt, createdAt, updatedAt int64
	)
	err := row.Scan(&d.ID, &d.AppID, &d.MessageID, &d.EndpointID, &status, &nextAttemptAt, &d.Attempts,
		&leaseOwner, &leaseExpiresAt, &d.Trigger, &createdAt, &updatedAt)
	if err != nil {
		return nil, err
	}
	d.Status = herald.DeliveryStatus(status)
	d.NextAttemptAt = fromMicros(nextAttemptAt)
	d.LeaseOwner = leaseOwner.String
	d.LeaseExpiresAt = fromNullMicros(leaseExpiresAt)
	d.CreatedAt = fromMicros(createdAt)
	d.UpdatedAt = fromMicros(updatedAt)
	return &d, nil
}
