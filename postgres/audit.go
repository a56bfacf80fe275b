package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/herald-webhooks/herald"
)

const auditColumns = `id, created_at, token_id, token_kind, token_name, parent_token_id, method, route,
	action, resource_type, resource_id, app_id, request_id, client_addr`

// auditTarget is what one verb's change touched, named in its audit
// record: the action and the resource (type, ID, application). A verb
// may fill in what it learns in its transaction (the application of a
// revoked token).
type auditTarget struct {
	action, resourceType, resourceID, appID string
}

// execer is the pool or a transaction.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// audit writes the audit record of t in tx, the transaction of the
// change, when ctx carries an actor (herald.WithAuditActor); without one
// it writes nothing.
func (s *Store) audit(ctx context.Context, tx pgx.Tx, t *auditTarget) error {
	actor := herald.AuditActorFrom(ctx)
	if actor == nil {
		return nil
	}
	return insertAudit(ctx, tx, herald.NewAuditRecord(actor, t.action, t.resourceType, t.resourceID, t.appID, s.now()))
}

// insertAudit inserts one audit record: the only writer of audit_log rows.
func insertAudit(ctx context.Context, tx pgx.Tx, r *herald.AuditRecord) error {
	a := &r.Actor
	_, err := tx.Exec(ctx, `INSERT INTO audit_log (`+auditColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		r.ID, r.CreatedAt, a.TokenID, string(a.TokenKind), a.TokenName, a.ParentTokenID, a.Method, a.Route,
		r.Action, r.ResourceType, r.ResourceID, r.AppID, a.RequestID, a.ClientAddr)
	return err
}

// change runs fn, the statements of one mutating verb. When ctx carries an
// audit actor, fn runs in a transaction and the audit record of t (as fn
// left it) follows its change there: a change that fails leaves no
// record, a record never lacks its change. Without an actor fn runs on
// the pool as before, with no transaction of its own.
func (s *Store) change(ctx context.Context, t *auditTarget, fn func(db execer) error) error {
	if herald.AuditActorFrom(ctx) == nil {
		return fn(s.pool)
	}
	return s.inTx(ctx, func(tx pgx.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return s.audit(ctx, tx, t)
	})
}

// ListAuditRecords returns a page of the audit log ordered by ID (time).
// A time window bounds the primary key too (IDs sort by their second), so
// the listing walks the index it filters on.
func (s *Store) ListAuditRecords(ctx context.Context, opts herald.AuditListOptions) ([]*herald.AuditRecord, error) {
	var q query
	q.add(`SELECT ` + auditColumns + ` FROM audit_log WHERE true`)
	if opts.AppID != "" {
		q.add(` AND app_id = ` + q.arg(opts.AppID))
	}
	if opts.TokenID != "" {
		q.add(` AND token_id = ` + q.arg(opts.TokenID))
	}
	if !opts.Since.IsZero() {
		q.add(` AND created_at >= ` + q.arg(opts.Since))
		if id, ok := herald.MinIDAtBound(herald.PrefixAudit, opts.Since); ok {
			q.add(` AND id >= ` + q.arg(id))
		}
	}
	if !opts.Until.IsZero() {
		q.add(` AND created_at < ` + q.arg(opts.Until))
		if id, ok := herald.MinIDAtBound(herald.PrefixAudit, opts.Until.Add(time.Second)); ok {
			q.add(` AND id < ` + q.arg(id))
		}
	}
	q.add(q.page("id", opts.ListOptions))
	rows, err := s.pool.Query(ctx, q.String(), q.args...)
	out, err := collect(rows, err, scanAudit)
	if err != nil {
		return nil, s.fail("list audit records", err)
	}
	return out, nil
}

// DeleteExpiredAuditRecords deletes up to limit records created before
// before, oldest first. SKIP LOCKED lets several nodes' cleaners share the
// work.
func (s *Store) DeleteExpiredAuditRecords(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit < 1 {
		return 0, nil
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM audit_log WHERE id IN (
		SELECT id FROM audit_log WHERE created_at < $1 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)`, before, limit)
	return s.affected("delete expired audit records", tag, err)
}

func scanAudit(row pgx.Row) (*herald.AuditRecord, error) {
	var (
		r    herald.AuditRecord
		kind string
	)
	a := &r.Actor
	err := row.Scan(&r.ID, &r.CreatedAt, &a.TokenID, &kind, &a.TokenName, &a.ParentTokenID, &a.Method, &a.Route,
		&r.Action, &r.ResourceType, &r.ResourceID, &r.AppID, &a.RequestID, &a.ClientAddr)
	if err != nil {
		return nil, err
	}
	r.CreatedAt = r.CreatedAt.UTC()
	a.TokenKind = herald.TokenKind(kind)
	a.At = r.CreatedAt
	return &r, nil
}
