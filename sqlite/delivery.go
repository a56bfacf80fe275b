package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/herald-webhooks/herald"
)

// replayChunk is how many of an application's messages ReplayMissing reads
// per write transaction, so a wide window never holds the write lock long.
const replayChunk = 500

// openStatuses is the condition of the partial index delivery_endpoint_open
// (migration 0007), which holds every delivery not done with success: a
// query that names one of these statuses as a literal (status = 'failed')
// or repeats this condition can search it.
const openStatuses = `(status = 'pending' OR status = 'sending' OR status = 'failed' OR status = 'canceled')`

// openStatusLiteral is the SQL literal of each status delivery_endpoint_open
// holds.
var openStatusLiteral = map[herald.DeliveryStatus]string{
	herald.DeliveryPending:  `'pending'`,
	herald.DeliverySending:  `'sending'`,
	herald.DeliveryFailed:   `'failed'`,
	herald.DeliveryCanceled: `'canceled'`,
}

// ListEndpointMessages returns a page of the messages routed to endpoint
// endpointID, each with its delivery, ordered by message ID and filtered by
// opts; it walks delivery_endpoint_open for a status other than succeeded,
// delivery_endpoint otherwise. An unknown endpoint is ENOTFOUND.
func (s *Store) ListEndpointMessages(ctx context.Context, appID, endpointID string, opts herald.DeliveryListOptions) ([]herald.EndpointMessage, error) {
	q, args := endpointMessagesQuery(appID, endpointID, opts)
	// One read transaction, so the existence check and the page agree.
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, s.fail("list endpoint messages", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	if err := endpointExists(ctx, tx, appID, endpointID); err != nil {
		return nil, s.fail("list endpoint messages", err)
	}
	rows, err := tx.QueryContext(ctx, q, args...)
	out, err := collect(rows, err, scanEndpointMessage)
	if err != nil {
		return nil, s.fail("list endpoint messages", err)
	}
	return out, nil
}

// endpointMessagesQuery returns the query of one ListEndpointMessages page
// and its arguments.
func endpointMessagesQuery(appID, endpointID string, opts herald.DeliveryListOptions) (string, []any) {
	var q strings.Builder
	args := make([]any, 0, 10+len(opts.EventTypes))
	idColumn := "d.message_id"
	if opts.Tag == "" {
		q.WriteString(`SELECT ` + prefixed("m.", messageReadColumns) + `, ` + prefixed("d.", deliveryColumns) + `
		FROM delivery d JOIN message m ON m.id = d.message_id
		WHERE d.endpoint_id = ? AND d.app_id = ?`)
		args = append(args, endpointID, appID)
	} else {
		// The walk is the tag's entries in message order, each looked up
		// in delivery_message_endpoint: a tag's messages are few beside an
		// endpoint's, and the page stays in message order. CROSS JOIN
		// keeps SQLite to that order.
		idColumn = "t.message_id"
		q.WriteString(`SELECT ` + prefixed("m.", messageReadColumns) + `, ` + prefixed("d.", deliveryColumns) + `
		FROM message_tag t CROSS JOIN delivery d CROSS JOIN message m
		WHERE t.app_id = ? AND t.tag = ? AND d.message_id = t.message_id AND d.endpoint_id = ? AND d.app_id = t.app_id
		AND m.id = t.message_id`)
		args = append(args, appID, opts.Tag, endpointID)
	}
	cond, order := pageClause(idColumn, opts.ListOptions)
	q.WriteString(cond)
	if opts.Cursor != "" {
		args = append(args, opts.Cursor)
	}
	if lit, ok := openStatusLiteral[opts.Status]; ok {
		// A literal, so that the planner proves delivery_endpoint_open
		// holds every row the query wants whatever its settings (with a
		// bound value it can, but only while query-planner stability is
		// off).
		q.WriteString(` AND d.status = ` + lit)
	} else if opts.Status != "" {
		// Succeeded: most of an endpoint's deliveries, found in
		// delivery_endpoint's message order.
		q.WriteString(` AND d.status = ?`)
		args = append(args, string(opts.Status))
	}
	args = messageFilter{msg: "m.", timeColumn: "m.created_at", idColumn: idColumn, idPrefix: herald.PrefixMessage, eventTypes: opts.EventTypes,
		channel: opts.Channel, before: opts.Before, after: opts.After}.appendTo(&q, args)
	q.WriteString(order + ` LIMIT ?`)
	args = append(args, limit(opts.ListOptions))
	return q.String(), args
}

// scanEndpointMessage scans a row of message columns then delivery columns.
func scanEndpointMessage(row scanner) (herald.EndpointMessage, error) {
	var (
		m                                    herald.Message
		d                                    herald.Delivery
		eventID, channels, tags, traceParent sql.NullString
		msgCreatedAt                         int64
		deliverAt                            sql.NullInt64
		status                               string
		leaseOwner                           sql.NullString
		leaseExpiresAt                       sql.NullInt64
		nextAttemptAt, createdAt, updatedAt  int64
	)
	err := row.Scan(&m.ID, &m.AppID, &eventID, &m.EventType, &m.Payload, &m.ContentType, &channels, &tags, &msgCreatedAt, &traceParent, &deliverAt,
		&d.ID, &d.AppID, &d.MessageID, &d.EndpointID, &status, &nextAttemptAt, &d.Attempts,
		&leaseOwner, &leaseExpiresAt, &d.Trigger, &createdAt, &updatedAt)
	if err != nil {
		return herald.EndpointMessage{}, err
	}
	m.EventID = eventID.String
	m.TraceParent = traceParent.String
	m.CreatedAt = fromMicros(msgCreatedAt)
	m.DeliverAt = fromNullMicros(deliverAt)
	if m.Channels, err = parseList(channels); err != nil {
		return herald.EndpointMessage{}, err
	}
	if m.Tags, err = parseList(tags); err != nil {
		return herald.EndpointMessage{}, err
	}
	d.Status = herald.DeliveryStatus(status)
	d.NextAttemptAt = fromMicros(nextAttemptAt)
	d.LeaseOwner = leaseOwner.String
	d.LeaseExpiresAt = fromNullMicros(leaseExpiresAt)
	d.CreatedAt = fromMicros(createdAt)
	d.UpdatedAt = fromMicros(updatedAt)
	return herald.EndpointMessage{Message: &m, Delivery: &d}, nil
}

// querier is a *sql.Tx or *sql.DB.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// endpointExists returns ENOTFOUND unless application appID has endpoint id.
func endpointExists(ctx context.Context, q querier, appID, id string) error {
	var one int
	err := q.QueryRowContext(ctx, `SELECT 1 FROM endpoint WHERE id = ? AND app_id = ?`, id, appID).Scan(&one)
	return notFound(err, errEndpointNotFound)
}

// messageExists returns ENOTFOUND unless application appID has message id.
func messageExists(ctx context.Context, q querier, appID, id string) error {
	var one int
	err := q.QueryRowContext(ctx, `SELECT 1 FROM message WHERE id = ? AND app_id = ?`, id, appID).Scan(&one)
	return notFound(err, errMessageNotFound)
}

// ResendDelivery queues message msgID for endpoint endpointID now, as a
// manual attempt, with one upsert: a new delivery, or the existing one back
// to pending with its attempt count kept. A delivery being sent is
// ECONFLICT; an unknown message or endpoint is ENOTFOUND.
func (s *Store) ResendDelivery(ctx context.Context, appID, msgID, endpointID string, now time.Time) error {
	at := micros(now)
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if err := messageExists(ctx, tx, appID, msgID); err != nil {
			return err
		}
		if err := endpointExists(ctx, tx, appID, endpointID); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO delivery (id, app_id, message_id, endpoint_id, status,
			next_attempt_at, attempts, trigger, created_at, updated_at)
			VALUES (?, ?, ?, ?, 'pending', ?, 0, 1, ?, ?)
			ON CONFLICT (message_id, endpoint_id) DO UPDATE SET status = 'pending',
				next_attempt_at = excluded.next_attempt_at, trigger = 1, lease_owner = NULL,
				lease_expires_at = NULL, updated_at = excluded.updated_at
			WHERE delivery.status <> 'sending'`,
			herald.NewID(herald.PrefixDelivery), appID, msgID, endpointID, at, at, at)
		if err != nil {
			return err
		}
		if err := mustAffect(res, herald.Errorf(herald.ECONFLICT, "The message is being sent to this endpoint right now.")); err != nil {
			return err
		}
		return s.audit(ctx, tx, &auditTarget{"message.resend", herald.AuditMessage, msgID, appID})
	})
	if err != nil {
		return s.fail("resend delivery", err)
	}
	return nil
}

const recoverSQL = `UPDATE delivery SET status = 'pending', next_attempt_at = ?, trigger = 1, updated_at = ?
	WHERE endpoint_id = ? AND status = 'failed' AND EXISTS (SELECT 1 FROM message m
		WHERE m.id = delivery.message_id AND m.created_at >= ? AND m.created_at < ?)`

// RecoverEndpoint queues the endpoint's failed deliveries whose message was
// created in [since, until) again, due now and manual, and reports how
// many. It walks delivery_endpoint_open and looks each message up by its
// primary key. An unknown endpoint is ENOTFOUND.
func (s *Store) RecoverEndpoint(ctx context.Context, appID, endpointID string, since, until, now time.Time) (int, error) {
	var n int64
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if err := endpointExists(ctx, tx, appID, endpointID); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, recoverSQL, micros(now), micros(now), endpointID, micros(since), upperBound(until))
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		return s.audit(ctx, tx, &auditTarget{"endpoint.recover", herald.AuditEndpoint, endpointID, appID})
	})
	if err != nil {
		return 0, s.fail("recover endpoint", err)
	}
	return int(n), nil
}

// upperBound returns t in microseconds, or the largest value for the zero
// time (no upper bound).
func upperBound(t time.Time) int64 {
	if t.IsZero() {
		return 1<<63 - 1
	}
	return micros(t)
}

// lowerBound returns t in microseconds, or the smallest value for the zero
// time (no lower bound).
func lowerBound(t time.Time) int64 {
	if t.IsZero() {
		return -1 << 63
	}
	return micros(t)
}

// ReplayMissing creates a pending, manual delivery due now for every
// message of the application created in [since, until) that the endpoint
// accepts today (herald.Endpoint.Accepts) and has no delivery to it, and
// reports how many. It reads the application's messages in chunks of
// replayChunk by (created_at, rowid) through message_app_created, one
// write transaction per chunk, so ingest is never held up long; a message
// created meanwhile is routed by ingest itself. An unknown endpoint is
// ENOTFOUND.
func (s *Store) ReplayMissing(ctx context.Context, appID, endpointID string, since, until, now time.Time) (int, error) {
	ep, err := s.routing(ctx, appID, endpointID)
	if err != nil {
		return 0, s.fail("replay missing", err)
	}
	total := 0
	cur := replayCursor{createdAt: lowerBound(since), rowid: -1 << 63}
	for {
		var n int
		var done bool
		first := !cur.started
		err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
			var err error
			n, done, err = replayChunkOf(ctx, tx, ep, &cur, upperBound(until), micros(now), replayChunk)
			if err != nil || !first {
				return err
			}
			// One record, with the first chunk: the chunks after it are
			// the same change.
			return s.audit(ctx, tx, &auditTarget{"endpoint.replay_missing", herald.AuditEndpoint, endpointID, appID})
		})
		if err != nil {
			return total, s.fail("replay missing", err)
		}
		total += n
		if done {
			return total, nil
		}
	}
}

// routing returns what routing needs of an endpoint (no secrets decrypted).
func (s *Store) routing(ctx context.Context, appID, endpointID string) (*herald.Endpoint, error) {
	var (
		ep                    = herald.Endpoint{ID: endpointID, AppID: appID}
		filterTypes, channels sql.NullString
	)
	err := s.r.QueryRowContext(ctx, `SELECT disabled, filter_types, channels, url = 'poller://' FROM endpoint WHERE id = ? AND app_id = ?`,
		endpointID, appID).Scan(&ep.Disabled, &filterTypes, &channels, &ep.Poller)
	if err != nil {
		return nil, notFound(err, errEndpointNotFound)
	}
	if ep.FilterTypes, err = parseList(filterTypes); err != nil {
		return nil, err
	}
	if ep.Channels, err = parseList(channels); err != nil {
		return nil, err
	}
	return &ep, nil
}

// replayCursor is the last message a ReplayMissing chunk read.
type replayCursor struct {
	createdAt, rowid int64
	started          bool
}

// replayFirstSQL and replayNextSQL read one chunk of an application's
// messages in creation order: the first from since, the next after the
// last one read.
const (
	replayFirstSQL = `SELECT rowid, id, event_type, channels, created_at FROM message
		WHERE app_id = ? AND created_at >= ? AND created_at < ?
		ORDER BY created_at, rowid LIMIT ?`
	replayNextSQL = `SELECT rowid, id, event_type, channels, created_at FROM message
		WHERE app_id = ? AND (created_at, rowid) > (?, ?) AND created_at < ?
		ORDER BY created_at, rowid LIMIT ?`
)

// replayChunkOf reads the next chunk (at most chunk) of candidate messages after cur,
// creates deliveries for those ep accepts and that have none, advances cur
// and reports how many it created and whether the window is exhausted.
func replayChunkOf(ctx context.Context, tx *sql.Tx, ep *herald.Endpoint, cur *replayCursor, until, now int64, chunk int) (int, bool, error) {
	// The first chunk starts at since inclusive; later ones after the
	// cursor, compared as a row value so ties on created_at page by rowid.
	q, args := replayFirstSQL, []any{ep.AppID, cur.createdAt}
	if cur.started {
		q = replayNextSQL
		args = append(args, cur.rowid)
	}
	args = append(args, until, chunk)
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return 0, false, fmt.Errorf("read messages: %w", err)
	}
	var accepted []string
	var createdAt []int64
	read := 0
	for rows.Next() {
		var (
			id, eventType string
			channels      sql.NullString
		)
		if err := rows.Scan(&cur.rowid, &id, &eventType, &channels, &cur.createdAt); err != nil {
			rows.Close()
			return 0, false, fmt.Errorf("read messages: %w", err)
		}
		read++
		list, err := parseList(channels)
		if err != nil {
			rows.Close()
			return 0, false, fmt.Errorf("read message %s: %w", id, err)
		}
		if ep.Accepts(eventType, list) {
			accepted = append(accepted, id)
			createdAt = append(createdAt, cur.createdAt)
		}
	}
	if err := rows.Close(); err != nil {
		return 0, false, fmt.Errorf("read messages: %w", err)
	}
	if err := rows.Err(); err != nil {
		return 0, false, fmt.Errorf("read messages: %w", err)
	}
	cur.started = true
	created := 0
	var usage herald.UsageCounts
	for i, msgID := range accepted {
		// DO NOTHING keeps a delivery the message already has.
		// A scheduled message's delivery is due at its deliver_at when
		// that is later than now.
		res, err := tx.ExecContext(ctx, `INSERT INTO delivery (id, app_id, message_id, endpoint_id, status,
			next_attempt_at, attempts, trigger, created_at, updated_at)
			VALUES (?1, ?2, ?3, ?4, 'pending', max(?5, coalesce((SELECT deliver_at FROM message WHERE id = ?3), 0)), 0, 1, ?5, ?5)
			ON CONFLICT (message_id, endpoint_id) DO NOTHING`,
			herald.NewID(herald.PrefixDelivery), ep.AppID, msgID, ep.ID, now)
		if err != nil {
			return 0, false, fmt.Errorf("insert delivery of message %s: %w", msgID, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return 0, false, fmt.Errorf("insert delivery of message %s: %w", msgID, err)
		}
		created += int(n)
		if n > 0 {
			// A destination of the message: counted in the hour it was
			// created.
			usage.Add(ep.AppID, fromMicros(createdAt[i]), 0, 1)
		}
	}
	for _, u := range usage.Rows() {
		if _, err := tx.ExecContext(ctx, addUsageSQL, u.AppID, u.Bucket, u.Messages, u.Destinations); err != nil {
			return 0, false, fmt.Errorf("add usage counts: %w", err)
		}
	}
	return created, read < chunk, nil
}

// statsSQL counts an endpoint's deliveries by status: those not done with
// success in delivery_endpoint_open, all of them in delivery_endpoint (both
// index only), the succeeded being the difference. statsWindowSQL does the
// same for the deliveries of messages created in [?2, ?3), looking each
// message up by its key.
var (
	statsSQL = `SELECT status, count(*) FROM delivery WHERE endpoint_id = ?1 AND ` + openStatuses + ` GROUP BY status
		UNION ALL SELECT '', count(*) FROM delivery WHERE endpoint_id = ?1`
	statsWindowSQL = `SELECT d.status, count(*) FROM delivery d JOIN message m ON m.id = d.message_id
		WHERE d.endpoint_id = ?1 AND ` + strings.ReplaceAll(openStatuses, "status", "d.status") + `
			AND m.created_at >= ?2 AND m.created_at < ?3 GROUP BY d.status
		UNION ALL SELECT '', count(*) FROM delivery d JOIN message m ON m.id = d.message_id
		WHERE d.endpoint_id = ?1 AND m.created_at >= ?2 AND m.created_at < ?3`
	// statsRangeSQL is statsSQL for the messages of a window of whole
	// seconds, as the range [?2, ?3) of message IDs (IDs sort by their
	// creation second): two index-only range scans, no message read.
	statsRangeSQL = `SELECT status, count(*) FROM delivery WHERE endpoint_id = ?1 AND ` + openStatuses + `
			AND message_id >= ?2 AND message_id < ?3 GROUP BY status
		UNION ALL SELECT '', count(*) FROM delivery WHERE endpoint_id = ?1 AND message_id >= ?2 AND message_id < ?3`
)

// GetEndpointStats counts the endpoint's deliveries by status, of messages
// created in [since, until) (zero bounds are open); canceled deliveries
// count as failed. Without bounds it reads two indexes and no delivery row
// (see statsSQL). An unknown endpoint is ENOTFOUND.
func (s *Store) GetEndpointStats(ctx context.Context, appID, endpointID string, since, until time.Time) (herald.EndpointStats, error) {
	var stats herald.EndpointStats
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return stats, s.fail("get endpoint stats", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	if err := endpointExists(ctx, tx, appID, endpointID); err != nil {
		return stats, s.fail("get endpoint stats", err)
	}
	q, args := statsSQL, []any{endpointID}
	if lo, hi, ok := herald.IDRange(herald.PrefixMessage, since, until); ok && (!since.IsZero() || !until.IsZero()) {
		q, args = statsRangeSQL, append(args, lo, hi)
	} else if !since.IsZero() || !until.IsZero() {
		q = statsWindowSQL
		args = append(args, lowerBound(since), upperBound(until))
	}
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return stats, s.fail("get endpoint stats", err)
	}
	defer rows.Close()
	total, counted := -1, 0 // total: the count of every delivery (the '' row)
	for rows.Next() {
		var (
			status string
			n      int
		)
		if err := rows.Scan(&status, &n); err != nil {
			return stats, s.fail("get endpoint stats", err)
		}
		if status == "" {
			total = n
			continue
		}
		counted += n
		switch herald.DeliveryStatus(status) {
		case herald.DeliverySucceeded:
			stats.Success += n
		case herald.DeliveryPending:
			stats.Pending += n
		case herald.DeliverySending:
			stats.Sending += n
		case herald.DeliveryFailed, herald.DeliveryCanceled:
			stats.Fail += n
		}
	}
	if err := rows.Err(); err != nil {
		return stats, s.fail("get endpoint stats", err)
	}
	if total >= 0 {
		stats.Success += total - counted
	}
	return stats, nil
}
