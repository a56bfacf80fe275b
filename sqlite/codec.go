package sqlite

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/herald-webhooks/herald"
)

// micros returns t as unix microseconds, the unit of every time column.
func micros(t time.Time) int64 { return t.UnixMicro() }

// fromMicros is the inverse of micros, in UTC.
func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

// fromNullMicros returns the zero time for NULL and the time otherwise.
func fromNullMicros(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMicros(v.Int64)
}

// nullMicros returns NULL for the zero time and micros(t) otherwise.
func nullMicros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return micros(t)
}

// nullString returns NULL for "" and s otherwise, for optional unique
// columns (uid, event_id) where "" means unset.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// nullUint16 returns NULL for nil and *v otherwise.
func nullUint16(v *uint16) any {
	if v == nil {
		return nil
	}
	return int64(*v)
}

// fromNullUint16 is the inverse of nullUint16.
func fromNullUint16(v sql.NullInt64) *uint16 {
	if !v.Valid {
		return nil
	}
	u := uint16(v.Int64)
	return &u
}

// jsonMap returns m as JSON text, or NULL when it is empty.
func jsonMap(m map[string]string) (any, error) {
	if len(m) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode map: %w", err)
	}
	return string(b), nil
}

// jsonList returns l as JSON text, or NULL when it is empty.
func jsonList(l []string) (any, error) {
	if len(l) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(l)
	if err != nil {
		return nil, fmt.Errorf("encode list: %w", err)
	}
	return string(b), nil
}

// parseMap decodes a JSON object column; NULL is a nil map.
func parseMap(v sql.NullString) (map[string]string, error) {
	if !v.Valid {
		return nil, nil
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(v.String), &m); err != nil {
		return nil, fmt.Errorf("decode map: %w", err)
	}
	return m, nil
}

// parseList decodes a JSON list column; NULL is a nil list.
func parseList(v sql.NullString) ([]string, error) {
	if !v.Valid {
		return nil, nil
	}
	var l []string
	if err := json.Unmarshal([]byte(v.String), &l); err != nil {
		return nil, fmt.Errorf("decode list: %w", err)
	}
	return l, nil
}

// limit returns opts.Limit, raised to 1 when below it.
func limit(opts herald.ListOptions) int {
	return max(opts.Limit, 1)
}

// pageClause returns the cursor condition and ORDER BY direction for a
// listing ordered by col: the cursor is exclusive in the listing's order.
func pageClause(col string, opts herald.ListOptions) (cond, order string) {
	if opts.Order == herald.Descending {
		if opts.Cursor != "" {
			cond = " AND " + col + " < ?"
		}
		return cond, " ORDER BY " + col + " DESC"
	}
	if opts.Cursor != "" {
		cond = " AND " + col + " > ?"
	}
	return cond, " ORDER BY " + col + " ASC"
}
