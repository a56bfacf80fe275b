package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/herald-webhooks/herald"
)

// replayChunk is how many of an application's messages ReplayMissing reads
// per transaction, so a wide window never holds one transaction long.
const replayChunk = 500

// ListEndpointMessages returns a page of the messages routed to endpoint
// endpointID, each with its delivery, ordered by message ID and filtered by
// opts; it walks delivery_endpoint, or delivery_endpoint_status when
// opts.Status is set. An unknown endpoint is ENOTFOUND. The existence
// check and the page run in one repeatable-read transaction, so they agree.
func (s *Store) ListEndpointMessages(ctx context.Context, appID, endpointID string, opts herald.DeliveryListOptions) ([]herald.EndpointMessage, error) {
	q, args := endpointMessagesQuery(appID, endpointID, opts)
	var out []herald.EndpointMessage
	err := s.readTx(ctx, func(tx pgx.Tx) error {
		if err := endpointExists(ctx, tx, appID, endpointID); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, q, args...)
		out, err = collect(rows, err, scanEndpointMessage)
		return err
	})
	if err != nil {
		return nil, s.fail("list endpoint messages", err)
	}
	return out, nil
}

// endpointMessagesQuery returns the statement of one ListEndpointMessages
// page and its arguments, planned for their values when they matter
// (customPlan).
func endpointMessagesQuery(appID, endpointID string, opts herald.DeliveryListOptions) (string, []any) {
	var q query
	idColumn := "d.message_id"
	if opts.Tag == "" {
		q.add(`SELECT ` + prefixed("m.", messageReadColumns) + `, ` + prefixed("d.", deliveryColumns) + `
		FROM delivery d JOIN message m ON m.id = d.message_id
		WHERE d.endpoint_id = ` + q.arg(endpointID) + ` AND d.app_id = ` + q.arg(appID))
	} else {
		// The tag's entries in message order, each looked up in
		// delivery_message_endpoint: a tag's messages are few beside an
		// endpoint's, and the page stays in message order. The LATERAL
		// subqueries keep that plan (see messagesQuery).
		idColumn = "t.message_id"
		q.add(`SELECT ` + prefixed("m.", messageReadColumns) + `, ` + prefixed("d.", deliveryColumns) + `
		FROM message_tag t
		CROSS JOIN LATERAL (SELECT ` + deliveryColumns + ` FROM delivery
			WHERE message_id = t.message_id AND endpoint_id = ` + q.arg(endpointID) + ` OFFSET 0) d
		CROSS JOIN LATERAL (SELECT ` + messageReadColumns + ` FROM message WHERE id = t.message_id OFFSET 0) m
		WHERE t.app_id = ` + q.arg(appID) + ` AND t.tag = ` + q.arg(opts.Tag) + ` AND d.app_id = t.app_id`)
	}
	if opts.Status != "" {
		q.add(` AND d.status = ` + q.arg(string(opts.Status)))
	}
	f := messageFilter{msg: "m.", timeColumn: "m.created_at", idColumn: idColumn, idPrefix: herald.PrefixMessage, eventTypes: opts.EventTypes,
		channel: opts.Channel, before: opts.Before, after: opts.After}
	f.addTo(&q)
	return q.endMessagePage(f, opts.Tag, opts.ListOptions)
}

// readTx runs fn in a read-only repeatable-read transaction: every
// statement of fn sees the same snapshot.
func (s *Store) readTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
}

// scanEndpointMessage scans a row of message columns then delivery columns.
func scanEndpointMessage(row pgx.Row) (herald.EndpointMessage, error) {
	var (
		m                    herald.Message
		eventID, traceParent *string
		createdAt            time.Time
		deliverAt            pgtype.Timestamptz
		r                    deliveryRow
	)
	dest := append([]any{&m.ID, &m.AppID, &eventID, &m.EventType, &m.Payload, &m.ContentType, &m.Channels, &m.Tags, &createdAt, &traceParent, &deliverAt},
		r.dest()...)
	if err := row.Scan(dest...); err != nil {
		return herald.EndpointMessage{}, err
	}
	m.EventID = fromNullString(eventID)
	m.TraceParent = fromNullString(traceParent)
	m.CreatedAt = createdAt.UTC()
	m.DeliverAt = fromNullTime(deliverAt)
	return herald.EndpointMessage{Message: &m, Delivery: r.delivery()}, nil
}

// querier is a pgx.Tx, *pgxpool.Pool or *pgxpool.Conn.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// endpointExists returns ENOTFOUND unless application appID has endpoint id.
func endpointExists(ctx context.Context, q querier, appID, id string) error {
	var one int
	err := q.QueryRow(ctx, `SELECT 1 FROM endpoint WHERE id = $1 AND app_id = $2`, id, appID).Scan(&one)
	return notFound(err, errEndpointNotFound)
}

// lockMessage takes FOR KEY SHARE on message id of application appID for
// the rest of the transaction, so that the cleaner leaves it and its
// deliveries alone (see retention.go); ENOTFOUND when there is no such
// message, or the cleaner deleted it while this waited.
func lockMessage(ctx context.Context, q querier, appID, id string) error {
	var one int
	err := q.QueryRow(ctx, `SELECT 1 FROM message WHERE id = $1 AND app_id = $2 FOR KEY SHARE`, id, appID).Scan(&one)
	return notFound(err, errMessageNotFound)
}

// resendSQL queues a message for an endpoint with one upsert: a new
// delivery, or the existing one back to pending with its attempt count
// kept, unless it is being sent.
const resendSQL = `INSERT INTO delivery (id, app_id, message_id, endpoint_id, status,
		next_attempt_at, attempts, trigger_type, created_at, updated_at)
	VALUES ($1, $2, $3, $4, 'pending', $5, 0, 1, $5, $5)
	ON CONFLICT (message_id, endpoint_id) DO UPDATE SET status = 'pending',
		next_attempt_at = excluded.next_attempt_at, trigger_type = 1, lease_owner = NULL,
		lease_expires_at = NULL, updated_at = excluded.updated_at
	WHERE delivery.status <> 'sending'`

// ResendDelivery queues message msgID for endpoint endpointID now, as a
// manual attempt. A delivery being sent is ECONFLICT; an unknown message or
// endpoint is ENOTFOUND.
func (s *Store) ResendDelivery(ctx context.Context, appID, msgID, endpointID string, now time.Time) error {
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if err := lockMessage(ctx, tx, appID, msgID); err != nil {
			return err
		}
		if err := endpointExists(ctx, tx, appID, endpointID); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, resendSQL, herald.NewID(herald.PrefixDelivery), appID, msgID, endpointID, now)
		if err != nil {
			return err
		}
		if err := mustAffect(tag, herald.Errorf(herald.ECONFLICT, "The message is being sent to this endpoint right now.")); err != nil {
			return err
		}
		if err := s.audit(ctx, tx, &auditTarget{"message.resend", herald.AuditMessage, msgID, appID}); err != nil {
			return err
		}
		return notifyWork(ctx, tx)
	})
	if isForeignKey(err) {
		// The message or endpoint was deleted between the checks and the
		// upsert.
		err = herald.Errorf(herald.ENOTFOUND, "Message or endpoint not found.")
	}
	if err != nil {
		return s.fail("resend delivery", err)
	}
	return nil
}

// recoverSQL queues an endpoint's failed deliveries of messages created in
// [$3, $4) again, due now and manual; it walks delivery_endpoint_status
// and looks each message up by its primary key, taking FOR KEY SHARE on it
// so that the cleaner cannot delete it under the re-queued delivery (see
// retention.go; a message it deleted meanwhile is skipped).
const recoverSQL = `UPDATE delivery d SET status = 'pending', next_attempt_at = $1, trigger_type = 1, updated_at = $1
	FROM (SELECT f.id FROM delivery f JOIN message m ON m.id = f.message_id
		WHERE f.endpoint_id = $2 AND f.status = 'failed' AND m.created_at >= $3 AND m.created_at < $4
		FOR KEY SHARE OF m) f
	WHERE d.id = f.id AND d.status = 'failed'`

// RecoverEndpoint queues the endpoint's failed deliveries whose message was
// created in [since, until) again, due now and manual, and reports how
// many. An unknown endpoint is ENOTFOUND.
func (s *Store) RecoverEndpoint(ctx context.Context, appID, endpointID string, since, until, now time.Time) (int, error) {
	var n int64
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if err := endpointExists(ctx, tx, appID, endpointID); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, recoverSQL, now, endpointID, lowerBound(since), upperBound(until))
		if err != nil {
			return err
		}
		if err := s.audit(ctx, tx, &auditTarget{"endpoint.recover", herald.AuditEndpoint, endpointID, appID}); err != nil {
			return err
		}
		if n = tag.RowsAffected(); n > 0 {
			return notifyWork(ctx, tx)
		}
		return nil
	})
	if err != nil {
		return 0, s.fail("recover endpoint", err)
	}
	return int(n), nil
}

// ReplayMissing creates a pending, manual delivery due now for every
// message of the application created in [since, until) that the endpoint
// accepts today (herald.Endpoint.Accepts) and has no delivery to it, and
// reports how many. It reads the application's messages in chunks of
// replayChunk by (created_at, id) through message_app_created, one
// transaction per chunk; a message created meanwhile is routed by ingest
// itself. An unknown endpoint is ENOTFOUND.
func (s *Store) ReplayMissing(ctx context.Context, appID, endpointID string, since, until, now time.Time) (int, error) {
	ep, err := s.routing(ctx, appID, endpointID)
	if err != nil {
		return 0, s.fail("replay missing", err)
	}
	total := 0
	var cur replayCursor
	first := true
	for {
		var n int
		var done bool
		err := s.inTx(ctx, func(tx pgx.Tx) error {
			var err error
			n, done, err = replayChunkOf(ctx, tx, ep, &cur, first, since, until, now, replayChunk)
			if err == nil && first {
				// One record, with the first chunk: the chunks after it
				// are the same change.
				err = s.audit(ctx, tx, &auditTarget{"endpoint.replay_missing", herald.AuditEndpoint, endpointID, appID})
			}
			if err == nil && n > 0 {
				err = notifyWork(ctx, tx)
			}
			return err
		})
		if err != nil {
			return total, s.fail("replay missing", err)
		}
		first = false
		total += n
		if done {
			return total, nil
		}
	}
}

// routing returns what routing needs of an endpoint (no secrets decrypted).
func (s *Store) routing(ctx context.Context, appID, endpointID string) (*herald.Endpoint, error) {
	ep := herald.Endpoint{ID: endpointID, AppID: appID}
	err := s.pool.QueryRow(ctx, `SELECT disabled, filter_types, channels, url = 'poller://' FROM endpoint WHERE id = $1 AND app_id = $2`,
		endpointID, appID).Scan(&ep.Disabled, &ep.FilterTypes, &ep.Channels, &ep.Poller)
	if err != nil {
		return nil, notFound(err, errEndpointNotFound)
	}
	return &ep, nil
}

// replayCursor is the last message a ReplayMissing chunk read.
type replayCursor struct {
	createdAt time.Time
	id        string
}

// replayFirstSQL and replayNextSQL read one chunk of an application's
// messages in creation order: the first from since inclusive, the next
// after the last one read, compared as a row value so ties on created_at
// page by ID.
const (
	replayFirstSQL = `SELECT id, event_type, channels, created_at FROM message
		WHERE app_id = $1 AND created_at >= $2 AND created_at < $3
		ORDER BY created_at, id LIMIT $4`
	replayNextSQL = `SELECT id, event_type, channels, created_at FROM message
		WHERE app_id = $1 AND (created_at, id) > ($2, $5) AND created_at < $3
		ORDER BY created_at, id LIMIT $4`
)

// replayInsertSQL creates the deliveries of one chunk; DO NOTHING keeps a
// delivery a message already has. It takes FOR KEY SHARE on the messages
// first, so that the cleaner cannot delete them under the new deliveries
// (see retention.go); a message the cleaner deleted since the chunk was
// read is skipped, where the foreign key check would fail the chunk. A
// scheduled message's delivery is due at its deliver_at when that is
// later than now (GREATEST ignores NULL).
const replayInsertSQL = `WITH locked AS (SELECT id, deliver_at FROM message WHERE id = ANY($2::text[]) FOR KEY SHARE)
	INSERT INTO delivery (id, app_id, message_id, endpoint_id, status, next_attempt_at,
		attempts, trigger_type, created_at, updated_at)
	SELECT d.id, $3::text, d.message_id, $4::text, 'pending', GREATEST($5::timestamptz, l.deliver_at), 0, 1, $5::timestamptz, $5::timestamptz
	FROM unnest($1::text[], $2::text[]) AS d (id, message_id) JOIN locked l ON l.id = d.message_id
	ON CONFLICT (message_id, endpoint_id) DO NOTHING
	RETURNING message_id`

// replayChunkOf reads the next chunk (at most chunk) of candidate messages after cur,
// creates deliveries for those ep accepts and that have none, advances cur
// and reports how many it created and whether the window is exhausted.
func replayChunkOf(ctx context.Context, tx pgx.Tx, ep *herald.Endpoint, cur *replayCursor, first bool, since, until, now time.Time, chunk int) (int, bool, error) {
	var rows pgx.Rows
	var err error
	if first {
		rows, err = tx.Query(ctx, replayFirstSQL, ep.AppID, lowerBound(since), upperBound(until), chunk)
	} else {
		rows, err = tx.Query(ctx, replayNextSQL, ep.AppID, cur.createdAt, upperBound(until), chunk, cur.id)
	}
	if err != nil {
		return 0, false, fmt.Errorf("read messages: %w", err)
	}
	var ids, msgIDs []string
	createdAt := map[string]time.Time{}
	read := 0
	for rows.Next() {
		var (
			id, eventType string
			channels      []string
		)
		if err := rows.Scan(&id, &eventType, &channels, &cur.createdAt); err != nil {
			rows.Close()
			return 0, false, fmt.Errorf("read messages: %w", err)
		}
		cur.id = id
		read++
		if ep.Accepts(eventType, channels) {
			msgIDs = append(msgIDs, id)
			ids = append(ids, herald.NewID(herald.PrefixDelivery))
			createdAt[id] = cur.createdAt
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, false, fmt.Errorf("read messages: %w", err)
	}
	if len(msgIDs) == 0 {
		return 0, read < chunk, nil
	}
	rows, _ = tx.Query(ctx, replayInsertSQL, ids, msgIDs, ep.AppID, ep.ID, now)
	created, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, false, fmt.Errorf("insert deliveries: %w", err)
	}
	// The new deliveries are destinations of their messages: counted in
	// the hours the messages were created.
	var usage herald.UsageCounts
	for _, id := range created {
		usage.Add(ep.AppID, createdAt[id], 0, 1)
	}
	if err := addUsage(ctx, tx, usage.Rows()); err != nil {
		return 0, false, err
	}
	return len(created), read < chunk, nil
}

// statsSQL counts all of an endpoint's deliveries by status, statsWindowSQL
// those of messages created in a window.
const (
	statsSQL       = `SELECT status, count(*) FROM delivery WHERE endpoint_id = $1 GROUP BY status`
	statsWindowSQL = `SELECT d.status, count(*) FROM delivery d JOIN message m ON m.id = d.message_id
		WHERE d.endpoint_id = $1 AND m.created_at >= $2 AND m.created_at < $3 GROUP BY d.status`
	// statsRangeSQL counts the deliveries of messages created in a window
	// of whole seconds, as the range [$2, $3) of message IDs (IDs sort by
	// their creation second): one index-only range scan of
	// delivery_endpoint_status per status, no message read.
	statsRangeSQL = `SELECT s.status, (SELECT count(*) FROM delivery d WHERE d.endpoint_id = $1 AND d.status = s.status
			AND d.message_id >= $2 AND d.message_id < $3)
		FROM unnest(ARRAY['pending', 'sending', 'succeeded', 'failed', 'canceled']) AS s (status)`
)

// GetEndpointStats counts the endpoint's deliveries by status, of messages
// created in [since, until) (zero bounds are open); canceled deliveries
// count as failed. Without bounds it reads delivery_endpoint_status alone.
// An unknown endpoint is ENOTFOUND.
func (s *Store) GetEndpointStats(ctx context.Context, appID, endpointID string, since, until time.Time) (herald.EndpointStats, error) {
	var stats herald.EndpointStats
	q, args := statsSQL, []any{endpointID}
	if lo, hi, ok := herald.IDRange(herald.PrefixMessage, since, until); ok && (!since.IsZero() || !until.IsZero()) {
		q, args = statsRangeSQL, append(args, lo, hi)
	} else if !since.IsZero() || !until.IsZero() {
		q = statsWindowSQL
		args = append(args, lowerBound(since), upperBound(until))
	}
	err := s.readTx(ctx, func(tx pgx.Tx) error {
		if err := endpointExists(ctx, tx, appID, endpointID); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, q, customPlan(args)...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				status string
				n      int
			)
			if err := rows.Scan(&status, &n); err != nil {
				return err
			}
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
		return rows.Err()
	})
	if err != nil {
		return herald.EndpointStats{}, s.fail("get endpoint stats", err)
	}
	return stats, nil
}
