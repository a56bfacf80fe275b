package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-webhooks/herald"
)

const appColumns = `id, uid, name, rate_limit, metadata, created_at, updated_at`

// CreateApplication stores app; a taken ID or uid is ECONFLICT.
func (s *Store) CreateApplication(ctx context.Context, app *herald.Application) error {
	meta, err := jsonMap(app.Metadata)
	if err != nil {
		return fmt.Errorf("create application: %w", err)
	}
	err = s.change(ctx, &auditTarget{"application.create", herald.AuditApplication, app.ID, app.ID}, func(db execer) error {
		_, err := db.Exec(ctx, `INSERT INTO application (`+appColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			app.ID, nullString(app.UID), app.Name, nullUint16(app.RateLimit), meta, app.CreatedAt, app.UpdatedAt)
		return err
	})
	if err != nil {
		return s.fail("create application", err)
	}
	return nil
}

// GetApplication returns the application whose ID, or else uid, is ref. One
// statement looks up both, preferring the ID, so a uid that equals another
// application's ID never shadows it.
func (s *Store) GetApplication(ctx context.Context, ref string) (*herald.Application, error) {
	app, err := scanApp(s.pool.QueryRow(ctx, `SELECT `+appColumns+` FROM application
		WHERE id = $1 OR uid = $1 ORDER BY id = $1 DESC LIMIT 1`, ref))
	if err != nil {
		return nil, s.fail("get application", notFound(err, errAppNotFound))
	}
	return app, nil
}

// ListApplications returns a page of applications ordered by ID.
func (s *Store) ListApplications(ctx context.Context, opts herald.ListOptions) ([]*herald.Application, error) {
	var q query
	q.add(`SELECT ` + appColumns + ` FROM application WHERE true`)
	q.add(q.page("id", opts))
	rows, err := s.pool.Query(ctx, q.String(), q.args...)
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
	err = s.change(ctx, &auditTarget{"application.update", herald.AuditApplication, app.ID, app.ID}, func(db execer) error {
		return writeApp(ctx, db, app, meta)
	})
	if err != nil {
		return s.fail("update application", err)
	}
	return nil
}

// writeApp writes the mutable fields of app, its metadata encoded as meta.
func writeApp(ctx context.Context, db execer, app *herald.Application, meta *string) error {
	tag, err := db.Exec(ctx, `UPDATE application SET uid = $1, name = $2, rate_limit = $3, metadata = $4, updated_at = $5
		WHERE id = $6`,
		nullString(app.UID), app.Name, nullUint16(app.RateLimit), meta, app.UpdatedAt, app.ID)
	if err != nil {
		return err
	}
	return mustAffect(tag, errAppNotFound)
}

// UpdateApplicationFunc reads the application FOR UPDATE, lets update
// change it and writes it back, in one transaction (see herald.Store).
func (s *Store) UpdateApplicationFunc(ctx context.Context, ref string, update func(*herald.Application) error) (*herald.Application, error) {
	var out *herald.Application
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		app, err := scanApp(tx.QueryRow(ctx, `SELECT `+appColumns+` FROM application
			WHERE id = $1 OR uid = $1 ORDER BY id = $1 DESC LIMIT 1 FOR UPDATE`, ref))
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
	// The shared rate-limit buckets of the application and its endpoints
	// go with it (see TakeTokens).
	err := s.change(ctx, &auditTarget{"application.delete", herald.AuditApplication, id, id}, func(db execer) error {
		tag, err := db.Exec(ctx, `WITH buckets AS (
				DELETE FROM rate_bucket WHERE key = $1 OR key IN (SELECT id FROM endpoint WHERE app_id = $1))
			DELETE FROM application WHERE id = $1`, id)
		if err != nil {
			return err
		}
		return mustAffect(tag, errAppNotFound)
	})
	if err != nil {
		return s.fail("delete application", err)
	}
	return nil
}

// collect scans every row of a query with scan and closes the rows.
func collect[T any](rows pgx.Rows, err error, scan func(pgx.Row) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func scanApp(row pgx.Row) (*herald.Application, error) {
	var (
		app                  herald.Application
		uid                  *string
		rateLimit            *int32
		meta                 []byte
		createdAt, updatedAt time.Time
	)
	if err := row.Scan(&app.ID, &uid, &app.Name, &rateLimit, &meta, &createdAt, &updatedAt); err != nil {
		return nil, err
	}
	m, err := parseMap(meta)
	if err != nil {
		return nil, err
	}
	app.UID = fromNullString(uid)
	app.RateLimit = fromNullUint16(rateLimit)
	app.Metadata = m
	app.CreatedAt = createdAt.UTC()
	app.UpdatedAt = updatedAt.UTC()
	return &app, nil
}
