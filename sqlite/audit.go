package sqlite

import (
	"context"
	"database/sql"
	"strings"
	"time"

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

// execer is the writer (*sql.DB) or a write transaction (*sql.Tx).
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// audit writes the audit record of t in tx, the transaction of the
// change, when ctx carries an actor (herald.WithAuditActor); without one
// it writes nothing. It is the only writer of audit_log rows.
func (s *Store) audit(ctx context.Context, tx *sql.Tx, t *auditTarget) error {
	actor := herald.AuditActorFrom(ctx)
	if actor == nil {
		return nil
	}
	return insertAudit(ctx, tx, herald.NewAuditRecord(actor, t.action, t.resourceType, t.resourceID, t.appID, s.now()))
}

// insertAudit inserts one audit record.
func insertAudit(ctx context.Context, tx *sql.Tx, r *herald.AuditRecord) error {
	a := &r.Actor
	_, err := tx.ExecContext(ctx, `INSERT INTO audit_log (`+auditColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, micros(r.CreatedAt), a.TokenID, string(a.TokenKind), a.TokenName, a.ParentTokenID, a.Method, a.Route,
		r.Action, r.ResourceType, r.ResourceID, r.AppID, a.RequestID, a.ClientAddr)
	return err
}

// change runs fn, the statements of one mutating verb. When ctx carries an
// audit actor, fn runs in a write transaction and the audit record of t
// (as fn left it) follows its change there: a change that fails leaves no
// record, a record never lacks its change. Without an actor fn runs on
// the writer as before, with no transaction of its own.
func (s *Store) change(ctx context.Context, t *auditTarget, fn func(ctx context.Context, db execer) error) error {
	if herald.AuditActorFrom(ctx) == nil {
		return fn(ctx, s.w)
	}
	return s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if err := fn(ctx, tx); err != nil {
			return err
		}
		return s.audit(ctx, tx, t)
	})
}

// ListAuditRecords returns a page of the audit log ordered by ID (time).
// A time window bounds the primary key too (IDs sort by their second), so
// the listing walks the index it filters on.
func (s *Store) ListAuditRecords(ctx context.Context, opts herald.AuditListOptions) ([]*herald.AuditRecord, error) {
	var q strings.Builder
	args := make([]any, 0, 8)
	q.WriteString(`SELECT ` + auditColumns + ` FROM audit_log WHERE 1 = 1`)
	if opts.AppID != "" {
		q.WriteString(` AND app_id = ?`)
		args = append(args, opts.AppID)
	}
	if opts.TokenID != "" {
		q.WriteString(` AND token_id = ?`)
		args = append(args, opts.TokenID)
	}
	if !opts.Since.IsZero() {
		q.WriteString(` AND created_at >= ?`)
		args = append(args, micros(opts.Since))
		if id, ok := herald.MinIDAtBound(herald.PrefixAudit, opts.Since); ok {
			q.WriteString(` AND id >= ?`)
			args = append(args, id)
		}
	}
	if !opts.Until.IsZero() {
		q.WriteString(` AND created_at < ?`)
		args = append(args, micros(opts.Until))
		if id, ok := herald.MinIDAtBound(herald.PrefixAudit, opts.Until.Add(time.Second)); ok {
			q.WriteString(` AND id < ?`)
			args = append(args, id)
		}
	}
	cond, order := pageClause("id", opts.ListOptions)
	if opts.Cursor != "" {
		args = append(args, opts.Cursor)
	}
	q.WriteString(cond + order + ` LIMIT ?`)
	args = append(args, limit(opts.ListOptions))
	rows, err := s.r.QueryContext(ctx, q.String(), args...)
	out, err := collect(rows, err, scanAudit)
	if err != nil {
		return nil, s.fail("list audit records", err)
	}
	return out, nil
}

// DeleteExpiredAuditRecords deletes up to limit records created before
// before, oldest first: a range of the primary key.
func (s *Store) DeleteExpiredAuditRecords(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit < 1 {
		return 0, nil
	}
	res, err := s.w.ExecContext(ctx, `DELETE FROM audit_log WHERE id IN (
		SELECT id FROM audit_log WHERE created_at < ? ORDER BY id LIMIT ?)`, micros(before), limit)
	return s.affected("delete expired audit records", res, err)
}

func scanAudit(row scanner) (*herald.AuditRecord, error) {
	var (
		r         herald.AuditRecord
		createdAt int64
		kind      string
	)
	a := &r.Actor
	err := row.Scan(&r.ID, &createdAt, &a.TokenID, &kind, &a.TokenName, &a.ParentTokenID, &a.Method, &a.Route,
		&r.Action, &r.ResourceType, &r.ResourceID, &r.AppID, &a.RequestID, &a.ClientAddr)
	if err != nil {
		return nil, err
	}
	r.CreatedAt = fromMicros(createdAt)
	a.TokenKind = herald.TokenKind(kind)
	a.At = r.CreatedAt
	return &r, nil
}
