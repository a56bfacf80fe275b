package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"slices"
	"time"

	"github.com/herald-webhooks/herald"
)

const eventTypeColumns = `name, description, archived, deprecated, feature_flag, schemas, created_at, updated_at`

// CreateEventType stores et; a taken name, archived or not, is ECONFLICT.
func (s *Store) CreateEventType(ctx context.Context, et *herald.EventType) error {
	err := s.change(ctx, &auditTarget{"event_type.create", herald.AuditEventType, et.Name, ""}, func(ctx context.Context, db execer) error {
		_, err := db.ExecContext(ctx, `INSERT INTO event_type (`+eventTypeColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			et.Name, et.Description, et.Archived, et.Deprecated, nullString(et.FeatureFlag), schemasArg(et.Schemas),
			micros(et.CreatedAt), micros(et.UpdatedAt))
		return err
	})
	if err != nil {
		return s.fail("create event type", err)
	}
	return nil
}

// GetEventType returns the event type called name, archived or not.
func (s *Store) GetEventType(ctx context.Context, name string) (*herald.EventType, error) {
	et, err := scanEventType(s.r.QueryRowContext(ctx, `SELECT `+eventTypeColumns+` FROM event_type WHERE name = ?`, name))
	if err != nil {
		return nil, s.fail("get event type", notFound(err, errEventTypeNotFound))
	}
	return et, nil
}

// ListEventTypes returns a page of event types ordered by name, without the
// archived ones unless opts.IncludeArchived.
func (s *Store) ListEventTypes(ctx context.Context, opts herald.EventTypeListOptions) ([]*herald.EventType, error) {
	cond, order := pageClause("name", opts.ListOptions)
	if !opts.IncludeArchived {
		cond += " AND archived = 0"
	}
	args := make([]any, 0, 2)
	if opts.Cursor != "" {
		args = append(args, opts.Cursor)
	}
	args = append(args, limit(opts.ListOptions))
	rows, err := s.r.QueryContext(ctx, `SELECT `+eventTypeColumns+` FROM event_type WHERE 1 = 1`+cond+order+` LIMIT ?`, args...)
	out, err := collect(rows, err, scanEventType)
	if err != nil {
		return nil, s.fail("list event types", err)
	}
	return out, nil
}

// UpdateEventType replaces the mutable fields of the event type called
// et.Name; CreatedAt is kept as stored.
func (s *Store) UpdateEventType(ctx context.Context, et *herald.EventType) error {
	err := s.change(ctx, &auditTarget{"event_type.update", herald.AuditEventType, et.Name, ""}, func(ctx context.Context, db execer) error {
		return writeEventType(ctx, db, et)
	})
	if err != nil {
		return s.fail("update event type", err)
	}
	return nil
}

// writeEventType writes the mutable fields of et.
func writeEventType(ctx context.Context, db execer, et *herald.EventType) error {
	res, err := db.ExecContext(ctx, `UPDATE event_type SET description = ?, archived = ?, deprecated = ?, feature_flag = ?, schemas = ?, updated_at = ? WHERE name = ?`,
		et.Description, et.Archived, et.Deprecated, nullString(et.FeatureFlag), schemasArg(et.Schemas), micros(et.UpdatedAt), et.Name)
	if err != nil {
		return err
	}
	return mustAffect(res, errEventTypeNotFound)
}

// UpdateEventTypeFunc reads the event type in the write transaction, lets
// update change it and writes it back there (see herald.Store).
func (s *Store) UpdateEventTypeFunc(ctx context.Context, name string, update func(*herald.EventType) error) (*herald.EventType, error) {
	var out *herald.EventType
	err := s.write(ctx, func(ctx context.Context, tx *sql.Tx) error {
		et, err := scanEventType(tx.QueryRowContext(ctx, `SELECT `+eventTypeColumns+` FROM event_type WHERE name = ?`, name))
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
	err := s.change(ctx, &auditTarget{"event_type.delete", herald.AuditEventType, name, ""}, func(ctx context.Context, db execer) error {
		res, err := db.ExecContext(ctx, `DELETE FROM event_type WHERE name = ?`, name)
		if err != nil {
			return err
		}
		return mustAffect(res, errEventTypeNotFound)
	})
	if err != nil {
		return s.fail("delete event type", err)
	}
	return nil
}

// schemasArg returns the schemas JSON as text, or NULL when there is none.
func schemasArg(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return string(b)
}

func scanEventType(row scanner) (*herald.EventType, error) {
	var (
		et                   herald.EventType
		flag, schemas        sql.NullString
		createdAt, updatedAt int64
	)
	if err := row.Scan(&et.Name, &et.Description, &et.Archived, &et.Deprecated, &flag, &schemas, &createdAt, &updatedAt); err != nil {
		return nil, err
	}
	et.FeatureFlag = flag.String
	if schemas.Valid {
		et.Schemas = []byte(schemas.String)
	}
	et.CreatedAt = fromMicros(createdAt)
	et.UpdatedAt = fromMicros(updatedAt)
	return &et, nil
}

// ImportEventTypes upserts types and, with archiveOthers, archives the
// rest, in one write transaction of its own: a document may hold many
// event types, and a failure must not undo other callers' writes grouped
// with it (see herald.Store).
func (s *Store) ImportEventTypes(ctx context.Context, types []*herald.EventType, archiveOthers bool, now time.Time) ([]string, error) {
	var archived []string
	err := s.writeAlone(ctx, func(ctx context.Context, tx *sql.Tx) error {
		names := make([]string, 0, len(types))
		for _, et := range types {
			_, err := tx.ExecContext(ctx, `INSERT INTO event_type (`+eventTypeColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (name) DO UPDATE SET description = excluded.description, archived = 0,
					deprecated = excluded.deprecated, feature_flag = excluded.feature_flag,
					schemas = excluded.schemas, updated_at = excluded.updated_at`,
				et.Name, et.Description, false, et.Deprecated, nullString(et.FeatureFlag), schemasArg(et.Schemas),
				micros(et.CreatedAt), micros(et.UpdatedAt))
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
		list, err := json.Marshal(names)
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `UPDATE event_type SET archived = 1, updated_at = ?
			WHERE archived = 0 AND name NOT IN (SELECT value FROM json_each(?)) RETURNING name`, micros(now), string(list))
		archived, err = collect(rows, err, func(row scanner) (string, error) {
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
