package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/herald-webhooks/herald"
)

// FIFO endpoints are claimed apart from the others. The general claim
// leaves their deliveries alone (notFIFO); claimHeadsSQL leases, for each
// FIFO endpoint with nothing being sent, its head, the pending delivery
// with the lowest message ID, when it is due. Both walk indexes:
// endpoint_ordering lists the FIFO endpoints, delivery_endpoint_open
// finds a head and tells whether anything is being sent. The writer lock
// serializes claims, so each sees the last one's leases: one delivery of a
// FIFO endpoint is in flight at most.
const (
	notFIFO = ` AND endpoint_id NOT IN (SELECT id FROM endpoint WHERE ordering = 'fifo')`

	claimHeadsSQL = `UPDATE delivery SET status = 'sending', lease_owner = ?, lease_expires_at = ?, updated_at = ?
	WHERE id IN (SELECT h.id FROM endpoint e JOIN delivery h ON h.id = (
			SELECT x.id FROM delivery x WHERE x.endpoint_id = e.id AND x.status = 'pending' ORDER BY x.message_id LIMIT 1)
		WHERE e.ordering = 'fifo' AND h.next_attempt_at <= ` + unplanned + `%s
			AND NOT EXISTS (SELECT 1 FROM delivery s WHERE s.endpoint_id = e.id AND s.status = 'sending')
		ORDER BY h.next_attempt_at ` + limitParam + `)
	RETURNING ` + deliveryColumns

	skipHeads = ` AND e.id NOT IN (SELECT value FROM json_each(?)) AND e.app_id NOT IN (SELECT value FROM json_each(?))`
)

// claimHeads leases the due heads of FIFO endpoints, up to opts.Limit,
// leaving the skipped endpoints and, with PerApp, the skipped applications.
func (s *Store) claimHeads(ctx context.Context, tx *sql.Tx, opts herald.ClaimOptions) ([]*herald.Delivery, error) {
	args := []any{opts.Owner, micros(opts.LeaseUntil), micros(opts.Now), micros(opts.Now)}
	stmt := s.engine.claimHeads
	var skipApps []string
	if opts.PerApp > 0 {
		skipApps = opts.SkipApps
	}
	if len(opts.SkipEndpoints) > 0 || len(skipApps) > 0 {
		skip, err := jsonIDs(opts.SkipEndpoints)
		if err != nil {
			return nil, err
		}
		apps, err := jsonIDs(skipApps)
		if err != nil {
			return nil, err
		}
		stmt = s.engine.claimHeadsSkipping
		args = append(args, skip, apps)
	}
	args = append(args, opts.Limit)
	dels, err := queryDeliveries(ctx, tx.StmtContext(ctx, stmt), args...)
	if err != nil {
		return nil, fmt.Errorf("claim FIFO heads: %w", err)
	}
	return dels, nil
}

// Failure tracking: an attempt's outcome moves its endpoint's
// failing_since. The UPDATEs match only when they change something, so the
// usual case (a success while nothing failed) writes no page.
const (
	clearFailingSQL = `UPDATE endpoint SET failing_since = NULL WHERE id = ? AND failing_since IS NOT NULL`
	setFailingSQL   = `UPDATE endpoint SET failing_since = ? WHERE id = ? AND failing_since IS NULL`
	// autoDisableSQL disables an endpoint that has been failing since the
	// cutoff or earlier, and returns since when.
	autoDisableSQL = `UPDATE endpoint SET disabled = 1, updated_at = ?
		WHERE id = ? AND disabled = 0 AND failing_since <= ? RETURNING failing_since`
	// failPendingSQL fails the pending deliveries of an endpoint disabled
	// for failing: failed, not canceled, so that recover queues them again.
	failPendingSQL = `UPDATE delivery SET status = 'failed', updated_at = ? WHERE endpoint_id = ? AND status = 'pending'`
)

// failureTracker applies the outcomes of one RecordAttempts transaction to
// their endpoints and collects the operational events they call for.
type failureTracker struct {
	ctx context.Context
	tx  *sql.Tx
	s   *Store
	now int64 // the store's clock, for updated_at
	// clear holds endpoints whose failing_since this transaction already
	// cleared: further successes need no statement.
	clear  map[string]bool
	events []herald.OperationalEvent
}

// track applies one outcome with an attempt (whose ID is attemptID) of a
// delivery of message msgID to endpoint endpointID of application appID.
func (t *failureTracker) track(o *herald.AttemptOutcome, attemptID, appID, msgID, endpointID string) error {
	if appID == herald.OperationalAppID {
		return nil // never report on an operational endpoint
	}
	a := o.Attempt
	if a.Status == herald.AttemptSucceeded {
		if t.clear[endpointID] {
			return nil
		}
		if _, err := t.tx.StmtContext(t.ctx, t.s.engine.clearFailing).ExecContext(t.ctx, endpointID); err != nil {
			return fmt.Errorf("clear failing_since of endpoint %s: %w", endpointID, err)
		}
		if t.clear == nil {
			t.clear = make(map[string]bool)
		}
		t.clear[endpointID] = true
		return nil
	}
	delete(t.clear, endpointID)
	attempt := herald.OperationalEvent{At: a.CreatedAt, AppID: appID, EndpointID: endpointID, MessageID: msgID,
		AttemptID: attemptID, ResponseStatus: a.ResponseStatus, AttemptAt: a.CreatedAt}
	at := micros(a.CreatedAt)
	res, err := t.tx.StmtContext(t.ctx, t.s.engine.setFailing).ExecContext(t.ctx, at, endpointID)
	if err != nil {
		return fmt.Errorf("set failing_since of endpoint %s: %w", endpointID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("set failing_since of endpoint %s: %w", endpointID, err)
	} else if n == 1 {
		ev := attempt
		ev.Type = herald.EventMessageAttemptFailing
		t.events = append(t.events, ev)
	}
	if o.Status == herald.DeliveryFailed && !o.DisableEndpoint {
		ev := attempt
		ev.Type = herald.EventMessageAttemptExhausted
		t.events = append(t.events, ev)
	}
	if o.DisableAfter <= 0 || o.DisableEndpoint {
		return nil
	}
	var since int64
	err = t.tx.QueryRowContext(t.ctx, autoDisableSQL, t.now, endpointID, at-o.DisableAfter.Microseconds()).Scan(&since)
	if errors.Is(err, sql.ErrNoRows) {
		return nil // not failing for long enough, or already disabled
	} else if err != nil {
		return fmt.Errorf("disable endpoint %s: %w", endpointID, err)
	}
	if _, err := t.tx.ExecContext(t.ctx, failPendingSQL, t.now, endpointID); err != nil {
		return fmt.Errorf("fail deliveries of endpoint %s: %w", endpointID, err)
	}
	t.disabled(a, appID, endpointID, fromMicros(since))
	return nil
}

// disabled notes that the attempt a disabled the endpoint (automatic), which
// had been failing since since.
func (t *failureTracker) disabled(a *herald.Attempt, appID, endpointID string, since time.Time) {
	if appID == herald.OperationalAppID {
		return
	}
	t.events = append(t.events, herald.OperationalEvent{Type: herald.EventEndpointDisabled, At: a.CreatedAt,
		AppID: appID, EndpointID: endpointID, FailSince: since, Trigger: herald.TriggerAutomaticDisable})
}

// queueEvents stores each event as a message of the operational
// application with a pending delivery to every enabled operational
// endpoint whose filter types accept it, in tx, after filling in the UIDs
// and the message's eventId. An event no operational endpoint accepts is
// not stored; an event about an operational endpoint never is.
func (s *Store) queueEvents(ctx context.Context, tx *sql.Tx, events []herald.OperationalEvent) error {
	if len(events) == 0 {
		return nil
	}
	eps, err := operationalRoutes(ctx, tx)
	if err != nil {
		return err
	}
	if len(eps) == 0 {
		return nil
	}
	for i := range events {
		ev := &events[i]
		if ev.AppID == herald.OperationalAppID {
			continue // never report on an operational endpoint
		}
		to := herald.OperationalRoutes(eps, ev.Type)
		if len(to) == 0 {
			continue
		}
		var appUID, endpointUID, eventID sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT a.uid, e.uid FROM endpoint e JOIN application a ON a.id = e.app_id
			WHERE e.id = ?`, ev.EndpointID).Scan(&appUID, &endpointUID)
		if err != nil {
			return fmt.Errorf("read endpoint %s for its %s event: %w", ev.EndpointID, ev.Type, err)
		}
		ev.AppUID, ev.EndpointUID = appUID.String, endpointUID.String
		if ev.MessageID != "" {
			if err := tx.QueryRowContext(ctx, `SELECT event_id FROM message WHERE id = ?`, ev.MessageID).Scan(&eventID); err != nil {
				return fmt.Errorf("read message %s for its %s event: %w", ev.MessageID, ev.Type, err)
			}
			ev.MsgEventID = eventID.String
		}
		m, ds, err := ev.Message(to)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO message (id, app_id, event_type, payload, content_type, created_at)
			VALUES (?, ?, ?, ?, '', ?)`,
			m.ID, m.AppID, m.EventType, m.Payload, micros(m.CreatedAt))
		if err != nil {
			return fmt.Errorf("insert %s event: %w", ev.Type, err)
		}
		for _, d := range ds {
			at := micros(d.CreatedAt)
			_, err = tx.ExecContext(ctx, `INSERT INTO delivery (id, app_id, message_id, endpoint_id, status, next_attempt_at,
				attempts, created_at, updated_at) VALUES (?, ?, ?, ?, 'pending', ?, 0, ?, ?)`,
				d.ID, d.AppID, d.MessageID, d.EndpointID, at, at, at)
			if err != nil {
				return fmt.Errorf("insert delivery of %s event: %w", ev.Type, err)
			}
		}
	}
	return nil
}

// operationalRoutes reads the routing data of the enabled operational
// endpoints, in ID order.
func operationalRoutes(ctx context.Context, tx *sql.Tx) ([]herald.Endpoint, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, disabled, filter_types, channels, ordering, url = 'poller://' FROM endpoint
		WHERE app_id = ? AND disabled = 0 ORDER BY id`, herald.OperationalAppID)
	if err != nil {
		return nil, fmt.Errorf("read the operational endpoints: %w", err)
	}
	defer rows.Close()
	var eps []herald.Endpoint
	for rows.Next() {
		r, ok, err := scanRoute(rows)
		if err != nil {
			return nil, fmt.Errorf("read the operational endpoints: %w", err)
		}
		if ok {
			eps = append(eps, r)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the operational endpoints: %w", err)
	}
	return eps, nil
}
