package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/herald-webhooks/herald"
)

// deliveryChunks are the rows per multi-row delivery insert, largest first:
// a batch's deliveries go out in as few statements as these sizes allow.
var deliveryChunks = [...]int{64, 16, 4, 1}

// deliveryArgs and leasedDeliveryArgs are the numbers of parameters per
// pending and per leased delivery row. The time is bound three times rather
// than referenced as ?NNN: SQLite resolves a numbered parameter's name with
// a linear scan, quadratic over a long multi-row statement.
const (
	deliveryArgs       = 7
	leasedDeliveryArgs = 9
)

// batchStmts are the statements of the ingest hot path, prepared once on
// the writer connection and bound to each batch's transaction.
type batchStmts struct {
	insertMsg    *sql.Stmt
	pollClock    *sql.Stmt
	loadRoutes   *sql.Stmt
	routeVersion *sql.Stmt
	// insertDlv inserts pending deliveries, insertLeased deliveries leased
	// to a dispatcher; one statement per chunk size.
	insertDlv    [len(deliveryChunks)]*sql.Stmt
	insertLeased [len(deliveryChunks)]*sql.Stmt
	// insertFanOut inserts a FanOut chunk's deliveries (see fanout.go).
	insertFanOut [len(deliveryChunks)]*sql.Stmt
	// addUsage adds to one usage counter (see usage.go).
	addUsage *sql.Stmt
}

// prepareBatchStmts prepares the hot-path statements on the writer.
func (s *Store) prepareBatchStmts(ctx context.Context) error {
	var err error
	st := &s.batch
	if st.insertMsg, err = s.w.PrepareContext(ctx, `INSERT INTO message (`+messageInsertColumns+`, poll_seq)
		VALUES (`+strings.Repeat("?, ", messageInsertArgs)+`?) ON CONFLICT DO NOTHING`); err != nil {
		return fmt.Errorf("prepare message insert: %w", err)
	}
	if st.pollClock, err = s.w.PrepareContext(ctx, `UPDATE poll_clock SET seq = seq + ? WHERE id = 1 RETURNING seq`); err != nil {
		return fmt.Errorf("prepare poll clock update: %w", err)
	}
	// The LEFT JOIN tells an application without endpoints (one row of
	// NULLs) from a missing one (no row) in one query.
	if st.loadRoutes, err = s.w.PrepareContext(ctx, `SELECT e.id, e.disabled, e.filter_types, e.channels, e.ordering, e.url = 'poller://'
		FROM application a LEFT JOIN endpoint e ON e.app_id = a.id
		WHERE a.id = ? ORDER BY e.id`); err != nil {
		return fmt.Errorf("prepare routes query: %w", err)
	}
	if st.routeVersion, err = s.w.PrepareContext(ctx, `SELECT v FROM route_version WHERE id = 1`); err != nil {
		return fmt.Errorf("prepare route version query: %w", err)
	}
	if st.addUsage, err = s.w.PrepareContext(ctx, addUsageSQL); err != nil {
		return fmt.Errorf("prepare usage counter upsert: %w", err)
	}
	for i, size := range deliveryChunks {
		pending := multiRowInsert(`INSERT INTO delivery (id, app_id, message_id, endpoint_id, status, next_attempt_at, attempts, created_at, updated_at) VALUES `,
			"(?, ?, ?, ?, 'pending', ?, 0, ?, ?)", size)
		if st.insertDlv[i], err = s.w.PrepareContext(ctx, pending); err != nil {
			return fmt.Errorf("prepare delivery insert: %w", err)
		}
		leased := multiRowInsert(`INSERT INTO delivery (id, app_id, message_id, endpoint_id, status, next_attempt_at, attempts, created_at, updated_at, lease_owner, lease_expires_at) VALUES `,
			"(?, ?, ?, ?, 'sending', ?, 0, ?, ?, ?, ?)", size)
		if st.insertLeased[i], err = s.w.PrepareContext(ctx, leased); err != nil {
			return fmt.Errorf("prepare leased delivery insert: %w", err)
		}
		if st.insertFanOut[i], err = s.w.PrepareContext(ctx, fanOutInsert(size)); err != nil {
			return fmt.Errorf("prepare fan-out delivery insert: %w", err)
		}
	}
	return nil
}

// multiRowInsert returns head followed by size copies of row.
func multiRowInsert(head, row string, size int) string {
	var q strings.Builder
	q.WriteString(head)
	for j := range size {
		if j > 0 {
			q.WriteString(", ")
		}
		q.WriteString(row)
	}
	return q.String()
}

// close closes the prepared statements.
func (st *batchStmts) close() {
	stmts := append([]*sql.Stmt{st.insertMsg, st.pollClock, st.loadRoutes, st.routeVersion, st.addUsage}, st.insertDlv[:]...)
	stmts = append(stmts, st.insertFanOut[:]...)
	for _, stmt := range append(stmts, st.insertLeased[:]...) {
		if stmt != nil {
			stmt.Close()
		}
	}
}

// CreateMessages stores msgs and their deliveries in one write transaction
// (see herald.Store). Each message's CreatedAt and DeliverAt are truncated
// to the microsecond in place, so the returned message is what was stored.
// Its deliveries get CreatedAt and UpdatedAt equal to the message's
// CreatedAt, NextAttemptAt equal to its DueAt, and are ordered by endpoint
// ID. With a non-zero lease they are stored sending, leased to lease.Owner
// until lease.Until, unless the message is scheduled.
// A message whose OnlyEndpointID is not an endpoint of its application
// fails alone with ENOTFOUND.
func (s *Store) CreateMessages(ctx context.Context, msgs []*herald.Message, lease herald.Lease) ([]herald.MessageResult, error) {
	results := make([]herald.MessageResult, len(msgs))
	lease.Until = lease.Until.Truncate(time.Microsecond)
	err := s.writeAlone(ctx, func(ctx context.Context, tx *sql.Tx) error {
		b := &batch{ctx: ctx, tx: tx, stmts: &s.batch, lease: lease, cache: &s.routes, fanOutMax: s.fanOutMax}
		defer b.close()
		return b.run(msgs, results)
	})
	if err != nil {
		return nil, s.fail("create messages", err)
	}
	return results, nil
}

// route is what routing needs of an endpoint.

// appRoutes is an application's state as one batch sees it.
type appRoutes struct {
	exists bool
	routes []herald.Endpoint // ID, Disabled, FilterTypes, Channels and Ordering only
}

// batch is the state of one CreateMessages transaction.
type batch struct {
	ctx   context.Context
	tx    *sql.Tx
	stmts *batchStmts
	// lease, when not zero, is given to every delivery of the batch.
	lease herald.Lease
	// fanOutMax is the store's Config.FanOutInlineMax.
	fanOutMax int
	// bound holds the statements bound to tx, by the address of the
	// store's statement; closing them releases only the binding.
	bound map[*sql.Stmt]*sql.Stmt
	apps  map[string]*appRoutes
	args  []any
	// nextSeq is the poll_seq of the batch's next message: the batch
	// takes len(msgs) numbers from poll_clock at its start, so numbers
	// follow the single writer's commit order (see migration 0017).
	nextSeq int64
	// cache holds the applications' routes between batches; checked
	// against route_version once per batch, before its first use.
	cache   *routeCache
	checked bool
}

// routeCacheSize bounds what the writer keeps: applications plus their
// endpoints, about 300 bytes each (5 MiB in all). Past it the cache
// starts over: a deployment posting to more than this at once pays a
// routes query per application per batch, as without the cache.
var routeCacheSize = 16384

// routeCache is the routes of the applications recent batches posted to,
// as of route_version's value version. Only the writer goroutine uses it
// (batches run there), so it needs no lock. A change of any endpoint or
// application bumps route_version in the same transaction (triggers of
// migration 0006), so equal versions mean the cached routes are what the
// database holds. Applications that do not exist are not cached.
type routeCache struct {
	version int64
	apps    map[string]*appRoutes
	size    int // applications plus their endpoints in apps
	loads   int // routes queries run (tests read it)
}

// stmt returns st bound to the batch's transaction.
func (b *batch) stmt(st *sql.Stmt) *sql.Stmt {
	if tst, ok := b.bound[st]; ok {
		return tst
	}
	if b.bound == nil {
		b.bound = make(map[*sql.Stmt]*sql.Stmt, 4)
	}
	tst := b.tx.StmtContext(b.ctx, st)
	b.bound[st] = tst
	return tst
}

func (b *batch) close() {
	for _, st := range b.bound {
		st.Close()
	}
}

// pendingRange is the slice of a batch's deliveries that one message owns.
type pendingRange struct{ start, end int }

// run inserts every message, routes it, then inserts all deliveries in
// multi-row statements, adds the batch's counts to the usage counters and
// fills results.
func (b *batch) run(msgs []*herald.Message, results []herald.MessageResult) error {
	dels := make([]herald.Delivery, 0, len(msgs))
	ranges := make([]pendingRange, len(msgs))
	if len(msgs) > 0 {
		var last int64
		if err := b.stmt(b.stmts.pollClock).QueryRowContext(b.ctx, len(msgs)).Scan(&last); err != nil {
			return fmt.Errorf("take poll sequence numbers: %w", err)
		}
		b.nextSeq = last - int64(len(msgs)) + 1
	}
	var usage herald.UsageCounts
	for i, m := range msgs {
		m.CreatedAt = m.CreatedAt.Truncate(time.Microsecond)
		m.DeliverAt = m.DeliverAt.Truncate(time.Microsecond)
		app, err := b.app(m.AppID)
		if err != nil {
			return err
		}
		if !app.exists {
			results[i].Err = errAppNotFound
			continue
		}
		if m.OnlyEndpointID != "" && !app.has(m.OnlyEndpointID) {
			results[i].Err = errEndpointNotFound
			continue
		}
		inserted, err := b.insertMessage(m)
		if err != nil {
			return err
		}
		if !inserted {
			results[i].Err = conflictFor(m)
			continue
		}
		results[i].Message = m
		if m.Audit != nil {
			r := herald.NewAuditRecord(m.Audit, "message.create", herald.AuditMessage, m.ID, m.AppID, m.CreatedAt)
			if err := insertAudit(b.ctx, b.tx, r); err != nil {
				return err
			}
		}
		if herald.DefersFanOut(m, app.routes, b.fanOutMax) {
			if err := insertFanOut(b.ctx, b.tx, m); err != nil {
				return err
			}
			results[i].FanOut = true
			usage.Add(m.AppID, m.CreatedAt, 1, 0)
			continue
		}
		start := len(dels)
		dels = herald.Route(dels, m, app.routes, b.lease)
		ranges[i] = pendingRange{start, len(dels)}
		usage.Add(m.AppID, m.CreatedAt, 1, len(dels)-start)
	}
	if err := b.insertDeliveries(dels); err != nil {
		return err
	}
	if err := addUsage(b.ctx, b.stmt(b.stmts.addUsage), usage.Rows()); err != nil {
		return err
	}
	ptrs := make([]*herald.Delivery, len(dels))
	for i := range dels {
		ptrs[i] = &dels[i]
	}
	for i, r := range ranges {
		if r.end > r.start {
			results[i].Deliveries = ptrs[r.start:r.end:r.end]
		}
	}
	return nil
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

// conflictFor is the error of a message whose insert met a unique key.
func conflictFor(m *herald.Message) error {
	if m.EventID != "" {
		return herald.Errorf(herald.ECONFLICT, "%s", conflictMessages["message.app_id, message.event_id"])
	}
	return herald.Errorf(herald.ECONFLICT, "%s", conflictMessages["message.id"])
}

// app returns whether the application exists and its endpoints' routing
// data, from the route cache while route_version has not changed, loaded
// at most once per batch otherwise.
func (b *batch) app(id string) (*appRoutes, error) {
	if a, ok := b.apps[id]; ok {
		return a, nil
	}
	if b.apps == nil {
		b.apps = make(map[string]*appRoutes, 1)
	}
	if err := b.checkCache(); err != nil {
		return nil, err
	}
	if a, ok := b.cache.apps[id]; ok {
		b.apps[id] = a
		return a, nil
	}
	a, err := b.loadRoutes(id)
	if err != nil {
		return nil, err
	}
	b.cache.loads++
	b.apps[id] = a
	if n := 1 + len(a.routes); a.exists && n <= routeCacheSize {
		if b.cache.size+n > routeCacheSize {
			clear(b.cache.apps)
			b.cache.size = 0
		}
		b.cache.apps[id] = a
		b.cache.size += n
	}
	return a, nil
}

// checkCache empties the route cache when route_version changed since it
// was filled; once per batch.
func (b *batch) checkCache() error {
	if b.checked {
		return nil
	}
	var v int64
	if err := b.stmt(b.stmts.routeVersion).QueryRowContext(b.ctx).Scan(&v); err != nil {
		return fmt.Errorf("read route version: %w", err)
	}
	b.checked = true
	if b.cache.apps == nil || v != b.cache.version {
		b.cache.apps = make(map[string]*appRoutes)
		b.cache.size = 0
		b.cache.version = v
	}
	return nil
}

// loadRoutes reads an application's existence and its endpoints' routing
// data.
func (b *batch) loadRoutes(id string) (*appRoutes, error) {
	rows, err := b.stmt(b.stmts.loadRoutes).QueryContext(b.ctx, id)
	if err != nil {
		return nil, fmt.Errorf("load routes: %w", err)
	}
	defer rows.Close()
	a := &appRoutes{}
	for rows.Next() {
		a.exists = true
		r, ok, err := scanRoute(rows)
		if err != nil {
			return nil, fmt.Errorf("load routes: %w", err)
		}
		if ok {
			a.routes = append(a.routes, r)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load routes: %w", err)
	}
	return a, nil
}

// scanRoute reads what routing needs of an endpoint from a row of its id,
// disabled, filter_types, channels, ordering and whether its url is
// herald.PollerURL; ok is false for a row of
// NULLs (an application without endpoints, from a LEFT JOIN).
func scanRoute(rows *sql.Rows) (r herald.Endpoint, ok bool, err error) {
	var (
		epID, filterTypes, channels, ordering sql.NullString
		disabled, poller                      sql.NullBool
	)
	if err := rows.Scan(&epID, &disabled, &filterTypes, &channels, &ordering, &poller); err != nil {
		return r, false, err
	}
	if !epID.Valid {
		return r, false, nil
	}
	r = herald.Endpoint{ID: epID.String, Disabled: disabled.Bool, Ordering: herald.Ordering(ordering.String), Poller: poller.Bool}
	if r.FilterTypes, err = parseList(filterTypes); err != nil {
		return r, false, fmt.Errorf("endpoint %s: %w", epID.String, err)
	}
	if r.Channels, err = parseList(channels); err != nil {
		return r, false, fmt.Errorf("endpoint %s: %w", epID.String, err)
	}
	return r, true, nil
}

// insertMessage inserts m and reports false when a unique key (ID or
// eventId) was taken.
func (b *batch) insertMessage(m *herald.Message) (bool, error) {
	channels, err := jsonList(m.Channels)
	if err != nil {
		return false, err
	}
	tags, err := jsonList(m.Tags)
	if err != nil {
		return false, err
	}
	res, err := b.stmt(b.stmts.insertMsg).ExecContext(b.ctx, m.ID, m.AppID, nullString(m.EventID), m.EventType,
		m.Payload, m.ContentType, channels, tags, micros(m.CreatedAt), nullString(m.TraceParent), nullMicros(m.DeliverAt),
		nullMicros(m.PayloadExpiresAt), b.nextSeq)
	b.nextSeq++
	if err != nil {
		return false, fmt.Errorf("insert message: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("insert message: %w", err)
	}
	return n == 1, nil
}

// insertDeliveries inserts dels, the leased ones (sending) and the pending
// ones each with their own statements.
func (b *batch) insertDeliveries(dels []herald.Delivery) error {
	if !b.lease.Held() {
		return b.insertRows(dels, false)
	}
	var leased, pending []herald.Delivery
	for i := range dels {
		if dels[i].Status != herald.DeliverySending && pending == nil {
			// Rare (FIFO endpoints, scheduled messages): split the batch.
			leased = make([]herald.Delivery, 0, len(dels))
			for _, d := range dels {
				if d.Status == herald.DeliverySending {
					leased = append(leased, d)
				} else {
					pending = append(pending, d)
				}
			}
			break
		}
	}
	if pending == nil {
		return b.insertRows(dels, true)
	}
	if err := b.insertRows(leased, true); err != nil {
		return err
	}
	return b.insertRows(pending, false)
}

// insertRows inserts dels with multi-row statements, as pending rows or as
// rows leased under the batch's lease. Each row binds ID, app, message,
// endpoint, its next attempt time (the message's DueAt), the message's
// creation time as its creation and update time, then the lease owner and
// expiry if leased.
func (b *batch) insertRows(dels []herald.Delivery, leased bool) error {
	stmts, perRow := &b.stmts.insertDlv, deliveryArgs
	if leased {
		stmts, perRow = &b.stmts.insertLeased, leasedDeliveryArgs
	}
	if b.args == nil && len(dels) > 0 {
		b.args = make([]any, 0, min(len(dels), deliveryChunks[0])*perRow)
	}
	until := micros(b.lease.Until)
	for i, size := range deliveryChunks {
		for len(dels) >= size {
			b.args = b.args[:0]
			for j := range dels[:size] {
				d := &dels[j]
				at := micros(d.CreatedAt)
				b.args = append(b.args, d.ID, d.AppID, d.MessageID, d.EndpointID, micros(d.NextAttemptAt), at, at)
				if leased {
					b.args = append(b.args, b.lease.Owner, until)
				}
			}
			if _, err := b.stmt(stmts[i]).ExecContext(b.ctx, b.args...); err != nil {
				return fmt.Errorf("insert deliveries: %w", err)
			}
			dels = dels[size:]
		}
	}
	return nil
}
