package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/herald-webhooks/herald"
)

// FIFO endpoints are claimed apart from the others. The general claim
// leaves their deliveries alone (notFIFO); a FIFO claim leases, for each
// FIFO endpoint with nothing being sent, its head, the pending delivery
// with the lowest message ID, when it is due.
//
// Across nodes a snapshot is not enough: a claim whose snapshot predates
// another node's commit would not see that node's lease. So a FIFO claim
// first takes a transaction-scoped advisory lock per candidate endpoint
// (fifoCandidatesSQL, try-lock: an endpoint another node is claiming now
// is skipped) and only then, in a new statement whose snapshot follows
// every earlier holder's commit, checks and leases the heads
// (claimHeadsSQL). At most one delivery of a FIFO endpoint is in flight
// across all nodes.
const (
	notFIFO = ` AND endpoint_id NOT IN (SELECT id FROM endpoint WHERE ordering = 'fifo')`

	// fifoLockSpace is the first key of the advisory locks on FIFO
	// endpoints ("HRLD"); the second is the hash of the endpoint ID. Two-key
	// locks never collide with the one-key migration lock.
	fifoLockSpace = 0x48524c44

	// fifoCandidatesSQL picks the FIFO endpoints whose head is due, oldest
	// head first (as the SQLite store's claimHeadsSQL does): ordered by
	// endpoint ID instead, a backlog on the lowest IDs would starve the
	// rest whenever more heads are due than the limit. It costs two probes
	// of delivery_endpoint_status per FIFO endpoint (endpoint_ordering
	// lists them) and a top-N sort of those with a due head.
	fifoCandidatesSQL = `WITH c AS MATERIALIZED (
		SELECT e.id FROM endpoint e
		CROSS JOIN LATERAL (SELECT h.next_attempt_at FROM delivery h
			WHERE h.endpoint_id = e.id AND h.status = 'pending' ORDER BY h.message_id LIMIT 1) head
		WHERE e.ordering = 'fifo' AND e.id <> ALL($1::text[]) AND e.app_id <> ALL($5::text[]) AND head.next_attempt_at <= $2
			AND NOT EXISTS (SELECT 1 FROM delivery s WHERE s.endpoint_id = e.id AND s.status = 'sending')
		ORDER BY head.next_attempt_at, e.id LIMIT $3)
	SELECT id FROM c WHERE pg_try_advisory_xact_lock($4::integer, hashtext(id))`
)

// claimHeadsSQL leases the due heads of the endpoints $4 (locked by this
// transaction) and returns them with their messages, as claimSQL does.
var claimHeadsSQL = `WITH heads AS (
		SELECT h.id FROM unnest($4::text[]) AS e (id)
		CROSS JOIN LATERAL (SELECT d.id, d.next_attempt_at FROM delivery d
			WHERE d.endpoint_id = e.id AND d.status = 'pending' ORDER BY d.message_id LIMIT 1) h
		WHERE h.next_attempt_at <= $3
			AND NOT EXISTS (SELECT 1 FROM delivery s WHERE s.endpoint_id = e.id AND s.status = 'sending')),
	claimed AS (
		UPDATE delivery SET status = 'sending', lease_owner = $1, lease_expires_at = $2, updated_at = $3
		WHERE id IN (SELECT id FROM heads) AND status = 'pending'
		RETURNING ` + deliveryColumns + `)
	SELECT ` + prefixedDeliveryColumns + `, ` + claimMessageColumns + `
	FROM claimed d JOIN message m ON m.id = d.message_id`

// fifoCheckEvery is how long the answer to "are there FIFO endpoints?" is
// reused; an endpoint made FIFO on another node waits at most this long for
// its first claim (its deliveries are never claimed out of order meanwhile).
const fifoCheckEvery = time.Second

// fifoPresence caches whether the database has FIFO endpoints, so that a
// claim without any takes no extra round trip.
type fifoPresence struct {
	checked atomic.Int64 // unix nanoseconds of the last check
	present atomic.Bool
}

// hasFIFO reports whether any endpoint is FIFO, asking the database at most
// once per fifoCheckEvery.
func (s *Store) hasFIFO(ctx context.Context) (bool, error) {
	now := time.Now().UnixNano()
	if now-s.fifo.checked.Load() < int64(fifoCheckEvery) {
		return s.fifo.present.Load(), nil
	}
	var present bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM endpoint WHERE ordering = 'fifo')`).Scan(&present); err != nil {
		return false, err
	}
	s.fifo.present.Store(present)
	s.fifo.checked.Store(now)
	return present, nil
}

// claimHeads locks the candidate FIFO endpoints (not skipped, nor of an
// application skipped with PerApp) and leases their heads, in tx; it
// returns the claims with their messages.
func claimHeads(ctx context.Context, tx pgx.Tx, opts herald.ClaimOptions, skip []string) ([]herald.Claim, error) {
	var skipApps []string
	if opts.PerApp > 0 {
		skipApps = opts.SkipApps
	}
	rows, _ := tx.Query(ctx, fifoCandidatesSQL, skip, opts.Now, opts.Limit, int32(fifoLockSpace), nonNil(skipApps))
	locked, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("lock FIFO endpoints: %w", err)
	}
	if len(locked) == 0 {
		return nil, nil
	}
	rows, err = tx.Query(ctx, claimHeadsSQL, opts.Owner, opts.LeaseUntil, opts.Now, locked)
	if err != nil {
		return nil, fmt.Errorf("claim FIFO heads: %w", err)
	}
	claims, err := scanClaims(rows)
	if err != nil {
		return nil, fmt.Errorf("claim FIFO heads: %w", err)
	}
	return claims, nil
}

// Failure tracking. finishWithAttemptSQL moves the endpoint's
// failing_since with the attempt; the statements below run, for the few
// outcomes that need them, in a second batch of the same transaction.
const (
	// disableGoneSQL disables an endpoint that answered 410 Gone and
	// returns since when it had been failing; no row when it was disabled
	// already.
	disableGoneSQL = `UPDATE endpoint SET disabled = true, updated_at = $1 WHERE id = $2 AND NOT disabled RETURNING failing_since`
	// autoDisableSQL disables an endpoint failing since the cutoff $3 or
	// earlier and fails its pending deliveries (failed, not canceled, so
	// that recover queues them again); it returns since when.
	autoDisableSQL = `WITH disabled AS (
			UPDATE endpoint SET disabled = true, updated_at = $1
			WHERE id = $2 AND NOT disabled AND failing_since <= $3 RETURNING id, failing_since),
		failed AS (
			UPDATE delivery SET status = 'failed', updated_at = $1
			WHERE endpoint_id IN (SELECT id FROM disabled) AND status = 'pending')
		SELECT failing_since FROM disabled`
)

// recorded is what the first batch of RecordAttempts learned of an outcome.
type recorded struct {
	applied                  bool // the lease was held: the outcome was written
	appID, msgID, endpointID string
	attemptID                string
	becameFailing            bool // the attempt set the endpoint's failing_since
}

// endpointChanges queues, in a second batch, what the recorded outcomes do
// to their endpoints (disable on 410 Gone, auto-disable) and returns the
// operational events of the whole call.
func endpointChanges(ctx context.Context, tx pgx.Tx, outcomes []herald.AttemptOutcome, recs []recorded, now time.Time) ([]herald.OperationalEvent, error) {
	var events []herald.OperationalEvent
	type change struct {
		i    int
		gone bool
	}
	var changes []change
	// Each change is queued once per endpoint, and each kind keeps its
	// own set: a failure that only checked the endpoint for auto-disable
	// must not hide a later 410 Gone, which disables it whatever the
	// check found (as the SQLite store, which runs both in turn, does).
	goneSeen, autoSeen := make(map[string]bool), make(map[string]bool)
	var pb pgx.Batch
	for i := range outcomes {
		o, r := &outcomes[i], &recs[i]
		if !r.applied {
			continue
		}
		if a := o.Attempt; a != nil && r.appID != herald.OperationalAppID && a.Status != herald.AttemptSucceeded {
			ev := herald.OperationalEvent{At: a.CreatedAt, AppID: r.appID, EndpointID: r.endpointID, MessageID: r.msgID,
				AttemptID: r.attemptID, ResponseStatus: a.ResponseStatus, AttemptAt: a.CreatedAt}
			if r.becameFailing {
				ev.Type = herald.EventMessageAttemptFailing
				events = append(events, ev)
			}
			if o.Status == herald.DeliveryFailed && !o.DisableEndpoint {
				ev.Type = herald.EventMessageAttemptExhausted
				events = append(events, ev)
			}
		}
		switch {
		case o.DisableEndpoint && !goneSeen[r.endpointID]:
			goneSeen[r.endpointID] = true
			pb.Queue(disableGoneSQL, now, r.endpointID)
			pb.Queue(cancelPendingSQL, now, r.endpointID)
			changes = append(changes, change{i, true})
		case o.DisableAfter > 0 && o.Attempt != nil && o.Attempt.Status != herald.AttemptSucceeded &&
			!o.DisableEndpoint && !autoSeen[r.endpointID] && r.appID != herald.OperationalAppID:
			autoSeen[r.endpointID] = true
			pb.Queue(autoDisableSQL, now, r.endpointID, o.Attempt.CreatedAt.Add(-o.DisableAfter))
			changes = append(changes, change{i, false})
		}
	}
	if len(changes) == 0 {
		return events, nil
	}
	br := tx.SendBatch(ctx, &pb)
	for _, c := range changes {
		o, r := &outcomes[c.i], &recs[c.i]
		var since pgtype.Timestamptz
		err := br.QueryRow().Scan(&since)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			br.Close()
			return nil, fmt.Errorf("disable endpoint %s: %w", r.endpointID, err)
		}
		if c.gone {
			if _, err := br.Exec(); err != nil {
				br.Close()
				return nil, fmt.Errorf("cancel deliveries of endpoint %s: %w", r.endpointID, err)
			}
		}
		if err == nil && o.Attempt != nil && r.appID != herald.OperationalAppID {
			events = append(events, herald.OperationalEvent{Type: herald.EventEndpointDisabled, At: o.Attempt.CreatedAt,
				AppID: r.appID, EndpointID: r.endpointID, FailSince: fromNullTime(since), Trigger: herald.TriggerAutomaticDisable})
		}
	}
	if err := br.Close(); err != nil {
		return nil, fmt.Errorf("disable endpoints: %w", err)
	}
	return events, nil
}

// queueEvents stores each event as a message of the operational
// application with a pending delivery to every enabled operational
// endpoint whose filter types accept it, in tx, after filling in the UIDs
// and the message's eventId, and wakes the nodes. An event no operational
// endpoint accepts is not stored; an event about an operational endpoint
// never is.
func queueEvents(ctx context.Context, tx pgx.Tx, events []herald.OperationalEvent) error {
	if len(events) == 0 {
		return nil
	}
	rows, _ := tx.Query(ctx, `SELECT id, disabled, filter_types FROM endpoint
		WHERE app_id = $1 AND NOT disabled ORDER BY id`, herald.OperationalAppID)
	eps, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (herald.Endpoint, error) {
		var r herald.Endpoint
		err := row.Scan(&r.ID, &r.Disabled, &r.FilterTypes)
		return r, err
	})
	if err != nil {
		return fmt.Errorf("read the operational endpoints: %w", err)
	}
	if len(eps) == 0 {
		return nil
	}
	queued := false
	for i := range events {
		ev := &events[i]
		if ev.AppID == herald.OperationalAppID {
			continue // never report on an operational endpoint
		}
		to := herald.OperationalRoutes(eps, ev.Type)
		if len(to) == 0 {
			continue
		}
		queued = true
		var appUID, endpointUID, eventID *string
		err := tx.QueryRow(ctx, `SELECT a.uid, e.uid FROM endpoint e JOIN application a ON a.id = e.app_id
			WHERE e.id = $1`, ev.EndpointID).Scan(&appUID, &endpointUID)
		if err != nil {
			return fmt.Errorf("read endpoint %s for its %s event: %w", ev.EndpointID, ev.Type, err)
		}
		ev.AppUID, ev.EndpointUID = fromNullString(appUID), fromNullString(endpointUID)
		if ev.MessageID != "" {
			if err := tx.QueryRow(ctx, `SELECT event_id FROM message WHERE id = $1`, ev.MessageID).Scan(&eventID); err != nil {
				return fmt.Errorf("read message %s for its %s event: %w", ev.MessageID, ev.Type, err)
			}
			ev.MsgEventID = fromNullString(eventID)
		}
		m, ds, err := ev.Message(to)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO message (id, app_id, event_type, payload, content_type, created_at)
			VALUES ($1, $2, $3, $4, '', $5)`,
			m.ID, m.AppID, m.EventType, m.Payload, m.CreatedAt)
		if err != nil {
			return fmt.Errorf("insert %s event: %w", ev.Type, err)
		}
		for _, d := range ds {
			_, err = tx.Exec(ctx, `INSERT INTO delivery (id, app_id, message_id, endpoint_id, status, next_attempt_at,
				attempts, trigger_type, created_at, updated_at) VALUES ($1, $2, $3, $4, 'pending', $5, 0, 0, $5, $5)`,
				d.ID, d.AppID, d.MessageID, d.EndpointID, d.CreatedAt)
			if err != nil {
				return fmt.Errorf("insert delivery of %s event: %w", ev.Type, err)
			}
		}
	}
	if !queued {
		return nil
	}
	return notifyWork(ctx, tx)
}
