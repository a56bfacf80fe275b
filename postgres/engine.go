package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-webhooks/herald"
)

// claimSQL leases due deliveries and returns each with its message in one
// statement, so a claim is one round trip. The inner SELECT walks
// delivery_claim and skips rows another node is claiming right now (FOR
// UPDATE SKIP LOCKED): nodes never wait for each other and never lease the
// same delivery. $5, a text array, lists the endpoints to skip; empty skips
// none. The message columns come once per delivery; claims of one message
// share one decoded *herald.Message.
var claimSQL = `WITH claimed AS (
		UPDATE delivery SET status = 'sending', lease_owner = $1, lease_expires_at = $2, updated_at = $3
		WHERE id IN (SELECT id FROM delivery
			WHERE status = 'pending' AND next_attempt_at <= $3 AND endpoint_id <> ALL($5::text[])` + notFIFO + `
			ORDER BY next_attempt_at LIMIT $4 FOR UPDATE SKIP LOCKED)
		RETURNING ` + deliveryColumns + `)
	SELECT ` + prefixedDeliveryColumns + `, ` + claimMessageColumns + `
	FROM claimed d JOIN message m ON m.id = d.message_id`

// claimWindowSQL is claimSQL for a claim with a Window ($6): the first
// CTE locks at most Window due rows in due order, whatever the backlog;
// the skipped endpoints ($5) and the per-endpoint limit ($7) apply to
// that window only. The window's rows left unclaimed are unlocked when
// the statement ends.
var claimWindowSQL = `WITH win AS (
		SELECT id, endpoint_id, next_attempt_at FROM delivery
		WHERE status = 'pending' AND next_attempt_at <= $3` + notFIFO + `
		ORDER BY next_attempt_at LIMIT $6 FOR UPDATE SKIP LOCKED),
	picked AS (
		SELECT id FROM (
			SELECT id, next_attempt_at, row_number() OVER (PARTITION BY endpoint_id ORDER BY next_attempt_at, id) AS n
			FROM win WHERE endpoint_id <> ALL($5::text[])) w
		WHERE n <= $7 ORDER BY next_attempt_at LIMIT $4),
	claimed AS (
		UPDATE delivery SET status = 'sending', lease_owner = $1, lease_expires_at = $2, updated_at = $3
		WHERE id IN (SELECT id FROM picked)
		RETURNING ` + deliveryColumns + `)
	SELECT ` + prefixedDeliveryColumns + `, ` + claimMessageColumns + `
	FROM claimed d JOIN message m ON m.id = d.message_id`

// claimAppsSQL is the claim in applications' turns (ClaimOptions.PerApp).
// apps hops through delivery_app_due from one application with pending
// deliveries to the next, one seek each however many it has; for each
// application not skipped ($8), a lateral seek locks its first $6 due
// deliveries (NULL: all), skipping rows another node is claiming. The
// skipped endpoints ($5) and the per-endpoint limit ($7) apply to those
// rows; turn numbers each application's remaining rows in due order, and
// the claim takes the first turns of every application, at most $9 of one,
// $4 in all. What it reads grows with the number of applications with
// pending deliveries and the window, never with one application's
// backlog. The locked rows left unclaimed are unlocked when the statement
// ends. The seek bounds the due time as a row comparison led by app_id,
// which only delivery_app_due can search: with statistics of a queue held
// by one application, delivery_claim (status, next_attempt_at) looked as
// cheap to the planner, and it walks every application's due rows
// (TestClaimAppsPlan).
var claimAppsSQL = `WITH RECURSIVE apps(id) AS (
		SELECT (SELECT app_id FROM delivery WHERE status = 'pending' ORDER BY app_id LIMIT 1)
		UNION ALL
		SELECT (SELECT app_id FROM delivery WHERE status = 'pending' AND app_id > apps.id ORDER BY app_id LIMIT 1)
		FROM apps WHERE apps.id IS NOT NULL),
	win AS (
		SELECT w.id, w.app_id, w.endpoint_id, w.next_attempt_at FROM apps
		CROSS JOIN LATERAL (SELECT id, app_id, endpoint_id, next_attempt_at FROM delivery
			WHERE app_id = apps.id AND status = 'pending' AND (app_id, next_attempt_at) <= (apps.id, $3)` + notFIFO + `
			ORDER BY app_id, next_attempt_at LIMIT $6 FOR UPDATE SKIP LOCKED) w
		WHERE apps.id IS NOT NULL AND apps.id <> ALL($8::text[])),
	picked AS (
		SELECT id FROM (
			SELECT id, next_attempt_at, row_number() OVER (PARTITION BY app_id ORDER BY next_attempt_at, id) AS turn
			FROM (SELECT id, app_id, next_attempt_at,
					row_number() OVER (PARTITION BY endpoint_id ORDER BY next_attempt_at, id) AS n
				FROM win WHERE endpoint_id <> ALL($5::text[])) e
			WHERE n <= $7) t
		WHERE turn <= $9 ORDER BY turn, next_attempt_at, id LIMIT $4),
	claimed AS (
		UPDATE delivery SET status = 'sending', lease_owner = $1, lease_expires_at = $2, updated_at = $3
		WHERE id IN (SELECT id FROM picked)
		RETURNING ` + deliveryColumns + `)
	SELECT ` + prefixedDeliveryColumns + `, ` + claimMessageColumns + `
	FROM claimed d JOIN message m ON m.id = d.message_id`

// appWindow is how many of one application's due deliveries a claim in
// applications' turns reads: the Window; without one, all of them (nil)
// when endpoints are skipped, as a claim without a window reads all that
// is due, else only as many as the claim may take of it.
func appWindow(opts herald.ClaimOptions, limit int) any {
	switch {
	case opts.Window > 0:
		return opts.Window
	case len(opts.SkipEndpoints) > 0:
		return nil
	default:
		return min(opts.PerApp, limit)
	}
}

// claimRest claims up to limit due deliveries of non-FIFO endpoints with
// claimSQL, claimWindowSQL when opts has a Window, or claimAppsSQL when it
// has PerApp.
func claimRest(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, opts herald.ClaimOptions, limit int, skip []string) ([]herald.Claim, error) {
	var rows pgx.Rows
	var err error
	switch {
	case opts.PerApp > 0:
		perEndpoint := limit
		if opts.Window > 0 && opts.PerEndpoint > 0 {
			perEndpoint = opts.PerEndpoint
		}
		rows, err = q.Query(ctx, claimAppsSQL, opts.Owner, opts.LeaseUntil, opts.Now, limit, skip,
			appWindow(opts, limit), perEndpoint, nonNil(opts.SkipApps), opts.PerApp)
	case opts.Window > 0:
		perEndpoint := opts.PerEndpoint
		if perEndpoint <= 0 {
			perEndpoint = limit
		}
		rows, err = q.Query(ctx, claimWindowSQL, opts.Owner, opts.LeaseUntil, opts.Now, limit, skip, opts.Window, perEndpoint)
	default:
		rows, err = q.Query(ctx, claimSQL, opts.Owner, opts.LeaseUntil, opts.Now, limit, skip)
	}
	if err != nil {
		return nil, err
	}
	return scanClaims(rows)
}

// claimMessageColumns are the message columns a claim reads beside the
// delivery's, in scanClaims order (the ID and app come from the delivery).
const claimMessageColumns = `m.event_id, m.event_type, m.payload, m.content_type, m.channels, m.tags, m.created_at, m.traceparent`

// prefixedDeliveryColumns are deliveryColumns qualified by "d.".
var prefixedDeliveryColumns = prefixed("d.", deliveryColumns)

// ClaimDue leases up to opts.Limit due deliveries (see herald.Store).
// Without FIFO endpoints it is one statement; with some, one transaction:
// the FIFO heads first (see isolation.go), then the others with the room
// left. Claims are ordered by NextAttemptAt, then delivery ID.
func (s *Store) ClaimDue(ctx context.Context, opts herald.ClaimOptions) ([]herald.Claim, error) {
	if opts.Limit < 1 {
		return nil, nil
	}
	skip := nonNil(opts.SkipEndpoints)
	fifo, err := s.hasFIFO(ctx)
	if err != nil {
		return nil, s.fail("claim deliveries", err)
	}
	var claims []herald.Claim
	if !fifo {
		claims, err = claimRest(ctx, s.pool, opts, opts.Limit, skip)
		if err != nil {
			return nil, s.fail("claim deliveries", err)
		}
	} else {
		err = s.inTx(ctx, func(tx pgx.Tx) error {
			heads, err := claimHeads(ctx, tx, opts, skip)
			if err != nil {
				return err
			}
			claims = heads
			if room := opts.Limit - len(heads); room > 0 {
				more, err := claimRest(ctx, tx, opts, room, skip)
				if err != nil {
					return err
				}
				claims = append(claims, more...)
			}
			return nil
		})
		if err != nil {
			return nil, s.fail("claim deliveries", err)
		}
	}
	// RETURNING gives rows in no promised order.
	slices.SortFunc(claims, func(a, b herald.Claim) int {
		return cmp.Or(a.Delivery.NextAttemptAt.Compare(b.Delivery.NextAttemptAt), cmp.Compare(a.Delivery.ID, b.Delivery.ID))
	})
	return claims, nil
}

// nonNil returns ids, or an empty list for nil: a text[] parameter that
// ALL() compares against must not be NULL.
func nonNil(ids []string) []string {
	if ids == nil {
		return []string{}
	}
	return ids
}

// scanClaims reads the rows of claimSQL, decoding each message once.
func scanClaims(rows pgx.Rows) ([]herald.Claim, error) {
	defer rows.Close()
	var claims []herald.Claim
	msgs := make(map[string]*herald.Message)
	for rows.Next() {
		var (
			r                    deliveryRow
			m                    herald.Message
			eventID, traceParent *string
			createdAt            time.Time
		)
		dest := append(r.dest(), &eventID, &m.EventType, &m.Payload, &m.ContentType, &m.Channels, &m.Tags, &createdAt, &traceParent)
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		d := r.delivery()
		shared, ok := msgs[d.MessageID]
		if !ok {
			m.ID, m.AppID, m.EventID, m.CreatedAt = d.MessageID, d.AppID, fromNullString(eventID), createdAt.UTC()
			m.TraceParent = fromNullString(traceParent)
			shared = &m
			msgs[d.MessageID] = shared
		}
		claims = append(claims, herald.Claim{Delivery: d, Message: shared})
	}
	return claims, rows.Err()
}

// outcomeStatuses are the delivery states an attempt outcome may set.
var outcomeStatuses = map[herald.DeliveryStatus]bool{
	herald.DeliveryPending:   true,
	herald.DeliverySucceeded: true,
	herald.DeliveryFailed:    true,
	herald.DeliveryCanceled:  true,
}

// finishSQL sets a delivery's next state, for an outcome without an attempt
// (a deferral or a cancel: the trigger is kept, so a deferred manual resend
// stays manual), if it is still leased to the outcome's owner ($5, $6)
// under the same claim ($7, the claim's lease expiry, when the outcome
// names it) and returns its endpoint, application and message; no row
// means the lease was lost. COALESCE keeps next_attempt_at when the outcome has none (a
// delivery finished for good).
const finishSQL = `UPDATE delivery SET status = $1, next_attempt_at = COALESCE($2, next_attempt_at),
	attempts = attempts + $3, lease_owner = NULL, lease_expires_at = NULL, updated_at = $4
	WHERE id = $5 AND status = 'sending' AND lease_owner = $6 AND ($7::timestamptz IS NULL OR lease_expires_at = $7)
	RETURNING endpoint_id, app_id, message_id, false`

// finishWithAttemptSQL is finishSQL plus the attempt row, inserted only
// when the update matched; the attempt takes its application, message and
// endpoint from the delivery. It also moves the endpoint's failing_since
// ($16: the attempt succeeded): cleared by a success, set by the first
// failure after one; the UPDATE matches only when it changes something,
// so the usual case locks and writes nothing. The last column says
// whether this attempt set failing_since. The operational endpoints (of
// application $17) are never tracked.
const finishWithAttemptSQL = `WITH finished AS (
		UPDATE delivery SET status = $1, next_attempt_at = COALESCE($2, next_attempt_at),
			attempts = attempts + $3, trigger_type = 0, lease_owner = NULL, lease_expires_at = NULL, updated_at = $4
		WHERE id = $5 AND status = 'sending' AND lease_owner = $6 AND ($18::timestamptz IS NULL OR lease_expires_at = $18)
		RETURNING id, app_id, message_id, endpoint_id),
	inserted AS (
		INSERT INTO attempt (` + attemptColumns + `)
		SELECT $7::text, f.id, f.message_id, f.endpoint_id, f.app_id, $8::text, $9::integer, $10::bytea,
			$11::bigint, $12::smallint, $13::smallint, $14::text, $15::timestamptz
		FROM finished f),
	failing AS (
		UPDATE endpoint e SET failing_since = CASE WHEN $16::boolean THEN NULL ELSE $15::timestamptz END
		FROM finished f
		WHERE e.id = f.endpoint_id AND e.app_id <> $17::text
			AND CASE WHEN $16::boolean THEN e.failing_since IS NOT NULL ELSE e.failing_since IS NULL END
		RETURNING e.failing_since)
	SELECT endpoint_id, app_id, message_id, EXISTS (SELECT 1 FROM failing WHERE failing_since IS NOT NULL) FROM finished`

// cancelPendingSQL cancels the pending deliveries of an endpoint that
// answered 410 Gone.
const cancelPendingSQL = `UPDATE delivery SET status = 'canceled', updated_at = $1 WHERE endpoint_id = $2 AND status = 'pending'`

// RecordAttempts writes every outcome in one transaction (see
// herald.Store): one pipelined batch of statements, each updating a
// delivery if still leased, inserting its attempt and moving its
// endpoint's failing_since in the same statement; then, only if an outcome
// disables its endpoint (410 Gone, or failing for DisableAfter), a second
// batch that does so (see endpointChanges); then the operational events,
// if any. The attempt's response body is truncated to
// herald.MaxResponseBody and its duration kept to the microsecond; an
// attempt without an ID gets one. UpdatedAt of the deliveries (and of a
// disabled endpoint) is the store's clock.
func (s *Store) RecordAttempts(ctx context.Context, outcomes []herald.AttemptOutcome) error {
	for _, o := range outcomes {
		if !outcomeStatuses[o.Status] {
			return herald.Errorf(herald.EINVALID, "An attempt outcome cannot set delivery status %q.", o.Status)
		}
	}
	if len(outcomes) == 0 {
		return nil
	}
	now := s.now()
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var pb pgx.Batch
		recs := make([]recorded, len(outcomes))
		for i := range outcomes {
			recs[i].attemptID = queueFinish(&pb, &outcomes[i], now)
		}
		br := tx.SendBatch(ctx, &pb)
		for i := range outcomes {
			r := &recs[i]
			err := br.QueryRow().Scan(&r.endpointID, &r.appID, &r.msgID, &r.becameFailing)
			if errors.Is(err, pgx.ErrNoRows) {
				continue // the lease was lost: skip the outcome whole
			} else if err != nil {
				br.Close()
				return fmt.Errorf("update delivery %s: %w", outcomes[i].DeliveryID, err)
			}
			r.applied = true
		}
		if err := br.Close(); err != nil {
			return err
		}
		events, err := endpointChanges(ctx, tx, outcomes, recs, now)
		if err != nil {
			return err
		}
		return queueEvents(ctx, tx, events)
	})
	if err != nil {
		return s.fail("record attempts", err)
	}
	return nil
}

// queueFinish adds one outcome's statement to pb and returns the ID of its
// attempt ("" without one).
func queueFinish(pb *pgx.Batch, o *herald.AttemptOutcome, now time.Time) string {
	var next *time.Time // NULL keeps the stored value
	if !o.NextAttemptAt.IsZero() {
		next = &o.NextAttemptAt
	}
	a := o.Attempt
	if a == nil {
		pb.Queue(finishSQL, string(o.Status), next, 0, now, o.DeliveryID, o.LeaseOwner, leaseUntil(o))
		return ""
	}
	id := a.ID
	if id == "" {
		id = herald.NewID(herald.PrefixAttempt)
	}
	body := a.Response
	if len(body) > herald.MaxResponseBody {
		body = body[:herald.MaxResponseBody]
	}
	pb.Queue(finishWithAttemptSQL, string(o.Status), next, 1, now, o.DeliveryID, o.LeaseOwner,
		id, a.URL, a.ResponseStatus, body, a.Duration.Microseconds(), int16(a.Status), int16(a.Trigger),
		nullString(a.Error), a.CreatedAt, a.Status == herald.AttemptSucceeded, herald.OperationalAppID, leaseUntil(o))
	return id
}

// leaseUntil is the lease expiry an outcome must still match, or nil for
// the owner alone.
func leaseUntil(o *herald.AttemptOutcome) *time.Time {
	if o.LeaseUntil.IsZero() {
		return nil
	}
	return &o.LeaseUntil
}

// ReleaseDeliveries returns the claimed deliveries still leased to owner
// under those claims to
// pending, due at now; their attempt count and trigger are kept.
func (s *Store) ReleaseDeliveries(ctx context.Context, owner string, claims []herald.LeaseRef, now time.Time) error {
	if len(claims) == 0 {
		return nil
	}
	ids := make([]string, len(claims))
	untils := make([]*time.Time, len(claims)) // nil: any lease of the owner
	for i := range claims {
		ids[i] = claims[i].DeliveryID
		if !claims[i].Until.IsZero() {
			untils[i] = &claims[i].Until
		}
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE delivery d SET status = 'pending', next_attempt_at = $1,
			lease_owner = NULL, lease_expires_at = NULL, updated_at = $1
			FROM unnest($2::text[], $3::timestamptz[]) AS j(id, until)
			WHERE d.id = j.id AND d.status = 'sending' AND d.lease_owner = $4
				AND (j.until IS NULL OR d.lease_expires_at = j.until)`, now, ids, untils, owner)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		return notifyWork(ctx, tx)
	})
	if err != nil {
		return s.fail("release deliveries", err)
	}
	return nil
}

// rescueSQL returns expired leases to the queue, oldest expiry first,
// through the partial index delivery_lease. SKIP LOCKED leaves rows that a
// node is finishing right now to that node, and lets several rescuers run
// at once.
const rescueSQL = `UPDATE delivery SET status = 'pending', next_attempt_at = $1,
	lease_owner = NULL, lease_expires_at = NULL, updated_at = $1
	WHERE id IN (SELECT id FROM delivery WHERE status = 'sending' AND lease_expires_at < $1
		ORDER BY lease_expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)`

// RescueExpired returns up to limit deliveries whose lease expired before
// now, oldest expiry first, to pending, due at now.
func (s *Store) RescueExpired(ctx context.Context, now time.Time, limit int) (int, error) {
	if limit < 1 {
		return 0, nil
	}
	var n int64
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, rescueSQL, now, limit)
		if err != nil {
			return err
		}
		if n = tag.RowsAffected(); n > 0 {
			return notifyWork(ctx, tx)
		}
		return nil
	})
	if err != nil {
		return 0, s.fail("rescue expired leases", err)
	}
	return int(n), nil
}
