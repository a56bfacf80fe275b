package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/herald-webhooks/herald"
)

const appColumns = `id, uid, name, rate_limit, metadata, created_at, updated_at`

// CreateApplication stores app; a taken ID or uid is ECONFLICT.
func (s *Store) CreateApplication(ctx context.Context, app *herald.Application) error {
	meta, err := jsonMap(app.Metadata)
	if err != nil {
		return fmt.Errorf("create application: %w", err)
	}
	err = s.change(ctx, &auditTarget{"application.create", herald.AuditApplication, app.ID, app.ID}, func(ctx context.Context, db execer) error {
		_, err := db.ExecContext(ctx, `INSERT INTO application (`+appColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			app.ID, nullString(app.UID), app.Name, nullUint16(app.RateLimit), meta, micros(app.CreatedAt), micros(app.UpdatedAt))
		return err
	})
	if err != nil {
		return s.fail("create application", err)
	}
	return nil
}

// GetApplication returns the application whose ID, or else uid, is ref.
func (s *Store) GetApplication(ctx context.Context, ref string) (*herald.Application, error) {
	app, err := scanApp(s.r.QueryRowContext(ctx, `SELECT `+appColumns+` FROM application WHERE id = ?`, ref))
	if err == sql.ErrNoRows {
		app, err = scanApp(s.r.QueryRowContext(ctx, `SELECT `+appColumns+` FROM application WHERE uid = ?`, ref))
	}
	if err != nil {
		return nil, s.fail("get application", notFound(err, errAppNotFound))
	}
	return app, nil
}

// ListApplications returns a page of applications ordered by ID.
func (s *Store) ListApplications(ctx context.Context, opts herald.ListOptions) ([]*herald.Application, error) {
	cond, order := pageClause("id", opts)
	args := make([]any, 0, 2)
	if opts.Cursor != "" {
		args = append(args, opts.Cursor)
	}
	args = append(args, limit(opts))
	rows, err := s.r.QueryContext(ctx, `SELECT `+appColumns+` FROM application WHERE 1 = 1`+cond+order+` LIMIT ?`, args...)
	out, err := collect(rows, err, scanApp)
	if err != nil {
		return nil, s.fail("list applications", err)
	}
	return out, nil
}

// UpdateApplication replaces the mutable fields of the application with
// app.ID; CreatedAt is kept as stored.
func (s *Store) UpdateApplication(ctx context.Context, app *herald.Application) error {
	meta, err := jsonMap(app.Metadata)
	if err != nil {
		return fmt.Errorf("update application: %w", err)
	}
	err = s.change(ctx, &auditTarget{"application.update", herald.AuditApplication, app.ID, app.ID}, func(ctx context.Context, db execer) error {
		return writeApp(ctx, db, app, meta)
	})
	if err != nil {
		return s.fail("update application", err)
	}
	return nil
}

// writeApp writes the mutable fields of app, its metadata encoded as meta.
func writeApp(ctx context.Context, db execer, app *herald.Application, meta any) error {
	res, err := db.ExecContext(ctx, `UPDATE application SET uid = ?, name = ?, rate_limit = ?, metadata = ?, updated_at = ? WHERE id = ?`,
		nullString(app.UID), app.Name, nullUint16(app.RateLimit), meta, micros(app.UpdatedAt), app.ID)
	if err != nil {
		return err
	}
	return mustAffect(res, errAppNotFound)
}

// UpdateApplicationFunc reads the application in the write transaction,
// lets update change it and writes it back there (see herald.Store).
func (s *Store) UpdateApplicationFunc(ctx context.Context, ref string, update func(*herald.Application) error) (*herald.Application, error) {
	var out *herald.Application
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		app, err := scanApp(tx.QueryRowContext(ctx, `SELECT `+appColumns+` FROM application WHERE id = ?`, ref))
		if err == sql.ErrNoRows {
			app, err = scanApp(tx.QueryRowContext(ctx, `SELECT `+appColumns+` FROM application WHERE uid = ?`, ref))
		}
		if err != nil {
			return notFound(err, errAppNotFound)
		}
		if _, err := app.ApplyUpdate(update); err != nil {
			return err
		}
		meta, err := jsonMap(app.Metadata)
		if err != nil {
			return err
		}
		if err := writeApp(ctx, tx, app, meta); err != nil {
			return err
		}
		out = app
		return s.audit(ctx, tx, &auditTarget{"application.update", herald.AuditApplication, app.ID, app.ID})
	})
	if err != nil {
		return nil, s.fail("update application", err)
	}
	return out, nil
}

// DeleteApplication deletes the application; its endpoints, messages,
// deliveries and attempts go with it (ON DELETE CASCADE).
func (s *Store) DeleteApplication(ctx context.Context, id string) error {
	err := s.change(ctx, &auditTarget{"application.delete", herald.AuditApplication, id, id}, func(ctx context.Context, db execer) error {
		res, err := db.ExecContext(ctx, `DELETE FROM application WHERE id = ?`, id)
		if err != nil {
			return err
		}
		return mustAffect(res, errAppNotFound)
	})
	if err != nil {
		return s.fail("delete application", err)
	}
	return nil
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

func scanApp(row scanner) (*herald.Application, error) {
	var (
		app                  herald.Application
		uid, meta            sql.NullString
		rateLimit            sql.NullInt64
		createdAt, updatedAt int64
	)
	if err := row.Scan(&app.ID, &uid, &app.Name, &rateLimit, &meta, &createdAt, &updatedAt); err != nil {
		return nil, err
	}
	m, err := parseMap(meta)
	if err != nil {
		return nil, err
	}
	app.UID = uid.String
	app.RateLimit = fromNullUint16(rateLimit)
	app.Metadata = m
	app.CreatedAt = fromMicros(createdAt)
	app.UpdatedAt = fromMicros(updatedAt)
	return &app, nil
}
