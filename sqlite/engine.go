package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/herald-webhooks/herald"
)

// engineStmts are the dispatcher's hot-path statements, prepared once on the
// writer connection and bound to each call's transaction.
type engineStmts struct {
	claim         *sql.Stmt // ClaimDue without SkipEndpoints
	claimSkipping *sql.Stmt // ClaimDue with SkipEndpoints as a JSON list
	claimWindow   *sql.Stmt // ClaimDue with a Window
	claimApps     *sql.Stmt // ClaimDue with PerApp
	claimMessages *sql.Stmt // the claimed deliveries' messages, IDs as a JSON list
	finish        *sql.Stmt // a delivery's next state, if still leased
	// insertAttempts[k] inserts attemptChunks[k] attempts.
	insertAttempts [len(attemptChunks)]*sql.Stmt
	disable        *sql.Stmt // disables an endpoint
	cancelPending  *sql.Stmt // cancels an endpoint's pending deliveries
	// claimHeads and claimHeadsSkipping claim FIFO endpoints' heads;
	// clearFailing and setFailing move failing_since (see isolation.go).
	claimHeads         *sql.Stmt
	claimHeadsSkipping *sql.Stmt
	clearFailing       *sql.Stmt
	setFailing         *sql.Stmt
}

// unplanned is an integer parameter whose bound value the planner does
// not read. SQLite's planner reads the value bound to a bare `LIMIT ?`,
// and, once ANALYZE has collected samples (STAT4), to a `col <= ?` on an
// indexed column; a statement whose plan read a bound value expires when
// another value is bound, and its next run compiles it again. Claims
// change size from one to the next and their time with every call, so
// many claims paid a compile (five times the statement's run on an empty
// store; 2.8 % of a one-to-one bench run's CPU). Inside a CAST the value
// is an expression evaluated at run time; the plans stay the same
// (TestQueryPlans).
const unplanned = `CAST(? AS INTEGER)`

// limitParam is a LIMIT bound as an unplanned parameter.
const limitParam = `LIMIT ` + unplanned

// claimSQL leases due deliveries in one statement; %s is where the
// SkipEndpoints condition goes. The inner SELECT walks delivery_due and
// leaves FIFO endpoints to claimHeadsSQL.
const claimSQL = `UPDATE delivery SET status = 'sending', lease_owner = ?, lease_expires_at = ?, updated_at = ?
	WHERE id IN (SELECT id FROM delivery WHERE status = 'pending' AND next_attempt_at <= ` + unplanned + notFIFO + `%s
		ORDER BY next_attempt_at ` + limitParam + `)
	RETURNING ` + deliveryColumns

// claimWindowSQL is claimSQL for a claim with a Window: the innermost
// SELECT walks delivery_due for at most Window rows, whatever the
// backlog; the skipped endpoints and the per-endpoint limit apply to that
// window only.
const claimWindowSQL = `UPDATE delivery SET status = 'sending', lease_owner = ?, lease_expires_at = ?, updated_at = ?
	WHERE id IN (SELECT id FROM (
			SELECT id, next_attempt_at, row_number() OVER (PARTITION BY endpoint_id ORDER BY next_attempt_at, id) AS n
			FROM (SELECT id, endpoint_id, next_attempt_at FROM delivery WHERE status = 'pending' AND next_attempt_at <= ` + unplanned + notFIFO + `
				ORDER BY next_attempt_at ` + limitParam + `)
			WHERE endpoint_id NOT IN (SELECT value FROM json_each(?)))
		WHERE n <= ? ORDER BY next_attempt_at ` + limitParam + `)
	RETURNING ` + deliveryColumns

// claimAppsSQL is the claim in applications' turns (ClaimOptions.PerApp).
// apps hops through delivery_app_due from one application with pending
// deliveries to the next, one seek each however many it has; for each
// application not skipped, a correlated seek reads its first window due
// deliveries (a limit of -1 reads them all). The skipped endpoints and the
// per-endpoint limit apply to those rows; turn numbers each application's
// remaining rows in due order, and the claim takes the first turns of every
// application, at most perApp of one, limit in all. What it reads grows with
// the number of applications with pending deliveries and the window, never
// with one application's backlog.
const claimAppsSQL = `UPDATE delivery SET status = 'sending', lease_owner = ?, lease_expires_at = ?, updated_at = ?
	WHERE id IN (WITH RECURSIVE apps(id) AS (
			SELECT (SELECT app_id FROM delivery WHERE status = 'pending' AND app_id > '' ORDER BY app_id LIMIT 1)
			UNION ALL
			SELECT (SELECT app_id FROM delivery WHERE status = 'pending' AND app_id > apps.id ORDER BY app_id LIMIT 1)
			FROM apps WHERE apps.id IS NOT NULL)
		SELECT id FROM (
			SELECT id, next_attempt_at, row_number() OVER (PARTITION BY app_id ORDER BY next_attempt_at, id) AS turn FROM (
				SELECT d.id, d.app_id, d.next_attempt_at,
					row_number() OVER (PARTITION BY d.endpoint_id ORDER BY d.next_attempt_at, d.id) AS n
				FROM apps, delivery d
				WHERE apps.id NOT IN (SELECT value FROM json_each(?))
					AND d.rowid IN (SELECT rowid FROM delivery WHERE app_id = apps.id AND status = 'pending'
						AND next_attempt_at <= ` + unplanned + notFIFO + `
						ORDER BY next_attempt_at ` + limitParam + `)
					AND d.endpoint_id NOT IN (SELECT value FROM json_each(?)))
			WHERE n <= ?)
		WHERE turn <= ? ORDER BY turn, next_attempt_at, id ` + limitParam + `)
	RETURNING ` + deliveryColumns

// claimMessagesSQL loads the claimed deliveries' messages with one
// parameter, a JSON list of IDs, whatever the batch size: no chunking under
// SQLite's limit of bound parameters.
const claimMessagesSQL = `SELECT ` + messageReadColumns + ` FROM message WHERE id IN (SELECT value FROM json_each(?))`

// finishSQL sets the next state of each delivery of a batch of outcomes
// that is still leased to its outcome's owner, in one statement: the JSON
// parameter is an array of [delivery ID, status, next attempt (NULL keeps
// the stored value, for a delivery finished for good), attempts made (0 or
// 1), lease owner, lease expiry (NULL: the owner alone is checked)]. The
// plan walks the array and finds each delivery by ID; the unary + keeps
// statistics taken on a quiet queue from making the planner walk
// delivery_lease once per array element instead.
const finishSQL = `UPDATE delivery SET status = j.status, next_attempt_at = COALESCE(j.next, delivery.next_attempt_at),
	attempts = delivery.attempts + j.made, trigger = CASE WHEN j.made = 0 THEN delivery.trigger ELSE 0 END,
	lease_owner = NULL, lease_expires_at = NULL, updated_at = ?
	FROM (SELECT value ->> 0 AS id, value ->> 1 AS status, value ->> 2 AS next, value ->> 3 AS made, value ->> 4 AS owner,
			value ->> 5 AS until
		FROM json_each(?)) AS j
	WHERE delivery.id = j.id AND +delivery.status = 'sending' AND delivery.lease_owner = j.owner
		AND (j.until IS NULL OR delivery.lease_expires_at = j.until)
	RETURNING delivery.id, delivery.app_id, delivery.message_id, delivery.endpoint_id`

// attemptChunks are the sizes of the multi-row attempt inserts, largest
// first: a batch goes in chunks of 32 and its rest in at most five
// statements (16, 8, 4, 2, 1), one statement each.
var attemptChunks = [...]int{32, 16, 8, 4, 2, 1}

// insertAttemptSQL inserts n attempts.
func insertAttemptSQL(n int) string {
	row := "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
	return `INSERT INTO attempt (` + attemptColumns + `) VALUES ` + strings.Repeat(row+", ", n-1) + row
}

// disableSQL disables an endpoint that answered 410 Gone and returns since
// when it had been failing; no row when it was disabled already.
const disableSQL = `UPDATE endpoint SET disabled = 1, updated_at = ? WHERE id = ? AND disabled = 0 RETURNING failing_since`

// cancelPendingSQL cancels the pending deliveries of a disabled endpoint.
const cancelPendingSQL = `UPDATE delivery SET status = 'canceled', updated_at = ?
	WHERE endpoint_id = ? AND status = 'pending'`

// prepareEngineStmts prepares the dispatcher's statements on the writer.
func (s *Store) prepareEngineStmts(ctx context.Context) error {
	st := &s.engine
	for _, p := range []struct {
		dst  **sql.Stmt
		what string
		q    string
	}{
		{&st.claim, "claim", fmt.Sprintf(claimSQL, "")},
		{&st.claimSkipping, "claim skipping endpoints", fmt.Sprintf(claimSQL,
			` AND endpoint_id NOT IN (SELECT value FROM json_each(?))`)},
		{&st.claimWindow, "claim in a window", claimWindowSQL},
		{&st.claimApps, "claim in applications' turns", claimAppsSQL},
		{&st.claimMessages, "claimed messages", claimMessagesSQL},
		{&st.finish, "finish deliveries", finishSQL},
		{&st.disable, "disable endpoint", disableSQL},
		{&st.cancelPending, "cancel pending deliveries", cancelPendingSQL},
		{&st.claimHeads, "claim FIFO heads", fmt.Sprintf(claimHeadsSQL, "")},
		{&st.claimHeadsSkipping, "claim FIFO heads skipping endpoints", fmt.Sprintf(claimHeadsSQL, skipHeads)},
		{&st.clearFailing, "clear failing_since", clearFailingSQL},
		{&st.setFailing, "set failing_since", setFailingSQL},
	} {
		stmt, err := s.w.PrepareContext(ctx, p.q)
		if err != nil {
			return fmt.Errorf("prepare %s: %w", p.what, err)
		}
		*p.dst = stmt
	}
	for k, n := range attemptChunks {
		stmt, err := s.w.PrepareContext(ctx, insertAttemptSQL(n))
		if err != nil {
			return fmt.Errorf("prepare insert of %d attempts: %w", n, err)
		}
		st.insertAttempts[k] = stmt
	}
	return nil
}

// close closes the prepared statements.
func (st *engineStmts) close() {
	for _, stmt := range []*sql.Stmt{st.claim, st.claimSkipping, st.claimWindow, st.claimApps, st.claimMessages, st.finish,
		st.disable, st.cancelPending, st.claimHeads, st.claimHeadsSkipping, st.clearFailing, st.setFailing} {
		if stmt != nil {
			stmt.Close()
		}
	}
	for _, stmt := range st.insertAttempts {
		if stmt != nil {
			stmt.Close()
		}
	}
}

// jsonIDs encodes ids as a JSON list for json_each.
func jsonIDs(ids []string) (string, error) {
	if len(ids) == 0 {
		return "[]", nil
	}
	b, err := json.Marshal(ids)
	if err != nil {
		return "", fmt.Errorf("encode ids: %w", err)
	}
	return string(b), nil
}

// ClaimDue leases up to opts.Limit due deliveries and loads their messages
// in one transaction (see herald.Store): first the heads of FIFO endpoints
// (claimHeadsSQL), then, with the room left, the others with one UPDATE …
// RETURNING. Claims are ordered by NextAttemptAt, then delivery ID.
func (s *Store) ClaimDue(ctx context.Context, opts herald.ClaimOptions) ([]herald.Claim, error) {
	if opts.Limit < 1 {
		return nil, nil
	}
	var claims []herald.Claim
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		claims, err = s.claim(ctx, tx, opts)
		return err
	})
	if err != nil {
		return nil, s.fail("claim deliveries", err)
	}
	return claims, nil
}

// claim runs the claim statement and attaches the messages.
func (s *Store) claim(ctx context.Context, tx *sql.Tx, opts herald.ClaimOptions) ([]herald.Claim, error) {
	args := []any{opts.Owner, micros(opts.LeaseUntil), micros(opts.Now), micros(opts.Now)}
	stmt := s.engine.claim
	switch {
	case opts.PerApp > 0:
		stmt = s.engine.claimApps
		a, err := claimAppsArgs(opts)
		if err != nil {
			return nil, err
		}
		args = append(args[:3], a...) // the due time comes after the skipped applications
	case opts.Window > 0:
		skip, err := jsonIDs(opts.SkipEndpoints)
		if err != nil {
			return nil, err
		}
		perEndpoint := opts.PerEndpoint
		if perEndpoint <= 0 {
			perEndpoint = opts.Limit
		}
		stmt = s.engine.claimWindow
		args = append(args, opts.Window, skip, perEndpoint)
	case len(opts.SkipEndpoints) > 0:
		skip, err := jsonIDs(opts.SkipEndpoints)
		if err != nil {
			return nil, err
		}
		stmt = s.engine.claimSkipping
		args = append(args, skip)
	}
	heads, err := s.claimHeads(ctx, tx, opts)
	if err != nil {
		return nil, err
	}
	dels := heads
	if room := opts.Limit - len(heads); room > 0 {
		args = append(args, room)
		more, err := queryDeliveries(ctx, tx.StmtContext(ctx, stmt), args...)
		if err != nil {
			return nil, err
		}
		dels = append(dels, more...)
	}
	if len(dels) == 0 {
		return nil, nil
	}
	// RETURNING gives rows in no promised order.
	slices.SortFunc(dels, func(a, b *herald.Delivery) int {
		return cmp.Or(a.NextAttemptAt.Compare(b.NextAttemptAt), cmp.Compare(a.ID, b.ID))
	})
	msgs, err := s.claimedMessages(ctx, tx, dels)
	if err != nil {
		return nil, err
	}
	claims := make([]herald.Claim, 0, len(dels))
	for _, d := range dels {
		m, ok := msgs[d.MessageID]
		if !ok { // impossible with the foreign key; never hand out a claim without its message
			return nil, fmt.Errorf("claimed delivery %s has no message %s", d.ID, d.MessageID)
		}
		claims = append(claims, herald.Claim{Delivery: d, Message: m})
	}
	return claims, nil
}

// claimAppsArgs returns the arguments of claimAppsSQL after the lease's
// and before the limit.
func claimAppsArgs(opts herald.ClaimOptions) ([]any, error) {
	skipApps, err := jsonIDs(opts.SkipApps)
	if err != nil {
		return nil, err
	}
	skip, err := jsonIDs(opts.SkipEndpoints)
	if err != nil {
		return nil, err
	}
	perEndpoint := opts.Limit
	if opts.Window > 0 && opts.PerEndpoint > 0 {
		perEndpoint = opts.PerEndpoint
	}
	return []any{skipApps, micros(opts.Now), appWindow(opts), skip, perEndpoint, opts.PerApp}, nil
}

// appWindow is how many of one application's due deliveries a claim in
// applications' turns reads: the Window; without one, all of them when
// endpoints are skipped (as a claim without a window reads all that is
// due), else only as many as the claim may take of it. -1 is no limit.
func appWindow(opts herald.ClaimOptions) int {
	switch {
	case opts.Window > 0:
		return opts.Window
	case len(opts.SkipEndpoints) > 0:
		return -1
	default:
		return min(opts.PerApp, opts.Limit)
	}
}

// claimedMessages loads the messages of dels, one *herald.Message per ID.
func (s *Store) claimedMessages(ctx context.Context, tx *sql.Tx, dels []*herald.Delivery) (map[string]*herald.Message, error) {
	msgs := make(map[string]*herald.Message, len(dels))
	ids := make([]string, 0, len(dels))
	for _, d := range dels {
		// The map first dedupes the IDs, then holds the loaded messages.
		if _, ok := msgs[d.MessageID]; !ok {
			msgs[d.MessageID] = nil
			ids = append(ids, d.MessageID)
		}
	}
	clear(msgs)
	list, err := jsonIDs(ids)
	if err != nil {
		return nil, err
	}
	rows, err := tx.StmtContext(ctx, s.engine.claimMessages).QueryContext(ctx, list)
	if err != nil {
		return nil, fmt.Errorf("load claimed messages: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, fmt.Errorf("load claimed messages: %w", err)
		}
		msgs[m.ID] = m
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load claimed messages: %w", err)
	}
	return msgs, nil
}

// queryDeliveries runs a statement that returns delivery rows.
func queryDeliveries(ctx context.Context, stmt *sql.Stmt, args ...any) ([]*herald.Delivery, error) {
	rows, err := stmt.QueryContext(ctx, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*herald.Delivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// outcomeStatuses are the delivery states an attempt outcome may set.
var outcomeStatuses = map[herald.DeliveryStatus]bool{
	herald.DeliveryPending:   true,
	herald.DeliverySucceeded: true,
	herald.DeliveryFailed:    true,
	herald.DeliveryCanceled:  true,
}

// RecordAttempts writes every outcome in one write transaction (see
// herald.Store). The attempt row takes its application, message and
// endpoint from the delivery, its response body truncated to
// herald.MaxResponseBody and its duration kept to the microsecond; an
// attempt without an ID gets one. UpdatedAt of the deliveries (and of an
// endpoint DisableEndpoint disables) is the store's clock.
func (s *Store) RecordAttempts(ctx context.Context, outcomes []herald.AttemptOutcome) error {
	for _, o := range outcomes {
		if !outcomeStatuses[o.Status] {
			return herald.Errorf(herald.EINVALID, "An attempt outcome cannot set delivery status %q.", o.Status)
		}
	}
	if len(outcomes) == 0 {
		return nil
	}
	now := micros(s.now())
	err := s.writeAlone(ctx, func(ctx context.Context, tx *sql.Tx) error {
		leased, err := s.finishDeliveries(ctx, tx, outcomes, now)
		if err != nil {
			return err
		}
		attemptIDs, err := s.insertAttempts(ctx, tx, outcomes, leased)
		if err != nil {
			return err
		}
		tr := &failureTracker{ctx: ctx, tx: tx, s: s, now: now}
		for i := range outcomes {
			o := &outcomes[i]
			d, ok := leased[i]
			if !ok {
				continue
			}
			if o.Attempt != nil {
				if err := tr.track(o, attemptIDs[i], d.appID, d.messageID, d.endpointID); err != nil {
					return err
				}
			}
			if o.DisableEndpoint {
				if err := s.disableGone(ctx, tx, tr, o, d, now); err != nil {
					return err
				}
			}
		}
		return s.queueEvents(ctx, tx, tr.events)
	})
	if err != nil {
		return s.fail("record attempts", err)
	}
	return nil
}

// finishedDelivery is what an outcome's attempt row and follow-ups need of
// its delivery.
type finishedDelivery struct {
	appID, messageID, endpointID string
}

// finishDeliveries sets the next state of the deliveries of outcomes still
// leased to their outcome's owner (under the same claim, when the outcome
// names its LeaseUntil), in one statement, and returns those
// deliveries by the index of their outcome. The others lost their lease:
// their outcomes are skipped whole. A delivery that appears twice is
// updated in rounds, so the batch behaves as its outcomes one by one: a
// later outcome applies only when no earlier one did.
func (s *Store) finishDeliveries(ctx context.Context, tx *sql.Tx, outcomes []herald.AttemptOutcome, now int64) (map[int]finishedDelivery, error) {
	// Round r holds the r-th outcome of each delivery in the batch: one
	// round unless a delivery appears twice. A later round can only match a
	// delivery that no earlier outcome finished, as one by one.
	seen := make(map[string]int, len(outcomes))
	var rounds [][]int
	for i := range outcomes {
		r := seen[outcomes[i].DeliveryID]
		seen[outcomes[i].DeliveryID] = r + 1
		if r == len(rounds) {
			rounds = append(rounds, nil)
		}
		rounds[r] = append(rounds[r], i)
	}
	leased := make(map[int]finishedDelivery, len(outcomes))
	for _, round := range rounds {
		if err := s.finishRound(ctx, tx, outcomes, round, now, leased); err != nil {
			return nil, err
		}
	}
	return leased, nil
}

// finishRound runs finishSQL for the outcomes of round, whose delivery IDs
// are distinct, and adds the deliveries it finished to leased.
func (s *Store) finishRound(ctx context.Context, tx *sql.Tx, outcomes []herald.AttemptOutcome, round []int, now int64, leased map[int]finishedDelivery) error {
	index := make(map[string]int, len(round))
	args := make([]any, 0, len(round))
	for _, i := range round {
		o := &outcomes[i]
		index[o.DeliveryID] = i
		var next any // null keeps the stored value
		if !o.NextAttemptAt.IsZero() {
			next = micros(o.NextAttemptAt)
		}
		made := 0
		if o.Attempt != nil {
			made = 1
		}
		var until any // null: the owner alone is checked
		if !o.LeaseUntil.IsZero() {
			until = micros(o.LeaseUntil)
		}
		args = append(args, []any{o.DeliveryID, string(o.Status), next, made, o.LeaseOwner, until})
	}
	list, err := json.Marshal(args)
	if err != nil {
		return err
	}
	rows, err := tx.StmtContext(ctx, s.engine.finish).QueryContext(ctx, now, string(list))
	if err != nil {
		return fmt.Errorf("update deliveries: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var d finishedDelivery
		if err := rows.Scan(&id, &d.appID, &d.messageID, &d.endpointID); err != nil {
			return fmt.Errorf("update deliveries: %w", err)
		}
		leased[index[id]] = d
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("update deliveries: %w", err)
	}
	return nil
}

// insertAttempts inserts the attempts of the outcomes whose delivery was
// still leased, in the outcomes' order, in multi-row statements of the
// attemptChunks sizes, and returns their IDs by the index of their
// outcome.
func (s *Store) insertAttempts(ctx context.Context, tx *sql.Tx, outcomes []herald.AttemptOutcome, leased map[int]finishedDelivery) (map[int]string, error) {
	const columns = 13
	ids := make(map[int]string, len(leased))
	args := make([]any, 0, len(leased)*columns)
	for i := range outcomes {
		o := &outcomes[i]
		d, ok := leased[i]
		a := o.Attempt
		if !ok || a == nil {
			continue
		}
		id := a.ID
		if id == "" {
			id = herald.NewID(herald.PrefixAttempt)
		}
		ids[i] = id
		body := a.Response
		if len(body) > herald.MaxResponseBody {
			body = body[:herald.MaxResponseBody]
		}
		args = append(args, id, o.DeliveryID, d.messageID, d.endpointID, d.appID, a.URL, a.ResponseStatus,
			body, a.Duration.Microseconds(), int(a.Status), int(a.Trigger), nullString(a.Error), micros(a.CreatedAt))
	}
	for k, n := range attemptChunks {
		var st *sql.Stmt
		for len(args) >= n*columns {
			if st == nil {
				st = tx.StmtContext(ctx, s.engine.insertAttempts[k])
				defer st.Close()
			}
			if _, err := st.ExecContext(ctx, args[:n*columns]...); err != nil {
				return nil, fmt.Errorf("insert attempts: %w", err)
			}
			args = args[n*columns:]
		}
	}
	return ids, nil
}

// disableGone disables the endpoint of outcome o, whose attempt was
// answered 410 Gone, and cancels its pending deliveries.
func (s *Store) disableGone(ctx context.Context, tx *sql.Tx, tr *failureTracker, o *herald.AttemptOutcome, d finishedDelivery, now int64) error {
	var since sql.NullInt64
	err := tx.StmtContext(ctx, s.engine.disable).QueryRowContext(ctx, now, d.endpointID).Scan(&since)
	switch {
	case err == nil && o.Attempt != nil:
		tr.disabled(o.Attempt, d.appID, d.endpointID, fromNullMicros(since))
	case err != nil && !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("disable endpoint %s: %w", d.endpointID, err)
	}
	if _, err := tx.StmtContext(ctx, s.engine.cancelPending).ExecContext(ctx, now, d.endpointID); err != nil {
		return fmt.Errorf("cancel deliveries of endpoint %s: %w", d.endpointID, err)
	}
	return nil
}

// releaseSQL returns claimed deliveries to pending: the JSON parameter is
// an array of [delivery ID, lease expiry of the claim (NULL: any lease of
// the owner)]. The plan walks the array and finds each delivery by ID; the
// unary + keeps the planner from walking every sending row of
// delivery_lease instead.
const releaseSQL = `UPDATE delivery SET status = 'pending', next_attempt_at = ?,
	lease_owner = NULL, lease_expires_at = NULL, updated_at = ?
	FROM (SELECT value ->> 0 AS id, value ->> 1 AS until FROM json_each(?)) AS j
	WHERE delivery.id = j.id AND +delivery.status = 'sending' AND delivery.lease_owner = ?
		AND (j.until IS NULL OR delivery.lease_expires_at = j.until)`

// ReleaseDeliveries returns the claimed deliveries still leased to owner
// under those claims to pending, due at now; their attempt count and
// trigger are kept.
func (s *Store) ReleaseDeliveries(ctx context.Context, owner string, claims []herald.LeaseRef, now time.Time) error {
	if len(claims) == 0 {
		return nil
	}
	refs := make([][2]any, len(claims))
	for i, c := range claims {
		refs[i][0] = c.DeliveryID
		if !c.Until.IsZero() {
			refs[i][1] = micros(c.Until)
		}
	}
	list, err := json.Marshal(refs)
	if err != nil {
		return fmt.Errorf("encode claims: %w", err)
	}
	err = s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, releaseSQL, micros(now), micros(now), string(list), owner)
		return err
	})
	if err != nil {
		return s.fail("release deliveries", err)
	}
	return nil
}

// rescueSQL names the partial index delivery_lease, which holds the
// sending rows by lease expiry, so that its plan never depends on the
// planner's statistics.
const rescueSQL = `UPDATE delivery SET status = 'pending', next_attempt_at = ?,
	lease_owner = NULL, lease_expires_at = NULL, updated_at = ?
	WHERE id IN (SELECT id FROM delivery INDEXED BY delivery_lease WHERE status = 'sending' AND lease_expires_at < ?
		ORDER BY lease_expires_at LIMIT ?)`

// RescueExpired returns up to limit deliveries whose lease expired before
// now, oldest expiry first, to pending, due at now; it walks the partial
// index delivery_lease.
func (s *Store) RescueExpired(ctx context.Context, now time.Time, limit int) (int, error) {
	if limit < 1 {
		return 0, nil
	}
	res, err := s.w.ExecContext(ctx, rescueSQL, micros(now), micros(now), micros(now), limit)
	if err != nil {
		return 0, s.fail("rescue expired leases", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, s.fail("rescue expired leases", err)
	}
	return int(n), nil
}
