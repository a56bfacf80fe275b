package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

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
	err := s.change(ctx, &auditTarget{"token.create", herald.AuditToken, t.ID, t.AppID}, func(ctx context.Context, db execer) error {
		_, err := db.ExecContext(ctx, `INSERT INTO token (`+tokenColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			t.ID, string(t.Kind), t.Hash, t.Name, nullString(t.AppID), t.ReadOnly, nullString(t.Parent), nullString(t.SessionID), t.CapabilitiesText(),
			micros(t.CreatedAt), micros(t.ExpiresAt), nullMicros(t.LastUsedAt), nullMicros(t.RevokedAt))
		return err
	})
	if isForeignKey(err) {
		// SQLite does not say which key failed: look.
		err = s.missingTokenRef(ctx, t)
	}
	if err != nil {
		return s.fail("create token", err)
	}
	return nil
}

// missingTokenRef returns the not-found error of whichever of t's
// application and parent does not exist.
func (s *Store) missingTokenRef(ctx context.Context, t *herald.Token) error {
	if t.AppID != "" {
		var n int
		if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM application WHERE id = ?`, t.AppID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return errAppNotFound
		}
	}
	return errParentNotFound
}

// GetTokenByHash returns the token whose secret hashes to hash, active or
// not. Every authenticated API request asks: one search of token_hash on
// the reader pool.
func (s *Store) GetTokenByHash(ctx context.Context, hash []byte) (*herald.Token, error) {
	t, err := scanToken(s.r.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM token WHERE hash = ?`, hash))
	if err != nil {
		return nil, s.fail("get token", notFound(err, errTokenNotFound))
	}
	return t, nil
}

// GetToken returns the token with id, active or not: a search of the
// primary key on the reader pool.
func (s *Store) GetToken(ctx context.Context, id string) (*herald.Token, error) {
	t, err := scanToken(s.r.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM token WHERE id = ?`, id))
	if err != nil {
		return nil, s.fail("get token", notFound(err, errTokenNotFound))
	}
	return t, nil
}

// ListTokens returns a page of tokens ordered by ID, of one kind or
// application when opts names one.
func (s *Store) ListTokens(ctx context.Context, opts herald.TokenListOptions) ([]*herald.Token, error) {
	var q strings.Builder
	args := make([]any, 0, 4)
	q.WriteString(`SELECT ` + tokenColumns + ` FROM token WHERE 1 = 1`)
	if opts.AppID != "" {
		q.WriteString(` AND app_id = ?`)
		args = append(args, opts.AppID)
	}
	if opts.Kind != "" {
		// With an application, search token_app: its tokens are few,
		// while a kind may hold every application's. The unary + keeps
		// SQLite, which has no statistics to tell, off token_kind.
		if opts.AppID != "" {
			q.WriteString(` AND +kind = ?`)
		} else {
			q.WriteString(` AND kind = ?`)
		}
		args = append(args, string(opts.Kind))
	}
	cond, order := pageClause("id", opts.ListOptions)
	if opts.Cursor != "" {
		args = append(args, opts.Cursor)
	}
	q.WriteString(cond + order + ` LIMIT ?`)
	args = append(args, limit(opts.ListOptions))
	rows, err := s.r.QueryContext(ctx, q.String(), args...)
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
	err := s.change(ctx, t, func(ctx context.Context, db execer) error {
		res, err := db.ExecContext(ctx, `UPDATE token SET revoked_at = coalesce(revoked_at, ?) WHERE id = ? OR parent = ?`,
			micros(now), id, id)
		if err != nil {
			return err
		}
		if err := mustAffect(res, errTokenNotFound); err != nil || herald.AuditActorFrom(ctx) == nil {
			return err
		}
		// The record names the token's application.
		return db.QueryRowContext(ctx, `SELECT coalesce(app_id, '') FROM token WHERE id = ?`, id).Scan(&t.appID)
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
	// outlive a parent whose expiry is already before at. They are found
	// through token_app (+kind, as in ListTokens).
	portal := `SELECT id FROM token WHERE app_id = ? AND +kind = 'portal'`
	args := []any{appID}
	if len(sessionIDs) > 0 {
		ids, err := json.Marshal(sessionIDs)
		if err != nil {
			return 0, fmt.Errorf("expire app tokens: %w", err)
		}
		portal += ` AND session_id IN (SELECT value FROM json_each(?))`
		args = append(args, string(ids))
	}
	var n int64
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		for _, match := range []string{`parent`, `id`} {
			res, err := tx.ExecContext(ctx, `UPDATE token SET expires_at = ? WHERE expires_at > ? AND `+match+` IN (`+portal+`)`,
				append([]any{micros(at), micros(at)}, args...)...)
			if err != nil {
				return err
			}
			changed, err := res.RowsAffected()
			if err != nil {
				return err
			}
			n += changed
		}
		return s.audit(ctx, tx, &auditTarget{"application.tokens.expire", herald.AuditApplication, appID, appID})
	})
	if err != nil {
		return 0, s.fail("expire app tokens", err)
	}
	return int(n), nil
}

// TouchToken sets the token's LastUsedAt to now; an unknown id is
// ENOTFOUND.
func (s *Store) TouchToken(ctx context.Context, id string, now time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE token SET last_used_at = ? WHERE id = ?`, micros(now), id)
	if err == nil {
		err = mustAffect(res, errTokenNotFound)
	}
	if err != nil {
		return s.fail("touch token", err)
	}
	return nil
}

// DeleteExpiredTokens deletes up to limit tokens that expired or were
// revoked before before; their sessions go with them (ON DELETE CASCADE)
// and are not counted.
func (s *Store) DeleteExpiredTokens(ctx context.Context, before time.Time, limit int) (int, error) {
	if limit < 1 {
		return 0, nil
	}
	res, err := s.w.ExecContext(ctx, `DELETE FROM token WHERE id IN (
		SELECT id FROM token WHERE expires_at < ? OR revoked_at < ? LIMIT ?)`, micros(before), micros(before), limit)
	return s.affected("delete expired tokens", res, err)
}

func scanToken(row scanner) (*herald.Token, error) {
	var (
		t                      herald.Token
		kind                   string
		appID, parent, session sql.NullString
		capabilities           sql.NullString
		createdAt, expiresAt   int64
		lastUsedAt, revokedAt  sql.NullInt64
	)
	err := row.Scan(&t.ID, &kind, &t.Hash, &t.Name, &appID, &t.ReadOnly, &parent, &session, &capabilities,
		&createdAt, &expiresAt, &lastUsedAt, &revokedAt)
	if err != nil {
		return nil, err
	}
	t.Kind = herald.TokenKind(kind)
	t.AppID = appID.String
	t.Parent = parent.String
	t.SessionID = session.String
	t.SetCapabilitiesText(capabilities.String, capabilities.Valid)
	t.CreatedAt = fromMicros(createdAt)
	t.ExpiresAt = fromMicros(expiresAt)
	t.LastUsedAt = fromNullMicros(lastUsedAt)
	t.RevokedAt = fromNullMicros(revokedAt)
	return &t, nil
}
