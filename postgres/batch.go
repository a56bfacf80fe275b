package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-webhooks/herald"
)

// messageChunks are the rows per multi-row message insert, largest first:
// a batch's messages go out in as few statements as these sizes allow,
// while the statement texts (and so pgx's prepared-statement cache) stay a
// fixed few.
var messageChunks = [...]int{128, 32, 8, 1}

// messageInserts holds the insert statement of each chunk size. ON
// CONFLICT DO NOTHING turns a taken ID or eventId into a missing RETURNING
// row rather than an error, which would abort the whole transaction.
var messageInserts = func() (out [len(messageChunks)]string) {
	for i, size := range messageChunks {
		var q strings.Builder
		q.WriteString(`INSERT INTO message (` + messageInsertColumns + `) VALUES `)
		for r := range size {
			if r > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(")
			for c := range messageInsertArgs {
				if c > 0 {
					q.WriteString(", ")
				}
				fmt.Fprintf(&q, "$%d", r*messageInsertArgs+c+1)
			}
			q.WriteString(")")
		}
		q.WriteString(` ON CONFLICT DO NOTHING RETURNING id`)
		out[i] = q.String()
	}
	return out
}()

// insertDeliveriesSQL inserts any number of deliveries with one statement
// of fixed text: the per-row values travel as arrays. $6 says which rows
// are leased (sending) to owner $7 until $8; the others are pending. $9
// is each row's due time (the message's DueAt).
const insertDeliveriesSQL = `INSERT INTO delivery (id, app_id, message_id, endpoint_id, status, next_attempt_at,
		attempts, lease_owner, lease_expires_at, trigger_type, created_at, updated_at)
	SELECT d.id, d.app_id, d.message_id, d.endpoint_id, CASE WHEN d.leased THEN 'sending' ELSE 'pending' END, d.due, 0,
		CASE WHEN d.leased THEN $7::text END, CASE WHEN d.leased THEN $8::timestamptz END, 0, d.at, d.at
	FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::boolean[], $9::timestamptz[])
		AS d (id, app_id, message_id, endpoint_id, at, leased, due)`

// CreateMessages stores msgs and their deliveries in one transaction (see
// herald.Store) in four round trips whatever the batch size: the
// applications and endpoints (locked FOR KEY SHARE so neither can be
// deleted under the batch), the messages, the deliveries, the commit.
// Each message's CreatedAt and DeliverAt are truncated to the microsecond
// in place, so the returned message is what was stored. Its deliveries get
// CreatedAt and UpdatedAt equal to the message's CreatedAt, NextAttemptAt
// equal to its DueAt, and are ordered by endpoint ID. With a non-zero
// lease they are stored sending, leased to lease.Owner until lease.Until,
// unless the message is scheduled. A message whose
// OnlyEndpointID is not an endpoint of its application fails alone with
// ENOTFOUND.
func (s *Store) CreateMessages(ctx context.Context, msgs []*herald.Message, lease herald.Lease) ([]herald.MessageResult, error) {
	results := make([]herald.MessageResult, len(msgs))
	if len(msgs) == 0 {
		return results, nil
	}
	lease.Until = lease.Until.Truncate(time.Microsecond)
	for _, m := range msgs {
		m.CreatedAt = m.CreatedAt.Truncate(time.Microsecond)
		m.DeliverAt = m.DeliverAt.Truncate(time.Microsecond)
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		b := &batch{ctx: ctx, tx: tx, lease: lease, fanOutMax: s.fanOutMax}
		if err := b.run(msgs, results); err != nil {
			return err
		}
		if anyPending(results) {
			// Stored pending: any node may claim them.
			return notifyWork(ctx, tx)
		}
		return nil
	})
	if err != nil {
		return nil, s.fail("create messages", err)
	}
	return results, nil
}

// route is what routing needs of an endpoint.

// appRoutes is an application's endpoints as one batch sees them.
type appRoutes struct {
	routes []herald.Endpoint // ID, Disabled, FilterTypes, Channels and Ordering only
}

// has reports whether the application has an endpoint with this ID.
func (a *appRoutes) has(endpointID string) bool {
	for i := range a.routes {
		if a.routes[i].ID == endpointID {
			return true
		}
	}
	return false
}

// batch is the state of one CreateMessages transaction.
type batch struct {
	ctx   context.Context
	tx    pgx.Tx
	lease herald.Lease
	// apps holds the existing applications of the batch, by ID.
	apps map[string]*appRoutes
	// fanOutMax is the store's Config.FanOutInlineMax.
	fanOutMax int
}

// run loads the routes, inserts the messages that can be stored, routes
// each inserted one, inserts all deliveries and fills results.
func (b *batch) run(msgs []*herald.Message, results []herald.MessageResult) error {
	if err := b.loadRoutes(msgs); err != nil {
		return err
	}
	candidates := make([]*herald.Message, 0, len(msgs))
	for i, m := range msgs {
		app, ok := b.apps[m.AppID]
		switch {
		case !ok:
			results[i].Err = errAppNotFound
		case m.OnlyEndpointID != "" && !app.has(m.OnlyEndpointID):
			results[i].Err = errEndpointNotFound
		default:
			candidates = append(candidates, m)
		}
	}
	inserted, err := b.insertMessages(candidates)
	if err != nil {
		return err
	}
	var dels []herald.Delivery
	var fanOuts []*herald.Message
	var usage herald.UsageCounts
	ranges := make([][2]int, len(msgs))
	for i, m := range msgs {
		if results[i].Err != nil {
			continue
		}
		// The first message of the batch with an ID takes it; a later
		// one with the same ID conflicts like one taken by an older batch.
		if !inserted[m.ID] {
			results[i].Err = conflictFor(m)
			continue
		}
		delete(inserted, m.ID)
		results[i].Message = m
		if m.Audit != nil {
			r := herald.NewAuditRecord(m.Audit, "message.create", herald.AuditMessage, m.ID, m.AppID, m.CreatedAt)
			if err := insertAudit(b.ctx, b.tx, r); err != nil {
				return err
			}
		}
		routes := b.apps[m.AppID].routes
		if herald.DefersFanOut(m, routes, b.fanOutMax) {
			fanOuts = append(fanOuts, m)
			results[i].FanOut = true
			usage.Add(m.AppID, m.CreatedAt, 1, 0)
			continue
		}
		start := len(dels)
		dels = herald.Route(dels, m, routes, b.lease)
		ranges[i] = [2]int{start, len(dels)}
		usage.Add(m.AppID, m.CreatedAt, 1, len(dels)-start)
	}
	// The deliveries, the usage counts and the fan-out markers go in one
	// round trip.
	var pb pgx.Batch
	b.queueDeliveries(&pb, dels)
	queueUsage(&pb, usage.Rows())
	queueFanOuts(&pb, fanOuts)
	if err := b.tx.SendBatch(b.ctx, &pb).Close(); err != nil {
		return fmt.Errorf("insert deliveries, usage counts and fan-out markers: %w", err)
	}
	for i, r := range ranges {
		if r[1] > r[0] {
			ptrs := make([]*herald.Delivery, 0, r[1]-r[0])
			for j := r[0]; j < r[1]; j++ {
				ptrs = append(ptrs, &dels[j])
			}
			results[i].Deliveries = ptrs
		}
	}
	return nil
}

// loadRoutes reads, in one round trip, which applications of msgs exist
// and their endpoints' routing data, locking both FOR KEY SHARE: a
// concurrent delete waits for the batch instead of failing its foreign
// keys.
func (b *batch) loadRoutes(msgs []*herald.Message) error {
	ids := make([]string, 0, 1)
	seen := make(map[string]bool, 1)
	for _, m := range msgs {
		if !seen[m.AppID] {
			seen[m.AppID] = true
			ids = append(ids, m.AppID)
		}
	}
	var pb pgx.Batch
	pb.Queue(`SELECT id FROM application WHERE id = ANY($1) FOR KEY SHARE`, ids)
	pb.Queue(`SELECT app_id, id, disabled, filter_types, channels, coalesce(ordering, ''), url = 'poller://' FROM endpoint
		WHERE app_id = ANY($1) ORDER BY app_id, id FOR KEY SHARE`, ids)
	br := b.tx.SendBatch(b.ctx, &pb)
	defer br.Close()
	// pgx defers a query's error to its rows, which CollectRows returns.
	rows, _ := br.Query()
	apps, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("load applications: %w", err)
	}
	b.apps = make(map[string]*appRoutes, len(apps))
	for _, id := range apps {
		b.apps[id] = &appRoutes{}
	}
	rows, err = br.Query()
	if err != nil {
		return fmt.Errorf("load routes: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var appID string
		var r herald.Endpoint
		if err := rows.Scan(&appID, &r.ID, &r.Disabled, &r.FilterTypes, &r.Channels, &r.Ordering, &r.Poller); err != nil {
			return fmt.Errorf("load routes: %w", err)
		}
		if a, ok := b.apps[appID]; ok {
			a.routes = append(a.routes, r)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load routes: %w", err)
	}
	return br.Close()
}

// insertMessages inserts msgs with multi-row statements sent in one
// pipeline and returns the IDs that were inserted; the others met a taken
// ID or eventId.
func (b *batch) insertMessages(msgs []*herald.Message) (map[string]bool, error) {
	inserted := make(map[string]bool, len(msgs))
	if len(msgs) == 0 {
		return inserted, nil
	}
	var pb pgx.Batch
	for i, size := range messageChunks {
		for len(msgs) >= size {
			args := make([]any, 0, size*messageInsertArgs)
			for _, m := range msgs[:size] {
				args = append(args, m.ID, m.AppID, nullString(m.EventID), m.EventType, m.Payload, m.ContentType,
					nullList(m.Channels), nullList(m.Tags), m.CreatedAt, nullString(m.TraceParent), nullTime(m.DeliverAt), nullTime(m.PayloadExpiresAt))
			}
			pb.Queue(messageInserts[i], args...)
			msgs = msgs[size:]
		}
	}
	br := b.tx.SendBatch(b.ctx, &pb)
	defer br.Close()
	for range pb.Len() {
		rows, _ := br.Query() // the error comes back from CollectRows
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return nil, fmt.Errorf("insert messages: %w", err)
		}
		for _, id := range ids {
			inserted[id] = true
		}
	}
	if err := br.Close(); err != nil {
		return nil, fmt.Errorf("insert messages: %w", err)
	}
	return inserted, nil
}

// queueDeliveries queues the insert of dels, one statement: those with a
// lease (sending) leased under the batch's, the others pending.
func (b *batch) queueDeliveries(pb *pgx.Batch, dels []herald.Delivery) {
	if len(dels) == 0 {
		return
	}
	ids := make([]string, len(dels))
	apps := make([]string, len(dels))
	msgIDs := make([]string, len(dels))
	eps := make([]string, len(dels))
	ats := make([]time.Time, len(dels))
	dues := make([]time.Time, len(dels))
	leased := make([]bool, len(dels))
	for i := range dels {
		d := &dels[i]
		ids[i], apps[i], msgIDs[i], eps[i], ats[i], dues[i] = d.ID, d.AppID, d.MessageID, d.EndpointID, d.CreatedAt, d.NextAttemptAt
		leased[i] = d.Status == herald.DeliverySending
	}
	owner, until := (*string)(nil), (*time.Time)(nil)
	if b.lease.Held() {
		owner, until = &b.lease.Owner, &b.lease.Until
	}
	pb.Queue(insertDeliveriesSQL, ids, apps, msgIDs, eps, ats, leased, owner, until, dues)
}

// conflictFor is the error of a message whose insert met a unique key.
func conflictFor(m *herald.Message) error {
	if m.EventID != "" {
		return herald.Errorf(herald.ECONFLICT, "%s", conflictMessages["message_event_id"])
	}
	return herald.Errorf(herald.ECONFLICT, "%s", conflictMessages["message_pkey"])
}

// anyPending reports whether the results hold a delivery stored pending.
func anyPending(results []herald.MessageResult) bool {
	for _, r := range results {
		for _, d := range r.Deliveries {
			if d.Status == herald.DeliveryPending {
				return true
			}
		}
	}
	return false
}
