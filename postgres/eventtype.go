package postgres

import (
	"context"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/herald-webhooks/herald"
)

const eventTypeColumns = `name, description, archived, deprecated, feature_flag, schemas, created_at, updated_at`

// CreateEventType stores et; a taken name, archived or not, is ECONFLICT.
func (s *Store) CreateEventType(ctx context.Context, et *herald.EventType) error {
	err := s.change(ctx, &auditTarget{"event_type.create", herald.AuditEventType, et.Name, ""}, func(db execer) error {
		_, err := db.Exec(ctx, `INSERT INTO event_type (`+eventTypeColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			et.Name, et.Description, et.Archived, et.Deprecated, nullString(et.FeatureFlag), schemasArg(et.Schemas),
			et.CreatedAt, et.UpdatedAt)
		return err
	})
	if err != nil {
		return s.fail("create event type", err)
	}
	return nil
}

// GetEventType returns the event type called name, archived or not.
func (s *Store) GetEventType(ctx context.Context, name string) (*herald.EventType, error) {
	et, err := scanEventType(s.pool.QueryRow(ctx, `SELECT `+eventTypeColumns+` FROM event_type WHERE name = $1`, name))
	if err != nil {
		return nil, s.fail("get event type", notFound(err, errEventTypeNotFound))
	}
	return et, nil
}

// ListEventTypes returns a page of event types ordered by name, without the
// archived ones unless opts.IncludeArchived.
func (s *Store) ListEventTypes(ctx context.Context, opts herald.EventTypeListOptions) ([]*herald.EventType, error) {
	var q query
	q.add(`SELECT ` + eventTypeColumns + ` FROM event_type WHERE true`)
	if !opts.IncludeArchived {
		q.add(` AND NOT archived`)
	}
	q.add(q.page("name", opts.ListOptions))
	rows, err := s.pool.Query(ctx, q.String(), q.args...)
	out, err := collect(rows, err, scanEventType)
	if err != nil {
		return nil, s.fail("list event types", err)
	}
	return out, nil
}

// UpdateEventType replaces the mutable fields of the event type called
// et.Name; CreatedAt is kept as stored.
func (s *Store) UpdateEventType(ctx context.Context, et *herald.EventType) error {
	err := s.change(ctx, &auditTarget{"event_type.update", herald.AuditEventType, et.Name, ""}, func(db execer) error {
		return writeEventType(ctx, db, et)
	})
	if err != nil {
		return s.fail("update event type", err)
	}
	return nil
}

// writeEventType writes the mutable fields of et.
func writeEventType(ctx context.Context, db execer, et *herald.EventType) error {
	tag, err := db.Exec(ctx, `UPDATE event_type SET description = $1, archived = $2, deprecated = $3,
		feature_flag = $4, schemas = $5, updated_at = $6 WHERE name = $7`,
		et.Description, et.Archived, et.Deprecated, nullString(et.FeatureFlag), schemasArg(et.Schemas), et.UpdatedAt, et.Name)
	if err != nil {
		return err
	}
	return mustAffect(tag, errEventTypeNotFound)
}

// UpdateEventTypeFunc reads the event type FOR UPDATE, lets update change
// it and writes it back, in one transaction (see herald.Store).
func (s *Store) UpdateEventTypeFunc(ctx context.Context, name string, update func(*herald.EventType) error) (*herald.EventType, error) {
	var out *herald.EventType
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		et, err := scanEventType(tx.QueryRow(ctx, `SELECT `+eventTypeColumns+` FROM event_type WHERE name = $1 FOR UPDATE`, name))
		if err != nil {
			return notFound(err, errEventTypeNotFound)
		}
		if _, err := et.ApplyUpdate(update); err != nil {
			return err
		}
		if err := writeEventType(ctx, tx, et); err != nil {
			return err
		}
		out = et
		return s.audit(ctx, tx, &auditTarget{"event_type.update", herald.AuditEventType, et.Name, ""})
	})
	if err != nil {
		return nil, s.fail("update event type", err)
	}
	return out, nil
}

// DeleteEventType deletes the event type called name.
func (s *Store) DeleteEventType(ctx context.Context, name string) error {
	err := s.change(ctx, &auditTarget{"event_type.delete", herald.AuditEventType, name, ""}, func(db execer) error {
		tag, err := db.Exec(ctx, `DELETE FROM event_type WHERE name = $1`, name)
		if err != nil {
			return err
		}
		return mustAffect(tag, errEventTypeNotFound)
	})
	if err != nil {
		return s.fail("delete event type", err)
	}
	return nil
}

// schemasArg returns the schemas JSON as text for the jsonb column, or NULL
// when there is none.
func schemasArg(b []byte) *string {
	if len(b) == 0 {
		return nil
	}
	s := string(b)
	return &s
}

func scanEventType(row pgx.Row) (*herald.EventType, error) {
	var (
		et                   herald.EventType
		flag                 *string
		schemas              []byte
		createdAt, updatedAt time.Time
	)
	if err := row.Scan(&et.Name, &et.Description, &et.Archived, &et.Deprecated, &flag, &schemas, &createdAt, &updatedAt); err != nil {
		return nil, err
	}
	et.FeatureFlag = fromNullString(flag)
	et.Schemas = schemas
	et.CreatedAt = createdAt.UTC()
	et.UpdatedAt = updatedAt.UTC()
	return &et, nil
}

// ImportEventTypes upserts types and, with archiveOthers, archives the
// rest, in one transaction (see herald.Store).
func (s *Store) ImportEventTypes(ctx context.Context, types []*herald.EventType, archiveOthers bool, now time.Time) ([]string, error) {
	var archived []string
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		names := make([]string, 0, len(types))
		for _, et := range types {
			_, err := tx.Exec(ctx, `INSERT INTO event_type (`+eventTypeColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
				ON CONFLICT (name) DO UPDATE SET description = excluded.description, archived = false,
					deprecated = excluded.deprecated, feature_flag = excluded.feature_flag,
					schemas = excluded.schemas, updated_at = excluded.updated_at`,
				et.Name, et.Description, false, et.Deprecated, nullString(et.FeatureFlag), schemasArg(et.Schemas),
				et.CreatedAt, et.UpdatedAt)
			if err != nil {
				return err
			}
			if err := s.audit(ctx, tx, &auditTarget{"event_type.import", herald.AuditEventType, et.Name, ""}); err != nil {
				return err
			}
			names = append(names, et.Name)
		}
		if !archiveOthers {
			return nil
		}
		rows, err := tx.Query(ctx, `UPDATE event_type SET archived = true, updated_at = $1
			WHERE NOT archived AND name <> ALL($2::text[]) RETURNING name`, now, names)
		archived, err = collect(rows, err, func(row pgx.Row) (string, error) {
			var name string
			return name, row.Scan(&name)
		})
		if err != nil {
			return err
		}
		slices.Sort(archived)
		for _, name := range archived {
			if err := s.audit(ctx, tx, &auditTarget{"event_type.update", herald.AuditEventType, name, ""}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, s.fail("import event types", err)
	}
	return archived, nil
}
