package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/herald-webhooks/herald"
)

const tokenColumns = `id, kind, hash, name, app_id, read_only, parent, session_id, capabilities, created_at, expires_at, last_used_at, revoked_at`

var (
	errTokenNotFound  = herald.Errorf(herald.ENOTFOUND, "Token not found.")
	errParentNotFound = herald.Errorf(herald.ENOTFOUND, "Parent token not found.")
)

// CreateToken stores t. A taken ID or hash is ECONFLICT; an AppID that
// names no application, or a Parent that names no token, is ENOTFOUND.
func (s *Store) CreateToken(ctx context.Context, t *herald.Token) error {
	err := s.change(ctx, &auditTarget{"token.create", herald.AuditToken, t.ID, t.AppID}, func(db execer) error {
		_, err := db.Exec(ctx, `INSERT INTO token (`+tokenColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
			t.ID, string(t.Kind), t.Hash, t.Name, nullString(t.AppID), t.ReadOnly, nullString(t.Parent), nullString(t.SessionID), t.CapabilitiesText(),
			t.CreatedAt, t.ExpiresAt, nullTime(t.LastUsedAt), nullTime(t.RevokedAt))
		return err
	})
	var pgErr *pgconn.PgError
	if isForeignKey(err) && errors.As(err, &pgErr) {
		err = errParentNotFound
		if pgErr.ConstraintName == "token_app_id_fkey" {
			err = errAppNotFound
		}
	}
	if err != nil {
		return s.fail("create token", err)
	}
	return nil
}

// GetTokenByHash returns the token whose secret hashes to hash, active or
// not: one search of token_hash, on every authenticated API request.
func (s *Store) GetTokenByHash(ctx context.Context, hash []byte) (*herald.Token, error) {
	t, err := scanToken(s.pool.QueryRow(ctx, `SELECT `+tokenColumns+` FROM token WHERE hash = $1`, hash))
	if err != nil {
		return nil, s.fail("get token", notFound(err, errTokenNotFound))
	}
	return t, nil
}

// GetToken returns the token with id, active or not.
func (s *Store) GetToken(ctx context.Context, id string) (*herald.Token, error) {
	t, err := scanToken(s.pool.QueryRow(ctx, `SELECT `+tokenColumns+` FROM token WHERE id = $1`, id))
	if err != nil {
		return nil, s.fail("get token", notFound(err, errTokenNotFound))
	}
	return t, nil
}

// ListTokens returns a page of tokens ordered by ID, of one kind or
// application when opts names one.
func (s *Store) ListTokens(ctx context.Context, opts herald.TokenListOptions) ([]*herald.Token, error) {
	var q query
	q.add(`SELECT ` + tokenColumns + ` FROM token WHERE true`)
	if opts.Kind != "" {
		q.add(` AND kind = ` + q.arg(string(opts.Kind)))
	}
	if opts.AppID != "" {
		q.add(` AND app_id = ` + q.arg(opts.AppID))
	}
	q.add(q.page("id", opts.ListOptions))
	rows, err := s.pool.Query(ctx, q.String(), q.args...)
	out, err := collect(rows, err, scanToken)
	if err != nil {
		return nil, s.fail("list tokens", err)
	}
	return out, nil
}

// RevokeToken revokes the token with id and the sessions opened with it,
// at now; rows revoked before keep their time. One statement: a session's
// parent exists (a foreign key), so a changed row means id exists.
func (s *Store) RevokeToken(ctx context.Context, id string, now time.Time) error {
	t := &auditTarget{"token.revoke", herald.AuditToken, id, ""}
	err := s.change(ctx, t, func(db execer) error {
		tag, err := db.Exec(ctx, `UPDATE token SET revoked_at = coalesce(revoked_at, $1) WHERE id = $2 OR parent = $2`, now, id)
		if err != nil {
			return err
		}
		if err := mustAffect(tag, errTokenNotFound); err != nil || herald.AuditActorFrom(ctx) == nil {
			return err
		}
		// The record names the token's application.
		return db.QueryRow(ctx, `SELECT coalesce(app_id, '') FROM token WHERE id = $1`, id).Scan(&t.appID)
	})
	if err != nil {
		return s.fail("revoke token", err)
	}
	return nil
}

// ExpireAppTokens brings the expiry of the application's portal tokens
// (those labelled with one of sessionIDs, when any are given) and of their
// sessions forward to at, never later, and reports how many rows it
// changed, sessions included.
func (s *Store) ExpireAppTokens(ctx context.Context, appID string, sessionIDs []string, at time.Time) (int, error) {
	// The portal tokens chosen, whatever their expiry: a session may
	// outlive a parent whose expiry is already before at.
	var q query
	q.add(`WITH chosen AS (SELECT id FROM token WHERE app_id = ` + q.arg(appID) + ` AND kind = 'portal'`)
	if len(sessionIDs) > 0 {
		q.add(` AND session_id = ANY(` + q.arg(sessionIDs) + `)`)
	}
	atArg := q.arg(at)
	q.add(`) UPDATE token SET expires_at = ` + atArg + ` WHERE expires_at > ` + atArg + ` AND id IN (
		SELECT id FROM chosen UNION ALL SELECT s.id FROM token s WHERE s.parent IN (SELECT id FROM chosen))`)
	var n int64
	err := s.change(ctx, &auditTarget{"application.tokens.expire", herald.AuditApplication, appID, appID}, func(db execer) error {
		tag, err := db.Exec(ctx, q.String(), q.args...)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, s.fail("expire app tokens", err)
	}
	return int(n), nil
}

// TouchToken sets the token's LastUsedAt to now; an unknown id is
// ENOTFOUND.
func (s *Store) TouchToken(ctx context.Context, id string, now time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE token SET last_used_at = $1 WHERE id = $2`, now, id)
	if err == nil {
		err = mustAffect(tag, errTokenNotFound)
	}
	if err != nil {
		return s.fail("touch token", err)
	}
	return nil
}

// DeleteExpiredTokens deletes up to limit tokens that expired or were
// revoked before before; their sessions go with them (ON DELETE CASCADE)
// and are not counted. SKIP LOCKED lets several nodes' cleaners share the
// work.
func (s *Store) DeleteExpiredTokens(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit < 1 {
		return 0, nil
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM token WHERE id IN (
		SELECT id FROM token WHERE expires_at < $1 OR revoked_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`, before, limit)
	return s.affected("delete expired tokens", tag, err)
}

func scanToken(row pgx.Row) (*herald.Token, error) {
	var (
		t                     herald.Token
		kind                  string
		appID, parent, sessID *string
		capabilities          *string
		createdAt, expiresAt  time.Time
		lastUsedAt, revokedAt pgtype.Timestamptz
	)
	err := row.Scan(&t.ID, &kind, &t.Hash, &t.Name, &appID, &t.ReadOnly, &parent, &sessID, &capabilities,
		&createdAt, &expiresAt, &lastUsedAt, &revokedAt)
	if err != nil {
		return nil, err
	}
	t.Kind = herald.TokenKind(kind)
	t.AppID = fromNullString(appID)
	t.Parent = fromNullString(parent)
	t.SessionID = fromNullString(sessID)
	t.SetCapabilitiesText(fromNullString(capabilities), capabilities != nil)
	t.CreatedAt = createdAt.UTC()
	t.ExpiresAt = expiresAt.UTC()
	t.LastUsedAt = fromNullTime(lastUsedAt)
	t.RevokedAt = fromNullTime(revokedAt)
	return &t, nil
}
